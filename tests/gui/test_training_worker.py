"""The QThread bridge: real runs on the sample data, stop/pause/shutdown, throttling, signal floods."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from PySide6.QtCore import QObject, QThread

from nnstudio.core.config import RunConfig
from nnstudio.core.data import load_dataset
from nnstudio.core.training.engine import EpochFinished, FitFinished, FitStarted, StepFinished
from nnstudio.core.errors import ConfigError
from nnstudio.core.run import TrainingRun
from nnstudio.gui.training_worker import (
    FLUSH_INTERVAL_S,
    QtBridgeCallback,
    TrainingController,
    TrainingWorker,
    error_message,
    run_training,
)

TIMEOUT_MS = 120_000


# ---------------------------------------------------------------------------------------------- helpers

@pytest.fixture(scope="module")
def flowers_data(request):
    from nnstudio.resources import sample_dataset

    return load_dataset(sample_dataset("flowers.csv"))


@pytest.fixture
def make_run(tmp_path, flowers_data):
    def make(tensorboard: bool = True, layers: list[dict[str, Any]] | None = None, **training: Any) -> TrainingRun:
        cfg = RunConfig(base_dir=tmp_path)
        cfg.output.logdir = str(tmp_path / "runs")
        if layers is not None:
            cfg.layers = layers
        for key, value in training.items():
            setattr(cfg.training, key, value)
        cfg.training.validate()
        return TrainingRun(cfg, data=flowers_data, tensorboard=tensorboard, checkpoint=False)

    return make


@pytest.fixture
def controller(qapp):
    ctrl = TrainingController()
    yield ctrl
    assert ctrl.shutdown(), "training thread did not stop"
    assert not ctrl.is_running()


class Recorder(QObject):
    """Receives the controller's signals in methods; notes whether each call ran in the GUI thread."""

    def __init__(self, controller: TrainingController):
        super().__init__()
        self.events: list[tuple[str, Any]] = []
        self.in_gui_thread: list[bool] = []
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.steps_emissions = 0
        controller.fit_started.connect(self._on_controller_fit_started)
        controller.steps_arrived.connect(self._on_controller_steps_arrived)
        controller.epoch_finished.connect(self._on_controller_epoch_finished)
        controller.fit_finished.connect(self._on_controller_fit_finished)
        controller.fit_failed.connect(self._on_controller_fit_failed)
        controller.progress.connect(self._on_controller_progress)
        controller.running_changed.connect(self._on_controller_running_changed)
        controller.paused_changed.connect(self._on_controller_paused_changed)

    def _note(self, name: str, payload: Any) -> None:
        self.in_gui_thread.append(QThread.currentThread() is QObject.thread(self))
        self.events.append((name, payload))

    def _on_controller_fit_started(self, payload):
        self._note("fit_started", payload)

    def _on_controller_steps_arrived(self, steps, losses):
        self.in_gui_thread.append(QThread.currentThread() is QObject.thread(self))
        self.steps_emissions += 1
        self.steps.extend(steps)
        self.losses.extend(losses)

    def _on_controller_epoch_finished(self, payload):
        self._note("epoch_finished", payload)

    def _on_controller_fit_finished(self, payload):
        self._note("fit_finished", payload)

    def _on_controller_fit_failed(self, message):
        self._note("fit_failed", message)

    def _on_controller_progress(self, payload):
        self._note("progress", payload)

    def _on_controller_running_changed(self, running):
        self._note("running_changed", running)

    def _on_controller_paused_changed(self, paused):
        self._note("paused_changed", paused)

    def of(self, name: str) -> list[Any]:
        return [payload for event, payload in self.events if event == name]

    def names(self) -> list[str]:
        return [event for event, _ in self.events]


def wait_finished(qtbot, controller: TrainingController, start=None, timeout: int = TIMEOUT_MS) -> None:
    """Wait for running_changed(False): the thread has ended and every event has been delivered."""
    with qtbot.waitSignal(controller.running_changed, timeout=timeout, check_params_cb=lambda running: not running):
        if start is not None:
            start()


