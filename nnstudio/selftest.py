"""`nnstudio --self-test`: proves an installation works end to end, from any folder.

Where a display is present (DISPLAY or WAYLAND_DISPLAY) it opens a real window first and fails when it
cannot: an offscreen-only test would say "ok" on exactly the machine where the window does not open.
Offscreen is used only where there is no display; the summary's "display" says which.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: How long the real window may take to be shown by the window system.
WINDOW_EXPOSE_TIMEOUT_MS = 10_000


def display_present(environ=os.environ) -> bool:
    return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))


def window_check_command() -> list[str]:
    if getattr(sys, "frozen", False):  # the bundled app is its own interpreter
        return [sys.executable, "--self-test-window"]
    return [sys.executable, "-m", "nnstudio", "--self-test-window"]


def run_window_check() -> int:
    """In a child process: open a real window on the default platform; print one JSON line."""
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication, QLabel

    app = QApplication.instance() or QApplication(["nnstudio-self-test"])
    label = QLabel("nnstudio self-test")
    label.resize(320, 80)
    label.show()
    exposed = QTest.qWaitForWindowExposed(label, WINDOW_EXPOSE_TIMEOUT_MS)
    print(json.dumps({"platform": app.platformName(), "exposed": bool(exposed)}))
    label.close()
    return 0 if exposed else 1


def check_real_window() -> dict[str, Any]:
    """Open a real window in a child process (Qt aborts a process whose display cannot be reached)."""
    from nnstudio.launch_check import check_launch

    problem = check_launch()
    if problem is not None:
        return {"ok": False, "platform": "xcb", "error": problem.message(), "missing": list(problem.missing)}
    try:
        done = subprocess.run(window_check_command(), capture_output=True, text=True,
                              timeout=WINDOW_EXPOSE_TIMEOUT_MS / 1000 + 60)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": "the window did not open within a minute"}
    reply: dict[str, Any] = {}
    for line in reversed(done.stdout.splitlines()):
        try:
            reply = json.loads(line)
            break
        except ValueError:
            continue
    if done.returncode != 0 or not reply.get("exposed"):
        why = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return {"ok": False, "platform": reply.get("platform"), "error": f"the window could not open: {why}"}
    return {"ok": True, "platform": reply["platform"]}


def run_self_test(steps_epochs: int = 2) -> dict[str, Any]:
    started = time.perf_counter()
    summary: dict[str, Any] = {"ok": False, "checks": {}}
    checks = summary["checks"]
    if display_present() and os.environ.get("QT_QPA_PLATFORM", "") != "offscreen":
        window = check_real_window()
        checks["window"] = window
        summary["display"] = f"real ({window.get('platform') or 'no platform'})"
        if not window["ok"]:
            summary["error"] = window["error"]
            summary["seconds"] = round(time.perf_counter() - started, 2)
            return summary
    else:
        summary["display"] = "offscreen (no DISPLAY or WAYLAND_DISPLAY)" if not display_present() \
            else "offscreen (QT_QPA_PLATFORM=offscreen)"
    os.environ["QT_QPA_PLATFORM"] = "offscreen"  # the rest of the check needs no screen
    try:
        from PySide6 import QtCore, QtWidgets

        app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["nnstudio-self-test"])
        checks["qt_platform"] = app.platformName()
        import pyqtgraph as pg

        plot = pg.PlotWidget()
        plot.plot([0, 1, 2], [1.0, 0.5, 0.25])
        plot.grab()
        checks["pyqtgraph"] = pg.__version__

        import torch

        from nnstudio.core.model.checkpoint import load_checkpoint
        from nnstudio.core.config import RunConfig
        from nnstudio.core.data import read_table
        from nnstudio.core.run import TrainingRun
        from nnstudio.resources import sample_dataset

        sample = sample_dataset()
        with tempfile.TemporaryDirectory(prefix="nnstudio-selftest-") as tmp:
            cfg = RunConfig.from_dict({
                "data": {"path": str(sample)},
                "training": {"epochs": steps_epochs, "batch_size": 64, "device": "cpu"},
                "output": {"checkpoint": str(Path(tmp) / "selftest.pt"), "logdir": str(Path(tmp) / "runs")},
            })
            result = TrainingRun(cfg).execute()
            ckpt = load_checkpoint(result.checkpoint)
            rows = read_table(sample).head(8)
            loaded = ckpt.predict(rows)
            with torch.no_grad():
                from nnstudio.core.training.engine import predict_batches

                X = torch.from_numpy(ckpt.preprocessor.transform_features(rows))
                direct = ckpt.preprocessor.decode(predict_batches(result and ckpt.model, X))
            checks["train"] = {"steps": result.finished.steps, "test": result.test}
            checks["checkpoint_roundtrip"] = loaded == direct
            checks["tensorboard_files"] = len(list(Path(result.run_dir).glob("events.out.tfevents.*")))
        checks["torch"] = torch.__version__
        checks["qt"] = QtCore.qVersion()
        summary["ok"] = bool(checks["checkpoint_roundtrip"] and checks["tensorboard_files"] >= 1)
    except Exception as exc:  # the self-test reports, it does not crash
        summary["error"] = f"{type(exc).__name__}: {exc}"
    summary["seconds"] = round(time.perf_counter() - started, 2)
    return summary
