"""The course notes' CNN script for an image run: a `Dataset` over the image files with Pillow, an `nn.Module`
with conv1, pool1, fc1 ..., the loop, and a checkpoint in nnstudio's format (so the window opens it).

It runs with torch, numpy and Pillow only. It repeats nnstudio's data decisions (sorted class folders, the same
stratified seeded split, statistics from the training split, RGBA on white, the most common size) but not its
batch order bit for bit.
"""

from __future__ import annotations

import pprint
from typing import Any

from nnstudio.core.model.spec import analyze, normalize_layer

_STEM = {"Linear": "fc", "Conv2d": "conv", "BatchNorm2d": "bn", "BatchNorm1d": "bn", "LayerNorm": "ln",
         "MaxPool2d": "pool", "AvgPool2d": "avgpool", "AdaptiveAvgPool2d": "gap", "Flatten": "flatten",
         "Dropout": "dropout", "Dropout2d": "dropout", "ReLU": "relu", "LeakyReLU": "leaky_relu", "GELU": "gelu",
         "SiLU": "silu", "Sigmoid": "sigmoid", "Tanh": "tanh"}


def _names(layers: list[dict[str, Any]]) -> list[str]:
    last = max((i for i, l in enumerate(layers) if l["type"] == "Linear"), default=-1)
    counts: dict[str, int] = {}
    out = []
    for i, layer in enumerate(layers):
        if i == last:
            out.append("out")
            continue
        stem = _STEM[layer["type"]]
        counts[stem] = counts.get(stem, 0) + 1
        out.append(f"{stem}{counts[stem]}")
    return out


def _module(layer: dict[str, Any], dims: tuple[int, ...]) -> str:
    t = layer["type"]
    if t == "Linear":
        out = "N_CLASSES" if layer["out_features"] == "auto" else layer["out_features"]
        return f"nn.Linear({dims[0]}, {out}" + (", bias=False)" if not layer["bias"] else ")")
    if t == "Conv2d":
        extra = "".join([f", stride={layer['stride']}" if layer["stride"] != 1 else "",
                         f", padding={layer['padding']}" if layer["padding"] else "",
                         ", bias=False" if not layer["bias"] else ""])
        return f"nn.Conv2d({dims[0]}, {layer['out_channels']}, kernel_size={layer['kernel_size']}{extra})"
    if t in ("BatchNorm1d", "BatchNorm2d"):
        return f"nn.{t}({dims[0]}, eps={layer['eps']}, momentum={layer['momentum']})"
    if t == "LayerNorm":
        return f"nn.LayerNorm({dims[0]}, eps={layer['eps']})"
    if t in ("MaxPool2d", "AvgPool2d"):
        stride = "" if layer["stride"] == "auto" else f", stride={layer['stride']}"
        pad = f", padding={layer['padding']}" if layer["padding"] else ""
        return f"nn.{t}(kernel_size={layer['kernel_size']}{stride}{pad})"
    if t == "AdaptiveAvgPool2d":
        return f"nn.AdaptiveAvgPool2d({layer['output_size']})"
    if t in ("Dropout", "Dropout2d"):
        return f"nn.{t}(p={layer['p']})"
    if t == "LeakyReLU":
        return f"nn.LeakyReLU({layer['negative_slope']})"
    return f"nn.{t}()"


def _workers(cfg: Any, data: Any) -> int:
    """The script's `num_workers`: the run's decoding processes when it streamed from disk, else 0 (the script
    decodes every epoch either way; workers pay off where decoding is the bottleneck)."""
    if data.report.get("storage") != "stream":
        return 0
    from nnstudio.core.data.image_stream import default_workers

    return default_workers() if cfg.data.workers in (None, "auto") else int(cfg.data.workers)


_READABLE = '''def readable(path):
    """Pillow reads its header: nnstudio skips (and lists) the files it cannot, so the split is the same."""
    try:
        with Image.open(path) as img:
            return img.size[0] > 0 and img.size[1] > 0
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return False


'''

_FOLDER_LIST = _READABLE + '''def list_images():
    files, labels = [], []
    for k, name in enumerate(CLASSES):
        for path in sorted((DATA / name).rglob("*")):
            if path.suffix.lower() in SUFFIXES and path.is_file() and readable(path):
                files.append(path)
                labels.append(k)
    return files, np.array(labels)
'''

