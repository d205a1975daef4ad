"""What last.pt/best.pt autosave costs a run, where epochs are shortest: the 32-16-10 MLP at batch 4096.

Two cases train the same epochs from the same weights, interleaved in rotated order each round:
`plain` (the engine, no callbacks) and `autosave` (the engine with `RunCheckpoints` writing the resumable
last.pt and best.pt into a temp run folder, with a validation split so best.pt changes). Reported: the
paired time ratio autosave/plain (1.01 = 1% slower); the share of the run time the callback itself
measured writing, in all and at epoch ends only (the throttled part, budget 1%); the fixed cost of the
two writes at the fit's end (last.pt and best.pt, which every run makes once).

    python -m benchmarks.autosave [--rows 65536] [--epochs 60] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch

from benchmarks.common import paired_ratios, rotate, spread
from benchmarks.training import CLASSES, FEATURES, initial_state, make_data, spec_model

HIDDEN = [16]
BATCH = 4096


def _data(rows: int):
    from nnstudio.core.data import PreparedData, Preprocessor, TensorSplit

    X, y = make_data(rows)
    n_val = rows // 8
    pre = Preprocessor("label", "multiclass",
                       [{"name": f"x{i}", "kind": "numeric", "mean": 0.0, "std": 1.0} for i in range(FEATURES)],
                       [str(c) for c in range(CLASSES)])
    return PreparedData(TensorSplit(X[n_val:], y[n_val:]), TensorSplit(X[:n_val], y[:n_val]),
                        TensorSplit(X[:0], y[:0]), pre)


def run_case(case: str, data, state, epochs: int) -> dict:
    from nnstudio.core.training.autosave import RunCheckpoints
    from nnstudio.core.model.checkpoint import build_checkpoint
    from nnstudio.core.training.engine import TrainConfig, Trainer

    model = spec_model(HIDDEN, state)
    cfg = TrainConfig(epochs=epochs, batch_size=BATCH, optimizer="Adam", lr=1e-3, seed=0, device="cpu")
    with tempfile.TemporaryDirectory(prefix="nnstudio-bench-autosave-") as tmp:
        callbacks = []
        trainer = None
        if case == "autosave":
            def build(which: str) -> dict:
                t = trainer
                return build_checkpoint(model, data.preprocessor, optimizer=t.optimizer, scheduler=t.scheduler,
                                        epoch=t.epoch, trainer_state=t.state_dict() if which == "last" else None)
            saver = RunCheckpoints(tmp, build)
            callbacks.append(saver)
        trainer = Trainer(model, data, cfg, callbacks)
        t0 = time.perf_counter()
        trainer.fit()
        seconds = time.perf_counter() - t0
        out = {"seconds": seconds}
        if case == "autosave":
            out.update(write_share=saver.spent / seconds, periodic_share=saver.periodic_spent / seconds,
                       writes=saver.writes, periodic_writes=saver.periodic_writes,
                       end_ms=(saver.spent - saver.periodic_spent) * 1e3, last_write_ms=saver.last_cost * 1e3)
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=65536)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    data, state = _data(args.rows), initial_state(HIDDEN)
    cases = ["plain", "autosave"]
    results: dict[str, list[dict]] = {c: [] for c in cases}
    run_case("autosave", data, state, 2)  # warm-up: imports, first optimizer
    for r in range(args.repeats):
        for case in rotate(cases, r):
            results[case].append(run_case(case, data, state, args.epochs))
    plain = [x["seconds"] for x in results["plain"]]
    saved = [x["seconds"] for x in results["autosave"]]
    summary = {
        "model": "32-16-10", "batch": BATCH, "rows": args.rows, "epochs": args.epochs, "threads": torch.get_num_threads(),
        "epoch_ms": spread([s / args.epochs * 1e3 for s in plain]),
        "time_ratio_autosave_over_plain": spread(paired_ratios(saved, plain)),
        "write_share": spread([x["write_share"] for x in results["autosave"]]),
        "periodic_share": spread([x["periodic_share"] for x in results["autosave"]]),
        "periodic_writes": spread([x["periodic_writes"] for x in results["autosave"]]),
        "end_writes_ms": spread([x["end_ms"] for x in results["autosave"]]),
        "writes": spread([x["writes"] for x in results["autosave"]]),
        "write_ms": spread([x["last_write_ms"] for x in results["autosave"]]),
    }
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
