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
    "Conv2d": {"out_channels": 16, "kernel_size": 3, "stride": 1, "padding": 0, "bias": True},
    "BatchNorm2d": {"num_features": "auto", "eps": 1e-5, "momentum": 0.1},
    "MaxPool2d": {"kernel_size": 2, "stride": "auto", "padding": 0},
    "AvgPool2d": {"kernel_size": 2, "stride": "auto", "padding": 0},
    "AdaptiveAvgPool2d": {"output_size": 1},
    "Flatten": {},
    "Dropout2d": {"p": 0.1},
}
#: Layers that take (N, C, H, W) only, and those that take (N, features) only.
IMAGE_LAYERS = ("Conv2d", "BatchNorm2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Dropout2d")
FLAT_LAYERS = ("Linear", "BatchNorm1d", "LayerNorm")
#: Whole-number settings and their least allowed value.
_WHOLE = {"out_channels": 1, "kernel_size": 1, "stride": 1, "padding": 0, "output_size": 1}
ACTIVATIONS = ("ReLU", "LeakyReLU", "GELU", "SiLU", "Sigmoid", "Tanh")
NORMS = {"BatchNorm1d": "num_features", "LayerNorm": "normalized_shape", "BatchNorm2d": "num_features"}

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
#: Presets for image data, (N, C, H, W) in: the course notes' first CNN (two conv blocks and a head).
IMAGE_PRESETS: dict[str, list[dict[str, Any]]] = {
    "Small CNN": [
        {"type": "Conv2d", "out_channels": 16, "kernel_size": 3, "padding": 1}, {"type": "BatchNorm2d"},
        {"type": "ReLU"}, {"type": "MaxPool2d", "kernel_size": 2},
        {"type": "Conv2d", "out_channels": 32, "kernel_size": 3, "padding": 1}, {"type": "BatchNorm2d"},
        {"type": "ReLU"}, {"type": "MaxPool2d", "kernel_size": 2},
        {"type": "Flatten"}, {"type": "Dropout", "p": 0.25},
        {"type": "Linear", "out_features": 64}, {"type": "ReLU"},
        {"type": "Linear", "out_features": "auto"},
    ],
}
PRESETS.update(IMAGE_PRESETS)
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
    #: Per-sample shape out of the layer: (features,) or (C, H, W); None where unknown.
    out_dims: tuple[int, ...] | None = None

    @property
    def out_shape(self) -> str:
        if self.out_dims is not None and len(self.out_dims) > 1:
            return "(N, " + ", ".join(map(str, self.out_dims)) + ")"
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
        elif key in _WHOLE:
            if value == "auto" and default == "auto":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < _WHOLE[key]:
                least = "0 or more" if _WHOLE[key] == 0 else "a positive whole number"
                extra = ' or "auto" (the kernel size)' if default == "auto" else ""
                raise ModelSpecError(f"{where} must be {least}{extra}, got {value!r}")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ModelSpecError(f"{where} must be true or false, got {value!r}")
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ModelSpecError(f"{where} must be a number, got {value!r}")
            out[key] = float(value)
    if layer_type in ("Dropout", "Dropout2d") and not 0.0 <= out["p"] < 1.0:
        raise ModelSpecError(f"{layer_label(index, layer_type)}: p must be in [0, 1), got {out['p']}")
    return out


def _dims(in_features: int | tuple[int, ...] | list[int] | None) -> tuple[int, ...] | None:
    if in_features is None:
        return None
    if isinstance(in_features, int):
        return (in_features,)
    return tuple(int(v) for v in in_features)


def _size(dims: tuple[int, ...] | None) -> int | None:
    if dims is None:
        return None
    n = 1
    for d in dims:
        n *= d
    return n


