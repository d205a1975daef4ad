"""Sweeps and cross-validation on real TOML + CSV files: the [sweep] checks, trials as runs, pruning, the
data read once per process, two `nnstudio sweep` processes on one SQLite study, and k-fold folds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

from nnstudio.core import experiments
from nnstudio.core.config import RunConfig
from nnstudio.core.errors import ConfigError
from nnstudio.core.experiments import cv
from nnstudio.core.experiments import study as study_mod
from nnstudio.core.experiments.space import load_sweep, trial_config
from nnstudio.core.run import TrainingRun
from nnstudio.resources import sample_dataset
from tests.core.corehelpers import cli_env, write_toml

SPACE = """
[sweep]
trials = 3
metric = "val_accuracy"
{extra}

[sweep.parameters]
"training.optimizer.lr" = {{low = 1e-3, high = 1e-1, log = true}}
"model.layers.0.out_features" = {{low = 8, high = 32, step = 8}}
{params}
"""


def config(tmp_path: Path, extra: str = "", params: str = "", epochs: int = 2, name: str = "run.toml") -> Path:
    return write_toml(tmp_path / name, sample_dataset("iris.csv"), epochs=epochs,
                      extra=SPACE.format(extra=extra, params=params))


def test_direction_follows_the_metric_and_storage_sits_beside_the_logs(tmp_path):
    s = load_sweep(config(tmp_path))
    assert s.direction == "maximize" and s.sampler == "tpe" and s.study == "run"
    assert s.storage_url() == f"sqlite:///{(tmp_path / 'runs.optuna.db').resolve()}"
    s = load_sweep(config(tmp_path, extra='direction = "minimize"'))
    assert s.direction == "minimize"
    assert experiments.space.default_direction("val_loss") == "minimize"
    assert experiments.space.default_direction("test_f1") == "maximize"


@pytest.mark.parametrize("params, words", [
    ('"training.optimizer.rate" = {low = 0.1, high = 0.2}', ['"training.optimizer.rate"', "no key 'rate'"]),
    ('"model.layers.9.p" = {low = 0.1, high = 0.2}', ['"model.layers.9.p"', "no item 9"]),
    ('"training.batch_size" = {low = 64, high = 8}', ['"training.batch_size"', "above high"]),
    ('"training.optimizer.weight_decay" = {low = 0.0, high = 0.1, log = true}', ['"training.optimizer.weight_decay"', "low > 0"]),
    ('"training.batch_size" = {low = 0, high = 8}', ['"training.batch_size"', "= 0 is not a valid"]),
    ('"training.batch_size" = {choices = []}', ['"training.batch_size"', "non-empty"]),
])
def test_bad_parameters_are_refused_naming_the_key(tmp_path, params, words):
    with pytest.raises(ConfigError) as err:
        load_sweep(config(tmp_path, params=params))
    message = str(err.value)
    assert "\n" not in message and all(w in message for w in words), message


def test_grid_needs_steps_or_choices(tmp_path):
    with pytest.raises(ConfigError, match='training.optimizer.lr.*grid sampler needs choices or a step'):
        load_sweep(config(tmp_path, extra='sampler = "grid"'))


def test_a_trial_config_sets_the_dotted_keys_and_train_ignores_sweep(tmp_path):
    path = config(tmp_path, params='"model.layers.1.type" = {choices = ["ReLU", "Tanh"]}')
    s = load_sweep(path)
    cfg = trial_config(s, {"training.optimizer.lr": 0.05, "model.layers.0.out_features": 24,
                           "model.layers.1.type": "Tanh"})
    assert cfg.training.lr == 0.05 and cfg.layers[0]["out_features"] == 24 and cfg.layers[1]["type"] == "Tanh"
    assert RunConfig.load(path).training.lr == 0.01  # a plain run of the same file


def test_trials_are_runs_and_the_data_is_read_once(tmp_path, monkeypatch):
    reads = []
    real = study_mod.load_data
    monkeypatch.setattr(study_mod, "load_data", lambda cfg: reads.append(1) or real(cfg))
    study_mod._DATA_CACHE.clear()
    s = load_sweep(config(tmp_path, extra='pruner = "none"'))
    outcomes = study_mod.run_study(s)
    assert len(reads) == 1 and [o.state for o in outcomes] == ["COMPLETE"] * 3
    st = optuna.load_study(storage=s.storage_url(), study_name="run")
    assert len(st.trials) == 3
    for t in st.trials:
        assert set(t.params) == {"training.optimizer.lr", "model.layers.0.out_features"}
        assert Path(t.user_attrs["run_folder"], "run.json").is_file()
        assert Path(t.user_attrs["checkpoint"]).is_file()
        history = json.loads(Path(t.user_attrs["run_folder"], "run.json").read_text())
        assert history  # the run folder is a normal run's
    # rerunning continues the same study up to the requested count
    more = study_mod.run_study(s, trials=5)
    assert len(more) == 2 and len(optuna.load_study(storage=s.storage_url(), study_name="run").trials) == 5
    best = study_mod.best_config(st, s)
    assert best.training.lr == st.best_trial.params["training.optimizer.lr"]


def test_a_pruned_trial_stops_its_run_after_that_epoch(tmp_path):
    s = load_sweep(config(tmp_path, epochs=6))
    st = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(upper=-1.0))
    outcome = study_mod.run_trial(st, s)
    assert outcome.state == "PRUNED" and outcome.epochs == 1
    assert st.trials[0].state == optuna.trial.TrialState.PRUNED
    assert st.trials[0].intermediate_values and list(st.trials[0].intermediate_values) == [1]


def test_two_sweep_processes_share_one_sqlite_study(tmp_path):
    path = config(tmp_path, extra='pruner = "none"')
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    args = [sys.executable, "-m", "nnstudio", "sweep", str(path), "--trials", "6", "--storage", url, "--json"]
    procs = [subprocess.Popen(args, cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    st = optuna.load_study(storage=url, study_name="run")
    finished = [t for t in st.trials if t.state == optuna.trial.TrialState.COMPLETE]
    trained = [t for t in st.trials if "surplus" not in t.user_attrs]  # a last trial asked by both is given back
    # each trial ran once, in its own folder; together they reached the count exactly
    folders = [t.user_attrs["run_folder"] for t in trained]
    assert len(set(folders)) == len(folders) == len(trained)
    assert len(finished) == len(trained) == 6
    assert all(t.state == optuna.trial.TrialState.FAIL and "run_folder" not in t.user_attrs
               for t in st.trials if t not in trained)
    assert all(Path(f).is_dir() for f in folders)
    report = json.loads(outs[0][0])
    assert report["best"]["value"] == max(t.value for t in finished)


def test_cli_refuses_a_bad_key_in_one_line(tmp_path):
    path = config(tmp_path, params='"training.nope" = {low = 1, high = 2}')
    proc = subprocess.run([sys.executable, "-m", "nnstudio", "sweep", str(path)], cwd=tmp_path, env=cli_env(),
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode != 0 and proc.stderr.count("\n") == 1 and '"training.nope"' in proc.stderr
    assert not (tmp_path / "runs").exists()  # refused before the first trial


def test_cli_writes_the_best_config(tmp_path):
    path = config(tmp_path, extra='pruner = "none"')
    proc = subprocess.run([sys.executable, "-m", "nnstudio", "sweep", str(path), "--trials", "2",
                           "--best-config", "best.toml"], cwd=tmp_path, env=cli_env(), capture_output=True,
                          text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "best: trial" in proc.stdout
    best = RunConfig.load(tmp_path / "best.toml")
    st = optuna.load_study(storage=load_sweep(path).storage_url(), study_name="run")
    assert best.training.lr == pytest.approx(st.best_trial.params["training.optimizer.lr"])


def test_folds_cover_every_row_once_and_keep_class_shares():
    y = np.array([0] * 50 + [1] * 30 + [2] * 7)
    a = cv.stratified_folds(y, 5, seed=3)
    assert sorted(np.bincount(a)) in ([17, 17, 17, 18, 18],)
    for c in range(3):
        counts = np.bincount(a[y == c], minlength=5)
        assert counts.max() - counts.min() <= 1
    assert (cv.stratified_folds(y, 5, seed=3) == a).all()
    with pytest.raises(ConfigError, match="--folds"):
        cv.stratified_folds(y, 1)


def test_cv_means_agree_with_folds_trained_by_hand(tmp_path):
    path = write_toml(tmp_path / "run.toml", sample_dataset("iris.csv"), epochs=2)
    proc = subprocess.run([sys.executable, "-m", "nnstudio", "cv", str(path), "--folds", "3", "--json"],
                          cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    saved = json.loads(Path(out["folds_file"]).read_text())
    assignment = np.array(saved["repeats"][0])
    cfg = RunConfig.load(path)
    data = study_mod.load_data(cfg)
    assert len(assignment) == len(data.train) + len(data.val) and sorted(set(assignment)) == [0, 1, 2]
    by_hand = []
    for k in range(3):
        cfg.output.name = f"hand{k}"
        run = TrainingRun(cfg, data=cv.fold_data(data, assignment, k), checkpoint=False)
        by_hand.append(cv.fold_metrics(run, run.execute()))
    mean, std = cv.summarize(by_hand)
    assert [f["rows"] for f in out["folds"]] == [int((assignment == k).sum()) for k in range(3)]
    for key in ("val_accuracy", "val_loss", "test_accuracy"):
        assert out["mean"][key] == pytest.approx(mean[key], abs=1e-6)
        assert out["std"][key] == pytest.approx(std[key], abs=1e-6)


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_a_stopped_or_killed_sweep_keeps_its_trials_and_a_rerun_continues(tmp_path, how):
    import signal
    import time

    path = config(tmp_path, extra='pruner = "none"', epochs=30)
    url = f"sqlite:///{tmp_path / 'stop.db'}"
    args = [sys.executable, "-m", "nnstudio", "sweep", str(path), "--storage", url]
    proc = subprocess.Popen([*args, "--trials", "50"], cwd=tmp_path, env=cli_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    complete = optuna.trial.TrialState.COMPLETE
    while time.monotonic() < deadline:  # polls the study until a trial has finished (not a timing assert)
        try:
            st = optuna.load_study(storage=url, study_name="run")
            if sum(t.state == complete for t in st.trials) >= 1:
                break
        except KeyError:
            pass
        time.sleep(0.2)
    proc.send_signal(getattr(signal, how))
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    kept = [t.number for t in optuna.load_study(storage=url, study_name="run").trials if t.state == complete]
    assert kept
    again = subprocess.run([*args, "--trials", str(len(kept) + 1), "--json"], cwd=tmp_path, env=cli_env(),
                           capture_output=True, text=True, timeout=240, check=False)
    assert again.returncode == 0, again.stderr
    trials = optuna.load_study(storage=url, study_name="run").trials
    states = [t.state for t in trials]
    assert optuna.trial.TrialState.RUNNING not in states  # the killed process's trial was failed
    done = [t.number for t in trials if t.state == complete]
    assert set(kept) <= set(done) and len(done) == len(kept) + 1


def test_jobs_runs_several_processes_on_one_study(tmp_path):
    path = config(tmp_path, extra='pruner = "none"')
    proc = subprocess.run([sys.executable, "-m", "nnstudio", "sweep", str(path), "--trials", "4", "--jobs", "2",
                           "--json"], cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=240,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    trials = optuna.load_study(storage=load_sweep(path).storage_url(), study_name="run").trials
    # the second process joins once it has started (imports take seconds); whoever ran them, none is lost
    assert 1 <= len({t.user_attrs["pid"] for t in trials}) <= 2
    assert optuna.trial.TrialState.RUNNING not in [t.state for t in trials]
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) == 4
    assert len(json.loads(proc.stdout)["trials"]) == sum("surplus" not in t.user_attrs for t in trials)


def test_repeats_deal_other_folds_and_each_covers_every_row_once(tmp_path):
    cfg = RunConfig.load(write_toml(tmp_path / "run.toml", sample_dataset("iris.csv"), epochs=1))
    cfg.output.checkpoint = ""
    result = cv.cross_validate(cfg, 3, repeats=2)
    saved = json.loads(Path(result.folds_file).read_text())
    assert len(result.folds) == 6 and len(saved["repeats"]) == 2
    first, second = (np.array(a) for a in saved["repeats"])
    assert (first != second).any()
    for a in (first, second):
        assert sorted(np.bincount(a)) == sorted(f["rows"] for f in result.folds[:3])
        assert len(a) == saved["rows"]


def test_a_changed_file_is_read_again(tmp_path):
    import shutil

    csv = tmp_path / "iris.csv"
    shutil.copy(sample_dataset("iris.csv"), csv)
    cfg = RunConfig.load(write_toml(tmp_path / "run.toml", csv, epochs=1))
    first = study_mod.cached_data(cfg)
    assert study_mod.cached_data(cfg) is first
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join(lines[:-30]) + "\n")
    again = study_mod.cached_data(cfg)
    assert again is not first and len(again.train) + len(again.val) + len(again.test) == len(lines) - 31


def test_racing_askers_stop_at_exactly_the_requested_count(tmp_path):
    """Three connections asking at once on one SQLite study: exactly `target` trials are kept, the rest given back."""
    import threading

    url = f"sqlite:///{tmp_path / 'race.db'}"
    optuna.create_study(storage=url, study_name="race")
    kept, given_back = [], []

    def asker():
        st = optuna.load_study(storage=url, study_name="race")
        while True:
            trial = st.ask()
            if study_mod._surplus(st, trial, 12):
                st.tell(trial, state=optuna.trial.TrialState.FAIL)
                given_back.append(trial.number)
                return
            st.tell(trial, 1.0)
            kept.append(trial.number)

    threads = [threading.Thread(target=asker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(kept) == list(range(12))
    assert len(given_back) == 3 and min(given_back) == 12


@pytest.mark.parametrize("sample, target", [("iris.csv", None), ("houses.csv", "price")])
def test_each_fold_standardises_with_its_own_training_rows(tmp_path, sample, target):
    from nnstudio.core.data import prepare, read_table

    data = prepare(read_table(sample_dataset(sample)), target=target, seed=0)
    assignment = cv.stratified_folds(cv.pooled(data).y, 4, seed=0, stratify=data.task != "regression")
    fold = cv.fold_data(data, assignment, 1)
    rows = cv.pooled(data)
    train_rows = torch.from_numpy(np.flatnonzero(assignment != 1))
    j = 0
    checked = 0
    for old, new in zip(data.preprocessor.features, fold.preprocessor.features):
        if old["kind"] == "categorical":
            j += len(old["categories"])
            continue
        column = fold.train.X[:, j].double()
        assert abs(column.mean().item()) < 1e-4 and column.std().item() == pytest.approx(1.0, rel=1e-4)
        # the same raw values: the fold's scaling and its preprocessor agree
        raw_old = rows.X[train_rows, j].double() * old["std"] + old["mean"]
        raw_new = column * new["std"] + new["mean"]
        assert torch.allclose(raw_old, raw_new, rtol=1e-4, atol=1e-4 * max(1.0, abs(old["mean"])))
        j += 1
        checked += 1
    assert checked >= 1
    if data.task == "regression":
        y = fold.train.y.double()
        assert abs(y.mean().item()) < 1e-4
        raw_old = rows.y[train_rows].double() * data.preprocessor.target_std + data.preprocessor.target_mean
        raw_new = y * fold.preprocessor.target_std + fold.preprocessor.target_mean
        assert torch.allclose(raw_old, raw_new, rtol=1e-4, atol=1e-3)
