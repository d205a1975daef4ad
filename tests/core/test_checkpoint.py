"""core.model.checkpoint: round trips, the file's plain layout, bare state_dicts, hostile and broken files, atomic saves."""

from __future__ import annotations

import builtins
import errno
import os

import numpy as np
import pytest
import torch
from torch import nn

from corehelpers import make_trainer
from nnstudio.core.model import checkpoint as ckpt_mod
from nnstudio.core.model.checkpoint import load_checkpoint, save_checkpoint
from nnstudio.core.data import read_table
from nnstudio.core.errors import CheckpointError
from nnstudio.resources import sample_dataset

REQUIRED_KEYS = {"format", "version", "model_spec", "state_dict", "optimizer_state", "scheduler_state", "epoch",
                 "preprocessing", "config", "metrics", "versions"}
BN_MLP = [{"type": "Linear", "out_features": 16}, {"type": "BatchNorm1d"}, {"type": "ReLU"}, {"type": "Dropout", "p": 0.2},
          {"type": "Linear", "out_features": "auto"}]


@pytest.fixture(scope="module")
def trained(flowers_data, tmp_path_factory):
    """A short flowers fit with BatchNorm (buffers too), a scheduler and its checkpoint."""
    trainer = make_trainer(flowers_data, BN_MLP, epochs=2, scheduler="step", step_size=1)
    trainer.fit()
    path = tmp_path_factory.mktemp("ckpt") / "flowers.pt"
    save_checkpoint(path, trainer.model, flowers_data.preprocessor, config={"training": {"epochs": 2}},
                    optimizer=trainer.optimizer, scheduler=trainer.scheduler, epoch=trainer.epoch,
                    metrics={"val_accuracy": trainer.history[-1].metrics["accuracy"]})
    trainer.model.eval()
    return trainer, path


def test_round_trip_gives_identical_predictions(trained, flowers_data):
    trainer, path = trained
    loaded = load_checkpoint(path)
    assert not loaded.model.training
    X = flowers_data.test.X
    with torch.no_grad():
        assert torch.equal(loaded.model(X), trainer.model(X))
    df = read_table(sample_dataset("flowers.csv")).head(50)
    with torch.no_grad():
        expected = flowers_data.preprocessor.decode(trainer.model(torch.from_numpy(
            flowers_data.preprocessor.transform_features(df))))
    labels = loaded.predict(df)
    assert labels == expected
    assert set(labels) <= {"setosa", "versicolor", "virginica"}
    assert np.mean(np.array(labels) == df["species"].to_numpy()) > 0.6
    assert loaded.epoch == 2 and loaded.metrics["val_accuracy"] == trainer.history[-1].metrics["accuracy"]
    assert loaded.optimizer_state["param_groups"][0]["lr"] == trainer.optimizer.param_groups[0]["lr"]
    assert loaded.scheduler_state["last_epoch"] == 2
    assert loaded.layers == trainer.model.spec


def test_file_opens_with_plain_weights_only_load(trained):
    _, path = trained
    raw = torch.load(path, weights_only=True)
    assert REQUIRED_KEYS <= set(raw)
    assert raw["format"] == "nnstudio" and raw["version"] == ckpt_mod.VERSION
    assert raw["model_spec"]["layers"][0] == {"type": "Linear", "out_features": 16, "bias": True}
    assert "layers.1.running_mean" in raw["state_dict"]
    assert raw["preprocessing"]["classes"] == ["setosa", "versicolor", "virginica"]
    assert {"torch", "nnstudio", "numpy", "python"} <= set(raw["versions"])

    def only_plain(value):
        if isinstance(value, dict):
            return all(isinstance(k, (str, int)) and only_plain(v) for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return all(only_plain(v) for v in value)
        return value is None or type(value) in (str, int, float, bool) or isinstance(value, torch.Tensor)

    assert only_plain(raw)


# ---------------------------------------------------------------------------------------------- bare state_dicts

def _plain_script_model(norm: str) -> nn.Sequential:
    torch.manual_seed(0)
    norm_layer = nn.BatchNorm1d(16) if norm == "batchnorm" else nn.LayerNorm(16)
    net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), norm_layer, nn.Linear(16, 3))
    with torch.no_grad():  # move BatchNorm's running statistics away from their defaults
        net.train()
        for _ in range(3):
            net(torch.randn(32, 4) * 2 + 1)
        if norm == "layernorm":
            norm_layer.weight.uniform_(0.5, 1.5)
            norm_layer.bias.uniform_(-0.5, 0.5)
    return net.eval()


