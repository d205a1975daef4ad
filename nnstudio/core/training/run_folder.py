"""What a run folder holds and how it is named: TensorBoard's tags, ``run.json`` and the folder's name.

The logger that writes a run (`callbacks.TensorBoardLogger`) and the reader of the log folder
(`core.results.runs`) share these names, so they cannot drift apart.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from nnstudio.core.files import atomic_write

#: The file beside a run's events with what the events do not say (written by TensorBoardLogger).
RUN_INFO = "run.json"
EVENTS_GLOB = "events.out.tfevents.*"
#: Stable TensorBoard tags; the window, the docs and the tests use these names.
TAG_STEP_LOSS = "loss/train_step"
TAG_TRAIN_LOSS = "loss/train"
TAG_VAL_LOSS = "loss/validation"
TAG_LR = "learning_rate"
TAG_GRAD_NORM = "gradients/norm"
TAG_METRIC = "metrics/validation_{}"
TAG_MODEL = "model/structure"
TAG_EPOCH = "epoch"  # the epoch number at the global step that ended it: puts epoch curves on the step axis


def run_dir_name(name: str, when: datetime | None = None) -> str:
    stamp = (when or datetime.now()).strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "run"
    return f"{stamp}-{safe}"


def unique_run_dir(logdir: str | Path, name: str) -> Path:
    base = Path(logdir) / run_dir_name(name)
    path, n = base, 2
    while path.exists():
        path = base.with_name(f"{base.name}-{n}")
        n += 1
    return path
METRIC_PREFIX = TAG_METRIC.format("")


def read_info(run_dir: str | Path) -> dict[str, Any]:
    """A run's ``run.json`` ({} when absent or unreadable: a run written by another program)."""
    try:
        raw = json.loads((Path(run_dir) / RUN_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


def write_info(run_dir: str | Path, info: dict[str, Any]) -> Path:
    """Write ``run.json`` whole and atomically (a reader never sees half a file); non-finite numbers become null.

    Only into an existing run folder: one that vanished during the run is not made again here, so the
    TensorBoard writer's failure is reported instead of hidden (tests/core/test_nothing_lost.py)."""
    path = Path(run_dir) / RUN_INFO
    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(_finite(info), indent=1, default=str))
    return path


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
