"""Running a study: one normal run per Optuna trial, pruned from its per-epoch validation metric.

The prepared data is read once per process and shared by every trial whose `[data]` section is the same.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nnstudio.core.config import RunConfig
from nnstudio.core.data import PreparedData
from nnstudio.core.errors import ConfigError, NNStudioError
from nnstudio.core.experiments.space import SweepConfig, trial_config
from nnstudio.core.run import TrainingRun, load_data
from nnstudio.core.training.events import Callback, EpochFinished

_DATA_CACHE: dict[str, PreparedData] = {}


def cached_data(cfg: RunConfig) -> PreparedData:
    """The prepared data for `cfg`, read once per process while its `[data]` section stays the same."""
    path = cfg.data_path.resolve()
    try:
        stamp = [path.stat().st_mtime_ns, path.stat().st_size]  # a file changed on disk is read again
    except OSError:
        stamp = None
    key = json.dumps({**cfg.to_dict()["data"], "path": str(path), "stamp": stamp}, sort_keys=True, default=str)
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()  # one table at a time
        _DATA_CACHE[key] = load_data(cfg)
    return _DATA_CACHE[key]


class PruneCallback(Callback):
    """Reports the validation metric at each epoch end; a pruned trial stops the engine after that epoch."""

    def __init__(self, trial, metric: str):
        self.trial = trial
        self.name = metric.split("_", 1)[1]
        self.pruned = False

    def on_epoch_end(self, trainer, event: EpochFinished) -> None:
        value = event.val_loss if self.name == "loss" else event.metrics.get(self.name)
        if value is None:
            return
        self.trial.report(float(value), event.epoch)
        if self.trial.should_prune():
            self.pruned = True
            trainer.should_stop = True
            trainer.stop_reason = "pruned"


def metric_value(result, history, metric: str) -> float:
    """The trial's objective: a val_ metric at the run's last epoch, or a test_ metric."""
    prefix, name = metric.split("_", 1)
    found = None
    if prefix == "test":
        found = result.test.get(name)
    elif history:
        found = history[-1].val_loss if name == "loss" else history[-1].metrics.get(name)
    if found is None:
        raise ConfigError(f"[sweep] metric {metric!r}: the run does not report it")
    return float(found)


@dataclass
class TrialOutcome:
    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    run_dir: str | None
    epochs: int
    seconds: float  # the whole trial: asking, building, training, evaluating, telling
    train_seconds: float = 0.0  # the engine's fit alone


def open_study(sweep: SweepConfig, storage: str | None = None, joining: bool = False):
    """The study (created if new). A fresh study in one process is seeded by `[sweep] seed`; a process that
    joins one, or goes on with one that has trials, draws its own seed so that it does not repeat them."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = storage or sweep.storage_url()
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    import sqlalchemy.exc

    for attempt in range(6):  # two processes creating one new database race for its schema: the loser retries
        try:
            store = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}}
                                               if url.startswith("sqlite") else None)
            study = optuna.create_study(storage=store, study_name=sweep.study, direction=sweep.direction,
                                        sampler=_sampler(sweep), pruner=_pruner(sweep), load_if_exists=True)
            break
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError,
                optuna.exceptions.DuplicatedStudyError) as exc:
            if attempt == 5:
                raise ConfigError(f"storage {url}: cannot be opened ({str(exc).splitlines()[0]})") from exc
            time.sleep(0.2 * (attempt + 1))
        except (ValueError, ImportError, sqlalchemy.exc.ArgumentError) as exc:
            raise ConfigError(f"storage {url}: not a usable SQLAlchemy URL ({str(exc).splitlines()[0]})") from exc
    _fail_dead_trials(study)
    if joining or study.get_trials(deepcopy=False):
        study.sampler.reseed_rng()
    return study


