"""What a fit tells its callbacks: frozen dataclasses of plain values, and the `Callback` whose hooks receive them.

Kept apart from the engine so that a callback, the resume code or the window can name an event without the loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nnstudio.core.training.engine import Trainer


@dataclass(frozen=True)
class FitStarted:
    epochs: int
    steps_per_epoch: int
    n_train: int
    n_val: int
    device: str
    task: str
    threads: int
    first_epoch: int = 1  # a resumed fit goes on from its checkpoint's epoch + 1: epochs first_epoch … last_epoch
    first_step: int = 0  # the global step count before this fit

    @property
    def last_epoch(self) -> int:
        return self.first_epoch + self.epochs - 1


@dataclass(frozen=True)
class StepFinished:
    epoch: int  # 1-based
    step: int  # global, 1-based
    loss: float


@dataclass(frozen=True)
class EpochFinished:
    epoch: int
    step: int
    train_loss: float
    val_loss: float | None
    metrics: dict[str, float]
    lr: float
    seconds: float
    improved: bool
    grad_norm: float | None = None  # mean total L2 norm of the gradients over the epoch's measured steps


@dataclass(frozen=True)
class FitFinished:
    reason: str  # "completed", "stopped", "early_stopping"
    epochs_completed: int
    steps: int
    best_epoch: int | None
    best_val_loss: float | None
    metrics: dict[str, float]
    seconds: float


@dataclass(frozen=True)
class FitFailed:
    message: str
    error_type: str


class Callback:
    """Observers of a fit; every hook does nothing by default."""

    def on_fit_start(self, trainer: "Trainer", event: FitStarted) -> None: ...
    def on_train_batch_end(self, trainer: "Trainer", event: StepFinished) -> None: ...
    def on_epoch_end(self, trainer: "Trainer", event: EpochFinished) -> None: ...
    def on_fit_end(self, trainer: "Trainer", event: FitFinished) -> None: ...
    def on_exception(self, trainer: "Trainer", event: FitFailed) -> None: ...
    def on_pause(self, trainer: "Trainer") -> None:
        """The loop has stopped at a batch boundary to wait for ``resume()`` (or a stop): show what is buffered."""
    def teardown(self, trainer: "Trainer") -> None:
        """Always called last (success or failure): close files, writers."""
