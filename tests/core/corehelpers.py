"""Helpers shared by the core tests (imported as a module; the fixtures live in conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

import nnstudio
from nnstudio.core.data import PreparedData
from nnstudio.core.training.engine import Callback, TrainConfig, Trainer
from nnstudio.core.model.spec import build_model

#: A small MLP: fast on 2 cores, still learns the sample tables.
SMALL = [{"type": "Linear", "out_features": 16}, {"type": "ReLU"}, {"type": "Linear", "out_features": "auto"}]


def make_trainer(data: PreparedData, layers: Sequence[dict[str, Any]] = SMALL, callbacks: Sequence[Callback] = (),
                 model_seed: int = 0, **config: Any) -> Trainer:
    """A CPU trainer on one thread with a seeded model; `config` overrides TrainConfig fields."""
    settings = {"epochs": 3, "batch_size": 32, "lr": 0.01, "device": "cpu", "threads": 1, "seed": 0}
    settings.update(config)
    torch.manual_seed(model_seed)
    model = build_model(list(layers), data.n_features, data.n_outputs)
    return Trainer(model, data, TrainConfig(**settings), list(callbacks))


def state_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def states_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def mixed_frame(n: int = 60, seed: int = 0) -> pd.DataFrame:
    """Every column kind the reader must tell apart, with a Latin-1 character in a category."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "size": rng.normal(10.0, 2.0, n).round(3),
        "colour": rng.choice(["red", "green", "bleu clair é"], n),
        "flag": rng.choice([True, False], n),
        "label": rng.choice(["cat", "dog", "fish"], n),
    })


def write_toml(path: Path, data_path: Path | str, target: str = "", epochs: int = 2, extra: str = "") -> Path:
    """A small run config; `extra` is appended verbatim (more keys or sections)."""
    target_line = f'target = "{target}"\n' if target else ""
    path.write_text(
        "[data]\n"
        f"path = '{data_path}'\n"
        f"{target_line}"
        "split = [0.7, 0.15, 0.15]\n"
        "seed = 0\n\n"
        "[model]\n"
        'layers = [{type = "Linear", out_features = 16}, {type = "ReLU"}, {type = "Linear", out_features = "auto"}]\n\n'
        "[training]\n"
        f"epochs = {epochs}\n"
        "batch_size = 64\n"
        'optimizer = {name = "Adam", lr = 0.01}\n'
        'device = "cpu"\n'
        "threads = 1\n"
        "seed = 0\n\n"
        "[output]\n"
        "checkpoint = 'model.pt'\n"
        "logdir = 'runs'\n"
        "name = 'clitest'\n" + extra,
        encoding="utf-8")
    return path


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    # the child imports the very nnstudio this test process imported (source tree or installed wheel)
    env["PYTHONPATH"] = str(Path(nnstudio.__file__).resolve().parents[1]) + os.pathsep + env.get("PYTHONPATH", "")
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["OMP_NUM_THREADS"] = "1"
    return env


def start_cli(args: Sequence[str], cwd: Path) -> subprocess.Popen:
    """`python -m nnstudio ARGS` with this interpreter, started (not awaited), so several can run at once."""
    return subprocess.Popen([sys.executable, "-m", "nnstudio", *map(str, args)], cwd=cwd, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = 120) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