def _fail_dead_trials(study) -> None:
    """RUNNING trials left by a killed process on this machine are marked FAIL, so a rerun makes them up."""
    import optuna

    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        pid, host = t.user_attrs.get("pid"), t.user_attrs.get("host")
        if host == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
            try:
                study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
            except (RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
                pass  # finished meanwhile


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process is only now starting: none of its trials is running
    if os.name == "nt":
        return True  # os.kill(pid, 0) would terminate it there; a rerun on Windows leaves them as they are
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sampler(sweep: SweepConfig):
    import optuna

    if sweep.sampler == "grid":
        return optuna.samplers.GridSampler({p.path: p.grid() for p in sweep.params}, seed=sweep.seed)
    if sweep.sampler == "random":
        return optuna.samplers.RandomSampler(seed=sweep.seed)
    return optuna.samplers.TPESampler(seed=sweep.seed, n_startup_trials=min(10, max(2, sweep.trials // 4)))


def _pruner(sweep: SweepConfig):
    import optuna

    return (optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1) if sweep.pruner == "median"
            else optuna.pruners.NopPruner())


def counted(study) -> int:
    """Trials that count towards the requested number: finished, pruned, or running now."""
    import optuna

    s = optuna.trial.TrialState
    return len(study.get_trials(deepcopy=False, states=(s.COMPLETE, s.PRUNED, s.RUNNING, s.WAITING)))


def _surplus(study, trial, target: int) -> bool:
    """Whether `target` trials that count were already asked before this one: the storage numbers trials in the
    order it hands them out, so of two processes asking for the last trial at once, exactly one gets it."""
    import optuna

    s = optuna.trial.TrialState
    earlier = [t for t in study.get_trials(deepcopy=False, states=(s.COMPLETE, s.PRUNED, s.RUNNING, s.WAITING))
               if t.number < trial.number]
    return len(earlier) >= target


def run_trial(study, sweep: SweepConfig, stop: threading.Event | None = None,
              on_run: Callable[[TrainingRun], None] | None = None, target: int | None = None) -> TrialOutcome | None:
    """Ask one trial, train it as a normal run, tell Optuna its value (or pruned/failed).

    With `target`, a trial asked after the study already holds that many is given back untrained (recorded as
    FAIL with the user attr ``surplus``, which counts for nothing) and None is returned."""
    import optuna

    start = time.perf_counter()
    trial = study.ask()
    if target is not None and _surplus(study, trial, target):
        trial.set_user_attr("surplus", f"the study had its {target} trials when this one was asked; not trained")
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return None
    trial.set_user_attr("pid", os.getpid())
    trial.set_user_attr("host", socket.gethostname())
    values = {p.path: p.suggest(trial) for p in sweep.params}
    cfg = trial_config(sweep, values, name=f"{sweep.base.output.name}-trial{trial.number}")
    cfg.output.checkpoint = ""  # the run folder keeps last.pt and best.pt
    pruner = PruneCallback(trial, sweep.metric)
    run_dir = None
    try:
        run = TrainingRun(cfg, data=cached_data(cfg), callbacks=[pruner], checkpoint=False)
        run_dir = str(run.run_dir)
        trial.set_user_attr("run_folder", run_dir)
        trial.set_user_attr("checkpoint", str(Path(run_dir) / "best.pt"))
        if on_run is not None:
            on_run(run)
        if stop is not None and stop.is_set():
            run.trainer.request_stop()
        result = run.execute()
        epochs = result.finished.epochs_completed
        trial.set_user_attr("epochs", epochs)
        if pruner.pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            state, value = "PRUNED", None
        elif result.finished.reason == "stopped":
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            state, value = "FAIL", None
        else:
            value = metric_value(result, run.trainer.history, sweep.metric)
            study.tell(trial, value)
            state = "COMPLETE"
    except (NNStudioError, ValueError, RuntimeError) as exc:
        trial.set_user_attr("error", str(exc))
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        raise
    except BaseException:
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        raise
    return TrialOutcome(trial.number, state, value, values, run_dir, epochs, time.perf_counter() - start,
                        result.finished.seconds)


def run_study(sweep: SweepConfig, trials: int | None = None, storage: str | None = None, joining: bool = False,
              stop: threading.Event | None = None, on_trial: Callable[[TrialOutcome], None] | None = None,
              on_run: Callable[[TrainingRun], None] | None = None) -> list[TrialOutcome]:
    """Run trials until the study holds `trials` finished (or running) ones; rerunning continues the study."""
    study = open_study(sweep, storage, joining)
    target = trials or sweep.trials
    done: list[TrialOutcome] = []
    while counted(study) < target and not (stop is not None and stop.is_set()):
        outcome = run_trial(study, sweep, stop, on_run, target)
        if outcome is None:  # another process took the last trial
            break
        done.append(outcome)
        if on_trial is not None:
            on_trial(outcome)
    return done


def best_config(study, sweep: SweepConfig) -> RunConfig:
    """The best trial's run config, as a plain run config."""
    best = study.best_trial
    return trial_config(sweep, {p.path: best.params[p.path] for p in sweep.params if p.path in best.params})