def wait_until_quiet(qtbot, read, quiet_s: float = 0.3, timeout: int = 10_000) -> None:
    """Wait until `read()` has not changed for `quiet_s` seconds (a paused loop makes no progress)."""
    state = {"value": read(), "since": time.monotonic()}

    def quiet() -> bool:
        value, now = read(), time.monotonic()
        if value != state["value"]:
            state.update(value=value, since=now)
            return False
        return now - state["since"] >= quiet_s

    qtbot.waitUntil(quiet, timeout=timeout)


# ---------------------------------------------------------------------------------------------- real runs

def test_full_run_reports_every_stage_in_order(qtbot, controller, make_run, tmp_path):
    rec = Recorder(controller)
    run = make_run(epochs=3, batch_size=64)
    wait_finished(qtbot, controller, lambda: controller.start(run))

    names = rec.names()
    assert names[0] == "running_changed" and rec.of("running_changed") == [True, False]
    assert names[1] == "fit_started"
    assert names[-2:] == ["fit_finished", "running_changed"]
    assert "fit_failed" not in names

    started = rec.of("fit_started")[0]
    assert started["epochs"] == 3 and started["task"] == "multiclass" and started["device"] == "cpu"
    assert started["total_steps"] == 3 * started["steps_per_epoch"]

    trainer_steps = run.trainer.global_step
    assert trainer_steps == started["total_steps"]
    assert rec.steps == list(range(1, trainer_steps + 1))
    assert len(rec.losses) == trainer_steps and all(isinstance(x, float) and math.isfinite(x) for x in rec.losses)

    epochs = rec.of("epoch_finished")
    assert [e["epoch"] for e in epochs] == [1, 2, 3]
    assert set(epochs[0]) == {"epoch", "step", "train_loss", "val_loss", "metrics", "lr", "seconds", "improved",
                               "grad_norm"}
    assert set(epochs[0]["metrics"]) >= {"accuracy"}

    finished = rec.of("fit_finished")[0]
    assert finished["reason"] == finished["status"] == "completed"
    assert finished["steps"] == trainer_steps and finished["epochs"] == 3
    assert set(finished["test"]) >= {"loss", "accuracy"}
    assert finished["tensorboard"] and str(tmp_path) in finished["tensorboard"]

    progress = rec.of("progress")
    assert progress[-1] == {**progress[-1], "epoch": 3, "epochs": 3, "step": trainer_steps,
                            "total_steps": trainer_steps, "eta": 0.0}
    assert all(set(p) == {"epoch", "epochs", "first_epoch", "step", "total_steps", "elapsed", "eta"} for p in progress)
    assert all(p["first_epoch"] == 1 for p in progress)
    assert all(rec.in_gui_thread)
    assert not controller.is_running() and controller.training_run is None


def test_stop_mid_run_takes_effect_within_one_batch(qtbot, controller, make_run):
    rec = Recorder(controller)
    run = make_run(epochs=1000, batch_size=16, tensorboard=False)
    with qtbot.waitSignal(controller.epoch_finished, timeout=TIMEOUT_MS):
        controller.start(run)
    wait_finished(qtbot, controller, controller.stop)
    steps_at_stop = run.trainer.global_step  # read after the request: the loop may run one more batch at most

    finished = rec.of("fit_finished")[0]
    assert finished["reason"] == "stopped"
    assert finished["steps"] <= steps_at_stop + 1
    assert finished["epochs"] < 1000
    assert rec.steps == list(range(1, finished["steps"] + 1))


