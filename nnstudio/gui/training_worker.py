"""The one bridge between the Qt-free training core and the window.

Shaped after superqt's ``new_worker_qthread`` and Orange's ``TaskState``:

- :func:`run_training` is a plain function that executes a :class:`~nnstudio.core.run.TrainingRun` and
  reports through any *emitter* (an object whose attributes have ``.emit``), so it is testable without
  a widget or a thread.
- :class:`QtBridgeCallback` is the core callback that runs in the training thread and turns engine events
  into plain values; step losses and finished epochs are buffered and delivered together at most every
  ``interval_s`` seconds (and when the fit pauses or ends), so a tiny model at thousands of steps and
  dozens of epochs a second cannot flood the GUI event loop.
- :class:`TrainingWorker` is the ``QObject`` moved to the ``QThread``; its signals are emitted there. It
  takes a finished :class:`~nnstudio.core.run.TrainingRun`, or a *factory* that builds one: the window
  passes a factory, so turning the table into tensors and building the model happen in the training
  thread and pressing Train never freezes the window (~0.45 s for 200,000 rows on the GUI thread before).
- Signals carry Python objects (``Signal(object)``): a ``dict`` or ``list`` signature makes PySide convert
  every element to a QVariant and back on each queued delivery, which cost the GUI thread (and, through
  the GIL, the training thread) ~8% of a tiny model's speed at 4,000 steps a second. The payloads are
  fresh plain values that the sender never touches again.
- :class:`TrainingController` lives in the GUI thread: it owns the thread and the worker, receives the
  worker's signals in its own *methods* (a lambda or plain function connected to a worker signal would
  run in the worker thread, even with a queued connection) and re-emits them from the GUI thread, so
  anything connected to the controller is safe.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Callable, Protocol, Union

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QThread, QTimer, Signal, Slot

from nnstudio.core.training.engine import Callback, EpochFinished, FitFailed, FitFinished, FitStarted, StepFinished
from nnstudio.core.errors import NNStudioError

if TYPE_CHECKING:
    from nnstudio.core.run import RunResult, TrainingRun

__all__ = ["FLUSH_INTERVAL_S", "QtBridgeCallback", "TrainingController", "TrainingWorker", "error_message",
           "run_training"]

log = logging.getLogger(__name__)

#: Threads and workers of runs in progress: never garbage-collected while running, even if a
#: controller is dropped without `shutdown()` (a QThread destroyed while running aborts the process).
_ALIVE: set[tuple[QThread, "TrainingWorker"]] = set()

#: What a worker runs: a built run, or a function that builds one in the training thread.
RunSource = Union["TrainingRun", Callable[[], "TrainingRun"]]

#: Buffered step losses, finished epochs and progress reach the GUI at most this often (seconds).
#: 4 a second, as often as the loss plot redraws at most: each delivery (steps, progress bar, which Qt
#: repaints at once) costs the GUI thread ~1 ms that the training thread waits for in the GIL; 20 a
#: second cost ~2.5% of a tiny model's speed.
FLUSH_INTERVAL_S = 0.25


#: After handing the built run to the GUI thread, the training thread waits (at most this long) until that
#: thread has started the run's plots and painted them once. That pass (the previous run's curves fade,
#: both plots repaint with the earlier runs) ran 4-5x longer while the fit started beside it, both
#: wanting the GIL: 150-250 ms of frozen window at the start of every run, measured.
START_HANDSHAKE_S = 0.5


class _Emits(Protocol):
    def emit(self, *args: Any) -> None: ...


class Emitter(Protocol):
    """What :func:`run_training` reports through: a :class:`TrainingWorker`, or any stand-in in a test."""

    fit_started: _Emits
    steps_arrived: _Emits
    epochs_finished: _Emits
    fit_finished: _Emits
    fit_failed: _Emits
    progress: _Emits


class QtBridgeCallback(Callback):
    """Engine events → plain-value emissions; lives in (and is only called from) the training thread.

    Steps are numbered as the trainer numbers them (global, 1-based); progress counts from the start
    of this fit, so a trainer that continues an earlier fit still shows 0..total.

    Each delivery is ``steps_arrived`` (if steps are buffered), ``epochs_finished`` (a list, if epochs
    ended) and ``progress``, in that order. An epoch that ends more than ``interval_s`` after the last
    delivery goes at once; epochs that end faster wait for the next one. Each queued delivery costs the
    GUI thread a pass that the training thread waits for in the GIL: a 32-16-10 MLP at batch 4096 ends
    ~30 epochs a second, and delivering steps and epoch at each (60 passes a second) took the GUI
    thread ~1.5% of a core.
    """

    def __init__(self, emitter: Emitter, interval_s: float = FLUSH_INTERVAL_S,
                 clock: Callable[[], float] = time.perf_counter):
        self.emitter = emitter
        self.interval_s = interval_s
        self.clock = clock
        self._steps: list[int] = []
        self._losses: list[float] = []
        self._epoch_events: list[dict] = []
        self._start = 0.0
        self._last_flush = 0.0
        self._epochs = 1
        self._total_steps = 1
        self._step0 = 0
        self._epoch0 = 0
        self._epoch = 0
        self._step = 0

    # -- engine hooks
    def on_fit_start(self, trainer, event: FitStarted) -> None:
        self._start = self._last_flush = self.clock()
        self._epochs = event.epochs
        self._total_steps = max(1, event.epochs * event.steps_per_epoch)
        self._step0 = trainer.global_step
        self._epoch0 = trainer.epoch
        self._epoch = self._step = 0
        self._steps, self._losses, self._epoch_events = [], [], []
        payload = asdict(event)
        payload["total_steps"] = self._total_steps
        self.emitter.fit_started.emit(payload)
        self._emit_progress(self._start)

    def on_train_batch_end(self, trainer, event: StepFinished) -> None:
        self._steps.append(event.step)
        self._losses.append(event.loss)
        self._epoch = event.epoch - self._epoch0
        self._step = event.step - self._step0
        now = self.clock()
        if now - self._last_flush >= self.interval_s or self._step >= self._total_steps:
            self._deliver(now)

    def on_epoch_end(self, trainer, event: EpochFinished) -> None:
        now = self.clock()
        self._epoch = event.epoch - self._epoch0
        self._step = event.step - self._step0
        payload = asdict(event)
        payload["metrics"] = dict(event.metrics)
        self._epoch_events.append(payload)
        if now - self._last_flush >= self.interval_s or self._epoch >= self._epochs:
            self._deliver(now)

    def on_pause(self, trainer) -> None:
        self._deliver(self.clock())

    def on_fit_end(self, trainer, event: FitFinished) -> None:
        now = self.clock()
        self._flush(now)
        self._step = event.steps - self._step0
        self._emit_progress(now, final=True)

    def on_exception(self, trainer, event: FitFailed) -> None:
        self._flush(self.clock())

    # -- emission
    def _deliver(self, now: float) -> None:
        self._flush(now)
        self._emit_progress(now)

    def _flush(self, now: float) -> None:
        self._last_flush = now
        if self._steps:
            steps, losses = self._steps, self._losses
            self._steps, self._losses = [], []
            self.emitter.steps_arrived.emit(steps, losses)
        if self._epoch_events:
            epochs, self._epoch_events = self._epoch_events, []
            self.emitter.epochs_finished.emit(epochs)

    def _emit_progress(self, now: float, final: bool = False) -> None:
        elapsed = now - self._start
        step, total = self._step, self._total_steps
        if final:
            eta: float | None = 0.0
        elif step > 0:
            eta = max(0.0, elapsed / step * (total - step))
        else:
            eta = None
        self.emitter.progress.emit({"epoch": self._epoch, "epochs": self._epochs, "first_epoch": self._epoch0 + 1,
                                    "step": step,
                                    "total_steps": total, "elapsed": elapsed, "eta": eta})


def error_message(exc: BaseException) -> str:
    """What a person reads: our own errors as they are, anything else marked as unexpected."""
    if isinstance(exc, NNStudioError):
        return str(exc) or type(exc).__name__
    text = str(exc).strip()
    return f"Unexpected error: {type(exc).__name__}: {text}" if text else f"Unexpected error: {type(exc).__name__}"


def run_training(run: "TrainingRun", emitter: Emitter, interval_s: float = FLUSH_INTERVAL_S) -> "RunResult | None":
    """Execute `run`, reporting through `emitter`; never raises (a failure becomes ``fit_failed``).

    ``fit_finished`` carries ``RunResult.to_json()`` plus ``reason`` ("completed", "stopped",
    "early_stopping"). Returns the result, or None when the run failed.
    """
    bridge = QtBridgeCallback(emitter, interval_s)
    callbacks = run.trainer.callbacks
    callbacks.append(bridge)
    try:
        result = run.execute()
    except Exception as exc:
        if not isinstance(exc, NNStudioError):
            log.exception("training failed unexpectedly")
        emitter.fit_failed.emit(error_message(exc))
        return None
    finally:
        if bridge in callbacks:
            callbacks.remove(bridge)
    payload = result.to_json()
    payload["reason"] = result.finished.reason
    emitter.fit_finished.emit(payload)
    return result


class TrainingWorker(QObject):
    """Moved to a QThread; `run()` is connected to the thread's `started`. Signals carry plain values,
    except ``run_created``, which hands the built run (model and tensors) to the GUI thread once."""

    run_created = Signal(object)  # the TrainingRun, before fit_started
    fit_started = Signal(object)  # FitStarted fields + total_steps
    steps_arrived = Signal(object, object)  # global steps, losses (buffered)
    epochs_finished = Signal(object)  # a list of EpochFinished fields, oldest first (buffered)
    fit_finished = Signal(object)  # RunResult.to_json() + reason
    fit_failed = Signal(str)  # the message a person reads
    progress = Signal(object)  # epoch, epochs, step, total_steps, elapsed, eta (None until known)
    done = Signal()  # always last

    def __init__(self, source: RunSource, interval_s: float = FLUSH_INTERVAL_S):
        super().__init__()
        self.source = source
        self.interval_s = interval_s
        self.training_run: TrainingRun | None = None if callable(source) else source
        self.result: RunResult | None = None
        # Stop/pause asked for before a factory has built the run: applied as soon as it exists.
        self._stop_requested = threading.Event()
        self._pause_requested = threading.Event()
        self._gui_ready = threading.Event()  # set by the controller once the GUI has started the run

    # -- control, from the GUI thread
    def gui_ready(self) -> None:
        """The GUI thread has taken the run in (any thread may call this)."""
        self._gui_ready.set()

    def request_stop(self) -> None:
        self._stop_requested.set()
        self._pause_requested.clear()
        self._gui_ready.set()
        run = self.training_run
        if run is not None:
            run.trainer.request_stop()

    def pause(self) -> None:
        self._pause_requested.set()
        run = self.training_run
        if run is not None:
            run.trainer.pause()

    def resume(self) -> None:
        self._pause_requested.clear()
        run = self.training_run
        if run is not None:
            run.trainer.resume()

    @Slot()
    def run(self) -> None:
        try:
            run = self.training_run
            if run is None:
                try:
                    run = self.source()  # type: ignore[operator]
                except Exception as exc:
                    if not isinstance(exc, NNStudioError):
                        log.exception("preparing the training run failed unexpectedly")
                    self.fit_failed.emit(error_message(exc))
                    return
                self.training_run = run
                # After publishing the run: a request that saw no run yet is seen here (and one that
                # came later went to the trainer directly).
                if self._stop_requested.is_set():
                    run.trainer.request_stop()
                elif self._pause_requested.is_set():
                    run.trainer.pause()
            self.run_created.emit(run)
            self._gui_ready.wait(START_HANDSHAKE_S)
            self.result = run_training(run, self, self.interval_s)
        except BaseException as exc:  # run_training catches Exception; this is the last line of defence
            self.fit_failed.emit(error_message(exc))
        finally:
            self.done.emit()


class TrainingController(QObject):
    """Runs one TrainingRun at a time in a QThread; lives in the GUI thread and re-emits from it.

    Signals have the worker's names and payloads, plus ``epoch_finished`` (each of ``epochs_finished``
    on its own, for a receiver that wants one at a time), ``running_changed(bool)`` (True on start, False
    once the thread has finished) and ``paused_changed(bool)``. ``start`` takes a built run or a factory
    (called in the training thread; its NNStudioError arrives as ``fit_failed``, with no ``run_created``).
    """

    run_created = Signal(object)
    fit_started = Signal(object)
    steps_arrived = Signal(object, object)
    epochs_finished = Signal(object)
    epoch_finished = Signal(object)
    fit_finished = Signal(object)
    fit_failed = Signal(str)
    progress = Signal(object)
    running_changed = Signal(bool)
    paused_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None, interval_s: float = FLUSH_INTERVAL_S):
        super().__init__(parent)
        self.interval_s = interval_s
        self._thread: QThread | None = None
        self._worker: TrainingWorker | None = None
        self._paused = False
        self._start_holds = 0  # receivers of run_created still setting the run up (see hold_start)

    # -- state
    def is_running(self) -> bool:
        return self._thread is not None

    def is_paused(self) -> bool:
        return self._paused

    @property
    def training_run(self) -> "TrainingRun | None":
        """The run in progress (None when idle, and while a factory is still building it)."""
        return self._worker.training_run if self._worker is not None else None

    # -- control
    def start(self, run: RunSource) -> None:
        if self._thread is not None:
            raise RuntimeError("a training run is already in progress; stop it before starting another")
        thread = QThread()
        thread.setObjectName("nnstudio-training")
        worker = TrainingWorker(run, self.interval_s)
        worker.moveToThread(thread)
        worker.run_created.connect(self._on_worker_run_created)
        worker.fit_started.connect(self._on_worker_fit_started)
        worker.steps_arrived.connect(self._on_worker_steps_arrived)
        worker.epochs_finished.connect(self._on_worker_epochs_finished)
        worker.fit_finished.connect(self._on_worker_fit_finished)
        worker.fit_failed.connect(self._on_worker_fit_failed)
        worker.progress.connect(self._on_worker_progress)
        thread.started.connect(worker.run)
        worker.done.connect(thread.quit)
        # Before the deleteLater connections: this slot must still find the thread alive.
        thread.finished.connect(self._on_thread_finished)
        thread.finished.connect(worker.deleteLater)
        thread.finished.connect(thread.deleteLater)
        self._thread, self._worker, self._paused = thread, worker, False
        _ALIVE.add((thread, worker))
        self.running_changed.emit(True)
        thread.start()

    def stop(self) -> None:
        """Takes effect within one batch (a paused run wakes up to stop)."""
        if self._worker is not None:
            self._worker.request_stop()
            self._set_paused(False)

    def pause(self) -> None:
        if self._worker is not None and not self._paused:
            self._worker.pause()
            self._set_paused(True)

    def resume(self) -> None:
        if self._worker is not None and self._paused:
            self._worker.resume()
            self._set_paused(False)

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        """Stop and join the training thread (window close, aboutToQuit); True when it has ended.

        Never terminates the thread: on a timeout the references are kept, so it is not destroyed
        while running.
        """
        thread = self._thread
        if thread is None:
            return True
        self.stop()
        thread.quit()
        if not thread.wait(timeout_ms):
            log.warning("training thread did not stop within %d ms", timeout_ms)
            return False
        # Deliver what the worker queued for us (fit_finished, the thread's finished) in order, now.
        QCoreApplication.sendPostedEvents(self, QEvent.Type.MetaCall)
        if self._thread is thread:
            self._finish(thread)
        return True

    # -- receivers (GUI thread). No event of a run can arrive after `_finish`: the thread's `finished`
    # is the last thing it posts, and `shutdown` delivers what is still queued before finishing.
    def hold_start(self) -> None:
        """For a receiver of ``run_created`` that sets the run up over several passes of the event loop:
        the fit waits until as many ``resume_start`` calls (and at most START_HANDSHAKE_S), so that nothing
        of the run arrives before the receiver is ready for it."""
        self._start_holds += 1

    def resume_start(self) -> None:
        if self._start_holds > 0:
            self._start_holds -= 1
            if self._start_holds == 0:
                QTimer.singleShot(0, self, self._release_worker_soon)

    @Slot(object)
    def _on_worker_run_created(self, run: object) -> None:
        self._start_holds = 0
        self.run_created.emit(run)
        if self._start_holds == 0:
            # After what the receivers posted, and what that posts in turn (a graphics scene's change becomes
            # a view repaint one pass later): let the training thread start its fit.
            QTimer.singleShot(0, self, self._release_worker_soon)

    @Slot()
    def _release_worker_soon(self) -> None:
        QTimer.singleShot(0, self, self._release_worker)

    @Slot()
    def _release_worker(self) -> None:
        if self._worker is not None:
            self._worker.gui_ready()

    @Slot(object)
    def _on_worker_fit_started(self, payload: dict) -> None:
        self.fit_started.emit(payload)

    @Slot(object, object)
    def _on_worker_steps_arrived(self, steps: list, losses: list) -> None:
        self.steps_arrived.emit(steps, losses)

    @Slot(object)
    def _on_worker_epochs_finished(self, payloads: list) -> None:
        self.epochs_finished.emit(payloads)
        for payload in payloads:
            self.epoch_finished.emit(payload)

    @Slot(object)
    def _on_worker_fit_finished(self, payload: dict) -> None:
        self.fit_finished.emit(payload)

    @Slot(str)
    def _on_worker_fit_failed(self, message: str) -> None:
        self.fit_failed.emit(message)

    @Slot(object)
    def _on_worker_progress(self, payload: dict) -> None:
        self.progress.emit(payload)

    @Slot()
    def _on_thread_finished(self) -> None:
        if self._thread is not None:
            self._finish(self._thread)

    def _finish(self, thread: QThread) -> None:
        thread.wait()  # `finished` is emitted just before the thread really ends
        _ALIVE.discard((thread, self._worker))
        self._thread = self._worker = None
        self._set_paused(False)
        self.running_changed.emit(False)

    def _set_paused(self, paused: bool) -> None:
        if paused != self._paused:
            self._paused = paused
            self.paused_changed.emit(paused)
