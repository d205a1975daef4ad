"""Prediction: core.results.predict on tables with every kind of bad column, and `nnstudio predict` in a fresh process."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch
from polars.testing import assert_frame_equal

from corehelpers import finish, start_cli
from nnstudio.cli import EXIT_CHECKPOINT, EXIT_DATA, EXIT_PREDICT
from nnstudio.core.model.checkpoint import load_checkpoint, save_checkpoint
from nnstudio.core.data import load_dataset
from nnstudio.core.training.engine import TrainConfig, Trainer
from nnstudio.core.errors import DataError
from nnstudio.core.model.spec import build_model
from nnstudio.core.data import Preprocessor
from nnstudio.core.results.predict import PredictionInputError, check_table, predict_file, predict_table, save_predictions
from nnstudio.resources import sample_dataset


def _sample(name: str) -> pl.DataFrame:
    return pl.read_csv(sample_dataset(name))


def _set(df: pl.DataFrame, column: str, rows: list[int], value) -> pl.DataFrame:
    """`df` with `value` in `column` at the 0-based `rows`; a text value turns the column into text."""
    src = pl.col(column).cast(pl.String) if isinstance(value, str) else pl.col(column)
    return df.with_columns(pl.when(pl.int_range(pl.len()).is_in(rows)).then(pl.lit(value)).otherwise(src).alias(column))


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
    df = _sample("flowers.csv").drop("species").head(50)
    df.write_csv(tmp_path / "new.csv")
    check, metrics, _ = predict_file(ckpt, tmp_path / "new.csv", tmp_path / "out.csv", batch_rows=16)
    out = pl.read_csv(tmp_path / "out.csv")
    classes = ckpt.preprocessor.classes
    assert out.columns == [*df.columns, "prediction", *[f"probability_{c}" for c in classes]]
    assert_frame_equal(out.select(df.columns), df, check_dtypes=False)
    pd = pytest.importorskip("pandas")  # another reader agrees on every cell
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "out.csv")[df.columns], pd.read_csv(tmp_path / "new.csv"),
                                  check_dtype=False)
    probs = torch.softmax(_reference_outputs(ckpt, df), 1).numpy()
    np.testing.assert_allclose(out.select([f"probability_{c}" for c in classes]).to_numpy(), probs, rtol=1e-5, atol=1e-7)
    assert out["prediction"].to_list() == [classes[i] for i in probs.argmax(1)]
    assert out["prediction"].to_list() == ckpt.predict(df)
    assert metrics == {} and not check.has_target


def test_binary_uses_the_saved_threshold(models, tmp_path):
    ckpt = load_checkpoint(models["churn"])
    assert ckpt.threshold == 0.3
    df = _sample("churn.csv")
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


def test_metrics_leave_out_rows_without_a_target(models):
    """Null, blank and NA-spelled targets are missing: the metrics are those of the other rows, and say so."""
    ckpt = load_checkpoint(models["churn"])
    df = _sample("churn.csv")
    gaps = _set(_set(_set(df, "churned", [0, 5], None), "churned", [9], " "), "churned", [11], "N/A")
    result = predict_table(ckpt, gaps)
    known = predict_table(ckpt, df.filter(~pl.int_range(pl.len()).is_in([0, 5, 9, 11])))
    assert result.metrics["accuracy"] == pytest.approx(known.metrics["accuracy"])
    assert result.metrics_note == f"metrics on the {len(df) - 4:,} rows with a known 'churned'"
    assert len(result.columns["prediction"]) == len(df)
    empty = predict_table(ckpt, df.with_columns(churned=pl.lit(None, dtype=pl.String)))
    assert empty.metrics == {} and "'churned' is empty" in empty.metrics_note


def test_regression_value_in_target_units(models, tmp_path):
    ckpt = load_checkpoint(models["houses"])
    df = _sample("houses.csv")
    result = predict_table(ckpt, df)
    pre = ckpt.preprocessor
    expected = _reference_outputs(ckpt, df).reshape(-1).double().numpy() * pre.target_std + pre.target_mean
    np.testing.assert_allclose(result.columns["prediction"], expected, rtol=1e-6)
    assert list(result.columns) == ["prediction"]
    assert set(result.metrics) == {"loss", "rmse", "mae", "r2"}
    assert result.metrics["rmse"] == pytest.approx(float(np.sqrt(np.mean((expected - df["price"].to_numpy()) ** 2))),
                                                   rel=1e-4)


def test_each_bad_column_is_named_with_its_rows(models):
    pre = load_checkpoint(models["flowers"]).preprocessor
    good = _sample("flowers.csv").head(20)
    with pytest.raises(PredictionInputError) as missing:
        check_table(pre, good.drop(["petal_width", "colour"]))
    assert missing.value.kind == "missing_columns" and "'petal_width'" in str(missing.value) and "'colour'" in str(missing.value)
    bad = _set(_set(good, "sepal_length", [2, 7], "abc"), "sepal_length", [9], "n/a")
    with pytest.raises(PredictionInputError) as unparseable:
        check_table(pre, bad)
    assert unparseable.value.kind == "unparseable"
    assert "'sepal_length'" in str(unparseable.value) and "rows 3, 8" in str(unparseable.value) and "'abc'" in str(unparseable.value)
    assert "2 value(s)" in str(unparseable.value) and "'n/a'" not in str(unparseable.value)  # a missing value
    bad = _set(good, "colour", [4], "ultraviolet")
    with pytest.raises(PredictionInputError) as unknown:
        check_table(pre, bad)
    assert unknown.value.kind == "unknown_category"
    assert "'colour'" in str(unknown.value) and "'ultraviolet'" in str(unknown.value) and "row 5" in str(unknown.value)
    with pytest.raises(PredictionInputError) as both:  # every problem at once, the worst kind first
        check_table(pre, _set(_set(good, "colour", [1], "teal"), "petal_width", [3], "wide").drop("sepal_width"))
    assert both.value.kind == "missing_columns" and [k for k, _ in both.value.problems] == list(
        ("missing_columns", "unparseable", "unknown_category"))
    extra = _set(_set(good.with_columns(comment=pl.lit("x"), id=pl.int_range(20)), "petal_length", [3], None),
                 "sepal_width", [6, 12], float("nan"))
    extra = _set(extra, "colour", [0], " ")
    check = check_table(pre, extra)
    assert check.extra_columns == ["comment", "id"]
    assert "comment, id" in check.notes[0]
    assert any("'petal_length'" in n and "row 4" in n and "training mean" in n for n in check.notes)
    assert any("'sepal_width'" in n and "rows 7, 13" in n for n in check.notes)
    assert any("'colour'" in n and "row 1" in n and "one-hot" in n for n in check.notes)


def test_pandas_tables_are_checked_the_same(models):
    """A pandas frame from user code goes through as_table: same problems, same rows."""
    pd = pytest.importorskip("pandas")
    pre = load_checkpoint(models["flowers"]).preprocessor
    frame = pd.read_csv(sample_dataset("flowers.csv")).head(20).astype({"sepal_length": object})
    frame.loc[[2, 7], "sepal_length"] = "abc"
    frame.loc[4, "petal_length"] = np.nan
    with pytest.raises(PredictionInputError) as unparseable:
        check_table(pre, frame)
    assert "rows 3, 8" in str(unparseable.value) and "'abc'" in str(unparseable.value)
    frame.loc[[2, 7], "sepal_length"] = 5.0
    assert any("'petal_length'" in n and "row 5" in n for n in check_table(pre, frame).notes)


def test_boolean_feature_cells(tmp_path):
    """A true/false feature: booleans and numbers pass, text must spell true or false, NA spellings are missing."""
    pre = Preprocessor("y", "regression", [{"name": "flag", "kind": "boolean", "mean": 0.5, "std": 0.5}], None)
    assert check_table(pre, pl.DataFrame({"flag": [True, None, False]})).notes == [
        "column 'flag': 1 empty cell(s) in row 2 were filled with the training mean, as in training"]
    assert check_table(pre, pl.DataFrame({"flag": [1, 0, 1]})).notes == []
    text = pl.DataFrame({"flag": ["True", " false", "?", "maybe", "yes", "maybe"]})
    with pytest.raises(PredictionInputError) as bad:
        check_table(pre, text)
    assert "3 value(s) cannot be read as true/false ('maybe', 'yes') in rows 4, 5, 6" in str(bad.value)


CLI_BAD = {
    # name: (model key or file, data writer, exit code, words)
    "missing_column": ("flowers", lambda df: df.drop("sepal_width"), EXIT_PREDICT["missing_columns"],
                       ["'sepal_width'", "missing"]),
    "unparseable": ("flowers", lambda df: _set(df, "petal_length", [1], "abc"), EXIT_PREDICT["unparseable"],
                    ["'petal_length'", "'abc'", "row 2"]),
    "unknown_category": ("flowers", lambda df: _set(df, "colour", [0], "teal"),
                         EXIT_PREDICT["unknown_category"], ["'colour'", "'teal'", "row 1"]),
    "bare_state_dict": ("bare", lambda df: df, EXIT_CHECKPOINT, ["bare.pt", "preprocessing"]),
    "not_a_checkpoint": ("garbage", lambda df: df, EXIT_CHECKPOINT, ["garbage.pt"]),
    "unreadable_data": ("flowers", None, EXIT_DATA, ["new.csv"]),
}


@pytest.fixture(scope="module")
def cli_runs(models, tmp_path_factory):
    procs = {}
    flowers = _sample("flowers.csv").head(30)
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
            writer(flowers).write_csv(folder / "new.csv")
        procs[name] = (start_cli(["predict", path, "new.csv", "--out", "out.csv"], folder), folder)
    good = tmp_path_factory.mktemp("good")
    _sample("churn.csv").with_columns(note=pl.lit("x")).write_csv(good / "new.csv")
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
    out = pl.read_csv(folder / "out.csv")
    assert out.columns == ["tenure_months", "monthly_charge", "support_calls", "plan", "churned", "note",
                                 "prediction", "probability_no", "probability_yes"]
    ckpt = load_checkpoint(models["churn"])
    expected = predict_table(ckpt, _sample("churn.csv"))
    assert out["prediction"].to_list() == expected.columns["prediction"].tolist()
    assert_frame_equal(out.drop("note", "prediction", "probability_no", "probability_yes"), _sample("churn.csv"),
                       check_dtypes=False)
    assert report["metrics"]["accuracy"] == pytest.approx(expected.metrics["accuracy"])
    assert set(report["metrics"]) >= {"loss", "accuracy", "f1", "auroc"}


def test_empty_cells_stay_empty_in_the_written_file(models, tmp_path):
    """A CSV with blank numeric and text cells: the output has blanks in the same cells, every other cell as read."""
    ckpt = load_checkpoint(models["flowers"])
    text = (tmp_path / "src.csv")
    _sample("flowers.csv").drop("species").head(12).write_csv(text)
    lines = text.read_text().splitlines()
    header = lines[0].split(",")
    cells = [line.split(",") for line in lines[1:]]
    cells[1][header.index("petal_length")] = ""
    cells[4][header.index("colour")] = ""
    cells[7][header.index("sepal_width")] = "NA"
    text.write_text("\n".join([lines[0], *(",".join(c) for c in cells)]) + "\n")
    check, _, _ = predict_file(ckpt, text, tmp_path / "out.csv", batch_rows=5)
    assert len([n for n in check.notes if "empty cell" in n]) == 3
    written = (tmp_path / "out.csv").read_text().splitlines()
    assert written[0].split(",")[:len(header)] == header
    for row, line in zip(cells, written[1:]):
        got = line.split(",")[:len(header)]
        assert [g == "" for g in got] == [c in ("", "NA") for c in row]
        assert [float(g) if g and h != "colour" else g for g, h in zip(got, header) if g] == \
               [float(c) if h != "colour" else c for c, h in zip(row, header) if c not in ("", "NA")]


def test_header_only_file_is_refused_and_an_empty_table_writes_the_header(models, tmp_path, monkeypatch):
    import nnstudio.core.data as core_data

    ckpt = load_checkpoint(models["churn"])
    header = "tenure_months,monthly_charge,support_calls,plan\n"
    (tmp_path / "new.csv").write_text(header)
    with pytest.raises(DataError, match="new.csv: the table has no rows"):
        predict_file(ckpt, tmp_path / "new.csv", tmp_path / "out.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.csv"]
    empty = pl.DataFrame(schema={"tenure_months": pl.Float64, "monthly_charge": pl.Float64,
                                 "support_calls": pl.Int64, "plan": pl.String})
    monkeypatch.setattr(core_data, "read_table", lambda path: empty)  # a reader that allows no rows
    check, metrics, _ = predict_file(ckpt, tmp_path / "new.csv", tmp_path / "out.csv")
    assert (tmp_path / "out.csv").read_text() == header.strip() + ",prediction,probability_no,probability_yes\n"
    assert metrics == {} and not check.has_target


def test_save_predictions_writes_whole_or_keeps_the_old_file(models, tmp_path, monkeypatch):
    """The window's export: input columns + predictions; a failure halfway leaves the old file and no temp file."""
    from nnstudio.core.results import predict as predict_module

    ckpt = load_checkpoint(models["churn"])
    df = _sample("churn.csv")
    prediction = predict_table(ckpt, df)
    path = save_predictions(df, prediction, tmp_path / "out.csv", batch_rows=300)
    out = pl.read_csv(path)
    assert_frame_equal(out.select(df.columns), df, check_dtypes=False)
    assert out["prediction"].to_list() == prediction.columns["prediction"].tolist()
    np.testing.assert_allclose(out["probability_yes"].to_numpy(), prediction.columns["probability_yes"], rtol=1e-6)
    before = path.read_bytes()
    calls = []
    real = predict_module.write_csv_chunk

    def fail_on_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(predict_module, "write_csv_chunk", fail_on_third)
    with pytest.raises(DataError, match="out.csv: could not write the predictions \\(No space left on device\\)"):
        save_predictions(df.with_columns(note=pl.lit("new")), prediction, path, batch_rows=300)
    assert len(calls) == 3
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