def test_pause_then_resume(qtbot, controller, make_run):
    rec = Recorder(controller)
    run = make_run(epochs=1000, batch_size=16, tensorboard=False)
    with qtbot.waitSignal(controller.epoch_finished, timeout=TIMEOUT_MS):
        controller.start(run)

    with qtbot.waitSignal(controller.paused_changed, check_params_cb=lambda paused: paused):
        controller.pause()
    assert controller.is_paused() and run.trainer.paused
    steps_at_pause = run.trainer.global_step
    wait_until_quiet(qtbot, lambda: run.trainer.global_step)
    assert run.trainer.global_step <= steps_at_pause + 1
    assert controller.is_running()

    with qtbot.waitSignal(controller.paused_changed, check_params_cb=lambda paused: not paused):
        controller.resume()
    qtbot.waitUntil(lambda: run.trainer.global_step > steps_at_pause + 20, timeout=TIMEOUT_MS)

    controller.pause()
    wait_finished(qtbot, controller, controller.stop)  # stopping a paused run wakes it up to stop
    assert rec.of("fit_finished")[0]["reason"] == "stopped"
    assert rec.of("paused_changed") == [True, False, True, False]
    assert not controller.is_paused()


def test_diverging_run_fails_with_a_readable_message(qtbot, controller, make_run):
    rec = Recorder(controller)
    run = make_run(epochs=20, batch_size=16, optimizer="SGD", lr=1e6, momentum=0.9, tensorboard=False)
    wait_finished(qtbot, controller, lambda: controller.start(run))

    failures = rec.of("fit_failed")
    assert len(failures) == 1 and "learning rate" in failures[0]
    assert not failures[0].startswith("Unexpected error")
    assert "fit_finished" not in rec.names()
    assert rec.names()[-2:] == ["fit_failed", "running_changed"]
    assert all(math.isfinite(x) for x in rec.losses)  # the finite steps before the blow-up still arrive


def test_shutdown_while_running_joins_cleanly(qtbot, controller, make_run):
    rec = Recorder(controller)
    run = make_run(epochs=1000, batch_size=8, tensorboard=True)
    with qtbot.waitSignal(controller.steps_arrived, timeout=TIMEOUT_MS):
        controller.start(run)
    assert controller.is_running()

    assert controller.shutdown(timeout_ms=10_000)
    assert not controller.is_running() and controller.training_run is None
    assert rec.of("running_changed") == [True, False]
    assert rec.of("fit_finished")[0]["reason"] == "stopped"  # delivered during shutdown, before running False
    assert controller.shutdown()  # idle: nothing to do


def test_start_while_running_raises_and_controller_is_reusable(qtbot, controller, make_run):
    rec = Recorder(controller)
    first = make_run(epochs=1000, batch_size=16, tensorboard=False)
    with qtbot.waitSignal(controller.fit_started, timeout=TIMEOUT_MS):
        controller.start(first)
    with pytest.raises(RuntimeError, match="already in progress"):
        controller.start(make_run(epochs=1, tensorboard=False))
    wait_finished(qtbot, controller, controller.stop)

    second = make_run(epochs=2, batch_size=64, tensorboard=False)
    rec.events.clear()
    rec.steps.clear()
    wait_finished(qtbot, controller, lambda: controller.start(second))
    assert rec.of("fit_finished")[0]["reason"] == "completed"
    assert [e["epoch"] for e in rec.of("epoch_finished")] == [1, 2]
    assert rec.steps == list(range(1, second.trainer.global_step + 1))


def test_receivers_run_in_the_gui_thread(qtbot, qapp, controller, make_run):
    rec = Recorder(controller)
    in_gui: list[bool] = []  # booleans, not QThread wrappers: holding the main thread's would trip the leak check
    controller.steps_arrived.connect(lambda steps, losses: in_gui.append(QThread.currentThread() is qapp.thread()))
    controller.fit_started.connect(lambda payload: in_gui.append(QThread.currentThread() is qapp.thread()))
    run = make_run(epochs=2, batch_size=16, tensorboard=False)
    wait_finished(qtbot, controller, lambda: controller.start(run))

    assert rec.in_gui_thread and all(rec.in_gui_thread)
    assert in_gui and all(in_gui)


