"""#13: random bytes, random mutations of valid files and random TOML fed to every loader.

Each loader either loads or raises NNStudioError (the project's documented error type), within a deadline per
example and a bound on the process's peak memory. CI runs 60 examples per property; `NNSTUDIO_SLOW=1`
runs 1000 (`NNSTUDIO_EXAMPLES=N` sets any number). `COUNTS` records how many inputs each loader was given (printed at the end with -s).
"""

from __future__ import annotations

import io
import math
import os
import resource
from collections import Counter
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomli_w
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnstudio.core.model.checkpoint import load_checkpoint, save_checkpoint
from nnstudio.core.config import RunConfig, window_range_problems
from nnstudio.core.data import load_dataset, read_table
from nnstudio.core.errors import NNStudioError
from nnstudio.core.model.spec import SpecModel

SLOW = os.environ.get("NNSTUDIO_SLOW") == "1"
EXAMPLES = int(os.environ.get("NNSTUDIO_EXAMPLES", 1000 if SLOW else 60))
pytestmark = pytest.mark.timeout(0 if SLOW else 300)
PROPERTY = settings(max_examples=EXAMPLES, deadline=timedelta(seconds=10), derandomize=not SLOW,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])
#: Peak memory a loader may add to this process on any input (the inputs are all under 64 KB).
MEMORY_BOUND_KIB = 1_000_000
COUNTS: Counter[str] = Counter()
OUTCOMES: Counter[str] = Counter()


def _peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@pytest.fixture(scope="module", autouse=True)
def memory_bound():
    before = _peak_kib()
    yield
    grown = _peak_kib() - before
    print(f"\nbad inputs tried: {dict(COUNTS)} total {sum(COUNTS.values())}; outcomes {dict(OUTCOMES)}; "
          f"peak memory grew {grown / 1024:.0f} MiB")
    assert grown < MEMORY_BOUND_KIB, f"peak memory grew {grown / 1024:.0f} MiB"


def _loads_or_says_why(kind: str, load, path: Path) -> None:
    COUNTS[kind] += 1
    try:
        load(path)
    except NNStudioError as exc:
        message = str(exc)
        assert message and "\n" not in message and "Traceback" not in message, message
        OUTCOMES[f"{kind} refused"] += 1
    else:
        OUTCOMES[f"{kind} loaded"] += 1


def _load_project(path: Path) -> None:
    cfg = RunConfig.load(path)
    window_range_problems(cfg.training)  # what the window checks next must not raise either


LOADERS = {
    "checkpoint": (load_checkpoint, ".pt"),
    "project": (_load_project, ".toml"),
    "table": (read_table, None),
    "dataset": (load_dataset, None),
}
DATA_SUFFIXES = [".csv", ".tsv", ".txt", ".parquet", ".npy", ".npz", ".pt"]


# ---------------------------------------------------------------------------------------------- valid seeds

def _valid_files() -> dict[str, bytes]:
    torch.manual_seed(0)
    buf = io.BytesIO()
    model = SpecModel([{"type": "Linear", "out_features": 4}, {"type": "BatchNorm1d"}, {"type": "ReLU"},
                       {"type": "Linear", "out_features": "auto"}], 3, 2)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        save_checkpoint(Path(tmp) / "m.pt", model, None, epoch=1, metrics={"val_loss": 0.1})
        ckpt = (Path(tmp) / "m.pt").read_bytes()
        torch.save(model.state_dict(), Path(tmp) / "sd.pt", _use_new_zipfile_serialization=False)
        legacy = (Path(tmp) / "sd.pt").read_bytes()
        df = pd.DataFrame({"a": [1.0, None, 3.0, 4.0, 5.0, 6.0], "b": ["x", "y", None, "x", "y", "x"],
                           "t": [0, 1, 0, 1, 0, 1]})
        df.to_parquet(Path(tmp) / "d.parquet")
        parquet = (Path(tmp) / "d.parquet").read_bytes()
        np.save(buf, np.arange(24, dtype=np.float32).reshape(6, 4))
        csv = df.to_csv(index=False).encode()
    project = tomli_w.dumps(RunConfig().to_dict()).encode()
    return {"ckpt.pt": ckpt, "legacy.pt": legacy, "data.parquet": parquet, "data.npy": buf.getvalue(),
            "data.csv": csv, "project.toml": project}


VALID = _valid_files()


def _mutate(data: st.DataObject, raw: bytes) -> bytes:
    out = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 6), label="edits")):
        how = data.draw(st.sampled_from(["flip", "truncate", "insert", "delete", "overwrite"]), label="how")
        if not out:
            break
        at = data.draw(st.integers(0, len(out) - 1), label="at")
        if how == "flip":
            out[at] ^= 1 << data.draw(st.integers(0, 7))
        elif how == "truncate":
            del out[at:]
        elif how == "insert":
            out[at:at] = data.draw(st.binary(min_size=1, max_size=64))
        elif how == "delete":
            del out[at:at + data.draw(st.integers(1, 64))]
        else:
            chunk = data.draw(st.binary(min_size=1, max_size=16))
            out[at:at + len(chunk)] = chunk
    return bytes(out)


# ---------------------------------------------------------------------------------------------- random bytes

@PROPERTY
@given(raw=st.binary(max_size=4096), suffix=st.sampled_from(DATA_SUFFIXES + [".toml"]))
def test_random_bytes_load_or_say_why(tmp_path, raw, suffix):
    path = tmp_path / f"random{suffix}"
    path.write_bytes(raw)
    if suffix == ".toml":
        _loads_or_says_why("project", _load_project, path)
        return
    if suffix == ".pt":
        _loads_or_says_why("checkpoint", load_checkpoint, path)
    _loads_or_says_why("table", read_table, path)


