"""core.files.atomic_write: a file changes whole or not at all, and every writer of a user's file uses it."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from nnstudio.core.files import atomic_write


def _temps(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_writes_the_whole_file_through_a_temp_file_beside_it(tmp_path):
    path = tmp_path / "out.csv"
    path.write_bytes(b"old\n")
    with atomic_write(path) as fh:
        fh.write(b"new,")
        [temp] = _temps(tmp_path)
        assert temp.startswith(f".out.csv.{os.getpid()}-")  # the writer's pid: see remove_stale_temp_files
        assert path.read_bytes() == b"old\n"  # a reader meanwhile sees the old file
        fh.write(b"rows\n")
    assert path.read_bytes() == b"new,rows\n"
    assert _temps(tmp_path) == []
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # what a plain open() gives, not mkstemp's 0600


def test_text_mode_and_a_new_file(tmp_path):
    with atomic_write(tmp_path / "p.toml", "w", encoding="utf-8") as fh:
        fh.write("name = \"é\"\n")
    assert (tmp_path / "p.toml").read_bytes() == "name = \"é\"\n".encode("utf-8")


@pytest.mark.parametrize("error", [ValueError("bad row"), KeyboardInterrupt()])
def test_a_failure_in_the_block_keeps_the_old_file_and_removes_the_temp_file(tmp_path, error):
    path = tmp_path / "model.pt"
    path.write_bytes(b"previous")
    with pytest.raises(type(error)):
        with atomic_write(path) as fh:
            fh.write(b"half of the new")
            raise error
    assert path.read_bytes() == b"previous"
    assert _temps(tmp_path) == []


def test_a_full_disk_at_fsync_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    path.write_bytes(b"previous")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as info:
        with atomic_write(path) as fh:
            fh.write(b"new")
    assert info.value.errno == errno.ENOSPC
    assert path.read_bytes() == b"previous"
    assert _temps(tmp_path) == []


def test_a_failed_rename_removes_the_temp_file(tmp_path):
    folder = tmp_path / "taken"
    folder.mkdir()
    (folder / "inside").write_text("kept")
    with pytest.raises(OSError):
        with atomic_write(folder) as fh:  # a folder where the file should go: os.replace refuses
            fh.write(b"new")
    assert (folder / "inside").read_text() == "kept"
    assert _temps(tmp_path) == []


def test_a_missing_folder_is_an_error_before_anything_is_written(tmp_path):
    with pytest.raises(FileNotFoundError):
        with atomic_write(tmp_path / "nowhere" / "x.csv") as fh:
            fh.write(b"never")
    assert list(tmp_path.iterdir()) == []


def _save_checkpoint(path):
    import torch

    from nnstudio.core.model.checkpoint import atomic_torch_save
    from nnstudio.core.errors import CheckpointError

    return CheckpointError, lambda: atomic_torch_save({"w": torch.zeros(3)}, path)


def _save_project(path):
    from nnstudio.core.config import RunConfig
    from nnstudio.core.errors import ConfigError

    return ConfigError, lambda: RunConfig(base_dir=path.parent).save(path)


def _save_predictions(path):
    import numpy as np
    import polars as pl

    from nnstudio.core.errors import DataError
    from nnstudio.core.results.predict import Prediction, TableCheck, save_predictions

    table = pl.DataFrame({"x": [1.5, None]})
    return DataError, lambda: save_predictions(table, Prediction({"prediction": np.array([0.5, 2.0])}, TableCheck()), path)


@pytest.mark.parametrize("writer", [_save_checkpoint, _save_project, _save_predictions])
def test_every_writer_keeps_the_old_file_on_a_full_disk(tmp_path, monkeypatch, writer):
    """Checkpoints, projects and predictions: a full disk is the writer's own error, the old file stays."""
    path = tmp_path / "kept.out"
    error, write = writer(path)
    write()
    good = path.read_bytes()
    assert good and _temps(tmp_path) == []
    path.write_bytes(b"previous")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(error, match="kept.out: could not .*No space left on device.*the previous file, if any, is "
                                    "unchanged"):
        write()
    assert path.read_bytes() == b"previous"
    assert _temps(tmp_path) == []


def test_a_killed_writers_run_json_temp_file_is_removed_before_the_next_run(tmp_path):
    """run.json is written through atomic_write too; a temp file its killed writer left goes at the next run's
    start, one whose writer is alive (pid 1 here) stays."""
    from nnstudio.core.training.outputs import remove_stale_run_temp_files
    from nnstudio.core.results.runs import write_info

    run = tmp_path / "runs" / "20261205-120000-a"
    run.mkdir(parents=True)
    assert write_info(run, {"status": "running", "loss": float("nan")}).read_text() == \
        '{\n "status": "running",\n "loss": null\n}'
    dead = run / ".run.json.999999999-0a1b2c3d.tmp"
    alive = run / ".run.json.1-0a1b2c3d.tmp"
    dead.write_text("{")
    alive.write_text("{")
    remove_stale_run_temp_files(tmp_path / "runs")
    assert not dead.exists() and alive.exists()
    assert sorted(p.name for p in run.iterdir()) == [".run.json.1-0a1b2c3d.tmp", "run.json"]
