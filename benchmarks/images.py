"""Images (issue 21): accuracy of the Small CNN on the digits sample, training speed against the textbook
per-file Pillow loop and a raw loop over pre-decoded tensors, decode time and peak memory of 10,000 PNGs.

Run on its own: `python -m benchmarks.images` (about a minute on 2 cores). All ratios are measured in this
one process, one after another, on the same split and the same CNN.
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

from nnstudio.core.config import RunConfig
from nnstudio.core.data.images import ImageFileDataset, load_images
from nnstudio.core.model.spec import PRESETS, build_model
from nnstudio.core.run import TrainingRun
from nnstudio.resources import resource_path

EPOCHS = 30
BATCH = 64
LR = 1e-3


def _config(root: Path, out: Path) -> RunConfig:
    return RunConfig.from_dict({
        "data": {"path": str(root), "split": [0.7, 0.15, 0.15], "seed": 0},
        "model": {"layers": PRESETS["Small CNN"]},
        "training": {"epochs": EPOCHS, "batch_size": BATCH, "optimizer": {"name": "Adam", "lr": LR}, "seed": 0,
                     "device": "cpu", "threads": 1},
        "output": {"checkpoint": str(out / "m.pt"), "logdir": str(out / "runs")}}, base_dir=out)


def plain_loop(data, epochs: int = EPOCHS) -> tuple[float, float]:
    """The same CNN as a plain PyTorch loop over pre-decoded, pre-normalised float tensors: (test acc, images/s)."""
    torch.manual_seed(0)
    model = build_model(PRESETS["Small CNN"], data.input_shape, data.n_outputs, seed=0,
                        normalization=data.normalization)
    layers = model.layers  # the normalisation is done once up front here, as a course loop does
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in data.normalization)
    X = (data.train.X.float() / 255 - mean) / std
    y = data.train.y
    opt = torch.optim.Adam(layers.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for _ in range(epochs):
        layers.train()
        order = torch.randperm(len(X))
        for i in range(0, len(X), BATCH):
            idx = order[i:i + BATCH]
            opt.zero_grad()
            loss_fn(layers(X[idx]), y[idx]).backward()
            opt.step()
        layers.eval()  # a validation pass per epoch, as the engine's epoch time includes one
        with torch.no_grad():
            (layers((data.val.X.float() / 255 - mean) / std).argmax(1) == data.val.y).float().mean().item()
    seconds = time.perf_counter() - start
    layers.eval()
    with torch.no_grad():
        Xt = (data.test.X.float() / 255 - mean) / std
        acc = float((layers(Xt).argmax(1) == data.test.y).float().mean())
    return acc, epochs * len(X) / seconds


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


def decode_memory(tmp: Path, n: int = 10_000, size: int = 32) -> dict[str, float]:
    """Write n RGB PNGs (10 classes), then time `load_images` and its traced peak against the uint8 tensor."""
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
    return {"images": n, "size": size, "decode_s": seconds, "images_per_s": n / seconds,
            "decoded_mib": decoded / 2**20, "peak_mib": peak / 2**20, "peak_ratio": peak / decoded}


def main() -> dict[str, object]:
    # One thread for all three loops (the engine's own choice for this CNN at batch 64): with two threads on
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
        engine_seconds = sum(e.seconds for e in run.trainer.history)
        engine_rate = EPOCHS * len(data.train) / engine_seconds
        wall = time.perf_counter() - start
        acc = result.test["accuracy"]
        plain_acc, raw_rate = plain_loop(data)
        book_rate = textbook_loop(data, root)
        mem = decode_memory(tmp)
    out = {"digits": {"train": len(data.train), "test": len(data.test), "epochs": EPOCHS,
                      "engine_test_accuracy": acc, "plain_loop_test_accuracy": plain_acc,
                      "engine_images_per_s": engine_rate, "raw_loop_images_per_s": raw_rate,
                      "textbook_images_per_s": book_rate, "engine_over_textbook": engine_rate / book_rate,
                      "engine_over_raw": engine_rate / raw_rate, "engine_wall_s": wall},
           "decode": mem}
    print(json.dumps(out, indent=2))
    d = out["digits"]
    print(f"accuracy {acc:.4f} (target ≥ 0.975; plain loop {plain_acc:.4f}), engine {engine_rate:,.0f} img/s = "
          f"{d['engine_over_textbook']:.1f}× textbook, {d['engine_over_raw']:.2f}× raw; decode of {mem['images']:,} "
          f"{mem['size']}×{mem['size']} PNGs {mem['decode_s']:.2f} s, peak {mem['peak_ratio']:.2f}× the uint8 tensor",
          file=sys.stderr)
    return out


if __name__ == "__main__":
    main()
