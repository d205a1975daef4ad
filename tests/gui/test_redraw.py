"""The live-plot redraw scheduler: one plot per tick, intervals from each plot's measured paint cost."""

from __future__ import annotations

import pytest

from nnstudio.gui.redraw import RedrawScheduler, scheduler


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakePlot:
    """Each redraw 'paints' for `paint_s` seconds, reported by the next take_paint_seconds()."""

    def __init__(self, name: str, paint_s: float):
        self.name = name
        self.paint_s = paint_s
        self.pending = 0.0
        self.redraws: list[float] = []

    def redraw(self) -> None:
        self.redraws.append(clock.now)
        self.pending += self.paint_s

    def take_paint_seconds(self) -> float:
        spent, self.pending = self.pending, 0.0
        return spent


clock = FakeClock()


@pytest.fixture
def sched(qapp):
    clock.now = 100.0
    s = RedrawScheduler(tick_ms=50, min_interval_ms=250, max_interval_ms=2000, budget=0.025, clock=clock)
    yield s
    s.deleteLater()


def run_for(s: RedrawScheduler, seconds: float, tick: float = 0.05) -> list[str]:
    order = []
    for _ in range(round(seconds / tick)):
        clock.now += tick
        plot = s.tick()
        if plot is not None:
            order.append(plot.name)
    return order


def test_one_plot_per_tick_and_never_two_at_once(sched):
    a, b = FakePlot("a", 0.001), FakePlot("b", 0.001)
    sched.add(a)
    sched.add(b)
    assert sched.is_active()
    run_for(sched, 10.0)
    times = sorted(a.redraws + b.redraws)
    assert len(times) == len(set(times))  # no tick redrew both
    # cheap plots redraw at the fastest rate: every 250 ms, each
    assert 35 <= len(a.redraws) <= 41 and 35 <= len(b.redraws) <= 41


def test_costly_painting_lengthens_the_interval_to_the_budget(sched):
    cheap, costly = FakePlot("cheap", 0.002), FakePlot("costly", 0.025)
    sched.add(cheap)
    sched.add(costly)
    run_for(sched, 20.0)
    # 25 ms of painting per redraw at a 2.5% budget: once a second, not four times
    assert sched.interval(costly) == pytest.approx(1.0, rel=0.05)
    assert sched.interval(cheap) == pytest.approx(0.25)
    assert len(costly.redraws) <= 24 and len(cheap.redraws) >= 70
    paint_share = sum(costly.paint_s for _ in costly.redraws) / 20.0
    assert paint_share <= 0.03


def test_interval_is_clamped_and_recovers_when_painting_gets_cheap(sched):
    plot = FakePlot("p", 1.0)  # a second of painting per redraw would mean a 40 s interval
    sched.add(plot)
    run_for(sched, 10.0)
    assert sched.interval(plot) == pytest.approx(2.0)
    plot.paint_s = 0.0  # nothing new to draw: redraws cost nothing
    run_for(sched, 20.0)
    assert sched.interval(plot) == pytest.approx(0.25, abs=0.01)


def test_the_paint_cost_carries_over_to_the_next_live_period(sched):
    plot = FakePlot("p", 0.025)
    sched.add(plot)
    run_for(sched, 10.0)
    sched.remove(plot)
    plot.redraws.clear()
    sched.add(plot)  # the next run: no burst of 4 redraws a second while the average catches up
    assert sched.interval(plot) == pytest.approx(1.0, rel=0.05)
    run_for(sched, 5.0)
    assert len(plot.redraws) <= 6


def test_remove_stops_the_timer_and_redraws(sched):
    plot = FakePlot("p", 0.0)
    sched.add(plot)
    sched.add(plot)  # twice is once
    run_for(sched, 1.0)
    n = len(plot.redraws)
    assert n >= 3
    sched.remove(plot)
    assert not sched.is_active() and not sched.contains(plot) and sched.interval(plot) is None
    run_for(sched, 1.0)
    assert len(plot.redraws) == n


