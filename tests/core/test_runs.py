"""core.results.runs reads log folders written by real runs: `nnstudio train` in a subprocess, and TrainingRun."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from corehelpers import cli_env, finish, start_cli, write_toml
from nnstudio.core.config import RunConfig
from nnstudio.core.run import TrainingRun
from nnstudio.core.results.runs import (
    RUN_INFO, RunError, RunFollower, ScalarReader, delete_run, list_runs, overlay_problem, read_curves, read_run,
    rename_run)
from nnstudio.resources import sample_dataset


@pytest.fixture(scope="module")
def cli_logdir(tmp_path_factory):
    """Two headless runs of `nnstudio train` (flowers 3 epochs, houses 2 epochs) in one log folder."""
    root = tmp_path_factory.mktemp("cli")
    flowers = write_toml(root / "flowers.toml", sample_dataset("flowers.csv"), epochs=3,
                         extra="").read_text().replace("name = 'clitest'", "name = 'flowers'")
    (root / "flowers.toml").write_text(flowers)
    houses = write_toml(root / "houses.toml", sample_dataset("houses.csv"), epochs=2).read_text()
    (root / "houses.toml").write_text(houses.replace("name = 'clitest'", "name = 'houses'")
                                      .replace("model.pt", "houses.pt"))
    for toml in ("flowers.toml", "houses.toml"):
        result = finish(start_cli(["train", toml, "--quiet", "--json"], root))
        assert result.returncode == 0, result.stderr
    return root / "runs"


def test_list_runs_of_earlier_headless_runs(cli_logdir):
    runs = list_runs(cli_logdir)
    assert [r.name for r in runs] == ["flowers", "houses"]
    flowers, houses = runs
    assert flowers.dataset.endswith("flowers.csv") and flowers.task == "multiclass" and flowers.target == "species"
    assert houses.task == "regression" and houses.target == "price"
    assert "Linear(16)" in flowers.layers and flowers.optimizer.startswith("Adam lr=0.01")
    assert flowers.status == "completed"
    assert flowers.best_val_loss is not None and flowers.best_val_loss > 0
    assert "accuracy" in flowers.validation and set(flowers.test) >= {"loss", "accuracy"}
    assert flowers.checkpoint_exists and flowers.checkpoint.endswith("model.pt")
    assert houses.checkpoint.endswith("houses.pt")
    assert flowers.date <= houses.date


def test_curves_read_back_as_arrays(cli_logdir):
    run = list_runs(cli_logdir)[0]
    curves = read_curves(run.path)
    assert list(curves.epochs) == [1, 2, 3]
    assert curves.train_loss.shape == (3,) and np.isfinite(curves.val_loss).all()
    spe = run.steps_per_epoch  # 420 training rows at batch 64
    assert spe == 7
    assert list(curves.epoch_step) == [7.0, 14.0, 21.0]  # from the `epoch` tag, the step that ended each epoch
    assert len(curves.step_x) == 21 and curves.step_x[-1] == 21
    assert "accuracy" in curves.metrics and curves.metrics["accuracy"].shape == (3,)
    assert curves.lr == pytest.approx([0.01] * 3)  # float32 in the event file
    # the test metrics in run.json are the checkpoint's
    import torch

    ckpt = torch.load(run.checkpoint, weights_only=True)
    assert ckpt["metrics"]["test_accuracy"] == pytest.approx(run.test["accuracy"])


def test_restore_config_from_run(cli_logdir):
    run = list_runs(cli_logdir)[1]
    cfg = run.run_config()
    assert cfg.data_path.name == "houses.csv" and cfg.data_path.is_file()
    assert cfg.training.epochs == 2 and cfg.training.lr == 0.01 and cfg.layers[0]["out_features"] == 16


def test_overlay_only_same_task_and_target(cli_logdir):
    flowers, houses = list_runs(cli_logdir)
    assert overlay_problem([flowers]) == ""
    reason = overlay_problem([flowers, houses])
    assert "houses" in reason and "regression" in reason and "multiclass" in reason


def test_training_run_in_process_writes_info(tmp_path):
    cfg = RunConfig()
    cfg.data.path = str(sample_dataset("churn.csv"))
    cfg.training.epochs = 2
    cfg.training.device = "cpu"
    cfg.training.threads = 1
    cfg.output.logdir = str(tmp_path / "logs")
    cfg.output.checkpoint = str(tmp_path / "churn.pt")
    cfg.output.name = "churn run"
    result = TrainingRun(cfg).execute()
    info = json.loads((result.run_dir / RUN_INFO).read_text())
    assert info["task"] == "binary" and info["status"] == "completed"
    assert info["checkpoint"] == str((tmp_path / "churn.pt").resolve())
    assert info["test"]["loss"] == pytest.approx(result.test["loss"])
    (record,) = list_runs(tmp_path / "logs")
    assert record.name == "churn run" and record.path == result.run_dir


def test_rename_and_delete(cli_logdir, tmp_path):
    logdir = tmp_path / "copy"
    shutil.copytree(cli_logdir, logdir)
    flowers, houses = list_runs(logdir)
    new_path = rename_run(flowers, "iris try 2")
    assert new_path.name.endswith("-iris-try-2") and new_path.name[:15] == flowers.path.name[:15]
    assert [r.name for r in list_runs(logdir)] == ["iris try 2", "houses"]
    with pytest.raises(RunError, match="cannot name a run"):
        rename_run(list_runs(logdir)[0], "///")
    delete_run(list_runs(logdir)[1])
    assert [r.name for r in list_runs(logdir)] == ["iris try 2"]
    not_a_run = tmp_path / "plain"
    not_a_run.mkdir()
    (not_a_run / "keep.txt").write_text("x")
    record = read_run(not_a_run)
    with pytest.raises(RunError, match="not a run folder"):
        delete_run(record)
    assert (not_a_run / "keep.txt").exists()


def test_another_programs_summary_writer_is_a_run(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(tmp_path / "Dec05_plain")) as writer:
        for epoch in range(1, 4):
            writer.add_scalar("loss/validation", 1.0 / epoch, epoch)
            writer.add_scalar("loss/train", 2.0 / epoch, epoch)
    (run,) = list_runs(tmp_path)
    assert run.name == "Dec05_plain" and run.status == "unknown"
    assert run.best_val_loss == pytest.approx(1 / 3)
    with pytest.raises(RunError, match="no saved configuration"):
        run.run_config()


WRITER = textwrap.dedent("""
    import sys, time
    from torch.utils.tensorboard import SummaryWriter
    writer = SummaryWriter(sys.argv[1])
    for step in range(1, 10_000):
        writer.add_scalar("loss/train_step", 1.0 / step, step)
        writer.flush()
        if sys.stdin.readline().strip() != "more":
            break
    writer.close()
