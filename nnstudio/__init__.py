"""nnstudio: a desktop studio for building, training, inspecting and saving PyTorch networks."""

import os

__version__ = "0.1.0"

# polars' allocator (its own jemalloc, configured by _RJEM_MALLOC_CONF when polars is imported) keeps freed pages
# 0.5-1 s by polars' default, longer than a table takes to read: reading a 150 MB CSV left 315 MB resident for 96 MB
# of table, and CSV to tensors peaked at 6.7x the float32 data; returning them at once gives 2.9x
# (benchmarks/csv_load.py). Appended (later keys win), so polars' default, inherited from a parent process that
# imported polars, is overridden; a decay the user chose is kept.
_POLARS_DEFAULT_CONF = "dirty_decay_ms:500,muzzy_decay_ms:1000"
_conf = os.environ.get("_RJEM_MALLOC_CONF", "")
_user = _conf[len(_POLARS_DEFAULT_CONF):] if _conf.startswith(_POLARS_DEFAULT_CONF) else _conf
if "decay_ms" not in _user:
    os.environ["_RJEM_MALLOC_CONF"] = ",".join(filter(None, [_conf, "dirty_decay_ms:0,muzzy_decay_ms:0"]))
del _conf, _user
