"""#20.4: file dialogs start in documents/home, never inside the installed package, and each kind (data, model,
project, export) remembers its own last folder across launches."""

from __future__ import annotations

import shutil
from pathlib import Path

from guiwindow import load
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog

from nnstudio.gui.main_window import MainWindow
from nnstudio.gui.start_folders import start_folder
from nnstudio.resources import samples_dir


class _Dialogs:
    """Stands in for the native dialogs: records where each starts and cancels."""

    def __init__(self, monkeypatch):
        self.starts: list[str] = []
        for name in ("getOpenFileName", "getSaveFileName"):
            monkeypatch.setattr(QFileDialog, name, staticmethod(self._ask))

    def _ask(self, parent, caption, start="", *args, **kwargs):
        self.starts.append(str(start))
        return "", ""

    def start_of(self, trigger) -> Path:
        trigger()
        start = Path(self.starts[-1])
        return start if start.suffix == "" else start.parent


def test_each_kind_starts_at_home_then_in_its_own_last_folder(qtbot, tmp_path, flowers_csv, monkeypatch):
    settings_file = str(tmp_path / "settings.ini")
    w = MainWindow(settings=QSettings(settings_file, QSettings.Format.IniFormat), logdir=tmp_path / "runs")
    qtbot.addWidget(w)
    w.show()
    dialogs = _Dialogs(monkeypatch)
    with qtbot.waitSignal(w.datasetPanel.dataset_loaded, timeout=20000):
        w.open_sample()
    home = Path(start_folder())
    for trigger in (w._on_open_dataset_triggered, w._on_open_checkpoint_triggered, w._on_open_project_triggered,
                    w._on_save_project_triggered):
        start = dialogs.start_of(trigger)
        assert start == home, (trigger.__name__, start)
        assert not start.resolve().is_relative_to(samples_dir().resolve())
    data_dir, project_dir = tmp_path / "data", tmp_path / "projects"
    data_dir.mkdir()
    project_dir.mkdir()
    shutil.copy(flowers_csv, data_dir / "flowers.csv")
    load(qtbot, w, data_dir / "flowers.csv")
    assert w.save_project(project_dir / "p.toml")
    assert dialogs.start_of(w._on_open_dataset_triggered) == data_dir
    assert dialogs.start_of(w._on_open_project_triggered) == project_dir
    assert dialogs.start_of(w._on_save_project_triggered) == project_dir
    assert dialogs.start_of(w._on_open_checkpoint_triggered) == home  # no model opened or saved yet
    w.shutdown()

    again = MainWindow(settings=QSettings(settings_file, QSettings.Format.IniFormat), logdir=tmp_path / "runs")
    qtbot.addWidget(again)
    assert dialogs.start_of(again._on_open_dataset_triggered) == data_dir
    assert dialogs.start_of(again._on_open_project_triggered) == project_dir
    again.shutdown()
