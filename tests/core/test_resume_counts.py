"""#20.10: a resumed run counts its epochs on from the checkpoint: `epoch 4/6`, never `epoch 4/3`."""

from __future__ import annotations

import re
import subprocess
import sys

from corehelpers import cli_env, write_toml


def _train(args, cwd):
    return subprocess.run([sys.executable, "-m", "nnstudio", "train", *map(str, args)], cwd=cwd, env=cli_env(),
                          capture_output=True, text=True, timeout=300, check=False)


def test_resume_prints_the_epochs_it_trains_out_of_the_runs_total(tmp_path, flowers_csv):
    config = write_toml(tmp_path / "run.toml", flowers_csv, target="species", epochs=3)
    first = _train([config], tmp_path)
    assert first.returncode == 0, first.stderr
    assert re.findall(r"^epoch +(\d+)/(\d+)", first.stderr, re.MULTILINE) == [("1", "3"), ("2", "3"), ("3", "3")]
    again = _train([config, "--resume", tmp_path / "model.pt"], tmp_path)
    assert again.returncode == 0, again.stderr
    assert re.findall(r"^epoch +(\d+)/(\d+)", again.stderr, re.MULTILINE) == [("4", "6"), ("5", "6"), ("6", "6")]
    assert "epochs 4–6 (resumed after epoch 3)" in again.stderr
