"""One thread or all cores? The data behind `nnstudio.core.training.engine.choose_threads`.

For a grid of MLPs and batch sizes, fits the engine with `threads=1` and with `threads=<cores>` on the same
data, interleaved over rounds, and prints the median speed ratio (1 thread over all cores; above 1 means one
thread is faster) next to the work per step that `choose_threads` looks at (batch × Σ in·out of the Linear
layers) and what it picks. Each fit is about `--steps` steps long.

    python -m benchmarks.threads [--steps 60] [--repeats 3] [--json out.json]

The answer depends on how busy the machine is: on a shared machine, other processes take the cores that a
second OpenMP thread waits for at every parallel region. The load average is printed with every row.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "benchmarks"

import torch  # noqa: E402

from benchmarks.common import cores, loadavg, paired_ratios, rotate, spread  # noqa: E402
from benchmarks.training import DEFAULT_THREADS, initial_state, make_data, run_engine, spec_model  # noqa: E402

GRID_MODELS = {"32-16-10": [16], "32-64-10": [64], "32-128-128-10": [128, 128], "32-256-256-10": [256, 256],
               "32-512-512-10": [512, 512], "32-1024-1024-10": [1024, 1024]}
GRID_BATCHES = (32, 64, 128, 256, 512, 1024, 4096)


def work(hidden, batch: int) -> int:
    dims = [32, *hidden, 10]
    return batch * sum(a * b for a, b in zip(dims[:-1], dims[1:]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default=",".join(GRID_MODELS))
    parser.add_argument("--batches", default=",".join(map(str, GRID_BATCHES)))
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    from nnstudio.core.training.engine import choose_threads

    n = cores()
    rows_max = max(int(b) for b in args.batches.split(",")) * args.steps
    X, y = make_data(min(rows_max, 400_000))
    out = []
    print(f"{'model':>16} {'batch':>5} {'work/step':>11} {'picks':>5} {'1 thread / ' + str(n):>14}  load")
    for name in args.models.split(","):
        hidden = GRID_MODELS[name]
        state = initial_state(hidden)
        for batch in (int(b) for b in args.batches.split(",")):
            rows = batch * args.steps
            Xs, ys = X[:rows], y[:rows]
            run_engine(Xs[:batch * 4], ys[:batch * 4], hidden, state, batch, 1, threads=1)
            run_engine(Xs[:batch * 4], ys[:batch * 4], hidden, state, batch, 1, threads=n)
            rates: dict[int, list[float]] = {1: [], n: []}
            for r in range(args.repeats):
                for t in rotate([1, n], r):
                    t0 = time.perf_counter()
                    run_engine(Xs, ys, hidden, state, batch, 1, threads=t)
                    rates[t].append(rows / (time.perf_counter() - t0))
            ratio = spread(paired_ratios(rates[1], rates[n]))
            picks = choose_threads(spec_model(hidden, state), batch, torch.device("cpu"))
            row = {"model": name, "batch": batch, "work": work(hidden, batch), "picks": picks, "one_vs_all": ratio,
                   "samples_per_s": {str(k): spread(v) for k, v in rates.items()}, "loadavg": loadavg()}
            out.append(row)
            print(f"{name:>16} {batch:>5} {row['work']:>11,} {picks:>5} "
                  f"{ratio['median']:>6.2f} ({ratio['min']:.2f}–{ratio['max']:.2f})  {row['loadavg']}", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"cores": n, "default_threads": DEFAULT_THREADS, "rows": out}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
