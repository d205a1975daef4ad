"""Model export: ONNX and TorchScript take raw features and match the live model; the plain state_dict loads
into a reader's own nn.Sequential; the CLI writes each and says how close it came."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch
from torch import nn

from nnstudio.cli import main
from nnstudio.core.model.checkpoint import load_checkpoint, save_checkpoint
from nnstudio.core.data import prepare, read_table
from nnstudio.core.training.engine import TrainConfig, Trainer
from nnstudio.core.export.formats import ExportError, export_model, live_outputs, sample_rows
from nnstudio.core.model.spec import build_model


def _trained(tmp_path, task):
    rng = np.random.default_rng(0)
    n = 200
    x1 = rng.normal(50, 10, n)
    x1[3] = np.nan
    df = pl.DataFrame({"x1": x1, "x2": rng.integers(0, 5, n).astype(float),
                       "color": rng.choice(["red", "green", "blue"], n), "on": rng.choice([True, False], n)},
                      nan_to_null=True)
    filled, red = np.nan_to_num(x1, nan=50.0), (df["color"] == "red").to_numpy()
    if task == "regression":
        df = df.with_columns(y=filled * 3 + red * 20 + rng.normal(size=n))
    else:
        df = df.with_columns(y=np.where(filled > 52, "high", np.where(red, "mid", "low")))
    path = tmp_path / "data.csv"
    df.write_csv(path)
    data = prepare(read_table(path), "y", task)
    layers = [{"type": "Linear", "out_features": 16}, {"type": "BatchNorm1d"}, {"type": "ReLU"},
              {"type": "Dropout", "p": 0.1}, {"type": "Linear", "out_features": "auto"}]
    model = build_model(layers, data.n_features, data.n_outputs, seed=0)
    Trainer(model, data, TrainConfig(epochs=3, batch_size=32)).fit()
    ckpt = tmp_path / "model.pt"
    save_checkpoint(ckpt, model, data.preprocessor)
    return load_checkpoint(ckpt), df


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_torchscript_takes_raw_features_and_matches(tmp_path, task):
    ckpt, df = _trained(tmp_path, task)
    report = export_model(ckpt.model, ckpt.preprocessor, tmp_path / "m.ts", "torchscript")
    assert report.ok and report.max_difference < 1e-4
    loaded = torch.jit.load(str(tmp_path / "m.ts"))
    side = json.loads((tmp_path / "m.ts.json").read_text())
    assert [i["name"] for i in side["inputs"]] == ckpt.preprocessor.encoded_names()
    assert side["categories"] == {"color": ["blue", "green", "red"]}
    rows = df.drop("y").head(20)  # real rows of the file, raw
    X = np.stack([rows[i["column"]].cast(pl.Float64).to_numpy() if i["kind"] != "one-hot"
                  else (rows[i["column"]] == i["category"]).cast(pl.Float64).to_numpy() for i in side["inputs"]], 1)
    assert np.isnan(X[3, 0])  # the missing x1 goes in as NaN and comes out as the training mean
    got = loaded(torch.tensor(X, dtype=torch.float32)).detach().numpy()
    expected = live_outputs(ckpt.model, ckpt.preprocessor, rows)
    assert np.max(np.abs(got - expected)) < 1e-4
    if task == "regression":
        assert side["classes"] is None and abs(float(got[0, 0]) - float(df["y"][0])) < 40  # in the target's units


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_onnx_runs_in_onnxruntime_and_matches(tmp_path, task):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    ckpt, df = _trained(tmp_path, task if task != "binary" else "multiclass")
    if task == "binary":
        df = df.with_columns(y=pl.when(pl.col("y") == "high").then(pl.lit("yes")).otherwise(pl.lit("no")))
        df.write_csv(tmp_path / "data.csv")
        data = prepare(read_table(tmp_path / "data.csv"), "y", "binary")
        model = build_model([{"type": "Linear", "out_features": 8}, {"type": "Tanh"},
                             {"type": "Linear", "out_features": "auto"}], data.n_features, 1, seed=1)
        Trainer(model, data, TrainConfig(epochs=2)).fit()
        save_checkpoint(tmp_path / "model.pt", model, data.preprocessor)
        ckpt = load_checkpoint(tmp_path / "model.pt")
    report = export_model(ckpt.model, ckpt.preprocessor, tmp_path / "m.onnx", "onnx")
    assert report.ok and report.max_difference < 1e-4, report.message()
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    raw, X = sample_rows(ckpt.preprocessor, n=33, seed=7)  # another batch size than the export saw
    assert isinstance(raw, pl.DataFrame) and raw.columns == ckpt.preprocessor.feature_names
    assert set(raw.null_count().row(0)) == {3}  # rows 0, 11, 22 (text) and 0, 13, 26 (numbers) are missing
    got = session.run(None, {"features": X})[0]
    assert got.shape[0] == 33
    assert np.max(np.abs(got - live_outputs(ckpt.model, ckpt.preprocessor, raw))) < 1e-4


def test_a_mismatch_is_reported_not_hidden(tmp_path, monkeypatch):
    ckpt, _ = _trained(tmp_path, "regression")
    import nnstudio.core.export.formats as export

    real = export.live_outputs
    monkeypatch.setattr(export, "live_outputs", lambda m, p, d: real(m, p, d) + 0.5)
    report = export_model(ckpt.model, ckpt.preprocessor, tmp_path / "m.ts", "torchscript")
    assert not report.ok and report.max_difference == pytest.approx(0.5, abs=1e-3)
    assert "DOES NOT MATCH" in report.message()
    assert json.loads((tmp_path / "m.ts.json").read_text())["check"]["ok"] is False


def test_plain_state_dict_loads_into_the_readers_own_sequential(tmp_path):
    ckpt, _ = _trained(tmp_path, "multiclass")
    export_model(ckpt.model, ckpt.preprocessor, tmp_path / "plain.pt", "state_dict")
    state = torch.load(tmp_path / "plain.pt", weights_only=True)
    assert list(state)[:2] == ["0.weight", "0.bias"]
    n_in = ckpt.model.in_features
    mine = nn.Sequential(nn.Linear(n_in, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 3))
    mine.load_state_dict(state)
    mine.eval()
    x = torch.randn(5, n_in)
    assert torch.equal(mine(x), ckpt.model(x))
    note = (tmp_path / "plain.pt.txt").read_text()
    namespace: dict = {}
    exec(note.replace("model.load_state_dict", "#"), {"torch": torch, "nn": nn}, namespace)
    assert str(namespace["model"]) == str(mine)


def test_cli_export_writes_each_format_and_refuses_bad_input(tmp_path, capsys):
    ckpt, _ = _trained(tmp_path, "regression")
    assert main(["export", str(ckpt.path), "--torchscript", str(tmp_path / "m.ts"),
                 "--state-dict", str(tmp_path / "sd.pt")]) == 0
    out = capsys.readouterr().out
    assert "m.ts: matches the live model" in out and "sd.pt: written" in out
    assert main(["export", str(ckpt.path)]) == 2
    assert "--script, --onnx" in capsys.readouterr().err
    assert main(["export", str(ckpt.path), "--torchscript", str(tmp_path / "nowhere" / "m.ts")]) == 2
    assert "folder does not exist" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    assert main(["export", str(tmp_path / "junk.pt"), "--onnx", str(tmp_path / "j.onnx")]) == 2
    assert not (tmp_path / "j.onnx").exists()


def test_export_without_preprocessing_is_refused(tmp_path):
    model = build_model([{"type": "Linear", "out_features": "auto"}], 3, 1)
    with pytest.raises(ExportError, match="no preprocessing"):
        export_model(model, None, tmp_path / "m.onnx", "onnx")
