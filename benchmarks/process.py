"""Whole-process speed of the command line (issue 23): wall clock from spawning the process to its exit.

Cases, each a fresh interpreter, interleaved over rounds (the order rotates each round); ratios are taken
within a round, so a machine that gets busier moves both sides together:

- `nnstudio --version`, `nnstudio --help` (target ≤ 0.3 s, no torch import);
- `nnstudio train` on 100,000 × 20 rows, 5 classes, a 20-64-64-5 MLP, 10 epochs, batch 200, against
  scikit-learn's whole process doing the same job (`python -c`: read the CSV, SimpleImputer + StandardScaler +
  OneHotEncoder in a ColumnTransformer, MLPClassifier(64, 64), 10 epochs of Adam, batch 200); skipped
  when scikit-learn is not installed (it is not a dependency);
- `nnstudio train` on resources/samples/penguins.csv (344 rows; target ≤ 1.5 s on an idle 2-core machine),
  against `python -c 'import torch'`, the floor of any process that trains.

    python -m benchmarks.process [ROUNDS]

The machine's load average (os.getloadavg) is printed at the start and at the end.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, loadavg

ROWS, FEATURES, CLASSES, EPOCHS, BATCH = 100_000, 20, 5, 10, 200
LAYERS = ('[{type = "Linear", out_features = 64}, {type = "ReLU"}, {type = "Linear", out_features = 64}, '
          '{type = "ReLU"}, {type = "Linear", out_features = "auto"}]')

SKLEARN = f"""
import sys, warnings
import time, polars as pl
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
df = pl.read_csv(sys.argv[1])
y = df["y"].to_numpy(); X = df.drop("y")  # scikit-learn takes a polars frame as it is
num = [c for c in X.columns if c != "cat"]
pre = ColumnTransformer([("num", make_pipeline(SimpleImputer(), StandardScaler()), num),
                         ("cat", OneHotEncoder(handle_unknown="ignore"), ["cat"])])
warnings.simplefilter("ignore", ConvergenceWarning)
clf = make_pipeline(pre, MLPClassifier((64, 64), max_iter={EPOCHS}, batch_size={BATCH}, random_state=0))
t = time.perf_counter(); clf.fit(X, y); print("fit", time.perf_counter() - t)
"""


def write_job(folder: Path) -> tuple[Path, Path]:
    """The issue's table (19 numeric columns with a few empty cells, one categorical, a 5-class target) and
    the two run configs."""
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((ROWS, FEATURES - 1)).astype(np.float32)
    cat = rng.integers(0, 4, ROWS)
    logits = x[:, :CLASSES] * 2 + cat[:, None] * 0.3 + rng.standard_normal((ROWS, CLASSES))
    y = logits.argmax(1)
    lines = [",".join([f"x{i}" for i in range(FEATURES - 1)] + ["cat", "y"])]
    for r in range(ROWS):
        cells = [f"{v:.4f}" for v in x[r]]
        if r % 97 == 0:
            cells[r % (FEATURES - 1)] = ""
        lines.append(",".join(cells + [f"c{cat[r]}", f"k{y[r]}"]))
    data = folder / "job.csv"
    data.write_text("\n".join(lines) + "\n")
    job = folder / "job.toml"
    job.write_text(f'[data]\npath = "job.csv"\ntarget = "y"\n[model]\nlayers = {LAYERS}\n'
                   f'[training]\nepochs = {EPOCHS}\nbatch_size = {BATCH}\n[output]\nlogdir = "runs"\n')
    penguins = folder / "penguins.toml"
    samples = Path(ROOT) / "resources" / "samples" / "penguins.csv"
    penguins.write_text(f'[data]\npath = "{samples.as_posix()}"\ntarget = "species"\n[model]\nlayers = {LAYERS}\n'
                        f'[training]\nepochs = 10\nbatch_size = 32\n[output]\nlogdir = "runs"\n')
    return job, penguins


def wall(cmd: list[str], cwd: Path) -> float:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    took = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr[-2000:]}")
    return took


def main(rounds: int = 3) -> None:
    try:
        import sklearn  # noqa: F401
        have_sklearn = True
    except ImportError:
        have_sklearn = False
    load_start = loadavg()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        job, penguins = write_job(folder)
        nn = [sys.executable, "-m", "nnstudio"]
        cases = {"version": nn + ["--version"], "help": nn + ["--help"],
                 "train (job)": nn + ["train", str(job), "-q"], "train (penguins)": nn + ["train", str(penguins), "-q"],
                 "python -c 'import torch'": [sys.executable, "-c", "import torch"]}
        if have_sklearn:
            cases["scikit-learn (job)"] = [sys.executable, "-c", SKLEARN, str(folder / "job.csv")]
        names = list(cases)
        times: dict[str, list[float]] = {n: [] for n in names}
        for r in range(rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                times[name].append(wall(cases[name], folder))
    load_end = loadavg()
    print(f"load average at start {load_start}, at end {load_end}; {rounds} interleaved rounds; "
          f"{os.cpu_count()} cores")
    for name in names:
        t = times[name]
        print(f"{name:<26} {statistics.median(t):6.2f} s  ({min(t):.2f}–{max(t):.2f})")
    if have_sklearn:
        ratios = [a / b for a, b in zip(times["train (job)"], times["scikit-learn (job)"])]
        print(f"nnstudio train / scikit-learn, same job, same round: {statistics.median(ratios):.2f}× "
              f"({min(ratios):.2f}–{max(ratios):.2f})")
    floor = [a / b for a, b in zip(times["train (penguins)"], times["python -c 'import torch'"])]
    print(f"nnstudio train (penguins) / import torch alone, same round: {statistics.median(floor):.2f}× "
          f"({min(floor):.2f}–{max(floor):.2f})")
    if not have_sklearn:
        print("scikit-learn is not installed: its case was skipped")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
