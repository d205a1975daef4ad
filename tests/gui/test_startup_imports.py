"""Start-up: the window module leaves pyqtgraph and polars for later (and never loads pandas or pyarrow); polars
loads with the first table, in the loader thread; shown plots appear and take data."""

import json
import os
import subprocess
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

HEAVY = ("pyqtgraph", "pandas", "pyarrow", "polars")


def test_importing_the_window_does_not_import_pyqtgraph_or_polars():
    code = ("import sys, nnstudio.gui.main_window, nnstudio.gui.app; "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"imported with the window: {out.stdout.strip()}"


FIRST_TABLE = """
import sys
from pathlib import Path
from PySide6.QtCore import QEventLoop, QSettings, QThread, QTimer
from PySide6.QtWidgets import QApplication

first = {}

class Spy:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("polars", "pandas", "pyarrow") and name.split(".")[0] not in first:
            first[name.split(".")[0]] = QThread.currentThread().objectName() or "unnamed"
        return None

sys.meta_path.insert(0, Spy())
app = QApplication([])
from nnstudio.gui.main_window import MainWindow
w = MainWindow(settings=QSettings(sys.argv[1], QSettings.Format.IniFormat), logdir=sys.argv[2])
w.show()
app.processEvents()
at_start = dict(first)
loop = QEventLoop()
w.datasetPanel.dataset_loaded.connect(loop.quit)
w.datasetPanel.load_failed.connect(loop.quit)
QTimer.singleShot(60000, loop.quit)
w.open_sample()
loop.exec()
rows = w.datasetPanel.model.rowCount()
w.shutdown()
import json
print(json.dumps([at_start, sorted(m for m in ("polars", "pandas", "pyarrow") if m in sys.modules),
                  first.get("polars"), rows]))
"""


def test_polars_loads_with_the_first_table_in_the_loader_thread(tmp_path):
    out = subprocess.run([sys.executable, "-c", FIRST_TABLE, str(tmp_path / "s.ini"), str(tmp_path / "runs")],
                         capture_output=True, text=True, timeout=180, env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    assert out.returncode == 0, out.stderr[-3000:]
    at_start, loaded, polars_thread, rows = json.loads(out.stdout.strip().splitlines()[-1])
    assert at_start == {}  # the shown window has loaded no table library
    assert loaded == ["polars"]  # reading, describing and previewing the table needs neither pandas nor pyarrow
    assert polars_thread.startswith("DatasetLoader-")  # not the GUI thread (MainThread)
    assert rows > 0


@pytest.fixture
def window(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from nnstudio.gui.main_window import MainWindow

    w = MainWindow(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat),
                   logdir=tmp_path / "runs")
    qtbot.addWidget(w)
    yield w
    w.shutdown()


def test_plots_appear_after_the_window_is_shown_and_take_data(window, qtbot):
    window.show()
    qtbot.waitExposed(window)
    sizes = window.plotSplitter.sizes()
    qtbot.waitUntil(lambda: window.lossPlot.has_plot_widget() and window.metricsPlot.has_plot_widget(),
                    timeout=10000)
    for plot in (window.lossPlot, window.metricsPlot):
        assert plot.plot_widget.isVisible()
        assert plot.plot_widget.geometry() == plot.rect()
    assert window.plotSplitter.sizes() == sizes  # the placeholders held the plots' place
    assert window.lossPlot.smoothing == 0.2  # the window's setting, given before the widget existed
    assert window.lossPlot.curve("smoothed") is not None
    window.lossPlot.add_steps([1, 2, 3], [1.0, 0.8, 0.6])
    window.lossPlot.redraw()
    assert list(window.lossPlot.step_curve.getData()[1]) == [1.0, 0.8, 0.6]
    window.metricsPlot.add_epoch(1, {"accuracy": 0.5})
    window.metricsPlot.redraw()
    assert list(window.metricsPlot.metric_curve("accuracy").getData()[1]) == [0.5]


def test_a_plot_used_before_it_is_shown_makes_its_widget_at_once(qtbot):
    from nnstudio.gui.plots import LossPlot

    plot = LossPlot(objectName="lossPlot")
    qtbot.addWidget(plot)
    assert not plot.has_plot_widget()
    plot.set_smoothing(0.5)
    plot.set_log_y(True)
    plot.set_live(False)
    plot.clear_history()
    assert not plot.has_plot_widget() and not plot.is_live() and plot.smoothing == 0.5
    plot.add_steps([1, 2], [10.0, 100.0])  # needs the widget: made now, settings applied
    assert plot.has_plot_widget()
    plot.redraw()
    assert list(plot.curve("steps").getData()[1]) == [1.0, 2.0]  # log scale
    assert plot.smoothing == 0.5 and plot.curve("smoothed") is not None
    with pytest.raises(ValueError):
        LossPlot().set_smoothing(0.0)
