"""Image datasets too large for memory stream from disk through `Dataset` + `DataLoader` workers (issue 21),
and train, evaluate, cross-validate and predict exactly as the in-memory path does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from nnstudio.core.config import RunConfig
from nnstudio.core.data import iter_batches
from nnstudio.core.data.image_stream import ImageStream
from nnstudio.core.data.images import load_images
from nnstudio.core.errors import ConfigError, DataError
from tests.core.corehelpers import cli_env
from tests.core.test_image_models import CNN
from tests.core.test_images import write_folder


def _cfg(tmp_path: Path, root: Path, **data_keys) -> RunConfig:
    return RunConfig.from_dict({
        "data": {"path": str(root), "split": [0.6, 0.2, 0.2], "seed": 1, **data_keys}, "model": {"layers": CNN},
        "training": {"epochs": 2, "batch_size": 8, "seed": 0, "device": "cpu", "threads": 1},
        "output": {"checkpoint": str(tmp_path / "m.pt"), "logdir": str(tmp_path / "runs")}}, base_dir=tmp_path)


def test_streamed_split_is_the_in_memory_split_decoded_on_demand(tmp_path):
    root = write_folder(tmp_path / "imgs", classes=("a", "b", "c"), n=10, size=(9, 11), mode="RGB")
    mem = load_images(root, split=(0.6, 0.2, 0.2), seed=2)
    st = load_images(root, split=(0.6, 0.2, 0.2), seed=2, stream=True, workers=2)
    assert isinstance(st.train.X, ImageStream) and isinstance(mem.train.X, torch.Tensor)
    assert st.report["storage"] == "stream" and mem.report["storage"] == "memory"
    assert st.train.X.shape == mem.train.X.shape and st.report["files"] == mem.report["files"]
    # the statistics come from the training split in both (one pass over the files that stay on disk)
    assert st.preprocessor.mean == mem.preprocessor.mean and st.preprocessor.std == mem.preprocessor.std
    for name in ("train", "val", "test"):
        a, b = getattr(mem, name), getattr(st, name)
        assert torch.equal(b.X[:], a.X) and torch.equal(b.y, a.y)
    assert torch.equal(st.test.X[3], mem.test.X[3])
    assert torch.equal(st.test.X.index_select(0, torch.tensor([4, 0])), mem.test.X[[4, 0]])
    # the same epoch order from the same generator, batch for batch, through the DataLoader's workers
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    mine = list(iter_batches(mem.train, 7, True, g1))
    theirs = list(iter_batches(st.train, 7, True, g2))
    assert len(mine) == len(theirs) == 3
    assert all(torch.equal(x, u) and torch.equal(y, v) for (x, y), (u, v) in zip(mine, theirs))


def test_auto_streams_what_would_not_fit_and_false_decodes_anyway(tmp_path):
    root = write_folder(tmp_path / "imgs", n=3)
    auto = load_images(root, memory_share=1e-12)
    assert auto.report["storage"] == "stream" and "over" in auto.report["storage_note"]
    assert "of the free memory" in auto.report["storage_note"]
    forced = load_images(root, memory_share=1e-12, stream=False)
    assert forced.report["storage"] == "memory" and isinstance(forced.train.X, torch.Tensor)


def test_damaged_files_are_found_before_training_and_a_changed_file_is_named(tmp_path):
    root = write_folder(tmp_path / "imgs", n=6)
    good = (root / "dog" / "dog_0.png").read_bytes()
    (root / "dog" / "cut.png").write_bytes(good[: len(good) // 2])  # passes the header probe, fails to decode
    mem = load_images(root, split=(1.0, 0.0, 0.0))
    st = load_images(root, split=(1.0, 0.0, 0.0), stream=True, workers=1)
    assert st.report["skipped"] == mem.report["skipped"] and any("cut.png" in s for s in st.report["skipped"])
    assert len(st.train) == len(mem.train) == 12 and st.preprocessor.mean == mem.preprocessor.mean
    with pytest.raises(DataError, match=r"^dog/cut\.png is truncated"):
        load_images(root, split=(1.0, 0.0, 0.0), stream=True, on_bad="fail")
    # a file that decoded when the dataset was opened and is damaged afterwards: named, not a silent hole
    victim = st.train.X.files[0]
    victim.write_bytes(victim.read_bytes()[:30])
    with pytest.raises(DataError, match=rf"{victim.parent.name}/{victim.name} .*was it changed"):
        list(iter_batches(st.train, 4, False))
    with pytest.raises(DataError, match="was it changed"):
        st.train.X[:]


def test_a_streamed_run_trains_the_same_model_as_an_in_memory_run(tmp_path):
    from nnstudio.core.run import TrainingRun

    root = write_folder(tmp_path / "imgs", classes=("a", "b", "c"), n=8, size=(12, 12), mode="RGB")
    results = []
    for stream in (False, True):
        cfg = _cfg(tmp_path, root, stream=stream, workers=1, augment={"hflip": True})
        run = TrainingRun(cfg, tensorboard=False, checkpoint=False)
        assert run.data.report["storage"] == ("stream" if stream else "memory")
        result = run.execute()
        results.append((result, {k: v.clone() for k, v in run.model.state_dict().items()}))
    (a, wa), (b, wb) = results
    assert a.finished.steps == b.finished.steps > 0
    assert all(torch.allclose(wa[k].float(), wb[k].float(), atol=1e-6) for k in wa)
    assert a.test == pytest.approx(b.test, rel=1e-5)


def test_cross_validation_folds_of_a_streamed_dataset(tmp_path):
    from nnstudio.core.experiments.cv import cross_validate, fold_data, pooled, stratified_folds

    root = write_folder(tmp_path / "imgs", n=8, size=(8, 8))
    cfg = _cfg(tmp_path, root, stream=True, workers=0)
    from nnstudio.core.run import load_data

    data = load_data(cfg)
    rows = pooled(data)
    assert isinstance(rows.X, ImageStream) and len(rows.X) == len(data.train) + len(data.val)
    assignment = stratified_folds(rows.y, 2, 0)
    fold = fold_data(data, assignment, 0)
    assert isinstance(fold.train.X, ImageStream) and len(fold.train) + len(fold.val) == len(rows)
    assert torch.equal(fold.val.X[:], rows.X[np.flatnonzero(assignment == 0)])
    cv = cross_validate(cfg, 2, data=data)
    in_memory = cross_validate(_cfg(tmp_path, root, stream=False), 2)
    assert len(cv.folds) == 2 and "val_accuracy" in cv.mean
    assert cv.mean == pytest.approx(in_memory.mean, rel=1e-5)


def test_predicting_a_folder_decodes_it_a_batch_at_a_time(tmp_path):
    from nnstudio.core.model.checkpoint import load_checkpoint
    from nnstudio.core.results.predict import predict_images
    from nnstudio.core.run import TrainingRun

    root = write_folder(tmp_path / "imgs", n=6, size=(8, 8))
    cfg = _cfg(tmp_path, root)
    TrainingRun(cfg, tensorboard=False).execute()
    ckpt = load_checkpoint(tmp_path / "m.pt")
    (root / "cat" / "zero.png").write_bytes(b"")
    whole, small = predict_images(ckpt, root), predict_images(ckpt, root, batch=5)
    assert whole.files == small.files and len(whole.files) == 12
    assert any("zero.png" in s for s in small.skipped)
    assert np.allclose(whole.columns["probability_cat"], small.columns["probability_cat"], atol=1e-6)


@pytest.mark.parametrize("key, value, words", [("stream", "yes", "[data] stream must be"),
                                               ("workers", -1, "[data] workers must be"),
                                               ("workers", True, "[data] workers must be")])
def test_bad_stream_keys_are_named(key, value, words):
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("]", r"\]")):
        RunConfig.from_dict({"data": {"path": "x", key: value}})


def test_cli_trains_a_streamed_folder_with_worker_processes(tmp_path):
    import tomli_w

    root = write_folder(tmp_path / "imgs", classes=("a", "b"), n=10, size=(10, 10))
    raw = {"data": {"path": str(root), "stream": True, "workers": 2, "split": [0.6, 0.2, 0.2]},
           "model": {"layers": CNN}, "training": {"epochs": 2, "batch_size": 4, "device": "cpu"},
           "output": {"checkpoint": "model.pt", "logdir": "runs"}}
    (tmp_path / "run.toml").write_text(tomli_w.dumps(raw))
    done = subprocess.run([sys.executable, "-m", "nnstudio", "train", "run.toml"], cwd=tmp_path, env=cli_env(),
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert "streamed from disk" in done.stderr.splitlines()[0]  # the data line says so
    from nnstudio.core.model.checkpoint import load_checkpoint

    assert load_checkpoint(tmp_path / "model.pt").epoch == 2
    resumed = subprocess.run([sys.executable, "-m", "nnstudio", "train", "run.toml", "--resume", "model.pt",
                              "--epochs", "1"], cwd=tmp_path, env=cli_env(), capture_output=True, text=True,
                             timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    assert load_checkpoint(tmp_path / "model.pt").epoch == 3
    assert sorted(p.name for p in (tmp_path / "runs").glob("*/last.pt"))  # autosave kept the streamed run too


def test_the_course_style_dataset_still_collates_image_by_image(tmp_path):
    from nnstudio.core.data.image_stream import ImageFileDataset

    root = write_folder(tmp_path / "imgs", n=3, size=(6, 5))
    files = sorted(root.glob("*/*.png"))
    loader = torch.utils.data.DataLoader(ImageFileDataset(files, [0, 0, 0, 1, 1, 1], 1, (6, 5)), batch_size=4)
    xb, yb = next(iter(loader))
    assert xb.shape == (4, 1, 6, 5) and xb.dtype == torch.uint8 and yb.tolist() == [0, 0, 0, 1]
