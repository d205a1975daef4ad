"""Observers that ship with nnstudio: TensorBoard logging, a terminal progress bar, a history recorder."""

from __future__ import annotations

import math
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from nnstudio.core.training.events import Callback, EpochFinished, FitFailed, FitFinished, FitStarted, StepFinished
from nnstudio.core.training.run_folder import (  # noqa: F401  (the tags, re-exported for the callbacks' users)
    TAG_EPOCH, TAG_GRAD_NORM, TAG_LR, TAG_METRIC, TAG_MODEL, TAG_STEP_LOSS, TAG_TRAIN_LOSS, TAG_VAL_LOSS,
    read_info, unique_run_dir, run_dir_name, write_info)


#: Step losses a fit logs at least (spread evenly), whatever the rate limit: a run over in a second still draws a
#: step curve that agrees with its epoch losses, not a line between 2 to 5 points.
MIN_STEP_POINTS = 200


class TensorBoardLogger(Callback):
    """Writes `<logdir>/<timestamp>-<name>` with step and epoch scalars, hparams and the model as text.

    Scalars are written in bursts (every `burst_s` seconds and when the fit ends), each with the wall time
    of its own step or epoch. TensorBoard's writer hands every event to its own thread and checksums it in
    pure Python; one event at a time, that thread and the training loop trade the GIL for each one, which
    measured ~0.3 ms of the training thread per event (6% of a tiny model's speed at 200 events/s); a burst
    wakes that thread once. Epochs' scalars go in the bursts too: a 32-16-10 MLP at batch 4096 ends ~30
    epochs a second, 150 scalars (loss, validation loss, metrics, learning rate), which written at each
    epoch end cost it 3% of its speed.
    """

    def __init__(self, logdir: str | Path, name: str = "run", hparams: dict[str, Any] | None = None,
                 model_text: str | None = None, step_every: int = 1, max_step_rate: float | None = None,
                 burst_s: float = 1.0, info: dict[str, Any] | None = None, run_dir: str | Path | None = None):
        # A resumed run writes into its first run's folder: TensorBoard continues the same curves.
        self.run_dir = Path(run_dir) if run_dir is not None else unique_run_dir(logdir, name)
        self.error: Exception | None = None  # a write that failed (full disk, folder removed); the run reports it
        # What the events do not say (dataset, target, config, scores, checkpoint): run.json, read by core.results.runs;
        # a resumed run's earlier record is kept and updated.

        previous = read_info(self.run_dir) if run_dir is not None else {}
        self.info: dict[str, Any] = {"name": name, **previous, **(info or {})}
        self.hparams = {k: v for k, v in (hparams or {}).items() if isinstance(v, (int, float, str, bool))}
        self.model_text = model_text
        self.step_every = max(1, step_every)
        # Steps logged per second at most (None: every step). TensorBoard shows 1,000 points per tag by
        # default, so a tiny model at thousands of steps a second gains nothing from each one.
        self.min_step_interval = 1.0 / max_step_rate if max_step_rate else 0.0
        self.burst_s = burst_s
        self._grid = 1  # every `_grid`-th step of a fit is logged whatever the rate: MIN_STEP_POINTS at least
        self._first_step = 0
        self._last_step_time = float("-inf")
        self._last_burst = 0.0
        self._pending: list[tuple[str, float, int, float]] = []  # (tag, value, step, wall time) not yet written
        self.writer = None
        self.final: dict[str, float] = {}

    def on_fit_start(self, trainer, event: FitStarted) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.run_dir.parent.mkdir(parents=True, exist_ok=True)
        _quiet_writer_thread_errors()
        text = self.model_text if self.model_text is not None else str(trainer.model)
        try:
            # flushed every 2 s, so a window following the folder (core.results.runs) sees the run live
            self.writer = SummaryWriter(log_dir=str(self.run_dir), flush_secs=2)
            self.writer.add_text(TAG_MODEL, "```\n" + text + "\n```", 0)
        except OSError as exc:  # before the first epoch: say so now rather than train without a log
            from nnstudio.core.errors import TrainingError

            self._failed(exc)
            raise TrainingError(f"TensorBoard log {self.run_dir}: could not be written "
                                f"({exc.strerror or exc}); free some space or choose another [output] logdir") from exc
        self._grid = max(1, event.epochs * event.steps_per_epoch // MIN_STEP_POINTS)
        self._first_step = event.first_step
        self.update_info(started=datetime.now().isoformat(timespec="seconds"), status="running",
                         epochs=event.epochs, steps_per_epoch=event.steps_per_epoch, device=event.device,
                         task=self.info.get("task") or event.task)
        self._last_burst = time.perf_counter()

    def on_train_batch_end(self, trainer, event: StepFinished) -> None:
        if event.step % self.step_every:
            return
        now = time.perf_counter()
        if self.min_step_interval:
            on_grid = (event.step - self._first_step) % self._grid == 0
            if now - self._last_step_time < self.min_step_interval and not on_grid:
                return
            self._last_step_time = now
        self._pending.append((TAG_STEP_LOSS, event.loss, event.step, time.time()))
        if now - self._last_burst >= self.burst_s:
            self._write_pending()

    def _write_pending(self) -> None:
        self._last_burst = time.perf_counter()
        pending, self._pending = self._pending, []
        if self.writer is not None:
            try:
                for tag, value, step, wall in pending:
                    self.writer.add_scalar(tag, value, step, walltime=wall)
            except Exception as exc:  # tensorboard's writer thread re-raises its OSError here
                self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        self.error = self.error or exc
        writer, self.writer = self.writer, None
        try:
            if writer is not None:
                writer.close()
        except Exception:
            pass

    def on_epoch_end(self, trainer, event: EpochFinished) -> None:
        wall, epoch = time.time(), event.epoch
        pending = self._pending
        pending.append((TAG_TRAIN_LOSS, event.train_loss, epoch, wall))
        if event.val_loss is not None:
            pending.append((TAG_VAL_LOSS, event.val_loss, epoch, wall))
        for name, value in event.metrics.items():
            pending.append((TAG_METRIC.format(name), value, epoch, wall))
        pending.append((TAG_LR, event.lr, epoch, wall))
        if event.grad_norm is not None:
            pending.append((TAG_GRAD_NORM, event.grad_norm, epoch, wall))
        pending.append((TAG_EPOCH, float(epoch), event.step, wall))
        if time.perf_counter() - self._last_burst >= self.burst_s:
            self._write_pending()

    def on_fit_end(self, trainer, event: FitFinished) -> None:
        self.final = {f"hparam/{k}": v for k, v in event.metrics.items() if math.isfinite(v)}
        if event.best_val_loss is not None and math.isfinite(event.best_val_loss):
            self.final["hparam/best_validation_loss"] = event.best_val_loss
        self.update_info(status=event.reason, epochs_completed=event.epochs_completed, best_epoch=event.best_epoch,
                         best_val_loss=event.best_val_loss, validation=dict(event.metrics))

    def on_exception(self, trainer, event: FitFailed) -> None:
        self.update_info(status="failed", error=event.message)

    def update_info(self, **values: Any) -> None:
        """Merge into the run's run.json and rewrite it (atomically); a log folder that cannot be written
        loses only this file, never the run."""

        self.info.update(values)
        try:
            write_info(self.run_dir, self.info)
        except OSError:
            pass

    def teardown(self, trainer) -> None:
        if self.writer is None:
            return
        self._write_pending()  # what the last burst left (a stopped or failed fit, too)
        if self.writer is None:
            return
        if not self._event_file_exists():  # removed while the run wrote into it: the events went with it
            import errno

            self._failed(FileNotFoundError(errno.ENOENT, "the folder was removed during the run"))
            return
        try:
            self._close()
        except Exception as exc:
            self._failed(exc)

    def _event_file_exists(self) -> bool:
        try:
            name = self.writer.file_writer.event_writer._file_name
        except AttributeError:
            return self.run_dir.is_dir()
        return Path(name).exists()

    def _close(self) -> None:
        if self.hparams:
            from torch.utils.tensorboard.summary import hparams

            exp, ssi, sei = hparams(self.hparams, self.final or {"hparam/failed": 1.0})
            fw = self.writer._get_file_writer()
            fw.add_summary(exp)
            fw.add_summary(ssi)
            fw.add_summary(sei)
            for k, v in self.final.items():
                self.writer.add_scalar(k, v)
        self.writer.close()
        self.writer = None


def _quiet_writer_thread_errors() -> None:
    """TensorBoard's writer thread re-raises a failed write (a full disk) into `threading.excepthook`, which
    prints a traceback; the same error reaches the logger at its next write and the run reports it in one
    sentence, so the thread's copy is dropped. Any other thread's exception goes to the previous hook."""
    import threading

    if getattr(threading.excepthook, "_nnstudio", False):
        return
    previous = threading.excepthook

    def hook(args):
        if type(args.thread).__name__ == "_AsyncWriterThread" and isinstance(args.exc_value, OSError):
            return
        previous(args)

    hook._nnstudio = True
    threading.excepthook = hook


class HistoryRecorder(Callback):
    """Keeps every event as plain values (what a test or a script wants to look at afterwards)."""

    def __init__(self) -> None:
        self.started: FitStarted | None = None
        self.steps: list[StepFinished] = []
        self.epochs: list[EpochFinished] = []
        self.finished: FitFinished | None = None
        self.failed: FitFailed | None = None

    def on_fit_start(self, trainer, event):
        self.started = event

    def on_train_batch_end(self, trainer, event):
        self.steps.append(event)

    def on_epoch_end(self, trainer, event):
        self.epochs.append(event)

    def on_fit_end(self, trainer, event):
        self.finished = event

    def on_exception(self, trainer, event):
        self.failed = event


class ProgressBar(Callback):
    """A one-line terminal progress bar (redrawn at most 10× a second) and a line per epoch."""

    def __init__(self, stream: TextIO | None = None, width: int = 28):
        self.stream = stream or sys.stderr
        self.width = width
        self.total_steps = 1
        self.steps_per_epoch = 1
        self.epochs = 1
        self.last_epoch = 1
        self.first_step = 0
        self.start = 0.0
        self.last_draw = 0.0
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def on_fit_start(self, trainer, event: FitStarted) -> None:
        self.epochs = event.epochs
        self.last_epoch = event.last_epoch  # "epoch 21/30" on a resumed run, never "21/10"
        self.first_step = event.first_step
        self.steps_per_epoch = event.steps_per_epoch
        self.total_steps = max(1, event.epochs * event.steps_per_epoch)
        self.start = time.perf_counter()
        span = (f"epochs {event.first_epoch}–{event.last_epoch} (resumed after epoch {event.first_epoch - 1})"
                if event.first_epoch > 1 else f"{event.epochs} epochs")
        self.stream.write(f"training on {event.device}: {event.n_train} rows, {event.n_val} for validation, "
                          f"{span} × {event.steps_per_epoch} steps\n")

    def on_train_batch_end(self, trainer, event: StepFinished) -> None:
        now = time.perf_counter()
        if not self.tty or now - self.last_draw < 0.1:
            return
        self.last_draw = now
        done = min(1.0, (event.step - self.first_step) / self.total_steps)
        filled = int(done * self.width)
        elapsed = now - self.start
        left = elapsed / done - elapsed if done > 0 else 0.0
        bar = "█" * filled + "·" * (self.width - filled)
        self.stream.write(f"\r{bar} {done:4.0%} epoch {event.epoch}/{self.last_epoch} step {event.step} "
                          f"loss {event.loss:.4g} ~{left:4.0f}s left ")
        self.stream.flush()

    def on_epoch_end(self, trainer, event: EpochFinished) -> None:
        metrics = "  ".join(f"{k} {v:.4g}" for k, v in event.metrics.items())
        val = f"  val_loss {event.val_loss:.4g}" if event.val_loss is not None else ""
        prefix = "\r\033[K" if self.tty else ""
        self.stream.write(f"{prefix}epoch {event.epoch:>3}/{self.last_epoch}  train_loss {event.train_loss:.4g}{val}  "
                          f"{metrics}  lr {event.lr:.3g}  {event.seconds:.2f}s\n")
        self.stream.flush()

    def on_fit_end(self, trainer, event: FitFinished) -> None:
        self.stream.write(f"{event.reason} after {event.epochs_completed} epoch(s), {event.steps} steps, "
                          f"{event.seconds:.1f}s\n")
        self.stream.flush()
