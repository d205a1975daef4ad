"""torchrun + DDP on 2 CPU processes (gloo), as a user launches it: `python -m torch.distributed.run`.

The three launches start together (they are independent) and each has a timeout, so a hang fails the
test instead of CI. Tolerance: the two-process run sees the same rows per global step as the
single-process run (DistributedSampler rule, per-rank batch = global batch / 2), so the test loss
agrees to float rounding; 1e-4 relative leaves room for the all-reduce's summation order.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys

import pytest
import torch

from corehelpers import cli_env, finish, start_cli, write_toml
from nnstudio.core.model.checkpoint import load_checkpoint
from nnstudio.core.distributed import FAIL_ENV, DDPStrategy, per_rank_batch, shard_indices
from nnstudio.resources import sample_dataset

TIMEOUT_S = 180
REL_TOL = 1e-4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(folder, extra_env=None) -> subprocess.Popen:
    env = cli_env() | (extra_env or {})
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(_free_port()), "-m", "nnstudio", "train", "run.toml", "--json"]
    return subprocess.Popen(cmd, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def launches(tmp_path_factory):
    folders = {name: tmp_path_factory.mktemp(name) for name in ("single", "ddp", "failing", "diverging", "baddata")}
    for folder in folders.values():
        write_toml(folder / "run.toml", sample_dataset("flowers.csv"), epochs=4)
    toml = folders["diverging"] / "run.toml"
    # the largest rate the config accepts (1e12 is refused before training since one validation serves all)
    toml.write_text(toml.read_text().replace('{name = "Adam", lr = 0.01}', '{name = "SGD", lr = 10, momentum = 0.9}'))
    write_toml(folders["baddata"] / "run.toml", sample_dataset("flowers.csv"), target="no_such_column")
    for name in ("single_es", "ddp_es"):
        folders[name] = tmp_path_factory.mktemp(name)
        toml = write_toml(folders[name] / "run.toml", sample_dataset("flowers.csv"), epochs=300)
        toml.write_text(toml.read_text().replace("epochs = 300\n", "epochs = 300\nearly_stopping = 2\n"))
    procs = {"single": start_cli(["train", "run.toml", "--json", "-q"], folders["single"]),
             "ddp": _torchrun(folders["ddp"]),
             "failing": _torchrun(folders["failing"], {FAIL_ENV: "1:2"}),
             "diverging": _torchrun(folders["diverging"]),
             "baddata": _torchrun(folders["baddata"]),
             "single_es": start_cli(["train", "run.toml", "--json", "-q"], folders["single_es"]),
             "ddp_es": _torchrun(folders["ddp_es"])}
    results = {}
    try:
        for name, proc in procs.items():
            results[name] = finish(proc, TIMEOUT_S)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    return folders, results


def _result(proc) -> dict:
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, proc.stdout  # rank 0 alone reports
    return json.loads(lines[0])


def test_two_processes_complete_and_match_the_single_process_run(launches):
    folders, results = launches
    single, ddp = _result(results["single"]), _result(results["ddp"])
    assert ddp["status"] == "completed" and ddp["world_size"] == 2 and single["world_size"] == 1
    assert ddp["steps"] == single["steps"]  # per-rank batch 32 over half the rows: the same number of steps
    assert ddp["test"]["loss"] == pytest.approx(single["test"]["loss"], rel=REL_TOL)
    assert ddp["test"]["accuracy"] == pytest.approx(single["test"]["accuracy"], abs=1e-6)
    assert ddp["best_val_loss"] == pytest.approx(single["best_val_loss"], rel=REL_TOL)
    # one progress stream and one log folder: rank 0's
    assert results["ddp"].stderr.count("training on cpu") == 1
    assert len(list((folders["ddp"] / "runs").iterdir())) == 1


def test_the_checkpoint_is_an_ordinary_one_that_nnstudio_opens(launches):
    folders, results = launches
    raw = torch.load(folders["ddp"] / "model.pt", weights_only=True)
    assert raw["world_size"] == 2
    assert not any(k.startswith("module.") for k in raw["state_dict"])
    ckpt = load_checkpoint(folders["ddp"] / "model.pt")
    single = load_checkpoint(folders["single"] / "model.pt")
    for key, value in single.model.state_dict().items():
        torch.testing.assert_close(ckpt.model.state_dict()[key], value, rtol=1e-4, atol=1e-5)


def test_a_failure_on_one_rank_ends_both_with_one_message(launches):
    _, results = launches
    proc = results["failing"]
    assert proc.returncode != 0
    message = "rank 1: failure injected at epoch 2"
    assert proc.stderr.count(message) == 1, proc.stderr
    assert proc.stderr.count("nnstudio: error:") == 1, proc.stderr
    assert "epoch   3/4" not in proc.stderr  # rank 0 did not train on alone
    assert not any(line.startswith("{") for line in proc.stdout.splitlines())


def test_early_stopping_stops_every_rank_at_the_single_process_epoch(launches):
    _, results = launches
    single, ddp = _result(results["single_es"]), _result(results["ddp_es"])
    assert single["status"] == ddp["status"] == "early_stopping"
    assert ddp["epochs"] == single["epochs"] < 300 and ddp["best_epoch"] == single["best_epoch"]
    assert ddp["test"]["loss"] == pytest.approx(single["test"]["loss"], rel=REL_TOL)


def test_divergence_stops_every_rank_with_one_message(launches):
    folders, results = launches
    proc = results["diverging"]
    assert proc.returncode != 0
    assert proc.stderr.count("nnstudio: error:") == 1, proc.stderr
    assert "training diverged" in proc.stderr and re.search(r"at epoch [1-4]\b", proc.stderr), proc.stderr
    assert "exitcode  : 3" in proc.stderr  # EXIT_DIVERGED on every rank, not a broken connection
    assert not (folders["diverging"] / "model.pt").exists()


def test_unreadable_data_is_read_and_reported_once(launches):
    _, results = launches
    proc = results["baddata"]
    assert proc.returncode != 0
    assert proc.stderr.count("nnstudio: error:") == 1, proc.stderr
    assert proc.stderr.count("no_such_column") == 1


def test_shards_follow_the_distributed_sampler_rule():
    from torch.utils.data import DistributedSampler

    for n, world in ((10, 3), (7, 2), (2, 4)):
        for rank in range(world):
            gen = torch.Generator().manual_seed(5)
            mine = shard_indices(n, world, rank, gen).tolist()
            sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=False)
            reference = list(sampler)  # unshuffled: the padding and striding rule alone
            assert shard_indices(n, world, rank, None, shuffle=False).tolist() == reference
            assert len(mine) == len(reference)
        shards = [shard_indices(n, world, r, torch.Generator().manual_seed(5)) for r in range(world)]
        assert set(torch.cat(shards).tolist()) == set(range(n))


def test_global_step_covers_the_single_process_batch():
    n, world, batch = 20, 2, 6
    order = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    b = per_rank_batch(batch, world)
    shards = [shard_indices(n, world, r, torch.Generator().manual_seed(1)) for r in range(world)]
    for step in range(n // batch):
        together = torch.cat([s[step * b:(step + 1) * b] for s in shards])
        assert sorted(together.tolist()) == sorted(order[step * batch:(step + 1) * batch].tolist())


def test_steps_per_epoch_counts_a_rank_s_batches():
    class Ctx:
        world_size, rank = 2, 0

    strategy = DDPStrategy.__new__(DDPStrategy)
    strategy.ctx = Ctx()
    assert strategy.steps_per_epoch(420, 64) == 7  # 210 rows per rank, 32 per step
    assert strategy.steps_per_epoch(5, 64) == 1


def test_ctrl_c_stops_every_rank_and_saves_the_checkpoint(tmp_path):
    """Ctrl+C reaches torchrun and its workers (one process group); torchrun then sends them SIGTERM.
    Both stop at an agreed batch, rank 0 saves what was trained and reports "stopped"."""
    import os
    import signal
    import threading

    write_toml(tmp_path / "run.toml", sample_dataset("flowers.csv"), epochs=100000)
    env = cli_env()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(_free_port()), "-m", "nnstudio", "train", "run.toml", "--json"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    lines: list[str] = []
    second_epoch = threading.Event()

    def read_stderr():
        for line in proc.stderr:
            lines.append(line)
            if line.startswith("epoch   2/"):
                second_epoch.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        assert second_epoch.wait(TIMEOUT_S), "".join(lines)
        os.killpg(proc.pid, signal.SIGINT)
        out = proc.stdout.read()
        proc.wait(TIMEOUT_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    reader.join(10)
    result = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
    assert result["status"] == "stopped" and result["world_size"] == 2 and result["epochs"] >= 2
    ckpt = load_checkpoint(tmp_path / "model.pt")
    assert ckpt.epoch == result["epochs"] or ckpt.epoch == result["epochs"] + 1
