"""The loss climbing far above its best: the early sign of a divergence, before the loss is NaN.

The engine stops a run at `[training] divergence_factor` × the best training loss (it raises
TrainingDiverged); the window warns earlier, at WARN_FACTOR × the best, so a person sees it coming.
"""

from __future__ import annotations

import math

WARN_FACTOR = 10.0


def warn_factor(divergence_factor: float) -> float:
    return min(WARN_FACTOR, divergence_factor) if divergence_factor else WARN_FACTOR


def climb_warning(epoch: int, loss: float, best: float | None, best_epoch: int | None,
                  divergence_factor: float = 1000.0) -> str | None:
    """A sentence when `loss` is far above `best` (or not finite); None otherwise."""
    if best is None or best_epoch is None:
        return None
    if not math.isfinite(loss):
        return f"the training loss is {loss} at epoch {epoch}: the run is diverging"
    factor = warn_factor(divergence_factor)
    if best > 0 and loss > factor * best:
        stop = f"; it stops at {divergence_factor:g}× (lower the learning rate)" if divergence_factor else ""
        return (f"the training loss climbed to {loss:.4g} at epoch {epoch}, {loss / best:.0f}× its best "
                f"({best:.4g}, epoch {best_epoch}){stop}")
    return None
