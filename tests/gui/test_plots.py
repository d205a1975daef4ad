import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import contextlib  # noqa: E402
import math  # noqa: E402

import numpy as np  # noqa: E402
from PySide6 import QtCore, QtWidgets  # noqa: E402
import pytest  # noqa: E402

from nnstudio.gui.plots import (  # noqa: E402
    MAX_EARLIER_RUNS,
    CurveBuffer,
    LossPlot,
    MetricsPlot,
    PeakPyramid,
    smooth_ema,
)


def ema_reference(y, alpha, initial=None):
    out = np.full(len(y), np.nan)
    state = initial
    for i, v in enumerate(y):
        if not math.isfinite(v):
            continue
        state = v if state is None else alpha * v + (1 - alpha) * state
        out[i] = state
    return out


@contextlib.contextmanager
def counting_paints(plot):
    """The paint events the plot's viewport receives inside the block."""
    from PySide6.QtCore import QEvent, QObject

    paints = []

    class Counter(QObject):
        def eventFilter(self, obj, event):
            if event.type() == QEvent.Type.Paint:
                paints.append(obj)
            return False

    counter = Counter()
    viewport = plot.plot_widget.viewport()
    viewport.installEventFilter(counter)
    try:
        yield paints
    finally:
        viewport.removeEventFilter(counter)


def shown(plot_widget, w=1000, h=600):
    plot_widget.resize(w, h)
    plot_widget.show()
    return plot_widget


@pytest.fixture
def loss_plot(qtbot):
    plot = LossPlot()
    qtbot.addWidget(plot)
    shown(plot)
    qtbot.waitExposed(plot)
    return plot


@pytest.fixture
def metrics_plot(qtbot):
    plot = MetricsPlot()
    qtbot.addWidget(plot)
    shown(plot, 800, 400)
    qtbot.waitExposed(plot)
    return plot


# ----- CurveBuffer ----------------------------------------------------------------------


def test_curve_buffer_grows_by_doubling_and_keeps_every_point():
    rng = np.random.default_rng(1)
    buf = CurveBuffer(capacity=16)
    xs, ys = [], []
    total = 0
    while total < 100_000:
        m = int(rng.integers(0, 2000))
        x = np.arange(total, total + m, dtype=float)
        y = rng.standard_normal(m)
        buf.extend(x, y)
        xs.append(x)
        ys.append(y)
        total += m
        buf.append(total, -1.0)
        xs.append(np.array([total], dtype=float))
        ys.append(np.array([-1.0]))
        total += 1
    assert len(buf) == total
    cap = buf.capacity
    assert cap >= total and cap < 2 * total
    assert cap == 16 * 2 ** round(math.log2(cap / 16))  # only ever doubled
    np.testing.assert_array_equal(buf.x, np.concatenate(xs))
    np.testing.assert_array_equal(buf.y, np.concatenate(ys))
    assert buf.x.base is not None  # a view, not a copy


def test_curve_buffer_clear_and_mismatch():
    buf = CurveBuffer(capacity=4)
    buf.extend(range(100), range(100))
    buf.clear()
    assert len(buf) == 0 and buf.capacity == 4
    assert buf.x.shape == (0,)
    with pytest.raises(ValueError, match="same length"):
        buf.extend([1, 2], [1])


# ----- smooth_ema ------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.001, 0.05, 0.3, 0.9, 0.999, 1.0])
def test_smooth_ema_matches_reference_with_nonfinite(alpha):
    rng = np.random.default_rng(2)
    y = rng.standard_normal(5000) * 10 + 3
    y[[0, 17, 18, 1000, 4999]] = [np.nan, np.nan, np.inf, -np.inf, np.nan]
    got = smooth_ema(y, alpha)
    want = ema_reference(y, alpha)
    np.testing.assert_array_equal(np.isnan(got), ~np.isfinite(y))
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9, equal_nan=True)


def test_smooth_ema_continues_in_chunks():
    rng = np.random.default_rng(3)
    y = rng.random(3000)
    y[1500] = np.nan
    whole = smooth_ema(y, 0.02)
    state, parts = None, []
    for chunk in np.array_split(y, [7, 8, 1500, 1501, 2999]):
        part = smooth_ema(chunk, 0.02, state)
        finite = part[np.isfinite(part)]
        state = float(finite[-1]) if finite.size else state
        parts.append(part)
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=1e-12, equal_nan=True)


def test_smooth_ema_rejects_bad_alpha_and_handles_all_nan():
    with pytest.raises(ValueError):
        smooth_ema([1.0], 0.0)
    assert np.isnan(smooth_ema([np.nan, np.nan], 0.5)).all()


# ----- LossPlot ----------------------------------------------------------------------------


