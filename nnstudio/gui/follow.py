"""Follows a TensorBoard log folder that another process writes (`nnstudio train`, torchrun, any SummaryWriter).

A QTimer starts a poll of :class:`nnstudio.core.results.runs.RunFollower` every POLL_MS in a pool thread (one at a
time): each poll reads only the events written since the last one, but tensorboard's reader checks and
parses each record in Python (~54 µs an event), and a headless run that logs every step of a tiny model
writes thousands a second, so the reading stays off the GUI thread. The new points come back as one
signal per poll, received here in the GUI thread.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QThreadPool, QTimer, Signal

from nnstudio.core.results.runs import Curves, RunFollower

POLL_MS = 500


class _Poll(QRunnable):
    def __init__(self, follower: RunFollower, generation: int, done: Signal):
        super().__init__()
        self.follower, self.generation, self.done = follower, generation, done

    def run(self) -> None:
        f = self.follower
        try:
            started, curves = f.poll()
            result = (self.generation, started, curves, f.run_name, f.status, f.checkpoint)
        except Exception as exc:  # an unreadable share must not end the window's polling
            result = (self.generation, False, None, "", f"cannot read: {exc}", None)
        self.done.emit(result)


class FollowController(QObject):
    run_started = Signal(str)  # the run's name: a new run folder appeared (or the first one was found)
    points_arrived = Signal(object)  # Curves with only the new points
    checkpoint_appeared = Signal(str)
    status_changed = Signal(str)  # "running", "completed", "stopped", "failed", ...
    _polled = Signal(object)  # from the pool thread

    def __init__(self, parent: QObject | None = None, interval_ms: int = POLL_MS):
        super().__init__(parent)
        self.follower: RunFollower | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._polled.connect(self._on_poll_done)
        self._generation = 0
        self._in_flight = False
        self._checkpoint: Path | None = None
        self._status = ""
        self._folder: Path | None = None

    @property
    def folder(self) -> Path | None:
        return self._folder

    @property
    def checkpoint(self) -> Path | None:
        return self._checkpoint

    def is_following(self) -> bool:
        return self._timer.isActive()

    def follow(self, folder: str | Path) -> None:
        self.stop()
        self._folder = Path(folder)
        self.follower = RunFollower(folder)
        self._checkpoint, self._status = None, ""
        self._timer.start()
        self._on_timer_timeout()

    def stop(self) -> None:
        """Stop polling and wait for a poll in flight (its result is dropped)."""
        self._timer.stop()
        self._generation += 1
        self._pool.waitForDone()
        self._in_flight = False

    def _on_timer_timeout(self) -> None:
        if self._in_flight or self.follower is None:
            return
        self._in_flight = True
        self._pool.start(_Poll(self.follower, self._generation, self._polled))

    def _on_poll_done(self, result: tuple) -> None:
        generation, started, curves, name, status, checkpoint = result
        if generation != self._generation:
            return
        self._in_flight = False
        if started:
            self._checkpoint, self._status = None, ""
            self.run_started.emit(name)
        if curves is not None and len(curves):
            self.points_arrived.emit(curves)
        if status != self._status:
            self._status = status
            self.status_changed.emit(status)
        if checkpoint is not None and checkpoint != self._checkpoint:
            self._checkpoint = checkpoint
            self.checkpoint_appeared.emit(str(checkpoint))


def add_curves(loss_plot, metrics_plot, curves: Curves, whole_run: bool = False) -> None:
    """Hand a run's points to the plots through their public methods (the same ones live training uses).

    `whole_run` (an overlay, not a live follow's new points): a run that logged only a few of its steps (a fast
    run of an earlier release) shows its epochs alone; a line through 2 to 5 step points would contradict them."""
    sparse = False
    if whole_run and len(curves.epochs):
        sparse = len(curves.step_x) < min(int(curves.epoch_step[-1]), max(10, 2 * len(curves.epochs)))
    if len(curves.step_x) and not sparse:  # a few step points of a fast run drawn as a line would contradict its epochs
        loss_plot.add_steps(curves.step_x.tolist(), curves.step_loss.tolist())
    if len(curves.epochs):
        val = [None if v != v else float(v) for v in curves.val_loss.tolist()]
        loss_plot.add_epochs(curves.epoch_step.tolist(), curves.train_loss.tolist(), val)
        epochs = curves.epochs.tolist()
        metrics = [{name: float(values[i]) for name, values in curves.metrics.items() if values[i] == values[i]}
                   for i in range(len(epochs))]
        metrics_plot.add_epochs(epochs, metrics)
        metrics_plot.add_lrs(epochs, curves.lr.tolist())
