"""Images (issue 21): accuracy of the Small CNN on the digits sample, training speed against the textbook
per-file Pillow loop and a raw loop over pre-decoded tensors, decode time and peak memory of 10,000 PNGs.

Two speed cases: the digits sample (8×8 grey, 20 steps an epoch: overhead-bound) and the 10,000 32×32 RGB
PNGs the decode case writes (7,000 training images). In each, the engine and two raw loops (torch.optim's fused
Adam, the engine's own; and its default) run ROUNDS (BIG_ROUNDS) times after a short warm-up, in rotated
order, and the ratios are taken within a round, so a machine that gets busier between rounds moves both sides
together.

Run on its own: `python -m benchmarks.images` (about 1.5 minutes on 2 cores). All ratios are measured in this
one process, on the same split and the same CNN.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch
from torch import nn

from benchmarks.common import fmt_ratio, loadavg, paired_ratios, rotate, spread
from nnstudio.core.config import RunConfig
from nnstudio.core.data.images import ImageFileDataset, load_images
from nnstudio.core.model.spec import PRESETS, build_model
from nnstudio.core.run import TrainingRun
from nnstudio.core.training.engine import TrainConfig, Trainer
from nnstudio.resources import resource_path

EPOCHS = 30
BATCH = 64
LR = 1e-3
ROUNDS = 5  # digits: 1.5 s a loop
BIG_ROUNDS = 3
BIG_EPOCHS = 1  # the 32×32 RGB case: 7,000 training images, 110 steps of ~25-45 ms, far from overhead-bound


def _config(root: Path, out: Path) -> RunConfig:
    return RunConfig.from_dict({
        "data": {"path": str(root), "split": [0.7, 0.15, 0.15], "seed": 0},
        "model": {"layers": PRESETS["Small CNN"]},
        "training": {"epochs": EPOCHS, "batch_size": BATCH, "optimizer": {"name": "Adam", "lr": LR}, "seed": 0,
                     "device": "cpu", "threads": 1},
        "output": {"checkpoint": str(out / "m.pt"), "logdir": str(out / "runs")}}, base_dir=out)


def raw_loop(data, epochs: int = EPOCHS, fused: bool = True) -> tuple[float, float, float]:
    """The same CNN as a raw PyTorch loop over pre-decoded, pre-normalised float tensors: (test acc, images/s,
    images per CPU second of this thread).

    Like the engine's epoch, each epoch ends with a validation pass (accuracy only: less than the engine's loss,
    accuracy and F1). `fused=True` is torch.optim's fastest CPU Adam, the one the engine steps (the stricter
    reference); `fused=False` is what `torch.optim.Adam(params)` gives on the CPU, a Python loop over parameters.
    """
    torch.manual_seed(0)
    model = build_model(PRESETS["Small CNN"], data.input_shape, data.n_outputs, seed=0,
                        normalization=data.normalization)
    layers = model.layers  # the normalisation is done once up front here, as a course loop does
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in data.normalization)
    X = (data.train.X.float() / 255 - mean) / std
    y = data.train.y
    opt = torch.optim.Adam(layers.parameters(), lr=LR, fused=fused or None)
    loss_fn = nn.CrossEntropyLoss()
    start, cpu = time.perf_counter(), time.thread_time()
    for _ in range(epochs):
        layers.train()
        order = torch.randperm(len(X))
        for i in range(0, len(X), BATCH):
            idx = order[i:i + BATCH]
            opt.zero_grad()
            loss_fn(layers(X[idx]), y[idx]).backward()
            opt.step()
        layers.eval()
        with torch.no_grad():
            (layers((data.val.X.float() / 255 - mean) / std).argmax(1) == data.val.y).float().mean().item()
    seconds, cpu = time.perf_counter() - start, time.thread_time() - cpu
    layers.eval()
    with torch.no_grad():
        Xt = (data.test.X.float() / 255 - mean) / std
        acc = float((layers(Xt).argmax(1) == data.test.y).float().mean())
    return acc, epochs * len(X) / seconds, epochs * len(X) / cpu


def engine_loop(data, epochs: int = EPOCHS) -> tuple[float, float, float]:
    """nnstudio's Trainer on the same split and CNN, no callbacks, timed around `fit()` (its set-up and each
    epoch's validation pass with loss, accuracy and F1 included): (validation accuracy, images/s, images per CPU
    second of this thread)."""
    model = build_model(PRESETS["Small CNN"], data.input_shape, data.n_outputs, seed=0,
                        normalization=data.normalization)
    cfg = TrainConfig(epochs=epochs, batch_size=BATCH, optimizer="Adam", lr=LR, seed=0, device="cpu", threads=1)
    trainer = Trainer(model, data, cfg)
    start, cpu = time.perf_counter(), time.thread_time()
    trainer.fit()
    seconds, cpu = time.perf_counter() - start, time.thread_time() - cpu
    n = epochs * len(data.train)
    return trainer.history[-1].metrics["accuracy"], n / seconds, n / cpu


def _head(data, n: int):
    """The first n training images (and as many validation ones) of `data`: a short warm-up at the same shapes."""
    from nnstudio.core.data import PreparedData, TensorSplit

    def cut(split):
        return TensorSplit(split.X[:n], split.y[:n])

    return PreparedData(cut(data.train), cut(data.val), cut(data.test), data.preprocessor, data.report)


def speed_rounds(data, epochs: int, rounds: int) -> dict[str, object]:
    """Engine and both raw loops, `rounds` times in rotated order; ratios are taken within each round.

    Two clocks: wall time, and the CPU time of this thread (one torch thread runs every kernel inline), which
    other processes on a shared machine disturb far less than they disturb the wall clock.
    """
    loops = {"engine": lambda: engine_loop(data, epochs), "raw_fused": lambda: raw_loop(data, epochs, True),
             "raw_default": lambda: raw_loop(data, epochs, False)}
    head = _head(data, 4 * BATCH)
    for warm in (lambda: engine_loop(head, 1), lambda: raw_loop(head, 1, True), lambda: raw_loop(head, 1, False)):
        warm()  # the first of each pays for oneDNN's kernels at these shapes and the allocator's first blocks
    wall: dict[str, list[float]] = {k: [] for k in loops}
    cpu: dict[str, list[float]] = {k: [] for k in loops}
    load = [loadavg()]
    for r in range(rounds):
        for name in rotate(list(loops), r):
            _, w, c = loops[name]()
            wall[name].append(w)
            cpu[name].append(c)
    load.append(loadavg())
    out: dict[str, object] = {"train": len(data.train), "val": len(data.val), "epochs": epochs, "rounds": rounds,
                              "loadavg": load}
    for clock, rates in (("wall", wall), ("cpu", cpu)):
        out |= {f"{k}_images_per_{clock}_s": spread(v) for k, v in rates.items()}
        for ref in ("raw_fused", "raw_default"):
            out[f"engine_over_{ref}_{clock}"] = spread(paired_ratios(rates["engine"], rates[ref]))
    return out


def textbook_loop(data, root: Path, epochs: int = 3) -> float:
    """The course notes' loop: a Dataset that opens and decodes each file with Pillow every epoch + DataLoader."""
    files = [root / f for f in data.report["files"]["train"]]
    ds = ImageFileDataset(files, data.train.y.tolist(), data.preprocessor.channels,
                          (data.preprocessor.height, data.preprocessor.width))
    loader = torch.utils.data.DataLoader(ds, batch_size=BATCH, shuffle=True)
    model = build_model(PRESETS["Small CNN"], data.input_shape, data.n_outputs, seed=0,
                        normalization=data.normalization)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
    return epochs * len(ds) / (time.perf_counter() - start)