@pytest.mark.parametrize("norm", ["batchnorm", "layernorm"])
@pytest.mark.parametrize("prefix", ["", "module."])
def test_bare_state_dict_from_a_plain_script_loads(tmp_path, norm, prefix):
    net = _plain_script_model(norm)
    state = {prefix + k: v for k, v in net.state_dict().items()}
    torch.save(state, tmp_path / "plain.pt")
    loaded = load_checkpoint(tmp_path / "plain.pt")
    assert loaded.bare and loaded.preprocessor is None
    assert [l["type"] for l in loaded.layers] == ["Linear", "ReLU", "BatchNorm1d" if norm == "batchnorm" else "LayerNorm",
                                                  "Linear"]
    assert loaded.model.in_features == 4 and loaded.model.n_outputs == 3
    x = torch.randn(64, 4)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), net(x))
    notes = " ".join(loaded.notes).lower()
    assert "activation" in notes
    with pytest.raises(CheckpointError, match="preprocessing"):
        loaded.predict(None)


def test_state_dict_nested_under_a_key_with_a_named_sequential(tmp_path):
    class Wrapper(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1))

    torch.manual_seed(1)
    model = Wrapper().eval()
    torch.save({"state_dict": model.state_dict(), "epoch": 3}, tmp_path / "wrapped.pt")
    loaded = load_checkpoint(tmp_path / "wrapped.pt")
    x = torch.randn(10, 5)
    with torch.no_grad():
        out = loaded.model(x)
    assert out.shape == (10, 1)
    assert loaded.layers[1]["type"] == "ReLU"  # a guess, and the notes say so
    assert any("assumed ReLU" in n for n in loaded.notes)


# ---------------------------------------------------------------------------------------------- hostile and broken files

class _RunsCode:
    def __init__(self, how: str, marker: str):
        self.how, self.marker = how, marker

    def __reduce__(self):
        if self.how == "os.system":
            return os.system, (f"touch '{self.marker}'",)
        return builtins.exec, (f"open({self.marker!r}, 'w').close()",)


@pytest.mark.parametrize("how", ["os.system", "exec"])
@pytest.mark.parametrize("zipfile", [True, False], ids=["zip", "legacy"])
def test_crafted_pickle_is_refused_without_running(tmp_path, how, zipfile):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": "nnstudio", "version": 1, "state_dict": {"w": torch.zeros(1)}, "x": _RunsCode(how, str(marker))},
               path, _use_new_zipfile_serialization=zipfile)
    assert not marker.exists()
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert "evil.pt" in str(info.value) and "refused" in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("zipfile", [True, False], ids=["zip", "legacy"])
@pytest.mark.parametrize("fraction", [0.03, 0.5, 0.98])
def test_truncated_checkpoint(trained, tmp_path, zipfile, fraction):
    _, path = trained
    _resave(path, tmp_path / "full.pt", lambda raw: None, _use_new_zipfile_serialization=zipfile)
    data = (tmp_path / "full.pt").read_bytes()
    (tmp_path / "half.pt").write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "half.pt")
    assert "half.pt" in str(info.value) and "truncated" in str(info.value)


@pytest.mark.parametrize("name, content", [
    ("random.pt", np.random.default_rng(0).bytes(5000)),
    ("empty.pt", b""),
    ("text.pt", b"just some notes\n" * 20),
])
def test_not_a_checkpoint(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(CheckpointError, match=name.replace(".", r"\.")):
        load_checkpoint(tmp_path / name)


@pytest.mark.parametrize("obj, words", [
    ([1, 2, 3], ["list"]),
    ({"X": torch.zeros(3, 2), "y": torch.zeros(3)}, ["dataset"]),
    ({"a": 1}, ["not an nnstudio checkpoint"]),
])
def test_readable_files_that_are_not_models(tmp_path, obj, words):
    torch.save(obj, tmp_path / "thing.pt")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "thing.pt")
    assert "thing.pt" in str(info.value) and all(w in str(info.value) for w in words)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="folder"):
        load_checkpoint(tmp_path)


