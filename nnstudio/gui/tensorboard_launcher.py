"""Starts `tensorboard --logdir <runs> --host 127.0.0.1 --port <free port>` as a child process."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tensorboard_command(logdir: Path, port: int) -> tuple[str, list[str]]:
    args = ["tensorboard", "--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(port)]
    if getattr(sys, "frozen", False):
        return sys.executable, args
    return sys.executable, ["-m", "nnstudio", *args]


class TensorBoardLauncher(QObject):
    """One child TensorBoard per window; opened in the browser once it listens; ended with the app."""

    ready = Signal(str)  # url
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None, open_browser: bool = True):
        super().__init__(parent)
        self.process: QProcess | None = None
        self.url = ""
        self.logdir: Path | None = None
        self.open_browser = open_browser
        self._poll = QTimer(self)
        self._poll.setInterval(250)
        self._poll.timeout.connect(self._on_poll_timeout)
        self._attempts = 0

    def is_running(self) -> bool:
        return self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning

    def start(self, logdir: Path) -> None:
        logdir = Path(logdir)
        if self.is_running() and self.logdir == logdir:
            self._announce()
            return
        self.stop()
        logdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        program, args = tensorboard_command(logdir, port)
        self.logdir = logdir
        self.url = f"http://127.0.0.1:{port}/"
        self.process = QProcess(self)
        self.process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        self.process.errorOccurred.connect(self._on_process_error)
        self.process.finished.connect(self._on_process_finished)
        self.process.start(program, args)
        self._attempts = 0
        self._poll.start()

    def _on_poll_timeout(self) -> None:
        self._attempts += 1
        port = int(self.url.rsplit(":", 1)[1].strip("/"))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                pass
        except OSError:
            if self._attempts > 240:  # a minute
                self._poll.stop()
                self.failed.emit("TensorBoard did not start within a minute")
            return
        self._poll.stop()
        self._announce()

    def _announce(self) -> None:
        if self.open_browser:
            QDesktopServices.openUrl(QUrl(self.url))
        self.ready.emit(self.url)

    def _on_process_error(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._poll.stop()
            self.failed.emit(f"TensorBoard could not be started ({self.process.errorString()})")

    def _on_process_finished(self, code: int, status) -> None:
        if self._poll.isActive():
            self._poll.stop()
            output = bytes(self.process.readAll()).decode(errors="replace").strip().splitlines()
            self.failed.emit("TensorBoard exited: " + (output[-1] if output else f"code {code}"))

    def stop(self) -> None:
        self._poll.stop()
        if self.process is None:
            return
        process, self.process = self.process, None
        process.finished.disconnect(self._on_process_finished)
        if process.state() != QProcess.ProcessState.NotRunning:
            process.terminate()
            if not process.waitForFinished(3000):
                process.kill()
                process.waitForFinished(3000)
        process.deleteLater()
