"""Unfinished runs: a run folder marks itself while a fit runs; a crash or a kill leaves the mark behind.

The window looks for marked folders at start and offers to open their `last.pt` (with its history).
"""

from __future__ import annotations

from pathlib import Path

from nnstudio.core.training.engine import Callback

MARK = ".running"


def mark_unfinished(run_dir: Path) -> None:
    try:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        (Path(run_dir) / MARK).write_text("a fit is running or ended without finishing\n", encoding="utf-8")
    except OSError:
        pass  # the run itself reports an unwritable folder


def mark_finished(run_dir: Path) -> None:
    try:
        (Path(run_dir) / MARK).unlink()
    except OSError:
        pass


def find_unfinished(logdir: Path, limit: int = 200) -> list[Path]:
    """Run folders under `logdir` whose fit never ended and that hold a `last.pt`, newest first."""
    try:
        runs = [p for p in Path(logdir).iterdir() if p.is_dir()][-limit:]
    except OSError:
        return []
    found = [p for p in runs if (p / MARK).exists() and (p / "last.pt").is_file()]
    return sorted(found, key=lambda p: (p / "last.pt").stat().st_mtime, reverse=True)


class RunningMark(Callback):
    """Marks the run folder at fit start, clears the mark when the fit ends (completed, stopped, diverged)."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)

    def on_fit_start(self, trainer, event) -> None:
        mark_unfinished(self.run_dir)

    def teardown(self, trainer) -> None:
        mark_finished(self.run_dir)