NO_PANDAS = r"""
import sys
sys.modules["pandas"] = None  # import pandas / pyarrow raise ImportError
sys.modules["pyarrow"] = None
from nnstudio.cli import main
code = main(["predict", sys.argv[1], sys.argv[2], "--out", sys.argv[3]])
from nnstudio.core.model.checkpoint import load_checkpoint
from nnstudio.core.export.formats import export_model
report = export_model(load_checkpoint(sys.argv[1]).model, load_checkpoint(sys.argv[1]).preprocessor, sys.argv[4],
                      "torchscript")
print(code, report.ok, sorted(m for m in sys.modules if m.split(".")[0] in ("pandas", "pyarrow") and sys.modules[m]))
"""


def test_predict_and_export_run_without_pandas_or_pyarrow(models, tmp_path):
    """pandas and pyarrow are not runtime dependencies: `nnstudio predict` and an export work without them."""
    import subprocess
    import sys

    from corehelpers import cli_env

    _sample("churn.csv").write_csv(tmp_path / "new.csv")
    proc = subprocess.run([sys.executable, "-c", NO_PANDAS, str(models["churn"]), str(tmp_path / "new.csv"),
                           str(tmp_path / "out.csv"), str(tmp_path / "m.ts")], env=cli_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "0 True []"
    out = pl.read_csv(tmp_path / "out.csv")
    assert out["prediction"].to_list() == predict_table(load_checkpoint(models["churn"]), _sample("churn.csv")).columns[
        "prediction"].tolist()
