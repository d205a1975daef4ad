"""Image datasets read from real files written by the tests: layouts, formats, bad files, split, stats."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nnstudio.core.data.augment import Augment
from nnstudio.core.data.images import (
    ImagePreprocessor,
    load_images,
    preprocessor_from_dict,
    scan_folder,
)
from nnstudio.core.errors import DataError


def write_folder(root: Path, classes=("cat", "dog"), n=6, size=(10, 12), mode="L", fmt="png") -> Path:
    """n images per class; class k's pixels are bright in a band so a model can tell them apart."""
    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            h, w = size
            a = rng.integers(0, 40, (h, w, 3) if mode in ("RGB", "RGBA") else (h, w), dtype=np.uint8)
            a[k::len(classes)] = 200 + k * 20
            img = Image.fromarray(a)
            if mode == "RGBA":
                img = img.convert("RGBA")
            img.save(d / f"{name}_{i}.{fmt}")
    return root


def test_folder_layout_classes_sorted_split_stratified_and_stats_from_training_only(tmp_path):
    root = write_folder(tmp_path / "imgs", classes=("zebra", "ant", "moth"), n=10)
    data = load_images(root, split=(0.6, 0.2, 0.2), seed=3)
    pre = data.preprocessor
    assert pre.classes == ["ant", "moth", "zebra"]
    assert pre.input_shape == (1, 10, 12) and data.train.X.dtype == torch.uint8
    assert data.train.X.shape[1:] == (1, 10, 12)
    assert (len(data.train), len(data.val), len(data.test)) == (18, 6, 6)
    assert torch.bincount(data.val.y, minlength=3).tolist() == [2, 2, 2]  # stratified
    train = data.train.X.double() / 255
    assert pre.mean[0] == pytest.approx(float(train.mean()), abs=1e-9)
    assert pre.std[0] == pytest.approx(float(train.std(unbiased=False)), abs=1e-9)
    whole = torch.cat([data.train.X, data.val.X, data.test.X]).double() / 255
    assert pre.mean[0] != pytest.approx(float(whole.mean()), abs=1e-9)
    again = load_images(root, split=(0.6, 0.2, 0.2), seed=3)
    assert data.report["files"] == again.report["files"]
    assert torch.equal(data.train.X, again.train.X)
    # the pixels are the file's pixels
    first = data.report["files"]["train"][0]
    assert np.array_equal(np.asarray(Image.open(root / first)), data.train.X[0, 0].numpy())


@pytest.mark.parametrize("fmt", ["png", "jpg", "bmp", "gif", "webp", "tiff"])
def test_every_format_decodes(tmp_path, fmt):
    root = write_folder(tmp_path / "imgs", n=3, mode="RGB", fmt=fmt)
    data = load_images(root, split=(0.5, 0.5, 0.0))
    assert data.preprocessor.channels == 3
    assert data.report["rows_used"] == 6


def test_rgba_on_white_and_channels_auto(tmp_path):
    root = tmp_path / "imgs"
    for name, colour in (("a", (255, 0, 0, 0)), ("b", (0, 0, 255, 255))):
        (root / name).mkdir(parents=True)
        for i in range(3):
            Image.new("RGBA", (4, 4), colour).save(root / name / f"{i}.png")
    data = load_images(root, split=(1.0, 0.0, 0.0))
    X = data.train.X
    a = X[data.train.y == 0][0]
    assert a.unique().tolist() == [255]  # fully transparent red is white paper
    b = X[data.train.y == 1][0]
    assert b[:, 0, 0].tolist() == [0, 0, 255]
    grey = write_folder(tmp_path / "grey", n=2)
    assert load_images(grey, split=(1.0, 0.0, 0.0)).preprocessor.channels == 1
    assert load_images(grey, split=(1.0, 0.0, 0.0), channels=3).preprocessor.channels == 3


def test_most_common_size_and_resize_reported(tmp_path):
    root = write_folder(tmp_path / "imgs", n=4, size=(8, 8))
    Image.new("L", (20, 16), 128).save(root / "cat" / "big.png")
    data = load_images(root, split=(1.0, 0.0, 0.0))
    assert data.preprocessor.input_shape == (1, 8, 8) and data.report["resized"] == 1
    fixed = load_images(root, image_size=[6, 5], split=(1.0, 0.0, 0.0))
    assert fixed.train.X.shape[1:] == (1, 6, 5) and fixed.report["resized"] == 9


