"""Training throughput: the engine against hand-written loops on the same model, data and initial weights.

Every case trains whole epochs over the same synthetic table (N × 32 float32, 10 classes) from the same
initial weights. Within a model/batch cell the cases run interleaved, in a rotated order each round, and
each case's throughput is divided by the raw loop's from the same round (paired ratios).

Cases
- raw: whole tensors, `randperm` each epoch, `X[idx]` batches, torch's default threads, plain Adam.
- raw_fused: the same with `Adam(fused=True)`.
- raw_1thread: the raw loop with `torch.set_num_threads(1)` (a diagnostic, as in issue 5's anchors).
- textbook: the course notes' loop: a `Dataset` whose `__getitem__` returns one row, `DataLoader(shuffle=True)`,
  a running loss with `.item()`.
- engine: `nnstudio.core.training.engine.Trainer.fit()` with no callbacks (headless, as a script calls it).
- engine_cli: the engine with what `nnstudio train` attaches: a terminal progress bar and the TensorBoard logger,
  both of which consume every step.
- lightning: a LightningModule + `Trainer.fit` over `DataLoader(TensorDataset, shuffle=True)`, when installed.
"""

from __future__ import annotations

import io
import math
import tempfile
import time
from typing import Any, Callable, Sequence

import torch
from torch import nn

from benchmarks.common import fmt_rate, fmt_ratio, loadavg, paired_ratios, rotate, spread

DEFAULT_THREADS = torch.get_num_threads()
FEATURES, CLASSES = 32, 10
MODELS: dict[str, list[int]] = {"32-16-10": [16], "32-128-128-10": [128, 128], "32-1024-1024-10": [1024, 1024]}
BATCHES = (32, 256, 4096)
LR = 1e-3


# ---------------------------------------------------------------------------------------------- data, models

def make_data(rows: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A learnable synthetic table: labels from a random linear teacher with noise."""
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(rows, FEATURES, generator=gen)
    teacher = torch.randn(FEATURES, CLASSES, generator=gen)
    y = (X @ teacher + 0.5 * torch.randn(rows, CLASSES, generator=gen)).argmax(dim=1)
    return X.contiguous(), y.contiguous()


def layer_spec(hidden: Sequence[int]) -> list[dict[str, Any]]:
    spec: list[dict[str, Any]] = []
    for width in hidden:
        spec += [{"type": "Linear", "out_features": width}, {"type": "ReLU"}]
    return spec + [{"type": "Linear", "out_features": "auto"}]


def initial_state(hidden: Sequence[int], seed: int = 0) -> dict[str, torch.Tensor]:
    """One set of initial weights, keyed as in a plain nn.Sequential, shared by every case."""
    from nnstudio.core.model.spec import build_model

    torch.manual_seed(seed)
    model = build_model(layer_spec(hidden), FEATURES, CLASSES)
    return {k.removeprefix("layers."): v.detach().clone() for k, v in model.state_dict().items()}


def sequential(hidden: Sequence[int], state: dict[str, torch.Tensor]) -> nn.Sequential:
    """The model as a hand-written script defines it."""
    dims = [FEATURES, *hidden, CLASSES]
    layers: list[nn.Module] = []
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    model.load_state_dict(state)
    return model


def spec_model(hidden: Sequence[int], state: dict[str, torch.Tensor]):
    """The model as nnstudio builds it from a layer spec."""
    from nnstudio.core.model.spec import build_model

    model = build_model(layer_spec(hidden), FEATURES, CLASSES)
    model.layers.load_state_dict(state)
    return model


def prepared(X: torch.Tensor, y: torch.Tensor):
    from nnstudio.core.data import PreparedData, Preprocessor, TensorSplit

    pre = Preprocessor("label", "multiclass",
                       [{"name": f"x{i}", "kind": "numeric", "mean": 0.0, "std": 1.0} for i in range(X.shape[1])],
                       [str(c) for c in range(CLASSES)])
    empty = TensorSplit(X[:0], y[:0])
    return PreparedData(TensorSplit(X, y), empty, empty, pre)


# ---------------------------------------------------------------------------------------------- cases

def run_raw(X, y, hidden, state, batch, epochs, *, fused: bool = False, threads: int | None = None) -> dict:
    torch.set_num_threads(threads or DEFAULT_THREADS)
    try:
        model = sequential(hidden, state)
        optimizer = torch.optim.Adam(model.parameters(), lr=LR, fused=True if fused else None)
        loss_fn = nn.CrossEntropyLoss()
        n = len(X)
        for _ in range(epochs):
            perm = torch.randperm(n)
            for start in range(0, n, batch):
                idx = perm[start:start + batch]
                xb, yb = X[idx], y[idx]
                loss = loss_fn(model(xb), yb)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        return {"final_loss": float(loss.detach())}
    finally:
        torch.set_num_threads(DEFAULT_THREADS)


class RowDataset(torch.utils.data.Dataset):
    """The course notes' Dataset: one row per `__getitem__`."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor):
        self.X, self.y = X, y

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, index: int):
        return self.X[index], self.y[index]