def test_loss_plot_draws_exactly_the_added_steps(loss_plot):
    loss_plot.add_steps([1, 2, 3], [0.9, 0.8, 0.7])
    assert loss_plot.curve("steps").getData() == (None, None)  # only redraw() pushes
    loss_plot.add_steps(np.arange(4, 101), np.linspace(0.6, 0.1, 97))
    loss_plot.add_epoch(50, 0.5, 0.55)
    loss_plot.add_epoch(100, 0.2, None)
    loss_plot.redraw()
    x, y = loss_plot.curve("steps").getData()
    np.testing.assert_array_equal(x, np.arange(1, 101))
    np.testing.assert_allclose(y, np.r_[0.9, 0.8, 0.7, np.linspace(0.6, 0.1, 97)])
    tx, ty = loss_plot.curve("train").getData()
    np.testing.assert_array_equal(tx, [50, 100])
    np.testing.assert_array_equal(ty, [0.5, 0.2])
    vx, vy = loss_plot.curve("val").getData()
    np.testing.assert_array_equal(vx, [50])
    np.testing.assert_array_equal(vy, [0.55])
    assert loss_plot.getPlotItem().getAxis("bottom").labelText == "step"
    assert loss_plot.getPlotItem().getAxis("left").labelText == "loss"


def test_named_curve_accessors(loss_plot, metrics_plot):
    assert loss_plot.step_curve is loss_plot.curve("steps")
    assert loss_plot.train_curve is loss_plot.curve("train")
    assert loss_plot.val_curve is loss_plot.curve("val")
    assert loss_plot.smoothed_curve is None
    loss_plot.set_smoothing(0.5)
    assert loss_plot.smoothed_curve is loss_plot.curve("smoothed")
    metrics_plot.add_epoch(1, {"accuracy": 0.5})
    assert metrics_plot.curves == {"accuracy": metrics_plot.metric_curve("accuracy")}


def test_loss_plot_rejects_mismatched_steps(loss_plot):
    with pytest.raises(ValueError, match="one loss per step"):
        loss_plot.add_steps([1, 2], [0.1])


def test_nonfinite_losses_keep_finite_points_and_are_marked(loss_plot, qtbot):
    steps = np.arange(1, 11)
    losses = np.array([1.0, 2.0, np.nan, np.nan, 3.0, 4.0, np.inf, 5.0, 6.0, np.nan])
    loss_plot.add_steps(steps[:4], losses[:4])
    loss_plot.add_steps(steps[4:], losses[4:])
    loss_plot.add_epoch(10, float("nan"), 2.0)
    loss_plot.redraw()
    x, y = loss_plot.curve("steps").getData()
    finite = np.isfinite(losses)
    np.testing.assert_array_equal(x, steps)
    np.testing.assert_array_equal(y[finite], losses[finite])
    assert not np.isfinite(y[~finite]).any()
    assert loss_plot.curve("steps").opts["connect"] == "finite"
    # One x-marker pair per non-finite stretch, at the last finite value before it;
    # the NaN epoch train loss has no finite value at all and sits at 1.
    mx, my = loss_plot.nonfinite_item.getData()
    np.testing.assert_array_equal(mx, [3, 4, 7, 7, 10, 10, 10, 10])
    np.testing.assert_array_equal(my, [2, 2, 4, 4, 6, 6, 1, 1])
    assert loss_plot.curve("train").getData() == (None, None)
    assert loss_plot.nonfinite_item.opts["symbol"] == "x"
    assert "non-finite (NaN/inf)" in loss_plot.legend_labels()
    loss_plot.grab()
    (x0, x1), (y0, y1) = loss_plot.getPlotItem().vb.viewRange()
    assert all(map(math.isfinite, (x0, x1, y0, y1)))
    assert y0 <= 1.0 and 6.0 <= y1 < 100


def test_nonfinite_stretch_spanning_batches_is_one_marker(loss_plot):
    loss_plot.add_steps([1, 2], [1.0, np.nan])
    loss_plot.add_steps([3, 4], [np.nan, np.nan])
    loss_plot.add_steps([5], [2.0])
    loss_plot.redraw()
    mx, my = loss_plot.nonfinite_item.getData()
    np.testing.assert_array_equal(mx, [2, 4])
    np.testing.assert_array_equal(my, [1, 1])


def test_smoothing_curve_follows_raw_steps(loss_plot):
    rng = np.random.default_rng(4)
    losses = rng.random(300)
    losses[100] = np.nan
    loss_plot.add_steps(np.arange(100), losses[:100])
    loss_plot.set_smoothing(0.1)  # computed over what is there ...
    loss_plot.add_steps(np.arange(100, 300), losses[100:])  # ... then incrementally
    loss_plot.redraw()
    x, y = loss_plot.curve("smoothed").getData()
    np.testing.assert_array_equal(x, np.arange(300))
    np.testing.assert_allclose(y, ema_reference(losses, 0.1), rtol=1e-10, equal_nan=True)
    assert "step loss (smoothed)" in loss_plot.legend_labels()
    loss_plot.set_smoothing(None)
    assert loss_plot.curve("smoothed") is None
    assert "step loss (smoothed)" not in loss_plot.legend_labels()


