"""torchrun + DDP on an image run (2 CPU processes, gloo), launched as a user does: the uint8 N×C×H×W tensors
shard like table rows, rank 0 alone reports and writes an ordinary image checkpoint.

A CNN without BatchNorm and Dropout is compared with the single-process run: DDP does not share BatchNorm's
batch statistics between ranks (SyncBatchNorm needs a GPU), and each rank draws its own dropout masks, so only
such a network sees the same computation per global step (tolerance as in test_distributed: 1e-4 relative)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
import tomli_w
from corehelpers import cli_env, finish, start_cli

from nnstudio.core.model.checkpoint import load_checkpoint
from tests.core.test_images import write_folder

TIMEOUT_S = 180
PLAIN_CNN = [{"type": "Conv2d", "out_channels": 8, "kernel_size": 3, "padding": 1}, {"type": "ReLU"},
             {"type": "MaxPool2d", "kernel_size": 2}, {"type": "Flatten"}, {"type": "Linear", "out_features": "auto"}]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _result(proc) -> dict:
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, proc.stdout  # rank 0 alone reports
    return json.loads(lines[0])


@pytest.mark.parametrize("stream", [False, True], ids=["in-memory", "ddp-streamed-from-disk"])
def test_torchrun_on_an_image_folder_matches_the_single_process_run(tmp_path, stream):
    root = write_folder(tmp_path / "imgs", classes=("a", "b", "c"), n=8, size=(8, 8))
    for name in ("single", "ddp"):
        (tmp_path / name).mkdir()
        streamed = {"stream": True} if stream and name == "ddp" else {}  # each rank decodes its shard's files
        (tmp_path / name / "run.toml").write_text(tomli_w.dumps({
            "data": {"path": str(root), "split": [0.5, 0.25, 0.25], **streamed}, "model": {"layers": PLAIN_CNN},
            "training": {"epochs": 3, "batch_size": 8, "seed": 0, "device": "cpu"},
            "output": {"checkpoint": "model.pt", "logdir": "runs"}}))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(_free_port()), "-m", "nnstudio", "train", "run.toml", "--json"]
    ddp = subprocess.Popen(cmd, cwd=tmp_path / "ddp", env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    single = start_cli(["train", "run.toml", "--json", "-q"], tmp_path / "single")
    try:
        one, two = _result(finish(single, TIMEOUT_S)), _result(finish(ddp, TIMEOUT_S))
    finally:
        for proc in (ddp, single):
            if proc.poll() is None:
                proc.kill()
    assert two["status"] == "completed" and two["world_size"] == 2 and one["world_size"] == 1
    assert two["steps"] == one["steps"]
    assert two["test"]["loss"] == pytest.approx(one["test"]["loss"], rel=1e-4)
    assert two["test"]["accuracy"] == pytest.approx(one["test"]["accuracy"], abs=1e-6)
    ckpt = load_checkpoint(tmp_path / "ddp" / "model.pt")  # an ordinary image checkpoint
    assert ckpt.model.input_shape == (1, 8, 8) and ckpt.preprocessor.classes == ["a", "b", "c"]
    single_ckpt = load_checkpoint(tmp_path / "single" / "model.pt")
    for key, value in single_ckpt.model.state_dict().items():
        assert ckpt.model.state_dict()[key].allclose(value, rtol=1e-4, atol=1e-6), key


def test_batchnorm_becomes_syncbatchnorm_under_ddp_on_a_gpu_only():
    import torch
    from torch import nn

    from nnstudio.core.distributed import sync_batchnorm
    from nnstudio.core.model.spec import PRESETS, build_model

    model = build_model(PRESETS["Small CNN"], (1, 8, 8), 3, seed=0, normalization=([0.5], [0.25]))
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    before = {k: v for k, v in model.state_dict().items()}
    x = torch.rand(5, 1, 8, 8) * 255
    model.eval()
    expected = model(x)
    assert not sync_batchnorm(model, torch.device("cpu"))  # no CPU kernel: per-rank statistics stay
    assert not any(isinstance(m, nn.SyncBatchNorm) for m in model.modules())
    assert sync_batchnorm(model, torch.device("cuda", 0))  # the conversion itself touches no device
    assert sum(isinstance(m, nn.SyncBatchNorm) for m in model.modules()) == 2
    after = model.state_dict()
    assert list(after) == list(before)  # a checkpoint keeps its keys: it opens as an ordinary BatchNorm CNN
    assert all(after[k].data_ptr() == before[k].data_ptr() for k in before)  # shared, not copied
    assert torch.equal(model(x), expected)  # evaluation (no sync) is unchanged
    assert not sync_batchnorm(model, torch.device("cuda", 0))  # already converted
