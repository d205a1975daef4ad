"""CSV to training tensors: nnstudio's `read_table` + `prepare` against `polars.read_csv` of the same file (the
library nnstudio reads with, so the ratio is what nnstudio adds on top of parsing), and `pandas.read_csv`.

The file: N rows × 20 numeric columns + one categorical column (string class labels, the target), written
once to a temporary folder. Each case runs in its own subprocess, so its peak resident memory (the
high-water mark `VmHWM` of /proc/self/status, which sees arrow's and numpy's C allocations that tracemalloc
misses) can be taken against the RSS it had before reading. Rounds are interleaved; times are paired by round.

Not `ru_maxrss`: on Linux a child's mm starts as a copy of its parent's, and exec folds that copy's high-water
mark, the parent's RSS at fork time, into the process's `ru_maxrss`. Run from a suite that had grown to
700 MiB, every case reported a 700 MiB peak.

    python -m benchmarks.csv_load child CASE PATH   # one measurement, prints JSON (used by the suite)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Callable, Sequence

from benchmarks.common import ROOT, fmt_ratio, maxrss_bytes, paired_ratios, rotate, spread

NUMERIC = 20
LABELS = ("alpha", "beta", "gamma", "delta")
CASES = ("nnstudio", "polars", "pandas")


def write_csv(path: str, rows: int, seed: int = 0) -> int:
    """Write the table in chunks (bounded memory); return its size in bytes."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    with open(path, "wb") as fh:
        for start in range(0, rows, 250_000):
            n = min(250_000, rows - start)
            cols = {f"x{i}": np.round(rng.standard_normal(n) * (i + 1), 4) for i in range(NUMERIC)}
            cols["label"] = np.asarray(LABELS)[rng.integers(0, len(LABELS), n)]
            pl.DataFrame(cols).write_csv(fh, include_header=start == 0)
    return os.path.getsize(path)


def _rss_now() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        return maxrss_bytes(resource.getrusage(resource.RUSAGE_SELF))


def _peak_rss() -> int:
    """This process's own high-water mark (VmHWM); `ru_maxrss` where /proc is missing (it may include the parent's)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return maxrss_bytes(resource.getrusage(resource.RUSAGE_SELF))


def child(case: str, path: str) -> dict:
    """One measurement in a fresh process: libraries imported first, then the clock and the memory."""
    import gc

    if case == "nnstudio":  # first, as in the app: nnstudio sets polars' allocator up before polars loads
        from nnstudio.core import data as nd
    import numpy  # noqa: F401
    import polars as pl

    if case == "pandas":  # only its own case: nnstudio reads without pandas, and must not pay its import
        import pandas as pd
    _ = pl.DataFrame  # polars' lazy module loaded outside the clock, for every case alike
    gc.collect()
    before = _rss_now()
    out: dict = {"case": case}
    t0 = time.perf_counter()
    if case == "nnstudio":
        df = nd.read_table(path)
        t1 = time.perf_counter()
        prepared = nd.prepare(df, target="label")
        del df
        out["read_seconds"] = t1 - t0
        out["prepare_seconds"] = time.perf_counter() - t1
        out["tensor_bytes"] = sum(t.element_size() * t.numel() for s in (prepared.train, prepared.val, prepared.test)
                                  for t in (s.X, s.y))
        out["rows"] = sum(len(s) for s in (prepared.train, prepared.val, prepared.test))
    elif case == "polars":
        out["rows"] = pl.read_csv(path).height
    elif case == "pandas":
        out["rows"] = len(pd.read_csv(path))
    else:
        raise SystemExit(f"unknown case {case!r}")
    out["seconds"] = time.perf_counter() - t0
    out["rss_before"] = before
    out["peak_rss"] = _peak_rss()
    out["peak_delta"] = out["peak_rss"] - before
    return out


def _run_child(case: str, path: str, timeout: float) -> dict:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.csv_load", "child", case, path], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"csv case {case} failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(rows: int, repeats: int, cases: Sequence[str] = CASES, log: Callable[[str], None] = print,
            timeout: float = 900) -> dict:
    with tempfile.TemporaryDirectory(prefix="nnstudio-bench-csv-") as tmp:
        path = os.path.join(tmp, f"table_{rows}.csv")
        t0 = time.perf_counter()
        size = write_csv(path, rows)
        log(f"  wrote {rows:,} rows × {NUMERIC + 1} columns ({size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.1f}s")
        runs: dict[str, list[dict]] = {c: [] for c in cases}
        for r in range(repeats):
            for case in rotate(cases, r):
                runs[case].append(_run_child(case, path, timeout))
    float32_bytes = rows * (NUMERIC + 1) * 4
    seconds = {c: [x["seconds"] for x in v] for c, v in runs.items()}
    out: dict = {
        "rows": rows, "columns": f"{NUMERIC} numeric + 1 categorical (target)", "file_bytes": size,
        "float32_bytes": float32_bytes, "repeats": repeats,
        "seconds": {c: spread(v) for c, v in seconds.items()},
        "peak_rss_delta_bytes": {c: spread([x["peak_delta"] for x in v]) for c, v in runs.items()},
        "peak_vs_float32": {c: spread([x["peak_delta"] / float32_bytes for x in v]) for c, v in runs.items()},
        "runs": runs,
    }
    if "nnstudio" in runs:
        out["nnstudio_read_seconds"] = spread([x["read_seconds"] for x in runs["nnstudio"]])
        out["nnstudio_prepare_seconds"] = spread([x["prepare_seconds"] for x in runs["nnstudio"]])
        for ref in ("polars", "pandas"):
            if ref in runs:
                out[f"nnstudio_vs_{ref}"] = spread(paired_ratios(seconds["nnstudio"], seconds[ref]))
    log("  " + "  ".join(f"{c} {out['seconds'][c]['median']:.2f}s peak {out['peak_vs_float32'][c]['median']:.2f}× f32"
                         for c in cases)
        + (f"  nnstudio/polars time {fmt_ratio(out.get('nnstudio_vs_polars'))}" if "nnstudio_vs_polars" in out else ""))
    return out


def targets(section: dict) -> list[dict]:
    out = []
    if "nnstudio_vs_polars" in section:
        s = section["nnstudio_vs_polars"]
        out.append({"target": "CSV to tensors ≤ 1.1× polars.read_csv", "where": f"{section['rows']:,} rows",
                    "median": s["median"], "min": s["min"], "max": s["max"], "need": 1.1, "met": s["median"] <= 1.1,
                    "lower_is_better": True})
    if "nnstudio" in section.get("peak_vs_float32", {}):
        s = section["peak_vs_float32"]["nnstudio"]
        out.append({"target": "CSV to tensors peak memory ≤ 3× float32 data", "where": f"{section['rows']:,} rows",
                    "median": s["median"], "min": s["min"], "max": s["max"], "need": 3.0, "met": s["median"] <= 3.0,
                    "lower_is_better": True})
    return out


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "child":
        print(json.dumps(child(sys.argv[2], sys.argv[3])))
    else:
        rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
        print(json.dumps(measure(rows, 3), indent=1, default=str)[:4000])
