"""Long runs: the step history keeps recent steps whole and a bounded min/max summary of older ones,
and the plot draws the same envelope it drew from the whole history."""

from __future__ import annotations

import numpy as np
import pytest

from nnstudio.gui.plots import RECENT_POINTS, CurveBuffer, LossPlot, PeakPyramid


def _envelope(x: np.ndarray, y: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bin: max, min of the finite values, and whether a non-finite value is drawn there."""
    bins = np.searchsorted(edges, x, side="right") - 1
    k = len(edges) - 1
    hi = np.full(k, -np.inf)
    lo = np.full(k, np.inf)
    bad = np.zeros(k, dtype=bool)
    finite = np.isfinite(y)
    np.maximum.at(hi, bins[finite], y[finite])
    np.minimum.at(lo, bins[finite], y[finite])
    bad[bins[~finite]] = True
    return hi, lo, bad


def _feed(raw: CurveBuffer, pyramid: PeakPyramid, y: np.ndarray, rng: np.random.Generator) -> None:
    start = 0
    while start < y.size:
        m = int(rng.integers(1, 3000))
        raw.extend(np.arange(start, min(start + m, y.size)), y[start : start + m])
        pyramid.update(raw)
        start += m


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_bounded_pyramid_draws_the_same_envelope_as_the_whole_history(level):
    rng = np.random.default_rng(level)
    n = 300_000
    y = np.cumsum(rng.normal(size=n))
    y[rng.choice(n, 40, replace=False)] = np.nan
    y[123_457] = 1e6
    y[7] = -1e6
    factor = 4
    whole_raw, whole = CurveBuffer(), PeakPyramid(factor=factor, max_levels=6, keep_raw=10**9, keep_blocks=10**9)
    kept_raw, kept = CurveBuffer(), PeakPyramid(factor=factor, max_levels=6, keep_raw=512, keep_blocks=256)
    _feed(whole_raw, whole, y, np.random.default_rng(1))
    _feed(kept_raw, kept, y, np.random.default_rng(2))
    assert kept_raw.dropped > 0 and len(kept_raw) <= 2 * 512 + 3000 and kept.levels == 6
    x_full, y_full = whole.data(whole_raw, level)
    x_kept, y_kept = kept.data(kept_raw, level)
    assert x_kept.size < x_full.size or level >= 3
    assert x_kept[0] == x_full[0] == 0 and x_kept[-1] == x_full[-1] == n - 1
    assert np.all(np.diff(x_kept) >= 0)
    edges = np.arange(0, n + factor**6, factor**6)  # pixel columns: whole blocks of the coarsest level
    hi_full, lo_full, bad_full = _envelope(x_full, y_full, edges)
    hi_kept, lo_kept, bad_kept = _envelope(x_kept, y_kept, edges)
    np.testing.assert_array_equal(bad_kept, bad_full)  # every non-finite stretch still shows
    assert bad_full.sum() >= 5 and (~bad_full).sum() >= 10
    # A block holding a NaN draws as NaN (as the whole-history pyramid's blocks do when zoomed out), so the
    # finite extremes are compared where no NaN is drawn.
    np.testing.assert_array_equal(hi_kept[~bad_full], hi_full[~bad_full])
    np.testing.assert_array_equal(lo_kept[~bad_full], lo_full[~bad_full])
    # The newest steps are drawn exactly as before (at level 0: every step).
    recent_kept, recent_full = x_kept >= n - 256, x_full >= n - 256
    np.testing.assert_array_equal(x_kept[recent_kept], x_full[recent_full])
    np.testing.assert_array_equal(y_kept[recent_kept], y_full[recent_full])
    if level == 0:
        np.testing.assert_array_equal(x_kept[recent_kept], np.arange(n - 256, n))


def test_soak_millions_of_steps_keep_the_plot_buffers_bounded(qtbot):
    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.resize(1000, 600)
    plot.show()
    qtbot.waitExposed(plot)
    plot.set_smoothing(0.05)
    rng = np.random.default_rng(0)
    chunk = 50_000
    sizes = {}
    for start in range(0, 6_000_000, chunk):
        steps = np.arange(start, start + chunk)
        plot.add_steps(steps, 1.0 / (1.0 + steps / 1e5) + 0.05 * rng.random(chunk))
        if (start + chunk) % 1_000_000 == 0:
            plot.redraw()
            sizes[start + chunk] = plot.history_nbytes()
    # What an unbounded history held: 16 bytes per step per curve (raw and smoothed), before doubling slack.
    unbounded = 2 * 16 * 6_000_000
    print({k: round(v / 2**20, 1) for k, v in sizes.items()})
    assert sizes[6_000_000] < 20 * 2**20 < unbounded / 8
    assert sizes[6_000_000] <= 1.05 * sizes[3_000_000]  # flat, not growing with the run
    x, y = plot.step_curve.getOriginalDataset()
    assert x[0] == 0 and x[-1] == 6_000_000 - 1
    assert y.max() == pytest.approx(1.0, abs=0.06)  # the first steps' values are still drawn
    step = plot._plot._series["steps"]
    assert len(step.buffer) <= 2 * RECENT_POINTS + chunk and step.buffer.dropped > 5_000_000