_TABLE_LIST = '''def read_rows():
    """The table's rows as dicts (Parquet needs pandas with pyarrow; CSV and TSV only the standard library)."""
    if DATA.suffix.lower() in (".parquet", ".pq"):
        import pandas as pd

        frame = pd.read_parquet(DATA)
        return frame.astype(object).where(frame.notna(), None).to_dict("records")
    import csv

    with open(DATA, newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f, delimiter="\\t" if DATA.suffix.lower() == ".tsv" else ","))


def list_images():
    """The rows whose IMAGE_COLUMN names an image file that exists (relative to the table), in table order."""
    position = {{name: k for k, name in enumerate(CLASSES)}}
    files, labels = [], []
    for row in read_rows():
        name, label = row.get(IMAGE_COLUMN), row.get(LABEL_COLUMN)
        if name is None or str(name).strip() == "" or label is None or str(label) not in position:
            continue
        path = Path(str(name))
        path = path if path.is_absolute() else DATA.parent / path
        if path.suffix.lower() in SUFFIXES and path.is_file() and readable(path):
            files.append(path)
            labels.append(position[str(label)])
    return files, np.array(labels)
'''


def _list_images(cfg: Any) -> str:
    """How the script finds its images: the class folders, or the table's column of paths and its labels."""
    column = cfg.data.image_column
    if not column:
        return _FOLDER_LIST
    from nnstudio.core.data.image_table import default_label
    from nnstudio.core.data.read import read_table

    label = cfg.data.target or default_label(list(read_table(cfg.data_path).columns), column)
    return f"IMAGE_COLUMN = {column!r}  # the image paths, relative to the table\nLABEL_COLUMN = {label!r}\n\n\n" \
        + _READABLE + _TABLE_LIST.format()


