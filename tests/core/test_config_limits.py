"""#13: a project's out-of-range training values: the window's ranges are named, never clamped; no OverflowError."""

from __future__ import annotations

import pytest

from nnstudio.core.config import SEED_RANGE, RunConfig, window_range_problems
from nnstudio.core.errors import ConfigError


def _load(tmp_path, text):
    path = tmp_path / "p.toml"
    path.write_text(text)
    return RunConfig.load(path)


@pytest.mark.parametrize("text, words", [
    ("seed = 1099511627776", ["seed = 1.09951e+12 is outside 0 … 2.14748e+09"]),
    ("batch_size = 1000000000000", ["batch_size = 1e+12 is outside 1 … 1e+07"]),
    ("optimizer = {name = \"Adam\", lr = 1e6}", ["optimizer.lr = 1e+06 is outside 1e-06 … 10"]),
    ("epochs = 1000000000", ["epochs = 1e+09 is outside 1 … 1e+06"]),
    ("scheduler = {name = \"step\", gamma = 5.0}", ["scheduler.gamma = 5 is outside 0.001 … 1"]),
])
def test_window_ranges_name_the_key_and_range(tmp_path, text, words):
    with pytest.raises(ConfigError) as info:  # one validation: the command line refuses them as the window does
        _load(tmp_path, f"[training]\n{text}\n")
    assert all(w in str(info.value) for w in words), info.value
    assert window_range_problems(RunConfig.from_dict({}).training) == []


def test_values_inside_the_ranges_raise_nothing(tmp_path):
    assert window_range_problems(_load(tmp_path, "[training]\nepochs = 5\nseed = 3\n").training) == []


@pytest.mark.parametrize("seed", [SEED_RANGE[1] + 1, SEED_RANGE[0] - 1])  # checked before the window's range
def test_a_seed_torch_cannot_take_is_a_config_error(tmp_path, seed):
    with pytest.raises(ConfigError, match="seed must be a 64-bit whole number"):
        RunConfig.from_dict({"training": {"seed": seed}}, tmp_path, "p.toml")


def test_odd_key_names_stay_on_one_line(tmp_path):
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({"data": {"\n": 1}, }, tmp_path, "p.toml")
    assert "\n" not in str(info.value) and "'\\n'" in str(info.value)
