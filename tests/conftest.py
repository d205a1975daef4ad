import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from nnstudio.resources import sample_dataset  # noqa: E402


@pytest.fixture
def flowers_csv() -> Path:
    return sample_dataset("flowers.csv")


@pytest.fixture
def houses_csv() -> Path:
    return sample_dataset("houses.csv")


@pytest.fixture
def churn_csv() -> Path:
    return sample_dataset("churn.csv")