def test_step_losses_are_throttled(qtbot, controller, make_run):
    rec = Recorder(controller)
    run = make_run(epochs=5, batch_size=1, tensorboard=False,
                   layers=[{"type": "Linear", "out_features": "auto"}])
    started = time.perf_counter()
    wait_finished(qtbot, controller, lambda: controller.start(run))
    elapsed = time.perf_counter() - started

    steps = run.trainer.global_step
    assert steps >= 2000
    assert rec.steps == list(range(1, steps + 1))
    # at most one flush per interval plus one per epoch end (and the last step)
    assert rec.steps_emissions <= elapsed / FLUSH_INTERVAL_S + 5 + 2
    assert rec.steps_emissions < steps / 4
    assert len(rec.of("progress")) <= elapsed / FLUSH_INTERVAL_S + 5 + 3


# ---------------------------------------------------------------------------------------------- flood

@dataclass
class _FakeFinished:
    reason: str = "completed"


@dataclass
class _FakeResult:
    finished: _FakeFinished = field(default_factory=_FakeFinished)

    def to_json(self) -> dict[str, Any]:
        return {"status": self.finished.reason, "steps": 0}


class _FakeTrainer:
    def __init__(self):
        self.callbacks: list[Any] = []

    def request_stop(self): ...
    def pause(self): ...
    def resume(self): ...


class FloodRun:
    """Stands in for a TrainingRun: emits straight through the worker's signals, unthrottled."""

    def __init__(self, n: int, error: BaseException | None = None):
        self.trainer = _FakeTrainer()
        self.n = n
        self.error = error

    def execute(self):
        worker = self.trainer.callbacks[-1].emitter
        for i in range(self.n):
            worker.steps_arrived.emit([i], [float(i)])
            if i % 5 == 0:
                worker.progress.emit({"step": i})
        if self.error is not None:
            raise self.error
        return _FakeResult()


def test_fifty_thousand_emits_all_arrive(qtbot, controller):
    rec = Recorder(controller)
    n = 50_000
    wait_finished(qtbot, controller, lambda: controller.start(FloodRun(n)))
    assert rec.steps_emissions == n
    assert rec.steps == list(range(n))
    assert len(rec.of("progress")) == n // 5
    assert rec.of("fit_finished") == [{"status": "completed", "steps": 0, "reason": "completed"}]
    assert all(rec.in_gui_thread)


def test_worker_reports_unexpected_errors_and_always_finishes(qtbot, controller):
    rec = Recorder(controller)
    wait_finished(qtbot, controller, lambda: controller.start(FloodRun(3, ValueError("boom"))))
    assert rec.of("fit_failed") == ["Unexpected error: ValueError: boom"]
    assert rec.steps == [0, 1, 2]


# ---------------------------------------------------------------------------------------------- without a thread

class ListEmitter:
    """Any object whose attributes have `.emit` will do (Orange's TaskState idea)."""

    def __init__(self):
        self.calls: list[tuple[str, tuple]] = []
        for name in ("fit_started", "steps_arrived", "epochs_finished", "fit_finished", "fit_failed", "progress"):
            setattr(self, name, SimpleNamespace(emit=lambda *args, _name=name: self.calls.append((_name, args))))

    def of(self, name: str) -> list[tuple]:
        return [args for event, args in self.calls if event == name]


def test_run_training_without_qt_objects(make_run):
    run = make_run(epochs=2, batch_size=64, tensorboard=False)
    emitter = ListEmitter()
    result = run_training(run, emitter)
    assert result is not None and result.finished.reason == "completed"
    assert [e["epoch"] for args in emitter.of("epochs_finished") for e in args[0]] == [1, 2]
    assert sum(len(args[0]) for args in emitter.of("steps_arrived")) == run.trainer.global_step
    assert emitter.of("fit_finished")[0][0]["reason"] == "completed"
    assert not any(isinstance(cb, QtBridgeCallback) for cb in run.trainer.callbacks)  # the run is left clean


