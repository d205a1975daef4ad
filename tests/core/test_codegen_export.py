"""The code view's text and the exported script: they compile, train, and repeat nnstudio's run exactly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from nnstudio.core.checkpoint import load_checkpoint
from nnstudio.core.codegen import DataFacts, export_script, generate, layer_attribute_names
from nnstudio.core.config import RunConfig
from nnstudio.core.data import read_table
from nnstudio.core.errors import NNStudioError
from nnstudio.core.run import TrainingRun

BLOCKER = """import runpy, sys
sys.modules["nnstudio"] = None  # `import nnstudio` raises ImportError
script = sys.argv[1]
sys.argv = [script]
runpy.run_path(script, run_name="__main__")
"""


def _table(tmp_path: Path) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 240
    df = pd.DataFrame({"a": rng.normal(size=n).round(3), "b": rng.integers(0, 100, n),
                       "c": rng.choice(["x", "y", "z"], n), "flag": rng.choice([True, False], n)})
    df.loc[5, "a"] = np.nan
    df.loc[7, "c"] = None  # an empty cell in a text column
    df["label"] = np.where(df.a.fillna(0) + (df.c == "x") > 0.3, "yes", "no")
    df["species"] = np.where(df.b > 60, "p", np.where(df.a.fillna(0) > 0, "q", "r"))
    df["value"] = df.a.fillna(0) * 2 + df.b / 50 + rng.normal(size=n) * 0.1
    return df


CASES = {
    "binary-batchnorm-dropout-adam": ("label", ["species", "value"], {
        "model": {"layers": [{"type": "Linear", "out_features": 16}, {"type": "BatchNorm1d"}, {"type": "ReLU"},
                             {"type": "Dropout", "p": 0.2}, {"type": "Linear", "out_features": "auto"}]},
        "training": {"epochs": 4, "batch_size": 32, "class_weight": "balanced"}}),  # threads auto, as nnstudio picks
    "regression-sgd-onecycle-clip-drop": ("value", ["label", "species"], {
        "data": {"missing": "drop"},
        "model": {"layers": [{"type": "Linear", "out_features": 12}, {"type": "Tanh"}, {"type": "LayerNorm"},
                             {"type": "Linear", "out_features": 8}, {"type": "LeakyReLU", "negative_slope": 0.05},
                             {"type": "Linear", "out_features": "auto"}]},
        "training": {"epochs": 3, "batch_size": 16, "threads": 1, "seed": 3, "grad_clip": 1.0,
                     "optimizer": {"name": "SGD", "lr": 0.05, "momentum": 0.9, "nesterov": True},
                     "scheduler": {"name": "onecycle"}}}),
    "multiclass-adamw-plateau-early-stopping": ("species", ["label", "value"], {
        "data": {"seed": 5, "split": [0.6, 0.2, 0.2]},
        "model": {"layers": [{"type": "Linear", "out_features": 32}, {"type": "GELU"}, {"type": "Dropout", "p": 0.3},
                             {"type": "Linear", "out_features": "auto"}]},
        "training": {"epochs": 6, "batch_size": 24, "threads": 1, "early_stopping": 2,
                     "optimizer": {"name": "AdamW", "lr": 0.01, "weight_decay": 0.01},
                     "scheduler": {"name": "plateau", "patience": 1}}}),
}


def _write_case(tmp_path: Path, name: str) -> Path:
    target, drop, raw = CASES[name]
    _table(tmp_path).drop(columns=drop).to_csv(tmp_path / "data.csv", index=False)
    raw = {k: dict(v) for k, v in raw.items()}
    raw["data"] = {"path": "data.csv", "target": target, **raw.get("data", {})}
    raw["output"] = {"checkpoint": "script.pt", "logdir": "runs", "name": name}
    cfg = RunConfig.from_dict(raw, tmp_path)
    path = tmp_path / "run.toml"
    cfg.save(path)
    return path


def _run_blocked(script: Path, cwd: Path) -> subprocess.CompletedProcess:
    blocker = cwd / "blocked_nnstudio.py"
    blocker.write_text(BLOCKER)
    return subprocess.run([sys.executable, "-I", str(blocker), str(script)], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("case", list(CASES))
def test_exported_script_without_nnstudio_repeats_the_nnstudio_run(tmp_path, case):
    toml = _write_case(tmp_path, case)
    script = export_script(toml, tmp_path / "train.py")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    proc = _run_blocked(script, outside)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "checkpoint:" in proc.stdout
    assert list((tmp_path / "runs" / case).glob("events.out.tfevents.*")), "no TensorBoard log"

    cfg = RunConfig.load(toml)
    cfg.output.checkpoint = "nnstudio.pt"
    TrainingRun(cfg, tensorboard=False).execute()
    theirs, ours = load_checkpoint(tmp_path / "script.pt"), load_checkpoint(tmp_path / "nnstudio.pt")
    assert theirs.layers == ours.layers
    a, b = theirs.model.state_dict(), ours.model.state_dict()
    assert a.keys() == b.keys()
    for key in a:  # same rows, split, preprocessing, initial weights, batch order, dropout and optimizer kernels
        assert torch.equal(a[key], b[key]), key
    pa, pb = theirs.preprocessor.to_dict(), ours.preprocessor.to_dict()
    assert pa["classes"] == pb["classes"] and pa["task"] == pb["task"]
    for fa, fb in zip(pa["features"], pb["features"]):
        assert fa["kind"] == fb["kind"] and fa.get("categories") == fb.get("categories")
        if "mean" in fa:  # nnstudio sums float32 columns in shifted chunks: equal to ~1e-15, not bit for bit
            assert fa["mean"] == pytest.approx(fb["mean"], rel=1e-12, abs=1e-12)
            assert fa["std"] == pytest.approx(fb["std"], rel=1e-12)
    df = read_table(tmp_path / "data.csv")
    assert theirs.predict(df) == ours.predict(df)


def test_the_script_refuses_to_run_inside_a_blocked_import_of_nnstudio(tmp_path):
    """The blocker really blocks: a script that imports nnstudio fails under it."""
    script = tmp_path / "uses.py"
    script.write_text("import nnstudio\n")
    proc = _run_blocked(script, tmp_path)
    assert proc.returncode != 0 and "import of nnstudio halted" in proc.stderr


STACKS = [
    [{"type": "Linear", "out_features": "auto"}],
    [{"type": "Linear", "out_features": 8}, {"type": "SiLU"}, {"type": "Linear", "out_features": 8},
     {"type": "Sigmoid"}, {"type": "Linear", "out_features": "auto", "bias": False}],
    [{"type": "Linear", "out_features": 10}, {"type": "LayerNorm", "eps": 1e-3}, {"type": "ReLU"},
     {"type": "Dropout", "p": 0.5}, {"type": "Linear", "out_features": "auto"}],
]


@pytest.mark.parametrize("layers", STACKS)
@pytest.mark.parametrize("settings", [{"optimizer": "RMSprop", "scheduler": "step", "shuffle": False},
                                      {"optimizer": "Adam", "scheduler": "cosine", "seed": None}])
def test_code_view_text_compiles_and_trains_as_a_script(tmp_path, layers, settings):
    df = _table(tmp_path).drop(columns=["label", "value"])
    df.to_parquet(tmp_path / "d.parquet")
    cfg = RunConfig(base_dir=tmp_path)
    cfg.data.path = str(tmp_path / "d.parquet")
    cfg.data.target = "species"
    cfg.layers = layers
    cfg.training.epochs = 2
    for k, v in settings.items():
        setattr(cfg.training, k, v)
    cfg.output.checkpoint = str(tmp_path / "m.pt")
    cfg.output.logdir = str(tmp_path / "runs")
    facts = DataFacts(cfg.data.path, "species", "multiclass", {"a": "numeric", "b": "numeric", "c": "categorical",
                                                               "flag": "boolean"})
    code = generate(cfg, facts)
    compile(code.text, "train.py", "exec")
    script = tmp_path / "train.py"
    script.write_text(code.text)
    proc = _run_blocked(script, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "epoch 2/2" in proc.stdout
    from nnstudio.core.model import normalize_layer

    assert load_checkpoint(tmp_path / "m.pt").layers == [normalize_layer(l, i + 1) for i, l in enumerate(layers)]


def test_layer_lines_and_loop_parts_point_at_the_code():
    cfg = RunConfig()
    cfg.layers = STACKS[2]
    code = generate(cfg)
    lines = code.text.splitlines()
    names = layer_attribute_names(cfg.layers)
    assert names == ["fc1", "ln1", "relu1", "dropout1", "out"]
    for i, name in enumerate(names):
        assert lines[code.layer_lines[i]].strip().startswith(f"self.{name} = nn.")
    assert "super().__init__()" in code.text and "def forward(self, x):" in code.text
    assert "torch.cuda.is_available()" in code.text and "model = Net(in_features, n_outputs).to(device)" in code.text
    assert "nn.CrossEntropyLoss()" in code.text and '"state_dict"' in code.text
    start, end = code.parts["step_loss"]
    assert any("add_scalar(\"loss/train_step\"" in l for l in lines[start:end + 1])
    start, end = code.parts["step"]
    assert any("loss.backward()" in l for l in lines[start:end + 1])
    assert "#@" not in code.text
    compile(code.text, "train.py", "exec")


@pytest.mark.parametrize("task,loss", [("binary", "nn.BCEWithLogitsLoss()"), ("regression", "nn.MSELoss()")])
def test_the_loss_is_the_one_the_run_uses(task, loss):
    code = generate(RunConfig(), DataFacts(task=task))
    assert f"loss_fn = {loss}" in code.text


def test_export_from_a_checkpoint_and_bad_sources(tmp_path):
    toml = _write_case(tmp_path, "binary-batchnorm-dropout-adam")
    cfg = RunConfig.load(toml)
    cfg.training.epochs = 1
    TrainingRun(cfg, tensorboard=False).execute()
    out = export_script(tmp_path / "script.pt", tmp_path / "from_ckpt.py")
    text = out.read_text()
    assert "TARGET = 'label'" in text and "self.bn1 = nn.BatchNorm1d(16)" in text
    (tmp_path / "x.npy").write_bytes(b"")
    cfg.data.path = "x.npy"
    cfg.save(tmp_path / "npy.toml")
    with pytest.raises(NNStudioError, match="CSV/TSV or Parquet"):
        export_script(tmp_path / "npy.toml", tmp_path / "y.py")
    assert not (tmp_path / "y.py").exists()


def test_where_nnstudio_computes_the_loss_in_another_layout_the_script_agrees_to_rounding(tmp_path, flowers_csv):
    """Multiclass on the CPU with batch x classes >= 1024 and few classes: nnstudio's fast_loss computes the same
    cross-entropy class-major, whose last-layer gradient may round differently in the last bit. Measured after
    30 epochs at batch 512 on flowers.csv: weights within 3e-8, logits within 2.4e-7, every label equal. The
    tolerance here (1e-5 on weights, 1e-4 on logits) leaves room for other CPUs' vector widths."""
    import shutil

    shutil.copy(flowers_csv, tmp_path / "flowers.csv")
    cfg = RunConfig.from_dict({"data": {"path": "flowers.csv", "target": "species"},
                               "training": {"epochs": 30, "batch_size": 512},
                               "output": {"checkpoint": "script.pt", "logdir": "runs", "name": "fl"}}, tmp_path)
    cfg.save(tmp_path / "fl.toml")
    script = export_script(tmp_path / "fl.toml", tmp_path / "train.py")
    proc = _run_blocked(script, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    cfg.output.checkpoint = "nnstudio.pt"
    TrainingRun(cfg, tensorboard=False).execute()
    theirs, ours = load_checkpoint(tmp_path / "script.pt"), load_checkpoint(tmp_path / "nnstudio.pt")
    for key, value in ours.model.state_dict().items():
        assert torch.allclose(theirs.model.state_dict()[key].float(), value.float(), rtol=0, atol=1e-5), key
    df = read_table(tmp_path / "flowers.csv")
    X = torch.from_numpy(ours.preprocessor.transform_features(df))
    with torch.no_grad():
        assert (theirs.model(X) - ours.model(X)).abs().max().item() < 1e-4
    assert theirs.predict(df) == ours.predict(df)
