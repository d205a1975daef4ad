"""The training engine: `Trainer.fit()` runs the loop; callbacks observe it through plain-value events.

Modelled on Lightning's Callback/dispatcher, kept small: hooks do nothing by default, one dispatcher
calls them, and every exception goes through one funnel (`on_exception`) before it is re-raised.
Stop, pause and early stopping share one cooperative mechanism: flags checked between batches.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Sequence

import torch
from torch import nn

from nnstudio.core.training import metrics as metrics_mod
from nnstudio.core.data import PreparedData, TensorSplit, iter_batches
from nnstudio.core.devices import resolve_device
from nnstudio.core.errors import ConfigError, TrainingDiverged
from nnstudio.core.training.events import (  # noqa: F401  (re-exported: the engine's public events)
    Callback, EpochFinished, FitFailed, FitFinished, FitStarted, StepFinished)

OPTIMIZERS = ("SGD", "Adam", "AdamW", "RMSprop")
SCHEDULERS = ("none", "step", "cosine", "plateau", "onecycle")
LOSSES = {"regression": ("mse", "l1", "huber"), "binary": ("bce",), "multiclass": ("cross_entropy",)}
DEFAULT_LOSS = {"regression": "mse", "binary": "bce", "multiclass": "cross_entropy"}
CLASS_WEIGHTS = ("none", "balanced")


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 64
    shuffle: bool = True
    optimizer: str = "Adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9  # SGD and RMSprop
    nesterov: bool = False  # SGD
    loss: str = "auto"
    scheduler: str = "none"
    step_size: int = 10  # step scheduler: epochs between decays
    gamma: float = 0.1  # step scheduler: decay factor
    plateau_factor: float = 0.5
    plateau_patience: int = 3
    early_stopping: int = 0  # patience in epochs; 0 turns it off
    grad_clip: float = 0.0  # max gradient norm; 0 turns it off
    seed: int | None = 0
    divergence_factor: float = 1000.0  # an epoch's train loss this many times its best so far stops the run; 0 off
    device: str = "auto"
    threads: int | str = "auto"  # torch intra-op threads in the training thread
    class_weight: str = "none"  # "balanced": the loss weighted by inverse training-class frequency

    def validate(self) -> "TrainConfig":
        def whole(name: str, low: int) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"[training] {name} must be a whole number ≥ {low}, got {value!r}")

        def number(name: str, low: float, strict: bool = False) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or value < low or (strict and value == low):
                raise ConfigError(f"[training] {name} must be a number {'>' if strict else '≥'} {low}, got {value!r}")

        whole("epochs", 1)
        whole("batch_size", 1)
        whole("step_size", 1)
        whole("plateau_patience", 0)
        whole("early_stopping", 0)
        number("lr", 0.0, strict=True)
        number("weight_decay", 0.0)
        number("momentum", 0.0)
        number("gamma", 0.0, strict=True)
        number("plateau_factor", 0.0, strict=True)
        number("grad_clip", 0.0)
        number("divergence_factor", 0.0)
        if 0 < self.divergence_factor <= 1:
            raise ConfigError(f"[training] divergence_factor must be 0 (off) or > 1, got {self.divergence_factor!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"[training] optimizer '{self.optimizer}' is unknown: use {', '.join(OPTIMIZERS)}")
        if self.scheduler not in SCHEDULERS:
            raise ConfigError(f"[training] scheduler '{self.scheduler}' is unknown: use {', '.join(SCHEDULERS)}")
        if self.threads != "auto" and (isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1):
            raise ConfigError(f"[training] threads must be \"auto\" or a whole number ≥ 1, got {self.threads!r}")
        if self.class_weight not in CLASS_WEIGHTS:
            raise ConfigError(f"[training] class_weight must be \"none\" or \"balanced\", got {self.class_weight!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ConfigError(f"[training] seed must be a whole number, got {self.seed!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------- helpers

def make_loss(task: str, name: str = "auto", weights: torch.Tensor | None = None) -> nn.Module:
    """The task's loss; `weights` is CrossEntropy's per-class `weight` or BCE's `pos_weight`."""
    name = DEFAULT_LOSS[task] if name == "auto" else name
    if name not in LOSSES[task]:
        raise ConfigError(f"[training] loss '{name}' does not fit a {task} task: use {', '.join(LOSSES[task])} or auto")
    if weights is not None and name == "bce":
        return nn.BCEWithLogitsLoss(pos_weight=weights)
    if weights is not None and name == "cross_entropy":
        return nn.CrossEntropyLoss(weight=weights)
    return {"mse": nn.MSELoss, "l1": nn.L1Loss, "huber": nn.HuberLoss, "bce": nn.BCEWithLogitsLoss,
            "cross_entropy": nn.CrossEntropyLoss}[name]()