def test_log_y_maps_the_curve(loss_plot):
    loss_plot.add_steps([1, 2, 3], [1.0, 10.0, 100.0])
    loss_plot.redraw()
    loss_plot.set_log_y(True)
    np.testing.assert_allclose(loss_plot.curve("steps").getData()[1], [0, 1, 2])
    loss_plot.set_log_y(False)
    np.testing.assert_allclose(loss_plot.curve("steps").getData()[1], [1, 10, 100])


def test_start_run_fades_curves_into_history(loss_plot):
    plot_item = loss_plot.getPlotItem()
    loss_plot.start_run("first")
    loss_plot.add_steps([1, 2], [1.0, 0.5])
    loss_plot.add_epoch(2, 0.7, 0.8)
    loss_plot.redraw()
    old_curve = loss_plot.curve("steps")
    old_train = loss_plot.curve("train")
    loss_plot.start_run("second")
    assert loss_plot.earlier_run_names() == ["first"]
    assert "first" in loss_plot.legend_labels()
    assert old_curve in plot_item.items and loss_plot.curve("steps") is not old_curve
    np.testing.assert_array_equal(old_curve.getData()[0], [1, 2])  # data kept
    assert_faded(old_train, loss_plot.backgroundBrush().color())
    assert old_train.opts["pen"].style() == pg_custom_dash()
    assert old_train.zValue() < loss_plot.curve("train").zValue()
    assert loss_plot.curve("steps").getData() == (None, None)
    assert loss_plot.run_name == "second"


def assert_faded(item, background):
    """An earlier run's pen: one pixel, opaque, its colour mixed with the background (nearer the background)."""
    pen = item.opts["pen"]
    original, color = item.fade.color, pen.color()
    assert color.alpha() == 255 and pen.widthF() == 1
    channels = ("red", "green", "blue")
    for ch in channels:
        lo, hi = sorted((getattr(original, ch)(), getattr(background, ch)()))
        assert lo <= getattr(color, ch)() <= hi
    to_background = sum(abs(getattr(color, ch)() - getattr(background, ch)()) for ch in channels)
    to_original = sum(abs(getattr(color, ch)() - getattr(original, ch)()) for ch in channels)
    assert to_background < to_original


def test_earlier_runs_follow_the_palette_and_skip_per_view_work(loss_plot, qapp):
    from PySide6.QtGui import QColor, QPalette

    loss_plot.start_run("first")
    loss_plot.add_steps(np.arange(1, 301), np.linspace(2.0, 0.5, 300))
    loss_plot.add_epoch(300, 0.7, 0.8)
    loss_plot.redraw()
    old_steps = loss_plot.curve("steps")
    loss_plot.start_run("second")
    # Frozen data: no clipping to the view, no downsampling, no range limit (moderate values).
    assert not old_steps.opts["clipToView"] and not old_steps.opts["autoDownsample"]
    assert old_steps.opts["dynamicRangeLimit"] is None
    assert_faded(old_steps, loss_plot.backgroundBrush().color())
    dark = QPalette(loss_plot.palette())
    dark.setColor(QPalette.ColorRole.Base, QColor("#202020"))
    dark.setColor(QPalette.ColorRole.Text, QColor("#f0f0f0"))
    loss_plot.plot_widget.setPalette(dark)
    qapp.processEvents()
    assert loss_plot.backgroundBrush().color() == QColor("#202020")
    assert_faded(old_steps, QColor("#202020"))  # mixed again with the new background


def test_an_exploded_earlier_run_keeps_the_range_limit(loss_plot):
    loss_plot.start_run("exploded")
    loss_plot.add_steps([1, 2, 3], [1.0, 1e9, np.inf])
    loss_plot.redraw()
    old_steps = loss_plot.curve("steps")
    loss_plot.start_run("fixed")
    assert old_steps.opts["dynamicRangeLimit"] is not None


def test_a_change_of_range_is_painted_once(loss_plot, qtbot, qapp):
    """Autoranging settles before the paint: one paint per change, not one per round of autoranging."""
    for r in range(3):
        loss_plot.start_run(f"run-{r}")
        loss_plot.add_steps(np.arange(1, 501), np.linspace(2.0, 0.2 + r, 500))
        for e in range(1, 6):
            loss_plot.add_epoch(100 * e, 1.0 / e + r, 1.2 / e + r)
        loss_plot.redraw()
    loss_plot.start_run("current")  # longer than the earlier runs, and not on round values
    loss_plot.add_steps(np.arange(1, 1235), np.linspace(2.93, 1.07, 1234))
    loss_plot.add_epoch(1234, 1.5, 1.6)
    loss_plot.set_live(True)
    loss_plot.redraw()
    qtbot.waitUntil(lambda: loss_plot.curve("steps").getData()[0] is not None)

    with counting_paints(loss_plot) as paints:
        for live in (False, True, False):
            for _ in range(5):
                qapp.processEvents()  # nothing left to paint from before
            before = loss_plot.getPlotItem().vb.viewRange()
            paints.clear()
            loss_plot.set_live(live)  # rounded bounds while live, exact ones after: the view moves
            qtbot.waitUntil(lambda: len(paints) > 0)
            for _ in range(5):
                qapp.processEvents()
            assert loss_plot.getPlotItem().vb.viewRange() != before
            assert len(paints) == 1
    loss_plot.set_live(False)


