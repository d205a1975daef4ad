"""What a pickle asks to import, read without running it (pickletools only walks the opcodes).

A refused checkpoint's message names the code it asked for: torch's weights-only unpickler stops at the
first opcode it does not know (protocol 4's FRAME, for one) before it reaches the global, so its own
error cannot say.
"""

from __future__ import annotations

import io
import pickletools
import zipfile
from pathlib import Path

_MAX_BYTES = 64 * 1024 * 1024  # a pickle of weights references its tensors; code sits in the pickle itself
_TENSOR_PLUMBING = ("torch.", "collections.OrderedDict", "_codecs.encode", "builtins.set", "builtins.frozenset",
                    "builtins.bytearray", "builtins.slice", "builtins.complex")


def _globals_in(data: bytes) -> list[str]:
    found: list[str] = []
    strings: list[str] = []
    stream = io.BytesIO(data)
    while stream.tell() < len(data):  # a legacy torch file is several pickles in a row
        try:
            for op, arg, _pos in pickletools.genops(stream):
                if op.name in ("GLOBAL", "INST"):
                    found.append(str(arg).replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.append(f"{strings[-2]}.{strings[-1]}")
                elif isinstance(arg, str):
                    strings.append(arg)
        except Exception:  # noqa: BLE001 - garbage after the pickles (tensor bytes) or a damaged file ends the walk
            break
    return found


def code_globals(path: Path) -> list[str]:
    """Names of functions or classes (beyond torch's own tensor plumbing) the pickle in `path` would import."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                pkl = [n for n in zf.namelist() if n.endswith("data.pkl")]
                data = zf.read(pkl[0])[:_MAX_BYTES] if pkl else b""
        else:
            with open(path, "rb") as fh:
                data = fh.read(_MAX_BYTES)
    except (OSError, zipfile.BadZipFile, KeyError):
        return []
    names = []
    for name in _globals_in(data):
        if not name.startswith(_TENSOR_PLUMBING) and name not in names:
            names.append(name)
    return names