def class_weights(data: PreparedData, mode: str = "none") -> torch.Tensor | None:
    """Inverse training-class frequency, scaled as scikit-learn's "balanced": n / (k * count_k).

    A binary task gets the single `pos_weight` = negatives / positives that BCEWithLogitsLoss takes.
    """
    if mode == "none" or data.task == "regression":
        return None
    if mode != "balanced":
        raise ConfigError(f"[training] class_weight must be \"none\" or \"balanced\", got {mode!r}")
    y = data.train.y.reshape(-1).long().cpu()
    if data.task == "binary":
        pos = int(y.sum())
        neg = len(y) - pos
        return torch.tensor([neg / pos], dtype=torch.float32) if pos and neg else None
    counts = torch.bincount(y, minlength=data.n_outputs).double()
    weights = torch.where(counts > 0, len(y) / (data.n_outputs * counts.clamp(min=1)), torch.zeros_like(counts))
    return weights.float()


def _cpu_vector_floats() -> int:
    capability = torch.backends.cpu.get_cpu_capability()
    return 16 if capability.startswith("AVX512") else 8 if capability.startswith("AVX2") else 4


def fast_loss(loss_fn: nn.Module, device: torch.device):
    """The same loss, computed where torch's CPU kernels are fastest for it.

    torch's CPU log-softmax over a last dimension narrower than a vector register (under 16 classes with
    AVX-512) runs a per-row scalar path: at 4096 rows × 10 classes it took ~1 ms of a ~4 ms training
    step of a small MLP. Laid out class-major, (1, C, N), the same reduction runs vectorised over rows
    with the same per-row arithmetic, ~4× faster forward and backward: the loss and its gradient match
    torch's bit for bit; the gradient reaches the last layer transposed, so that layer's matrix product may
    round differently (tests/core/test_fast_loss.py). Runs stay deterministic. Anything but a plain,
    hook-free CrossEntropyLoss on 2-D CPU logits is left to torch.
    """
    if (device.type != "cpu" or type(loss_fn) is not nn.CrossEntropyLoss or loss_fn.weight is not None
            or loss_fn.label_smoothing != 0.0 or loss_fn.reduction not in ("mean", "sum")
            or loss_fn._forward_hooks or loss_fn._forward_pre_hooks):
        return loss_fn
    width = _cpu_vector_floats()
    ignore_index, reduction = loss_fn.ignore_index, loss_fn.reduction
    cross_entropy = nn.functional.cross_entropy

    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if logits.dim() == 2 and target.dim() == 1 and 1 < logits.shape[1] < width \
                and logits.shape[0] * logits.shape[1] >= 1024 and not target.is_floating_point():
            return cross_entropy(logits.t().unsqueeze(0), target.unsqueeze(0), ignore_index=ignore_index,
                                 reduction=reduction)
        return cross_entropy(logits, target, ignore_index=ignore_index, reduction=reduction)

    return loss


def _fused_ok(params: list[torch.Tensor], device: torch.device) -> bool:
    return device.type in ("cpu", "cuda") and all(p.is_floating_point() for p in params)


_DYNAMO_WRAPPED = ("add_param_group", "zero_grad", "state_dict", "load_state_dict")