def pg_custom_dash():
    from PySide6.QtCore import Qt

    return Qt.PenStyle.CustomDashLine


def test_earlier_runs_do_not_squash_the_current_one(loss_plot):
    loss_plot.start_run("exploded")
    loss_plot.add_steps([1, 2, 3], [1.0, 1e6, np.inf])
    loss_plot.start_run("fixed")
    loss_plot.redraw()
    loss_plot.grab()
    assert loss_plot.getPlotItem().vb.viewRange()[1][1] > 1e5  # nothing current yet
    loss_plot.add_steps([1, 2, 3, 4], [2.0, 1.5, 1.2, 1.0])
    loss_plot.redraw()
    loss_plot.grab()
    (x0, x1), (y0, y1) = loss_plot.getPlotItem().vb.viewRange()
    assert y1 < 3 and x0 <= 1 and x1 >= 4


def test_start_run_keeps_at_most_five_earlier_runs(loss_plot):
    plot_item = loss_plot.getPlotItem()
    for i in range(8):
        loss_plot.start_run(f"run-{i}")
        loss_plot.add_steps([1, 2], [float(i), np.nan])
        loss_plot.add_epoch(2, 1.0, 1.0)
        loss_plot.redraw()
    loss_plot.start_run("current")
    names = loss_plot.earlier_run_names()
    assert MAX_EARLIER_RUNS == 5
    assert names == [f"run-{i}" for i in (7, 6, 5, 4, 3)]
    labels = loss_plot.legend_labels()
    assert all(n in labels for n in names) and "run-2" not in labels and "run-0" not in labels
    # steps, train, val and the non-finite markers of 5 runs, plus the current run's 4.
    assert len(plot_item.items) == 5 * 4 + 4
    loss_plot.clear_history()
    assert loss_plot.earlier_run_names() == []
    assert len(plot_item.items) == 4
    assert not any(n in loss_plot.legend_labels() for n in names)


def test_start_run_without_data_only_renames(loss_plot):
    loss_plot.start_run("a")
    loss_plot.start_run("b")
    assert loss_plot.earlier_run_names() == []
    assert loss_plot.run_name == "b"


def test_clear_history_including_current(loss_plot):
    loss_plot.add_steps([1], [np.nan])
    loss_plot.redraw()
    loss_plot.clear_history(include_current=True)
    loss_plot.redraw()
    assert loss_plot.curve("steps").getData() == (None, None)
    assert loss_plot.nonfinite_item.getData() == (None, None)
    assert "non-finite (NaN/inf)" not in loss_plot.legend_labels()


