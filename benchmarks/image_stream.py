"""Images streamed from disk (issue 21): a dataset too large for memory trains through `ImageStream` (a
`Dataset` + `DataLoader` with worker processes). Measured on 10,000 RGB 32×32 PNGs written by the benchmark,
the "Small CNN" preset, batch 128, one epoch per case, cases interleaved over rounds (ratios within a round):

- in memory: the dataset decoded once into one uint8 tensor (the path for what fits);
- streamed, `workers` = 2, 1 and 0 (0 decodes in the training thread);
- the textbook loop: the course notes' per-file `Dataset` (Pillow every `__getitem__`) + `DataLoader`, no workers.

Each case reports training images/s; each streamed case also its ratio to the textbook loop and to the
in-memory run. Peak memory: a child process per storage mode loads the same files resized to 96×96 (270 MiB decoded; split
0.2/0/0.8, so one training epoch is 2,000 images) and trains one epoch, its max RSS less the
same child's RSS after imports (VmHWM, reset after the imports through /proc/self/clear_refs).

    python -m benchmarks.image_stream [ROUNDS]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from benchmarks.common import loadavg, paired_ratios, spread

N, SIZE, BATCH = 10_000, 32, 128


def write_pngs(root: Path, n: int = N, size: int = SIZE) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (10, size, size, 3), dtype=np.uint8)
    for k in range(10):
        (root / str(k)).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        noise = rng.integers(0, 32, (size, size, 3), dtype=np.uint8)
        Image.fromarray(base[i % 10] // 2 + noise).save(root / str(i % 10) / f"{i:05d}.png", compress_level=1)
    return root


def _model(data):
    from nnstudio.core.model.spec import PRESETS, build_model

    return build_model(PRESETS["Small CNN"], data.input_shape, data.n_outputs, seed=0,
                       normalization=data.normalization)


def engine_epoch(data) -> float:
    """One epoch of the engine (no validation split: `data.val` emptied) → training images/s."""
    from nnstudio.core.training.engine import TrainConfig, Trainer

    cfg = TrainConfig(epochs=1, batch_size=BATCH, device="cpu", seed=0, threads=1)
    trainer = Trainer(_model(data), data, cfg)
    start = time.perf_counter()
    trainer.fit()
    return len(data.train) / (time.perf_counter() - start)


def textbook_epoch(data, root: Path) -> float:
    from nnstudio.core.data.image_stream import ImageFileDataset

    files = [root / f for f in data.report["files"]["train"]]
    ds = ImageFileDataset(files, data.train.y.tolist(), data.preprocessor.channels,
                          (data.preprocessor.height, data.preprocessor.width))
    loader = torch.utils.data.DataLoader(ds, batch_size=BATCH, shuffle=True)
    model = _model(data)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for xb, yb in loader:
        opt.zero_grad()
        loss_fn(model(xb), yb).backward()
        opt.step()
    return len(ds) / (time.perf_counter() - start)


PEAK = """
import sys, json
from nnstudio.core.data.images import load_images
from nnstudio.core.training.engine import TrainConfig, Trainer
from nnstudio.core.model.spec import PRESETS, build_model
def rss_kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])
open("/proc/self/clear_refs", "w").write("5")  # the peak so far (imports) forgotten: VmHWM restarts from now
base = rss_kib("VmRSS")
data = load_images(sys.argv[1], image_size=[96, 96], split=(0.2, 0.0, 0.8), stream=sys.argv[2] == "stream", workers=2)
model = build_model(PRESETS["Small CNN"], data.input_shape, data.n_outputs, seed=0, normalization=data.normalization)
Trainer(model, data, TrainConfig(epochs=1, batch_size=128, device="cpu", threads=1)).fit()
peak = rss_kib("VmHWM")
print(json.dumps({"mib": (peak - base) / 1024, "decoded_mib": data.report["decoded_bytes"] / 2**20}))
"""


def peak_mib(root: Path, mode: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", PEAK, str(root), mode], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(rounds: int = 3) -> dict[str, object]:
    from nnstudio.core.data.images import load_images

    torch.set_num_threads(1)
    start_load = loadavg()
    with tempfile.TemporaryDirectory() as t:
        root = write_pngs(Path(t) / "png10k")
        t0 = time.perf_counter()
        memory = load_images(root, split=(0.9, 0.0, 0.1))
        decode_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        streams = {w: load_images(root, split=(0.9, 0.0, 0.1), stream=True, workers=w) for w in (2, 1, 0)}
        check_s = (time.perf_counter() - t0) / 3
        cases = {"in memory": lambda: engine_epoch(memory), "textbook": lambda: textbook_epoch(memory, root),
                 **{f"streamed, {w} workers": (lambda w=w: engine_epoch(streams[w])) for w in streams}}
        rates: dict[str, list[float]] = {k: [] for k in cases}
        names = list(cases)
        for r in range(rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                rates[name].append(cases[name]())
        peaks = {mode: peak_mib(root, mode) for mode in ("memory", "stream")}
    out = {"images": N, "size": SIZE, "batch": BATCH, "rounds": rounds, "load_average": [start_load, loadavg()],
           "decode_into_memory_s": decode_s, "stream_open_check_s": check_s,
           "images_per_s": {k: spread(v) for k, v in rates.items()},
           "over_textbook": {k: spread(paired_ratios(v, rates["textbook"])) for k, v in rates.items()},
           "over_in_memory": {k: spread(paired_ratios(v, rates["in memory"])) for k, v in rates.items()},
           "peak_rss_over_imports_mib": peaks}
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
