"""torchrun + DistributedDataParallel: `torchrun --nproc-per-node N -m nnstudio train RUN.toml`.

Each process trains on its own device (CUDA: `cuda:LOCAL_RANK` with nccl; otherwise the CPU with gloo)
and takes its shard of every epoch's permutation by the DistributedSampler rule: the same seeded
permutation on every rank, padded (by repeating its head) to a multiple of the world size, rank r
taking positions r, r+W, r+2W, ... With each rank's batch `ceil(batch_size / W)`, step k of all ranks
together covers positions k·B .. (k+1)·B of the padded permutation: the very rows of the single-process
step k, so `training.batch_size` stays the global batch and DDP's gradient average is the single-process
gradient (up to the padding rows of the last batch and the order of float sums).

Validation and test outputs are computed on a contiguous slice per rank and gathered, so losses and
metrics are computed on every row once, on every rank: the single-process values, and every rank
decides early stopping and divergence alike. A stop request (Ctrl+C) is agreed through an all-reduce
every few steps and at each epoch end, so no rank waits for a peer that has left the loop. A rank that
fails exits; torchrun then ends its peers, whose broken collectives are reported as `PeerFailed`
(silent: the failing rank has printed the one message that matters).

Only rank 0 writes the TensorBoard log, the progress bar and the checkpoint (`core.run.TrainingRun`
with the rank-0-only callbacks); the checkpoint holds the plain model's weights (no `module.`), and
its `world_size`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator

import torch
from torch import nn

from nnstudio.core.data import PreparedData, TensorSplit
from nnstudio.core.training.engine import Callback
from nnstudio.core.errors import ConfigError, NNStudioError, TrainingError

if TYPE_CHECKING:
    from nnstudio.core.run import RunResult, TrainingRun

#: Steps between two all-reduces of the stop flag (a Ctrl+C stops within this many steps).
STOP_SYNC_EVERY = 16

#: Test-only: "RANK:EPOCH" makes that rank raise at the end of that epoch (tests/core/test_distributed.py).
FAIL_ENV = "NNSTUDIO_TEST_FAIL_AT"



#: Devices where torch's SyncBatchNorm runs (its forward refuses CPU tensors: gloo has no such kernel).
SYNC_BATCHNORM_DEVICES = ("cuda", "xpu")


def sync_batchnorm(model: nn.Module, device: torch.device) -> bool:
    """Under DDP on a GPU, BatchNorm layers become SyncBatchNorm in place, sharing their parameters and running
    statistics (the state_dict keeps its keys): every rank normalises with the whole global batch's statistics,
    as one process would. On CPU they stay per-rank (SyncBatchNorm has no CPU kernel). True if converted."""
    if device.type not in SYNC_BATCHNORM_DEVICES:
        return False
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) and not isinstance(m, nn.SyncBatchNorm)
               for m in model.modules()):
        return False
    for name, child in list(model.named_children()):
        setattr(model, name, nn.SyncBatchNorm.convert_sync_batchnorm(child))
    return True

class PeerFailed(NNStudioError):
    """A collective broke because another process ended: that process reports the reason."""


def launched() -> bool:
    """Whether this process was started by torchrun (or anything that sets its environment)."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"))


@dataclass
class Context:
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    backend: str
    device: torch.device
    node_group: Any = None  # the processes of this machine (gloo), for handing data over

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init(device: str = "auto") -> Context:
    """Join the process group torchrun described: nccl on CUDA (one GPU per local rank), else gloo on CPUs."""
    import torch.distributed as dist

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"[training] device is {device!r} but this machine has no CUDA device: "
                          "use \"auto\" or \"cpu\" (torchrun then runs on the CPUs with gloo)")
    use_cuda = device != "cpu" and not device.startswith("mps") and torch.cuda.is_available()
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise TrainingError(f"local rank {local_rank} has no GPU of its own: this machine has "
                                f"{torch.cuda.device_count()}; start at most that many processes per node")
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, device_id=dev if use_cuda else None)
    node_group = None
    if local_world > 1 and world % local_world == 0:
        node_group, _ = dist.new_subgroups(group_size=local_world, backend="gloo")
    return Context(rank, world, local_rank, local_world, backend, dev, node_group)


