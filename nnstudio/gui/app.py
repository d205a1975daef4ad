"""Starts the window: `nnstudio [FILE]`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

#: Open the file anyway if the window has not painted by then (hidden, minimised, no compositor).
FIRST_PAINT_TIMEOUT_MS = 500


def run_app(file: str | None = None) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("nnstudio")
    app.setOrganizationName("nnstudio")
    app.setApplicationDisplayName("nnstudio")
    from nnstudio.gui.main_window import MainWindow

    window = MainWindow()
    app.aboutToQuit.connect(window.shutdown)
    # Reading the first file imports pandas and pyarrow in the loader thread (~0.4 s of work that
    # holds the GIL): start it once the window is on screen, so its first paint does not wait.
    if file:
        _after_first_paint(window, lambda: window.open_path(Path(file)))
    else:
        _after_first_paint(window, window.open_sample)
    window.show()
    # The first optimizer imports torch's compiler stack (1-2 s) and the first epoch torchmetrics: do it
    # while the person looks at the window, not after they press Train.
    QTimer.singleShot(1500, _warm_up_imports)
    return app.exec()


def _after_first_paint(window, action: Callable[[], None]) -> None:
    """Run `action` in the GUI thread right after `window` first paints (or after FIRST_PAINT_TIMEOUT_MS)."""
    from PySide6.QtCore import QEvent, QObject, QTimer, Slot

    class FirstPaint(QObject):
        def __init__(self) -> None:
            super().__init__(window)
            self._action: Callable[[], None] | None = action
            window.installEventFilter(self)
            QTimer.singleShot(FIRST_PAINT_TIMEOUT_MS, self, self._on_due)

        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint and self._action is not None:
                window.removeEventFilter(self)
                QTimer.singleShot(0, self, self._on_due)  # after the paint, not inside it
            return False

        @Slot()
        def _on_due(self) -> None:
            run, self._action = self._action, None
            if run is not None:
                window.removeEventFilter(self)
                run()

    FirstPaint()


def _warm_up_imports() -> None:
    import threading

    def load() -> None:
        import torch._dynamo  # noqa: F401  (torch.optim.Optimizer.__init__ imports it on first use)
        import torchmetrics.functional  # noqa: F401

    threading.Thread(target=load, name="nnstudio-warm-up", daemon=True).start()
