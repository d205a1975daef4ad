"""Output paths checked before the first epoch, so a run never trains for an hour and then cannot save.

A checkpoint path in a missing or read-only folder, a path that is a folder, a log folder that cannot be
made, or a disk without room for one checkpoint: each is one sentence, raised before anything trains.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from nnstudio.core.errors import ConfigError


def _existing_ancestor(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_file_target(path: Path, what: str, bytes_needed: int = 0) -> None:
    """`path` can be written as a file: its folder exists and is writable, it is not a folder, room for it."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{what} {path}: is a folder; name a file inside it (e.g. {path / 'model.pt'})")
    folder = path.parent
    if not folder.exists():
        raise ConfigError(f"{what} {path}: the folder {folder} does not exist; create it or choose another path")
    if not folder.is_dir():
        raise ConfigError(f"{what} {path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {path}: the folder {folder} is not writable; choose another path")
    if path.exists() and not os.access(path, os.W_OK) and not os.access(folder, os.W_OK):
        raise ConfigError(f"{what} {path}: the file is read-only")
    _check_space(folder, bytes_needed, f"{what} {path}")


def check_folder_target(path: Path, what: str, bytes_needed: int = 0) -> None:
    """`path` is, or can be created as, a writable folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{what} {path}: is a file, not a folder; choose a folder")
    base = _existing_ancestor(path)
    if not base.is_dir():
        raise ConfigError(f"{what} {path}: {base} is a file, not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {path}: {base} is not writable; choose another folder")
    _check_space(base, bytes_needed, f"{what} {path}")


def _check_space(folder: Path, bytes_needed: int, what: str) -> None:
    if bytes_needed <= 0:
        return
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < bytes_needed:
        raise ConfigError(f"{what}: only {free / 2**20:.1f} MiB free, a checkpoint needs about "
                          f"{bytes_needed / 2**20:.1f} MiB; free some space or choose another disk")


def checkpoint_bytes(model, optimizer_slots: int = 2) -> int:
    """About what one checkpoint takes: weights, best and last weights, the optimizer's per-parameter state."""
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    return weights * (3 + optimizer_slots) + 256 * 1024


def check_run_outputs(checkpoint: Path | None, logdir: Path | None, model=None) -> None:
    """Every output of a run, before it starts; also removes temp files an interrupted save left."""
    from nnstudio.core.model.checkpoint import remove_stale_temp_files

    need = checkpoint_bytes(model) if model is not None else 0
    if checkpoint is not None:
        check_file_target(checkpoint, "[output] checkpoint", need)
        remove_stale_temp_files(checkpoint)
    if logdir is not None:
        check_folder_target(logdir, "[output] logdir", 2 * need)
        remove_stale_run_temp_files(logdir)


def remove_stale_run_temp_files(folder: Path) -> None:
    """Temp files of interrupted last.pt/best.pt/run.json writes in a run folder and in the run folders beside it."""
    from nnstudio.core.model.checkpoint import remove_stale_temp_files

    folder = Path(folder)
    for base in {folder, folder.parent}:
        try:
            runs = [base, *(p for p in base.iterdir() if p.is_dir())] if base.is_dir() else []
        except OSError:
            continue
        for run in runs:
            for name in ("last.pt", "best.pt", "run.json"):
                remove_stale_temp_files(run / name)
