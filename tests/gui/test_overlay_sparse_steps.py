"""#20.7: a run logged with only a few step points is overlaid by its epochs, never as a misleading diagonal."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from corehelpers import write_toml

from nnstudio.core.config import RunConfig
from nnstudio.core.results.runs import list_runs, read_curves
from nnstudio.core.run import TrainingRun
from nnstudio.core.training import callbacks


def _run(tmp_path, flowers_csv, name, logdir):
    config = write_toml(tmp_path / f"{name}.toml", flowers_csv, target="species", epochs=3)
    cfg = RunConfig.load(config)
    cfg.output.name, cfg.output.logdir = name, str(logdir)
    run = TrainingRun(cfg, max_step_log_rate=1.0)
    run.execute()
    return run


def test_sparse_steps_overlay_epochs_only_dense_steps_overlay_all(qtbot, window, tmp_path, flowers_csv, monkeypatch):
    logdir = tmp_path / "runs"
    _run(tmp_path, flowers_csv, "dense", logdir)
    monkeypatch.setattr(callbacks, "MIN_STEP_POINTS", 1)  # as an earlier release logged a fast run: 1-2 points
    sparse = _run(tmp_path, flowers_csv, "sparse", logdir)
    assert len(read_curves(sparse.tb.run_dir).step_x) < 5
    runs = {r.name: r for r in list_runs(logdir)}
    with qtbot.waitSignal(window.runs.overlaid, timeout=20000):
        window.runs.overlay_runs([runs["sparse"]])
    xs, _ = window.lossPlot.step_curve.getData()
    assert xs is None or len(xs) == 0
    tx, _ = window.lossPlot.train_curve.getData()
    assert list(tx) == [7, 14, 21]
    with qtbot.waitSignal(window.runs.overlaid, timeout=20000):
        window.runs.overlay_runs([runs["dense"]])
    xs, _ = window.lossPlot.step_curve.getData()
    assert list(xs) == list(range(1, 22))
