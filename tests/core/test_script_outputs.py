"""#20.3/10: the exported script writes beside itself (or under --out), reads the data path from its top (or
--data), never replaces a file it did not write without saying so, and names the packages it needs."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from corehelpers import cli_env, write_toml

from nnstudio.core.config import RunConfig
from nnstudio.core.export.codegen import export_script
from nnstudio.core.model.checkpoint import load_checkpoint
from nnstudio.core.run import TrainingRun

RUNNER = ("import runpy, sys; blocked = sys.argv[1]; script = sys.argv[2]\n"
          "for name in filter(None, blocked.split(',')): sys.modules[name] = None  # as if not installed\n"
          "sys.argv = sys.argv[2:]; runpy.run_path(script, run_name='__main__')\n")


def _run(script, cwd, *args, blocked=""):
    return subprocess.run([sys.executable, "-c", RUNNER, blocked, str(script), *map(str, args)], cwd=cwd,
                          env=cli_env(), capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def project(tmp_path, flowers_csv):
    """A project folder where nnstudio trained model.pt, and the script exported from it."""
    home = tmp_path / "project"
    home.mkdir()
    shutil.copy(flowers_csv, home / "flowers.csv")
    toml = write_toml(home / "run.toml", "flowers.csv", target="species", epochs=1)
    TrainingRun(RunConfig.load(toml), tensorboard=False).execute()
    return home, toml


def test_outputs_go_beside_the_script_never_into_the_project(tmp_path, project):
    home, toml = project
    original = (home / "model.pt").read_bytes()
    elsewhere = tmp_path / "course"
    elsewhere.mkdir()
    script = export_script(toml, elsewhere / "train.py")
    text = script.read_text()
    assert text.count(str(home / "flowers.csv")) == 1, "the data path is given once, at the top"
    assert str(home / "model.pt") not in text and str(home / "runs") not in text
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    done = _run(script, cwd)
    assert done.returncode == 0, done.stderr[-2000:]
    assert load_checkpoint(elsewhere / "model.pt").layers
    assert list((elsewhere / "runs" / "clitest").glob("events.out.tfevents.*"))
    assert (home / "model.pt").read_bytes() == original
    assert not (cwd / "model.pt").exists()
    out = tmp_path / "out"
    done = _run(script, cwd, "--out", out, "--data", home / "flowers.csv")
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "model.pt").is_file() and list((out / "runs" / "clitest").glob("events.out.tfevents.*"))


def test_a_checkpoint_it_did_not_write_is_kept_unless_overwrite_is_given(project):
    home, toml = project
    original = (home / "model.pt").read_bytes()
    script = export_script(toml, home / "train.py")  # beside nnstudio's own model.pt
    refused = _run(script, home)
    assert refused.returncode != 0
    assert "model.pt" in refused.stderr and "not written by train.py" in refused.stderr, refused.stderr
    assert "--out" in refused.stderr and "--overwrite" in refused.stderr
    assert (home / "model.pt").read_bytes() == original
    assert "epoch 1/1" not in refused.stdout  # refused before training
    replaced = _run(script, home, "--overwrite")
    assert replaced.returncode == 0, replaced.stderr[-2000:]
    assert "as --overwrite asks" in replaced.stdout
    assert (home / "model.pt").read_bytes() != original
    again = _run(script, home)  # its own checkpoint: replaced, and said
    assert again.returncode == 0, again.stderr[-2000:]
    assert "written by an earlier run of this script" in again.stdout


def test_without_polars_the_script_says_what_to_install(tmp_path, project):
    _, toml = project
    script = export_script(toml, tmp_path / "train.py")
    assert "polars" in script.read_text().split('"""')[1], "the requirement is said at the top"
    done = _run(script, tmp_path, blocked="polars")
    assert done.returncode != 0
    line = done.stderr.strip().splitlines()[-1]
    assert "needs polars" in line and "pip install polars" in line and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "model.pt").exists()
