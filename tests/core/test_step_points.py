"""#20.7: a fast run logs enough step losses for its step curve to agree with its epoch losses."""

from __future__ import annotations

from corehelpers import write_toml

from nnstudio.core.config import RunConfig
from nnstudio.core.results.runs import read_curves
from nnstudio.core.run import TrainingRun
from nnstudio.core.training.callbacks import MIN_STEP_POINTS


def test_a_rate_limited_fast_run_still_logs_min_step_points_spread_evenly(tmp_path, flowers_csv):
    config = write_toml(tmp_path / "run.toml", flowers_csv, target="species", epochs=5)
    cfg = RunConfig.load(config)
    cfg.training.batch_size = 4  # 105 steps an epoch, 525 in all: over in about a second
    run = TrainingRun(cfg, max_step_log_rate=1.0)  # at most one step a second by the rate alone
    run.execute()
    curves = read_curves(run.tb.run_dir)
    total = int(curves.epoch_step[-1])
    assert total == 525
    assert len(curves.step_x) >= MIN_STEP_POINTS
    gaps = set((curves.step_x[1:] - curves.step_x[:-1]).tolist())
    assert max(gaps) <= total // MIN_STEP_POINTS, gaps  # no stretch of the run without a point
