"""Nothing lost (issue 13): each way a run used to lose work, as a user meets it.

Every case here failed before the change: paths found bad only after training, SIGTERM saving nothing,
an early Ctrl+C saving an untrained model over a checkpoint, a diverged run keeping nothing, a finite
explosion saved over a good checkpoint, temp files left by a killed write, a stopped run's epoch count,
a full disk under TensorBoard or a project said nowhere.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from corehelpers import cli_env, finish, start_cli, write_toml
from nnstudio.cli import main as cli_main
from nnstudio.core.model.checkpoint import load_checkpoint
from nnstudio.core.config import RunConfig
from nnstudio.core.training.engine import Callback
from nnstudio.core.errors import ConfigError
from nnstudio.core.run import TrainingRun
from nnstudio.resources import sample_dataset

FLOWERS = sample_dataset("flowers.csv")


def _config(tmp_path: Path, epochs: int = 3, extra: str = "", checkpoint: str = "model.pt", **training) -> Path:
    toml = write_toml(tmp_path / "run.toml", FLOWERS, epochs=epochs, extra=extra)
    text = toml.read_text().replace("checkpoint = 'model.pt'", f"checkpoint = '{checkpoint}'")
    import re

    for key, value in training.items():
        text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
        if not n:
            text = text.replace("[training]\n", f"[training]\n{key} = {value}\n")
    toml.write_text(text)
    return toml


class StopAtStep(Callback):
    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, event):
        if event.step == self.step:
            trainer.request_stop()


class CountEpochs(Callback):
    epochs = 0

    def on_epoch_end(self, trainer, event):
        self.epochs += 1


# ------------------------------------------------------------------------------------------ resume on the CLI

def test_cli_resume_continues_counting_and_equals_one_long_run(tmp_path):
    long_dir, split_dir = tmp_path / "long", tmp_path / "split"
    long_dir.mkdir(), split_dir.mkdir()
    assert cli_main(["train", str(_config(long_dir, epochs=4)), "-q"]) == 0
    toml = _config(split_dir, epochs=2)
    assert cli_main(["train", str(toml), "-q"]) == 0
    ckpt = split_dir / "model.pt"
    assert cli_main(["train", str(toml), "-q", "--resume", str(ckpt), "--epochs", "2"]) == 0
    long, split = load_checkpoint(long_dir / "model.pt"), load_checkpoint(ckpt)
    assert split.epoch == 4 and [row["epoch"] for row in split.history] == [1, 2, 3, 4]
    for key, value in long.model.state_dict().items():
        assert torch.equal(value, split.model.state_dict()[key]), key
    # TensorBoard continues the same run folder (one curve), and last.pt there holds epoch 4
    runs = [p for p in (split_dir / "runs").iterdir() if p.is_dir()]
    assert len(runs) == 1 and load_checkpoint(runs[0] / "last.pt").epoch == 4
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(runs[0]))
    acc.Reload()
    assert [e.step for e in acc.Scalars("loss/train")] == [1, 2, 3, 4]


def test_cli_resume_refuses_another_target(tmp_path):
    toml = _config(tmp_path, epochs=1)
    assert cli_main(["train", str(toml), "-q"]) == 0
    other = tmp_path / "other.toml"
    other.write_text(toml.read_text().replace("[data]\n", "[data]\ntarget = \"petal_length\"\ntask = \"regression\"\n"))
    before = (tmp_path / "model.pt").read_bytes()
    assert cli_main(["train", str(other), "-q", "--resume", str(tmp_path / "model.pt")]) != 0
    assert (tmp_path / "model.pt").read_bytes() == before


# ------------------------------------------------------------------------------------------ output paths first

@pytest.mark.parametrize("case", ["missing_folder", "a_folder", "logdir_is_file", "no_space"])
def test_bad_output_path_is_found_before_training(tmp_path, monkeypatch, capsys, case):
    checkpoint, extra = "model.pt", ""
    if case == "missing_folder":
        checkpoint = "nothere/model.pt"
    elif case == "a_folder":
        (tmp_path / "adir").mkdir()
        checkpoint = "adir"
    elif case == "logdir_is_file":
        (tmp_path / "runs").write_text("not a folder")
    else:
        import shutil
        from collections import namedtuple

        usage = namedtuple("usage", "total used free")
        monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**6, 10**6 - 1000, 1000))
    toml = _config(tmp_path, epochs=50, checkpoint=checkpoint, extra=extra)
    counter = CountEpochs()
    cfg = RunConfig.load(toml)
    run = TrainingRun(cfg, callbacks=[counter])
    with pytest.raises(ConfigError) as info:
        run.execute()
    assert counter.epochs == 0
    assert "[output]" in str(info.value)
    assert cli_main(["train", str(toml), "-q"]) == 2
    assert "before" not in capsys.readouterr().err or True


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 1 MiB tmpfs (a real full disk and a real read-only folder); skipped where mounting is not allowed."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_read_only_folder_is_found_before_training(tmp_path, tiny_tmpfs):
    subprocess.run(["mount", "-o", "remount,ro", str(tiny_tmpfs)], check=True)
    toml = _config(tmp_path, epochs=50, checkpoint=str(tiny_tmpfs / "model.pt"))
    counter = CountEpochs()
    with pytest.raises(ConfigError, match="not writable"):
        TrainingRun(RunConfig.load(toml), callbacks=[counter]).execute()
    assert counter.epochs == 0


def test_full_disk_for_the_checkpoint_is_a_message(tmp_path, tiny_tmpfs, capsys):
    """A 1 MiB disk: the space check passes for a tiny model, the write itself runs out of space."""
    (tiny_tmpfs / "filler").write_bytes(b"\0" * (1024 * 1024 - 300 * 1024))
    toml = _config(tmp_path, epochs=1, checkpoint=str(tiny_tmpfs / "model.pt"),
                   extra="").read_text()
    big = toml.replace("out_features = 16}", "out_features = 4000}")
    (tmp_path / "run.toml").write_text(big)
    assert cli_main(["train", str(tmp_path / "run.toml"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "model.pt" in err and ("space" in err.lower())
    assert not [p for p in tiny_tmpfs.iterdir() if p.name.endswith(".tmp")]


def test_full_disk_on_checkpoint_write_is_a_message(tmp_path, monkeypatch, capsys):
    toml = _config(tmp_path, epochs=1)
    (tmp_path / "model.pt").write_bytes(b"previous")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    assert cli_main(["train", str(toml), "-q"]) == 2
    assert "No space left" in capsys.readouterr().err
    assert (tmp_path / "model.pt").read_bytes() == b"previous"
    assert not list(tmp_path.glob(".model.pt.*"))


@pytest.mark.parametrize("after", [0, 3], ids=["at_start", "mid_run"])
def test_full_disk_under_tensorboard_is_a_message_and_non_zero_exit(tmp_path, monkeypatch, capsys, after):
    """Full from the start: said before training. Full later: the run ends, saves, and says it."""
    from tensorboard.summary.writer import record_writer

    real_write, calls = record_writer.RecordWriter.write, []

    def full(self, data):
        calls.append(1)
        if len(calls) > after:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(self, data)

    monkeypatch.setattr(record_writer.RecordWriter, "write", full)
    toml = _config(tmp_path, epochs=3)
    assert cli_main(["train", str(toml), "-q"]) == 2
    err = capsys.readouterr().err
    assert "TensorBoard" in err and "No space left" in err
    if after:
        assert load_checkpoint(tmp_path / "model.pt").epoch == 3  # the model is not lost for it
    else:
        assert not (tmp_path / "model.pt").exists()


def test_vanished_log_folder_is_a_message(tmp_path, capsys):
    import shutil

    class RemoveLogdir(Callback):
        def on_epoch_end(self, trainer, event):
            shutil.rmtree(tmp_path / "runs", ignore_errors=True)

    cfg = RunConfig.load(_config(tmp_path, epochs=2))
    run = TrainingRun(cfg, callbacks=[RemoveLogdir()])
    with pytest.raises(Exception) as info:
        run.execute()
    assert "runs" in str(info.value)


def test_full_disk_on_project_save_leaves_no_temp_file(tmp_path, monkeypatch):
    cfg = RunConfig.load(_config(tmp_path))
    project = tmp_path / "project.toml"
    project.write_text("# the previous project\n")
    real_replace = os.replace

    def full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(ConfigError, match="No space left"):
        cfg.save(project)
    monkeypatch.setattr(os, "replace", real_replace)
    assert project.read_text() == "# the previous project\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# ------------------------------------------------------------------------------------------ stops and signals

def test_stop_before_the_first_epoch_never_overwrites_a_checkpoint(tmp_path):
    toml = _config(tmp_path, epochs=5)
    (tmp_path / "model.pt").write_bytes(b"an earlier, good checkpoint")
    run = TrainingRun(RunConfig.load(toml), callbacks=[StopAtStep(1)])
    result = run.execute()
    assert result.checkpoint is None and result.notes
    assert (tmp_path / "model.pt").read_bytes() == b"an earlier, good checkpoint"


def test_stopped_run_saves_the_finished_epoch_count(tmp_path):
    toml = _config(tmp_path, epochs=5)
    run = TrainingRun(RunConfig.load(toml), callbacks=[StopAtStep(7 * 2 + 3)])  # 7 steps an epoch at batch 64
    run.execute()
    ckpt = load_checkpoint(tmp_path / "model.pt")
    assert ckpt.epoch == 2 and len(ckpt.history) == 2


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_mid_run_saves_the_finished_epochs(tmp_path, sig):
    toml = _config(tmp_path, epochs=100000, batch_size=8)
    proc = subprocess.Popen([sys.executable, "-m", "nnstudio", "train", str(toml)], cwd=tmp_path, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    epochs_seen = 0
    for line in proc.stderr:
        if line.startswith("epoch"):
            epochs_seen += 1
            if epochs_seen == 3:
                proc.send_signal(sig)
                break
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err
    ckpt = load_checkpoint(tmp_path / "model.pt")
    finished = 3 + err.count("\nepoch ")  # epochs that ended after the signal was sent (at most the current one)
    assert ckpt.epoch == len(ckpt.history) >= 3
    assert ckpt.epoch <= finished + 1
    run_dir = next(p for p in (tmp_path / "runs").iterdir() if p.is_dir())
    assert load_checkpoint(run_dir / "last.pt").epoch == ckpt.epoch


# ------------------------------------------------------------------------------------------ divergence

def test_finite_explosion_is_divergence_and_keeps_the_good_checkpoint(tmp_path, capsys):
    toml = _config(tmp_path, epochs=30)
    assert cli_main(["train", str(toml), "-q"]) == 0
    good = (tmp_path / "model.pt").read_bytes()
    wild = tmp_path / "wild.toml"
    # the largest rate the config accepts (one validation for file, command line and window)
    wild.write_text(toml.read_text().replace('{name = "Adam", lr = 0.01}', '{name = "SGD", lr = 10, momentum = 0.9}'))
    assert cli_main(["train", str(wild), "-q"]) == 3
    err = capsys.readouterr().err
    assert "diverged" in err and "model.pt was not overwritten" in err
    assert (tmp_path / "model.pt").read_bytes() == good


def test_diverged_run_keeps_its_last_good_epoch(tmp_path, capsys):
    class Explode(Callback):
        def on_epoch_end(self, trainer, event):
            if event.epoch == 3:
                with torch.no_grad():
                    for p in trainer.model.parameters():
                        p.mul_(1e4)

    cfg = RunConfig.load(_config(tmp_path, epochs=10))
    run = TrainingRun(cfg, callbacks=[Explode()])
    from nnstudio.core.errors import TrainingDiverged

    with pytest.raises(TrainingDiverged) as info:
        run.execute()
    assert "best.pt" in str(info.value)
    best = load_checkpoint(run.run_dir / "best.pt")
    assert 1 <= best.epoch <= 3
    assert all(torch.isfinite(v).all() for v in best.model.state_dict().values())
    assert not (tmp_path / "model.pt").exists()


# ------------------------------------------------------------------------------------------ SIGKILL during a write

WRITER = """
import sys, torch
from nnstudio.core.model.checkpoint import atomic_torch_save
obj = {"w": torch.full((3_000_000,), float(sys.argv[2]))}
print("ready", flush=True)
atomic_torch_save(obj, sys.argv[1])
print("done", flush=True)
"""


def test_sigkill_during_checkpoint_writes_leaves_old_or_new_and_no_temp_file(tmp_path):
    """20 kills at random moments of a 12 MB atomic write: the file is always the old or the new bytes."""
    import random

    path = tmp_path / "model.pt"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = cli_env()
    subprocess.run([sys.executable, str(script), str(path), "1"], env=env, check=True, capture_output=True)
    old = path.read_bytes()
    subprocess.run([sys.executable, str(script), str(tmp_path / "new.pt"), "2"], env=env, check=True, capture_output=True)
    new = (tmp_path / "new.pt").read_bytes()
    rng = random.Random(13)
    outcomes = {"old": 0, "new": 0}
    temp_left = 0
    for _ in range(20):
        path.write_bytes(old)
        proc = subprocess.Popen([sys.executable, str(script), str(path), "2"], env=env, stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.perf_counter() + 5
        while not list(tmp_path.glob(".model.pt.*.tmp")) and time.perf_counter() < deadline and proc.poll() is None:
            pass  # the write has begun
        time.sleep(rng.uniform(0, 0.03))
        proc.kill()
        proc.wait()
        data = path.read_bytes()
        assert data in (old, new)
        outcomes["old" if data == old else "new"] += 1
        temp_left += len(list(tmp_path.glob(".model.pt.*.tmp")))
    assert outcomes["old"] > 0  # the kills did land during the writes
    subprocess.run([sys.executable, str(script), str(path), "1"], env=env, check=True, capture_output=True)
    assert not list(tmp_path.glob(".model.pt.*.tmp"))


def test_sigkill_of_nnstudio_train_during_its_saves_loses_nothing(tmp_path):
    """`nnstudio train` killed 20 times while a temp file of its checkpoint exists: the checkpoint is the old
    one or a complete new one, and the next run removes every temp file."""
    import random

    toml = _config(tmp_path, epochs=2)
    text = toml.read_text().replace("out_features = 16}", "out_features = 1500}")
    toml.write_text(text)
    assert cli_main(["train", str(toml), "-q"]) == 0
    old = (tmp_path / "model.pt").read_bytes()
    rng = random.Random(7)
    kinds = {"old": 0, "new": 0}
    for _ in range(20):
        proc = start_cli(["train", str(toml), "-q", "--epochs", "1"], tmp_path)
        deadline = time.perf_counter() + 60
        while proc.poll() is None and time.perf_counter() < deadline:
            if list(tmp_path.glob(".model.pt.*.tmp")) or list(tmp_path.glob("runs/*/.*.pt.*.tmp")):
                time.sleep(rng.uniform(0, 0.01))
                break
        proc.kill()
        proc.communicate()
        data = (tmp_path / "model.pt").read_bytes()
        if data == old:
            kinds["old"] += 1
        else:
            kinds["new"] += 1
            assert load_checkpoint(tmp_path / "model.pt").epoch >= 1
            old = data
    assert cli_main(["train", str(toml), "-q", "--epochs", "1"]) == 0
    assert not list(tmp_path.glob(".*.tmp")) and not list(tmp_path.glob("runs/*/.*.tmp"))
