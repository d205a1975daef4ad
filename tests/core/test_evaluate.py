"""core.results.evaluate against scikit-learn and hand-checked small cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nnstudio.core.data import load_dataset
from nnstudio.core.training.engine import TrainConfig, Trainer, class_weights, make_loss
from nnstudio.core.results.evaluate import binary_curves, class_report, confusion_rows, evaluate, rows_to_csv
from nnstudio.core.model.spec import build_model
from nnstudio.resources import sample_dataset


def _trained(data, epochs=3, **kw):
    model = build_model([{"type": "Linear", "out_features": 16}, {"type": "ReLU"},
                         {"type": "Linear", "out_features": "auto"}], data.n_features, data.n_outputs, seed=0)
    Trainer(model, data, TrainConfig(epochs=epochs, batch_size=64, seed=0, threads=1, **kw)).fit()
    return model


def test_hand_checked_multiclass_case():
    # actual 0,0,1,1,2 ; predicted (argmax) 0,1,1,1,0
    logits = torch.tensor([[3., 0, 0], [0, 3, 0], [0, 3, 0], [0, 3, 0], [3, 0, 0]])
    y = torch.tensor([0, 0, 1, 1, 2])
    r = class_report("multiclass", logits, y, ["a", "b", "c"])
    assert r.confusion.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert r.support == [2, 2, 1]
    assert r.precision == pytest.approx([0.5, 2 / 3, 0.0])
    assert r.recall == pytest.approx([0.5, 1.0, 0.0])
    assert r.f1 == pytest.approx([0.5, 0.8, 0.0])
    assert r.metrics["accuracy"] == pytest.approx(0.6)
    np.testing.assert_allclose(r.confusion_normalized(), [[0.5, 0.5, 0], [0, 1, 0], [1, 0, 0]])
    rows = confusion_rows(r)
    assert rows[0] == {"actual \\ predicted": "a", "a": 1, "b": 1, "c": 0}


def test_confusion_csv_is_written_whole_or_not_at_all(tmp_path):
    import csv

    r = class_report("multiclass", torch.tensor([[3., 0], [0, 3], [3, 0]]), torch.tensor([0, 1, 1]), ["a, b", "c"])
    path = tmp_path / "confusion.csv"
    rows_to_csv(confusion_rows(r), path)
    with open(path, newline="", encoding="utf-8") as fh:
        assert list(csv.reader(fh)) == [["actual \\ predicted", "a, b", "c"], ["a, b", "1", "0"], ["c", "1", "1"]]
    before = path.read_bytes()
    with pytest.raises(ValueError):  # a row with a column the header lacks: nothing written, the old file kept
        rows_to_csv([{"x": 1}, {"y": 2}], path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["confusion.csv"]


def test_hand_checked_binary_threshold():
    probs = torch.tensor([0.1, 0.4, 0.6, 0.8])
    logits = torch.log(probs / (1 - probs))
    y = torch.tensor([0, 1, 0, 1])
    at_half = class_report("binary", logits, y, ["no", "yes"], 0.5)
    assert at_half.confusion.tolist() == [[1, 1], [1, 1]]
    at_low = class_report("binary", logits, y, ["no", "yes"], 0.3)
    assert at_low.confusion.tolist() == [[1, 1], [0, 2]]
    assert at_low.metrics["accuracy"] == pytest.approx(0.75)
    curves = binary_curves(logits, y)
    assert curves.auroc == pytest.approx(0.75)  # 3 of the 4 (pos, neg) pairs ordered right


def test_multiclass_against_sklearn(flowers_data):
    metrics = pytest.importorskip("sklearn.metrics")
    model = _trained(flowers_data)
    ev = evaluate(model, flowers_data)
    with torch.no_grad():
        pred = model(flowers_data.test.X).argmax(1).numpy()
    y = flowers_data.test.y.numpy()
    assert ev.report.confusion.sum() == len(flowers_data.test)
    np.testing.assert_array_equal(ev.report.confusion, metrics.confusion_matrix(y, pred, labels=[0, 1, 2]))
    p, r, f, s = metrics.precision_recall_fscore_support(y, pred, labels=[0, 1, 2], zero_division=0)
    assert ev.report.precision == pytest.approx(p.tolist(), abs=1e-6)
    assert ev.report.recall == pytest.approx(r.tolist(), abs=1e-6)
    assert ev.report.f1 == pytest.approx(f.tolist(), abs=1e-6)
    assert ev.report.support == s.tolist()
    assert ev.table["test"]["accuracy"] == pytest.approx(metrics.accuracy_score(y, pred), abs=1e-6)
    assert ev.table["test"]["f1"] == pytest.approx(metrics.f1_score(y, pred, average="macro"), abs=1e-6)
    np.testing.assert_allclose(ev.report.confusion_normalized(),
                               metrics.confusion_matrix(y, pred, labels=[0, 1, 2], normalize="true"), atol=1e-6)
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(model(flowers_data.train.X), flowers_data.train.y)
    assert ev.table["train"]["loss"] == pytest.approx(float(loss), rel=1e-5)
    assert set(ev.table) == {"train", "val", "test"}
    assert [r["split"] for r in ev.metrics_rows()] == ["train", "validation", "test"]


def test_binary_against_sklearn(churn_data):
    metrics = pytest.importorskip("sklearn.metrics")
    model = _trained(churn_data)
    ev = evaluate(model, churn_data)
    with torch.no_grad():
        prob = torch.sigmoid(model(churn_data.test.X).reshape(-1)).numpy()
    y = churn_data.test.y.numpy().astype(int)
    assert ev.curves.auroc == pytest.approx(metrics.roc_auc_score(y, prob), abs=1e-5)
    assert ev.curves.average_precision == pytest.approx(metrics.average_precision_score(y, prob), abs=1e-5)
    fpr, tpr, _ = metrics.roc_curve(y, prob, drop_intermediate=False)
    assert np.interp(0.5, ev.curves.fpr, ev.curves.tpr) == pytest.approx(np.interp(0.5, fpr, tpr), abs=1e-5)
    for t in (0.2, 0.5, 0.7):
        report = ev.at_threshold(t)
        pred = (prob > t).astype(int)
        np.testing.assert_array_equal(report.confusion, metrics.confusion_matrix(y, pred, labels=[0, 1]))
        assert report.metrics["f1"] == pytest.approx(metrics.f1_score(y, pred, zero_division=0), abs=1e-6)
        assert report.metrics["accuracy"] == pytest.approx(metrics.accuracy_score(y, pred), abs=1e-6)
        assert report.recall == pytest.approx(metrics.recall_score(y, pred, average=None, zero_division=0).tolist(),
                                              abs=1e-6)
    assert ev.at_threshold(0.0).confusion[:, 1].sum() == len(y)  # every row above a zero threshold


def test_regression_against_sklearn(houses_data):
    metrics = pytest.importorskip("sklearn.metrics")
    model = _trained(houses_data)
    ev = evaluate(model, houses_data)
    pred, actual = ev.predicted_actual()
    assert len(pred) == len(houses_data.test)
    pre = houses_data.preprocessor
    np.testing.assert_allclose(actual, houses_data.test.y.double().numpy() * pre.target_std + pre.target_mean)
    assert ev.table["test"]["rmse"] == pytest.approx(metrics.mean_squared_error(actual, pred) ** 0.5, rel=1e-4)
    assert ev.table["test"]["mae"] == pytest.approx(metrics.mean_absolute_error(actual, pred), rel=1e-4)
    assert ev.table["test"]["r2"] == pytest.approx(metrics.r2_score(actual, pred), abs=1e-4)
    worst = ev.largest_errors(5)
    errors = np.abs(actual - pred)
    assert [w["test_row"] for w in worst] == list(np.argsort(-errors, kind="stable")[:5])
    assert abs(worst[0]["error"]) == pytest.approx(errors.max())
    np.testing.assert_allclose(ev.residuals(), actual - pred)


def test_balanced_class_weights_match_sklearn(flowers_data, churn_data):
    utils = pytest.importorskip("sklearn.utils.class_weight")
    y = flowers_data.train.y.numpy()
    expected = utils.compute_class_weight("balanced", classes=np.arange(3), y=y)
    assert class_weights(flowers_data, "balanced").numpy() == pytest.approx(expected, rel=1e-6)
    yb = churn_data.train.y.numpy()
    assert float(class_weights(churn_data, "balanced")) == pytest.approx((yb == 0).sum() / (yb == 1).sum())
    assert class_weights(flowers_data, "none") is None
    loss = make_loss("binary", weights=class_weights(churn_data, "balanced"))
    assert float(loss.pos_weight) == pytest.approx((yb == 0).sum() / (yb == 1).sum())


def test_balanced_weights_raise_minority_recall(tmp_path):
    rng = np.random.default_rng(0)
    n = 1200
    x = rng.normal(size=(n, 2))
    y = (x[:, 0] + 0.8 * rng.normal(size=n) > 1.6).astype(int)  # ~8% positives, overlapping
    import polars as pl

    path = tmp_path / "rare.csv"
    pl.DataFrame({"a": x[:, 0], "b": x[:, 1], "rare": np.where(y == 1, "yes", "no")}).write_csv(path)
    data = load_dataset(path, "rare", seed=0)
    plain = evaluate(_trained(data, epochs=5), data).report.recall[1]
    balanced = evaluate(_trained(data, epochs=5, class_weight="balanced"), data,
                        class_weight="balanced").report.recall[1]
    assert balanced > plain


def test_class_weight_in_the_run_config(tmp_path):
    from nnstudio.core.config import RunConfig
    from nnstudio.core.errors import ConfigError

    path = tmp_path / "run.toml"
    path.write_text('[training]\nclass_weight = "balanced"\n')
    cfg = RunConfig.load(path)
    assert cfg.training.class_weight == "balanced"
    cfg.save(tmp_path / "again.toml")
    assert 'class_weight = "balanced"' in (tmp_path / "again.toml").read_text()
    assert RunConfig.load(tmp_path / "again.toml").training.class_weight == "balanced"
    assert "class_weight" not in RunConfig().to_dict()["training"]  # the default is left out of files
    path.write_text('[training]\nclass_weight = "inverse"\n')
    with pytest.raises(ConfigError, match="class_weight"):
        RunConfig.load(path)


def test_trainer_loss_carries_the_balanced_weights(churn_data, flowers_data):
    trainer = Trainer(build_model([{"type": "Linear", "out_features": "auto"}], churn_data.n_features,
                                  churn_data.n_outputs), churn_data, TrainConfig(class_weight="balanced"))
    assert float(trainer.loss_fn.pos_weight) == pytest.approx(float(class_weights(churn_data, "balanced")))
    trainer = Trainer(build_model([{"type": "Linear", "out_features": "auto"}], flowers_data.n_features,
                                  flowers_data.n_outputs), flowers_data, TrainConfig(class_weight="balanced"))
    assert torch.equal(trainer.loss_fn.weight, class_weights(flowers_data, "balanced"))
    plain = Trainer(build_model([{"type": "Linear", "out_features": "auto"}], flowers_data.n_features,
                                flowers_data.n_outputs), flowers_data, TrainConfig())
    assert plain.loss_fn.weight is None
