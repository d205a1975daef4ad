"""The cost of measuring the gradient norm per epoch (core.training.engine.GRAD_NORM_EVERY), on the tiny MLP at batch 4096.

The engine measures the total gradient norm on every n-th step when it is not clipping. Three cases train
the same epochs from the same weights, interleaved in a rotated order each round: off (n = 0), the
default n, and every step (n = 1); each is divided by "off" of the same round (paired ratios).

    python -m benchmarks.health [--rounds 7] [--epochs 20]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from benchmarks.common import paired_ratios, rotate, spread
from benchmarks.training import CLASSES, FEATURES, initial_state, layer_spec, make_data, prepared, spec_model

ROWS, BATCH, HIDDEN = 131072, 4096, [16]


def fit_seconds(data, state, every: int, epochs: int) -> float:
    from nnstudio.core.training.engine import TrainConfig, Trainer

    model = spec_model(HIDDEN, state)
    trainer = Trainer(model, data, TrainConfig(epochs=epochs, batch_size=BATCH, device="cpu", threads=1, seed=0))
    trainer.grad_norm_every = every
    start = time.process_time()  # CPU time of this one-thread process: other sessions' load on the shared
    trainer.fit()                # machine moves it far less than wall time
    return time.process_time() - start


def norm_call_seconds(state, calls: int = 2000) -> float:
    """One `grad_norm` of the tiny MLP's gradients after a real backward at batch 4096, median of batches of calls."""
    from nnstudio.core.training.engine import grad_norm

    model = spec_model(HIDDEN, state)
    X, y = make_data(BATCH, seed=1)
    torch.nn.functional.cross_entropy(model(X), y).backward()
    params = list(model.parameters())
    samples = []
    for _ in range(20):
        start = time.perf_counter()
        for _ in range(calls // 20):
            grad_norm(params)
        samples.append((time.perf_counter() - start) / (calls // 20))
    return spread(samples)["median"]


def main(argv=None) -> dict:
    from nnstudio.core.training.engine import GRAD_NORM_EVERY

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args(argv)
    X, y = make_data(ROWS)
    data = prepared(X, y)
    state = initial_state(HIDDEN)
    cases = {"off": 0, f"every_{GRAD_NORM_EVERY}": GRAD_NORM_EVERY, "every_step": 1}
    fit_seconds(data, state, 0, 1)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in cases}
    for r in range(args.rounds):
        for name in rotate(list(cases), r):
            times[name].append(fit_seconds(data, state, cases[name], args.epochs))
    out = {"model": "32-16-10", "batch": BATCH, "rows": ROWS, "epochs": args.epochs, "threads": 1,
           "seconds": {k: spread(v) for k, v in times.items()},
           "cost_vs_off": {k: spread([r - 1 for r in paired_ratios(v, times["off"])]) for k, v in times.items()
                           if k != "off"}}
    per_norm = norm_call_seconds(state)
    per_step = out["seconds"]["off"]["median"] / (args.epochs * ROWS / BATCH)
    out["norm_call_us"] = per_norm * 1e6
    out["step_us"] = per_step * 1e6
    out["derived_cost"] = {name: per_norm / (every * per_step) for name, every in cases.items() if every}
    print(f"one grad_norm: {per_norm * 1e6:.1f} µs; one step (off): {per_step * 1e6:.0f} µs; derived cost: "
          + ", ".join(f"{k} {100 * v:.2f}%" for k, v in out["derived_cost"].items()))
    for name, s in out["cost_vs_off"].items():
        print(f"{name:>12}: {100 * s['median']:+.2f}% time vs off (min {100 * s['min']:+.2f}%, "
              f"max {100 * s['max']:+.2f}%, {s['n']} rounds)")
    print(json.dumps(out))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh)
    return out


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
