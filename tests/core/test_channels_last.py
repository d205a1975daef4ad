"""Image batches reach an nnstudio CNN channels-last on the CPU (engine.prefers_channels_last): the same
training to float rounding, the parameters' layout untouched, other models fed as before."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import nnstudio.core.training.engine as engine
from nnstudio.core.data.images import load_images
from nnstudio.core.model.spec import PRESETS, build_model
from nnstudio.core.training.engine import TrainConfig, Trainer, channels_last, predict_batches, prefers_channels_last
from tests.core.test_images import write_folder

CL = torch.channels_last


def _data(tmp_path, mode):
    return load_images(write_folder(tmp_path / mode, classes=("a", "b", "c"), n=12, size=(12, 12), mode=mode),
                       split=(0.5, 0.25, 0.25))


def _fit(data, epochs=2):
    model = build_model(PRESETS["Small CNN"], data.input_shape, data.n_outputs, seed=0,
                        normalization=data.normalization)
    seen = []
    model.layers[0].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    trainer = Trainer(model, data, TrainConfig(epochs=epochs, batch_size=8, seed=0, device="cpu", threads=1))
    trainer.fit()
    return trainer, seen


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_cnn_trains_channels_last_with_the_same_results_and_parameters_as_they_were(tmp_path, monkeypatch, mode):
    data = _data(tmp_path, mode)
    fast, seen = _fit(data)
    # the first convolution saw channels-last batches, one channel included (stride 1 over C)
    assert seen and all(x.stride(1) == 1 and x.is_contiguous(memory_format=CL) for x in seen)
    assert all(p.is_contiguous() for p in fast.model.parameters())  # checkpoints and exports see plain tensors
    monkeypatch.setattr(engine, "prefers_channels_last", lambda model, device: False)
    plain, seen_plain = _fit(data)
    assert all(x.is_contiguous() and (x.shape[1] == 1 or not x.is_contiguous(memory_format=CL)) for x in seen_plain)
    assert len(fast.history) == len(plain.history) == 2
    for a, b in zip(fast.history, plain.history):
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-5)
        # looser: Adam turns the rounding noise in the ~0 gradient of a bias just before BatchNorm into
        # lr-sized steps; the training output ignores that bias, the running mean of eval mode follows it late
        assert a.val_loss == pytest.approx(b.val_loss, rel=1e-3)
        assert a.metrics["accuracy"] == b.metrics["accuracy"]


def test_predictions_match_the_nchw_model(tmp_path):
    data = _data(tmp_path, "RGB")
    model = build_model(PRESETS["Small CNN"], data.input_shape, data.n_outputs, seed=0,
                        normalization=data.normalization).eval()
    X = data.train.X
    with torch.no_grad():
        expected = model(X)
    assert torch.allclose(predict_batches(model, X), expected, atol=1e-5)
    assert torch.allclose(predict_batches(model, X, batch_size=5), expected, atol=1e-5)


def test_only_nnstudio_cnns_on_the_cpu_are_fed_channels_last():
    cpu = torch.device("cpu")
    assert prefers_channels_last(build_model(PRESETS["Small CNN"], (1, 8, 8), 3), cpu)
    assert not prefers_channels_last(build_model(PRESETS["Small CNN"], (1, 8, 8), 3), torch.device("cuda"))
    flat = [{"type": "Flatten"}, {"type": "Linear", "out_features": "auto"}]
    assert not prefers_channels_last(build_model(flat, (1, 8, 8), 3), cpu)  # no convolution to gain
    assert not prefers_channels_last(build_model(PRESETS["MLP 2×64 ReLU"], 64, 3), cpu)  # a table

    class Viewing(nn.Module):  # a user's class may `view` its input, which a channels-last batch refuses
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, x):
            return self.conv(x).view(len(x), -1)

    assert not prefers_channels_last(Viewing(), cpu)
    x = torch.rand(2, 1, 8, 8)
    assert predict_batches(Viewing(), x).shape == (2, 72)


def test_channels_last_keeps_values_and_leaves_other_shapes_alone():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.uint8).reshape(2, 3, 4, 5)
    out = channels_last(x)
    assert torch.equal(out, x) and out.is_contiguous(memory_format=CL)
    one = channels_last(x[:, :1])
    assert torch.equal(one, x[:, :1]) and one.stride() == (20, 1, 5, 1)
    flat = torch.zeros(3, 4)
    assert channels_last(flat) is flat