def skip_dynamo_import() -> None:
    """Let torch.optim's `@torch._disable_dynamo` methods run without importing torch's compiler (~1 s).

    Those wrappers import torch._dynamo on their first call only to mark the method as not-to-be-traced;
    an `Optimizer.__init__` calls one (add_param_group), so every run paid ~1 s (issue 23). Their own cache
    slot is filled with the plain method, which is what they run when nothing is being compiled; nnstudio
    never compiles optimizer code. Done only while torch._dynamo is not loaded (once it is, the wrappers
    cache the real thing themselves).
    """
    if "torch._dynamo" in sys.modules:
        return
    for name in _DYNAMO_WRAPPED:
        inner = getattr(getattr(torch.optim.Optimizer, name), "__wrapped__", None)
        if inner is not None and getattr(inner, "__dynamo_disable", None) is None:
            setattr(inner, "__dynamo_disable", inner)


def make_optimizer(params: Iterable[torch.Tensor], cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    skip_dynamo_import()
    params = [p for p in params if p.requires_grad]
    kw: dict[str, Any] = {"lr": cfg.lr, "weight_decay": cfg.weight_decay}
    fused = _fused_ok(params, device)
    if cfg.optimizer == "SGD":
        return torch.optim.SGD(params, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
                               fused=fused or None, **kw)
    if cfg.optimizer == "Adam":
        return torch.optim.Adam(params, fused=fused or None, **kw)
    if cfg.optimizer == "AdamW":
        return torch.optim.AdamW(params, fused=fused or None, **kw)
    return torch.optim.RMSprop(params, momentum=cfg.momentum, **kw)


class _Stepper:
    """`zero_grad(set_to_none=True)` and `step()` of the trainer's optimizer, minus torch.optim's per-step Python.

    For a fused Adam/AdamW on CPU with float hyper-parameters and no optimizer hooks, a step is the very
    call torch makes (`_foreach_add_` on the step counters, then `torch._fused_adam_`/`_fused_adamw_`) on
    the optimizer's own state tensors, so state_dict(), schedulers and checkpoints see exactly what
    `optimizer.step()` would have left: bit-identical weights (tests/core/test_fast_step.py). The first
    step creates the state as `Adam._init_group` does (`optimizer.step()` would import torch's compiler,
    ~1 s, for its graph breaks); a fit that goes on from a state goes through `optimizer.step()` once;
    anything unusual (a parameter without a gradient, a tensor learning rate, another optimizer) always does.
    At a batch of 32 this takes ~70 of a ~260 µs step of a small MLP down to ~10.
    """

    def __init__(self, optimizer: torch.optim.Optimizer):
        self.optimizer = optimizer
        self.params = [p for group in optimizer.param_groups for p in group["params"]]
        self.plain_zero = type(optimizer).zero_grad is torch.optim.Optimizer.zero_grad
        self.fast = self._fast_ok(optimizer)
        self.groups: list[tuple[dict, list, list, list, list, list]] | None = None

    @staticmethod
    def _fast_ok(opt: torch.optim.Optimizer) -> bool:
        from torch.optim import optimizer as optim_mod

        if type(opt) not in (torch.optim.Adam, torch.optim.AdamW) or getattr(opt, "grad_scale", None) is not None \
                or getattr(opt, "found_inf", None) is not None or opt._optimizer_step_pre_hooks \
                or opt._optimizer_step_post_hooks or optim_mod._global_optimizer_pre_hooks \
                or optim_mod._global_optimizer_post_hooks or not hasattr(torch, "_fused_adam_"):
            return False
        for g in opt.param_groups:
            if not g.get("fused") or g.get("differentiable") or g.get("capturable") \
                    or any(isinstance(g[k], torch.Tensor) for k in ("lr", "weight_decay", "eps")) \
                    or any(isinstance(b, torch.Tensor) for b in g["betas"]) \
                    or any(p.device.type != "cpu" or p.dtype != torch.float32 for p in g["params"]):
                return False
        return True

    def zero_grad(self) -> None:
        if self.plain_zero:
            for p in self.params:
                p.grad = None
        else:
            self.optimizer.zero_grad(set_to_none=True)

    def _collect(self) -> None:
        groups = []
        state = self.optimizer.state
        for g in self.optimizer.param_groups:
            params = list(g["params"])
            states = [state.get(p) for p in params]
            if any(not st or not torch.is_tensor(st.get("step")) for st in states):
                return
            amsgrad = bool(g["amsgrad"])
            groups.append((g, params, [st["exp_avg"] for st in states], [st["exp_avg_sq"] for st in states],
                           [st["max_exp_avg_sq"] for st in states] if amsgrad else [], [st["step"] for st in states]))
        self.groups = groups

    def _init_state(self) -> bool:
        """A fresh fused Adam's state, made as its first `step()` makes it; False where it has any."""
        from torch.optim.optimizer import _get_scalar_dtype

        state = self.optimizer.state
        if any(state.get(p) for p in self.params) or any(p.grad is None for p in self.params):
            return False
        for g in self.optimizer.param_groups:
            for p in g["params"]:
                st = state[p]
                st["step"] = torch.zeros((), dtype=_get_scalar_dtype(is_fused=True), device=p.device)
                st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                if g["amsgrad"]:
                    st["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        self.optimizer._opt_called = True  # what an LR scheduler's wrapper of step() records
        self._collect()
        return self.groups is not None

    def step(self) -> None:
        groups = self.groups
        if groups is None and self.fast and self._init_state():
            groups = self.groups
        if groups is None:
            self.optimizer.step()
            if self.fast:
                self._collect()
            return
        with torch.no_grad():
            for g, params, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps in groups:
                grads = [p.grad for p in params]
                if any(grad is None for grad in grads):  # torch skips those parameters; let it
                    self.groups = None
                    self.optimizer.step()
                    return
                beta1, beta2 = g["betas"]
                torch._foreach_add_(steps, 1)
                kernel = torch._fused_adamw_ if g["decoupled_weight_decay"] else torch._fused_adam_
                try:
                    kernel(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, amsgrad=g["amsgrad"],
                           lr=g["lr"], beta1=beta1, beta2=beta2, weight_decay=g["weight_decay"], eps=g["eps"],
                           maximize=g["maximize"], grad_scale=None, found_inf=None)
                except (TypeError, RuntimeError):
                    # A torch release whose private fused kernel takes other arguments: the schema check
                    # fails before anything is written, so undo the counters and use torch.optim from now on.
                    torch._foreach_sub_(steps, 1)
                    self.fast, self.groups = False, None
                    self.optimizer.step()
                    return


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    if cfg.scheduler == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    if cfg.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=cfg.plateau_factor,
                                                          patience=cfg.plateau_patience)
    if cfg.scheduler == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, epochs=cfg.epochs,
                                                   steps_per_epoch=steps_per_epoch)
    return None


