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
