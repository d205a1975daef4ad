"""Prediction: core.predict on tables with every kind of bad column, and `nnstudio predict` in a fresh process."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from corehelpers import finish, start_cli
from nnstudio.cli import EXIT_CHECKPOINT, EXIT_DATA, EXIT_PREDICT
from nnstudio.core.checkpoint import load_checkpoint, save_checkpoint
from nnstudio.core.data import load_dataset
from nnstudio.core.engine import TrainConfig, Trainer
from nnstudio.core.model import build_model
from nnstudio.core.predict import PredictionInputError, check_table, predict_file, predict_table
from nnstudio.resources import sample_dataset


def _train_and_save(name: str, path, threshold=None):
    data = load_dataset(sample_dataset(name), seed=0)
    model = build_model([{"type": "Linear", "out_features": 8}, {"type": "ReLU"},
                         {"type": "Linear", "out_features": "auto"}], data.n_features, data.n_outputs, seed=0)
    Trainer(model, data, TrainConfig(epochs=2, batch_size=64, seed=0, threads=1)).fit()
    save_checkpoint(path, model, data.preprocessor, threshold=threshold)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return {"flowers": _train_and_save("flowers.csv", folder / "flowers.pt"),
            "churn": _train_and_save("churn.csv", folder / "churn.pt", threshold=0.3),
            "houses": _train_and_save("houses.csv", folder / "houses.pt")}


def _reference_outputs(ckpt, df):
    X = torch.from_numpy(ckpt.preprocessor.transform_features(df))
    with torch.no_grad():
        return ckpt.model(X)


def test_multiclass_columns_and_probabilities(models, tmp_path):
    ckpt = load_checkpoint(models["flowers"])
    df = pd.read_csv(sample_dataset("flowers.csv")).drop(columns="species").head(50)
    df.to_csv(tmp_path / "new.csv", index=False)
    check, metrics, _ = predict_file(ckpt, tmp_path / "new.csv", tmp_path / "out.csv", batch_rows=16)
    out = pd.read_csv(tmp_path / "out.csv")
    classes = ckpt.preprocessor.classes
    assert list(out.columns) == [*df.columns, "prediction", *[f"probability_{c}" for c in classes]]
    pd.testing.assert_frame_equal(out[list(df.columns)], df, check_dtype=False)
    probs = torch.softmax(_reference_outputs(ckpt, df), 1).numpy()
    np.testing.assert_allclose(out[[f"probability_{c}" for c in classes]].to_numpy(), probs, rtol=1e-5, atol=1e-7)
    assert out["prediction"].tolist() == [classes[i] for i in probs.argmax(1)]
    assert out["prediction"].tolist() == ckpt.predict(df)
    assert metrics == {} and not check.has_target


def test_binary_uses_the_saved_threshold(models, tmp_path):
    ckpt = load_checkpoint(models["churn"])
    assert ckpt.threshold == 0.3
    df = pd.read_csv(sample_dataset("churn.csv"))
    result = predict_table(ckpt, df)
    p_yes = torch.sigmoid(_reference_outputs(ckpt, df).reshape(-1)).numpy()
    assert result.columns["prediction"].tolist() == np.where(p_yes > 0.3, "yes", "no").tolist()
    np.testing.assert_allclose(result.columns["probability_yes"], p_yes, rtol=1e-6)
    np.testing.assert_allclose(result.columns["probability_no"], 1 - p_yes, rtol=1e-5, atol=1e-7)
    at_half = predict_table(ckpt, df, threshold=0.5)
    assert (at_half.columns["prediction"] == "yes").sum() < (result.columns["prediction"] == "yes").sum()
    metrics = pytest.importorskip("sklearn.metrics")
    y = (df["churned"] == "yes").to_numpy()
    assert result.metrics["accuracy"] == pytest.approx(metrics.accuracy_score(y, p_yes > 0.3), abs=1e-6)


def test_regression_value_in_target_units(models, tmp_path):
    ckpt = load_checkpoint(models["houses"])
    df = pd.read_csv(sample_dataset("houses.csv"))
    result = predict_table(ckpt, df)
    pre = ckpt.preprocessor
    expected = _reference_outputs(ckpt, df).reshape(-1).double().numpy() * pre.target_std + pre.target_mean
    np.testing.assert_allclose(result.columns["prediction"], expected, rtol=1e-6)
    assert list(result.columns) == ["prediction"]
    assert set(result.metrics) == {"loss", "rmse", "mae", "r2"}
    assert result.metrics["rmse"] == pytest.approx(float(np.sqrt(np.mean((expected - df["price"]) ** 2))), rel=1e-4)


def test_each_bad_column_is_named_with_its_rows(models):
    pre = load_checkpoint(models["flowers"]).preprocessor
    good = pd.read_csv(sample_dataset("flowers.csv")).head(20)
    with pytest.raises(PredictionInputError) as missing:
        check_table(pre, good.drop(columns=["petal_width", "colour"]))
    assert missing.value.kind == "missing_columns" and "'petal_width'" in str(missing.value) and "'colour'" in str(missing.value)
    bad = good.astype({"sepal_length": object, "colour": object}).copy()
    bad.loc[[2, 7], "sepal_length"] = "n/a"
    with pytest.raises(PredictionInputError) as unparseable:
        check_table(pre, bad)
    assert unparseable.value.kind == "unparseable"
    assert "'sepal_length'" in str(unparseable.value) and "rows 3, 8" in str(unparseable.value) and "'n/a'" in str(unparseable.value)
    bad = good.copy()
    bad.loc[4, "colour"] = "ultraviolet"
    with pytest.raises(PredictionInputError) as unknown:
        check_table(pre, bad)
    assert unknown.value.kind == "unknown_category"
    assert "'colour'" in str(unknown.value) and "'ultraviolet'" in str(unknown.value) and "row 5" in str(unknown.value)
    extra = good.assign(comment="x", id=range(20))
    extra.loc[3, "petal_length"] = None
    check = check_table(pre, extra)
    assert check.extra_columns == ["comment", "id"]
    assert "comment, id" in check.notes[0]
    assert any("'petal_length'" in n and "row 4" in n for n in check.notes)


CLI_BAD = {
    # name: (model key or file, data writer, exit code, words)
    "missing_column": ("flowers", lambda df: df.drop(columns=["sepal_width"]), EXIT_PREDICT["missing_columns"],
                       ["'sepal_width'", "missing"]),
    "unparseable": ("flowers", lambda df: df.astype({"petal_length": object}).assign(
        petal_length=lambda d: d.petal_length.where(d.index != 1, "abc")), EXIT_PREDICT["unparseable"],
                    ["'petal_length'", "'abc'", "row 2"]),
    "unknown_category": ("flowers", lambda df: df.assign(colour=lambda d: d.colour.where(d.index != 0, "teal")),
                         EXIT_PREDICT["unknown_category"], ["'colour'", "'teal'", "row 1"]),
    "bare_state_dict": ("bare", lambda df: df, EXIT_CHECKPOINT, ["bare.pt", "preprocessing"]),
    "not_a_checkpoint": ("garbage", lambda df: df, EXIT_CHECKPOINT, ["garbage.pt"]),
    "unreadable_data": ("flowers", None, EXIT_DATA, ["new.csv"]),
}


@pytest.fixture(scope="module")
def cli_runs(models, tmp_path_factory):
    procs = {}
    flowers = pd.read_csv(sample_dataset("flowers.csv")).head(30)
    for name, (model, writer, _, _) in CLI_BAD.items():
        folder = tmp_path_factory.mktemp(name)
        if model == "bare":
            torch.save(load_checkpoint(models["flowers"]).model.layers.state_dict(), folder / "bare.pt")
            path = folder / "bare.pt"
        elif model == "garbage":
            (folder / "garbage.pt").write_bytes(b"not a checkpoint\n")
            path = folder / "garbage.pt"
        else:
            path = models[model]
        if writer is None:
            (folder / "new.csv").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
        else:
            writer(flowers.copy()).to_csv(folder / "new.csv", index=False)
        procs[name] = (start_cli(["predict", path, "new.csv", "--out", "out.csv"], folder), folder)
    good = tmp_path_factory.mktemp("good")
    pd.read_csv(sample_dataset("churn.csv")).assign(note="x").to_csv(good / "new.csv", index=False)
    procs["good"] = (start_cli(["predict", models["churn"], "new.csv", "--out", "out.csv", "--json"], good), good)
    return {name: (finish(proc), folder) for name, (proc, folder) in procs.items()}


@pytest.mark.parametrize("case", list(CLI_BAD))
def test_cli_bad_input_exit_code_and_message(cli_runs, case):
    proc, folder = cli_runs[case]
    _, _, code, words = CLI_BAD[case]
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnstudio: error:"), proc.stderr
    for word in words:
        assert word in lines[0]
    assert not (folder / "out.csv").exists()
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_cli_good_run_writes_columns_metrics_and_lists_ignored(cli_runs, models):
    proc, folder = cli_runs["good"]
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["ignored_columns"] == ["note"]
    assert "ignored column(s)" in proc.stderr and "note" in proc.stderr
    out = pd.read_csv(folder / "out.csv")
    assert list(out.columns) == ["tenure_months", "monthly_charge", "support_calls", "plan", "churned", "note",
                                 "prediction", "probability_no", "probability_yes"]
    ckpt = load_checkpoint(models["churn"])
    expected = predict_table(ckpt, pd.read_csv(sample_dataset("churn.csv")))
    assert out["prediction"].tolist() == expected.columns["prediction"].tolist()
    assert report["metrics"]["accuracy"] == pytest.approx(expected.metrics["accuracy"])
    assert set(report["metrics"]) >= {"loss", "accuracy", "f1", "auroc"}


def test_csv_without_polars_writes_the_same_rows(models, tmp_path, monkeypatch):
    import sys

    ckpt = load_checkpoint(models["flowers"])
    df = pd.read_csv(sample_dataset("flowers.csv")).head(30)
    df.to_csv(tmp_path / "new.csv", index=False)
    predict_file(ckpt, tmp_path / "new.csv", tmp_path / "with.csv", batch_rows=7)
    from nnstudio.core import predict as predict_module

    write = predict_module.write_csv_chunk

    def write_without_polars(*args, **kwargs):  # polars reads the table (a dependency); the writer falls back
        with monkeypatch.context() as m:
            m.setitem(sys.modules, "polars", None)  # import polars raises ImportError
            return write(*args, **kwargs)

    monkeypatch.setattr(predict_module, "write_csv_chunk", write_without_polars)
    predict_file(ckpt, tmp_path / "new.csv", tmp_path / "without.csv", batch_rows=7)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "with.csv"), pd.read_csv(tmp_path / "without.csv"))
    assert len(pd.read_csv(tmp_path / "with.csv")) == 30
