"""Training health seen while a run goes on: overfitting, told as soon as the curves show it.

`OverfitWatch` is an engine callback: when the validation loss has risen for `patience` epochs in a row
while the training loss fell over the same epochs, it reports a `HealthWarning` naming the best epoch
(once per fit; again only after the validation loss has reached a new best). The window shows it in the
status bar and a non-modal notice; `nnstudio train` prints it. The gradient norm per epoch is measured by
the engine itself (`EpochFinished.grad_norm`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from nnstudio.core.engine import Callback, EpochFinished, FitStarted

#: Epochs of rising validation loss (with falling training loss) before the warning.
OVERFIT_PATIENCE = 3


@dataclass(frozen=True)
class HealthWarning:
    kind: str  # "overfitting"
    epoch: int  # when it was seen
    best_epoch: int
    best_val_loss: float
    message: str


class OverfitWatch(Callback):
    """Reports overfitting through `on_warning` (called in the training thread) and keeps `warnings`."""

    def __init__(self, patience: int = OVERFIT_PATIENCE, on_warning: Callable[[HealthWarning], None] | None = None):
        if patience < 1:
            raise ValueError("patience must be at least 1 epoch")
        self.patience = patience
        self.on_warning = on_warning
        self.warnings: list[HealthWarning] = []
        self._train: list[float] = []
        self._val: list[float] = []
        self._epochs: list[int] = []
        self._armed = True
        self._best: tuple[int, float] | None = None

    def on_fit_start(self, trainer, event: FitStarted) -> None:
        self._train, self._val, self._epochs = [], [], []
        self._armed, self._best = True, None

    def on_epoch_end(self, trainer, event: EpochFinished) -> None:
        if event.val_loss is None or not math.isfinite(event.val_loss) or not math.isfinite(event.train_loss):
            return
        self._train.append(event.train_loss)
        self._val.append(event.val_loss)
        self._epochs.append(event.epoch)
        if self._best is None or event.val_loss < self._best[1]:
            self._best = (event.epoch, event.val_loss)
            self._armed = True
        n = self.patience
        if not self._armed or len(self._val) <= n:
            return
        val, train = self._val[-n - 1:], self._train[-n - 1:]
        rising = all(b > a for a, b in zip(val, val[1:]))
        falling = train[-1] < train[0]
        if rising and falling:
            self._armed = False
            best_epoch, best_loss = self._best
            warning = HealthWarning(
                "overfitting", event.epoch, best_epoch, best_loss,
                f"Overfitting: the validation loss has risen for {n} epochs while the training loss fell; "
                f"the best was epoch {best_epoch} (validation loss {best_loss:.4g}). Consider early stopping, "
                f"more dropout or weight decay, or fewer epochs.")
            self.warnings.append(warning)
            if self.on_warning is not None:
                self.on_warning(warning)
