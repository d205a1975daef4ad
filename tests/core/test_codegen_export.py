"""The code view's text and the exported script: they compile, train, and repeat nnstudio's run exactly."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from nnstudio.core.model.checkpoint import load_checkpoint
from nnstudio.core.export.codegen import DataFacts, export_script, facts_from_frame, generate, layer_attribute_names
from nnstudio.core.config import RunConfig
from nnstudio.core.data import read_table
from nnstudio.core.errors import NNStudioError
from nnstudio.core.run import TrainingRun

BLOCKER = """import runpy, sys
sys.modules["nnstudio"] = None  # `import nnstudio` raises ImportError
sys.path.insert(0, sys.argv[1])  # first on the path: its pandas.py and pyarrow.py raise ImportError
script = sys.argv[2]
sys.argv = [script]
runpy.run_path(script, run_name="__main__")
"""
#: nnstudio installs neither pandas nor pyarrow: the script must run where importing them fails.
NOT_INSTALLED = ("pandas", "pyarrow")


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
    "binary-boolean-target-sgd": ("flag", ["label", "value"], {  # class names "False"/"True", as nnstudio writes them
        "model": {"layers": [{"type": "Linear", "out_features": 8}, {"type": "SiLU"},
                             {"type": "Linear", "out_features": "auto"}]},
        "training": {"epochs": 2, "batch_size": 16, "threads": 1, "optimizer": {"name": "SGD", "lr": 0.05}}}),
    "binary-penguins-sample-sex": ("sex", [], {  # 11 rows without a target, NA among the numbers
        "file": {"name": "penguins.csv"},
        "model": {"layers": [{"type": "Linear", "out_features": 16}, {"type": "ReLU"},
                             {"type": "Linear", "out_features": "auto"}]},
        "training": {"epochs": 3, "batch_size": 32, "threads": 1}}),
    "binary-semicolon-decimal-commas-na-spellings": ("label", ["species"], {
        "file": {"name": "semicolon.csv"},
        "model": {"layers": [{"type": "Linear", "out_features": 16}, {"type": "ReLU"},
                             {"type": "Linear", "out_features": "auto"}]},
        "training": {"epochs": 3, "batch_size": 32, "threads": 1}}),
    "multiclass-parquet-nulls-drop": ("species", ["label"], {
        "file": {"name": "data.parquet"},
        "data": {"missing": "drop"},
        "model": {"layers": [{"type": "Linear", "out_features": 16}, {"type": "BatchNorm1d"}, {"type": "ReLU"},
                             {"type": "Linear", "out_features": "auto"}]},
        "training": {"epochs": 3, "batch_size": 32, "threads": 1}}),
}


def _semicolon_csv(path: Path, drop: list[str]) -> None:
    """A European CSV: ';' between fields, decimal commas, and missing cells spelled every way nnstudio knows."""
    df = _table(path.parent).drop(columns=drop).astype(object)
    for name in ("a", "value"):
        if name in df:
            df[name] = [None if v != v else f"{v:.4f}".replace(".", ",") for v in df[name]]
    spellings = ["", "NA", " n/a ", "NULL", "?", "None", " nan", "NaN", "na"]
    for i, spelled in enumerate(spellings):
        df.loc[10 + i, "a"] = spelled  # numbers with decimal commas
        df.loc[30 + i, "b"] = spelled  # whole numbers
        df.loc[50 + i, "c"] = spelled  # text
    df.loc[[70, 71, 72], "label"] = ["", " N/A", "?"]  # rows without a target: dropped
    df.to_csv(path, sep=";", index=False)


def _parquet_with_nulls(path: Path, drop: list[str]) -> None:
    """Nulls in every column kind (NaN in floats, null integers and booleans, None and "N/A" in text)."""
    df = _table(path.parent).drop(columns=drop)
    df["b"] = pd.array(df["b"], dtype="Int64")
    df.loc[[3, 9], "b"] = pd.NA
    df["flag"] = df["flag"].astype(object)
    df.loc[[4, 40], "flag"] = None
    df.loc[[11, 12], "c"] = ["N/A", " null "]
    df.loc[[20, 21], "species"] = [None, "NA"]  # rows without a target: dropped
    df.to_parquet(path, index=False)


def _write_case(tmp_path: Path, name: str) -> Path:
    target, drop, raw = CASES[name]
    raw = {k: dict(v) for k, v in raw.items()}
    data_file = raw.pop("file", {}).get("name", "data.csv")
    if data_file == "penguins.csv":  # the real sample the window starts on, "NA" cells as the R package wrote them
        from nnstudio.resources import sample_dataset

        shutil.copy(sample_dataset("penguins.csv"), tmp_path / data_file)
    elif data_file.endswith(".parquet"):
        _parquet_with_nulls(tmp_path / data_file, drop)
    elif "semicolon" in data_file:
        _semicolon_csv(tmp_path / data_file, drop)
    else:
        df = _table(tmp_path).drop(columns=drop)
        if "value" in df:  # NA spelled in a number column (the regression target in one case): missing
            df["value"] = df["value"].astype(object)
            df.loc[[60, 61], "value"] = ["NA", " ?"]
        df.to_csv(tmp_path / data_file, index=False)
    raw["data"] = {"path": data_file, "target": target, **raw.get("data", {})}
    raw["output"] = {"checkpoint": "script.pt", "logdir": "runs", "name": name}
    cfg = RunConfig.from_dict(raw, tmp_path)
    path = tmp_path / "run.toml"
    cfg.save(path)
    return path


def _run_blocked(script: Path, cwd: Path) -> subprocess.CompletedProcess:
    """Run `script` where nnstudio, pandas and pyarrow cannot be imported (nnstudio's environment has no
    pandas or pyarrow; the test's own environment has them, so shadow them with modules that refuse)."""
    blocker = cwd / "blocked_nnstudio.py"
    blocker.write_text(BLOCKER)
    return subprocess.run([sys.executable, "-I", str(blocker), str(_shadow_modules(cwd)), str(script)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def _shadow_modules(cwd: Path) -> Path:
    """A folder whose pandas.py and pyarrow.py raise ModuleNotFoundError when imported."""
    shadows = cwd / "not_installed"
    shadows.mkdir(exist_ok=True)
    for name in NOT_INSTALLED:
        (shadows / f"{name}.py").write_text(f"raise ModuleNotFoundError(\"No module named '{name}' (blocked by the "
                                            f"test: nnstudio does not install it)\", name={name!r})\n")
    return shadows


@pytest.mark.parametrize("case", list(CASES))
def test_exported_script_without_nnstudio_repeats_the_nnstudio_run(tmp_path, case):
    toml = _write_case(tmp_path, case)
    script = export_script(toml, tmp_path / "train.py")
    if "semicolon" in case:  # the decimal-comma path of the script's reader is the one exercised
        assert "CSV_SEPARATOR = ';'" in script.read_text()
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
    assert pa["target_mean"] == pytest.approx(pb["target_mean"], rel=1e-12)
    assert pa["target_std"] == pytest.approx(pb["target_std"], rel=1e-12)
    df = read_table(tmp_path / cfg.data.path)
    assert theirs.predict(df) == ours.predict(df)


@pytest.mark.parametrize("module", ["nnstudio", *NOT_INSTALLED])
def test_the_blocker_really_blocks(tmp_path, module):
    """A script that imports nnstudio, pandas or pyarrow fails under the blocker the exported scripts run in."""
    script = tmp_path / "uses.py"
    script.write_text(f"import {module}\n")
    proc = _run_blocked(script, tmp_path)
    assert proc.returncode != 0, proc.stderr
    assert f"ModuleNotFoundError: No module named '{module}'" in proc.stderr or \
        f"ModuleNotFoundError: import of {module} halted" in proc.stderr, proc.stderr


@pytest.mark.parametrize("file_name", ["comma.csv", "tabs.tsv", "semicolon.csv", "latin1.csv", "utf16.csv",
                                       "nulls.parquet"])
def test_the_scripts_reader_finds_the_missing_cells_and_numbers_nnstudio_finds(tmp_path, file_name):
    """Cell by cell, the script's polars reader gives the table nnstudio reads: the same nulls (empty cells, NA
    spellings, NaN), the same numbers (decimal commas in ';' files, whole numbers with gaps), the same text (also
    from Latin-1 and UTF-16 files, which polars cannot read itself)."""
    import runpy

    import polars as pl

    from nnstudio.core.data import as_table

    path = tmp_path / file_name
    if file_name.endswith(".parquet"):
        _parquet_with_nulls(path, [])
    elif file_name.startswith(("semicolon", "latin1", "utf16")):
        _semicolon_csv(path, [])
        if not file_name.startswith("semicolon"):
            text = path.read_text(encoding="utf-8").replace(";x;", ";café;").replace(";y;", ";crème;")
            path.write_text(text, encoding="latin-1" if file_name.startswith("latin1") else "utf-16")
    else:
        df = _table(tmp_path)
        df.loc[[3, 4], "c"] = [" NA", "none"]
        df["value"] = df["value"].astype(object)
        df.loc[[5, 6], "value"] = ["N/A", "?"]
        df.to_csv(path, index=False, sep="\t" if file_name.endswith(".tsv") else ",")
    read = read_table(path)
    ours = as_table(read)
    cfg = RunConfig(base_dir=tmp_path)
    cfg.data.path = str(path)
    code = generate(cfg, facts_from_frame(read, path, "species", "auto"))
    if file_name.startswith(("latin1", "utf16")):
        assert "FILE_ENCODING = " in code.text and "café" in ours["c"].cast(pl.String).to_list()
    (tmp_path / "train.py").write_text(code.text)
    theirs = runpy.run_path(str(tmp_path / "train.py"), run_name="exported")["read_table"](str(path))
    assert theirs.columns == ours.columns
    assert ours.null_count().row(0) == theirs.null_count().row(0)
    assert sum(ours.null_count().row(0)) >= 4
    for name in ours.columns:
        a, b = theirs[name], ours[name]
        assert a.is_null().to_list() == b.is_null().to_list(), name
        if b.dtype.is_numeric() or b.dtype == pl.Boolean:
            assert a.dtype.is_numeric() or a.dtype == pl.Boolean, name
            assert np.array_equal(a.cast(pl.Float64).to_numpy(), b.cast(pl.Float64).to_numpy(), equal_nan=True), name
            assert (a.dtype == pl.Float32) == (b.dtype == pl.Float32), name
        else:
            assert a.cast(pl.String).to_list() == b.cast(pl.String).to_list(), name


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
    from nnstudio.core.model.spec import normalize_layer

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


def test_nnstudio_export_script_on_the_command_line(tmp_path, capsys):
    """`nnstudio export RUN.toml --script train.py` writes the script and names what it needs: no pandas."""
    from nnstudio.cli import main

    toml = _write_case(tmp_path, "binary-semicolon-decimal-commas-na-spellings")
    assert main(["export", str(toml), "--script", str(tmp_path / "cli.py")]) == 0
    assert "(torch, numpy, polars, tensorboard)" in capsys.readouterr().out
    text = (tmp_path / "cli.py").read_text()
    imports = [l for l in text.splitlines() if l.startswith(("import ", "from "))]
    assert "import polars as pl" in imports and not any("pandas" in l or "pyarrow" in l for l in imports)
    assert "Runs with torch, numpy, polars and tensorboard only" in text
    compile(text, "cli.py", "exec")


def test_export_and_the_script_need_no_pandas_or_pyarrow(tmp_path):
    """nnstudio writes the script, and the script runs, where pandas and pyarrow cannot be imported (as in
    nnstudio's own environment): the export path of nnstudio reads and prepares the data without them too."""
    import nnstudio

    toml = _write_case(tmp_path, "binary-semicolon-decimal-commas-na-spellings")
    shadows = _shadow_modules(tmp_path)
    root = Path(nnstudio.__file__).resolve().parents[1]
    export = ("import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; from nnstudio.cli import main; "
              "sys.exit(main(['export', sys.argv[3], '--script', sys.argv[4]]))")
    proc = subprocess.run([sys.executable, "-I", "-c", export, str(shadows), str(root), str(toml),
                           str(tmp_path / "train.py")], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = _run_blocked(tmp_path / "train.py", tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert load_checkpoint(tmp_path / "script.pt").preprocessor.classes == ["no", "yes"]
