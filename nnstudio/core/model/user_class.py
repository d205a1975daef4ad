"""Open a checkpoint with the user's own model class from a `.py` file (File → Open model class from a Python file…).

Running that file runs code, so the caller must have asked the person first: `classes_in` reads the file
with `ast` only (nothing runs) to name its candidate classes for the question. The instantiated model's
`forward` is traced with torch.fx into the builder's layers; the rebuilt model is checked to predict
exactly like the user's own before it is returned.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nnstudio.core.model.checkpoint import (LoadedCheckpoint, _read, check_model_size, check_state, unwrap_state_dict)
from nnstudio.core.model.infer import STATE_KEYS
from nnstudio.core.errors import CheckpointError, NNStudioError
from nnstudio.core.files import regular_file
from nnstudio.core.model.spec import SpecModel

#: Keys under which a checkpoint may store the arguments of the model's __init__.
ARG_KEYS = ("model_args", "model_kwargs", "init_args", "kwargs", "hyperparameters", "hparams", "args")


class NeedsArguments(CheckpointError):
    """The class needs __init__ arguments that the checkpoint does not store: ask for them."""

    def __init__(self, message: str, names: list[str]):
        super().__init__(message)
        self.names = names


def classes_in(py_path: str | Path) -> list[str]:
    """Names of classes in the file that derive from something called Module (read, not run)."""
    path = regular_file(py_path, CheckpointError, "Python file")
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{path.name}: not a Python file that can be read ({exc})") from exc
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            bases = [ast.unparse(b) for b in node.bases]
            if any(b.split(".")[-1] == "Module" for b in bases):
                found.append(node.name)
    if not found:
        raise CheckpointError(f"{path.name}: defines no nn.Module subclass")
    return found


def parse_arguments(text: str) -> dict[str, Any]:
    """`n_in=8, n_out=3` -> {"n_in": 8, "n_out": 3}; literals only, so nothing runs."""
    text = text.strip()
    if not text:
        return {}
    try:
        call = ast.parse(f"f({text})", mode="eval").body
        assert isinstance(call, ast.Call) and not call.args
        return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg}
    except (SyntaxError, ValueError, AssertionError, TypeError) as exc:
        raise CheckpointError(f"arguments {text!r}: write them as name=value, e.g. n_in=8, n_out=3 "
                              "(numbers, strings, lists only)") from exc


def stored_arguments(wrapper: dict[str, Any], names: list[str] | None = None) -> dict[str, Any] | None:
    """The __init__ arguments a checkpoint stores: under one of ARG_KEYS, or (the notes' own dict) at the top
    level under keys named like the class's `__init__` parameters `names`."""
    for key in ARG_KEYS:
        value = wrapper.get(key)
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return dict(value)
    top = {n: wrapper[n] for n in names or () if n in wrapper and n not in STATE_KEYS
           and not isinstance(wrapper[n], (torch.Tensor, dict))}
    return top or None


def init_parameters(py_path: str | Path, class_name: str) -> list[str]:
    """Names of `class_name.__init__`'s parameters, read with `ast` (nothing runs), to find them in a checkpoint."""
    path = regular_file(py_path, CheckpointError, "Python file")
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{path.name}: not a Python file that can be read ({exc})") from exc
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__init__":
                    args = item.args
                    return [a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]][1:] \
                        if args.posonlyargs or args.args else [a.arg for a in args.kwonlyargs]
    return []