def test_run_training_reports_our_errors_as_they_are():
    class BadRun(FloodRun):
        def execute(self):
            raise ConfigError("run.toml: [training] epochs must be a whole number ≥ 1, got 0")

    emitter = ListEmitter()
    assert run_training(BadRun(0), emitter) is None
    assert emitter.of("fit_failed") == [("run.toml: [training] epochs must be a whole number ≥ 1, got 0",)]
    assert error_message(RuntimeError("")) == "Unexpected error: RuntimeError"


def started_bridge(interval_s: float, epochs: int, steps_per_epoch: int):
    """A bridge on a fake clock (``now[0]``), its fit started: (bridge, emitter, trainer, now)."""
    now = [0.0]
    emitter = ListEmitter()
    bridge = QtBridgeCallback(emitter, interval_s=interval_s, clock=lambda: now[0])
    trainer = SimpleNamespace(global_step=0, epoch=0)
    bridge.on_fit_start(trainer, FitStarted(epochs=epochs, steps_per_epoch=steps_per_epoch,
                                            n_train=epochs * steps_per_epoch, n_val=2, device="cpu",
                                            task="binary", threads=1))
    return bridge, emitter, trainer, now


def test_bridge_buffers_steps_and_epochs_and_delivers_on_time_and_at_the_end():
    bridge, emitter, trainer, now = started_bridge(0.05, epochs=3, steps_per_epoch=10)
    assert emitter.of("fit_started")[0][0]["total_steps"] == 30
    assert emitter.of("progress")[-1][0]["eta"] is None

    for step in range(1, 11):
        now[0] = [0.01, 0.02, 0.03, 0.04, 0.06, 0.061, 0.062, 0.063, 0.064, 0.065][step - 1]
        bridge.on_train_batch_end(trainer, StepFinished(1, step, float(step)))
    assert emitter.of("steps_arrived") == [([1, 2, 3, 4, 5], [1.0, 2.0, 3.0, 4.0, 5.0])]  # 60 ms ≥ 50 ms

    # 5 ms after the last delivery: the epoch waits for the next one, with the steps before it.
    bridge.on_epoch_end(trainer, EpochFinished(1, 10, 0.5, 0.4, {"accuracy": 0.9}, 1e-3, 0.1, True))
    assert len(emitter.of("steps_arrived")) == 1 and not emitter.of("epochs_finished")
    now[0] = 0.2  # a slow first step of the next epoch
    bridge.on_train_batch_end(trainer, StepFinished(2, 11, 11.0))
    batches = emitter.of("steps_arrived")
    assert [s for args in batches for s in args[0]] == list(range(1, 12))
    assert len(emitter.of("epochs_finished")) == 1
    epoch = emitter.of("epochs_finished")[0][0][0]
    assert epoch["epoch"] == 1 and epoch["metrics"] == {"accuracy": 0.9} and epoch["improved"] is True
    assert [name for name, _ in emitter.calls[-3:]] == ["steps_arrived", "epochs_finished", "progress"]

    # An epoch that ends an interval or more after the last delivery goes at once.
    for step in range(12, 21):
        now[0] += 0.001
        bridge.on_train_batch_end(trainer, StepFinished(2, step, float(step)))
    now[0] += 0.05
    bridge.on_epoch_end(trainer, EpochFinished(2, 20, 0.4, 0.3, {"accuracy": 0.95}, 1e-3, 0.1, True))
    assert [e["epoch"] for e in emitter.of("epochs_finished")[-1][0]] == [2]
    assert emitter.of("steps_arrived")[-1][0] == list(range(12, 21))

    for step in range(21, 31):
        now[0] += 0.001  # fast: only the last step may flush
        bridge.on_train_batch_end(trainer, StepFinished(3, step, float(step)))
    batches = emitter.of("steps_arrived")
    assert batches[-1][0] == list(range(21, 31))
    progress = emitter.of("progress")[-1][0]
    assert progress["step"] == 30 and progress["total_steps"] == 30 and progress["epoch"] == 3
    bridge.on_epoch_end(trainer, EpochFinished(3, 30, 0.3, 0.2, {}, 1e-3, 0.1, True))  # the last: at once
    assert [e["epoch"] for e in emitter.of("epochs_finished")[-1][0]] == [3]

    bridge.on_fit_end(trainer, FitFinished("completed", 3, 30, 3, 0.2, {}, 0.2))
    assert emitter.of("progress")[-1][0]["eta"] == 0.0
    assert len(emitter.of("steps_arrived")) == len(batches)  # nothing left to flush


