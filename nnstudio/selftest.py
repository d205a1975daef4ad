"""`nnstudio --self-test`: proves an installation works end to end, headless, from any folder."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any


def run_self_test(steps_epochs: int = 2) -> dict[str, Any]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    started = time.perf_counter()
    summary: dict[str, Any] = {"ok": False, "checks": {}}
    checks = summary["checks"]
    try:
        from PySide6 import QtCore, QtWidgets

        app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["nnstudio-self-test"])
        checks["qt_platform"] = app.platformName()
        import pyqtgraph as pg

        plot = pg.PlotWidget()
        plot.plot([0, 1, 2], [1.0, 0.5, 0.25])
        plot.grab()
        checks["pyqtgraph"] = pg.__version__

        import pandas as pd
        import torch

        from nnstudio.core.checkpoint import load_checkpoint
        from nnstudio.core.config import RunConfig
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
            rows = pd.read_csv(sample).head(8)
            loaded = ckpt.predict(rows)
            with torch.no_grad():
                from nnstudio.core.engine import predict_batches

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
