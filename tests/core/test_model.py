"""core.model.spec: the plain-data spec, its analysis (shapes, parameters, problems) and the module built from it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nnstudio.core.errors import ModelSpecError
from nnstudio.core.model.spec import IMAGE_PRESETS, PRESETS, SpecModel, analyze, build_model, count_parameters

EVERY_LAYER = [
    {"type": "Linear", "out_features": 32},
    {"type": "BatchNorm1d"},
    {"type": "LeakyReLU", "negative_slope": 0.2},
    {"type": "Dropout", "p": 0.3},
    {"type": "Linear", "out_features": 24, "bias": False},
    {"type": "LayerNorm"},
    {"type": "GELU"},
    {"type": "Linear", "out_features": 8},
    {"type": "SiLU"}, {"type": "Tanh"}, {"type": "Sigmoid"}, {"type": "ReLU"},
    {"type": "Linear", "out_features": "auto"},
]


TABLE_PRESETS = {k: v for k, v in PRESETS.items() if k not in IMAGE_PRESETS}  # image ones: test_image_models.py


@pytest.mark.parametrize("layers", [EVERY_LAYER, *TABLE_PRESETS.values()], ids=["every-layer", *TABLE_PRESETS])
@pytest.mark.parametrize("n_outputs", [1, 3])
def test_analysis_matches_the_built_module(layers, n_outputs):
    summary = analyze(layers, 7, n_outputs)
    assert summary.ok, summary.errors
    model = build_model(layers, 7, n_outputs)
    assert len(summary.rows) == len(model.layers) == len(layers)
    for row, module in zip(summary.rows, model.layers):
        assert row.params == sum(p.numel() for p in module.parameters()), row
        assert row.type == type(module).__name__
    assert summary.total_params == count_parameters(model)
    x = torch.randn(5, 7)
    model.eval()
    for row, module in zip(summary.rows, model.layers):
        x = module(x)
        assert row.out_shape == f"(N, {x.shape[1]})"
    assert x.shape == (5, n_outputs)


def test_norm_size_mismatch_names_layer_and_sizes():
    layers = [{"type": "Linear", "out_features": 32}, {"type": "ReLU"}, {"type": "BatchNorm1d", "num_features": 64},
              {"type": "Linear", "out_features": "auto"}]
    summary = analyze(layers, 4, 3)
    assert summary.errors == ["layer 3 BatchNorm1d: expects 64 features, gets 32"]
    assert summary.rows[2].error == summary.errors[0]
    with pytest.raises(ModelSpecError, match="layer 3 BatchNorm1d: expects 64 features, gets 32"):
        SpecModel(layers, 4, 3)
    layers[2] = {"type": "LayerNorm", "normalized_shape": 16}
    assert analyze(layers, 4, 3).errors == ["layer 3 LayerNorm: expects 16 features, gets 32"]


def test_auto_out_features_fits_the_task():
    for n in (1, 2, 5):
        model = build_model([{"type": "Linear", "out_features": "auto"}], 3, n)
        assert model.layers[0].out_features == n
    errors = analyze([{"type": "Linear", "out_features": "auto"}, {"type": "Linear", "out_features": "auto"}], 3, 2).errors
    assert errors and errors[0].startswith("layer 1 Linear") and "last Linear" in errors[0]
    errors = analyze([{"type": "Linear", "out_features": 4}], 3, 2).errors
    assert errors and "layer 1 Linear" in errors[0] and "2" in errors[0] and "auto" in errors[0]


@pytest.mark.parametrize("layers, words", [
    ([{"type": "Conv2d"}, {"type": "Linear", "out_features": "auto"}], ["layer 1", "Conv2d"]),
    ([{"out_features": 4}, {"type": "Linear", "out_features": "auto"}], ["layer 1", "type"]),
    ([{"type": "Linear", "out_features": "auto", "units": 3}], ["layer 1 Linear", "units"]),
    ([{"type": "Linear", "out_features": 0}, {"type": "Linear", "out_features": "auto"}], ["layer 1 Linear", "out_features"]),
    ([{"type": "Linear", "out_features": 2.5}, {"type": "Linear", "out_features": "auto"}], ["layer 1 Linear", "out_features"]),
    ([{"type": "Linear", "out_features": "auto", "bias": "yes"}], ["layer 1 Linear", "bias"]),
    ([{"type": "Linear", "out_features": 8}, {"type": "Dropout", "p": 1.5}, {"type": "Linear", "out_features": "auto"}],
     ["layer 2 Dropout", "p"]),
    ([{"type": "Linear", "out_features": 8}, {"type": "LeakyReLU", "negative_slope": "x"},
      {"type": "Linear", "out_features": "auto"}], ["layer 2 LeakyReLU", "negative_slope"]),
    ([{"type": "ReLU"}], ["Linear"]),
    ([], ["no layers"]),
])
def test_bad_specs_name_the_layer_and_setting(layers, words):
    summary = analyze(layers, 4, 2)  # never raises
    assert not summary.ok
    assert all(w in summary.errors[0] for w in words), summary.errors
    with pytest.raises(ModelSpecError) as info:
        build_model(layers, 4, 2)
    assert all(w in str(info.value) for w in words)


def test_spec_model_is_a_plain_module_with_init_and_forward():
    assert issubclass(SpecModel, nn.Module)
    assert "__init__" in SpecModel.__dict__ and "forward" in SpecModel.__dict__
    model = build_model(PRESETS["MLP 2×64 ReLU"], 6, 4)
    out = model(torch.randn(10, 6))
    assert out.shape == (10, 4)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert model.spec[-1]["out_features"] == "auto"  # the spec is kept as written (with defaults filled)
    assert model.spec[0] == {"type": "Linear", "out_features": 64, "bias": True}