def test_a_deleted_widget_is_dropped(sched, qtbot):
    from PySide6.QtWidgets import QWidget

    class Dying(QWidget):
        def redraw(self) -> None:
            self.update()

        def take_paint_seconds(self) -> float:
            self.objectName()  # raises once the C++ object is gone
            return 0.0

    w = Dying()
    sched.add(w)
    import shiboken6

    shiboken6.delete(w)
    run_for(sched, 1.0)
    assert not sched.is_active()


def test_application_scheduler_is_shared(qapp):
    assert scheduler() is scheduler()
    assert scheduler().parent() is qapp


def test_live_plots_in_the_window_are_scheduled_and_measure_their_paints(qtbot, qapp):
    from nnstudio.gui.plots import LossPlot, MetricsPlot

    loss, metrics = LossPlot(), MetricsPlot()
    for w in (loss, metrics):
        qtbot.addWidget(w)
        w.resize(600, 300)
        w.show()
    loss.start_run("run")
    metrics.start_run("run")
    loss.set_live(True)
    metrics.set_live(True)
    sched = scheduler()
    assert sched.contains(loss.plot_widget) and sched.contains(metrics.plot_widget) and sched.is_active()
    loss.plot_widget.take_paint_seconds()
    loss.add_steps(list(range(1, 201)), [1.0 / i for i in range(1, 201)])
    metrics.add_epoch(1, {"accuracy": 0.5})
    qtbot.waitUntil(lambda: loss.step_curve.xData is not None and len(loss.step_curve.xData) > 0, timeout=5000)
    qtbot.waitUntil(lambda: loss.plot_widget._paint_seconds > 0, timeout=5000)
    assert loss.plot_widget.take_paint_seconds() > 0
    assert loss.plot_widget.take_paint_seconds() == 0.0  # taken
    loss.set_live(False)
    metrics.set_live(False)
    assert not sched.contains(loss.plot_widget) and not sched.contains(metrics.plot_widget)
    assert not loss.is_live()


def test_stable_bounds_round_outward_to_few_values():
    from nnstudio.gui.plot_items import stable_bounds

    assert stable_bounds(1, 4123, 0) == (1, 5000)
    assert stable_bounds(1, 1201, 0) == (1, 1500)
    assert stable_bounds(None, None, 0) == (None, None)
    lo, hi = stable_bounds(0.43, 2.31, 1)
    assert lo == pytest.approx(0.4) and hi == pytest.approx(2.4)
    lo, hi = stable_bounds(-0.37, 0.36, 1)  # log-scale values are negative below 1
    assert lo == pytest.approx(-0.4) and hi == pytest.approx(0.4)
    # x: every value from 1 to 10^6 lands on one of 11 per decade, never more than 25% above it
    for v in (1.01, 7.7, 99.9, 101, 3333, 999_999):
        _, hi = stable_bounds(1, v, 0)
        assert v <= hi <= 1.25 * v


def test_a_live_plot_keeps_its_view_while_points_arrive_and_fits_them_when_done(qtbot):
    import numpy as np

    from nnstudio.gui.plots import LossPlot

    plot = LossPlot()
    qtbot.addWidget(plot)
    plot.resize(700, 300)
    plot.show()
    plot.start_run("run")
    plot.set_live(True)
    vb = plot.plot_widget.getPlotItem().vb
    ranges = []
    plot.add_steps(list(range(1, 1001)), list(2.0 - 0.0005 * np.arange(1, 1001)))
    step = 1001
    for _ in range(12):
        xs = list(range(step, step + 50))
        plot.add_steps(xs, list(2.0 - 0.0005 * np.array(xs)))
        step += 50
        plot.redraw()
        plot.grab()
        ranges.append(tuple(map(tuple, vb.viewRange())))
    # steps 1,001..1,600 arrive in 12 bursts: the x range changes only at the round 1,200, 1,500 and 2,000
    # (and once more when the y axis's labels change its width), where exact bounds changed it 12 times
    assert len(set(r[0] for r in ranges)) <= 4
    assert ranges[-1][0][1] >= 1600
    plot.set_live(False)
    plot.grab()
    (x0, x1), _ = vb.viewRange()
    assert x1 < 1700  # exact bounds (plus pyqtgraph's padding) once the run is over, not the round 2,000