def test_bad_files_listed_skipped_counted_or_fail(tmp_path):
    root = write_folder(tmp_path / "imgs", n=4)
    (root / "cat" / "notes.txt").write_text("not a picture")
    (root / "cat" / "empty.png").write_bytes(b"")
    (root / "dog" / "fake.png").write_bytes(b"this is text pretending to be a png")
    good = (root / "dog" / "dog_0.png").read_bytes()
    (root / "dog" / "cut.png").write_bytes(good[: len(good) // 2])
    os.symlink(root / "dog" / "loop_b.png", root / "dog" / "loop_a.png")
    os.symlink(root / "dog" / "loop_a.png", root / "dog" / "loop_b.png")
    os.symlink(root, root / "cat" / "up")  # a folder link back up
    locked = root / "cat" / "locked.png"
    locked.write_bytes(good)
    locked.chmod(0)
    try:
        data = load_images(root, split=(1.0, 0.0, 0.0))
        with pytest.raises(DataError, match=r"^cat/\S+ .*\(skip unreadable files with \[data\] on_bad"):
            load_images(root, split=(1.0, 0.0, 0.0), on_bad="fail")
    finally:
        locked.chmod(0o644)
    text = "\n".join(data.report["skipped"])
    assert data.report["rows_used"] == (8 if os.geteuid() != 0 else 9)  # root reads a chmod-0 file
    for name, why in (("notes.txt", "not an image file"), ("empty.png", "empty (0 bytes)"),
                      ("fake.png", "not an image"), ("cut.png", "truncated"), ("loop_a.png", "cannot be opened"),
                      ("up", "symbolic link loop")):
        assert any(name in line and why in line for line in data.report["skipped"]), (name, text)
    if os.geteuid() != 0:
        assert "locked.png cannot be read (permission denied)" in text
    assert data.report["n_skipped"] == len(data.report["skipped"])


def test_decompression_bomb_named_with_pillows_limit(tmp_path):
    root = write_folder(tmp_path / "imgs", n=2)
    Image.new("1", (10000, 9000)).save(root / "cat" / "bomb.png")  # 90 M pixels, a few kB on disk
    data = load_images(root, split=(1.0, 0.0, 0.0))
    line = next(s for s in data.report["skipped"] if "bomb.png" in s)
    assert "decompression-bomb limit of 89,478,485" in line and "MAX_IMAGE_PIXELS" in line


def test_empty_class_single_class_and_no_folders_one_sentence(tmp_path):
    root = write_folder(tmp_path / "a", n=2)
    (root / "empty").mkdir()
    with pytest.raises(DataError, match=r"class folder 'empty' has no readable images"):
        load_images(root)
    one = write_folder(tmp_path / "b", classes=("only",), n=3)
    with pytest.raises(DataError, match=r"only one class \('only'\)"):
        load_images(one)
    flat = tmp_path / "c"
    flat.mkdir()
    Image.new("L", (4, 4)).save(flat / "x.png")
    with pytest.raises(DataError, match="has no class folders"):
        load_images(flat)


def test_table_with_image_column(tmp_path):
    root = write_folder(tmp_path / "imgs", n=4)
    rows = ["path,kind"] + [f"imgs/{c}/{c}_{i}.png,{c.upper()}" for c in ("cat", "dog") for i in range(4)]
    rows.append("imgs/cat/missing.png,CAT")
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    data = load_images(tmp_path / "list.csv", image_column="path", split=(1.0, 0.0, 0.0))
    assert data.preprocessor.classes == ["CAT", "DOG"] and data.report["rows_used"] == 8
    assert any("missing.png does not exist" in s for s in data.report["skipped"])
    with pytest.raises(DataError, match="image_column 'file' is not a column"):
        load_images(tmp_path / "list.csv", image_column="file")


def test_preprocessor_round_trips_plain_values(tmp_path):
    data = load_images(write_folder(tmp_path / "imgs", n=3), split=(1.0, 0.0, 0.0))
    d = data.preprocessor.to_dict()
    back = preprocessor_from_dict(d)
    assert isinstance(back, ImagePreprocessor) and back.to_dict() == d
    with pytest.raises(ValueError):
        preprocessor_from_dict({**d, "mean": [0.1, 0.2]})


def test_augment_keeps_shape_range_and_changes_only_when_asked():
    torch.manual_seed(0)
    x = torch.randint(0, 256, (16, 3, 9, 9), dtype=torch.uint8)
    flip = Augment(hflip=True)(x)
    flipped = (flip == x.flip(-1).float()).flatten(1).all(1)
    same = (flip == x.float()).flatten(1).all(1)
    assert bool((flipped | same).all()) and 0 < int(flipped.sum()) < 16
    crop = Augment(random_crop=2)(x)
    assert crop.shape == x.shape
    shifted = crop[:, :, 2:-2, 2:-2]
    assert any(torch.equal(shifted[i], x[i, :, 2 + dy:7 + dy, 2 + dx:7 + dx].float())
               for i in range(16) for dy in (-2, -1, 0, 1, 2) for dx in (-2, -1, 0, 1, 2))
    for aug in (Augment(rotation=30), Augment(color_jitter=0.5)):
        out = aug(x)
        assert out.shape == x.shape and out.min() >= 0 and out.max() <= 255 and not torch.equal(out, x.float())
    assert Augment.from_dict({}) is None
    with pytest.raises(DataError, match=r"\[data.augment\] rotation must be a number"):
        Augment.from_dict({"rotation": "x"})
    with pytest.raises(DataError, match="unknown key"):
        Augment.from_dict({"flip": True})


def test_scan_reports_counts(tmp_path):
    source = scan_folder(write_folder(tmp_path / "imgs", classes=("b", "a"), n=3))
    assert source.class_counts() == {"a": 3, "b": 3}