""")


def test_reader_reads_only_new_events_of_a_folder_being_written(tmp_path):
    """Another process writes a step and flushes each time it is told to; each poll returns only the new one."""
    run_dir = tmp_path / "live"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(run_dir)], stdin=subprocess.PIPE, text=True,
                            env=cli_env())
    try:
        reader = ScalarReader(run_dir)
        follower = RunFollower(tmp_path)
        seen: list[int] = []
        for step in range(1, 4):
            new: dict = {}
            deadline = time.monotonic() + 60
            while "loss/train_step" not in new and time.monotonic() < deadline:  # it flushes, then waits for us
                new = reader.poll()
            assert new["loss/train_step"][0] == [step]
            started, curves = follower.poll()
            seen.extend(int(s) for s in curves.step_x)
            assert started == (step == 1)
            proc.stdin.write("more\n")
            proc.stdin.flush()
        assert reader.scalars["loss/train_step"][0] == [1, 2, 3]
        assert seen == sorted(set(seen)) and seen[0] == 1  # never a point twice
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)


def test_cli_follow_a_missing_folder_is_one_line(tmp_path):
    result = finish(start_cli(["follow", tmp_path / "nowhere"], tmp_path), timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"nnstudio: error: {tmp_path / 'nowhere'}: no such folder "
                                                  "(give the run's TensorBoard log folder, its [output] logdir)"]


def test_new_style_tensor_scalars_and_text_are_read(tmp_path):
    """SummaryWriter(new_style=True) writes scalars as tensors; the model text as a text-plugin tensor."""
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(tmp_path / "run")) as writer:
        writer.add_text("model/structure", "Linear(4, 2)", 0)
        for step in range(1, 4):
            writer.add_scalar("loss/train_step", step / 10, step, new_style=True)
    reader = ScalarReader(tmp_path / "run")
    reader.poll()
    steps, values = reader.series("loss/train_step")
    assert steps.tolist() == [1, 2, 3] and values == pytest.approx([0.1, 0.2, 0.3])
    (text,) = [t for tag, t in reader.texts.items() if tag.startswith("model/structure")]  # torch adds /text_summary
    assert "Linear(4, 2)" in text
