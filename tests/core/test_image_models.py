"""Conv2d and friends in the spec, image runs through `nnstudio train/predict/info`, image checkpoints."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nnstudio.core.errors import ModelSpecError
from nnstudio.core.model.checkpoint import load_checkpoint
from nnstudio.core.model.spec import PRESETS, analyze, build_model, normalize_layer
from nnstudio.resources import resource_path
from tests.core.corehelpers import cli_env
from tests.core.test_images import write_folder

CNN = PRESETS["Small CNN"]


def test_shapes_and_parameter_counts_match_torch():
    summary = analyze(CNN, (3, 12, 10), 4)
    assert summary.ok, summary.errors
    assert [r.out_shape for r in summary.rows[:4]] == ["(N, 16, 12, 10)"] * 3 + ["(N, 16, 6, 5)"]
    assert summary.rows[8].out_shape == "(N, 192)"  # 32 × 3 × 2 after the second pool
    model = build_model(CNN, (3, 12, 10), 4, seed=0)
    assert summary.total_params == sum(p.numel() for p in model.parameters())
    for row, module in zip(summary.rows, model.layers):
        assert row.params == sum(p.numel() for p in module.parameters()), row.type
    assert model(torch.zeros(2, 3, 12, 10, dtype=torch.uint8)).shape == (2, 4)


def test_problems_name_the_layer():
    below = analyze([{"type": "Conv2d", "kernel_size": 5}, {"type": "MaxPool2d", "kernel_size": 4},
                     {"type": "Flatten"}, {"type": "Linear", "out_features": "auto"}], (1, 6, 6), 3)
    assert below.errors[0].startswith("layer 2 MaxPool2d: its output would be 0×0 pixels from 2×2, below 1 pixel")
    flat = analyze([{"type": "Conv2d"}, {"type": "Linear", "out_features": "auto"}], (1, 8, 8), 3)
    assert flat.errors == ["layer 2 Linear: gets a 4-D input (N, 16, 6, 6); add a Flatten layer before it"]
    table = analyze([{"type": "Conv2d"}, {"type": "Flatten"}, {"type": "Linear", "out_features": "auto"}], 8, 3)
    assert table.errors[0].startswith("layer 1 Conv2d: needs image input (N, C, H, W) but gets (N, 8)")
    with pytest.raises(ModelSpecError, match="layer 1 Conv2d: kernel_size must be a positive whole number"):
        normalize_layer({"type": "Conv2d", "kernel_size": 0}, 1)
    with pytest.raises(ModelSpecError, match="layer 3 Dropout2d: p must be in"):
        normalize_layer({"type": "Dropout2d", "p": 1.5}, 3)


def test_normalisation_is_folded_into_the_model():
    model = build_model([{"type": "Flatten"}, {"type": "Linear", "out_features": "auto"}], (1, 2, 2), 2,
                        normalization=([0.5], [0.25]))
    x = torch.tensor([[[[0, 255], [128, 64]]]], dtype=torch.uint8)
    expected = (x.float() / 255 - 0.5) / 0.25
    assert torch.allclose(model.input(x), expected, atol=1e-6)


def _run_toml(tmp_path: Path, data: Path, epochs: int = 2, **data_keys) -> Path:
    import tomli_w

    raw = {"data": {"path": str(data), "split": [0.6, 0.2, 0.2], **data_keys}, "model": {"layers": CNN},
           "training": {"epochs": epochs, "batch_size": 16, "seed": 0, "device": "cpu"},
           "output": {"checkpoint": "model.pt", "logdir": "runs"}}
    path = tmp_path / "run.toml"
    path.write_text(tomli_w.dumps(raw))
    return path


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "nnstudio", *map(str, args)], cwd=cwd, env=cli_env(),
                          capture_output=True, text=True, timeout=240)


def test_train_predict_info_resume_on_an_image_folder(tmp_path):
    root = write_folder(tmp_path / "imgs", classes=("a", "b", "c"), n=8, size=(12, 12), mode="RGB")
    toml = _run_toml(tmp_path, root, augment={"hflip": True, "random_crop": 2})
    done = _cli("train", toml, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    ckpt_path = tmp_path / "model.pt"
    raw = torch.load(ckpt_path, weights_only=True)
    pre = raw["preprocessing"]
    assert (pre["kind"], pre["channels"], pre["height"], pre["width"], pre["classes"]) == ("image", 3, 12, 12,
                                                                                           ["a", "b", "c"])
    assert raw["model_spec"]["input_shape"] == [3, 12, 12] and len(pre["mean"]) == 3
    ckpt = load_checkpoint(ckpt_path)
    assert ckpt.model.input_shape == (3, 12, 12)
    info = _cli("info", ckpt_path, cwd=tmp_path)
    assert info.returncode == 0 and "images 12×12, 3 channel(s)" in info.stdout and "(N, 16, 12, 12)" in info.stdout
    (root / "a" / "junk.png").write_bytes(b"")
    out = tmp_path / "p.csv"
    pred = _cli("predict", ckpt_path, root, "--out", out, cwd=tmp_path)
    assert pred.returncode == 0, pred.stderr
    assert "junk.png is empty (0 bytes)" in pred.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 24 and list(rows[0]) == ["file", "prediction", "probability_a", "probability_b",
                                                 "probability_c"]
    assert rows[0]["file"] == "a/a_0.png"
    assert abs(sum(float(rows[0][f"probability_{c}"]) for c in "abc") - 1) < 1e-5
    # the CSV agrees with the loaded model on the same file
    from nnstudio.core.results.predict import predict_images

    one = predict_images(ckpt, root / "b" / "b_3.png")
    row = next(r for r in rows if r["file"] == "b/b_3.png")
    assert one.columns["prediction"][0] == row["prediction"]
    assert float(row["probability_b"]) == pytest.approx(float(one.columns["probability_b"][0]), rel=1e-5)
    resumed = _cli("train", toml, "--resume", ckpt_path, "--epochs", 1, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert load_checkpoint(ckpt_path).epoch == 3


def test_bad_image_config_key_named(tmp_path):
    root = write_folder(tmp_path / "imgs", n=2)
    toml = _run_toml(tmp_path, root, image_size=[0, 8])
    done = _cli("train", toml, cwd=tmp_path)
    assert done.returncode != 0 and "[data] image_size must be [height, width]" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_digits_sample_is_shipped():
    root = resource_path("samples", "digits")
    files = sorted(root.glob("*/*.png"))
    assert len(files) == 1797 and sorted(p.name for p in root.iterdir()) == [str(k) for k in range(10)]
    assert "scikit-learn" in (resource_path("samples", "README.md")).read_text()


def test_torchscript_and_onnx_take_raw_pixels_and_match_the_apps_predictions(tmp_path):
    from nnstudio.core.config import RunConfig
    from nnstudio.core.export.formats import export_checkpoint
    from nnstudio.core.results.predict import predict_images
    from nnstudio.core.run import TrainingRun

    root = write_folder(tmp_path / "imgs", classes=("a", "b"), n=6, size=(8, 8))
    cfg = RunConfig.load(_run_toml(tmp_path, root, epochs=1))
    run = TrainingRun(cfg, tensorboard=False)
    run.execute()
    ckpt = load_checkpoint(tmp_path / "model.pt")
    app = predict_images(ckpt, root)
    import numpy as np
    from PIL import Image

    pixels = torch.stack([torch.from_numpy(np.array(Image.open(p))) for p in app.paths]).float()[:, None]
    report = export_checkpoint(tmp_path / "model.pt", tmp_path / "m.ts", "torchscript")
    assert report.ok
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.load is deprecated; the format is asked for
        scripted = torch.jit.load(str(tmp_path / "m.ts"))
    probs = torch.softmax(scripted(pixels), dim=1).detach().numpy()
    assert abs(probs[:, 1] - app.columns["probability_b"]).max() < 1e-5
    side = json.loads((tmp_path / "m.ts.json").read_text())
    assert side["inputs"]["range"] == "raw pixels 0-255" and side["classes"] == ["a", "b"]
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    assert export_checkpoint(tmp_path / "model.pt", tmp_path / "m.onnx", "onnx").ok
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"features": pixels.numpy()})[0]
    assert abs(torch.softmax(torch.from_numpy(logits), 1)[:, 1].numpy() - app.columns["probability_b"]).max() < 1e-4


@pytest.mark.parametrize("stream", [False, True], ids=["in-memory", "streamed"])
def test_exported_cnn_script_trains_without_nnstudio_and_its_checkpoint_opens(tmp_path, stream):
    root = write_folder(tmp_path / "imgs", classes=("a", "b"), n=6, size=(8, 8))
    toml = _run_toml(tmp_path, root, epochs=2, **({"stream": True, "workers": 2} if stream else {}))
    done = _cli("export", toml, "--script", tmp_path / "train_cnn.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "train_cnn.py").read_text()
    # a streamed run's script decodes in as many DataLoader worker processes as the run did
    assert f"WORKERS = {2 if stream else 0}  #" in text and text.count("num_workers=WORKERS") == 3
    for words in ("class ImageFiles(Dataset)", "self.conv1 = nn.Conv2d(1, 16, kernel_size=3, padding=1)",
                  "self.pool1 = nn.MaxPool2d(kernel_size=2)", "self.fc1 = nn.Linear(128, 64)", "from PIL import Image"):
        assert words in text, words
    # nnstudio blocked: the script needs torch, numpy and Pillow only
    blocker = tmp_path / "block" / "nnstudio"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('nnstudio is blocked in this test')\n")
    env = {**cli_env(), "PYTHONPATH": str(tmp_path / "block")}
    (tmp_path / "model.pt").unlink(missing_ok=True)
    ran = subprocess.run([sys.executable, str(tmp_path / "train_cnn.py")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=240)
    assert ran.returncode == 0, ran.stderr
    ckpt = load_checkpoint(tmp_path / "model.pt")
    assert ckpt.model.input_shape == (1, 8, 8) and ckpt.preprocessor.classes == ["a", "b"] and ckpt.epoch == 2
    from nnstudio.core.results.predict import predict_images

    assert len(predict_images(ckpt, root).files) == 12
