"""Fixtures for the Qt-free core tests; plain helper functions live in corehelpers.py."""

from __future__ import annotations

import pytest

from nnstudio.core.data import PreparedData, load_dataset
from nnstudio.resources import sample_dataset


@pytest.fixture(scope="session")
def flowers_data() -> PreparedData:
    """flowers.csv: 600 rows, multiclass (3 species), one categorical feature."""
    return load_dataset(sample_dataset("flowers.csv"), seed=0)


@pytest.fixture(scope="session")
def houses_data() -> PreparedData:
    """houses.csv: 800 rows, regression on price."""
    return load_dataset(sample_dataset("houses.csv"), seed=0)


@pytest.fixture(scope="session")
def churn_data() -> PreparedData:
    """churn.csv: 1000 rows, binary yes/no."""
    return load_dataset(sample_dataset("churn.csv"), seed=0)


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tiny models lose to thread hand-off; one thread keeps the suite fast on a busy 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