def shutdown() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def shard_indices(n: int, world_size: int, rank: int, generator: torch.Generator | None,
                  shuffle: bool = True) -> torch.Tensor:
    """This rank's rows of one epoch, by torch's DistributedSampler rule (same permutation, padded)."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    total = math.ceil(n / world_size) * world_size
    if total > n:
        order = torch.cat([order, order.repeat(math.ceil((total - n) / n))[:total - n]])
    return order[rank:total:world_size]


def per_rank_batch(batch_size: int, world_size: int) -> int:
    return max(1, math.ceil(batch_size / world_size))


class DDPStrategy:
    """What `Trainer` asks of a distributed run (its `strategy`): a wrapped model for the training
    forward, this rank's batches, sums across ranks, gathered outputs and an agreed stop."""

    def __init__(self, ctx: Context, stop_every: int = STOP_SYNC_EVERY):
        self.ctx = ctx
        self.stop_every = stop_every
        self._ddp: nn.Module | None = None
        self._calls = 0
        self._requested = False

    # -- control
    def request_stop(self) -> None:
        """Ask every rank to stop (takes effect at the next agreement); safe from a signal handler."""
        self._requested = True

    def agree_stop(self, trainer) -> bool:
        self._calls += 1
        if self._calls % self.stop_every:
            return False
        return self._agree(trainer)

    def _agree(self, trainer) -> bool:
        flag = torch.tensor([1.0 if self._requested else 0.0], device=self._comm_device)
        self._all_reduce(flag)
        if flag.item() > 0:
            trainer._stop.set()
            return True
        return False

    # -- training
    def wrap(self, model: nn.Module) -> nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        if self._ddp is None or self._ddp.module is not model:
            ids = [self.ctx.device.index] if self.ctx.device.type == "cuda" else None
            sync_batchnorm(model, self.ctx.device)
            self._ddp = DistributedDataParallel(model, device_ids=ids)
        return self._ddp

    def steps_per_epoch(self, n_train: int, batch_size: int) -> int:
        shard = math.ceil(n_train / self.ctx.world_size)
        return math.ceil(shard / per_rank_batch(batch_size, self.ctx.world_size))

    def batches(self, split: TensorSplit, batch_size: int, shuffle: bool,
                generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        idx = shard_indices(len(split), self.ctx.world_size, self.ctx.rank, generator, shuffle).to(split.X.device)
        b = per_rank_batch(batch_size, self.ctx.world_size)
        for start in range(0, len(idx), b):
            part = idx[start:start + b]
            yield split.X.index_select(0, part), split.y.index_select(0, part)

    def sum_across(self, trainer, total: float, seen: int) -> tuple[float, int]:
        """The epoch's summed loss and rows over all ranks; carries the stop flag, so ranks agree here too."""
        values = torch.tensor([total, float(seen), 1.0 if self._requested else 0.0], dtype=torch.float64,
                              device=self._comm_device)
        self._all_reduce(values)
        total, seen, stop = values.tolist()
        if stop > 0:
            trainer._stop.set()
        return total, int(round(seen))

    # -- evaluation
    @torch.no_grad()
    def predict(self, model: nn.Module, X: torch.Tensor) -> torch.Tensor:
        """Every row's output on every rank: each computes a contiguous slice, then all are gathered."""
        from nnstudio.core.training.engine import predict_batches

        world, rank, n = self.ctx.world_size, self.ctx.rank, len(X)
        chunk = math.ceil(n / world)
        mine = predict_batches(model, X[rank * chunk:(rank + 1) * chunk])
        padded = torch.zeros((chunk, *mine.shape[1:]), dtype=mine.dtype, device=mine.device)
        padded[:len(mine)] = mine
        parts = [torch.empty_like(padded) for _ in range(world)]
        self._call(lambda dist: dist.all_gather(parts, padded))
        return torch.cat(parts)[:n]

    # -- plumbing
    @property
    def _comm_device(self) -> torch.device:
        return self.ctx.device if self.ctx.backend == "nccl" else torch.device("cpu")

    def _all_reduce(self, tensor: torch.Tensor) -> None:
        self._call(lambda dist: dist.all_reduce(tensor))

    @staticmethod
    def _call(fn: Callable) -> Any:
        import torch.distributed as dist

        try:
            return fn(dist)
        except RuntimeError as exc:
            raise _peer_failed(exc) from exc


def _peer_failed(exc: BaseException) -> BaseException:
    import torch.distributed as dist

    text = str(exc)
    if isinstance(exc, getattr(dist, "DistError", ())) or any(
            word in text for word in ("Connection closed", "Connection reset", "gloo", "NCCL", "Broken pipe")):
        return PeerFailed("another process of this run failed; see its message")
    return exc


class _FailAt(Callback):
    """Test-only failure injection (FAIL_ENV="RANK:EPOCH"): that rank raises at that epoch's end."""

    def __init__(self, rank: int, spec: str):
        fail_rank, _, epoch = spec.partition(":")
        self.active = int(fail_rank) == rank
        self.epoch = int(epoch or 1)
        self.rank = rank

    def on_epoch_end(self, trainer, event) -> None:
        if self.active and event.epoch == self.epoch:
            raise TrainingError(f"rank {self.rank}: failure injected at epoch {event.epoch} by {FAIL_ENV}")


def share_data(ctx: Context, load: Callable[[], PreparedData]) -> PreparedData:
    """Read and prepare the data once per machine (local rank 0) and hand it to the other local ranks.

    The split is seeded, so every machine prepares the same rows; a machine's other processes receive
    the prepared tensors over a local gloo group instead of reading the file again.
    """
    import torch.distributed as dist

    if ctx.node_group is None or ctx.local_world_size == 1:
        return load()
    leader = ctx.rank - ctx.local_rank
    box: list[Any] = [None]
    if ctx.local_rank == 0:
        try:
            box[0] = load()
        except NNStudioError as exc:
            box[0] = exc
            dist.broadcast_object_list([exc], src=leader, group=ctx.node_group)
            raise
    try:
        dist.broadcast_object_list(box, src=leader, group=ctx.node_group)
    except RuntimeError as exc:
        raise _peer_failed(exc) from exc
    if isinstance(box[0], BaseException):
        raise PeerFailed("the data could not be read; local rank 0 reported why")
    return box[0]


def prepare(cfg, callbacks: list[Callback], progress: Callback | None = None) -> tuple[Context, "TrainingRun"]:
    """This process's part of a torchrun job: joins the group, shares the data, builds the run.

    `progress` (the terminal progress bar) is kept on rank 0 only, like TensorBoard and the checkpoint.
    """
    from nnstudio.core.training.engine import _cores, choose_threads
    from nnstudio.core.run import TrainingRun, load_data, model_for

    ctx = init(cfg.training.device)
    try:
        data = share_data(ctx, lambda: load_data(cfg))
        cfg.training.device = str(ctx.device)
        model = model_for(cfg, data)
        if cfg.training.threads == "auto" and ctx.device.type == "cpu":
            cores = max(1, _cores() // ctx.local_world_size)  # the machine's cores are shared by its processes
            per_rank = per_rank_batch(cfg.training.batch_size, ctx.world_size)
            cfg.training.threads = min(cores, choose_threads(model, per_rank, ctx.device))
        callbacks = list(callbacks)
        if ctx.is_main and progress is not None:
            callbacks.append(progress)
        if os.environ.get(FAIL_ENV):
            callbacks.append(_FailAt(ctx.rank, os.environ[FAIL_ENV]))
        run = TrainingRun(cfg, data=data, model=model, callbacks=callbacks, tensorboard=ctx.is_main,
                          checkpoint=ctx.is_main)
        run.trainer.strategy = DDPStrategy(ctx)
        run.world_size = ctx.world_size
        return ctx, run
    except BaseException as exc:
        shutdown()
        if isinstance(exc, RuntimeError):
            raise _peer_failed(exc) from exc
        raise


def execute(run: "TrainingRun") -> "RunResult":
    """`run.execute()` in a torchrun process; a collective broken by a peer's exit becomes PeerFailed."""
    try:
        return run.execute()
    except RuntimeError as exc:
        raise _peer_failed(exc) from exc
    finally:
        shutdown()