def run_textbook(X, y, hidden, state, batch, epochs) -> dict:
    torch.set_num_threads(DEFAULT_THREADS)
    model = sequential(hidden, state)
    loader = torch.utils.data.DataLoader(RowDataset(X, y), batch_size=batch, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    running = 0.0
    for _ in range(epochs):
        model.train()
        running = 0.0
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
            running += loss.item() * len(xb)
    return {"final_loss": running / len(X)}


class _TtyStream(io.StringIO):
    """A terminal as far as the progress bar can tell: it redraws as it would for a person watching."""

    def isatty(self) -> bool:
        return True


def run_engine(X, y, hidden, state, batch, epochs, *, cli: bool = False, threads: int | str = "auto") -> dict:
    from nnstudio.core.training.engine import TrainConfig, Trainer

    torch.set_num_threads(DEFAULT_THREADS)
    model = spec_model(hidden, state)
    callbacks = []
    tmp = None
    if cli:
        from nnstudio.core.training.callbacks import ProgressBar, TensorBoardLogger

        tmp = tempfile.TemporaryDirectory(prefix="nnstudio-bench-tb-")
        callbacks = [ProgressBar(_TtyStream()),
                     TensorBoardLogger(tmp.name, "bench", {"optimizer": "Adam", "lr": LR, "batch_size": batch})]
    try:
        cfg = TrainConfig(epochs=epochs, batch_size=batch, optimizer="Adam", lr=LR, seed=0, device="cpu",
                          threads=threads)
        result = Trainer(model, prepared(X, y), cfg, callbacks).fit()
        return {"steps": result.steps}
    finally:
        if tmp is not None:
            tmp.cleanup()


def lightning_module():
    try:
        import lightning.pytorch as pl  # type: ignore
    except ImportError:
        import pytorch_lightning as pl  # type: ignore
    return pl


def lightning_available() -> bool:
    try:
        lightning_module()
        return True
    except Exception:
        return False


def run_lightning(X, y, hidden, state, batch, epochs) -> dict:
    import logging
    import warnings

    pl = lightning_module()
    torch.set_num_threads(DEFAULT_THREADS)
    net = sequential(hidden, state)

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = net

        def training_step(self, batch_, batch_idx):
            xb, yb = batch_
            return nn.functional.cross_entropy(self.net(xb), yb)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=LR)

    for name in ("lightning", "lightning.pytorch", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=batch, shuffle=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False,
                             enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
        trainer.fit(Module(), loader)
    return {}


CASES: dict[str, Callable[..., dict]] = {
    "raw": run_raw,
    "raw_fused": lambda *a: run_raw(*a, fused=True),
    "raw_1thread": lambda *a: run_raw(*a, threads=1),
    "textbook": run_textbook,
    "engine": run_engine,
    "engine_cli": lambda *a: run_engine(*a, cli=True),
    "lightning": run_lightning,
}
CASE_LABELS = {
    "raw": "raw loop", "raw_fused": "raw + fused Adam", "raw_1thread": "raw, 1 thread", "textbook": "textbook",
    "engine": "engine", "engine_cli": "engine + CLI callbacks", "lightning": "Lightning",
}


# ---------------------------------------------------------------------------------------------- the section

def measure(models: Sequence[str], batches: Sequence[int], cases: Sequence[str], rows: int, epochs: int,
            repeats: int, log: Callable[[str], None] = print) -> dict:
    from nnstudio.core.training.engine import choose_threads

    cases = [c for c in cases if c != "lightning" or lightning_available()]
    if "raw" not in cases:
        cases = ["raw", *cases]
    X, y = make_data(rows)
    cells = []
    for model_name in models:
        hidden = MODELS[model_name]
        state = initial_state(hidden)
        for batch in batches:
            warm_rows = min(rows, max(4 * batch, 2048))
            for case in cases:  # first-call costs (thread pools, fused kernels, TensorBoard import) off the clock
                CASES[case](X[:warm_rows], y[:warm_rows], hidden, state, batch, 1)
            rates: dict[str, list[float]] = {c: [] for c in cases}
            loads = []
            for r in range(repeats):
                for case in rotate(cases, r):
                    t0 = time.perf_counter()
                    CASES[case](X, y, hidden, state, batch, epochs)
                    rates[case].append(rows * epochs / (time.perf_counter() - t0))
                loads.append(loadavg())
            ratios = {c: spread(paired_ratios(rates[c], rates["raw"])) for c in cases if c != "raw"}
            cell = {
                "model": model_name, "batch": batch, "rows": rows, "epochs": epochs, "repeats": repeats,
                "engine_threads": choose_threads(spec_model(hidden, state), batch, torch.device("cpu")),
                "samples_per_s": {c: spread(v) for c, v in rates.items()},
                "samples_per_s_rounds": rates,
                "ratio_vs_raw": ratios,
                "loadavg_per_round": loads,
            }
            if "engine" in cases:
                for ref in ("raw_fused", "textbook", "lightning"):
                    if ref in cases:
                        cell[f"engine_vs_{ref}"] = spread(paired_ratios(rates["engine"], rates[ref]))
            cells.append(cell)
            log(f"  {model_name:>16} batch {batch:>5}: raw {fmt_rate(cell['samples_per_s']['raw']['median'])}/s  "
                + "  ".join(f"{c} {fmt_ratio(ratios[c])}" for c in cases if c != "raw"))
    return {"rows": rows, "features": FEATURES, "classes": CLASSES, "epochs": epochs, "repeats": repeats,
            "cases": list(cases), "default_threads": DEFAULT_THREADS, "cells": cells,
            "lightning": "measured" if "lightning" in cases else "not installed"}


def targets(section: dict) -> list[dict]:
    """Issue 5's training targets, cell by cell."""
    out = []
    for cell in section.get("cells", []):
        where = f"{cell['model']} @ {cell['batch']}"
        r = cell["ratio_vs_raw"]
        if "engine" in r:
            out.append(_target("engine ≥ 1.15× raw loop", where, r["engine"], 1.15))
        if "engine_vs_raw_fused" in cell:
            out.append(_target("engine ≥ 0.95× raw + fused Adam", where, cell["engine_vs_raw_fused"], 0.95))
        if "engine_vs_textbook" in cell and cell["batch"] in (256, 4096):
            need = 3.0 if cell["batch"] == 256 else 10.0
            out.append(_target(f"engine ≥ {need:g}× textbook", where, cell["engine_vs_textbook"], need))
    return out


def _target(name: str, where: str, stats: dict, need: float) -> dict:
    value = stats["median"]
    return {"target": name, "where": where, "median": value, "min": stats["min"], "max": stats["max"],
            "need": need, "met": bool(not math.isnan(value) and value >= need)}
