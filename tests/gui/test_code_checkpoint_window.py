"""The window says a checkpoint was refused because it asks to run code, names the code, and keeps its state."""

from __future__ import annotations

import builtins
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from guiwindow import load
from test_open_model_files import drop


class _Exec:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return builtins.exec, (f"open({self.marker!r}, 'w').close()",)


def test_protocol_4_trap_is_refused_naming_exec(qtbot, window, flowers_csv, tmp_path):
    load(qtbot, window, flowers_csv)
    layers_before = window.modelBuilder.layers()
    marker = tmp_path / "pwned"
    trap = tmp_path / "trap.pt"
    torch.save({"format": "nnstudio", "state_dict": _Exec(str(marker))}, trap, pickle_protocol=4)
    with qtbot.waitSignal(window.error_shown, timeout=10000) as blocker:
        drop(window, trap)
    message = blocker.args[0]
    assert "trap.pt" in message and "Python code" in message and "builtins.exec" in message, message
    assert "damaged" not in message
    assert not marker.exists()
    assert window.model is None and window.modelBuilder.layers() == layers_before
