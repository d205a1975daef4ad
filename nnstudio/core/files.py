"""Checks made on a path before it is opened: a FIFO, a device or a socket is refused, never read.

Opening a FIFO blocks until something writes to it, and `/dev/zero` never ends; both are found by `stat`
before any `open`. Every loader (checkpoints, projects, data files) calls `regular_file` first.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from nnstudio.core.errors import NNStudioError

_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def regular_file(path: str | Path, error: type[NNStudioError], what: str = "file") -> Path:
    """The path if it is a regular file (links followed); otherwise `error` with one sentence naming it."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        target = f" (a link to {os.path.realpath(path)})" if path.is_symlink() else ""
        raise error(f"{path}: is {kind}{target}, not a {what}; choose a regular {what}")
    return path


def available_memory() -> int:
    """Bytes that can be allocated without swapping, as the kernel estimates them (MemAvailable)."""
    try:
        with open("/proc/meminfo", "rb") as fh:
            for line in fh:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def file_failure(path: str | Path, exc: BaseException) -> str:
    """One sentence for an exception a loader did not expect, so a window or CLI never shows a traceback."""
    if isinstance(exc, MemoryError):
        return f"{Path(path).name}: needs more memory than this machine has; the file is damaged or too large"
    if isinstance(exc, OSError):
        return f"{Path(path).name}: cannot be read ({exc.strerror or exc})"
    first = (str(exc).splitlines() or [""])[0][:160]
    return f"{Path(path).name}: cannot be opened ({type(exc).__name__}{': ' + first if first else ''})"