def decode_memory(tmp: Path, n: int = 10_000, size: int = 32) -> tuple[object, dict[str, float]]:
    """Write n RGB PNGs (10 classes), then time `load_images` and its traced peak against the uint8 tensor;
    returns the loaded data too (the second speed case trains on it)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp / "png10k"
    for k in range(10):
        (root / str(k)).mkdir(parents=True)
    base = rng.integers(0, 256, (10, size, size, 3), dtype=np.uint8)
    for i in range(n):
        noise = rng.integers(0, 32, (size, size, 3), dtype=np.uint8)
        Image.fromarray(base[i % 10] // 2 + noise).save(root / str(i % 10) / f"{i:05d}.png", compress_level=1)
    tracemalloc.start()
    start = time.perf_counter()
    data = load_images(root)
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    decoded = data.report["decoded_bytes"]
    return data, {"images": n, "size": size, "decode_s": seconds, "images_per_s": n / seconds,
                  "decoded_mib": decoded / 2**20, "peak_mib": peak / 2**20, "peak_ratio": peak / decoded}


def main() -> dict[str, object]:
    # One thread for every loop (the engine's own choice for this CNN at batch 64): with two threads on
    # a shared 2-core machine the reference loops' speed swung 10× between runs.
    torch.set_num_threads(1)
    root = resource_path("samples", "digits")
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        cfg = _config(root, tmp)
        run = TrainingRun(cfg, tensorboard=False, checkpoint=False)
        data = run.data
        start = time.perf_counter()
        result = run.execute()
        wall = time.perf_counter() - start
        acc = result.test["accuracy"]
        plain_acc = raw_loop(data, fused=False)[0]
        digits = speed_rounds(data, EPOCHS, ROUNDS)
        engine_rate = digits["engine_images_per_wall_s"]["median"]
        book_rate = textbook_loop(data, root)
        big_data, mem = decode_memory(tmp)
        big = speed_rounds(big_data, BIG_EPOCHS, BIG_ROUNDS)
    out = {"digits": {"train": len(data.train), "test": len(data.test), "epochs": EPOCHS,
                      "engine_test_accuracy": acc, "plain_loop_test_accuracy": plain_acc, "engine_wall_s": wall,
                      "textbook_images_per_s": book_rate, "engine_over_textbook": engine_rate / book_rate, **digits},
           "rgb32": big, "decode": mem}
    print(json.dumps(out, indent=2))
    d = out["digits"]

    def ratios(case: dict) -> str:
        return ", ".join(f"{fmt_ratio(case[f'engine_over_raw_{ref}_{clock}'])} raw {ref} Adam ({clock})"
                         for ref in ("fused", "default") for clock in ("cpu", "wall"))

    print(f"digits: accuracy {acc:.4f} (target ≥ 0.975; plain loop {plain_acc:.4f}), engine {engine_rate:,.0f} img/s = "
          f"{d['engine_over_textbook']:.1f}× textbook; {ratios(d)}\n32×32 RGB: {ratios(big)}\ndecode of "
          f"{mem['images']:,} {mem['size']}×{mem['size']} PNGs {mem['decode_s']:.2f} s, peak {mem['peak_ratio']:.2f}× "
          f"the uint8 tensor; load {digits['loadavg']} {big['loadavg']}", file=sys.stderr)
    return out


if __name__ == "__main__":
    main()
