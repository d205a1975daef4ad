"""Scaling with torchrun + DDP: 1 process against 2 on the same run, and DDP's all-reduce per step.

Every case trains the same synthetic table (benchmarks.training's make_data: N × 32, 10 classes) with the
engine, from the same seed, global batch 512, in a fresh process group (torchrun, gloo) or a plain process:

- 1p×1t: one process, one thread (the reference of the scaling efficiency);
- 1p×2t: one process, two threads (what one process does with this 2-core machine);
- 2p×1t: `torchrun --nproc-per-node 2`, one thread each (core.distributed: DistributedSampler shards,
  per-rank batch 256, gradients averaged by DDP).

Throughput counts the epochs after the first (warm-up) as rows per second of the whole job. Scaling
efficiency is 2p×1t / (2 × 1p×1t). In the 2-process job each rank then times, interleaved, steps of the
DDP-wrapped model against steps of the bare model on the same per-rank batch: their difference is what
DDP adds per step (the gradient all-reduce and its hooks); a bare `all_reduce` of a buffer the size of
the gradients is timed too.

    python -m benchmarks.distributed [--models 32-16-10 ...] [--epochs 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmarks.common import ROOT, cores, machine, spread

BATCH = 512
#: Rows per model so that an epoch takes a fraction of a second to a second or two on 2 cores.
ROWS = {"32-16-10": 262144, "32-128-128-10": 65536, "32-1024-1024-10": 8192}
HIDDEN = {"32-16-10": [16], "32-128-128-10": [128, 128], "32-1024-1024-10": [1024, 1024]}
TIMEOUT_S = 300


# ---------------------------------------------------------------------------------------------- worker

def worker(model_name: str, epochs: int, threads: int, out: str, comm_steps: int, scale: int = 1) -> None:
    """One process of a case (plain, or one rank of a torchrun job)."""
    import torch

    from benchmarks.training import initial_state, make_data, prepared, spec_model
    from nnstudio.core import distributed
    from nnstudio.core.training.callbacks import HistoryRecorder
    from nnstudio.core.training.engine import TrainConfig, Trainer

    torch.set_num_threads(threads)
    hidden = HIDDEN[model_name]
    rows = ROWS[model_name] // scale
    X, y = make_data(rows)
    data = prepared(X, y)
    model = spec_model(hidden, initial_state(hidden))
    rec = HistoryRecorder()
    trainer = Trainer(model, data, TrainConfig(epochs=epochs, batch_size=BATCH, device="cpu", threads=threads,
                                               seed=0), [rec])
    ctx = None
    if distributed.launched():
        ctx = distributed.init("cpu")
        trainer.strategy = distributed.DDPStrategy(ctx)
    trainer.fit()
    timed = rec.epochs[1:] if len(rec.epochs) > 1 else rec.epochs
    seconds = sum(e.seconds for e in timed)
    result: dict[str, Any] = {"rows_per_s": len(timed) * rows / seconds,
                              "epoch_s": [e.seconds for e in rec.epochs], "threads": torch.get_num_threads()}
    if ctx is not None:
        result |= ddp_step_cost(trainer, model, X, comm_steps)
        if ctx.rank == 0:
            with open(out, "w") as fh:
                json.dump(result, fh)
        distributed.shutdown()
    else:
        with open(out, "w") as fh:
            json.dump(result, fh)


def ddp_step_cost(trainer, model, X, steps: int) -> dict[str, float]:
    """Per-rank step time with DDP against without it, interleaved in blocks; and a bare all-reduce."""
    import torch
    import torch.distributed as dist

    ddp = trainer.strategy.wrap(model)
    per_rank = BATCH // 2
    xb = X[:per_rank]
    yb = torch.zeros(per_rank, dtype=torch.long)
    opt = torch.optim.SGD(model.parameters(), lr=1e-6)

    def block(net) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(net(xb), yb).backward()
            opt.step()
        return (time.perf_counter() - start) / steps

    bare, wrapped = [], []
    for r in range(5):
        for net, box in ((model, bare), (ddp, wrapped)) if r % 2 == 0 else ((ddp, wrapped), (model, bare)):
            dist.barrier()
            box.append(block(net))
    grads = torch.zeros(sum(p.numel() for p in model.parameters()))
    reduce = []
    for _ in range(5):
        dist.barrier()
        start = time.perf_counter()
        for _ in range(steps):
            dist.all_reduce(grads)
        reduce.append((time.perf_counter() - start) / steps)
    step_bare, step_ddp = spread(bare)["median"], spread(wrapped)["median"]
    return {"step_bare_ms": 1e3 * step_bare, "step_ddp_ms": 1e3 * step_ddp, "ddp_extra_ms": 1e3 * (step_ddp - step_bare),
            "allreduce_ms": 1e3 * spread(reduce)["median"], "params": grads.numel()}


# ---------------------------------------------------------------------------------------------- driver

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_case(model_name: str, procs: int, threads: int, epochs: int, comm_steps: int, scale: int = 1) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        args = ["-m", "benchmarks.distributed", "--worker", "--models", model_name, "--epochs", str(epochs),
                "--threads", str(threads), "--out", out, "--comm-steps", str(comm_steps), "--scale", str(scale)]
        if procs > 1:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(procs),
                   "--master-addr", "127.0.0.1", "--master-port", str(_free_port()), *args]
        else:
            cmd = [sys.executable, *args]
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
        if proc.returncode != 0:
            return {"error": proc.stderr[-2000:]}
        with open(out) as fh:
            result = json.load(fh)
        result["wall_s"] = time.perf_counter() - start
        return result


def main(argv=None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--comm-steps", type=int, default=20)
    parser.add_argument("--json", help="write the results here too")
    parser.add_argument("--tiny", action="store_true", help="1/32 of the rows, 2 epochs: seconds (CI)")
    parser.add_argument("--scale", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.models[0], args.epochs, args.threads, args.out, args.comm_steps, args.scale)
        return {}
    if args.tiny:
        args.scale, args.epochs, args.comm_steps = 32, 2, 3
    results: dict[str, Any] = {"machine": machine(), "batch": BATCH, "epochs": args.epochs, "cells": []}
    n = cores()
    print(f"{n} cores; global batch {BATCH}; epochs {args.epochs} (the first is warm-up)")
    print(f"{'model':<16} {'rows':>7} {'1p×1t':>10} {'1p×2t':>10} {'2p×1t':>10} {'2p/1p×2t':>9} {'eff.':>6} "
          f"{'step':>8} {'+DDP':>8} {'allreduce':>9}")
    for name in args.models:
        cell: dict[str, Any] = {"model": name, "rows": ROWS[name] // args.scale}
        for label, procs, threads in (("1p1t", 1, 1), ("1p2t", 1, min(2, n)), ("2p1t", 2, 1)):
            cell[label] = run_case(name, procs, threads, args.epochs, args.comm_steps, args.scale)
        if all("error" not in cell[k] for k in ("1p1t", "1p2t", "2p1t")):
            one, two_threads, two = (cell[k]["rows_per_s"] for k in ("1p1t", "1p2t", "2p1t"))
            cell["speedup_vs_1p2t"] = two / two_threads
            cell["efficiency"] = two / (2 * one)
            d = cell["2p1t"]
            print(f"{name:<16} {cell['rows']:>7} {one:>10,.0f} {two_threads:>10,.0f} {two:>10,.0f} "
                  f"{cell['speedup_vs_1p2t']:>9.2f} {cell['efficiency']:>6.0%} {d['step_bare_ms']:>6.2f}ms "
                  f"{d['ddp_extra_ms']:>6.2f}ms {d['allreduce_ms']:>7.2f}ms")
        else:
            print(f"{name:<16} failed: " + " | ".join(cell[k].get("error", "")[-300:] for k in ("1p1t", "1p2t", "2p1t")))
        results["cells"].append(cell)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    return results


if __name__ == "__main__":
    main()
