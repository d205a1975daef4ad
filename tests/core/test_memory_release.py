"""polars' allocator gives freed memory back at once in nnstudio's process, so a table read leaves no dead pages.

By default polars' jemalloc keeps freed pages ~10 s: CSV to tensors then peaked at 6.7x the float32 data
(1M rows), 2.9x with the pages returned. Measured as each child's own high-water mark (benchmarks.csv_load).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from benchmarks.common import ROOT
from benchmarks.csv_load import write_csv


def _peak(path, env_conf: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    if env_conf is not None:
        env["_RJEM_MALLOC_CONF"] = env_conf
    proc = subprocess.run([sys.executable, "-m", "benchmarks.csv_load", "child", "nnstudio", str(path)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["rows"] == 200_000
    return out["peak_delta"]


@pytest.mark.parametrize("given, expected", [
    (None, "dirty_decay_ms:0,muzzy_decay_ms:0"),
    # what a parent process that imported polars passes on: polars' own default, overridden
    ("dirty_decay_ms:500,muzzy_decay_ms:1000", "dirty_decay_ms:500,muzzy_decay_ms:1000,dirty_decay_ms:0,muzzy_decay_ms:0"),
    ("narenas:2", "narenas:2,dirty_decay_ms:0,muzzy_decay_ms:0"),
    ("dirty_decay_ms:10000", "dirty_decay_ms:10000"),  # the user's own decay is kept
])
def test_importing_nnstudio_sets_the_allocator_up_and_keeps_a_users_decay(given, expected):
    script = "import os, nnstudio; print(os.environ['_RJEM_MALLOC_CONF'])"
    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    if given is not None:
        env["_RJEM_MALLOC_CONF"] = given
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == expected, proc.stderr[-2000:]


def test_csv_to_tensors_peaks_far_lower_than_with_freed_pages_kept(tmp_path):
    path = tmp_path / "t.csv"
    write_csv(str(path), 200_000)
    returned = _peak(path, None)
    inherited = _peak(path, "dirty_decay_ms:500,muzzy_decay_ms:1000")  # from a parent that imported polars
    kept = _peak(path, "dirty_decay_ms:10000,muzzy_decay_ms:10000")  # jemalloc's defaults
    assert returned < 0.75 * kept, (returned >> 20, kept >> 20)
    assert inherited < 0.75 * kept, (inherited >> 20, kept >> 20)
