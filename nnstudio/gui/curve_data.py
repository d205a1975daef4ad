"""What the live plots draw, as numbers: growable curve buffers, the peak pyramid that keeps a million steps
drawable, EMA smoothing, and the plots' constants. No pyqtgraph and no widgets here, so both the light
placeholders (`plots`) and the pyqtgraph widgets (`plot_widgets`) import it without importing each other."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

MAX_EARLIER_RUNS = 5
# Draw pyramid blocks rather than raw points while at least this many blocks per pixel
# of plot width are in view: the peak envelope is then pixel-identical.
MIN_BLOCKS_PER_PIXEL = 4
DOWNSAMPLE_PER_PIXEL = 1.5
# An earlier run keeps at most this many blocks (min/max pairs) per curve: a backdrop about as wide as a
# plot is in pixels. Every change of the view repaints each earlier run; with 5 runs of 13,000 steps kept
# whole (16384 blocks), that paint took 42 ms, with 2048 blocks 22 ms (zooming into an old run shows its
# min/max envelope rather than each step).
FROZEN_MAX_BLOCKS = 2048

LEGEND_NAME_CHARS = 28  # longer run names are elided in the legend

# Tableau 10: distinct on both light and dark backgrounds.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)
NONFINITE_COLOR = "#d62728"
# One dash pattern per earlier run (in units of the pen width), so faded runs stay
# distinguishable in the legend even though they share colours.
EARLIER_DASHES = ([6, 4], [2, 3], [8, 3, 2, 3], [12, 4], [3, 3, 9, 3])


class CurveBuffer:
    """Growable (x, y) float64 buffers: amortised O(1) appends, views for drawing."""

    def __init__(self, capacity: int = 1024):
        self._initial = max(int(capacity), 1)
        self._x = np.empty(self._initial, dtype=np.float64)
        self._y = np.empty(self._initial, dtype=np.float64)
        self._n = 0
        self.dropped = 0  # points forgotten from the front (see drop_front): the first kept one's index

    def __len__(self) -> int:
        return self._n

    @property
    def capacity(self) -> int:
        return self._x.shape[0]

    @property
    def x(self) -> np.ndarray:
        return self._x[: self._n]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self._n]

    def _reserve(self, needed: int) -> None:
        capacity = self.capacity
        if needed <= capacity:
            return
        while capacity < needed:
            capacity *= 2
        for name in ("_x", "_y"):
            old = getattr(self, name)
            new = np.empty(capacity, dtype=np.float64)
            new[: self._n] = old[: self._n]
            setattr(self, name, new)

    def append(self, x: float, y: float) -> None:
        self._reserve(self._n + 1)
        self._x[self._n] = x
        self._y[self._n] = y
        self._n += 1

    def extend(self, xs: Sequence[float] | np.ndarray, ys: Sequence[float] | np.ndarray) -> None:
        xs = np.asarray(xs, dtype=np.float64).ravel()
        ys = np.asarray(ys, dtype=np.float64).ravel()
        if xs.shape != ys.shape:
            raise ValueError(f"x and y must have the same length, got {xs.size} and {ys.size}")
        m = xs.size
        if m == 0:
            return
        self._reserve(self._n + m)
        self._x[self._n : self._n + m] = xs
        self._y[self._n : self._n + m] = ys
        self._n += m

    def set_last(self, x: float, y: float) -> None:
        """Overwrite the newest point (used to stretch an open non-finite run)."""
        if self._n == 0:
            raise IndexError("set_last on an empty CurveBuffer")
        self._x[self._n - 1] = x
        self._y[self._n - 1] = y

    def drop_front(self, count: int) -> None:
        """Forget the oldest ``count`` points (their summary lives elsewhere); indices stay global via ``dropped``."""
        count = min(int(count), self._n)
        if count <= 0:
            return
        kept = self._n - count
        self._x[:kept] = self._x[count : self._n]
        self._y[:kept] = self._y[count : self._n]
        self._n = kept
        self.dropped += count

    @property
    def nbytes(self) -> int:
        return self._x.nbytes + self._y.nbytes

    def clear(self) -> None:
        """Forget all points and give back memory beyond the initial capacity."""
        self._n = 0
        self.dropped = 0
        if self.capacity > self._initial:
            self._x = np.empty(self._initial, dtype=np.float64)
            self._y = np.empty(self._initial, dtype=np.float64)


def smooth_ema(
    y: Sequence[float] | np.ndarray, alpha: float, initial: float | None = None
) -> np.ndarray:
    """Exponential moving average ``s[i] = alpha*y[i] + (1-alpha)*s[i-1]`` over finite points.

    Non-finite inputs come out as NaN, so a divergence stays visible in the smoothed curve,
    and they do not poison the state: smoothing resumes at the next finite value from the
    last finite smoothed value. ``initial`` is the smoothed value before ``y[0]`` (to extend
    a series chunk by chunk in O(new points)); without it the series starts at its first
    finite value.

    Vectorised: the recurrence is solved in blocks with a scaled cumulative sum, and only a
    scalar carry runs in Python (one step per block), so 10^6 points take milliseconds.
    """
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    y = np.asarray(y, dtype=np.float64).ravel()
    finite = np.isfinite(y)
    if finite.all():
        return _ema_finite(y, float(alpha), initial) if y.size else np.empty(0)
    out = np.full(y.shape, np.nan)
    values = y[finite]
    if values.size:
        out[finite] = _ema_finite(values, float(alpha), initial)
    return out


def _ema_finite(v: np.ndarray, alpha: float, initial: float | None) -> np.ndarray:
    n = v.size
    r = 1.0 - alpha
    if r == 0.0:
        return v.copy()
    state = float(v[0]) if initial is None or not math.isfinite(initial) else float(initial)
    # Block length L keeps r**-(L-1) <= 1e100, far from overflow, with rounding errors
    # of order eps/alpha relative to the data.
    block = 1 + int(100.0 * math.log(10.0) / -math.log(r))
    block = max(1, min(block, n, 1 << 14))
    n_blocks = -(-n // block)
    scale = max(float(v.max()), -float(v.min()), abs(state))
    if scale == 0.0:
        return np.zeros(n)
    # In place throughout: at 10^6 points, allocating and touching memory is the cost.
    # With C = cumsum(v * r**-j) per block and S the state entering the block,
    # s[j] = r**j * (alpha * C[j] + r * S).
    local = np.empty(n_blocks * block)
    np.divide(v, scale, out=local[:n])
    local[n:] = 0.0
    local = local.reshape(n_blocks, block)
    k = np.arange(block, dtype=np.float64)
    decay = r**k
    local *= r**-k
    np.cumsum(local, axis=1, out=local)
    local *= alpha
    block_ends = local[:, -1].tolist()
    last_decay = float(decay[-1])
    entering = np.empty(n_blocks)
    s = state / scale
    for b in range(n_blocks):
        entering[b] = s
        s = last_decay * (block_ends[b] + r * s)
    entering *= r
    local += entering[:, None]
    local *= decay
    result = local.ravel()[:n]
    result *= scale
    return result


#: Raw points a decimated curve keeps at full resolution (the most recent ones): 2 MiB of float64 x and y.
RECENT_POINTS = 1 << 17
#: Blocks each summary level keeps once a coarser level summarises the older ones. With blocks F times
#: coarser above, the oldest kept stretch spans KEEP_BLOCKS / F = 2048 coarser blocks: at least one per pixel
#: of a 2048-px plot whenever the view reaches back past it, so the drawn envelope is the same.
KEEP_BLOCKS = 1 << 16


class PeakPyramid:
    """Min/max summaries of a growing curve at block sizes F, F**2, ... (F = ``factor``).

    Kept up to date in O(new points), so a redraw of 10^7 steps pushes a few thousand
    points instead of re-reducing every raw point. Each block is drawn as its max then its
    min at the block's first x, which keeps the curve's bounds exactly those of the raw
    data. A block holding a NaN/inf reduces to NaN/inf, so gaps stay visible.

    Memory stays bounded in long runs: the raw buffer keeps the ``keep_raw`` newest points and each level
    ``keep_blocks`` blocks, dropping (in multiples of F) only entries that the next coarser level already
    summarises; `data` draws each stretch of the curve from the finest level that still holds it.
    """

    def __init__(self, factor: int = 32, max_levels: int = 5, keep_raw: int = RECENT_POINTS,
                 keep_blocks: int = KEEP_BLOCKS):
        self.factor = factor
        self._levels: list[list[CurveBuffer]] = []  # per level: [max buffer, min buffer]
        self._consumed: list[int] = []  # entries of the level below already reduced (global index)
        self._max_levels = max_levels
        self._keep_raw = max(int(keep_raw), 2 * factor)
        self._keep_blocks = max(int(keep_blocks), 2 * factor)

    @property
    def levels(self) -> int:
        return len(self._levels)

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for pair in self._levels for b in pair)

    def clear(self) -> None:
        self._levels.clear()
        self._consumed.clear()

    def update(self, raw: CurveBuffer) -> None:
        f = self.factor
        below_x, below_hi, below_lo, below_dropped = raw.x, raw.y, raw.y, raw.dropped
        for k in range(self._max_levels):
            if k == len(self._levels):
                if below_x.size < 2 * f:
                    break
                self._levels.append([CurveBuffer(64), CurveBuffer(64)])
                self._consumed.append(below_dropped)
            hi, lo = self._levels[k]
            start = self._consumed[k] - below_dropped
            stop = start + (below_x.size - start) // f * f
            if stop > start:
                xs = below_x[start:stop:f]
                hi.extend(xs, below_hi[start:stop].reshape(-1, f).max(axis=1))
                lo.extend(xs, below_lo[start:stop].reshape(-1, f).min(axis=1))
                self._consumed[k] = below_dropped + stop
            below_x, below_hi, below_lo, below_dropped = hi.x, hi.y, lo.y, hi.dropped
        self._compact(raw)

    def _compact(self, raw: CurveBuffer) -> None:
        """Drop what a coarser level summarises once a buffer holds half as much again as it keeps (amortised
        O(1); the buffers' capacity, a power of two, then stays within twice what they keep)."""
        f = self.factor
        buffers = [(raw, None, self._keep_raw)] + [(hi, lo, self._keep_blocks) for hi, lo in self._levels]
        for k, (hi, lo, keep) in enumerate(buffers[:-1]):
            if len(hi) <= keep + keep // 2:
                continue
            summarised = self._consumed[k] - hi.dropped
            count = min(summarised, len(hi) - keep) // f * f
            hi.drop_front(count)
            if lo is not None:
                lo.drop_front(count)

    def level_for(self, visible_points: int, min_blocks: int) -> int:
        """Coarsest level that still has at least ``min_blocks`` blocks in view."""
        k = 0
        while k < len(self._levels) and visible_points // self.factor ** (k + 1) >= min_blocks:
            k += 1
        return k

    def index_of(self, raw: CurveBuffer, x: float) -> int:
        """Raw index (counting dropped points) of the first point at or after ``x``, from the finest level
        that still holds it."""
        if len(raw) and (raw.dropped == 0 or x >= raw.x[0]):
            return raw.dropped + int(np.searchsorted(raw.x, x))
        for k, (hi, _lo) in enumerate(self._levels, start=1):
            if len(hi) and (hi.dropped == 0 or x >= hi.x[0]):
                return (hi.dropped + int(np.searchsorted(hi.x, x))) * self.factor**k
        return 0

    def data(self, raw: CurveBuffer, level: int) -> tuple[np.ndarray, np.ndarray]:
        """Points to draw at ``level`` (0: raw): that level's blocks, raw points after its last full block,
        and, where older entries were dropped, the blocks of the finest level that still holds them.

        The last raw point is always included, so the x bounds are those of the raw data.
        """
        level = min(level, len(self._levels))
        if level == 0 and raw.dropped == 0:
            return raw.x, raw.y
        f = self.factor
        n = raw.dropped + len(raw)
        # (entries, first global entry index, size in raw points) of raw (0) and each level
        tiers = [((raw, raw), raw.dropped, 1)] + [
            ((hi, lo), hi.dropped, f ** (k + 1)) for k, (hi, lo) in enumerate(self._levels)]
        segments: list[tuple[int, CurveBuffer, CurveBuffer, int, int]] = []
        pos = 0  # raw index up to which the picture is drawn
        for j in range(len(tiers) - 1, -1, -1):
            (hi, lo), first, size = tiers[j]
            kept_end = (first + len(hi)) * size
            if j == 0:
                end = n
            elif j == level:
                end = min(kept_end, n - 1)
            else:
                finer_first = tiers[j - 1][1] * tiers[j - 1][2]
                end = min(kept_end, finer_first, n - 1)
            if end <= pos:
                continue
            a = max(pos // size - first, 0)
            b = min(-(-end // size) - first, len(hi))
            if b > a:
                segments.append((j, hi, lo, a, b))
            pos = end
        total = sum((b - a) * (1 if j == 0 else 2) for j, _, _, a, b in segments)
        x = np.empty(total)
        y = np.empty(total)
        at = 0
        for j, hi, lo, a, b in segments:  # one allocation, strided copies: as fast as the unbounded version
            if j == 0:
                x[at : at + b - a] = hi.x[a:b]
                y[at : at + b - a] = hi.y[a:b]
                at += b - a
            else:
                m = b - a
                x[at : at + 2 * m : 2] = hi.x[a:b]
                x[at + 1 : at + 2 * m : 2] = hi.x[a:b]
                y[at : at + 2 * m : 2] = hi.y[a:b]
                y[at + 1 : at + 2 * m : 2] = lo.y[a:b]
                at += 2 * m
        return x, y

def check_smoothing(alpha: float | None) -> None:
    if alpha is not None and not 0.0 < alpha <= 1.0:
        raise ValueError(f"smoothing must be in (0, 1] or None, got {alpha}")