@PROPERTY
@given(data=st.data(), name=st.sampled_from(sorted(VALID)))
def test_mutated_valid_files_load_or_say_why(tmp_path, data, name):
    raw = _mutate(data, VALID[name])
    path = tmp_path / name
    path.write_bytes(raw)
    if name.endswith(".toml"):
        _loads_or_says_why("project", _load_project, path)
    elif name.endswith(".pt"):
        _loads_or_says_why("checkpoint", load_checkpoint, path)
    else:
        _loads_or_says_why("dataset", load_dataset, path)


# ---------------------------------------------------------------------------------------------- structured mutations

_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.sampled_from([0, 1, -1, 10**12, 2**63]),
                     st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8))
_tensors = st.builds(lambda shape, kind: torch.zeros(shape, dtype=kind),
                     st.lists(st.integers(0, 5), max_size=3).map(tuple),
                     st.sampled_from([torch.float32, torch.float64, torch.int64, torch.bool, torch.float16]))
_values = st.recursive(st.one_of(_scalars, _tensors),
                       lambda inner: st.one_of(st.lists(inner, max_size=4),
                                               st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                       max_leaves=12)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


@PROPERTY
@given(data=st.data(), legacy=st.booleans())
def test_checkpoints_with_a_field_replaced_load_or_say_why(tmp_path, data, legacy):
    raw = torch.load(io.BytesIO(VALID["ckpt.pt"]), weights_only=True)
    places = [p for p in _paths(raw) if p]
    for _ in range(data.draw(st.integers(1, 3), label="changes")):
        where = data.draw(st.sampled_from(places), label="where")
        parent = raw
        try:
            for step in where[:-1]:
                parent = parent[step]
            if not isinstance(parent, (dict, list)):
                continue
            if data.draw(st.booleans(), label="delete") and isinstance(parent, dict):
                parent.pop(where[-1], None)
            else:
                parent[where[-1]] = data.draw(_values, label="value")
        except (KeyError, IndexError, TypeError):
            continue
    path = tmp_path / "changed.pt"
    torch.save(raw, path, _use_new_zipfile_serialization=not legacy)
    _loads_or_says_why("checkpoint", load_checkpoint, path)


@PROPERTY
@given(data=st.data())
def test_state_dicts_with_random_shapes_load_or_say_why(tmp_path, data):
    names = st.sampled_from(["fc1", "fc2", "out", "bn", "net.0", "net.2", "module.fc1", "layer_norm", "0", "3"])
    params = st.sampled_from(["weight", "bias", "running_mean", "running_var", "num_batches_tracked"])
    shapes = st.lists(st.integers(0, 6), min_size=0, max_size=3).map(tuple)
    keys = st.tuples(names, params).map(".".join)
    state = data.draw(st.dictionaries(keys, shapes.map(torch.zeros), min_size=1, max_size=8))
    wrap = data.draw(st.sampled_from([None, "state_dict", "model_state_dict"]))
    torch.save(state if wrap is None else {wrap: state, "epoch": data.draw(_scalars)}, tmp_path / "sd.pt")
    _loads_or_says_why("checkpoint", load_checkpoint, tmp_path / "sd.pt")


# ---------------------------------------------------------------------------------------------- random TOML

_toml_scalars = st.one_of(st.booleans(), st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=True),
                          st.text(max_size=10), st.sampled_from([0, 1, -1, 10**12, 2**40, 1e6, 1e-12, 1e308]))
_toml_values = st.recursive(_toml_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=8)
_KEYS = {
    "data": ["path", "target", "task", "split", "seed", "missing"],
    "model": ["layers"],
    "training": ["epochs", "batch_size", "shuffle", "optimizer", "loss", "scheduler", "early_stopping", "grad_clip",
                 "device", "seed", "threads"],
    "output": ["checkpoint", "logdir", "name"],
}
_layer = st.fixed_dictionaries({"type": st.sampled_from(["Linear", "ReLU", "Dropout", "BatchNorm1d", "Conv", ""])},
                               optional={"out_features": _toml_scalars, "p": _toml_scalars, "bias": _toml_scalars})
_optimizer = st.fixed_dictionaries({}, optional={"name": st.sampled_from(["Adam", "SGD", "x"]), "lr": _toml_scalars,
                                                 "momentum": _toml_scalars, "weight_decay": _toml_scalars})


def _section(name: str):
    values = {k: _toml_values for k in _KEYS[name]}
    if name == "model":
        values["layers"] = st.one_of(st.lists(_layer, max_size=4), _toml_values)
    if name == "training":
        values["optimizer"] = st.one_of(_optimizer, _toml_values)
    return st.fixed_dictionaries({}, optional=values)


_documents = st.fixed_dictionaries({}, optional={name: st.one_of(_section(name), _toml_values) for name in _KEYS}) \
    | st.dictionaries(st.text(max_size=8), _toml_values, max_size=3)


@PROPERTY
@given(doc=_documents)
def test_random_toml_projects_load_or_say_why(tmp_path, doc):
    try:
        text = tomli_w.dumps(doc)
    except (TypeError, ValueError):
        return  # not representable as TOML (e.g. NaN keys); nothing to feed
    path = tmp_path / "p.toml"
    path.write_text(text, encoding="utf-8")
    _loads_or_says_why("project", _load_project, path)


@PROPERTY
@given(text=st.text(max_size=300))
def test_random_text_as_a_project_loads_or_says_why(tmp_path, text):
    path = tmp_path / "t.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _loads_or_says_why("project", _load_project, path)


def test_the_counts_reach_the_configured_examples():
    """Runs last in this module: every property above fed its examples (so none was skipped silently)."""
    assert sum(COUNTS.values()) >= 5 * EXAMPLES
    assert math.isfinite(sum(COUNTS.values()))
