"""`nnstudio samples` lists and copies the bundled samples, so the README's run config trains after pip install."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import tomllib
from corehelpers import cli_env

from nnstudio.resources import samples_dir

README = Path(__file__).resolve().parents[2] / "README.md"


def _cli(args, cwd):
    return subprocess.run([sys.executable, "-m", "nnstudio", *map(str, args)], cwd=cwd, env=cli_env(),
                          capture_output=True, text=True, timeout=300, check=False)


def test_the_bundled_config_is_the_readmes():
    block = re.search(r"```toml\n(\[data\].*?)```", README.read_text(encoding="utf-8"), re.DOTALL).group(1)
    assert tomllib.loads(block) == tomllib.loads((samples_dir() / "penguins.toml").read_text(encoding="utf-8"))


def test_copied_samples_train_as_the_readme_says_and_a_second_copy_keeps_files(tmp_path):
    listed = _cli(["samples"], tmp_path)
    assert listed.returncode == 0 and str(samples_dir()) in listed.stdout
    assert "penguins.csv" in listed.stdout and "penguins.toml" in listed.stdout
    work = tmp_path / "course"
    assert _cli(["samples", "--copy", work], tmp_path).returncode == 0
    assert (work / "penguins.csv").read_bytes() == (samples_dir() / "penguins.csv").read_bytes()
    done = _cli(["train", "penguins.toml", "--epochs", "1", "--quiet"], work)
    assert done.returncode == 0, done.stderr
    assert (work / "model.pt").is_file()
    (work / "iris.csv").write_text("mine\n")
    again = _cli(["samples", "--copy", work], tmp_path)
    assert again.returncode == 0 and "iris.csv: already there, not overwritten" in again.stderr
    assert (work / "iris.csv").read_text() == "mine\n"


def test_a_missing_sample_says_where_the_samples_are(tmp_path):
    (tmp_path / "run.toml").write_text("[data]\npath = 'resources/samples/penguins.csv'\n")
    done = _cli(["train", "run.toml", "--quiet"], tmp_path)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert "no such file" in line and str(samples_dir()) in line and "nnstudio samples --copy ." in line, line
