"""Sweeps on the digits table (sklearn's 8x8 digits, 64 features, 10 classes; resources/samples/digits.csv).

Figures: the best validation accuracy of a 20-trial TPE sweep over lr, width and dropout against the default
config's; the overhead per trial beyond its training time (asking, building the run, run folder, evaluation,
telling Optuna: the data is read once per process); the epochs a median pruner saves on the same sweep and
how far its best value moves. Run: `python -m benchmarks.sweep [--trials 20] [--epochs 8]`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine
from nnstudio.core.experiments import load_sweep
from nnstudio.core.experiments.study import cached_data, run_study
from nnstudio.core.run import TrainingRun
from nnstudio.resources import sample_dataset

CONFIG = """
[data]
path = '{data}'
split = [0.7, 0.15, 0.15]

[training]
epochs = {epochs}
device = "cpu"
threads = 1

[output]
logdir = 'runs'
name = 'digits'

[sweep]
trials = {trials}
metric = "val_accuracy"
pruner = "{pruner}"
study = "{pruner}"

[sweep.parameters]
"training.optimizer.lr" = {{low = 1e-4, high = 3e-2, log = true}}
"model.layers.0.out_features" = {{low = 16, high = 256, step = 16}}
"model.layers.2.out_features" = {{low = 16, high = 256, step = 16}}
"model.layers.1.type" = {{choices = ["ReLU", "Tanh"]}}
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=8)
    args = ap.parse_args()
    out: dict = {"machine": machine(), "trials": args.trials, "epochs": args.epochs}
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for pruner in ("none", "median"):
            path = Path(tmp, f"{pruner}.toml")
            path.write_text(CONFIG.format(data=sample_dataset("digits.csv"), epochs=args.epochs, trials=args.trials,
                                          pruner=pruner), encoding="utf-8")
            sweep = load_sweep(path)
            if pruner == "none":  # the default config on the same data, as the reference
                cfg = sweep.base
                cfg.output.name = "default"
                run = TrainingRun(cfg, data=cached_data(cfg), checkpoint=False)
                run.execute()
                out["default_val_accuracy"] = run.trainer.history[-1].metrics["accuracy"]
            start = time.perf_counter()
            outcomes = run_study(sweep)
            wall = time.perf_counter() - start
            done = [o for o in outcomes if o.value is not None]
            results[pruner] = {
                "best_val_accuracy": max(o.value for o in done),
                "epochs": sum(o.epochs for o in outcomes),
                "pruned": sum(o.state == "PRUNED" for o in outcomes),
                "wall_s": round(wall, 2),
                "overhead_per_trial_s": round(statistics.median(o.seconds - o.train_seconds for o in outcomes), 4),
                "overhead_max_s": round(max(o.seconds - o.train_seconds for o in outcomes[1:]), 4),
            }
        out["sweeps"] = results
        out["epochs_saved_by_pruning"] = round(1 - results["median"]["epochs"] / results["none"]["epochs"], 3)
        out["best_moved_by_pruning"] = round(results["none"]["best_val_accuracy"]
                                             - results["median"]["best_val_accuracy"], 4)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
