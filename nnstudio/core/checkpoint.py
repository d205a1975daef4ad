"""Checkpoints: a dict of plain values and tensors that `torch.load(weights_only=True)` opens.

Saving is atomic (temp file in the destination folder, fsync, `os.replace`). Loading never falls
back to an unsafe unpickler. A bare `state_dict` of a plain `nn.Sequential` MLP loads too: the
Linear/BatchNorm/LayerNorm chain is inferred from keys and shapes.
"""

from __future__ import annotations

import os
import pickle
import platform
import re
import struct
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nnstudio import __version__
from nnstudio.core.data import Preprocessor
from nnstudio.core.errors import CheckpointError, DatasetNotCheckpoint, ModelSpecError
from nnstudio.core.model import SpecModel, count_parameters

FORMAT = "nnstudio"
VERSION = 1


def versions() -> dict[str, str]:
    import numpy

    return {"nnstudio": __version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "python": platform.python_version()}


def plain(value: Any, where: str = "checkpoint") -> Any:
    """A deep copy made only of what a weights-only load accepts; raise on anything else."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, bool):
        return bool(value)
    for kind in (str, int, float):  # subclasses (torch's TorchVersion, IntEnum) become the plain type
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, dict):
        return {(k if isinstance(k, (str, int)) else str(k)): plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    raise TypeError(f"{where}: {type(value).__name__} cannot go into a checkpoint; only plain values and tensors can")


def build_checkpoint(model: SpecModel, preprocessor: Preprocessor | None, *, config: dict[str, Any] | None = None,
                     optimizer: torch.optim.Optimizer | None = None, scheduler: Any = None, epoch: int = 0,
                     metrics: dict[str, float] | None = None, history: list[dict[str, Any]] | None = None,
                     trainer_state: dict[str, Any] | None = None, run_dir: str | None = None) -> dict[str, Any]:
    scheduler_state = None
    if scheduler is not None:
        scheduler_state = {k: v for k, v in scheduler.state_dict().items() if _is_plain_tree(v)}
    return plain({
        "format": FORMAT,
        "version": VERSION,
        "model_spec": {"layers": model.spec, "in_features": model.in_features, "n_outputs": model.n_outputs},
        "state_dict": dict(model.state_dict()),
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "scheduler_state": scheduler_state,
        "epoch": int(epoch),
        "preprocessing": preprocessor.to_dict() if preprocessor is not None else None,
        "config": config or {},
        "metrics": dict(metrics or {}),
        "history": history or [],
        "versions": versions(),
        "trainer_state": trainer_state,  # Trainer.state_dict(): what `--resume` / Continue go on from
        "run_dir": run_dir,
    })


def _is_plain_tree(value: Any) -> bool:
    try:
        plain(value)
        return True
    except TypeError:
        return False


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder; choose a file name ending in .pt")
    if not path.parent.exists():
        raise CheckpointError(f"{path.parent}: folder does not exist")
    remove_stale_temp_files(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise CheckpointError(f"{path}: could not save ({exc.strerror or exc})") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) or (isinstance(exc, RuntimeError) and "write" in str(exc).lower()):
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
            raise CheckpointError(f"{path}: could not save ({reason}); the previous file, if any, is unchanged") from exc
        raise
    if hasattr(os, "O_DIRECTORY"):
        try:
            dir_fd = os.open(path.parent, os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError:
            pass
    return path


def remove_stale_temp_files(path: str | Path) -> list[Path]:
    """Remove what an interrupted `atomic_torch_save` of `path` left (killed between write and rename).

    A temp file names its writer's process id; one whose writer is still alive (another run saving the
    same path right now) is left alone.
    """
    path = Path(path)
    removed = []
    try:
        candidates = list(path.parent.glob(f".{glob_escape(path.name)}.*.tmp"))
    except OSError:
        return removed
    for tmp in candidates:
        pid = tmp.name[len(path.name) + 2:].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
            continue
        try:
            if tmp.is_file() and not tmp.is_symlink():
                tmp.unlink()
                removed.append(tmp)
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def glob_escape(name: str) -> str:
    import glob

    return glob.escape(name)


def save_checkpoint(path: str | Path, model: SpecModel, preprocessor: Preprocessor | None, **kw: Any) -> Path:
    return atomic_torch_save(build_checkpoint(model, preprocessor, **kw), path)


@dataclass
class LoadedCheckpoint:
    path: Path
    model: SpecModel
    layers: list[dict[str, Any]]
    preprocessor: Preprocessor | None
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    epoch: int = 0
    versions: dict[str, str] = field(default_factory=dict)
    optimizer_state: dict[str, Any] | None = None
    scheduler_state: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    trainer_state: dict[str, Any] | None = None  # present in checkpoints that can be resumed exactly
    run_dir: str | None = None
    notes: list[str] = field(default_factory=list)  # what a bare state_dict could not tell
    bare: bool = False

    @property
    def n_parameters(self) -> int:
        return count_parameters(self.model)

    def predict(self, df) -> list[Any]:
        """Raw table rows to labels or values, through the stored preprocessing."""
        if self.preprocessor is None:
            raise CheckpointError(f"{self.path.name}: holds no preprocessing (a bare state_dict); "
                                  "train it on a dataset first")
        X = torch.from_numpy(self.preprocessor.transform_features(df))
        self.model.eval()
        with torch.no_grad():
            out = self.model(X.to(next(self.model.parameters()).device))
        return self.preprocessor.decode(out)


def _read(path: Path) -> Any:
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a checkpoint file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if _looks_truncated(path, exc):
            raise CheckpointError(f"{path.name}: not a complete PyTorch file (truncated or another format)") from exc
        found = re.search(r"GLOBAL (\S+)", str(exc)) or re.search(r"global (\S+)", str(exc))
        what = f" ({found.group(1)})" if found else ""
        raise CheckpointError(f"{path.name}: refused: it holds Python objects{what} that a safe (weights-only) "
                              "load does not run; only open checkpoints from sources you trust") from exc
    except Exception as exc:  # the unpickler raises many kinds on garbage; each means "not a checkpoint"
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "zip archive" in msg or "central directory" in msg or _looks_truncated(path, exc):
            raise CheckpointError(f"{path.name}: not a complete PyTorch file (truncated or another format)") from exc
        raise CheckpointError(f"{path.name}: cannot be read as a PyTorch checkpoint ({msg})") from exc


def _looks_truncated(path: Path, exc: BaseException) -> bool:
    text = str(exc)
    if isinstance(exc, (EOFError, struct.error)) or "truncated" in text or "unexpected EOF" in text:
        return True
    try:  # a zip whose end (the central directory) is cut off: torch says only "Invalid argument"
        with open(path, "rb") as fh:
            return fh.read(4) == b"PK\x03\x04" and not zipfile.is_zipfile(path)
    except OSError:
        return False


def _load_state(model: nn.Module, state: dict[str, Any], name: str) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = [f"{k} {tuple(state[k].shape)} vs model {tuple(v.shape)}" for k, v in expected.items()
                  if k in state and isinstance(state[k], torch.Tensor) and tuple(state[k].shape) != tuple(v.shape)]
    problems = []
    if missing:
        problems.append("missing keys: " + ", ".join(missing[:6]) + (" …" if len(missing) > 6 else ""))
    if unexpected:
        problems.append("unexpected keys: " + ", ".join(unexpected[:6]) + (" …" if len(unexpected) > 6 else ""))
    if mismatched:
        problems.append("shape mismatch: " + "; ".join(mismatched[:4]) + (" …" if len(mismatched) > 4 else ""))
    if problems:
        raise CheckpointError(f"{name}: the weights do not match the model ({'; '.join(problems)})")
    model.load_state_dict(state)


def load_checkpoint(path: str | Path) -> LoadedCheckpoint:
    """Open a checkpoint (or a bare state_dict); raise CheckpointError naming the problem, leaving nothing half-loaded."""
    path = Path(path)
    obj = _read(path)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path.name}: not an nnstudio checkpoint (holds a {type(obj).__name__}, not a dict)")
    if obj.get("format") != FORMAT:
        if "X" in obj and "state_dict" not in obj:
            raise DatasetNotCheckpoint(f"{path.name}: this holds a dataset (tensors X, y), not a model; "
                                       "open it as a dataset")
        state = obj.get("state_dict", obj) if isinstance(obj.get("state_dict", obj), dict) else obj
        if state and all(isinstance(v, torch.Tensor) for v in state.values()):
            return load_bare_state_dict(state, path)
        raise CheckpointError(f"{path.name}: not an nnstudio checkpoint (no 'format' key) and not a state_dict")
    version = obj.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(f"{path.name}: checkpoint version {version!r} is newer than this nnstudio reads "
                              f"(up to {VERSION}); update nnstudio")
    for key in ("model_spec", "state_dict"):
        if key not in obj:
            raise CheckpointError(f"{path.name}: the checkpoint has no '{key}'")
    spec = obj["model_spec"]
    try:
        model = SpecModel(list(spec["layers"]), int(spec["in_features"]), int(spec["n_outputs"]))
    except (ModelSpecError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path.name}: its model spec is invalid ({exc})") from exc
    _load_state(model, obj["state_dict"], path.name)
    pre = obj.get("preprocessing")
    try:
        preprocessor = Preprocessor.from_dict(pre) if pre else None
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path.name}: its preprocessing record is invalid ({exc})") from exc
    model.eval()
    return LoadedCheckpoint(path, model, model.spec, preprocessor, obj.get("config") or {}, obj.get("metrics") or {},
                            int(obj.get("epoch") or 0), obj.get("versions") or {}, obj.get("optimizer_state"),
                            obj.get("scheduler_state"), obj.get("history") or [],
                            trainer_state=obj.get("trainer_state") if isinstance(obj.get("trainer_state"), dict) else None,
                            run_dir=obj.get("run_dir") if isinstance(obj.get("run_dir"), str) else None)


def infer_layers_from_state_dict(state: dict[str, torch.Tensor]) -> tuple[list[dict[str, Any]], int, int, dict[str, str], list[str]]:
    """Infer a Sequential MLP's layers from keys like `0.weight`, `module.net.3.bias`.

    Returns (layers, in_features, n_outputs, key map from our names to theirs, notes on what could not be told).
    """
    modules: dict[int, dict[str, tuple[str, torch.Tensor]]] = {}
    prefixes = set()
    for key, tensor in state.items():
        k = key[len("module."):] if key.startswith("module.") else key
        m = re.fullmatch(r"(?:(.*)\.)?(\d+)\.(\w+)", k)
        if not m:
            raise CheckpointError(f"key '{key}' does not look like part of an nn.Sequential (expected '<index>.weight')")
        prefixes.add(m.group(1) or "")
        modules.setdefault(int(m.group(2)), {})[m.group(3)] = (key, tensor)
    if len(prefixes) > 1:
        raise CheckpointError(f"keys come from several containers ({', '.join(sorted(prefixes))}); "
                              "only a single nn.Sequential can be inferred")
    layers: list[dict[str, Any]] = []
    key_map: dict[str, str] = {}
    notes: list[str] = []
    width: int | None = None
    in_features = n_outputs = None
    last_index = -1
    for index in sorted(modules):
        gap = index - last_index - 1
        for g in range(gap):
            layers.append({"type": "ReLU"})
            notes.append(f"layer {len(layers)}: a module without weights at index {last_index + 1 + g} "
                         "(an activation or Dropout); assumed ReLU — set the real one in the builder")
        last_index = index
        params = modules[index]
        pos = len(layers)
        weight = params.get("weight", (None, None))[1]
        if weight is None:
            raise CheckpointError(f"module {index} has no weight ({', '.join(params)}); cannot infer its type")
        if weight.ndim == 2:
            out_f, in_f = weight.shape
            if width is not None and in_f != width:
                raise CheckpointError(f"module {index} Linear expects {in_f} inputs but the layer before gives {width}")
            in_features = in_features if in_features is not None else int(in_f)
            layers.append({"type": "Linear", "out_features": int(out_f), "bias": "bias" in params})
            width = int(out_f)
        elif weight.ndim == 1 and "running_mean" in params:
            layers.append({"type": "BatchNorm1d"})
        elif weight.ndim == 1:
            layers.append({"type": "LayerNorm"})
        else:
            raise CheckpointError(f"module {index} has a {weight.ndim}-D weight; only Linear, BatchNorm1d and "
                                  "LayerNorm can be inferred")
        for name, (orig, _) in params.items():
            key_map[f"layers.{pos}.{name}"] = orig
    if in_features is None:
        raise CheckpointError("no Linear layer found in the state_dict")
    n_outputs = width
    last_linear = max(i for i, l in enumerate(layers) if l["type"] == "Linear")
    layers[last_linear]["out_features"] = "auto"
    notes.append("a state_dict stores no activations after the last weight and no Dropout rates; "
                 "check them in the builder")
    return layers, int(in_features), int(n_outputs), key_map, notes


def load_bare_state_dict(state: dict[str, torch.Tensor], path: Path) -> LoadedCheckpoint:
    try:
        layers, in_features, n_outputs, key_map, notes = infer_layers_from_state_dict(state)
        model = SpecModel(layers, in_features, n_outputs)
    except (CheckpointError, ModelSpecError) as exc:
        raise CheckpointError(f"{path.name}: a state_dict, but {exc}") from exc
    _load_state(model, {ours: state[theirs] for ours, theirs in key_map.items()}, path.name)
    model.eval()
    return LoadedCheckpoint(path, model, model.spec, None, notes=notes, bare=True)


def describe(ckpt: LoadedCheckpoint) -> dict[str, Any]:
    """What `nnstudio info` prints: layers, parameters, metrics, versions."""
    from nnstudio.core.model import analyze

    summary = analyze(ckpt.layers, ckpt.model.in_features, ckpt.model.n_outputs)
    pre = ckpt.preprocessor
    return {
        "file": str(ckpt.path),
        "kind": "state_dict (inferred)" if ckpt.bare else "nnstudio checkpoint",
        "task": pre.task if pre else None,
        "target": pre.target if pre else None,
        "classes": pre.classes if pre else None,
        "features": pre.feature_names if pre else None,
        "in_features": ckpt.model.in_features,
        "outputs": ckpt.model.n_outputs,
        "layers": [{"index": r.index, "type": r.type, "output": r.out_shape, "params": r.params,
                    **{k: v for k, v in r.settings.items()}} for r in summary.rows],
        "parameters": ckpt.n_parameters,
        "epoch": ckpt.epoch,
        "metrics": ckpt.metrics,
        "versions": ckpt.versions,
        "notes": ckpt.notes,
    }
