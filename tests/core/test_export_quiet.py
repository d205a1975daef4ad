"""#20.10: `nnstudio export --onnx` says it is under way and prints no other library's logs or warnings."""

from __future__ import annotations

import subprocess
import sys

import pytest
from corehelpers import cli_env, write_toml

pytest.importorskip("onnxruntime")


def test_onnx_export_says_it_is_under_way_and_nothing_of_other_libraries(tmp_path, flowers_csv):
    config = write_toml(tmp_path / "run.toml", flowers_csv, target="species", epochs=1)
    env = cli_env()
    trained = subprocess.run([sys.executable, "-m", "nnstudio", "train", str(config), "-q"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120, check=False)
    assert trained.returncode == 0, trained.stderr
    done = subprocess.run([sys.executable, "-m", "nnstudio", "export", "model.pt", "--onnx", "m.onnx"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "m.onnx").is_file()
    assert done.stderr.strip().splitlines() == ["exporting m.onnx as ONNX, then checking it on sample rows…"], done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("m.onnx: matches the live model")
