"""One validation of a run config for the window and the command line; a missing [data] path is named."""

from __future__ import annotations

import subprocess
import sys

import pytest

from corehelpers import cli_env, write_toml
from nnstudio.core.config import RunConfig
from nnstudio.core.errors import ConfigError


def _cli(args, cwd):
    return subprocess.run([sys.executable, "-m", "nnstudio", *map(str, args)], cwd=cwd, env=cli_env(),
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("line, key, bounds", [
    ("epochs = 1000000000", "epochs", "1 … 1e+06"),
    ("batch_size = 1000000000000", "batch_size", "1 … 1e+07"),
    ("early_stopping = 500000", "early_stopping", "0 … 100000"),
])
def test_train_refuses_what_the_window_refuses_naming_the_key(tmp_path, flowers_csv, line, key, bounds):
    config = write_toml(tmp_path / "run.toml", flowers_csv, target="species")
    text = config.read_text()
    config.write_text(text.replace(f"\n{key} = ", f"\n{line}\n# was: {key} = ") if f"\n{key} = " in text
                      else text.replace("epochs = 2\n", f"epochs = 2\n{line}\n"))
    with pytest.raises(ConfigError) as info:
        RunConfig.load(config)
    assert f"[training] {key} = " in str(info.value) and bounds in str(info.value), info.value
    done = _cli(["train", config, "--quiet"], tmp_path)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert f"[training] {key} = " in done.stderr and bounds in done.stderr, done.stderr
    assert not (tmp_path / "model.pt").exists()


def test_an_epochs_override_beyond_the_window_range_is_refused(tmp_path, flowers_csv):
    config = write_toml(tmp_path / "run.toml", flowers_csv, target="species")
    done = _cli(["train", config, "--quiet", "--epochs", "1000000000"], tmp_path)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "--epochs" in done.stderr and "[training] epochs = 1e+09 is outside 1 … 1e+06" in done.stderr, done.stderr


@pytest.mark.parametrize("text", ["", "[training]\nepochs = 1\n", "[data]\ntarget = 'species'\n", "[data]\npath = ''\n"])
def test_a_config_without_data_path_names_the_key(tmp_path, text):
    config = tmp_path / "run.toml"
    config.write_text(text)
    for args in (["train", config, "--quiet"], ["lr-find", config]):
        done = _cli(args, tmp_path)
        assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert "run.toml" in last and "[data] path is missing" in last, last
        assert "is a folder" not in last