#: torch splits an element-wise op or a reduction across threads only above this many elements
#: (at::internal::GRAIN_SIZE); below it a second thread only adds hand-off at every parallel region.
PARALLEL_GRAIN = 32768


def choose_threads(model: nn.Module, batch_size: int, device: torch.device) -> int:
    """Intra-op threads for this work, set in the thread that trains: 1, or every core.

    All cores when some op of a step is big enough for torch to split: an activation (batch × features)
    or a parameter tensor (the optimizer step, the gradient) above PARALLEL_GRAIN elements. Otherwise one
    thread, which is faster on small work. Measured with `python -m benchmarks.threads` on 2 cores (one
    thread's speed over two's): 32-16-10 at 1024 rows 1.05, at 4096 0.90; 32-64-10 at 512 1.07, at 1024
    0.95; 32-128-128-10 at 256 1.11, at 512 0.88; 32-256-256-10 at 32 0.92; 32-1024-1024-10 at 32 0.70.
    Work alone (batch × multiply-adds) does not separate these: 32-128-128-10 at 256 does twice the
    multiply-adds of 32-16-10 at 4096, yet prefers one thread. Deterministic, so a seeded run repeats.
    """
    if device.type != "cpu":
        return 1
    cores = _cores()
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    widest = max([linears[0].in_features] + [m.out_features for m in linears]) if linears else 0
    largest_param = max((p.numel() for p in model.parameters()), default=0)
    return cores if max(batch_size * widest, largest_param) > PARALLEL_GRAIN else 1