def image_script(cfg: Any, data: Any, source: str = "the window") -> str:
    """The whole script for an image run config whose data `data` (`load_images`) has been read."""
    pre = data.preprocessor
    layers = [normalize_layer(l, i + 1) for i, l in enumerate(cfg.layers)]
    summary = analyze(layers, pre.input_shape, pre.n_outputs)
    names = _names(layers)
    dims: tuple[int, ...] = pre.input_shape
    lines = []
    for name, layer, row in zip(names, layers, summary.rows):
        lines.append(f"        self.{name} = {_module(layer, dims)}  # -> {row.out_shape}")
        dims = row.out_dims or dims
    t = cfg.training  # the script always uses Adam at the config's learning rate
    fr = list(cfg.data.split)
    column = cfg.data.image_column
    where = (f"the images listed in column '{column}' of {cfg.data_path}" if column
             else f"the image folder {cfg.data_path}")
    return f'''"""Train a CNN on {where} (exported by nnstudio from {source}).

Runs with torch, numpy and Pillow only: python this_file.py. The checkpoint it writes opens in nnstudio
(nnstudio info / predict, the window's Open model).
"""

import random
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

DATA = Path({str(cfg.data_path)!r})
CLASSES = {pre.classes!r}  # {"the labels" if column else "the class folders"}, sorted
N_CLASSES = len(CLASSES)
CHANNELS = {pre.channels}  # 1: grey, 3: RGB (transparency composited on white)
IMAGE_SIZE = {(pre.height, pre.width)!r}  # (height, width); other sizes are resized
SPLIT = {fr!r}  # train, validation, test, stratified by class
SEED = {cfg.data.seed}
EPOCHS = {t.epochs}
BATCH_SIZE = {t.batch_size}
WORKERS = {_workers(cfg, data)}  # DataLoader processes that decode the next batches while this one trains (0: none)
LR = {t.lr!r}
CHECKPOINT = {str(cfg.checkpoint_path)!r}
SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
#: The model as nnstudio describes it (stored in the checkpoint so nnstudio can rebuild it).
LAYERS = {pprint.pformat(layers, indent=4, width=110, sort_dicts=False)}


{_list_images(cfg)}

def split(labels):
    """Each class shuffled with one seeded generator and cut by SPLIT (nnstudio's split_indices)."""
    rng = np.random.default_rng(SEED)
    where = np.zeros(len(labels), dtype=np.int8)
    for k in range(N_CLASSES):
        idx = rng.permutation(np.flatnonzero(labels == k))
        n_val, n_test = int(round(SPLIT[1] * len(idx))), int(round(SPLIT[2] * len(idx)))
        n_train = len(idx) - n_val - n_test
        where[idx[n_train:n_train + n_val]] = 1
        where[idx[n_train + n_val:]] = 2
    return [np.flatnonzero(where == part) for part in range(3)]


def load_pixels(path):
    """uint8 (C, H, W): the first frame, transparency on white, resized to IMAGE_SIZE."""
    with Image.open(path) as img:
        img.seek(0)
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        img = img.convert("L" if CHANNELS == 1 else "RGB")
        if img.size != (IMAGE_SIZE[1], IMAGE_SIZE[0]):
            img = img.resize((IMAGE_SIZE[1], IMAGE_SIZE[0]), Image.BILINEAR)
        a = np.array(img, dtype=np.uint8)
    return a[None] if CHANNELS == 1 else a.transpose(2, 0, 1)


class ImageFiles(Dataset):
    """Opens and decodes one image per item with Pillow, then normalises it with the training statistics."""

    def __init__(self, files, labels, mean, std):
        self.files, self.labels = files, labels
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        x = torch.from_numpy(load_pixels(self.files[i])).float() / 255
        return (x - self.mean) / self.std, int(self.labels[i])


def channel_stats(files):
    """Mean and std per channel (0-1 units) over the training images only."""
    total, squares, count = np.zeros(CHANNELS), np.zeros(CHANNELS), 0
    for f in files:
        x = load_pixels(f).astype(np.float64) / 255
        total += x.sum(axis=(1, 2))
        squares += (x ** 2).sum(axis=(1, 2))
        count += x.shape[1] * x.shape[2]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean ** 2, 0))
    std[std < 1e-6 / 255] = 1.0
    return mean.tolist(), std.tolist()


class Net(nn.Module):
    def __init__(self):
        super().__init__()
{chr(10).join(lines)}

    def forward(self, x):
{chr(10).join(f"        x = self.{n}(x)" for n in names)}
        return x


def evaluate(model, loader, loss_fn):
    model.eval()
    loss, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            out = model(x)
            loss += float(loss_fn(out, y)) * len(y)
            correct += int((out.argmax(1) == y).sum())
            n += len(y)
    model.train()
    return loss / max(n, 1), correct / max(n, 1)


def main():
    random.seed(SEED)
    torch.manual_seed({t.seed if t.seed is not None else 0})
    files, labels = list_images()
    train_idx, val_idx, test_idx = split(labels)
    mean, std = channel_stats([files[i] for i in train_idx])
    part = lambda idx: ImageFiles([files[i] for i in idx], labels[idx], mean, std)  # noqa: E731
    train_loader = DataLoader(part(train_idx), batch_size=BATCH_SIZE, shuffle=True, num_workers=WORKERS)
    val_loader = DataLoader(part(val_idx), batch_size=1024, num_workers=WORKERS)
    test_loader = DataLoader(part(test_idx), batch_size=1024, num_workers=WORKERS)
    model = Net()
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    history = []
    for epoch in range(1, EPOCHS + 1):
        total, seen = 0.0, 0
        for x, y in train_loader:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            total += float(loss) * len(y)
            seen += len(y)
        val_loss, val_acc = evaluate(model, val_loader, loss_fn) if len(val_idx) else (None, None)
        history.append({{"epoch": epoch, "train_loss": total / seen, "val_loss": val_loss, "accuracy": val_acc}})
        print(f"epoch {{epoch}}/{{EPOCHS}}  train_loss {{total / seen:.4f}}  val_loss {{val_loss}}  accuracy {{val_acc}}")
    test_loss, test_acc = evaluate(model, test_loader, loss_fn) if len(test_idx) else (None, None)
    print(f"test: loss {{test_loss}}  accuracy {{test_acc}}")
    save(model, mean, std, history, test_acc)


def save(model, mean, std, history, test_acc):
    """nnstudio's checkpoint: its layer numbering (layers.0, layers.1 ...) and the normalisation as its input."""
    names = [name for name, _ in model.named_children()]
    state = {{f"layers.{{names.index(k.split('.')[0])}}.{{k.split('.', 1)[1]}}": v for k, v in model.state_dict().items()}}
    m, s = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
    state["input.scale"] = (1.0 / (255.0 * s)).reshape(1, CHANNELS, 1, 1)
    state["input.shift"] = (-m / s).reshape(1, CHANNELS, 1, 1)
    torch.save({{
        "format": "nnstudio", "version": 1,
        "model_spec": {{"layers": LAYERS, "in_features": CHANNELS * IMAGE_SIZE[0] * IMAGE_SIZE[1],
                       "n_outputs": N_CLASSES, "input_shape": [CHANNELS, *IMAGE_SIZE]}},
        "state_dict": state, "epoch": len(history), "history": history,
        "metrics": {{"test_accuracy": test_acc}} if test_acc is not None else {{}},
        "preprocessing": {{"kind": "image", "target": "label", "task": "multiclass", "classes": CLASSES,
                          "channels": CHANNELS, "height": IMAGE_SIZE[0], "width": IMAGE_SIZE[1],
                          "mean": mean, "std": std}},
    }}, CHECKPOINT)
    print(f"checkpoint: {{CHECKPOINT}}")


if __name__ == "__main__":
    main()
'''