def test_bridge_delivers_fast_epochs_together():
    bridge, emitter, trainer, now = started_bridge(0.25, epochs=40, steps_per_epoch=2)
    step = 0
    for epoch in range(1, 41):  # 40 epochs a second
        for _ in range(2):
            step += 1
            now[0] += 0.0125 / 2
            bridge.on_train_batch_end(trainer, StepFinished(epoch, step, 1.0 / step))
        bridge.on_epoch_end(trainer, EpochFinished(epoch, step, 0.5, 0.4, {"accuracy": epoch / 40}, 1e-3, 0.01,
                                                   True))
    bridge.on_fit_end(trainer, FitFinished("completed", 40, 80, 40, 0.4, {}, 0.5))
    deliveries = emitter.of("epochs_finished")
    assert [e["epoch"] for args in deliveries for e in args[0]] == list(range(1, 41))  # all, in order
    assert len(deliveries) <= 6  # ~4 a second, not 40
    assert sum(len(args[0]) for args in emitter.of("steps_arrived")) == 80
    assert len(emitter.of("steps_arrived")) <= 6


def test_bridge_delivers_what_is_buffered_when_the_fit_pauses():
    """Paused, the plots show every step and epoch so far, not only those up to the last delivery."""
    bridge, emitter, trainer, now = started_bridge(0.25, epochs=5, steps_per_epoch=2)
    for step in (1, 2):
        now[0] += 0.01
        bridge.on_train_batch_end(trainer, StepFinished(1, step, float(step)))
    bridge.on_epoch_end(trainer, EpochFinished(1, 2, 0.5, 0.4, {}, 1e-3, 0.02, True))
    assert not emitter.of("steps_arrived") and not emitter.of("epochs_finished")
    bridge.on_pause(trainer)
    assert emitter.of("steps_arrived") == [([1, 2], [1.0, 2.0])]
    assert [e["epoch"] for e in emitter.of("epochs_finished")[0][0]] == [1]
    assert emitter.of("progress")[-1][0]["step"] == 2


def test_worker_is_a_plain_qobject_until_moved(qapp):
    worker = TrainingWorker(FloodRun(2))
    finished = []
    worker.fit_finished.connect(finished.append)
    worker.run()  # runs synchronously here: direct connections, same thread
    assert finished == [{"status": "completed", "steps": 0, "reason": "completed"}]


# ---------------------------------------------------------------------------------------------- factories

def test_a_factory_builds_the_run_in_the_training_thread(qtbot, qapp, controller, make_run):
    rec = Recorder(controller)
    built_in: list[QThread] = []
    created: list[Any] = []
    controller.run_created.connect(created.append)

    def factory() -> TrainingRun:
        built_in.append(QThread.currentThread())
        return make_run(epochs=2, tensorboard=False)

    wait_finished(qtbot, controller, lambda: controller.start(factory))
    assert built_in and built_in[0] is not qapp.thread()
    assert len(created) == 1 and isinstance(created[0], TrainingRun)
    assert created[0].trainer.epoch == 2
    assert rec.of("fit_finished")[0]["reason"] == "completed"


