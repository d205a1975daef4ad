"""Checkpoints: a dict of plain values and tensors that `torch.load(weights_only=True)` opens.

Saving is atomic (temp file in the destination folder, fsync, `os.replace`). Loading never falls
back to an unsafe unpickler and checks every field, the model's size and each weight's shape before
anything is allocated. A bare `state_dict` (an `nn.Sequential` or a course-notes module, bare, wrapped
in a dict or with DataParallel's `module.`) loads too: see `checkpoint_infer`.
"""

from __future__ import annotations

import os
import pickle
import platform
import re
import struct
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nnstudio import __version__
from nnstudio.core.data import Preprocessor
from nnstudio.core.model.pickle_scan import code_globals
from nnstudio.core.data.images import preprocessor_from_dict
from nnstudio.core.model.infer import STATE_KEYS, InferredStack, infer_stack, unwrap_state_dict
from nnstudio.core.errors import CheckpointError, DatasetNotCheckpoint, ModelSpecError
from nnstudio.core.files import atomic_write, available_memory, regular_file
from nnstudio.core.model.spec import SpecModel, count_parameters, normalize_layer

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
                     trainer_state: dict[str, Any] | None = None, run_dir: str | None = None,
                     threshold: float | None = None, world_size: int = 1) -> dict[str, Any]:
    scheduler_state = None
    if scheduler is not None:
        scheduler_state = {k: v for k, v in scheduler.state_dict().items() if _is_plain_tree(v)}
    return plain({
        "format": FORMAT,
        "version": VERSION,
        "model_spec": {"layers": model.spec, "in_features": model.in_features, "n_outputs": model.n_outputs,
                       **({"input_shape": list(model.input_shape)} if getattr(model, "input_shape", None) else {})},
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
        # binary tasks: the probability above which a row is the second class (predict uses it); None = 0.5
        "decision_threshold": None if threshold is None else float(threshold),
        "world_size": int(world_size),  # processes that trained it (torchrun); the weights are the same kind
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
        with atomic_write(path) as fh:
            torch.save(obj, fh)
    except BaseException as exc:
        if isinstance(exc, OSError) or (isinstance(exc, RuntimeError) and "write" in str(exc).lower()):
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
            raise CheckpointError(f"{path}: could not save ({reason}); the previous file, if any, is unchanged") from exc
        raise
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
    threshold: float | None = None  # binary decision threshold saved from the evaluation panel
    inferred: InferredStack | None = None  # for a bare state_dict: the stack, its unknowns and other orders
    source_state: dict[str, torch.Tensor] | None = None
    wrapper: dict[str, Any] | None = None

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


_PICKLE_START = (b"\x80",)  # protocol 2+ pickles, which is what torch's legacy format writes
_ZIP_START = b"PK\x03\x04"


def _read(path: Path) -> Any:
    regular_file(path, CheckpointError, "checkpoint file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise CheckpointError(f"{path.name}: cannot be read ({exc.strerror or exc})") from exc
    if not head:
        raise CheckpointError(f"{path.name}: is empty, not a PyTorch file")
    if not (head.startswith(_ZIP_START) or head.startswith(_PICKLE_START)):
        _refuse_code(path)  # a protocol 0/1 pickle has no header, but can still ask for code
        raise CheckpointError(f"{path.name}: not a PyTorch file (torch.save writes a zip archive or a pickle; "
                              "this is neither)")
    try:
        with warnings.catch_warnings():  # torch's remarks on a damaged file's pickle protocol; the error says it all
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True, mmap=head.startswith(_ZIP_START))
    except pickle.UnpicklingError as exc:
        _refuse_code(path, exc)
        if _looks_truncated(path, exc):
            raise CheckpointError(f"{path.name}: not a complete PyTorch file (truncated or another format)") from exc
        found = re.search(r"GLOBAL (\S+)", str(exc)) or re.search(r"global (\S+)", str(exc))
        if found or "add_safe_globals" in str(exc):  # a class or function to import: code, not damage
            _refuse_code(path, exc, [found.group(1)] if found else ["a Python object"])
        raise CheckpointError(f"{path.name}: not a PyTorch file (its contents are damaged or another format)") from exc
    except MemoryError as exc:
        raise CheckpointError(f"{path.name}: declares more data than fits in memory; not a usable checkpoint") from exc
    except Exception as exc:  # the unpickler raises many kinds on garbage; each means "not a checkpoint"
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "zip archive" in msg or "central directory" in msg or _looks_truncated(path, exc):
            raise CheckpointError(f"{path.name}: not a complete PyTorch file (truncated or another format)") from exc
        raise CheckpointError(f"{path.name}: not a PyTorch file that can be read ({msg[:200]})") from exc


def _refuse_code(path: Path, exc: BaseException | None = None, names: list[str] | None = None) -> None:
    """Raise the refusal that names the code the file asks for, if it asks for any; nothing was run."""
    names = names or code_globals(path)
    if names:
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        raise CheckpointError(f"{path.name}: refused: opening it would run Python code it asks for ({shown}); "
                              "nothing was run. A checkpoint of weights needs no code: open only files from "
                              "sources you trust") from exc


def _looks_truncated(path: Path, exc: BaseException) -> bool:
    text = str(exc)
    if isinstance(exc, (EOFError, struct.error)) or "truncated" in text or "unexpected EOF" in text:
        return True
    try:  # a zip whose end (the central directory) is cut off: torch says only "Invalid argument"
        with open(path, "rb") as fh:
            return fh.read(4) == _ZIP_START and not zipfile.is_zipfile(path)
    except OSError:
        return False


def memory_limit() -> int:
    """Bytes a checkpoint's model may take: half of what the kernel says is available now."""
    return available_memory() // 2


def _size(n_bytes: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n_bytes < 1000 or unit == "PB":
            return f"{n_bytes:.0f} {unit}" if unit == "bytes" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1000
    return ""


def check_model_size(layers: list[dict[str, Any]], in_features: int, n_outputs: int, name: str) -> None:
    """Refuse, before anything is allocated, a model that would not fit in memory; name the layer."""
    from nnstudio.core.model.spec import analyze, layer_label

    limit = memory_limit()
    summary = analyze(layers, in_features, n_outputs)
    total = 0
    for row in summary.rows:
        widest = max(row.in_features or 0, row.out_features or 0)
        n_bytes = max(row.params, widest) * 4
        total += n_bytes
        if n_bytes > limit:
            shape = f" ({row.in_features} → {row.out_features})" if row.type == "Linear" else ""
            raise CheckpointError(f"{name}: {layer_label(row.index, row.type)}{shape} would take {_size(n_bytes)} "
                                  f"({row.params:,} parameters), more than the {_size(limit)} this machine can spare; "
                                  "the file is damaged or not meant for this machine")
    if total > limit:
        raise CheckpointError(f"{name}: the model would take {_size(total)}, more than the {_size(limit)} this "
                              "machine can spare")


def _load_state(model: nn.Module, state: Any, name: str) -> None:
    check_state(model.state_dict(), state, name)
    model.load_state_dict(state)


def check_state(expected: dict[str, torch.Tensor], state: Any, name: str) -> None:
    """Every key present, every value a tensor of the expected shape and a floating/int type; else one sentence."""
    if not isinstance(state, dict):
        raise CheckpointError(f"{name}: its state_dict is a {type(state).__name__}, not a dict of tensors")
    not_tensors = [f"{k} ({type(v).__name__})" for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(f"{name}: the state_dict holds values that are not tensors: "
                              + ", ".join(not_tensors[:4]) + (" …" if len(not_tensors) > 4 else ""))
    missing = [k for k in expected if k not in state]
    unexpected = [str(k) for k in state if k not in expected]
    mismatched = [f"{k} {tuple(state[k].shape)} vs model {tuple(v.shape)}" for k, v in expected.items()
                  if k in state and tuple(state[k].shape) != tuple(v.shape)]
    kinds = [f"{k} ({state[k].dtype})" for k, v in expected.items() if k in state and tuple(state[k].shape) == tuple(v.shape)
             and (state[k].is_complex() or state[k].dtype == torch.bool
                  or state[k].is_floating_point() != v.is_floating_point())]
    problems = []
    if missing:
        problems.append("missing keys: " + ", ".join(missing[:6]) + (" …" if len(missing) > 6 else ""))
    if unexpected:
        problems.append("unexpected keys: " + ", ".join(unexpected[:6]) + (" …" if len(unexpected) > 6 else ""))
    if mismatched:
        problems.append("shape mismatch: " + "; ".join(mismatched[:4]) + (" …" if len(mismatched) > 4 else ""))
    if kinds:
        problems.append("wrong kind of numbers: " + ", ".join(kinds[:4]))
    if problems:
        raise CheckpointError(f"{name}: the weights do not match the model ({'; '.join(problems)})")


def _expected_state(layers: list[dict[str, Any]], in_features: int, n_outputs: int) -> dict[str, torch.Tensor]:
    """The state_dict's keys and shapes, built on the meta device: nothing is allocated."""
    with torch.device("meta"):
        return SpecModel(layers, in_features, n_outputs).state_dict()


#: Top-level fields of an nnstudio checkpoint: what each must be (None allowed where the tuple has type(None)).
_FIELDS: dict[str, tuple[type, ...]] = {
    "model_spec": (dict,), "state_dict": (dict,), "optimizer_state": (dict, type(None)),
    "scheduler_state": (dict, type(None)), "epoch": (int,), "preprocessing": (dict, type(None)),
    "config": (dict, type(None)), "metrics": (dict, type(None)), "history": (list, type(None)),
    "versions": (dict, type(None)),
}
_KIND = {dict: "a table", list: "a list", int: "a whole number", type(None): "empty"}


def _check_fields(obj: dict[str, Any], name: str) -> None:
    for key, kinds in _FIELDS.items():
        if key not in obj:
            if key in ("model_spec", "state_dict"):
                raise CheckpointError(f"{name}: the checkpoint has no '{key}'")
            continue
        value = obj[key]
        if isinstance(value, bool) or not isinstance(value, kinds):
            wanted = " or ".join(_KIND[k] for k in kinds)
            raise CheckpointError(f"{name}: '{key}' must be {wanted}, not {type(value).__name__} {_short(value)}")
    if obj["epoch"] < 0 if "epoch" in obj else False:
        raise CheckpointError(f"{name}: 'epoch' must be 0 or more, not {obj['epoch']}")
    for key, value_kinds, wanted in (("metrics", (int, float), "numbers"), ("versions", (str,), "strings")):
        table = obj.get(key) or {}
        bad = [k for k, v in table.items() if not isinstance(k, str) or isinstance(v, bool) and key == "metrics"
               or not isinstance(v, value_kinds)]
        if bad:
            raise CheckpointError(f"{name}: '{key}' must map names to {wanted}; {_short(bad[0])} is "
                                  f"{type(table[bad[0]]).__name__} {_short(table[bad[0]])}")
    if any(not isinstance(row, dict) for row in obj.get("history") or []):
        raise CheckpointError(f"{name}: 'history' must be a list of tables, one per epoch")
    spec = obj["model_spec"]
    for key, kind in (("layers", list), ("in_features", int), ("n_outputs", int)):
        if key not in spec:
            raise CheckpointError(f"{name}: its model spec has no '{key}'")
        value = spec[key]
        if isinstance(value, bool) or not isinstance(value, kind) or (kind is int and value < 1):
            wanted = "a list of layers" if kind is list else "a whole number ≥ 1"
            raise CheckpointError(f"{name}: model spec '{key}' must be {wanted}, not {_short(value)}")


def _input_shape(spec: dict[str, Any], name: str) -> int | tuple[int, ...]:
    """An image model's (C, H, W) (which must multiply to in_features), else the table width."""
    shape = spec.get("input_shape")
    if shape is None:
        return spec["in_features"]
    if (not isinstance(shape, (list, tuple)) or len(shape) != 3
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape)
            or shape[0] * shape[1] * shape[2] != spec["in_features"]):
        raise CheckpointError(f"{name}: model spec 'input_shape' must be [channels, height, width] giving "
                              f"{spec['in_features']} inputs, not {_short(shape)}")
    return tuple(shape)


def _short(value: Any) -> str:
    """A value as it can be quoted in a one-line message (a tensor's repr spans lines)."""
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    text = " ".join(repr(value).split())
    return text if len(text) <= 40 else text[:37] + "…"


def load_checkpoint(path: str | Path) -> LoadedCheckpoint:
    """Open a checkpoint (or a bare state_dict); raise CheckpointError naming the problem, leaving nothing half-loaded.

    Everything is checked before the model is allocated: field types, the model's size against free memory,
    and every weight's shape. The message is one line even where it quotes the file's own (odd) key names.
    """
    try:
        return _load_checkpoint(Path(path))
    except CheckpointError as exc:
        text = str(exc)
        if "\n" in text or "\r" in text:
            raise type(exc)(" ".join(text.split())) from exc
        raise


def _load_checkpoint(path: Path) -> LoadedCheckpoint:
    obj = _read(path)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path.name}: not an nnstudio checkpoint (holds a {type(obj).__name__}, not a dict)")
    if obj.get("format") != FORMAT:
        if "X" in obj and "state_dict" not in obj:
            raise DatasetNotCheckpoint(f"{path.name}: this holds a dataset (tensors X, y), not a model; "
                                       "open it as a dataset")
        state, _ = unwrap_state_dict(obj)
        if state is not None:
            return load_bare_state_dict(state, path, wrapper=obj)
        raise CheckpointError(f"{path.name}: not an nnstudio checkpoint (no 'format' key) and holds no state_dict "
                              f"(looked for a dict of tensors, or one under {', '.join(STATE_KEYS)})")
    version = obj.get("version")
    if isinstance(version, str) and version.strip().isdigit() and len(version) < 10:  # a later writer may quote it
        version = int(version)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path.name}: checkpoint version {_short(version)} is not a version number; "
                              "the file is damaged")
    if version > VERSION:
        raise CheckpointError(f"{path.name}: checkpoint version {version} is newer than this nnstudio reads "
                              f"(up to {VERSION}); update nnstudio")
    _check_fields(obj, path.name)
    spec = obj["model_spec"]
    shape = _input_shape(spec, path.name)
    try:
        layers = [normalize_layer(layer, i + 1) for i, layer in enumerate(spec["layers"])]
        check_model_size(layers, shape, spec["n_outputs"], path.name)
        expected = _expected_state(layers, shape, spec["n_outputs"])
    except ModelSpecError as exc:
        raise CheckpointError(f"{path.name}: its model spec is invalid ({' '.join(str(exc).split())})") from exc
    check_state(expected, obj["state_dict"], path.name)
    pre = obj.get("preprocessing")
    try:
        preprocessor = preprocessor_from_dict(pre) if pre else None
        widths = (preprocessor.n_features, preprocessor.n_outputs) if preprocessor is not None else None
    except Exception as exc:  # a damaged record can fail in many ways inside the preprocessor; all mean "invalid"
        raise CheckpointError(f"{path.name}: its preprocessing record is invalid ({_short(str(exc))})") from exc
    if widths is not None and widths != (spec["in_features"], spec["n_outputs"]):
        raise CheckpointError(f"{path.name}: its preprocessing gives {widths[0]} inputs and {widths[1]} outputs but "
                              f"the model takes {spec['in_features']} and gives {spec['n_outputs']}")
    model = SpecModel(layers, shape, spec["n_outputs"])
    _load_state(model, obj["state_dict"], path.name)
    model.eval()
    return LoadedCheckpoint(path, model, model.spec, preprocessor, obj.get("config") or {}, obj.get("metrics") or {},
                            int(obj.get("epoch") or 0), obj.get("versions") or {}, obj.get("optimizer_state"),
                            obj.get("scheduler_state"), obj.get("history") or [],
                            trainer_state=obj.get("trainer_state") if isinstance(obj.get("trainer_state"), dict) else None,
                            run_dir=obj.get("run_dir") if isinstance(obj.get("run_dir"), str) else None,
                            threshold=_threshold(obj.get("decision_threshold"), path.name))


