"""A whole run from one config: data, model, training with callbacks, test metrics, checkpoint.

The command line and the window's training worker both drive this, so they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from nnstudio.core.callbacks import TensorBoardLogger
from nnstudio.core.checkpoint import save_checkpoint
from nnstudio.core.config import RunConfig
from nnstudio.core.data import PreparedData, load_dataset
from nnstudio.core.engine import Callback, FitFinished, Trainer
from nnstudio.core.model import SpecModel, build_model


@dataclass
class RunResult:
    finished: FitFinished
    test: dict[str, float]
    checkpoint: Path | None
    run_dir: Path | None
    world_size: int = 1

    def to_json(self) -> dict[str, Any]:
        f = self.finished
        return {"status": f.reason, "epochs": f.epochs_completed, "steps": f.steps, "seconds": round(f.seconds, 3),
                "best_epoch": f.best_epoch, "best_val_loss": f.best_val_loss, "validation": f.metrics,
                "test": self.test, "checkpoint": str(self.checkpoint) if self.checkpoint else None,
                "tensorboard": str(self.run_dir) if self.run_dir else None, "world_size": self.world_size}


def load_data(cfg: RunConfig) -> PreparedData:
    d = cfg.data
    return load_dataset(cfg.data_path, d.target or None, d.task, d.split, d.seed, d.missing, d.exclude)


class TrainingRun:
    """Owns one Trainer; `trainer.request_stop()`/`pause()`/`resume()` may be called from any thread."""

    def __init__(self, cfg: RunConfig, data: PreparedData | None = None, model: SpecModel | None = None,
                 callbacks: Sequence[Callback] = (), tensorboard: bool = True, checkpoint: bool = True,
                 max_step_log_rate: float | None = None):
        self.cfg = cfg
        self.data = data if data is not None else load_data(cfg)
        self.model = model if model is not None else build_model(cfg.layers, self.data.n_features, self.data.n_outputs,
                                                                  seed=cfg.training.seed)
        self.tb = None
        all_callbacks = list(callbacks)
        if tensorboard:
            hparams = {"optimizer": cfg.training.optimizer, "lr": cfg.training.lr,
                       "batch_size": cfg.training.batch_size, "epochs": cfg.training.epochs,
                       "weight_decay": cfg.training.weight_decay, "scheduler": cfg.training.scheduler,
                       "layers": " → ".join(_layer_text(l) for l in self.model.spec)}
            self.tb = TensorBoardLogger(cfg.logdir, cfg.output.name, hparams, max_step_rate=max_step_log_rate)
            all_callbacks.append(self.tb)
        self.save = checkpoint
        self.world_size = 1  # set by core.distributed for a torchrun job
        self.trainer = Trainer(self.model, self.data, cfg.training, all_callbacks)

    def execute(self) -> RunResult:
        finished = self.trainer.fit()
        test_loss, test_metrics = self.trainer.evaluate(self.trainer.data.test) if len(self.data.test) else (None, {})
        test = ({"loss": test_loss} if test_loss is not None else {}) | test_metrics
        path = None
        if self.save and self.cfg.output.checkpoint:
            path = save_checkpoint(
                self.cfg.checkpoint_path, self.model, self.data.preprocessor, config=self.cfg.to_dict(),
                optimizer=self.trainer.optimizer, scheduler=self.trainer.scheduler, epoch=self.trainer.epoch,
                metrics={**{f"val_{k}": v for k, v in finished.metrics.items()}, **{f"test_{k}": v for k, v in test.items()}},
                history=[{"epoch": e.epoch, "train_loss": e.train_loss, "val_loss": e.val_loss, **e.metrics}
                         for e in self.trainer.history], world_size=self.world_size)
        return RunResult(finished, test, path, self.tb.run_dir if self.tb else None, self.world_size)


def _layer_text(layer: dict[str, Any]) -> str:
    t = layer["type"]
    if t == "Linear":
        return f"Linear({layer['out_features']})"
    if t == "Dropout":
        return f"Dropout({layer['p']})"
    return t


def evaluate_model(model: SpecModel, data: PreparedData, which: str = "test", loss: str = "auto") -> dict[str, float]:
    """Loss and the task's metrics of a model on one split (train, val or test), in eval mode."""
    from nnstudio.core import metrics
    from nnstudio.core.engine import make_loss, predict_batches

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
