"""#13: every bad checkpoint gets one sentence (core and `nnstudio info`), checked before anything is allocated."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from nnstudio.core.model import checkpoint as ckpt_mod
from nnstudio.core.model.checkpoint import load_checkpoint, save_checkpoint
from nnstudio.core.errors import CheckpointError
from nnstudio.core.model.spec import SpecModel

LAYERS = [{"type": "Linear", "out_features": 8}, {"type": "ReLU"}, {"type": "Linear", "out_features": "auto"}]


@pytest.fixture
def good(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "good.pt"
    save_checkpoint(path, SpecModel(LAYERS, 4, 3), None, epoch=2, metrics={"val_loss": 0.5})
    return path


def _damaged(good, tmp_path, change, name="bad.pt"):
    raw = torch.load(good, weights_only=True)
    change(raw)
    path = tmp_path / name
    torch.save(raw, path)
    return path


def _set_layer(raw, i, **kw):
    raw["model_spec"]["layers"][i].update(kw)


#: (name, change to a valid checkpoint, words the sentence must hold)
DAMAGE = [
    ("out_features 10**12", lambda r: _set_layer(r, 0, out_features=10**12), ["layer 1 Linear", "TB", "4 → 1000000000000"]),
    ("in_features 10**12", lambda r: r["model_spec"].update(in_features=10**12), ["layer 1 Linear", "TB"]),
    ("1e5 x 1e5 hidden", lambda r: (r["model_spec"]["layers"].insert(1, {"type": "Linear", "out_features": 100_000}),
                                    _set_layer(r, 0, out_features=100_000)), ["layer 2 Linear", "GB", "100000 → 100000"]),
    ("5e7 inputs in 4 KB", lambda r: r["model_spec"].update(in_features=50_000_000), ["weights do not match", "50000000"]),
    ("epoch 'abc'", lambda r: r.update(epoch="abc"), ["'epoch' must be a whole number", "'abc'"]),
    ("epoch -3", lambda r: r.update(epoch=-3), ["'epoch' must be 0 or more"]),
    ("epoch True", lambda r: r.update(epoch=True), ["'epoch' must be a whole number"]),
    ("metrics list", lambda r: r.update(metrics=[1, 2]), ["'metrics' must be a table"]),
    ("metrics text value", lambda r: r.update(metrics={"val_loss": "low"}), ["'metrics' must map names to numbers"]),
    ("versions string", lambda r: r.update(versions="1.0"), ["'versions' must be a table"]),
    ("versions int value", lambda r: r.update(versions={"torch": 2}), ["'versions' must map names to strings"]),
    ("history dict", lambda r: r.update(history={"a": 1}), ["'history' must be a list"]),
    ("history of numbers", lambda r: r.update(history=[1, 2]), ["'history' must be a list of tables"]),
    ("config list", lambda r: r.update(config=[1]), ["'config' must be a table"]),
    ("optimizer_state int", lambda r: r.update(optimizer_state=3), ["'optimizer_state' must be a table or empty"]),
    ("preprocessing string", lambda r: r.update(preprocessing="std"), ["'preprocessing' must be a table"]),
    ("preprocessing garbage", lambda r: r.update(preprocessing={"features": 3}), ["preprocessing record is invalid"]),
    ("model_spec list", lambda r: r.update(model_spec=[1]), ["'model_spec' must be a table"]),
    ("layers string", lambda r: r["model_spec"].update(layers="Linear"), ["model spec 'layers' must be a list"]),
    ("n_outputs 0", lambda r: r["model_spec"].update(n_outputs=0), ["'n_outputs' must be a whole number ≥ 1"]),
    ("n_outputs float", lambda r: r["model_spec"].update(n_outputs=3.0), ["'n_outputs' must be a whole number ≥ 1"]),
    ("no in_features", lambda r: r["model_spec"].pop("in_features"), ["no 'in_features'"]),
    ("unknown layer", lambda r: _set_layer(r, 1, type="Conv3d"), ["unknown type 'Conv3d'"]),
    ("layer not a table", lambda r: r["model_spec"]["layers"].insert(0, 5), ["layer 1", "expected a table"]),
    ("integers in state_dict", lambda r: r["state_dict"].update({"layers.0.weight": 3}),
     ["not tensors", "layers.0.weight (int)"]),
    ("state_dict list", lambda r: r.update(state_dict=[1]), ["'state_dict' must be a table"]),
    ("bool weights", lambda r: r["state_dict"].update({"layers.0.bias": torch.zeros(8, dtype=torch.bool)}),
     ["wrong kind of numbers", "layers.0.bias"]),
    ("wrong shape", lambda r: r["state_dict"].update({"layers.2.weight": torch.zeros(3, 9)}), ["(3, 9) vs model (3, 8)"]),
    ("version 0", lambda r: r.update(version=0), ["version 0"]),
    ("no state_dict", lambda r: r.pop("state_dict"), ["no 'state_dict'"]),
]


@pytest.fixture
def small_memory(monkeypatch):
    """A machine with 8 GB free, so the bound (half of it) is the same wherever the test runs."""
    monkeypatch.setattr(ckpt_mod, "available_memory", lambda: 8 * 10**9)


@pytest.mark.parametrize("name, change, words", DAMAGE, ids=[d[0] for d in DAMAGE])
def test_damaged_fields_get_one_sentence_before_allocation(good, tmp_path, small_memory, name, change, words):
    path = _damaged(good, tmp_path, change)
    assert path.stat().st_size < 8000
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.startswith("bad.pt: ") and "\n" not in message
    assert all(w in message for w in words), message


def test_a_huge_model_names_the_free_memory(good, tmp_path, small_memory):
    path = _damaged(good, tmp_path, lambda r: _set_layer(r, 0, out_features=10**12))
    with pytest.raises(CheckpointError, match=r"would take 20\.0 TB \(5,000,000,000,000 parameters\), more than the 4\.0 GB"):
        load_checkpoint(path)


def test_random_bytes_and_dev_zero_are_not_pytorch_files(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(30):
        (tmp_path / "r.pt").write_bytes(rng.bytes(int(rng.integers(1, 3000))))
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(tmp_path / "r.pt")
        assert "not a PyTorch file" in str(info.value) or "not a complete PyTorch file" in str(info.value), str(info.value)
        assert "Python objects" not in str(info.value)
    os.symlink("/dev/zero", tmp_path / "zero.pt")
    with pytest.raises(CheckpointError, match=r"zero\.pt: is a character device \(a link to /dev/zero\)"):
        load_checkpoint(tmp_path / "zero.pt")


def test_fifo_and_socket_are_refused_before_opening(tmp_path):
    os.mkfifo(tmp_path / "pipe.pt")  # opening it would block until a writer comes
    with pytest.raises(CheckpointError, match="named pipe"):
        load_checkpoint(tmp_path / "pipe.pt")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "s.pt"))
        with pytest.raises(CheckpointError, match="socket"):
            load_checkpoint(tmp_path / "s.pt")
    finally:
        sock.close()


def _info(path):
    return subprocess.run([sys.executable, "-m", "nnstudio", "info", str(path)], capture_output=True, text=True,
                          timeout=120)


def test_cli_gives_one_line_and_non_zero_exit_for_each_bad_file(good, tmp_path):
    paths = [_damaged(good, tmp_path, change, f"bad{i}.pt") for i, (_, change, _) in enumerate(DAMAGE[3:12])]
    (tmp_path / "random.pt").write_bytes(np.random.default_rng(0).bytes(4000))
    os.symlink("/dev/zero", tmp_path / "zero.pt")
    os.mkfifo(tmp_path / "pipe.pt")
    for path in [*paths, tmp_path / "random.pt", tmp_path / "zero.pt", tmp_path / "pipe.pt"]:
        out = _info(path)
        assert out.returncode == 2, (path, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("nnstudio: error: ") and path.name in lines[0], out.stderr
        assert "Traceback" not in out.stderr


def test_a_4kb_file_declaring_5e7_inputs_stays_small_in_memory(good, tmp_path):
    """The child's own peak (VmHWM at its exit). Not RUSAGE_CHILDREN's ru_maxrss: exec folds the parent's RSS at
    fork into a child's ru_maxrss, so a test suite grown past 1 GiB read as a 1 GiB child (benchmarks/csv_load.py)."""
    path = _damaged(good, tmp_path, lambda r: r["model_spec"].update(in_features=50_000_000))
    code = ("import atexit, sys\n"
            "def peak():\n"
            "    with open('/proc/self/status') as fh:\n"
            "        sys.stderr.write('VmHWM ' + next(l for l in fh if l.startswith('VmHWM:')).split()[1] + '\\n')\n"
            "atexit.register(peak)\n"
            "from nnstudio.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    out = subprocess.run([sys.executable, "-c", code, "info", str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "weights do not match" in out.stderr
    peak_kib = int(out.stderr.rsplit("VmHWM ", 1)[1].split()[0])
    assert peak_kib < 1_000_000, f"peak {peak_kib / 1024:.0f} MiB"  # was 2.3 GiB


@pytest.mark.parametrize("body", [b"\x80\x02\xff", b"\x80\x02" + b"X\xff\xff\xff\x7f", b"\x80\x02]q\x00K\x01a" + b"K\x01e"])
def test_damaged_pickles_are_not_called_python_objects(tmp_path, body):
    (tmp_path / "p.pt").write_bytes(body)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "p.pt")
    assert "Python objects" not in str(info.value) and "PyTorch file" in str(info.value), str(info.value)
