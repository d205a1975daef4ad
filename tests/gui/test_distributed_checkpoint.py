"""A checkpoint written by a 2-process torchrun job opens in the window like any other."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from PySide6.QtCore import QSettings

import nnstudio
from nnstudio.gui.main_window import MainWindow
from nnstudio.resources import sample_dataset

RUN = """[data]
path = '{data}'
[model]
layers = [{{type = "Linear", out_features = 16}}, {{type = "ReLU"}}, {{type = "Linear", out_features = "auto"}}]
[training]
epochs = 2
batch_size = 64
device = "cpu"
[output]
checkpoint = 'model.pt'
logdir = 'runs'
"""


def _env() -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("PYTHONWARNINGS", None)
    env["PYTHONPATH"] = str(Path(nnstudio.__file__).resolve().parents[1]) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_window_opens_the_checkpoint_of_a_torchrun_job(qtbot, tmp_path):
    (tmp_path / "run.toml").write_text(RUN.format(data=sample_dataset("flowers.csv")), encoding="utf-8")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr",
                           "127.0.0.1", "--master-port", str(port), "-m", "nnstudio", "train", "run.toml", "-q"],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert torch.load(tmp_path / "model.pt", weights_only=True)["world_size"] == 2
    window = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat),
                        logdir=tmp_path / "runs")
    qtbot.addWidget(window)
    window.show()
    try:
        with qtbot.waitSignal(window.checkpoint_loaded, timeout=20000):
            window.open_path(tmp_path / "model.pt")
        assert window.loaded_checkpoint is not None and window.model is window.loaded_checkpoint.model
        assert window.loaded_checkpoint.epoch == 2
        assert not window.last_error
    finally:
        window.shutdown()
