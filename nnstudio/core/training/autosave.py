"""`last.pt` and `best.pt` in each run's folder, written at epoch ends so a crash loses little.

Each write is atomic (`atomic_torch_save`). Epoch-end writes of last.pt are throttled so that the time spent
writing stays within `budget` (1%) of the time trained: an epoch end writes only when the time written so
far plus the last write's cost fits in the budget. The fit's end and a stop always write last.pt and
best.pt; a divergence writes best.pt (a diverged run's weights are never written: `best.pt` holds its last
good epoch). A crash loses the epochs since the last write: at most max(1 epoch, 100 × one write's time).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from nnstudio.core.model.checkpoint import atomic_torch_save
from nnstudio.core.errors import CheckpointError
from nnstudio.core.training.engine import Callback, EpochFinished, FitFailed, FitFinished, FitStarted

LAST, BEST = "last.pt", "best.pt"
#: What the first write is assumed to cost (fsync included) until one is measured: the first last.pt comes
#: after 1 s of training at a 1% budget, so a run of a few seconds is not dominated by it.
FIRST_WRITE_GUESS_S = 0.01


class RunCheckpoints(Callback):
    """`build(which)` returns the checkpoint dict for "last" (resumable) or "best" (the best epoch's weights)."""

    def __init__(self, run_dir: Path, build: Callable[[str], dict[str, Any]], budget: float = 0.01):
        self.run_dir = Path(run_dir)
        self.build = build
        self.budget = budget
        self.spent = 0.0  # seconds spent writing
        self.periodic_spent = 0.0  # of which at epoch ends (what the budget throttles)
        self.periodic_writes = 0
        self.start = 0.0
        self.last_cost = FIRST_WRITE_GUESS_S
        self.writes = 0
        self.saved_epoch: int | None = None  # epoch held by last.pt
        self.best_saved_epoch: int | None = None  # epoch held by best.pt
        self.error: Exception | None = None

    @property
    def last_path(self) -> Path:
        return self.run_dir / LAST

    @property
    def best_path(self) -> Path:
        return self.run_dir / BEST

    def _write(self, which: str) -> None:
        """A failed write (full disk, the folder removed) is kept in `error` and ends autosaving, not the fit:
        the run reports it at its end, after its own checkpoint."""
        if self.error is not None:
            return
        t0 = time.perf_counter()
        try:
            atomic_torch_save(self.build(which), self.run_dir / (LAST if which == "last" else BEST))
        except (OSError, CheckpointError) as exc:
            self.error = exc
            return
        cost = time.perf_counter() - t0
        self.spent += cost
        self.last_cost = cost
        self.writes += 1

    def on_fit_start(self, trainer, event: FitStarted) -> None:
        """The folder is made here, once: one removed during the run is reported, not silently made again."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.start = time.perf_counter()
        self.spent = 0.0

    def on_epoch_end(self, trainer, event: EpochFinished) -> None:
        """Only last.pt during the fit: it holds the best weights too (in its trainer state), so a crash
        loses neither; best.pt is written when the fit ends or fails."""
        elapsed = time.perf_counter() - self.start
        if self.spent + self.last_cost > self.budget * elapsed:
            return
        before = self.spent
        self._save_last(trainer)
        if self.spent > before:
            self.periodic_spent += self.spent - before
            self.periodic_writes += 1

    def _save_last(self, trainer) -> None:
        if trainer.history and self.saved_epoch != trainer.history[-1].epoch:
            self._write("last")
            if self.error is None:
                self.saved_epoch = trainer.history[-1].epoch

    def _save(self, trainer) -> None:
        self._save_last(trainer)
        if trainer.best_state is not None and trainer.best_epoch is not None \
                and self.best_saved_epoch != trainer.best_epoch:
            self._write("best")
            if self.error is None:
                self.best_saved_epoch = trainer.best_epoch

    def on_fit_end(self, trainer, event: FitFinished) -> None:
        self._save(trainer)

    def on_exception(self, trainer, event: FitFailed) -> None:
        """A divergence or a crash: the best (finite) weights go to best.pt; last.pt keeps its good epoch."""
        if trainer.best_state is not None and trainer.best_epoch is not None \
                and self.best_saved_epoch != trainer.best_epoch:
            self._write("best")
            if self.error is None:
                self.best_saved_epoch = trainer.best_epoch

    def good_checkpoint(self) -> Path | None:
        """The newest checkpoint of a good epoch this run wrote (for a diverged run's message)."""
        if self.best_saved_epoch is not None and self.best_path.exists():
            return self.best_path
        if self.saved_epoch is not None and self.last_path.exists():
            return self.last_path
        return None
