"""A whole run from one config: data, model, training with callbacks, test metrics, checkpoint.

The command line and the window's training worker both drive this, so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from nnstudio.core.training.autosave import RunCheckpoints
from nnstudio.core.training.callbacks import TensorBoardLogger, unique_run_dir
from nnstudio.core.model.checkpoint import LoadedCheckpoint, atomic_torch_save, build_checkpoint, plain
from nnstudio.core.config import RunConfig
from nnstudio.core.data import PreparedData, load_dataset
from nnstudio.core.training.engine import Callback, FitFinished, Trainer
from nnstudio.core.errors import CheckpointError, TrainingDiverged, TrainingError
from nnstudio.core.model.spec import SpecModel, build_model


@dataclass
class RunResult:
    finished: FitFinished
    test: dict[str, float]
    checkpoint: Path | None
    run_dir: Path | None
    world_size: int = 1
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        f = self.finished
        return {"status": f.reason, "epochs": f.epochs_completed, "steps": f.steps, "seconds": round(f.seconds, 3),
                "best_epoch": f.best_epoch, "best_val_loss": f.best_val_loss, "validation": f.metrics,
                "test": self.test, "checkpoint": str(self.checkpoint) if self.checkpoint else None,
                "tensorboard": str(self.run_dir) if self.run_dir else None, "world_size": self.world_size,
                "notes": list(self.notes)}


def load_data(cfg: RunConfig) -> PreparedData:
    d = cfg.data
    path = cfg.data_path
    if d.is_images(path):
        from nnstudio.core.data.augment import Augment
        from nnstudio.core.data.images import load_images

        data = load_images(path, d.image_size, d.channels or "auto", d.split, d.seed, d.image_column,
                           d.target or None, d.on_bad or "skip", stream=d.stream if d.stream is not None else "auto",
                           workers=None if d.workers in (None, "auto") else d.workers)
        data.augment = Augment.from_dict(d.augment)
        return data
    return load_dataset(path, d.target or None, d.task, d.split, d.seed, d.missing, d.exclude)


def model_for(cfg: RunConfig, data: PreparedData) -> SpecModel:
    """The untrained network of a config for this data (an image model with its normalisation folded in)."""
    return build_model(cfg.layers, data.input_shape, data.n_outputs, seed=cfg.training.seed,
                       normalization=data.normalization)


class TrainingRun:
    """Owns one Trainer; `trainer.request_stop()`/`pause()`/`resume()` may be called from any thread."""

    def __init__(self, cfg: RunConfig, data: PreparedData | None = None, model: SpecModel | None = None,
                 callbacks: Sequence[Callback] = (), tensorboard: bool = True, checkpoint: bool = True,
                 max_step_log_rate: float | None = None, resume: LoadedCheckpoint | None = None,
                 checkpoint_path: Path | None = None, autosave: bool | None = None):
        """`resume`: a checkpoint to go on from (its model, optimizer, RNGs, history, run folder); it must
        fit the data (`core.training.resume.differences`). `checkpoint_path` overrides `[output] checkpoint`.
        `autosave` (default: with TensorBoard) keeps last.pt and best.pt in the run folder."""
        from nnstudio.core.training.resume import differences

        self.cfg = cfg
        self.data = data if data is not None else load_data(cfg)
        self.resumed_from = resume
        if resume is not None:
            problems = differences(resume, self.data, data_path=cfg.data.path or None)
            if problems:
                raise CheckpointError(f"{resume.path.name} cannot be continued on this data: " + "; ".join(problems))
            model = resume.model
        self.model = model if model is not None else model_for(cfg, self.data)
        previous_dir = Path(resume.run_dir) if resume is not None and resume.run_dir else None
        if previous_dir is not None and not previous_dir.is_dir():
            previous_dir = None
        self.tb = None
        all_callbacks = list(callbacks)
        if tensorboard:
            hparams = {"optimizer": cfg.training.optimizer, "lr": cfg.training.lr,
                       "batch_size": cfg.training.batch_size, "epochs": cfg.training.epochs,
                       "weight_decay": cfg.training.weight_decay, "scheduler": cfg.training.scheduler,
                       "layers": " → ".join(_layer_text(l) for l in self.model.spec)}
            t = cfg.training
            info = {"dataset": str(cfg.data_path) if cfg.data.path else "", "target": self.data.preprocessor.target,
                    "task": self.data.task, "layers": hparams["layers"],
                    "optimizer": f"{t.optimizer} lr={t.lr:g}" + (f" wd={t.weight_decay:g}" if t.weight_decay else "")
                                 + f" batch={t.batch_size}" + (f" {t.scheduler}" if t.scheduler != "none" else ""),
                    "config": _absolute_config(cfg)}
            self.tb = TensorBoardLogger(cfg.logdir, cfg.output.name, hparams, max_step_rate=max_step_log_rate,
                                        info=info, run_dir=previous_dir)
            all_callbacks.append(self.tb)
        self.run_dir = self.tb.run_dir if self.tb else (previous_dir or unique_run_dir(cfg.logdir, cfg.output.name))
        self.autosave = RunCheckpoints(self.run_dir, self.checkpoint_dict) if (
            tensorboard if autosave is None else autosave) else None
        if self.autosave is not None:
            from nnstudio.core.training.recovery import RunningMark

            all_callbacks.append(self.autosave)
            all_callbacks.append(RunningMark(self.run_dir))
        self.save = checkpoint
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path is not None else (
            cfg.checkpoint_path if cfg.output.checkpoint else None)
        self.world_size = 1  # set by core.distributed for a torchrun job
        self.trainer = Trainer(self.model, self.data, cfg.training, all_callbacks)
        if resume is not None:
            if resume.trainer_state is not None:
                self.trainer.load_state_dict(resume.trainer_state)
            else:  # an older checkpoint: the count and history go on; optimizer and RNGs start afresh
                self.trainer.epoch = resume.epoch
        self.test: dict[str, float] = {}

    def check_outputs(self) -> None:
        """Every path this run writes, before the first epoch (ConfigError naming the one at fault)."""
        from nnstudio.core.training.outputs import check_run_outputs

        check_run_outputs(self.checkpoint_path if self.save else None,
                          self.run_dir if (self.tb is not None or self.autosave is not None) else None, self.model)

    def checkpoint_dict(self, which: str = "last") -> dict:
        """The checkpoint of this run now: "last" (resumable, the model's weights) or "best" (the best epoch)."""
        t = self.trainer
        history = [{"epoch": e.epoch, "train_loss": e.train_loss, "val_loss": e.val_loss, **e.metrics} for e in t.history]
        if which == "best":
            best = next((e for e in t.history if e.epoch == t.best_epoch), None)
            metrics = {f"val_{k}": v for k, v in (best.metrics if best else {}).items()}
            out = build_checkpoint(self.model, self.data.preprocessor, config=self.cfg.to_dict(),
                                   epoch=t.best_epoch or 0, metrics=metrics, history=history, run_dir=str(self.run_dir),
                                   world_size=self.world_size)
            out["state_dict"] = plain(dict(t.best_state))
            return out
        last = t.history[-1].metrics if t.history else {}
        metrics = {**{f"val_{k}": v for k, v in last.items()}, **{f"test_{k}": v for k, v in self.test.items()}}
        finished = t.history[-1].epoch if t.history else t.epoch
        return build_checkpoint(self.model, self.data.preprocessor, config=self.cfg.to_dict(), optimizer=t.optimizer,
                                scheduler=t.scheduler, epoch=finished, metrics=metrics, history=history,
                                trainer_state=t.state_dict(), run_dir=str(self.run_dir), world_size=self.world_size)

    def execute(self) -> RunResult:
        self.check_outputs()
        epochs_before = len(self.trainer.history)
        try:
            finished = self.trainer.fit()
        except TrainingDiverged as exc:
            good = self.autosave.good_checkpoint() if self.autosave is not None else None
            keep = f"; the last good checkpoint is {good}" if good else "; no epoch was good enough to keep"
            if self.save and self.checkpoint_path is not None and self.checkpoint_path.exists():
                keep += f"; {self.checkpoint_path.name} was not overwritten"
            raise TrainingDiverged(f"{exc}{keep}") from exc
        test_loss, test_metrics = self.trainer.evaluate(self.trainer.data.test) if len(self.data.test) else (None, {})
        self.test = ({"loss": test_loss} if test_loss is not None else {}) | test_metrics
        path = None
        notes: list[str] = []
        if self.save and self.checkpoint_path is not None:
            if len(self.trainer.history) == epochs_before:
                notes.append(f"no epoch finished; {self.checkpoint_path} was left as it was")
            else:
                path = atomic_torch_save(self.checkpoint_dict("last"), self.checkpoint_path)
        if self.autosave is not None and self.autosave.error is not None:
            exc = self.autosave.error
            reason = getattr(exc, "strerror", None) or str(exc)
            saved = f"; the model was saved to {path}" if path else ""
            raise CheckpointError(f"run folder {self.run_dir}: last.pt/best.pt could not be written ({reason}){saved}")
        if self.tb is not None and self.tb.error is not None:
            exc = self.tb.error
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            saved = f"; the checkpoint was saved to {path}" if path else ""
            raise TrainingError(f"TensorBoard log {self.tb.run_dir}: could not be written ({reason}){saved}")
        if self.tb is not None:
            self.tb.update_info(test=self.test, checkpoint=str(Path(path).resolve()) if path else None)
        return RunResult(finished, self.test, path, self.tb.run_dir if self.tb else None, self.world_size,
                         tuple(notes))


def _absolute_config(cfg: RunConfig) -> dict[str, Any]:
    """The config with its paths absolute: run.json lives in another folder than the project file."""
    raw = cfg.to_dict()
    for section, key in (("data", "path"), ("output", "checkpoint"), ("output", "logdir")):
        if raw[section][key]:
            raw[section][key] = str(cfg.resolve(raw[section][key]).resolve())
    return raw


def _layer_text(layer: dict[str, Any]) -> str:
    t = layer["type"]
    if t == "Linear":
        return f"Linear({layer['out_features']})"
    if t == "Dropout":
        return f"Dropout({layer['p']})"
    return t


def evaluate_model(model: SpecModel, data: PreparedData, which: str = "test", loss: str = "auto") -> dict[str, float]:
    """Loss and the task's metrics of a model on one split (train, val or test), in eval mode."""
    from nnstudio.core.training import metrics
    from nnstudio.core.training.engine import make_loss, predict_batches

    split = {"train": data.train, "val": data.val, "test": data.test}[which]
    if len(split) == 0:
        return {}
    device = next(model.parameters()).device
    split = split.to(device)
    was_training = model.training
    model.eval()
    try:
        outputs = predict_batches(model, split.X)
        out_for_loss = outputs.squeeze(-1) if data.task != "multiclass" else outputs
        value = float(make_loss(data.task, loss)(out_for_loss, split.y))
        return {"loss": value} | metrics.compute(data.task, outputs, split.y, data.preprocessor)
    finally:
        model.train(was_training)
