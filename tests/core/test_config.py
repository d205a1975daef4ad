"""core.config: one TOML file describes a whole run; every mistake in it is named."""

from __future__ import annotations

import pytest

from nnstudio.core.config import RunConfig
from nnstudio.core.errors import ConfigError
from nnstudio.core.model.spec import normalize_layer

FULL = """
[data]
path = "data/flowers.csv"
target = "species"
task = "multiclass"
split = [0.6, 0.2, 0.2]
seed = 3
missing = "drop"

[model]
layers = [
    {type = "Linear", out_features = 32},
    {type = "BatchNorm1d"},
    {type = "LeakyReLU", negative_slope = 0.1},
    {type = "Dropout", p = 0.25},
    {type = "Linear", out_features = "auto", bias = false},
]

[training]
epochs = 7
batch_size = 16
shuffle = false
optimizer = {name = "SGD", lr = 0.05, weight_decay = 0.001, momentum = 0.8, nesterov = true}
scheduler = {name = "step", step_size = 2, gamma = 0.5}
loss = "cross_entropy"
early_stopping = 4
grad_clip = 1.5
device = "cpu"
seed = 11
threads = 2

[output]
checkpoint = "out/model.pt"
logdir = "../tb"
name = "full"
"""


@pytest.fixture
def full_toml(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    path = folder / "run.toml"
    path.write_text(FULL, encoding="utf-8")
    return path


def test_full_config_parses_every_section(full_toml, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths follow the TOML file, not the working folder
    cfg = RunConfig.load(full_toml)
    d, t, o = cfg.data, cfg.training, cfg.output
    assert (d.target, d.task, d.split, d.seed, d.missing) == ("species", "multiclass", [0.6, 0.2, 0.2], 3, "drop")
    assert [l["type"] for l in cfg.layers] == ["Linear", "BatchNorm1d", "LeakyReLU", "Dropout", "Linear"]
    assert cfg.layers[2]["negative_slope"] == 0.1 and cfg.layers[3]["p"] == 0.25 and cfg.layers[4]["bias"] is False
    assert (t.epochs, t.batch_size, t.shuffle, t.loss, t.early_stopping, t.grad_clip, t.device, t.seed, t.threads) == \
        (7, 16, False, "cross_entropy", 4, 1.5, "cpu", 11, 2)
    assert (t.optimizer, t.lr, t.weight_decay, t.momentum, t.nesterov) == ("SGD", 0.05, 0.001, 0.8, True)
    assert (t.scheduler, t.step_size, t.gamma) == ("step", 2, 0.5)
    assert o.name == "full"
    project = full_toml.parent.resolve()
    assert cfg.data_path == project / "data" / "flowers.csv"
    assert cfg.checkpoint_path == project / "out" / "model.pt"
    assert cfg.logdir.resolve() == tmp_path.resolve() / "tb"


def test_plateau_scheduler_and_optimizer_as_a_string(tmp_path):
    (tmp_path / "r.toml").write_text('[training]\noptimizer = "AdamW"\nscheduler = {name = "plateau", factor = 0.3, '
                                     'patience = 1}\n', encoding="utf-8")
    t = RunConfig.load(tmp_path / "r.toml").training
    assert (t.optimizer, t.scheduler, t.plateau_factor, t.plateau_patience) == ("AdamW", "plateau", 0.3, 1)


def test_save_and_load_round_trip(full_toml, tmp_path):
    cfg = RunConfig.load(full_toml)
    other = tmp_path / "elsewhere" / "deeper"
    other.mkdir(parents=True)
    saved = cfg.save(other / "copy.toml")
    again = RunConfig.load(saved)
    assert again.to_dict() == cfg.to_dict()
    original = RunConfig.load(full_toml)
    assert again.data_path.resolve() == original.data_path.resolve()
    assert again.checkpoint_path.resolve() == original.checkpoint_path.resolve()
    assert again.logdir.resolve() == original.logdir.resolve()
    assert not any(p.name.endswith(".tmp") for p in other.iterdir())
    defaults = RunConfig(base_dir=tmp_path)
    defaults.save(tmp_path / "defaults.toml")
    loaded = RunConfig.load(tmp_path / "defaults.toml").to_dict()
    expected = defaults.to_dict()
    expected["model"]["layers"] = [normalize_layer(l, i + 1) for i, l in enumerate(expected["model"]["layers"])]
    assert loaded == expected


@pytest.mark.parametrize("text, words", [
    ("[datta]\npath = 'x.csv'\n", ["datta"]),
    ("[data]\ncolour = 'red'\n", ["colour", "[data]"]),
    ("[training]\nepochs = \"ten\"\n", ["epochs", "ten"]),
    ("[training]\nepochs = 2.5\n", ["epochs"]),
    ("[training]\nbatch_size = 0\n", ["batch_size"]),
    ("[training]\nshuffle = 1\n", ["shuffle"]),
    ("[training]\nlearning_rate = 0.1\n", ["learning_rate"]),
    ("[training]\noptimizer = {name = \"Adam\", lr = \"fast\"}\n", ["lr"]),
    ("[training]\noptimizer = {name = \"Adagrad\"}\n", ["optimizer", "Adagrad"]),
    ("[training]\noptimizer = {name = \"Adam\", betas = [0.9, 0.99]}\n", ["betas"]),
    ("[training]\nscheduler = {name = \"step\", every = 3}\n", ["every"]),
    ("[training]\nscheduler = \"linear\"\n", ["scheduler", "linear"]),
    ("[training]\nseed = \"abc\"\n", ["seed"]),
    ("[training]\nthreads = 0\n", ["threads"]),
    ("[data]\nsplit = [0.5, 0.3, 0.3]\n", ["split"]),
    ("[data]\nsplit = [0.5, \"a\", 0.5]\n", ["split"]),
    ("[data]\nsplit = 0.7\n", ["split"]),
    ("[data]\ntask = \"clustering\"\n", ["task", "clustering"]),
    ("[data]\nmissing = \"ignore\"\n", ["missing", "ignore"]),
    ("[model]\nlayers = [{type = \"Conv3d\"}]\n", ["layer 1", "Conv3d"]),
    ("[model]\nlayers = [{type = \"Linear\", out_features = 8}, {type = \"Dropout\", rate = 0.1}]\n",
     ["layer 2 Dropout", "rate"]),
    ("[model]\nlayers = []\n", ["layers"]),
    ("[model]\nlayer = []\n", ["layer"]),
    ("[output]\ncheckpoint = 3\n", ["checkpoint"]),
    ("data = 3\n", ["[data]"]),
])
def test_mistakes_are_config_errors_naming_the_key(tmp_path, text, words):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        RunConfig.load(path)
    message = str(info.value)
    assert "bad.toml" in message
    assert all(w in message for w in words), message
    assert "\n" not in message


@pytest.mark.parametrize("content", [b"[data\npath = 1\n", b"epochs = = 3\n", b"\xff\xfe\x00garbage"])
def test_unreadable_files(tmp_path, content):
    (tmp_path / "broken.toml").write_bytes(content)
    with pytest.raises(ConfigError, match="broken.toml"):
        RunConfig.load(tmp_path / "broken.toml")


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        RunConfig.load(tmp_path / "none.toml")
    with pytest.raises(ConfigError, match="folder"):
        RunConfig.load(tmp_path)
