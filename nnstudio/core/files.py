"""Checks made on a path before it is opened, and the one way files are written whole.

Opening a FIFO blocks until something writes to it, and `/dev/zero` never ends; both are found by `stat`
before any `open`. Every loader (checkpoints, projects, data files) calls `regular_file` first.
Every writer of a file a user keeps (checkpoints, projects, predictions) goes through `atomic_write`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import IO, Iterator

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


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb", encoding: str | None = None,
                 newline: str | None = None) -> Iterator[IO]:
    """Yield a file to write `path` through; `path` changes only when the block ends without an exception.

    The bytes go to a temp file in the same folder (so the rename cannot cross file systems), are flushed
    and fsynced, then `os.replace`d over `path`: a reader sees the old file or the whole new one, never a
    part. On any failure (a full disk, an exception in the block, Ctrl+C) the temp file is removed and the
    old file is left as it was. The temp file gets the permissions a plain `open` would give (umask)."""
    path = Path(path)
    # .NAME.PID-RANDOM.tmp: the writer's pid tells a temp file a killed writer left (checkpoint's
    # remove_stale_temp_files) from one still being written
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        try:
            fh = os.fdopen(fd, mode, encoding=encoding, newline=newline)
        except BaseException:
            os.close(fd)
            raise
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """fsync the folder so the rename itself survives a power cut (where the platform allows it)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    with contextlib.suppress(OSError):
        dir_fd = os.open(folder, os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