def _cores() -> int:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def seed_everything(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


# ---------------------------------------------------------------------------------------------- trainer

class Trainer:
    """Fits a model on prepared in-memory data (or any iterable of batches) and reports through callbacks."""

    def __init__(self, model: nn.Module, data: PreparedData, config: TrainConfig | None = None,
                 callbacks: Sequence[Callback] = ()):
        self.config = (config or TrainConfig()).validate()
        self.device = resolve_device(self.config.device)
        self.model = model
        self.data = data
        self.task = data.task
        self.callbacks = list(callbacks)
        self.loss_fn = make_loss(self.task, self.config.loss, class_weights(data, self.config.class_weight))
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler = None
        self.epoch = 0
        self.global_step = 0
        self.history: list[EpochFinished] = []
        self.best_epoch: int | None = None
        self.best_val_loss: float | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.last_state: dict[str, torch.Tensor] | None = None  # the last epoch's weights, when best ones were loaded
        self._initial_state: dict[str, torch.Tensor] | None = None
        self.best_train_loss: float | None = None
        self.generator: torch.Generator | None = None
        self._resume_state: dict[str, Any] | None = None
        self._partial: dict[str, Any] | None = None  # where a fit stopped inside an epoch
        self.result: FitFinished | None = None
        self.should_stop = False
        self._seen = 0
        self.stop_reason = "stopped"
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        #: Set by core.distributed for a torchrun process: shards batches, reduces losses and outputs, agrees
        #: on stopping. None: one process, the loop as it always was.
        self.strategy = None
        #: Without clipping, the gradient norm is measured on every n-th step (0: never); benchmarks/health.py.
        self.grad_norm_every = GRAD_NORM_EVERY

    # -- control, callable from any thread
    def request_stop(self) -> None:
        self._stop.set()
        self._running.set()  # wake a paused loop so it can stop

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def _wait_if_paused(self) -> None:
        if self._running.is_set() or self._stop.is_set():
            return
        for cb in self.callbacks:
            cb.on_pause(self)
        while not self._running.is_set() and not self._stop.is_set():
            self._running.wait(0.1)

    # -- dispatcher
    def _call(self, hook: str, event: Any) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, event)

    # -- the loop
    def fit(self) -> FitFinished:
        cfg = self.config
        previous_threads = torch.get_num_threads()
        try:
            generator = seed_everything(cfg.seed) if cfg.seed is not None else None
            self.generator = generator
            self.model.to(self.device)
            self.loss_fn.to(self.device)
            self.data = self.data.to(self.device)
            train, val = self.data.train, self.data.val
            if len(train) == 0:
                raise TrainingDiverged("the training split is empty; lower the validation/test fractions")
            steps_per_epoch = self._steps_per_epoch(len(train))
            threads = cfg.threads if cfg.threads != "auto" else choose_threads(self.model, cfg.batch_size, self.device)
            torch.set_num_threads(threads)
            if self.optimizer is None:
                self.optimizer = make_optimizer(self.model.parameters(), cfg, self.device)
                self.scheduler = make_scheduler(self.optimizer, cfg, steps_per_epoch)
            if self._resume_state is not None:
                from nnstudio.core.training.resume import apply_trainer_state

                state, self._resume_state = self._resume_state, None
                self.generator = generator = apply_trainer_state(self, state, generator)
            self._initial_state = _snapshot(self.model) if self.best_state is None else None
            first_epoch = self._partial["epoch"] if self._partial else self.epoch + 1
            self._call("on_fit_start", FitStarted(cfg.epochs, steps_per_epoch, len(train), len(val), str(self.device),
                                                  self.task, threads, first_epoch, self.global_step))
            result = self._run_epochs(train, val, generator)
            self.result = result
            self._call("on_fit_end", result)
            return result
        except BaseException as exc:
            failed = FitFailed(str(exc) or type(exc).__name__, type(exc).__name__)
            for cb in self.callbacks:
                try:
                    cb.on_exception(self, failed)
                except Exception:
                    pass  # a failing observer must not hide the original error
            raise
        finally:
            for cb in self.callbacks:
                try:
                    cb.teardown(self)
                except Exception:
                    pass
            torch.set_num_threads(previous_threads)

    def _run_epochs(self, train: TensorSplit, val: TensorSplit, generator: torch.Generator | None) -> FitFinished:
        cfg = self.config
        model, optimizer, scheduler = self.model, self.optimizer, self.scheduler
        loss_fn = fast_loss(self.loss_fn, self.device)
        stepper = _Stepper(optimizer)
        per_batch_scheduler = isinstance(scheduler, torch.optim.lr_scheduler.OneCycleLR)
        want_steps = any(type(cb).on_train_batch_end is not Callback.on_train_batch_end for cb in self.callbacks)
        clip = cfg.grad_clip
        params = [p for p in model.parameters() if p.requires_grad]
        reshape_target = self.task != "multiclass"
        sync_every = 1 if self.device.type == "cpu" else 32
        skip_single = _has_batchnorm(model)
        last_scheduled_step = (scheduler.total_steps - 1 if per_batch_scheduler
                               else cfg.epochs * self._steps_per_epoch(len(train)) - 1)
        strategy = self.strategy
        forward = strategy.wrap(model) if strategy is not None else model
        batches = strategy.batches if strategy is not None else iter_batches
        norm_every = self.grad_norm_every
        augment = getattr(self.data, "augment", None)  # images: a random transform of each training batch
        layout = prefers_channels_last(model, self.device)
        start_time = time.perf_counter()
        reason = "completed"
        self.last_state = None
        partial, self._partial = self._partial, None
        first_epoch = partial["epoch"] if partial else self.epoch + 1
        for epoch in range(first_epoch, first_epoch + cfg.epochs):
            if self._stop.is_set() or self.should_stop:
                break
            self.epoch = epoch
            epoch_start = time.perf_counter()
            # The rate this epoch trains at (its first step's, with a per-batch schedule), read before the
            # scheduler moves it on for the next epoch: that is the one plotted and logged for this epoch.
            epoch_lr = float(optimizer.param_groups[0]["lr"])
            model.train()
            pending: list[torch.Tensor] = []
            sizes: list[int] = []
            total = 0.0
            norms: list[torch.Tensor] = []
            epoch_step = 0
            skip = 0
            if partial:  # the rest of an epoch that a stop interrupted: the same order, its first batches done
                if generator is not None:
                    generator.set_state(partial["shuffle_rng"])
                skip, total, self._seen = partial["batches"], partial["total"], partial["seen"]
                partial = None
            epoch_rng = generator.get_state() if generator is not None else None
            done_batches = 0
            for xb, yb in batches(train, cfg.batch_size, cfg.shuffle, generator):
                done_batches += 1
                if done_batches <= skip:
                    continue
                if not self._running.is_set():
                    if pending:  # what the observers have not seen yet, before they show the paused state
                        total += self._flush_steps(pending, sizes, epoch, want_steps)
                    self._wait_if_paused()
                if self._stop.is_set() if strategy is None else strategy.agree_stop(self):
                    done_batches -= 1
                    break
                if skip_single and len(xb) == 1:
                    continue  # BatchNorm cannot train on a batch of one
                if augment is not None:
                    xb = augment(xb)
                if layout:
                    xb = channels_last(xb)
                out = forward(xb)
                loss = loss_fn(out.squeeze(-1) if reshape_target else out, yb)
                stepper.zero_grad()
                loss.backward()
                if clip > 0:
                    norms.append(torch.nn.utils.clip_grad_norm_(params, clip))
                elif norm_every and epoch_step % norm_every == 0:
                    norms.append(grad_norm(params))
                epoch_step += 1
                stepper.step()
                if per_batch_scheduler and self.global_step < last_scheduled_step:
                    scheduler.step()
                self.global_step += 1
                pending.append(loss.detach())
                sizes.append(len(xb))
                if len(pending) >= sync_every:
                    total += self._flush_steps(pending, sizes, epoch, want_steps)
            if pending:
                total += self._flush_steps(pending, sizes, epoch, want_steps)
            seen, self._seen = self._seen, 0
            if strategy is not None:
                total, seen = strategy.sum_across(self, total, seen)
            if (self._stop.is_set() and strategy is None
                    and done_batches < self._steps_per_epoch(len(train))):
                self._partial = {"epoch": epoch, "batches": done_batches, "total": total, "seen": seen,
                                 "shuffle_rng": epoch_rng}
                self.epoch = epoch - 1
                reason = "stopped"
                break
            if seen == 0:
                break
            train_loss = total / seen
            epoch_norm = float(torch.stack(norms).mean()) if norms else None
            factor = cfg.divergence_factor
            if not math.isfinite(train_loss) or (factor and self.best_train_loss is not None
                                                 and train_loss > factor * self.best_train_loss):
                self._diverged(epoch, train_loss)
            if self.best_train_loss is None or train_loss < self.best_train_loss:
                self.best_train_loss = train_loss
            val_loss, metric_values = self._validate(val)
            improved = val_loss is not None and math.isfinite(val_loss) and (
                self.best_val_loss is None or val_loss < self.best_val_loss)
            if val_loss is None:
                improved = True
            if improved:
                self.best_epoch, self.best_val_loss = epoch, val_loss
                # Kept always (not only for early stopping): a diverging run falls back to these finite weights.
                self.best_state = _snapshot(model)
            if scheduler is not None and not per_batch_scheduler:
                if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    scheduler.step(val_loss if val_loss is not None else train_loss)
                else:
                    scheduler.step()
            event = EpochFinished(epoch, self.global_step, train_loss, val_loss, metric_values,
                                  epoch_lr, time.perf_counter() - epoch_start, improved, epoch_norm)
            self.history.append(event)
            self._call("on_epoch_end", event)
            if cfg.early_stopping and self.best_epoch is not None and epoch - self.best_epoch >= cfg.early_stopping:
                self.should_stop = True
                self.stop_reason = "early_stopping"
            if self.should_stop:
                reason = self.stop_reason
                break
        else:
            reason = "completed"
        if self._stop.is_set():
            reason = "stopped"
        if cfg.early_stopping and self.best_state is not None:
            self.last_state = _snapshot(model)  # where a resumed run goes on from
            model.load_state_dict(self.best_state)
        final = self.history[-1].metrics if self.history else {}
        if cfg.early_stopping and self.best_epoch is not None:
            final = next((e.metrics for e in self.history if e.epoch == self.best_epoch), final)
        return FitFinished(reason, len(self.history), self.global_step, self.best_epoch, self.best_val_loss,
                           dict(final), time.perf_counter() - start_time)

    def _steps_per_epoch(self, n_train: int) -> int:
        if self.strategy is not None:
            return self.strategy.steps_per_epoch(n_train, self.config.batch_size)
        return math.ceil(n_train / self.config.batch_size)

    def state_dict(self) -> dict[str, Any]:
        """Everything a later fit needs to go on exactly where this one ended (plain values and tensors)."""
        from nnstudio.core.training.resume import trainer_state

        return trainer_state(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Go on from `state_dict()` at the next `fit()` (applied once the optimizer and scheduler exist)."""
        from nnstudio.core.training.resume import restore_counters

        restore_counters(self, state)
        self._resume_state = state

    def _flush_steps(self, pending: list[torch.Tensor], sizes: list[int], epoch: int, emit: bool) -> float:
        """Turn buffered step losses into floats (one device sync per flush); return their weighted sum."""
        values = torch.stack(pending).tolist() if len(pending) > 1 else [pending[0].item()]
        first = self.global_step - len(values) + 1
        weighted = 0.0
        if self.best_train_loss is None and values and math.isfinite(values[0]):
            self.best_train_loss = values[0]  # the untrained model's loss: what a first epoch may not explode past
        for i, (value, size) in enumerate(zip(values, sizes)):
            if not math.isfinite(value) and self.strategy is None:
                # Under DDP one rank's NaN reaches the others through the averaged gradients a step later;
                # the epoch's summed loss (reduced across ranks) lets every rank stop at the same point.
                self._diverged(epoch, value, first + i)
            weighted += value * size
            self._seen += size
            if emit:
                self._call("on_train_batch_end", StepFinished(epoch, first + i, value))
        pending.clear()
        sizes.clear()
        return weighted

    def _diverged(self, epoch: int, value: float, step: int | None = None) -> None:
        fallback = self.best_state if self.best_state is not None else self._initial_state
        if fallback is not None:
            self.model.load_state_dict(fallback)  # never leave NaN weights behind
        where = f"epoch {epoch}" + (f", step {step}" if step is not None else "")
        if math.isfinite(value):
            what = (f"the training loss rose to {value:.4g} at {where}, over {self.config.divergence_factor:g}× its "
                    f"best ({self.best_train_loss:.4g})")
        else:
            what = f"the loss became {value} at {where}"
        raise TrainingDiverged(f"{what}: training diverged; try a lower learning rate (now {self.config.lr:g})")

    @torch.no_grad()
    def _validate(self, split: TensorSplit) -> tuple[float | None, dict[str, float]]:
        if len(split) == 0:
            return None, {}
        loss, values = self.evaluate(split)
        return loss, values

    @torch.no_grad()
    def evaluate(self, split: TensorSplit) -> tuple[float, dict[str, float]]:
        """Loss and the task's metrics on a split, in eval mode, batched to bound memory."""
        model = self.model
        was_training = model.training
        model.eval()
        try:
            split = split.to(self.device)
            outputs = (predict_batches(model, split.X, 8192) if self.strategy is None
                       else self.strategy.predict(model, split.X))
            target = split.y
            loss_fn = fast_loss(self.loss_fn, self.device)
            loss = float(loss_fn(outputs.squeeze(-1) if self.task != "multiclass" else outputs, target))
            return loss, metrics_mod.compute(self.task, outputs, target, self.data.preprocessor)
        finally:
            model.train(was_training)


#: Gradient norm measured on every n-th step of an epoch (and its first) when not clipping: a measure
#: costs 27-47 µs, 2-4% of a 32-16-10 MLP's step at batch 4096; 1 in 16 makes it ~0.2% (benchmarks/health.py).
GRAD_NORM_EVERY = 16


def grad_norm(params: Sequence[torch.Tensor]) -> torch.Tensor:
    """Total L2 norm of the parameters' gradients, as clip_grad_norm_ computes it, left on the device."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.nn.utils.get_total_norm(grads)


def predict_batches(model: nn.Module, X: torch.Tensor, batch_size: int = 8192) -> torch.Tensor:
    layout = channels_last if prefers_channels_last(model, X.device) else (lambda x: x)
    with torch.no_grad():
        if len(X) <= batch_size and isinstance(X, torch.Tensor):  # not an ImageStream, which decodes slices
            return model(layout(X))
        return torch.cat([model(layout(X[i:i + batch_size])) for i in range(0, len(X), batch_size)])


def prefers_channels_last(model: nn.Module, device: torch.device) -> bool:
    """Whether to feed this model its image batches channels-last: an nnstudio CNN on the CPU.

    torch's CPU max-pooling and batch norm run a scalar loop over N×C×H×W memory; laid out N×H×W×C, the
    oneDNN convolutions and those kernels vectorise over channels, and the layout flows through the layers.
    Small CNN forward+backward at batch 64, one thread: 8×8 grey 2.2 → 1.7 ms, 32×32 RGB 42 → 26 ms
    (benchmarks/images.py). Outputs agree with N×C×H×W to float rounding. Only a `SpecModel`, whose every
    layer takes either layout (its Flatten reshapes); a user's class may `view` its input. Parameters stay
    as they are, so checkpoints, exports and the optimizer's state do not change.
    """
    from nnstudio.core.model.spec import SpecModel

    return (device.type == "cpu" and isinstance(model, SpecModel) and model.input_shape is not None
            and any(isinstance(m, nn.Conv2d) for m in model.layers))


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """An N×C×H×W batch laid out channels-last, one channel too: there `.contiguous(memory_format=...)` keeps
    the N×C×H×W strides, which are both layouts at once, and the first convolution picks N×C×H×W."""
    if x.dim() != 4:
        return x
    return torch.empty(x.shape, dtype=x.dtype, device=x.device, memory_format=torch.channels_last).copy_(x)


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
