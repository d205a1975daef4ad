"""Starts the window: `nnstudio [FILE]`."""

from __future__ import annotations

import sys
from pathlib import Path


def run_app(file: str | None = None) -> int:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("nnstudio")
    app.setOrganizationName("nnstudio")
    app.setApplicationDisplayName("nnstudio")
    from nnstudio.gui.main_window import MainWindow

    window = MainWindow()
    app.aboutToQuit.connect(window.shutdown)
    window.show()
    if file:
        window.open_path(Path(file))
    else:
        window.open_sample()
    return app.exec()