def _threshold(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise CheckpointError(f"{name}: its decision_threshold {value!r} is not a probability between 0 and 1")
    return float(value)


def infer_layers_from_state_dict(state: dict[str, torch.Tensor]) -> tuple[list[dict[str, Any]], int, int, dict[str, str], list[str]]:
    """(layers, in_features, n_outputs, our key -> their key, what was assumed) with the default answers."""
    stack = infer_stack(state)
    layers, key_map, notes = stack.build()
    return layers, stack.in_features, stack.n_outputs, key_map, notes


def load_bare_state_dict(state: dict[str, torch.Tensor], path: Path, wrapper: dict[str, Any] | None = None,
                         stack: InferredStack | None = None, answers: list[str] | None = None,
                         dropout_p: float = 0.5) -> LoadedCheckpoint:
    """A model rebuilt from a state_dict; with `answers` (from a person) nothing is noted as assumed."""
    try:
        stack = stack or infer_stack(state)
        layers, key_map, notes = stack.build(answers, dropout_p)
        check_model_size(layers, stack.in_features, stack.n_outputs, path.name)
        model = SpecModel(layers, stack.in_features, stack.n_outputs)
    except (CheckpointError, ModelSpecError) as exc:
        raise CheckpointError(f"{path.name}: a state_dict, but {exc}") from exc
    _load_state(model, {ours: state[theirs] for ours, theirs in key_map.items()}, path.name)
    model.eval()
    wrapper = wrapper or {}
    epoch = wrapper.get("epoch")
    epoch = epoch if isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 0 else 0
    metrics = {k: float(v) for k, v in wrapper.items() if k in ("loss", "val_loss", "accuracy", "val_accuracy")
               and isinstance(v, (int, float)) and not isinstance(v, bool)}
    extras = [k for k in wrapper if isinstance(k, str) and k not in (*STATE_KEYS, "epoch", *metrics)]
    if extras and wrapper is not state:
        notes.append(f"also in the file, not used: {', '.join(extras[:6])}")
    ckpt = LoadedCheckpoint(path, model, model.spec, None, metrics=metrics, epoch=epoch, notes=notes, bare=True)
    ckpt.inferred = stack
    ckpt.source_state = state
    ckpt.wrapper = wrapper
    return ckpt


def reinfer(ckpt: LoadedCheckpoint, answers: list[str], order: tuple[str, ...] | None = None,
            dropout_p: float = 0.5) -> LoadedCheckpoint:
    """The same bare state_dict rebuilt with a person's answers (and order): what the window's dialog returns."""
    if ckpt.inferred is None or ckpt.source_state is None:
        raise CheckpointError(f"{ckpt.path.name}: not a state_dict whose layers were inferred")
    stack = ckpt.inferred.with_order(order) if order is not None else ckpt.inferred
    out = load_bare_state_dict(ckpt.source_state, ckpt.path, ckpt.wrapper, stack, answers, dropout_p)
    out.notes = [n for n in out.notes if not n.startswith("assumed")]
    return out


def describe(ckpt: LoadedCheckpoint) -> dict[str, Any]:
    """What `nnstudio info` prints: layers, parameters, metrics, versions."""
    from nnstudio.core.model.spec import analyze

    shape = getattr(ckpt.model, "input_shape", None)
    summary = analyze(ckpt.layers, shape or ckpt.model.in_features, ckpt.model.n_outputs)
    pre = ckpt.preprocessor
    image = pre.to_dict() if pre is not None and getattr(pre, "kind", None) == "image" else None
    return {
        "file": str(ckpt.path),
        "kind": "state_dict (inferred)" if ckpt.bare else "nnstudio checkpoint",
        "task": pre.task if pre else None,
        "target": pre.target if pre else None,
        "classes": pre.classes if pre else None,
        "features": pre.feature_names if pre else None,
        "in_features": ckpt.model.in_features,
        "input_shape": list(shape) if shape else None,
        "image": None if image is None else {k: image[k] for k in ("channels", "height", "width", "mean", "std")},
        "outputs": ckpt.model.n_outputs,
        "layers": [{"index": r.index, "type": r.type, "output": r.out_shape, "params": r.params,
                    **{k: v for k, v in r.settings.items()}} for r in summary.rows],
        "parameters": ckpt.n_parameters,
        "epoch": ckpt.epoch,
        "metrics": ckpt.metrics,
        "decision_threshold": ckpt.threshold,
        "versions": ckpt.versions,
        "notes": ckpt.notes,
    }
