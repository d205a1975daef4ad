"""The learning-rate range test (Leslie Smith; fastai's lr_find): which learning rate to start from.

On a copy of the model (the model itself is never touched), the run's optimizer takes `steps` steps
while the learning rate rises exponentially from `start_lr` to `end_lr`; the loss of each step is kept,
smoothed (a bias-corrected moving average), and the test stops once the smoothed loss is `diverge`
times its best or not finite. The proposal is the learning rate where the loss, smoothed without lag
(the same average forwards and backwards), falls fastest per decade of learning rate, looked for before
its minimum (past the minimum the steps are too large).

`LRFindRun` has the shape of `core.run.TrainingRun` that the window's training worker drives
(`trainer` with stop/pause/resume and callbacks, `execute()` returning a result with `to_json()`), so
the range test runs in the same QThread bridge as training.
"""

from __future__ import annotations

import copy
import math
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from nnstudio.core.data import PreparedData, iter_batches
from nnstudio.core.training.engine import TrainConfig, fast_loss, make_loss, make_optimizer, seed_everything
from nnstudio.core.devices import resolve_device
from nnstudio.core.errors import TrainingError

START_LR = 1e-7
END_LR = 10.0
STEPS = 200
SMOOTHING = 0.05  # weight of each new loss in the moving average (fastai: 1 - 0.98)
DIVERGE = 4.0


@dataclass
class LRFindResult:
    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float | None
    why: str
    status: str = "completed"  # "completed", "diverged" (stopped early, as expected) or "stopped"
    optimizer: str = ""
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def finished(self) -> "LRFindResult":  # what the training worker reads: `.finished.reason`
        return self

    @property
    def reason(self) -> str:
        return self.status

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "suggestion": self.suggestion, "why": self.why, "optimizer": self.optimizer,
                "lrs": self.lrs, "losses": self.losses, "smoothed": self.smoothed}


def lr_schedule(start_lr: float, end_lr: float, steps: int) -> np.ndarray:
    return start_lr * (end_lr / start_lr) ** (np.arange(steps) / max(1, steps - 1))


def propose(lrs: list[float], smoothed: list[float], skip_start: int = 5) -> tuple[float | None, str]:
    """The learning rate of steepest descent of the smoothed loss (per decade), before its minimum."""
    if len(smoothed) < skip_start + 3:
        return None, (f"only {len(smoothed)} steps before the loss diverged: start the range test lower "
                      f"(now from {lrs[0]:.3g})" if lrs else "no steps were taken")
    lr = np.asarray(lrs, dtype=np.float64)
    loss = np.asarray(smoothed, dtype=np.float64)
    lowest = int(np.nanargmin(loss))
    if lowest <= skip_start + 1:
        return None, (f"the loss was lowest at the first steps (lr {lr[lowest]:.3g}): it never fell as the "
                      f"rate rose; start the range test lower")
    slope = np.gradient(loss[:lowest + 1], np.log10(lr[:lowest + 1]))
    window = slope[skip_start:lowest + 1]
    best = skip_start + int(np.argmin(window))
    if slope[best] >= 0:
        return None, "the loss did not fall at any learning rate tried; check the data and the model"
    why = (f"steepest fall of the smoothed loss: {-slope[best]:.3g} per tenfold lr at lr {lr[best]:.3g}, "
           f"before its minimum {loss[lowest]:.4g} at lr {lr[lowest]:.3g}")
    return float(lr[best]), why


