"""Starts the window: `nnstudio [FILE]`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

#: Open the file anyway if the window has not painted by then (hidden, minimised, no compositor).
FIRST_PAINT_TIMEOUT_MS = 500


def run_app(file: str | None = None, follow: str | None = None) -> int:
    from nnstudio.launch_check import EXIT_NO_WINDOW, check_launch

    problem = check_launch()  # before QApplication: Qt's own message names the wrong library and aborts
    if problem is not None:
        print(problem.message(), file=sys.stderr)
        return EXIT_NO_WINDOW
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("nnstudio")
    app.setOrganizationName("nnstudio")
    app.setApplicationDisplayName("nnstudio")
    from nnstudio.gui.main_window import MainWindow

    openmp_in_training_thread_only()
    window = MainWindow()
    app.aboutToQuit.connect(window.shutdown)
    # Reading the first file imports polars in the loader thread (~0.3 s of work that holds the
    # GIL): start it once the window is on screen, so its first paint does not wait.
    if follow:
        _after_first_paint(window, lambda: window.follow_folder(Path(follow)))
    elif file:
        _after_first_paint(window, lambda: window.open_path(Path(file)))
    else:
        _after_first_paint(window, window.open_sample)
    window.show()
    QTimer.singleShot(0, window.offer_recovery)
    # The first optimizer imports torch's compiler stack (1-2 s) and the first epoch torchmetrics: do it
    # while the person looks at the window, not after they press Train.
    QTimer.singleShot(1500, _warm_up_imports)
    return app.exec()


def openmp_in_training_thread_only() -> None:
    """The GUI thread computes with one torch thread; the training thread picks its own.

    OpenMP (libgomp) keeps a team of threads for every thread that has run a parallel region, and once
    more such threads exist than cores it stops spinning between regions: measured on 2 cores, a
    32-16-10 MLP at batch 4096 trained at 4.5M samples/s in the only team and at 1.6M once a second team
    existed (the GUI thread's, from any earlier parallel op there), as if OMP_WAIT_POLICY=PASSIVE. The
    GUI thread needs no team (evaluating on F7 runs one-threaded); the training thread sets its threads
    per run (``nnstudio.core.training.engine.choose_threads``); other threads (the dataset loader) start with one
    thread too, so they build no team either.
    """
    import torch

    torch.set_num_threads(1)


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
        import torch._dynamo  # noqa: F401  (SGD/RMSprop step() import it; fused Adam no longer does)
        # torchmetrics: the evaluation views (core.results.evaluate); training metrics no longer use it
        import torchmetrics.functional  # noqa: F401

    threading.Thread(target=load, name="nnstudio-warm-up", daemon=True).start()
