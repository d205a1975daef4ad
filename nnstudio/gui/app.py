"""Starts the window: `nnstudio [FILE]`."""

from __future__ import annotations

import sys
from pathlib import Path


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
    window.show()
    # The first optimizer imports torch's compiler stack (1-2 s) and the first epoch torchmetrics: do it
    # while the person looks at the window, not after they press Train.
    QTimer.singleShot(1500, _warm_up_imports)
    if file:
        window.open_path(Path(file))
    else:
        window.open_sample()
    return app.exec()


def _warm_up_imports() -> None:
    import threading

    def load() -> None:
        import torch._dynamo  # noqa: F401  (torch.optim.Optimizer.__init__ imports it on first use)
        import torchmetrics.functional  # noqa: F401

    threading.Thread(target=load, name="nnstudio-warm-up", daemon=True).start()