def test_export_png_writes_an_image(loss_plot, tmp_path):
    loss_plot.add_steps(np.arange(50), np.linspace(1, 0, 50))
    path = tmp_path / "loss.png"
    loss_plot.export_png(path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000


def test_export_png_into_missing_folder_raises_oserror(loss_plot, tmp_path):
    with pytest.raises(OSError, match="does not exist"):
        loss_plot.export_png(tmp_path / "nope" / "loss.png")


def test_live_timer_redraws(loss_plot, qtbot):
    loss_plot.set_live(True)
    assert loss_plot.is_live()
    loss_plot.add_steps([1, 2, 3], [3.0, 2.0, 1.0])
    qtbot.waitUntil(lambda: loss_plot.curve("steps").getData()[0] is not None, timeout=2000)
    np.testing.assert_array_equal(loss_plot.curve("steps").getData()[1], [3, 2, 1])
    loss_plot.set_live(False)
    assert not loss_plot.is_live()
    loss_plot.add_epoch(3, 2.0, 2.5)
    loss_plot.set_live(False)  # a final redraw
    np.testing.assert_array_equal(loss_plot.curve("val").getData()[1], [2.5])


def test_object_name_only_when_given(qtbot):
    named, unnamed = LossPlot(objectName="lossPlot"), MetricsPlot()
    qtbot.addWidget(named)
    qtbot.addWidget(unnamed)
    assert named.objectName() == "lossPlot"
    assert unnamed.objectName() == ""


# ----- decimation for long runs ----------------------------------------------------------


def test_peak_pyramid_keeps_envelope_and_tail():
    raw = CurveBuffer()
    pyramid = PeakPyramid(factor=4)
    y = np.arange(70, dtype=float)
    y[9] = np.nan
    raw.extend(np.arange(70), y)
    pyramid.update(raw)
    x1, y1 = pyramid.data(raw, 1)
    # 17 blocks of 4 -> max/min pairs at each block's first x, then the 2 raw leftovers.
    np.testing.assert_array_equal(x1[:6], [0, 0, 4, 4, 8, 8])
    np.testing.assert_array_equal(y1[:4], [3, 0, 7, 4])
    assert np.isnan(y1[4:6]).all()  # a NaN inside a block stays visible
    np.testing.assert_array_equal(x1[-2:], [68, 69])
    assert len(x1) == 2 * 17 + 2
    raw.extend([70, 71], [500.0, -500.0])
    pyramid.update(raw)
    x2, y2 = pyramid.data(raw, 2)  # blocks of 16 built from level 1
    assert len(x2) == 2 * 4 + (72 - 64)
    assert np.nanmax(y2) == 500 and np.nanmin(y2) == -500


def test_long_run_draws_from_pyramid_until_zoomed_in(loss_plot, qtbot):
    n = 1_000_000
    y = np.sin(np.arange(n) / 1000.0)
    y[123_456] = 40.0
    loss_plot.add_steps(np.arange(n), y)
    loss_plot.redraw()
    curve = loss_plot.curve("steps")
    ox, oy = curve.getOriginalDataset()
    assert len(ox) < n / 10
    assert oy.max() == 40.0 and oy.min() == y.min()
    assert ox[0] == 0 and ox[-1] == n - 1
    # Zoomed into the recent steps (kept whole, plots.RECENT_POINTS): every raw point.
    loss_plot.getPlotItem().vb.setXRange(n - 1000, n, padding=0)
    qtbot.waitUntil(lambda: curve.getOriginalDataset()[0][-2] == n - 2, timeout=2000)
    x, yy = curve.getData()  # clipped to the view, every raw point
    assert len(x) < 2000
    np.testing.assert_array_equal(yy, y[x.astype(int)])
    np.testing.assert_array_equal(np.unique(x), np.arange(x.min(), x.max() + 1))
    # Zoomed into old steps (summarised in blocks of 32 to bound memory): their min/max envelope.
    loss_plot.getPlotItem().vb.setXRange(500_000, 501_000, padding=0)
    qtbot.waitUntil(lambda: len(curve.getData()[0]) and curve.getData()[0].max() < 600_000, timeout=2000)
    x, yy = curve.getData()
    starts = x.astype(int)
    assert np.all(starts % 32 == 0) and 2 * (1000 // 32) <= len(x) < 200
    blocks = y[: n // 32 * 32].reshape(-1, 32)
    whole = 0
    for start in np.unique(starts):
        drawn = set(yy[starts == start].tolist())
        envelope = {blocks[start // 32].max(), blocks[start // 32].min()}
        assert drawn <= envelope, start
        whole += drawn == envelope
    assert whole >= len(np.unique(starts)) - 2  # only the view's clipped edges may show half a block


def test_long_earlier_run_is_kept_coarse(loss_plot):
    loss_plot.add_steps(np.arange(2_000_000), np.zeros(2_000_000))
    loss_plot.redraw()
    old = loss_plot.curve("steps")
    loss_plot.start_run("next")
    assert len(old.getOriginalDataset()[0]) < 100_000


# ----- MetricsPlot ----------------------------------------------------------------------


def test_metrics_plot_makes_a_curve_per_metric(metrics_plot):
    metrics_plot.add_epoch(1, {"accuracy": 0.5, "f1": 0.4})
    metrics_plot.add_epoch(2, {"accuracy": 0.7, "f1": 0.6, "auroc": 0.8})
    metrics_plot.redraw()
    assert metrics_plot.metric_names() == ["accuracy", "f1", "auroc"]
    x, y = metrics_plot.metric_curve("accuracy").getData()
    np.testing.assert_array_equal(x, [1, 2])
    np.testing.assert_array_equal(y, [0.5, 0.7])
    x, y = metrics_plot.metric_curve("auroc").getData()
    np.testing.assert_array_equal(x, [2])
    colors = {metrics_plot.metric_curve(n).opts["pen"].color().name() for n in ("accuracy", "f1", "auroc")}
    assert len(colors) == 3
    assert {"accuracy", "f1", "auroc", "learning rate"} <= set(metrics_plot.legend_labels())


def test_epochs_added_together_draw_as_if_added_one_by_one(loss_plot, metrics_plot, qtbot):
    one = LossPlot()
    qtbot.addWidget(one)
    steps, train, val = [10, 20, 30], [0.9, 0.7, 0.6], [0.95, None, 0.65]
    loss_plot.add_epochs(steps, train, val)
    for args in zip(steps, train, val):
        one.add_epoch(*args)
    for plot in (loss_plot, one):
        plot.redraw()
    for curve in ("train_curve", "val_curve"):
        np.testing.assert_array_equal(getattr(loss_plot, curve).getData(), getattr(one, curve).getData())
    np.testing.assert_array_equal(loss_plot.val_curve.getData()[0], [10, 30])  # no point for a missing loss
    with pytest.raises(ValueError, match="3 steps, 3 train and 2 validation"):
        loss_plot.add_epochs(steps, train, val[:2])

    metrics_plot.add_epochs([1, 2, 3], [{"accuracy": 0.5}, {"accuracy": 0.6, "f1": 0.4}, {"f1": 0.5}])
    metrics_plot.add_lrs([1, 2, 3], [1e-3, float("nan"), 2e-3])
    metrics_plot.redraw()
    np.testing.assert_array_equal(metrics_plot.metric_curve("accuracy").getData(), [[1, 2], [0.5, 0.6]])
    np.testing.assert_array_equal(metrics_plot.metric_curve("f1").getData(), [[2, 3], [0.4, 0.5]])
    assert metrics_plot.metric_names() == ["accuracy", "f1"]
    assert metrics_plot.lr_view.viewRange()[1][1] == pytest.approx(2e-3 * 1.15)  # the NaN is skipped
    with pytest.raises(ValueError, match="2 epochs and 1 sets"):
        metrics_plot.add_epochs([1, 2], [{}])


def test_metrics_plot_learning_rate_on_right_axis(metrics_plot):
    for epoch, lr in enumerate([1e-3, 5e-4, 1e-4], start=1):
        metrics_plot.add_lr(epoch, lr)
    metrics_plot.add_epoch(1, {"accuracy": 0.9})
    metrics_plot.redraw()
    lr_curve = metrics_plot.lr_curve
    np.testing.assert_allclose(lr_curve.getData()[1], [1e-3, 5e-4, 1e-4])
    assert lr_curve in metrics_plot.lr_view.addedItems
    assert lr_curve not in metrics_plot.getPlotItem().items
    axis = metrics_plot.lr_axis
    assert axis.isVisible() and axis.linkedView() is metrics_plot.lr_view
    assert axis.labelText == "learning rate"
    assert metrics_plot.lr_view.linkedView(metrics_plot.lr_view.XAxis) is metrics_plot.getPlotItem().vb
    metrics_plot.grab()
    lo, hi = metrics_plot.lr_view.viewRange()[1]
    assert lo <= 1e-4 and hi >= 1e-3 and hi < 1e-2


def test_metrics_plot_history_and_colours_persist(metrics_plot, tmp_path):
    metrics_plot.start_run("a")
    metrics_plot.add_epoch(1, {"accuracy": 0.5})
    metrics_plot.add_lr(1, 0.1)
    metrics_plot.redraw()
    first_color = metrics_plot.metric_curve("accuracy").opts["pen"].color().name()
    old_lr = metrics_plot.lr_curve
    metrics_plot.start_run("b")
    assert metrics_plot.earlier_run_names() == ["a"]
    assert "a" in metrics_plot.legend_labels()
    assert old_lr in metrics_plot.lr_view.addedItems  # the faded lr stays on its axis
    assert metrics_plot.metric_curve("accuracy") is None  # created on first sight
    metrics_plot.add_epoch(1, {"accuracy": 0.6})
    metrics_plot.redraw()
    assert metrics_plot.metric_curve("accuracy").opts["pen"].color().name() == first_color
    metrics_plot.clear_history()
    assert old_lr not in metrics_plot.lr_view.addedItems
    metrics_plot.export_png(tmp_path / "metrics.png")
    assert (tmp_path / "metrics.png").stat().st_size > 1000


def test_metrics_plot_live_timer(metrics_plot, qtbot):
    metrics_plot.set_live(True)
    metrics_plot.add_epoch(1, {"accuracy": 0.5})
    qtbot.waitUntil(lambda: metrics_plot.metric_curve("accuracy").getData()[0] is not None, timeout=2000)
    metrics_plot.set_live(False)
    assert not metrics_plot.is_live()


def test_the_pixmap_cache_holds_every_cached_item_of_the_plots(loss_plot, metrics_plot):
    """Axes paint from pixmaps; Qt's cache (10 MiB by default) must hold them all, or it evicts them in turn
    and every repaint draws everything again."""
    from PySide6.QtGui import QPixmapCache

    for r in range(MAX_EARLIER_RUNS + 1):
        loss_plot.start_run(f"run-{r}")
        metrics_plot.start_run(f"run-{r}")
        loss_plot.add_steps(np.arange(1, 1001), np.linspace(2.0, 0.5, 1000))
        for e in range(1, 11):
            loss_plot.add_epoch(100 * e, 1.0 / e, 1.1 / e)
            metrics_plot.add_epoch(e, {"accuracy": 0.5 + e / 40, "f1": 0.4 + e / 40})
            metrics_plot.add_lr(e, 1e-3)
        loss_plot.redraw()
        metrics_plot.redraw()
    needed = 0
    for plot in (loss_plot.plot_widget, metrics_plot.plot_widget):
        viewport = plot.viewport()
        pixmap_kb = viewport.width() * viewport.height() * plot.devicePixelRatioF() ** 2 * 4 / 1024
        cached = [item for item in plot.scene().items()
                  if item.cacheMode() != QtWidgets.QGraphicsItem.CacheMode.NoCache and item.isVisible()]
        # Only the axes (the loss plot has no right one); earlier runs are in the view's background.
        assert len(cached) in (2, 3) and all(type(item).__name__ == "AxisItem" for item in cached)
        needed += len(cached) * pixmap_kb
    assert QPixmapCache.cacheLimit() >= needed


def test_remembered_bounds_of_earlier_runs_autorange_as_pyqtgraph_does(loss_plot, metrics_plot):
    import pyqtgraph as pg

    def same_as_pyqtgraph(plot):
        view = plot.getPlotItem().vb
        mine = view.childrenBounds()
        again = view.childrenBounds()  # from what it remembered
        reference = pg.ViewBox.childrenBounds(view)
        for axis in (0, 1):
            assert (mine[axis] is None) == (reference[axis] is None)
            if reference[axis] is not None:
                np.testing.assert_allclose(mine[axis], reference[axis], rtol=1e-12)
                np.testing.assert_allclose(again[axis], reference[axis], rtol=1e-12)

    for r in range(3):
        loss_plot.start_run(f"run-{r}")
        metrics_plot.start_run(f"run-{r}")
        n = 500 * (r + 1)
        loss_plot.add_steps(np.arange(1, n + 1), np.linspace(3.0 - r, 0.5, n))
        for e in range(1, 6):
            loss_plot.add_epoch(n * e // 5, 1.0 / e + r, 1.1 / e + r)
            metrics_plot.add_epoch(e, {"accuracy": 0.5 + e / 40 - r / 10})
            metrics_plot.add_lr(e, 1e-3)
        loss_plot.redraw()
        metrics_plot.redraw()
        for plot in (loss_plot, metrics_plot):
            same_as_pyqtgraph(plot.plot_widget)
    loss_plot.start_run("live")  # nothing drawn yet: earlier runs give the y range
    same_as_pyqtgraph(loss_plot.plot_widget)
    loss_plot.set_log_y(True)
    same_as_pyqtgraph(loss_plot.plot_widget)
    loss_plot.set_log_y(False)
    same_as_pyqtgraph(loss_plot.plot_widget)
    loss_plot.plan_x(4000)
    loss_plot.set_live(True)
    loss_plot.add_steps([1, 2, 3], [0.2, 0.1, 0.15])
    loss_plot.redraw()  # now the current run alone gives it, and x spans the plan
    same_as_pyqtgraph(loss_plot.plot_widget)
    loss_plot.set_log_y(True)
    same_as_pyqtgraph(loss_plot.plot_widget)
    loss_plot.set_live(False)
    same_as_pyqtgraph(loss_plot.plot_widget)


def _rows_with(image, color, x0, x1):
    """Rows of ``image`` where ``color`` fills most pixels between columns x0 and x1."""
    rows = []
    for y in range(image.height()):
        hits = sum(image.pixelColor(x, y).rgb() == color.rgb() for x in range(x0, x1, 4))
        if hits >= 0.8 * len(range(x0, x1, 4)):
            rows.append(y)
    return rows


def test_earlier_runs_are_painted_into_the_cached_background(loss_plot, qapp, tmp_path):
    """One backdrop pixmap for all earlier runs (a copy per repaint), kept in step with the view and the runs."""
    from PySide6.QtGui import QImage

    widget = loss_plot.plot_widget
    loss_plot.start_run("first")
    loss_plot.add_steps(np.arange(1, 1001), np.full(1000, 1.13))  # off the grid lines
    loss_plot.redraw()
    old_steps = loss_plot.curve("steps")
    loss_plot.start_run("second")
    loss_plot.add_steps(np.arange(1, 1001), np.linspace(2.5, 0.5, 1000))
    loss_plot.redraw()
    flag = QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemHasNoContents
    assert all(part.flags() & flag for part in (old_steps.curve, old_steps.scatter))
    assert old_steps.curve.cacheMode() == QtWidgets.QGraphicsItem.CacheMode.NoCache
    faded = old_steps.opts["pen"].color()
    view = widget.getPlotItem().vb

    def row_of(y):
        return round(widget.mapFromScene(view.mapViewToScene(QtCore.QPointF(500, y))).y())

    def columns():
        left = widget.mapFromScene(view.mapViewToScene(QtCore.QPointF(100, 1.13))).x()
        right = widget.mapFromScene(view.mapViewToScene(QtCore.QPointF(900, 1.13))).x()
        return left, right

    qapp.processEvents()
    rows = _rows_with(widget.grab().toImage(), faded, *columns())
    assert rows and abs(rows[0] - row_of(1.13)) <= 1

    view.setYRange(0.0, 4.0, padding=0)  # the view moves: the backdrop moves with it
    qapp.processEvents()
    rows = _rows_with(widget.grab().toImage(), faded, *columns())
    assert rows and abs(rows[0] - row_of(1.13)) <= 1

    path = tmp_path / "plot.png"
    loss_plot.export_png(path)  # the exporter draws items, so the earlier run is an item again for it
    exported = QImage(str(path))
    assert any(exported.pixelColor(x, y).rgb() == faded.rgb()
               for x in range(exported.width()) for y in range(0, exported.height(), 2))
    assert old_steps.curve.flags() & flag  # and back into the backdrop

    loss_plot.clear_history()
    qapp.processEvents()
    assert not _rows_with(widget.grab().toImage(), faded, *columns())


def test_a_planned_run_keeps_the_x_axis_still_while_it_grows(loss_plot, qtbot):
    loss_plot.start_run("planned")
    loss_plot.plan_x(5000)  # 5000 steps to come
    loss_plot.set_live(True)
    ranges = []
    for end in (100, 900, 2500, 4999):
        loss_plot.add_steps(np.arange(end - 99, end + 1), np.linspace(2.0, 1.0, 100))
        loss_plot.redraw()
        loss_plot.grab()
        ranges.append(tuple(loss_plot.getPlotItem().vb.viewRange()[0]))
    # From the first points on, x spans the whole run; once the axes have sized themselves to the first
    # points' ticks, the view does not move as the run advances.
    assert all(5000 <= x1 <= 5000 * 1.25 for _x0, x1 in ranges)
    assert len(set(ranges[1:])) == 1
    loss_plot.set_live(False)  # over: the view fits the data exactly
    loss_plot.grab()
    x0, x1 = loss_plot.getPlotItem().vb.viewRange()[0]
    assert x1 < ranges[0][1] and x0 <= 1 and x1 >= 4999
    loss_plot.plan_x(None)


def test_hold_paint_paints_in_a_later_pass(loss_plot, qtbot):
    with counting_paints(loss_plot) as paints:
        loss_plot.hold_paint()
        assert loss_plot.is_paint_held()
        loss_plot.add_steps([1, 2, 3], [1.0, 0.8, 0.7])
        loss_plot.redraw()
        loss_plot.plot_widget.update()
        assert paints == []  # nothing painted in this pass
        qtbot.waitUntil(lambda: not loss_plot.is_paint_held() and len(paints) > 0)
        assert list(loss_plot.step_curve.getData()[0]) == [1, 2, 3]


def test_an_earlier_run_keeps_a_bounded_envelope_of_its_steps(loss_plot):
    from nnstudio.gui.plots import FROZEN_MAX_BLOCKS

    rng = np.random.default_rng(0)
    losses = np.abs(rng.standard_normal(20_000)) + np.linspace(2.0, 0.1, 20_000)
    loss_plot.start_run("long")
    loss_plot.add_steps(np.arange(1, 20_001), losses)
    loss_plot.redraw()
    old = loss_plot.curve("steps")
    loss_plot.start_run("next")
    x, y = old.getData()
    assert len(x) <= 2 * FROZEN_MAX_BLOCKS < len(losses)
    assert y.max() == losses.max() and y.min() == losses.min()  # the peaks survive
    assert x[0] <= 1 + 20_000 / FROZEN_MAX_BLOCKS and x[-1] >= 20_000 - 20_000 / FROZEN_MAX_BLOCKS


def test_scheduled_redraws_paint_later_and_only_what_changed(loss_plot, qtbot, qapp):
    loss_plot.start_run("r")
    loss_plot.add_steps([1, 2, 3], [1.0, 0.9, 0.8])
    loss_plot.set_live(True)
    loss_plot.redraw()
    qtbot.waitUntil(lambda: not loss_plot.is_paint_held())
    for _ in range(5):
        qapp.processEvents()
    try:
        with counting_paints(loss_plot) as paints:
            loss_plot.redraw_later()  # nothing new: nothing to paint
            assert not loss_plot.is_paint_held()
            for _ in range(5):
                qapp.processEvents()
            assert paints == []
            loss_plot.add_steps([4, 5], [0.7, 0.6])
            loss_plot.redraw_later()
            assert loss_plot.is_paint_held() and paints == []  # painted in a later pass
            qtbot.waitUntil(lambda: len(paints) > 0 and not loss_plot.is_paint_held())
            assert list(loss_plot.step_curve.getData()[0]) == [1, 2, 3, 4, 5]
    finally:
        loss_plot.set_live(False)
