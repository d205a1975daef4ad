"""`nnstudio train` on image files written by the test: the data line speaks of images, not table rows."""

from __future__ import annotations

import numpy as np
from corehelpers import finish, start_cli
from PIL import Image


def _write_run(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "shapes"
    for k, name in enumerate(("circle", "square", "star")):
        (root / name).mkdir(parents=True)
        for i in range(10):
            size = (12, 10) if i == 9 else (8, 8)  # one image per class is another size: resized to 8×8
            a = rng.integers(0, 40, size, dtype=np.uint8)
            a[k::3] = 220
            Image.fromarray(a).save(root / name / f"{name}_{i}.png")
    (root / "square" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")  # listed and skipped
    toml = tmp_path / "run.toml"
    toml.write_text(
        f"[data]\npath = '{root}'\nsplit = [0.6, 0.2, 0.2]\n\n"
        '[model]\nlayers = [{type = "Flatten"}, {type = "Linear", out_features = "auto"}]\n\n'
        '[training]\nepochs = 1\nbatch_size = 8\ndevice = "cpu"\nthreads = 1\n\n'
        "[output]\ncheckpoint = 'model.pt'\nlogdir = 'runs'\nname = 'img'\n", encoding="utf-8")
    return toml


def test_train_on_an_image_folder_prints_an_image_data_line(tmp_path):
    toml = _write_run(tmp_path)
    done = finish(start_cli(["train", toml], tmp_path))
    assert done.returncode == 0, done.stderr
    line = next(l for l in done.stderr.splitlines() if l.startswith("data: "))
    assert line == "data: shapes: 30 images (1 skipped), 3 classes, 8×8×1, split 18/6/6, 3 resized to 8×8"
    assert "rows" not in line and "inputs" not in line


def test_train_and_export_script_on_a_table_of_image_paths(tmp_path):
    import subprocess
    import sys

    from corehelpers import cli_env

    toml = _write_run(tmp_path)
    root = tmp_path / "shapes"
    rows = [f"{p.relative_to(tmp_path).as_posix()},{p.parent.name}" for p in sorted(root.rglob("*.png"))]
    (tmp_path / "list.csv").write_text("file,shape\n" + "\n".join(rows) + "\n")
    text = toml.read_text().replace(f"path = '{root}'", f"path = '{tmp_path / 'list.csv'}'\nimage_column = \"file\"")
    toml.write_text(text)
    done = finish(start_cli(["train", toml], tmp_path))
    assert done.returncode == 0, done.stderr
    line = next(l for l in done.stderr.splitlines() if l.startswith("data: "))
    assert line == "data: list.csv: 30 images (1 skipped), 3 classes, 8×8×1, split 18/6/6, 3 resized to 8×8"
    done = finish(start_cli(["export", toml, "--script", tmp_path / "train.py"], tmp_path))
    assert done.returncode == 0, done.stderr
    script = (tmp_path / "train.py").read_text()
    assert "IMAGE_COLUMN = 'file'" in script and "LABEL_COLUMN = 'shape'" in script
    ran = subprocess.run([sys.executable, str(tmp_path / "train.py")], cwd=tmp_path, env=cli_env(),
                         capture_output=True, text=True, timeout=240, check=False)
    assert ran.returncode == 0, ran.stderr
    assert "epoch 1/1" in ran.stdout
    # the script's files and split are the run's: the same rows train, validate and test
    import importlib.util

    from nnstudio.core.data.images import load_images

    spec = importlib.util.spec_from_file_location("exported_train", tmp_path / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    files, labels = module.list_images()
    parts = module.split(labels)
    data = load_images(tmp_path / "list.csv", split=(0.6, 0.2, 0.2), image_column="file")
    for name, idx in zip(("train", "val", "test"), parts):
        assert sorted(files[i].relative_to(tmp_path).as_posix() for i in idx) == sorted(data.report["files"][name])
