"""The command line, as a user runs it: `python -m nnstudio train|info`, in a fresh process.

The processes start together in module fixtures (they are independent), so the module costs about one
interpreter start per core rather than one per case.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from corehelpers import finish, start_cli, write_toml
from nnstudio.resources import sample_dataset

BAD_CASES = {
    # name: (args, files to write {name: bytes or callable(tmp) -> None}, words the error line must hold)
    "missing_config": (["train", "nothere.toml"], {}, ["nothere.toml", "no such file"]),
    "malformed_toml": (["train", "bad.toml"], {"bad.toml": b"[data\npath = 'x.csv'\n"}, ["bad.toml", "TOML"]),
    "unknown_key": (["train", "bad.toml"], {"bad.toml": b"[training]\nepoch = 3\n"}, ["bad.toml", "epoch"]),
    "wrong_type": (["train", "bad.toml"], {"bad.toml": b"[training]\nepochs = \"ten\"\n"}, ["bad.toml", "epochs"]),
    "missing_target": (["train", "run.toml"], {"run.toml": "flowers:petal_colour"}, ["petal_colour", "flowers.csv"]),
    "png_as_csv": (["train", "run.toml"], {"run.toml": "image.csv",
                                            "image.csv": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4},
                   ["image.csv"]),
    "random_as_csv": (["train", "run.toml"], {"run.toml": "noise.csv",
                                               "noise.csv": np.random.default_rng(0).bytes(5000)}, ["noise.csv"]),
    "info_text_file": (["info", "notes.pt"], {"notes.pt": b"not a checkpoint at all\n"}, ["notes.pt"]),
    "info_missing": (["info", "gone.pt"], {}, ["gone.pt", "no such file"]),
    "unknown_option": (["train", "x.toml", "--fast"], {}, ["--fast"]),
}


def _write_case_files(folder, files) -> None:
    for name, content in files.items():
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif content.startswith("flowers:"):  # a valid config on flowers.csv with another target
            write_toml(path, sample_dataset("flowers.csv"), target=content.split(":", 1)[1])
        else:  # a valid config whose data file is `content` in the same folder
            write_toml(path, content)


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory):
    procs = {}
    for name, (args, files, _) in BAD_CASES.items():
        folder = tmp_path_factory.mktemp(name)
        _write_case_files(folder, files)
        procs[name] = start_cli(args, folder)
    return {name: finish(proc) for name, proc in procs.items()}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_gives_one_error_line_and_no_traceback(bad_runs, case):
    proc = bad_runs[case]
    words = BAD_CASES[case][2]
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("nnstudio: error:")
    assert all(w in lines[0] for w in words), lines[0]
    assert proc.stdout == ""


@pytest.fixture(scope="module")
def train_runs(tmp_path_factory):
    runs = {}
    for name, (sample, target) in {"flowers": ("flowers.csv", ""), "houses": ("houses.csv", "price"),
                                   "churn": ("churn.csv", "churned")}.items():
        folder = tmp_path_factory.mktemp(f"train-{name}")
        write_toml(folder / "run.toml", sample_dataset(sample), target=target, epochs=2)
        runs[name] = (folder, start_cli(["train", "run.toml", "--json"], folder))
    return {name: (folder, finish(proc)) for name, (folder, proc) in runs.items()}


@pytest.mark.parametrize("name, keys", [("flowers", {"loss", "accuracy", "f1"}), ("churn", {"loss", "accuracy", "f1", "auroc"}),
                                        ("houses", {"loss", "rmse", "mae", "r2"})])
def test_train_json(train_runs, name, keys):
    folder, proc = train_runs[name]
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stdout.strip().splitlines()) == 1
    result = json.loads(proc.stdout)  # exactly one JSON object, nothing else on stdout
    assert isinstance(result, dict)
    assert set(result["test"]) == keys
    assert all(isinstance(v, float) for v in result["test"].values())
    assert result["status"] == "completed" and result["epochs"] == 2
    checkpoint = folder / "model.pt"
    assert checkpoint.is_file() and result["checkpoint"] == str(checkpoint)
    raw = torch.load(checkpoint, weights_only=True)
    assert raw["format"] == "nnstudio" and raw["metrics"]["test_loss"] == pytest.approx(result["test"]["loss"])
    run_dirs = list((folder / "runs").iterdir())
    assert len(run_dirs) == 1 and re.fullmatch(r"\d{8}-\d{6}-clitest", run_dirs[0].name)
    assert list(run_dirs[0].glob("events.out.tfevents.*"))
    assert "epoch   2/2" in proc.stderr  # the progress lines go to stderr, never into the JSON


def test_trained_model_is_useful(train_runs):
    _, proc = train_runs["flowers"]
    assert json.loads(proc.stdout)["test"]["accuracy"] > 0.5


@pytest.fixture(scope="module")
def info_runs(train_runs):
    folder, _ = train_runs["flowers"]
    procs = {"text": start_cli(["info", "model.pt"], folder), "json": start_cli(["info", "model.pt", "--json"], folder)}
    return {k: finish(p) for k, p in procs.items()}


def test_info_prints_layers_and_parameter_count(info_runs, train_runs):
    folder, _ = train_runs["flowers"]
    proc = info_runs["text"]
    assert proc.returncode == 0, proc.stderr
    raw = torch.load(folder / "model.pt", weights_only=True)
    n_params = sum(v.numel() for k, v in raw["state_dict"].items())
    out = proc.stdout
    assert "layers:" in out and "Linear" in out and "ReLU" in out
    assert f"total parameters: {n_params:,}" in out
    assert "task multiclass, target 'species'" in out
    assert "setosa" in out and "torch" in out


def test_info_json(info_runs):
    proc = info_runs["json"]
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert [l["type"] for l in info["layers"]] == ["Linear", "ReLU", "Linear"]
    assert info["parameters"] == sum(l["params"] for l in info["layers"])
    assert info["classes"] == ["setosa", "versicolor", "virginica"]