def _pool_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def _step(layer: dict[str, Any], index: int, dims: tuple[int, ...] | None, n_outputs: int,
          last: bool) -> tuple[tuple[int, ...] | None, int, str | None]:
    """One layer's output dims, parameter count and problem (None) from its input dims (None: unknown)."""
    t = layer["type"]
    label = layer_label(index, t)
    if dims is not None and t in FLAT_LAYERS and len(dims) > 1:
        shape = "(N, " + ", ".join(map(str, dims)) + ")"
        return None, 0, f"{label}: gets a {len(dims) + 1}-D input {shape}; add a Flatten layer before it"
    if dims is not None and t in IMAGE_LAYERS and len(dims) != 3:
        return None, 0, (f"{label}: needs image input (N, C, H, W) but gets (N, {', '.join(map(str, dims))}); "
                         "it belongs before the Flatten, on image data")
    if t == "Linear":
        out, error = layer["out_features"], None
        if out == "auto":
            if not last:
                error = f'{label}: out_features "auto" is only allowed on the last Linear layer'
            out = n_outputs
        elif last and out != n_outputs:
            error = (f"{label}: the last Linear layer must output {n_outputs} value(s) for this task, not {out}; "
                     'set out_features to "auto"')
        params = 0 if dims is None else dims[0] * out + (out if layer["bias"] else 0)
        return (out,), params, error
    if t in NORMS:
        wanted = layer[NORMS[t]]
        width = None if dims is None else dims[0]
        error = None
        if width is not None and wanted != "auto" and wanted != width:
            what = "channels" if t == "BatchNorm2d" else "features"
            error = f"{label}: expects {wanted} {what}, gets {width}"
        size = width if wanted == "auto" else wanted
        return dims, 0 if size is None else 2 * size, error
    if t == "Flatten":
        return None if dims is None else (_size(dims),), 0, None
    if dims is None:
        return None, 0, None
    if t == "Conv2d":
        c, h, w = dims
        k, st, pad, out = layer["kernel_size"], layer["stride"], layer["padding"], layer["out_channels"]
        params = c * out * k * k + (out if layer["bias"] else 0)
        size = (out, _pool_out(h, k, st, pad), _pool_out(w, k, st, pad))
    elif t in ("MaxPool2d", "AvgPool2d"):
        c, h, w = dims
        k, pad = layer["kernel_size"], layer["padding"]
        st = k if layer["stride"] == "auto" else layer["stride"]
        if pad > k // 2:
            return None, 0, f"{label}: padding {pad} must be at most half the kernel size ({k})"
        params, size = 0, (c, _pool_out(h, k, st, pad), _pool_out(w, k, st, pad))
    elif t == "AdaptiveAvgPool2d":
        params, size = 0, (dims[0], layer["output_size"], layer["output_size"])
    else:
        return dims, 0, None
    if size[1] < 1 or size[2] < 1:
        return None, params, (f"{label}: its output would be {size[1]}×{size[2]} pixels from {dims[1]}×{dims[2]}, "
                              "below 1 pixel; use a smaller kernel or stride, more padding, or larger images")
    return size, params, None


def analyze(layers: list[dict[str, Any]], in_features: int | tuple[int, ...] | None, n_outputs: int) -> ModelSummary:
    """Shapes, parameter counts and every problem, layer by layer; never raises.

    `in_features`: the width of a table's rows, or (C, H, W) for images; None where not known yet.
    """
    summary = ModelSummary()
    dims = _dims(in_features)
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
                                         dict(raw) if isinstance(raw, dict) else {}, _size(dims), None, 0, str(exc)))
            summary.errors.append(str(exc))
            dims = None
            continue
        settings = {k: v for k, v in layer.items() if k != "type"}
        out, params, error = _step(layer, index, dims, n_outputs, i == last_linear)
        if layer["type"] == "Linear" and out is None:
            out = (n_outputs if layer["out_features"] == "auto" else layer["out_features"],)
        row = LayerRow(index, layer["type"], settings, _size(dims), _size(out), params, error, out)
        summary.rows.append(row)
        if error:
            summary.errors.append(error)
        dims = out
    if dims is not None and len(dims) > 1 and last_linear is not None and not summary.errors:
        summary.errors.append("the model ends on image-shaped output; add Flatten and a Linear layer at the end")
    return summary


