"""`nnstudio predict` on N rows against the plain-torch floor: read the file, encode it, one bare forward.

The file: N rows × 8 numeric columns + one categorical column (4 levels), no target. The checkpoint: a
32-16 MLP for a 3-class target, trained briefly on a small sample with the same columns. Each case runs as
its own process from the command line (interpreter start and `import torch` are paid by both):

- ``nnstudio``: ``python -m nnstudio predict MODEL.pt DATA.csv --out OUT.csv`` (checks every column, encodes
  with the stored preprocessing, predicts in batches, writes the input columns + prediction + 3
  probabilities as CSV);
- ``plain``: polars reads the CSV (the reader nnstudio itself uses), one-hots and standardises with the same numbers,
  ``nn.Sequential`` loads the weights and runs one forward on the whole tensor, then softmax. It writes
  nothing: the floor a hand-written script cannot go under.

Rounds alternate the two cases; the ratio is paired by round. Peak memory is each process's VmHWM.

    python -m benchmarks.predict [--rows 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks.common import ROOT, paired_ratios, spread

NUMERIC = 8
LEVELS = ("red", "green", "blue", "grey")

PLAIN = r"""
import sys, torch, numpy as np, polars as pl
from torch import nn
model_path, data_path = sys.argv[1], sys.argv[2]
ckpt = torch.load(model_path, weights_only=True)
pre = ckpt["preprocessing"]
df = pl.read_csv(data_path)
cols = []
for f in pre["features"]:
    if f["kind"] == "categorical":
        cols.append(df.select([(pl.col(f["name"]) == c).cast(pl.Float32).alias(c) for c in f["categories"]]).to_numpy())
    else:
        cols.append(((df[f["name"]].to_numpy() - f["mean"]) / f["std"]).astype(np.float32)[:, None])
X = torch.from_numpy(np.concatenate(cols, axis=1))
state = {k.split(".", 1)[1]: v for k, v in ckpt["state_dict"].items()}
model = nn.Sequential(nn.Linear(X.shape[1], 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 3))
model.load_state_dict(state)
with torch.no_grad():
    probs = torch.softmax(model(X), dim=1)
print(len(probs))
"""


def write_data(path: str, rows: int, seed: int = 0, target: bool = False) -> None:
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    chunk = 250_000
    with open(path, "wb") as fh:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            columns = {f"x{i}": rng.normal(size=n).round(4) for i in range(NUMERIC)}
            columns["colour"] = rng.choice(LEVELS, size=n)
            if target:
                columns["label"] = np.where(columns["x0"] > 0.5, "high", np.where(columns["x1"] > 0, "mid", "low"))
            pl.DataFrame(columns).write_csv(fh, include_header=start == 0)


def make_checkpoint(folder: str) -> str:
    from nnstudio.core.model.checkpoint import save_checkpoint
    from nnstudio.core.data import load_dataset
    from nnstudio.core.training.engine import TrainConfig, Trainer
    from nnstudio.core.model.spec import build_model

    sample = os.path.join(folder, "sample.csv")
    write_data(sample, 3000, seed=1, target=True)
    data = load_dataset(sample, "label", seed=0)
    layers = [{"type": "Linear", "out_features": 32}, {"type": "ReLU"}, {"type": "Linear", "out_features": 16},
              {"type": "ReLU"}, {"type": "Linear", "out_features": "auto"}]
    model = build_model(layers, data.n_features, data.n_outputs, seed=0)
    Trainer(model, data, TrainConfig(epochs=2, batch_size=256, seed=0, threads=1)).fit()
    path = os.path.join(folder, "model.pt")
    save_checkpoint(path, model, data.preprocessor)
    return path


def _timed(args: list[str]) -> tuple[float, int]:
    """Wall seconds of one process and its peak resident KiB: VmHWM polled every 20 ms (monotonic, so the
    last reading is the peak to within the last 20 ms of the process)."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    peak = 0
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as fh:
                peak = max(peak, int(fh.read().split("VmHWM:")[1].split()[0]))
        except (OSError, IndexError, ValueError):
            pass
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    err = proc.stderr.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{args[:2]} failed: {err[-2000:]}")
    return seconds, peak


def measure(rows: int, repeats: int, log=print) -> dict:
    with tempfile.TemporaryDirectory(prefix="nnstudio-predict-bench-") as folder:
        model = make_checkpoint(folder)
        data = os.path.join(folder, "data.csv")
        write_data(data, rows)
        plain = os.path.join(folder, "plain.py")
        with open(plain, "w") as fh:
            fh.write(PLAIN)
        out = os.path.join(folder, "out.csv")
        cases = {"nnstudio": ["-m", "nnstudio", "predict", model, data, "--out", out], "plain": [plain, model, data]}
        times: dict[str, list[float]] = {k: [] for k in cases}
        peaks: dict[str, list[int]] = {k: [] for k in cases}
        for r in range(repeats):
            order = list(cases) if r % 2 == 0 else list(reversed(cases))
            for name in order:
                seconds, peak = _timed(cases[name])
                times[name].append(seconds)
                peaks[name].append(peak)
                log(f"round {r + 1}: {name} {seconds:.2f} s, peak {peak / 1024:.0f} MiB")
        size = os.path.getsize(data)
        out_size = os.path.getsize(out)
    ratio = paired_ratios(times["nnstudio"], times["plain"])
    return {"rows": rows, "file_mib": round(size / 2**20, 1), "output_mib": round(out_size / 2**20, 1),
            "seconds": {k: spread(v) for k, v in times.items()},
            "peak_mib": {k: spread([p / 1024 for p in v]) for k, v in peaks.items()},
            "ratio_vs_plain": spread(ratio), "target": 1.5}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    result = measure(args.rows, args.repeats, log=lambda m: print(m, file=sys.stderr))
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
