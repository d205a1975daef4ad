"""The learning-rate range test on a problem whose sensible range is known, and `nnstudio lr-find`.

Linear regression on standardised, independent features with plain SGD and MSE: the loss's Hessian is
2·Cov(x) ≈ 2·I, so full-batch gradient descent converges for lr < 2/λmax ≈ 1 and diverges above it; far
below ~1e-3, 200 steps barely move the loss. A sensible proposal lies in [0.01, 1].
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch

from corehelpers import finish, start_cli, state_copy, states_equal, write_toml
from nnstudio.core.data import prepare
from nnstudio.core.training.engine import TrainConfig, Trainer
from nnstudio.core.errors import TrainingDiverged
from nnstudio.core.training.lr_find import LRFindRun, find_lr, lr_schedule, propose
from nnstudio.core.model.spec import build_model
from nnstudio.resources import sample_dataset

LINEAR = [{"type": "Linear", "out_features": "auto"}]


def _linear_frame(n=2000, seed=0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    df = pl.DataFrame(X, schema=list("abcd"), orient="row")
    df = df.with_columns(y=X @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.1 * rng.normal(size=n))
    return df


@pytest.fixture(scope="module")
def linear_data():
    return prepare(_linear_frame(), "y", "regression", [0.8, 0.1, 0.1], 0)


def _sgd(**kw) -> TrainConfig:
    return TrainConfig(optimizer="SGD", momentum=0.0, batch_size=64, device="cpu", threads=1, **kw)


def test_proposal_lies_in_the_known_range_and_divergence_is_seen_above_it(linear_data):
    model = build_model(LINEAR, linear_data.n_features, linear_data.n_outputs, seed=0)
    before = state_copy(model)
    result = find_lr(model, linear_data, _sgd())
    assert states_equal(before, state_copy(model))  # the range test trains a copy
    assert result.status == "diverged" and 0.5 < result.lrs[-1] < 10
    assert 0.01 <= result.suggestion <= 1.0, result.why
    assert "steepest" in result.why
    assert len(result.lrs) == len(result.losses) == len(result.smoothed)
    ratios = np.diff(np.log(result.lrs))
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-6)  # exponential


def test_the_proposal_trains_better_than_rates_far_from_it(linear_data):
    result = find_lr(build_model(LINEAR, linear_data.n_features, 1, seed=0), linear_data, _sgd())

    def val_loss(lr):
        trainer = Trainer(build_model(LINEAR, linear_data.n_features, 1, seed=0), linear_data,
                          _sgd(lr=lr, epochs=2))
        return trainer.fit().best_val_loss

    at_proposal = val_loss(result.suggestion)
    assert at_proposal < 0.5 * val_loss(result.suggestion / 1000)
    with pytest.raises(TrainingDiverged):  # 30× above the stability limit
        val_loss(30.0)


def test_propose_explains_when_it_cannot():
    lrs = list(lr_schedule(1e-5, 1.0, 50))
    rising = list(np.linspace(1.0, 5.0, 50))
    assert propose(lrs, rising)[0] is None and "lowest at the first steps" in propose(lrs, rising)[1]
    assert propose(lrs[:4], rising[:4])[0] is None
    valley = list(1.0 - np.tanh(np.log10(lr_schedule(1e-5, 1.0, 50)) + 2.5) + 0.0 * np.arange(50))
    lr, why = propose(lrs, valley)
    assert lr == pytest.approx(10 ** -2.5, rel=0.3), why  # tanh falls fastest at its centre


def test_stop_ends_the_range_test_early(linear_data):
    run = LRFindRun(build_model(LINEAR, 4, 1, seed=0), linear_data, _sgd())
    run.trainer.request_stop()
    result = run.execute()
    assert result.status == "stopped" and result.lrs == [] and result.suggestion is None
    assert result.finished.reason == "stopped" and result.to_json()["status"] == "stopped"


def test_cli_lr_find_prints_the_proposal(tmp_path):
    data = tmp_path / "linear.csv"
    _linear_frame(600).write_csv(data)
    write_toml(tmp_path / "run.toml", data, target="y")
    text = start_cli(["lr-find", "run.toml"], tmp_path)
    js = start_cli(["lr-find", "run.toml", "--json", "--steps", "100"], tmp_path)
    bad = start_cli(["lr-find", "run.toml", "--start-lr", "1", "--end-lr", "0.1"], tmp_path)
    text, js, bad = finish(text), finish(js), finish(bad)
    assert text.returncode == 0, text.stderr
    assert "suggested lr:" in text.stdout and "steepest" in text.stdout and 'name = "Adam"' in text.stdout
    payload = json.loads(js.stdout)
    assert 1e-4 < payload["suggestion"] < 1 and len(payload["lrs"]) <= 100
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--start-lr" in bad.stderr


def test_the_curve_the_proposal_reads_has_no_lag():
    """A falling ramp: the running average lags ~(1 - a) / a steps behind it; the two-pass one does not."""
    from nnstudio.core.training.lr_find import zero_lag

    ramp = np.linspace(10.0, 0.0, 201)
    centred = np.asarray(zero_lag(list(ramp), 0.1))
    np.testing.assert_allclose(centred[50:150], ramp[50:150], atol=0.02)  # the ends of the passes aside
    forward = np.empty_like(ramp)
    acc = 0.0
    for i, x in enumerate(ramp):
        acc = 0.9 * acc + 0.1 * x
        forward[i] = acc / (1 - 0.9 ** (i + 1))
    assert np.all(forward[50:150] - ramp[50:150] > 0.3)  # 9 steps behind: 0.45 above the ramp
