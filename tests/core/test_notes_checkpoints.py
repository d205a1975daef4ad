"""#14: the course notes' own checkpoint files open with the right stack and predict like the original model."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from notes_models import NOTES_ANSWERS, NOTES_CLASS_SOURCE, forms, trained_notes_net
from nnstudio.core.model.checkpoint import load_checkpoint, reinfer
from nnstudio.core.model.infer import infer_stack
from nnstudio.core.errors import CheckpointError, NNStudioError
from nnstudio.core.model.user_class import NeedsArguments, classes_in, open_with_class, parse_arguments

NOTES_TYPES = ["Linear", "ReLU", "BatchNorm1d", "Linear", "ReLU", "Dropout", "Linear"]


def _same_predictions(loaded, net, n_in=6):
    x = torch.randn(40, n_in, generator=torch.Generator().manual_seed(3)) * 2
    with torch.no_grad():
        return torch.allclose(loaded.model(x), net(x), atol=1e-6, rtol=0)


@pytest.mark.parametrize("form", ["bare", "module_prefix", "notes_dict", "notes_dict_module_prefix", "tutorial_dict"])
def test_each_notes_form_opens_with_the_right_stack_and_predicts_like_the_original(tmp_path, form):
    net = trained_notes_net()
    path = tmp_path / f"{form}.pt"
    torch.save(forms(net)[form], path)
    loaded = load_checkpoint(path)
    assert loaded.bare and loaded.inferred is not None
    stack = loaded.inferred
    assert [m.name for m in stack.modules] == ["fc1", "batchnorm", "fc2", "out"]
    assert not stack.ambiguous and stack.needs_answers  # forward is not in the file: the window must ask
    assert [u.default for u in stack.unknowns] == ["nothing", "ReLU", "ReLU"]
    assert any(n.startswith("assumed") for n in loaded.notes)  # what the command line says it assumed
    answered = reinfer(loaded, NOTES_ANSWERS, dropout_p=0.25)
    assert [l["type"] for l in answered.layers] == NOTES_TYPES
    assert answered.layers[5]["p"] == 0.25
    assert not any(n.startswith("assumed") for n in answered.notes)
    assert _same_predictions(answered, net)
    if form.endswith("dict"):
        assert answered.epoch in (7, 12)
    if form == "tutorial_dict":
        assert answered.metrics == {"loss": 0.25}


def test_a_wrong_answer_changes_predictions_so_the_answers_matter(tmp_path):
    net = trained_notes_net()
    torch.save(net.state_dict(), tmp_path / "m.pt")
    loaded = load_checkpoint(tmp_path / "m.pt")
    assert not _same_predictions(reinfer(loaded, ["nothing", "Tanh", "Sigmoid"]), net)


def test_dropout_after_batchnorm_in_a_sequential_is_asked_not_taken_for_relu(tmp_path):
    torch.manual_seed(0)
    seq = nn.Sequential(nn.Linear(5, 12), nn.BatchNorm1d(12), nn.Dropout(0.3), nn.ReLU(), nn.Linear(12, 2))
    seq.train()
    with torch.no_grad():
        seq(torch.randn(32, 5) * 4)
    seq.eval()
    torch.save(seq.state_dict(), tmp_path / "seq.pt")
    loaded = load_checkpoint(tmp_path / "seq.pt")
    stack = loaded.inferred
    assert [u.exactly_one for u in stack.unknowns] == [True, True] and stack.needs_answers
    assert "nothing" not in stack.unknowns[0].choices  # an index gap holds exactly one module
    assert any("assumed ReLU" in n for n in loaded.notes) and any("assumed Dropout" in n for n in loaded.notes)
    answered = reinfer(loaded, ["Dropout", "ReLU"], dropout_p=0.3)
    assert [l["type"] for l in answered.layers] == ["Linear", "BatchNorm1d", "Dropout", "ReLU", "Linear"]
    x = torch.randn(20, 5)
    with torch.no_grad():
        assert torch.equal(answered.model(x), seq(x))


class _Square(nn.Module):
    """Hidden layers of the same width, registered out of forward order: several orders fit the shapes."""

    def __init__(self):
        super().__init__()
        self.out = nn.Linear(16, 2)
        self.fc2 = nn.Linear(16, 16)
        self.fc1 = nn.Linear(4, 16)
        self.fc3 = nn.Linear(16, 16)

    def forward(self, x):
        return self.out(torch.relu(self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))))


def test_an_ambiguous_order_offers_every_order_that_fits(tmp_path):
    torch.manual_seed(0)
    net = _Square().eval()
    torch.save({"state_dict": net.state_dict()}, tmp_path / "square.pt")
    loaded = load_checkpoint(tmp_path / "square.pt")
    stack = loaded.inferred
    assert stack.ambiguous
    assert set(stack.orders) == {("fc1", "fc2", "fc3", "out"), ("fc1", "fc3", "fc2", "out")}
    assert any("other order" in n for n in loaded.notes)
    answered = reinfer(loaded, ["ReLU", "ReLU", "ReLU"], order=("fc1", "fc2", "fc3", "out"))
    assert _same_predictions(answered, net, n_in=4)
    swapped = reinfer(loaded, ["ReLU", "ReLU", "ReLU"], order=("fc1", "fc3", "fc2", "out"))
    assert not _same_predictions(swapped, net, n_in=4)


@pytest.mark.parametrize("state, words", [
    ({"fc1.weight": torch.zeros(8, 4), "fc2.weight": torch.zeros(3, 9)}, ["do not chain", "fc1 4→8", "fc2 9→3"]),
    ({"conv.weight": torch.zeros(4, 3, 3, 3), "fc.weight": torch.zeros(2, 4)}, ["conv", "4-D", "Python file"]),
    ({"fc.weight": torch.zeros(2, 4), "fc.bias": torch.zeros(3)}, ["fc.bias", "(3,)"]),
    ({"bn.running_mean": torch.zeros(4), "fc.weight": torch.zeros(2, 4)}, ["bn", "affine"]),
])
def test_state_dicts_that_cannot_be_rebuilt_say_why(tmp_path, state, words):
    torch.save(state, tmp_path / "odd.pt")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "odd.pt")
    assert "odd.pt" in str(info.value) and all(w in str(info.value) for w in words), str(info.value)


def test_cli_info_says_what_it_assumed(tmp_path):
    torch.save(forms(trained_notes_net())["tutorial_dict"], tmp_path / "tut.pt")
    out = subprocess.run([sys.executable, "-m", "nnstudio", "info", str(tmp_path / "tut.pt")], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "note: assumed ReLU between batchnorm and fc2" in out.stdout
    assert "trained epochs: 7" in out.stdout


# ---------------------------------------------------------------------------------------------- the user's own class

def _notes_files(tmp_path, stored_args: bool):
    (tmp_path / "notes.py").write_text(NOTES_CLASS_SOURCE)
    namespace: dict = {}
    exec(compile(NOTES_CLASS_SOURCE, "notes.py", "exec"), namespace)
    torch.manual_seed(1)
    net = namespace["Net"](6, 3)
    net.train()
    with torch.no_grad():
        net(torch.randn(50, 6) * 2)
    net.eval()
    obj = {"model_state_dict": nn.DataParallel(net).state_dict(), "epoch": 4}
    if stored_args:
        obj["model_args"] = {"n_in": 6, "n_out": 3}
    torch.save(obj, tmp_path / "weights.pt")
    return net


def test_model_class_from_a_python_file_with_stored_arguments(tmp_path):
    net = _notes_files(tmp_path, stored_args=True)
    assert classes_in(tmp_path / "notes.py") == ["Net"]
    loaded = open_with_class(tmp_path / "weights.pt", tmp_path / "notes.py", "Net")
    assert [l["type"] for l in loaded.layers] == ["Linear", "ReLU", "BatchNorm1d", "Linear", "Tanh", "Dropout", "Linear"]
    assert loaded.layers[5]["p"] == 0.25 and loaded.epoch == 4
    assert _same_predictions(loaded, net)
    assert "n_in=6" in loaded.notes[0]


def test_model_class_asks_for_arguments_the_checkpoint_lacks(tmp_path):
    net = _notes_files(tmp_path, stored_args=False)
    with pytest.raises(NeedsArguments) as info:
        open_with_class(tmp_path / "weights.pt", tmp_path / "notes.py", "Net")
    assert info.value.names == ["n_in", "n_out"]
    loaded = open_with_class(tmp_path / "weights.pt", tmp_path / "notes.py", "Net", parse_arguments("n_in=6, n_out=3"))
    assert _same_predictions(loaded, net)
    with pytest.raises(CheckpointError, match="weights do not match"):
        open_with_class(tmp_path / "weights.pt", tmp_path / "notes.py", "Net", parse_arguments("n_in=7, n_out=3"))


@pytest.mark.parametrize("source, words", [
    ("raise SystemExit(3)\n", ["running it failed", "SystemExit"]),
    ("import torch\nfrom torch import nn\nclass Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
     "        self.fc = nn.Linear(6, 3)\n    def forward(self, x):\n        return self.fc(x) if x.sum() > 0 else -x\n",
     ["cannot be followed"]),
    ("def broken(:\n", ["not a Python file"]),
])
def test_model_class_files_that_fail_give_one_sentence(tmp_path, source, words):
    _notes_files(tmp_path, stored_args=True)
    (tmp_path / "bad.py").write_text(source)
    with pytest.raises(NNStudioError) as info:
        if "class Net" in source:
            torch.save({"fc.weight": torch.zeros(3, 6), "fc.bias": torch.zeros(3)}, tmp_path / "fc.pt")
            open_with_class(tmp_path / "fc.pt", tmp_path / "bad.py", "Net", {})
        elif "def broken" in source:
            classes_in(tmp_path / "bad.py")
        else:
            open_with_class(tmp_path / "weights.pt", tmp_path / "bad.py", "Net")
    assert all(w in str(info.value) for w in words), str(info.value)


def test_parse_arguments_takes_literals_only():
    assert parse_arguments("n_in=8, sizes=[4, 2], name='x'") == {"n_in": 8, "sizes": [4, 2], "name": "x"}
    with pytest.raises(CheckpointError):
        parse_arguments("n=__import__('os').system('true')")


def test_cli_info_with_a_model_class(tmp_path):
    _notes_files(tmp_path, stored_args=False)
    base = [sys.executable, "-m", "nnstudio", "info", str(tmp_path / "weights.pt"), "--model-class",
            f"{tmp_path / 'notes.py'}:Net"]
    missing = subprocess.run(base, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "Net(n_in, n_out)" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    out = subprocess.run(base + ["--args", "n_in=6, n_out=3"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Tanh" in out.stdout and "Dropout" in out.stdout and "note: built with Net from notes.py" in out.stdout


def test_an_empty_weight_is_named(tmp_path):
    torch.save({"fc.weight": torch.zeros(3, 0), "fc.bias": torch.zeros(3)}, tmp_path / "empty.pt")
    with pytest.raises(CheckpointError, match=r"'fc.weight' is empty \(shape \(3, 0\)\)"):
        load_checkpoint(tmp_path / "empty.pt")


def _with_statistics(net: nn.Module, n_in: int) -> nn.Module:
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(64, n_in) * 3 + 1)
    return net.eval()


def _max_diff(loaded, net, n_in):
    x = torch.randn(50, n_in, generator=torch.Generator().manual_seed(5)) * 3 + 1
    with torch.no_grad():
        return (loaded.model(x) - net(x)).abs().max().item()


def test_the_preset_order_as_a_bare_state_dict_is_rebuilt_alike_with_the_proposal_and_its_order(tmp_path):
    """What the window does on OK (the proposal, the shown order) rebuilds what load_checkpoint rebuilds."""
    torch.manual_seed(2)
    net = _with_statistics(nn.Sequential(nn.Linear(5, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.2),
                                         nn.Linear(16, 1)), 5)
    torch.save(net.state_dict(), tmp_path / "preset.pt")
    loaded = load_checkpoint(tmp_path / "preset.pt")
    stack = loaded.inferred
    answered = reinfer(loaded, stack.default_answers(), tuple(m.name for m in stack.modules), 0.2)
    for ckpt in (loaded, answered):
        assert [l["type"] for l in ckpt.layers] == ["Linear", "BatchNorm1d", "ReLU", "Dropout", "Linear"]
        assert _max_diff(ckpt, net, 5) < 1e-5


def test_a_gap_between_a_linear_and_its_norm_is_the_activation_so_the_gap_after_it_is_dropout(tmp_path):
    torch.manual_seed(4)
    net = _with_statistics(nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.BatchNorm1d(12), nn.Dropout(0.3),
                                         nn.Linear(12, 2)), 6)
    torch.save(net.state_dict(), tmp_path / "relu_first.pt")
    loaded = load_checkpoint(tmp_path / "relu_first.pt")
    assert loaded.inferred.default_answers() == ["ReLU", "Dropout"]
    assert [l["type"] for l in loaded.layers] == ["Linear", "ReLU", "BatchNorm1d", "Dropout", "Linear"]
    assert _max_diff(loaded, net, 6) < 1e-5
    assumed = [n for n in loaded.notes if n.startswith("assumed")]
    assert len(assumed) == 2 and "activation" in assumed[1] and "Dropout" in assumed[1]


def test_two_hidden_blocks_each_get_their_own_activation(tmp_path):
    torch.manual_seed(6)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Dropout(0.1),
                        nn.Linear(8, 1)).eval()
    torch.save(net.state_dict(), tmp_path / "two.pt")
    loaded = load_checkpoint(tmp_path / "two.pt")
    assert loaded.inferred.default_answers() == ["ReLU", "ReLU", "Dropout"]
    assert _max_diff(loaded, net, 4) < 1e-5


def test_init_arguments_stored_at_the_top_level_of_the_notes_dict_are_used(tmp_path):
    from notes_models import hparam_checkpoint
    from nnstudio.core.model.user_class import init_parameters, read_dict, stored_arguments

    net = hparam_checkpoint(tmp_path / "model.pth", tmp_path / "model.py")
    assert init_parameters(tmp_path / "model.py", "TabularNet") == ["input_size", "hidden_size", "dropout",
                                                                    "n_classes"]
    names = init_parameters(tmp_path / "model.py", "TabularNet")
    assert stored_arguments(read_dict(tmp_path / "model.pth"), names) == {
        "input_size": 10, "hidden_size": 64, "dropout": 0.2, "n_classes": 3}
    loaded = open_with_class(tmp_path / "model.pth", tmp_path / "model.py", "TabularNet")
    assert [l["type"] for l in loaded.layers] == ["Linear", "BatchNorm1d", "ReLU", "Dropout", "Linear"]
    assert loaded.layers[3]["p"] == 0.2 and loaded.epoch == 12
    assert _max_diff(loaded, net, 10) < 1e-5