def _make_layer(layer: dict[str, Any], dims: tuple[int, ...], n_outputs: int) -> nn.Module:
    t = layer["type"]
    if t == "Linear":
        out = n_outputs if layer["out_features"] == "auto" else layer["out_features"]
        return nn.Linear(dims[0], out, bias=layer["bias"])
    if t in ("BatchNorm1d", "BatchNorm2d"):
        return getattr(nn, t)(dims[0], eps=layer["eps"], momentum=layer["momentum"])
    if t == "LayerNorm":
        return nn.LayerNorm(dims[0], eps=layer["eps"])
    if t in ("Dropout", "Dropout2d"):
        return getattr(nn, t)(layer["p"])
    if t == "LeakyReLU":
        return nn.LeakyReLU(layer["negative_slope"])
    if t == "Conv2d":
        return nn.Conv2d(dims[0], layer["out_channels"], layer["kernel_size"], layer["stride"], layer["padding"],
                         bias=layer["bias"])
    if t in ("MaxPool2d", "AvgPool2d"):
        stride = None if layer["stride"] == "auto" else layer["stride"]
        return getattr(nn, t)(layer["kernel_size"], stride, layer["padding"])
    if t == "AdaptiveAvgPool2d":
        return nn.AdaptiveAvgPool2d(layer["output_size"])
    return getattr(nn, t)()


class ImageInput(nn.Module):
    """Raw 0–255 pixels (uint8 or float) to normalised floats: (x / 255 − mean) / std per channel.

    Part of the model so that training normalises each batch on the device, and an exported ONNX or
    TorchScript file takes raw pixels with the training split's statistics folded in.
    """

    def __init__(self, channels: int, mean: list[float] | None = None, std: list[float] | None = None):
        super().__init__()
        m = torch.tensor(mean if mean is not None else [0.0] * channels, dtype=torch.float32)
        s = torch.tensor(std if std is not None else [1.0] * channels, dtype=torch.float32)
        self.register_buffer("scale", (1.0 / (255.0 * s)).reshape(1, channels, 1, 1))
        self.register_buffer("shift", (-m / s).reshape(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(self.scale.dtype) * self.scale + self.shift


class SpecModel(nn.Module):
    """The network a spec describes, written the way the course notes write one.

    `in_features` is a table's width, or (C, H, W) for images: then `input` (an `ImageInput`) comes first,
    with `normalization` = (mean, std) per channel in 0–1 units.
    """

    def __init__(self, layers: list[dict[str, Any]], in_features: int | tuple[int, ...], n_outputs: int,
                 normalization: tuple[list[float], list[float]] | None = None):
        super().__init__()
        summary = analyze(layers, in_features, n_outputs)
        if not summary.ok:
            raise ModelSpecError(summary.errors[0])
        self.spec = [normalize_layer(layer, i + 1) for i, layer in enumerate(layers)]
        dims = _dims(in_features)
        self.input_shape: tuple[int, ...] | None = dims if len(dims) == 3 else None
        self.in_features = _size(dims)
        self.n_outputs = n_outputs
        if self.input_shape is not None:
            mean, std = normalization if normalization is not None else (None, None)
            self.input = ImageInput(dims[0], mean, std)
        modules = []
        for layer, row in zip(self.spec, summary.rows):
            modules.append(_make_layer(layer, dims, n_outputs))
            dims = row.out_dims
        self.layers = nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_shape is not None:
            x = self.input(x)
        return self.layers(x)


def build_model(layers: list[dict[str, Any]], in_features: int | tuple[int, ...], n_outputs: int,
                seed: int | None = None, normalization: tuple[list[float], list[float]] | None = None) -> SpecModel:
    """The network for a spec; with a seed its initial weights are the same every time."""
    if seed is None:
        return SpecModel(layers, in_features, n_outputs, normalization)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SpecModel(layers, in_features, n_outputs, normalization)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