def test_stop_and_pause_before_the_factory_returns_still_apply(qtbot, controller, make_run):
    import threading

    for action in ("stop", "pause"):
        rec = Recorder(controller)
        release = threading.Event()

        def factory() -> TrainingRun:
            assert release.wait(30), "the test never released the factory"
            return make_run(epochs=1000, batch_size=16, tensorboard=False)

        controller.start(factory)
        assert controller.training_run is None  # still building
        if action == "stop":
            controller.stop()
            release.set()
            wait_finished(qtbot, controller)
            finished = rec.of("fit_finished")[0]
            assert finished["reason"] == "stopped" and finished["epochs"] == 0
        else:
            controller.pause()
            release.set()
            qtbot.waitUntil(lambda: controller.training_run is not None, timeout=TIMEOUT_MS)
            run = controller.training_run
            qtbot.waitUntil(lambda: run.trainer.paused, timeout=TIMEOUT_MS)
            assert run.trainer.global_step == 0  # paused before the first batch
            with qtbot.waitSignal(controller.epoch_finished, timeout=TIMEOUT_MS):
                controller.resume()
            wait_finished(qtbot, controller, controller.stop)
            assert rec.of("fit_finished")[0]["reason"] == "stopped"
            assert run.trainer.global_step > 0


def test_a_failing_factory_reports_and_frees_the_controller(qtbot, controller, make_run):
    rec = Recorder(controller)
    created: list[Any] = []
    controller.run_created.connect(created.append)

    def factory() -> TrainingRun:
        raise ConfigError("layers: the model has no Linear layer")

    wait_finished(qtbot, controller, lambda: controller.start(factory))
    assert rec.of("fit_failed") == ["layers: the model has no Linear layer"]
    assert not created and not rec.of("fit_started")
    wait_finished(qtbot, controller, lambda: controller.start(make_run(epochs=1, tensorboard=False)))
    assert rec.of("fit_finished")[0]["reason"] == "completed"


def test_the_fit_waits_for_the_gui_to_take_the_run_in_but_never_for_long(qapp, make_run):
    import threading

    from nnstudio.core.training.engine import Callback
    from nnstudio.gui.training_worker import START_HANDSHAKE_S

    class Started(Callback):
        def __init__(self):
            self.event = threading.Event()

        def on_fit_start(self, trainer, event):
            self.event.set()

    for release in (True, False):
        run = make_run(epochs=1, tensorboard=False)
        hook = Started()
        run.trainer.callbacks.append(hook)
        worker = TrainingWorker(run)
        thread = threading.Thread(target=worker.run)
        began = time.perf_counter()
        thread.start()
        if release:
            assert not hook.event.wait(START_HANDSHAKE_S / 2.5)  # held while the GUI starts the run's plots
            worker.gui_ready()
            assert hook.event.wait(30)
        else:  # a GUI that never answers costs at most START_HANDSHAKE_S
            assert hook.event.wait(30)
            assert time.perf_counter() - began >= START_HANDSHAKE_S * 0.9
        thread.join(60)
        assert not thread.is_alive() and worker.result is not None


def test_a_receiver_can_hold_the_fit_until_it_has_set_the_run_up(qtbot, controller, make_run):
    from PySide6.QtCore import QTimer

    rec = Recorder(controller)
    steps_when_resumed: list[int] = []

    def resume() -> None:
        steps_when_resumed.append(len(rec.of("steps_arrived")) + len(rec.of("fit_started")))
        controller.resume_start()

    def on_created(_run) -> None:
        controller.hold_start()
        controller.hold_start()  # two holds: the fit waits for both
        QTimer.singleShot(20, controller.resume_start)
        QTimer.singleShot(60, resume)

    controller.run_created.connect(on_created)
    try:
        wait_finished(qtbot, controller, lambda: controller.start(make_run(epochs=1, tensorboard=False)))
    finally:
        controller.run_created.disconnect(on_created)
    assert steps_when_resumed == [0]  # nothing of the fit had arrived while held
    assert rec.of("fit_finished")[0]["reason"] == "completed"
