"""nnstudio: a desktop studio for building, training, inspecting and saving PyTorch networks."""

import os

__version__ = "0.1.0"

# polars' allocator (its own jemalloc, configured by _RJEM_MALLOC_CONF) keeps freed pages for ~10 s by default:
# reading a 150 MB CSV then left 315 MB resident for 96 MB of table, and CSV to tensors peaked at 6.7x the
# float32 data; returning them at once gives 2.9x (benchmarks/csv_load.py). Read when polars loads, which is
# after this (with the first table); a value the user set is kept.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")