def find_lr(model: nn.Module, data: PreparedData, config: TrainConfig | None = None, *, start_lr: float = START_LR,
            end_lr: float = END_LR, steps: int = STEPS, smoothing: float = SMOOTHING, diverge: float = DIVERGE,
            should_stop: Callable[[], bool] | None = None) -> LRFindResult:
    """Run the range test on a copy of `model` with the run's optimizer, loss, batch size and device."""
    cfg = copy.deepcopy(config or TrainConfig())
    if not (0 < start_lr < end_lr) or steps < 2:
        raise TrainingError(f"the range test needs 0 < start_lr < end_lr and at least 2 steps "
                            f"(got {start_lr:g}, {end_lr:g}, {steps})")
    if len(data.train) == 0:
        raise TrainingError("the training split is empty; lower the validation/test fractions")
    device = resolve_device(cfg.device)
    generator = seed_everything(cfg.seed) if cfg.seed is not None else None
    trial = copy.deepcopy(model).to(device).train()
    split = data.train.to(device)
    cfg.lr = start_lr
    optimizer = make_optimizer(trial.parameters(), cfg, device)
    loss_fn = fast_loss(make_loss(data.task, cfg.loss), device)
    reshape = data.task != "multiclass"
    schedule = lr_schedule(start_lr, end_lr, steps)
    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    average, best, status = 0.0, math.inf, "completed"
    batches = iter_batches(split, cfg.batch_size, cfg.shuffle, generator)
    for i, lr in enumerate(schedule):
        if should_stop is not None and should_stop():
            status = "stopped"
            break
        try:
            xb, yb = next(batches)
        except StopIteration:
            batches = iter_batches(split, cfg.batch_size, cfg.shuffle, generator)
            xb, yb = next(batches)
        for group in optimizer.param_groups:
            group["lr"] = float(lr)
        out = trial(xb)
        loss = loss_fn(out.squeeze(-1) if reshape else out, yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(trial.parameters(), cfg.grad_clip)
        optimizer.step()
        value = float(loss.detach())
        if not math.isfinite(value):
            status = "diverged"
            break
        average = (1 - smoothing) * average + smoothing * value
        corrected = average / (1 - (1 - smoothing) ** (i + 1))
        lrs.append(float(lr))
        losses.append(value)
        smoothed.append(corrected)
        best = min(best, corrected)
        if corrected > diverge * best:
            status = "diverged"
            break
    centred = zero_lag(losses, min(1.0, 2 * smoothing))  # two passes: twice the weight for the same width
    suggestion, why = propose(lrs, centred)
    return LRFindResult(lrs, losses, centred, suggestion, why, status, cfg.optimizer)


def zero_lag(values: list[float], alpha: float = SMOOTHING) -> list[float]:
    """The moving average run forwards and then backwards: as smooth, without the forward pass's lag.

    The running average the test stops on lags ~(1 - alpha) / alpha steps behind the losses (0.8 of a decade
    of learning rate at 200 steps over 8 decades), which would move the steepest point, and the proposal,
    to rates several times too high.
    """
    if not values:
        return []

    def ema(xs: np.ndarray) -> np.ndarray:
        out = np.empty_like(xs)
        acc = 0.0
        for i, x in enumerate(xs):
            acc = (1 - alpha) * acc + alpha * x
            out[i] = acc / (1 - (1 - alpha) ** (i + 1))
        return out

    forward = ema(np.asarray(values, dtype=np.float64))
    return ema(forward[::-1])[::-1].tolist()


class _Control:
    """The part of `Trainer` that the training worker uses: stop/pause/resume and a callbacks list."""

    def __init__(self) -> None:
        self.callbacks: list = []
        self.global_step = 0
        self.epoch = 0
        self._stop = threading.Event()

    def request_stop(self) -> None:
        self._stop.set()

    def pause(self) -> None:  # a range test of a few hundred steps is not paused
        pass

    def resume(self) -> None:
        pass


class LRFindRun:
    """A range test in the shape of a TrainingRun, for the window's TrainingController."""

    def __init__(self, model: nn.Module, data: PreparedData, config: TrainConfig, **options: Any):
        self.model, self.data, self.config, self.options = model, data, config, options
        self.trainer = _Control()

    def execute(self) -> LRFindResult:
        return find_lr(self.model, self.data, self.config, should_stop=self.trainer._stop.is_set, **self.options)
