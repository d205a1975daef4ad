"""Training health seen while a run goes on: overfitting, told as soon as the curves show it.

`OverfitWatch` is an engine callback: when the validation loss has not beaten its best for `patience`
epochs, the mean of those epochs is clearly above the best (validation losses are noisy: a strict rise
at every epoch is rare on real data), and the training loss has fallen below its value at the best epoch,
it reports a `HealthWarning` naming the best epoch; a later new best withdraws it (`on_withdrawn`), and the watch
warns again only if the run overfits from there. Rises within noise (relative and absolute) are not rises. The window shows it in the
status bar and a non-modal notice; `nnstudio train` prints it. The gradient norm per epoch is measured by
the engine itself (`EpochFinished.grad_norm`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from nnstudio.core.training.engine import Callback, EpochFinished, FitStarted

#: Epochs without a new best validation loss (with falling training loss) before the warning.
OVERFIT_PATIENCE = 3
#: How far (relative) the recent validation losses' mean must be above the best to count as risen.
OVERFIT_TOLERANCE = 0.02
#: And at least this far (absolute): 0.001033 to 0.001331 is noise near zero, not a rise.
OVERFIT_ABS_TOLERANCE = 1e-3


@dataclass(frozen=True)
class HealthWarning:
    kind: str  # "overfitting"
    epoch: int  # when it was seen
    best_epoch: int
    best_val_loss: float
    message: str


class OverfitWatch(Callback):
    """Reports overfitting through `on_warning` (called in the training thread) and keeps `warnings`."""

    def __init__(self, patience: int = OVERFIT_PATIENCE, on_warning: Callable[[HealthWarning], None] | None = None,
                 tolerance: float = OVERFIT_TOLERANCE, abs_tolerance: float = OVERFIT_ABS_TOLERANCE,
                 on_withdrawn: Callable[[HealthWarning, int], None] | None = None):
        """`on_withdrawn(warning, epoch)`: the validation loss beat the warned best at `epoch`: the warning no
        longer holds (the watch then warns again if the run overfits from its new best)."""
        if patience < 1:
            raise ValueError("patience must be at least 1 epoch")
        self.patience = patience
        self.tolerance = tolerance
        self.abs_tolerance = abs_tolerance
        self.on_warning = on_warning
        self.on_withdrawn = on_withdrawn
        self.active: HealthWarning | None = None  # the warning that holds now
        self.warnings: list[HealthWarning] = []
        self._train: list[float] = []
        self._val: list[float] = []
        self._epochs: list[int] = []
        self._armed = True
        self._best: tuple[int, float] | None = None

    def on_fit_start(self, trainer, event: FitStarted) -> None:
        self._train, self._val, self._epochs = [], [], []
        self._armed, self._best = True, None
        self.active = None

    def on_epoch_end(self, trainer, event: EpochFinished) -> None:
        if event.val_loss is None or not math.isfinite(event.val_loss) or not math.isfinite(event.train_loss):
            return
        self._train.append(event.train_loss)
        self._val.append(event.val_loss)
        self._epochs.append(event.epoch)
        if self._best is None or event.val_loss < self._best[1]:
            self._best = (event.epoch, event.val_loss)
            if self.active is not None:  # a new best: "epoch N generalised best" is no longer true
                withdrawn, self.active, self._armed = self.active, None, True
                if self.on_withdrawn is not None:
                    self.on_withdrawn(withdrawn, event.epoch)
        best_epoch, best_loss = self._best
        since = event.epoch - best_epoch
        if not self._armed or since < self.patience:
            return
        # Validation losses are noisy: "risen" is the last epochs' mean above the best, not each one above the last.
        recent = self._val[-self.patience:]
        risen = sum(recent) / len(recent) > best_loss + max(best_loss * self.tolerance, self.abs_tolerance)
        train_at_best = self._train[self._epochs.index(best_epoch)]
        fell = event.train_loss < train_at_best
        if risen and fell:
            self._armed = False
            warning = HealthWarning(
                "overfitting", event.epoch, best_epoch, best_loss,
                f"Overfitting: the validation loss has risen for {since} epochs since its best at epoch "
                f"{best_epoch} ({best_loss:.4g}, now {event.val_loss:.4g}) while the training loss fell "
                f"({train_at_best:.4g} to {event.train_loss:.4g}). The weights of epoch {best_epoch} generalised best: "
                f"consider early stopping, more dropout or weight decay, or fewer epochs.")
            self.warnings.append(warning)
            self.active = warning
            if self.on_warning is not None:
                self.on_warning(warning)
