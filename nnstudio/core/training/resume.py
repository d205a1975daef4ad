"""Full-state resume: what a `Trainer` must carry across processes to go on exactly where it stopped.

`Trainer.state_dict()` / `load_state_dict()` use these functions. The state is plain values and tensors
(a weights-only load opens it): the optimizer and scheduler, epoch and global step, every RNG the loop
draws from (torch CPU and CUDA for Dropout, the shuffle generator; numpy and Python's `random` are not
used by the loop), the early-stopping and divergence bookkeeping, the best weights and the history, and
where a stopped fit was inside its epoch. 10 epochs equal 5 + 5 resumed, bit for bit
(tests/core/test_resume.py).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from nnstudio.core.training.engine import Trainer

STATE_VERSION = 1


def _plain_tree(value: Any) -> Any:
    from nnstudio.core.model.checkpoint import plain

    return plain(value, "trainer_state")


def _scheduler_state(scheduler: Any) -> dict[str, Any] | None:
    if scheduler is None:
        return None
    from nnstudio.core.model.checkpoint import plain

    out = {}
    for key, value in scheduler.state_dict().items():
        try:
            out[key] = plain(value)
        except TypeError:
            pass  # a function (a lambda schedule) is rebuilt from the config, not stored
    return out


def trainer_state(trainer: "Trainer") -> dict[str, Any]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    partial = trainer._partial
    best_is_model = (trainer.best_state is not None and trainer.best_epoch == trainer.epoch
                     and trainer.last_state is None and partial is None)
    return _plain_tree({
        "version": STATE_VERSION,
        "epoch": trainer.epoch,
        "global_step": trainer.global_step,
        "optimizer": trainer.optimizer.state_dict() if trainer.optimizer is not None else None,
        "scheduler": _scheduler_state(trainer.scheduler),
        "rng": {"torch": torch.get_rng_state(), "cuda": list(cuda),
                "shuffle": trainer.generator.get_state() if trainer.generator is not None else None},
        "best_epoch": trainer.best_epoch,
        "best_val_loss": trainer.best_val_loss,
        "best_train_loss": trainer.best_train_loss,
        "best_state": None if best_is_model else trainer.best_state,
        "best_is_model": best_is_model,
        "last_state": trainer.last_state,
        "early_stopping": {"patience": trainer.config.early_stopping,
                           "epochs_since_best": (trainer.epoch - trainer.best_epoch)
                           if trainer.best_epoch is not None else None},
        "history": [asdict(e) for e in trainer.history],
        "partial": dict(partial) if partial else None,
    })


def restore_counters(trainer: "Trainer", state: dict[str, Any]) -> None:
    """What does not need the optimizer: counters, weights, best weights, history."""
    from nnstudio.core.training.events import EpochFinished

    if state.get("last_state"):
        trainer.model.load_state_dict(state["last_state"])
    trainer.epoch = int(state["epoch"])
    trainer.global_step = int(state["global_step"])
    trainer.best_epoch = state.get("best_epoch")
    trainer.best_val_loss = state.get("best_val_loss")
    trainer.best_train_loss = state.get("best_train_loss")
    if state.get("best_is_model"):
        trainer.best_state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
    else:
        trainer.best_state = state.get("best_state")
    trainer.last_state = None
    trainer.history = [EpochFinished(**{**e, "metrics": dict(e.get("metrics") or {})}) for e in state.get("history", [])]
    trainer._partial = dict(state["partial"]) if state.get("partial") else None
    trainer.should_stop = False


def apply_trainer_state(trainer: "Trainer", state: dict[str, Any],
                        generator: torch.Generator | None) -> torch.Generator | None:
    """After the fit has built its optimizer, scheduler and seeded its RNGs: put the saved ones back."""
    if state.get("optimizer") is not None and trainer.optimizer is not None:
        trainer.optimizer.load_state_dict(state["optimizer"])
    if state.get("scheduler") is not None and trainer.scheduler is not None:
        trainer.scheduler.load_state_dict(state["scheduler"])
    rng = state.get("rng") or {}
    if rng.get("torch") is not None:
        torch.set_rng_state(rng["torch"])
    cuda = rng.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    if rng.get("shuffle") is not None:
        if generator is None:
            generator = torch.Generator()
        generator.set_state(rng["shuffle"])
    return generator


def differences(checkpoint: Any, data: Any, layers: list[dict[str, Any]] | None = None,
                data_path: str | None = None) -> list[str]:
    """Why a checkpoint cannot be continued on this data: one phrase per difference (empty: it can).

    Compares what the weights were trained to map: the target, the task, the preprocessing (the
    features, their encoding and scaling, the classes) and the dataset file when both name one.
    """
    out: list[str] = []
    pre = checkpoint.preprocessor
    if pre is None:
        return ["the checkpoint holds no preprocessing (a bare state_dict), so its data cannot be compared"]
    from nnstudio.core.model.checkpoint import plain

    theirs, ours = plain(pre.to_dict()), plain(data.preprocessor.to_dict())
    if theirs.get("target") != ours.get("target"):
        out.append(f"target '{theirs.get('target')}' in the checkpoint, '{ours.get('target')}' now")
    if getattr(pre, "task", None) != data.task:
        out.append(f"task {getattr(pre, 'task', None)} in the checkpoint, {data.task} now")
    if not out and theirs != ours:
        changed = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
        out.append("the preprocessing differs (" + ", ".join(changed) + ")")
    saved_path = ((checkpoint.config or {}).get("data") or {}).get("path")
    if data_path and saved_path:
        from pathlib import Path

        if Path(saved_path).name != Path(data_path).name:
            out.append(f"dataset {Path(saved_path).name} in the checkpoint, {Path(data_path).name} now")
    if layers is not None and list(layers) != list(checkpoint.layers):
        out.append("the model's layers differ from the checkpoint's")
    return out


def choice_differences(checkpoint: Any, target: str | None, task: str | None, data_path: str | None) -> list[str]:
    """The window's check before Continue: the dataset, target and task chosen now against the checkpoint's.
    (The preprocessing is the checkpoint's own when it continues; `differences` checks it on the prepared data.)"""
    pre = checkpoint.preprocessor
    if pre is None:
        return ["the checkpoint holds no preprocessing (a bare state_dict); train it on a dataset first"]
    out = []
    if target and pre.target != target:
        out.append(f"the checkpoint was trained on target '{pre.target}', the dataset panel has '{target}'")
    if task and task != "auto" and pre.task != task:
        out.append(f"the checkpoint's task is {pre.task}, the dataset panel's is {task}")
    saved = ((checkpoint.config or {}).get("data") or {}).get("path")
    if data_path and saved:
        from pathlib import Path

        if Path(saved).name != Path(data_path).name:
            out.append(f"the checkpoint was trained on {Path(saved).name}, the open dataset is {Path(data_path).name}")
    return out
