"""The window's fixed choices: file filters, the recent-files limit, TensorBoard's step rate, the delay that
puts work after a paint, where runs are logged, and which columns a checkpoint's model leaves out."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QStandardPaths


DATA_FILTER = "Data files (*.csv *.tsv *.txt *.parquet *.pq *.npy *.npz *.pt *.pth);;All files (*)"
CHECKPOINT_FILTER = "PyTorch checkpoints (*.pt *.pth);;All files (*)"
PROJECT_FILTER = "nnstudio projects (*.toml);;All files (*)"
MAX_RECENT = 10
#: Step losses the window logs to TensorBoard per second at most (every step when training is slower).
#: An event costs ~50 µs of CPU (TensorBoard's writer checksums each record in pure Python), partly in
#: its own thread competing for the GIL; 50 a second is ~0.3% of a core, and still gives TensorBoard's
#: 1,000 plotted points per tag for any run longer than 20 seconds.
TENSORBOARD_STEPS_PER_SECOND = 50.0

#: Delay that puts work in a later pass of the event loop than the paints it follows. Qt 6 runs a
#: zero-delay single shot as a queued call, in the same batch of posted events as those paints (the
#: window froze for both); a timer runs after the paints, and after the timers already due.
NEXT_PASS_MS = 1


def default_logdir() -> Path:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation) or str(Path.home())
    return Path(base) / "runs"


def _excluded_by(preprocessor, frame) -> list[str] | None:
    """The columns a checkpoint's model does not take as inputs (None when it needs columns the table lacks)."""
    names = set(preprocessor.feature_names)
    if not names <= set(frame.columns):
        return None
    return [str(c) for c in frame.columns if c != preprocessor.target and c not in names]
