"""The model spec (a plain list of layer dicts) and the `nn.Module` built from it.

A spec is what the builder edits, what a run config stores and what a checkpoint carries:
``[{"type": "Linear", "out_features": 64}, {"type": "ReLU"}, {"type": "Linear", "out_features": "auto"}]``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from nnstudio.core.errors import ModelSpecError

#: Every layer type the builder offers, with its settings and their defaults.
LAYER_DEFAULTS: dict[str, dict[str, Any]] = {
    "Linear": {"out_features": 64, "bias": True},
    "ReLU": {},
    "LeakyReLU": {"negative_slope": 0.01},
    "GELU": {},
    "SiLU": {},
    "Sigmoid": {},
    "Tanh": {},
    "Dropout": {"p": 0.1},
    "BatchNorm1d": {"num_features": "auto", "eps": 1e-5, "momentum": 0.1},
    "LayerNorm": {"normalized_shape": "auto", "eps": 1e-5},
}
ACTIVATIONS = ("ReLU", "LeakyReLU", "GELU", "SiLU", "Sigmoid", "Tanh")
NORMS = {"BatchNorm1d": "num_features", "LayerNorm": "normalized_shape"}

PRESETS: dict[str, list[dict[str, Any]]] = {
    "Logistic / linear regression": [{"type": "Linear", "out_features": "auto"}],
    "MLP 2×64 ReLU": [
        {"type": "Linear", "out_features": 64}, {"type": "ReLU"},
        {"type": "Linear", "out_features": 64}, {"type": "ReLU"},
        {"type": "Linear", "out_features": "auto"},
    ],
    "MLP with BatchNorm and Dropout": [
        {"type": "Linear", "out_features": 128}, {"type": "BatchNorm1d"}, {"type": "ReLU"}, {"type": "Dropout", "p": 0.2},
        {"type": "Linear", "out_features": 64}, {"type": "BatchNorm1d"}, {"type": "ReLU"}, {"type": "Dropout", "p": 0.2},
        {"type": "Linear", "out_features": "auto"},
    ],
}
DEFAULT_PRESET = "MLP 2×64 ReLU"


def default_layers() -> list[dict[str, Any]]:
    return copy.deepcopy(PRESETS[DEFAULT_PRESET])


@dataclass
class LayerRow:
    index: int  # 1-based, as people count
    type: str
    settings: dict[str, Any]
    in_features: int | None
    out_features: int | None
    params: int
    error: str | None = None

    @property
    def out_shape(self) -> str:
        return "?" if self.out_features is None else f"(N, {self.out_features})"


@dataclass
class ModelSummary:
    rows: list[LayerRow] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def total_params(self) -> int:
        return sum(r.params for r in self.rows)


def layer_label(index: int, layer_type: str) -> str:
    return f"layer {index} {layer_type}"


def normalize_layer(layer: dict[str, Any], index: int) -> dict[str, Any]:
    """Fill defaults and check setting names and types; raise ModelSpecError naming the layer."""
    if not isinstance(layer, dict) or "type" not in layer:
        raise ModelSpecError(f"layer {index}: expected a table with a 'type' key, got {layer!r}")
    layer_type = layer["type"]
    if not isinstance(layer_type, str) or layer_type not in LAYER_DEFAULTS:
        known = ", ".join(LAYER_DEFAULTS)
        raise ModelSpecError(f"layer {index}: unknown type '{layer_type}'; known types: {known}")
    defaults = LAYER_DEFAULTS[layer_type]
    unknown = set(layer) - set(defaults) - {"type"}
    if unknown:
        raise ModelSpecError(f"{layer_label(index, layer_type)}: unknown setting(s) {', '.join(sorted(map(str, unknown)))}; "
                             f"allowed: {', '.join(defaults) or 'none'}")
    out = {"type": layer_type, **defaults, **{k: v for k, v in layer.items() if k != "type"}}
    for key, default in defaults.items():
        value = out[key]
        where = f"{layer_label(index, layer_type)}: {key}"
        if key in ("out_features", "num_features", "normalized_shape"):
            if value != "auto" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ModelSpecError(f"{where} must be a positive whole number or \"auto\", got {value!r}")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ModelSpecError(f"{where} must be true or false, got {value!r}")
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ModelSpecError(f"{where} must be a number, got {value!r}")
            out[key] = float(value)
    if layer_type == "Dropout" and not 0.0 <= out["p"] < 1.0:
        raise ModelSpecError(f"{layer_label(index, layer_type)}: p must be in [0, 1), got {out['p']}")
    return out


def analyze(layers: list[dict[str, Any]], in_features: int, n_outputs: int) -> ModelSummary:
    """Shapes, parameter counts and every problem, layer by layer; never raises."""
    summary = ModelSummary()
    width: int | None = in_features
    last_linear = max((i for i, l in enumerate(layers) if isinstance(l, dict) and l.get("type") == "Linear"),
                      default=None)
    if not layers:
        summary.errors.append("the model has no layers; add at least one Linear layer")
    elif last_linear is None:
        summary.errors.append("the model needs at least one Linear layer to produce outputs")
    for i, raw in enumerate(layers):
        index = i + 1
        try:
            layer = normalize_layer(raw, index)
        except ModelSpecError as exc:
            summary.rows.append(LayerRow(index, str(raw.get("type", "?")) if isinstance(raw, dict) else "?",
                                         dict(raw) if isinstance(raw, dict) else {}, width, None, 0, str(exc)))
            summary.errors.append(str(exc))
            width = None
            continue
        layer_type = layer["type"]
        settings = {k: v for k, v in layer.items() if k != "type"}
        row = LayerRow(index, layer_type, settings, width, width, 0)
        if layer_type == "Linear":
            out = layer["out_features"]
            if out == "auto":
                if i != last_linear:
                    row.error = f"{layer_label(index, layer_type)}: out_features \"auto\" is only allowed on the last Linear layer"
                out = n_outputs
            elif i == last_linear and out != n_outputs:
                row.error = (f"{layer_label(index, layer_type)}: the last Linear layer must output {n_outputs} "
                             f"value(s) for this task, not {out}; set out_features to \"auto\"")
            row.out_features = out
            if width is not None:
                row.params = width * out + (out if layer["bias"] else 0)
        elif layer_type in NORMS:
            key = NORMS[layer_type]
            wanted = layer[key]
            if width is not None and wanted != "auto" and wanted != width:
                row.error = f"{layer_label(index, layer_type)}: expects {wanted} features, gets {width}"
            size = width if wanted == "auto" else wanted
            if size is not None:
                row.params = 2 * size
        summary.rows.append(row)
        if row.error:
            summary.errors.append(row.error)
        width = row.out_features
    return summary


def _make_layer(layer: dict[str, Any], width: int, n_outputs: int) -> tuple[nn.Module, int]:
    t = layer["type"]
    if t == "Linear":
        out = n_outputs if layer["out_features"] == "auto" else layer["out_features"]
        return nn.Linear(width, out, bias=layer["bias"]), out
    if t == "BatchNorm1d":
        return nn.BatchNorm1d(width, eps=layer["eps"], momentum=layer["momentum"]), width
    if t == "LayerNorm":
        return nn.LayerNorm(width, eps=layer["eps"]), width
    if t == "Dropout":
        return nn.Dropout(layer["p"]), width
    if t == "LeakyReLU":
        return nn.LeakyReLU(layer["negative_slope"]), width
    return getattr(nn, t)(), width


class SpecModel(nn.Module):
    """The network a spec describes, written the way the course notes write one."""

    def __init__(self, layers: list[dict[str, Any]], in_features: int, n_outputs: int):
        super().__init__()
        summary = analyze(layers, in_features, n_outputs)
        if not summary.ok:
            raise ModelSpecError(summary.errors[0])
        self.spec = [normalize_layer(layer, i + 1) for i, layer in enumerate(layers)]
        self.in_features = in_features
        self.n_outputs = n_outputs
        modules, width = [], in_features
        for layer in self.spec:
            module, width = _make_layer(layer, width, n_outputs)
            modules.append(module)
        self.layers = nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def build_model(layers: list[dict[str, Any]], in_features: int, n_outputs: int, seed: int | None = None) -> SpecModel:
    """The network for a spec; with a seed its initial weights are the same every time."""
    if seed is None:
        return SpecModel(layers, in_features, n_outputs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SpecModel(layers, in_features, n_outputs)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