def _parameters(cls: type) -> list[str]:
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _import(py_path: Path, class_name: str) -> type:
    name = f"nnstudio_user_{abs(hash(str(py_path)))}"
    spec = importlib.util.spec_from_file_location(name, py_path)
    if spec is None or spec.loader is None:
        raise CheckpointError(f"{py_path.name}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # it is the user's code: anything can happen, all of it is reported
        sys.modules.pop(name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise CheckpointError(f"{py_path.name}: running it failed ({type(exc).__name__}: {exc})") from exc
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise CheckpointError(f"{py_path.name}: has no nn.Module class named {class_name}")
    return cls


def _required(cls: type) -> list[str]:
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


_ACTIVATIONS = {nn.ReLU: "ReLU", nn.GELU: "GELU", nn.SiLU: "SiLU", nn.Sigmoid: "Sigmoid", nn.Tanh: "Tanh"}
_FUNCTIONS = {"relu": "ReLU", "gelu": "GELU", "silu": "SiLU", "sigmoid": "Sigmoid", "tanh": "Tanh"}


def to_layers(model: nn.Module) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The builder's layers for a model whose forward is one chain of supported layers, and their keys."""
    import torch.fx

    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception as exc:  # fx cannot follow data-dependent Python; say so rather than guess
        raise CheckpointError(f"{type(model).__name__}.forward cannot be followed ({str(exc).splitlines()[0][:120]}); "
                              "the builder needs a plain chain of layers") from exc
    layers: list[dict[str, Any]] = []
    owners: list[str | None] = []
    prev = None
    for node in graph.nodes:
        if node.op == "placeholder":
            prev = prev or node
            continue
        if node.op == "output":
            break
        if node.args and node.args[0] is not prev:
            raise CheckpointError(f"{type(model).__name__}.forward is not one chain of layers (at {node.name}); "
                                  "the builder cannot show it")
        layer, owner = _node_layer(model, node)
        if layer is not None:
            layers.append(layer)
            owners.append(owner)
        prev = node
    linear = [i for i, l in enumerate(layers) if l["type"] == "Linear"]
    if not linear:
        raise CheckpointError(f"{type(model).__name__} has no Linear layer")
    layers[linear[-1]]["out_features"] = "auto"
    key_map = {}
    for pos, owner in enumerate(owners):
        if owner is not None:
            sub = model.get_submodule(owner)
            for key in sub.state_dict():
                key_map[f"layers.{pos}.{key}"] = f"{owner}.{key}"
    return layers, key_map


def _node_layer(model: nn.Module, node) -> tuple[dict[str, Any] | None, str | None]:
    where = f"{type(model).__name__}.forward"
    if node.op == "call_module":
        sub = model.get_submodule(node.target)
        if isinstance(sub, nn.Linear):
            return {"type": "Linear", "out_features": sub.out_features, "bias": sub.bias is not None}, node.target
        if isinstance(sub, nn.BatchNorm1d) and sub.affine and sub.track_running_stats:
            return {"type": "BatchNorm1d", "eps": sub.eps, "momentum": sub.momentum}, node.target
        if isinstance(sub, nn.LayerNorm) and sub.elementwise_affine and len(sub.normalized_shape) == 1:
            return {"type": "LayerNorm", "eps": sub.eps}, node.target
        if isinstance(sub, nn.Dropout):
            return {"type": "Dropout", "p": sub.p}, None
        if isinstance(sub, nn.LeakyReLU):
            return {"type": "LeakyReLU", "negative_slope": sub.negative_slope}, None
        if type(sub) in _ACTIVATIONS:
            return {"type": _ACTIVATIONS[type(sub)]}, None
        if isinstance(sub, (nn.Identity, nn.Flatten)):
            return None, None
        raise CheckpointError(f"{where} uses {node.target} ({type(sub).__name__}), which the builder has no layer for")
    name = getattr(node.target, "__name__", str(node.target)).strip("_")
    if name in _FUNCTIONS:
        return {"type": _FUNCTIONS[name]}, None
    if name == "dropout":
        p = node.kwargs.get("p", node.args[1] if len(node.args) > 1 else 0.5)
        return {"type": "Dropout", "p": float(p)}, None
    if name in ("flatten", "view", "reshape", "float", "contiguous"):
        return None, None
    raise CheckpointError(f"{where} calls {name}, which the builder has no layer for")


def open_with_class(checkpoint: str | Path, py_path: str | Path, class_name: str,
                    arguments: dict[str, Any] | None = None) -> LoadedCheckpoint:
    """Run `py_path` (the caller has asked), build `class_name` with the stored or given arguments, load the weights.

    Returns a checkpoint whose model is the builder's equivalent, checked to predict like the user's own model.
    """
    ckpt_path = Path(checkpoint)
    obj = _read(ckpt_path)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{ckpt_path.name}: holds a {type(obj).__name__}, not a state_dict")
    state, _ = unwrap_state_dict(obj)
    if state is None:
        raise CheckpointError(f"{ckpt_path.name}: holds no state_dict")
    py_path = regular_file(py_path, CheckpointError, "Python file")
    cls = _import(py_path, class_name)
    args = arguments if arguments is not None else stored_arguments(obj, _parameters(cls))
    if args is None:
        needed = _required(cls)
        if needed:
            raise NeedsArguments(f"{class_name}({', '.join(needed)}): {ckpt_path.name} does not store these "
                                 "arguments; give them", needed)
        args = {}
    try:
        user_model = cls(**args)
    except Exception as exc:
        raise CheckpointError(f"{class_name}(**{args}) failed ({type(exc).__name__}: {exc})") from exc
    names = dict(user_model.state_dict())
    stripped = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    check_state(names, stripped, ckpt_path.name)
    user_model.load_state_dict(stripped)
    user_model.eval()
    layers, key_map = to_layers(user_model)
    first = next(m for m in user_model.modules() if isinstance(m, nn.Linear))
    in_features = first.in_features
    n_outputs = next(m for m in reversed(list(user_model.modules())) if isinstance(m, nn.Linear)).out_features
    check_model_size(layers, in_features, n_outputs, ckpt_path.name)
    try:
        model = SpecModel(layers, in_features, n_outputs)
        model.load_state_dict({ours: stripped[theirs] for ours, theirs in key_map.items()})
    except (NNStudioError, RuntimeError, KeyError) as exc:
        raise CheckpointError(f"{class_name}: its layers cannot be rebuilt in the builder ({exc})") from exc
    model.eval()
    x = torch.randn(16, in_features, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        diff = (model(x) - user_model(x)).abs().max().item()
    if not diff <= 1e-5:
        raise CheckpointError(f"{class_name}: the rebuilt layers predict up to {diff:.3g} off the class's own "
                              "forward(); it does more than a chain of layers")
    notes = [f"built with {class_name} from {py_path.name}({', '.join(f'{k}={v!r}' for k, v in args.items())}); "
             f"the rebuilt layers predict like it (largest difference {diff:.1g})"]
    epoch = obj.get("epoch")
    return LoadedCheckpoint(ckpt_path, model, model.spec, None, notes=notes, bare=True,
                            epoch=epoch if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 0 else 0)


def read_dict(checkpoint: str | Path) -> dict[str, Any]:
    """The checkpoint's top-level dict (safe load), to show the arguments it stores before anything runs."""
    obj = _read(Path(checkpoint))
    return obj if isinstance(obj, dict) else {}