def _resave(src, dst, change, **save_kw) -> None:
    raw = torch.load(src, weights_only=True)
    change(raw)
    torch.save(raw, dst, **save_kw)


def test_wrong_shapes_missing_and_unexpected_keys_are_named(trained, tmp_path):
    _, path = trained

    def damage(raw):
        sd = raw["state_dict"]
        sd["layers.0.weight"] = torch.zeros(16, 5)
        del sd["layers.4.bias"]
        sd["layers.9.weight"] = torch.zeros(2)

    _resave(path, tmp_path / "bad.pt", damage)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "bad.pt")
    message = str(info.value)
    assert "bad.pt" in message
    assert "layers.0.weight" in message and "(16, 5)" in message and "(16, 7)" in message
    assert "missing" in message and "layers.4.bias" in message
    assert "unexpected" in message and "layers.9.weight" in message


def test_bare_state_dict_with_a_broken_chain(tmp_path):
    torch.save({"0.weight": torch.zeros(8, 4), "0.bias": torch.zeros(8), "2.weight": torch.zeros(3, 9),
                "2.bias": torch.zeros(3)}, tmp_path / "chain.pt")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "chain.pt")
    assert "chain.pt" in str(info.value) and "9" in str(info.value) and "8" in str(info.value)


@pytest.mark.parametrize("version", [ckpt_mod.VERSION + 1, 99, "2"])
def test_newer_version_is_refused(trained, tmp_path, version):
    _, path = trained
    _resave(path, tmp_path / "future.pt", lambda raw: raw.update(version=version))
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "future.pt")
    assert "future.pt" in str(info.value) and "newer" in str(info.value) and "version" in str(info.value)


# ---------------------------------------------------------------------------------------------- atomic save

@pytest.mark.parametrize("error", [RuntimeError("boom"), OSError(errno.ENOSPC, "No space left on device"),
                                   KeyboardInterrupt()])
def test_interrupted_save_keeps_the_previous_file(trained, tmp_path, monkeypatch, error):
    trainer, _ = trained
    target = tmp_path / "model.pt"
    save_checkpoint(target, trainer.model, None, epoch=1)
    before = target.read_bytes()

    def failing_save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 partial bytes of a zip archive")
        raise error

    monkeypatch.setattr(ckpt_mod.torch, "save", failing_save)
    with pytest.raises((CheckpointError, type(error))):
        save_checkpoint(target, trainer.model, None, epoch=2)
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.pt"]
    assert load_checkpoint(target).epoch == 1


def test_save_into_a_missing_folder(trained, tmp_path):
    trainer, _ = trained
    with pytest.raises(CheckpointError, match="does not exist"):
        save_checkpoint(tmp_path / "no" / "model.pt", trainer.model, None)


def test_save_refuses_objects_a_safe_load_could_not_open(trained, tmp_path):
    trainer, _ = trained
    with pytest.raises(TypeError, match="cannot go into a checkpoint"):
        save_checkpoint(tmp_path / "m.pt", trainer.model, None, config={"when": object()})
    assert not list(tmp_path.iterdir())


def test_regression_round_trip_predicts_in_target_units(houses_data, tmp_path):
    trainer = make_trainer(houses_data, epochs=2)
    trainer.fit()
    save_checkpoint(tmp_path / "houses.pt", trainer.model, houses_data.preprocessor, epoch=trainer.epoch)
    loaded = load_checkpoint(tmp_path / "houses.pt")
    df = read_table(sample_dataset("houses.csv")).head(40)
    values = loaded.predict(df.drop("price"))
    trainer.model.eval()
    with torch.no_grad():
        out = trainer.model(torch.from_numpy(houses_data.preprocessor.transform_features(df)))
    assert values == houses_data.preprocessor.decode(out)
    assert np.corrcoef(values, df["price"].to_numpy())[0, 1] > 0.5  # in the target's units, and related to it
    assert abs(np.mean(values) - df["price"].mean()) < df["price"].std()
