import pytest


@pytest.fixture(autouse=True)
def no_leaked_qthreads(qapp):
    """Fail a test that leaves a QThread running (a thread garbage-collected while running aborts Qt)."""
    from PySide6.QtCore import QThread

    yield
    import gc
    import warnings

    gc.collect()
    with warnings.catch_warnings():  # isinstance() on every object touches deprecated module attributes
        warnings.simplefilter("ignore")
        running = [obj for obj in gc.get_objects() if isinstance(obj, QThread) and _is_running(obj)]
    assert not running, f"test leaked {len(running)} running QThread(s)"


def _is_running(thread) -> bool:
    try:
        return thread.isRunning()
    except RuntimeError:  # C++ object already deleted
        return False


@pytest.fixture
def window(qtbot, tmp_path):
    """The main window, shown, with its own settings file and log folder (HOME is shared); shut down after."""
    from PySide6.QtCore import QSettings

    from nnstudio.gui.main_window import MainWindow

    w = MainWindow(settings=QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat),
                   logdir=tmp_path / "runs")
    qtbot.addWidget(w)
    w.show()
    yield w
    w.shutdown()
