"""The window opens the notes' files (asking what a state_dict cannot say) and keeps its state on every bad file."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QDialog

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from notes_models import NOTES_ANSWERS, NOTES_CLASS_SOURCE, forms, trained_notes_net  # noqa: E402

from nnstudio.core.config import WINDOW_LIMITS  # noqa: E402


def drop(window, path):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    window.dropEvent(QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                                Qt.KeyboardModifier.NoModifier))


def _dialog(qtbot, window, name):
    qtbot.waitUntil(lambda: window.findChild(QDialog, name) is not None and window.findChild(QDialog, name).isVisible())
    return window.findChild(QDialog, name)


def test_notes_file_asks_before_applying_then_predicts_like_the_original(qtbot, window, tmp_path):
    net = trained_notes_net()
    path = tmp_path / "notes.pt"
    torch.save(forms(net)["tutorial_dict"], path)
    layers_before = window.modelBuilder.layers()
    with qtbot.waitSignal(window.layers_asked, timeout=10000):
        drop(window, path)
    dialog = _dialog(qtbot, window, "inferredModelDialog")
    assert window.model is None and window.modelBuilder.layers() == layers_before  # nothing applied yet
    marked = [dialog.stackList.item(i).text() for i in range(dialog.stackList.count())]
    assert sum(t.startswith("?") for t in marked) == 3 and marked[0] == "fc1: Linear(6 → 32)"
    assert not dialog.orderCombo.isEnabled()
    for combo, answer in zip(dialog.unknownCombos, NOTES_ANSWERS):
        combo.setCurrentText(answer)
    dialog.dropoutSpin.setValue(0.25)
    with qtbot.waitSignal(window.checkpoint_loaded, timeout=10000):
        dialog.accept()
    assert [l["type"] for l in window.modelBuilder.layers()] == ["Linear", "ReLU", "BatchNorm1d", "Linear", "ReLU",
                                                                 "Dropout", "Linear"]
    x = torch.randn(30, 6)
    with torch.no_grad():
        assert torch.allclose(window.model(x), net(x), atol=1e-6, rtol=0)


def test_an_ambiguous_file_asks_and_cancel_keeps_everything(qtbot, window, tmp_path):
    from test_notes_checkpoints import _Square

    torch.save(_Square().state_dict(), tmp_path / "square.pt")
    layers_before = window.modelBuilder.layers()
    with qtbot.waitSignal(window.layers_asked, timeout=10000):
        window.open_path(tmp_path / "square.pt")
    dialog = _dialog(qtbot, window, "inferredModelDialog")
    assert dialog.orderCombo.isEnabled() and dialog.orderCombo.count() == 2
    dialog.reject()
    qtbot.waitUntil(lambda: window.findChild(QDialog, "inferredModelDialog") is None)
    assert window.model is None and window.modelBuilder.layers() == layers_before


def test_choosing_the_other_order_rebuilds_the_questions(qtbot, window, tmp_path):
    from test_notes_checkpoints import _Square

    torch.manual_seed(0)
    net = _Square().eval()
    torch.save(net.state_dict(), tmp_path / "square.pt")
    with qtbot.waitSignal(window.layers_asked, timeout=10000):
        window.open_path(tmp_path / "square.pt")
    dialog = _dialog(qtbot, window, "inferredModelDialog")
    wanted = ("fc1", "fc2", "fc3", "out")
    dialog.orderCombo.setCurrentIndex(dialog.orderCombo.findData(wanted))
    assert dialog.order() == wanted and len(dialog.unknownCombos) == 3
    with qtbot.waitSignal(window.checkpoint_loaded, timeout=10000):
        dialog.accept()
    x = torch.randn(10, 4)
    with torch.no_grad():
        assert torch.allclose(window.model(x), net(x), atol=1e-6, rtol=0)


def test_model_class_from_a_python_file_asks_before_running(qtbot, window, tmp_path):
    (tmp_path / "notes.py").write_text(NOTES_CLASS_SOURCE + "\nopen(__file__ + '.ran', 'w').close()\n")
    namespace: dict = {}
    exec(compile(NOTES_CLASS_SOURCE, "notes.py", "exec"), namespace)
    net = namespace["Net"](6, 3).eval()
    torch.save({"state_dict": net.state_dict(), "model_args": {"n_in": 6, "n_out": 3}}, tmp_path / "w.pt")
    window.open_model_class(tmp_path / "w.pt", tmp_path / "notes.py")
    dialog = _dialog(qtbot, window, "runModelCodeDialog")
    assert not (tmp_path / "notes.py.ran").exists()  # nothing ran before the question was answered
    assert dialog.argumentsEdit.text() == "n_in=6, n_out=3"
    with qtbot.waitSignal(window.checkpoint_loaded, timeout=20000):
        dialog.runButton.click()
    assert (tmp_path / "notes.py.ran").exists()
    x = torch.randn(8, 6)
    with torch.no_grad():
        assert torch.allclose(window.model(x), net(x), atol=1e-6, rtol=0)


def test_model_class_cancel_runs_nothing(qtbot, window, tmp_path):
    (tmp_path / "notes.py").write_text(NOTES_CLASS_SOURCE + "\nopen(__file__ + '.ran', 'w').close()\n")
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "w.pt")
    window.open_model_class(tmp_path / "w.pt", tmp_path / "notes.py")
    _dialog(qtbot, window, "runModelCodeDialog").reject()
    assert not (tmp_path / "notes.py.ran").exists() and window.model is None


def _bad_files(tmp_path):
    good = tmp_path / "good.pt"
    from nnstudio.core.model.checkpoint import save_checkpoint
    from nnstudio.core.model.spec import SpecModel

    save_checkpoint(good, SpecModel([{"type": "Linear", "out_features": "auto"}], 4, 2), None)

    def damaged(name, change):
        raw = torch.load(good, weights_only=True)
        change(raw)
        torch.save(raw, tmp_path / name)
        return tmp_path / name

    files = [
        damaged("huge.pt", lambda r: r["model_spec"].update(in_features=10**12)),
        damaged("epoch.pt", lambda r: r.update(epoch="abc")),
        damaged("metrics.pt", lambda r: r.update(metrics=[1])),
        damaged("ints.pt", lambda r: r["state_dict"].update({"layers.0.weight": 5})),
    ]
    (tmp_path / "random.pt").write_bytes(os.urandom(3000))
    os.symlink("/dev/zero", tmp_path / "zero.pt")
    os.mkfifo(tmp_path / "pipe.pt")
    files += [tmp_path / "random.pt", tmp_path / "zero.pt", tmp_path / "pipe.pt"]
    for name, text in [("seed.toml", "[training]\nseed = 1099511627776\n"),
                       ("batch.toml", "[training]\nbatch_size = 1000000000000\n"),
                       ("lr.toml", "[training]\noptimizer = {name = \"Adam\", lr = 1e6}\n"),
                       ("epochs.toml", "[training]\nepochs = 1000000000\n"),
                       ("huge_seed.toml", "[training]\nseed = 9223372036854775807\n"),
                       ("binary.toml", None)]:
        path = tmp_path / name
        if text is None:
            path.write_bytes(b"\xff\xfe\x00garbage")
        else:
            path.write_text(text)
        files.append(path)
    os.mkfifo(tmp_path / "pipe.toml")
    files.append(tmp_path / "pipe.toml")
    return files


def test_every_bad_file_gets_its_sentence_and_the_window_keeps_its_state(qtbot, window, tmp_path):
    panel = window.trainingPanel
    panel.epochsSpin.setValue(7)
    panel.learningRateSpin.setValue(0.01)
    layers_before = window.modelBuilder.layers()
    config_before = panel.train_config()
    files = _bad_files(tmp_path)
    for path in files:
        with qtbot.waitSignal(window.error_shown, timeout=10000) as blocker:
            drop(window, path)
        message = blocker.args[0]
        assert path.name in message and "Traceback" not in message, message
        assert window.model is None and window.modelBuilder.layers() == layers_before
        assert panel.train_config() == config_before, path.name
        for box in window.findChildren(QDialog):
            box.close()
    assert len(files) == 14


@pytest.mark.parametrize("text, key, bounds", [
    ("seed = 1099511627776", "seed", "0 … 2.14748e+09"),
    ("batch_size = 1000000000000", "batch_size", "1 … 1e+07"),
    ("optimizer = {name = \"Adam\", lr = 1e6}", "optimizer.lr", "1e-06 … 10"),
    ("epochs = 1000000000", "epochs", "1 … 1e+06"),
])
def test_out_of_range_project_values_are_named_with_their_range(qtbot, window, tmp_path, text, key, bounds):
    path = tmp_path / "p.toml"
    path.write_text(f"[training]\n{text}\n")
    with qtbot.waitSignal(window.error_shown, timeout=10000) as blocker:
        window.open_project(path)
    assert f"[training] {key} = " in blocker.args[0] and bounds in blocker.args[0], blocker.args[0]


def test_the_controls_hold_exactly_the_window_limits(window):
    panel = window.trainingPanel
    spins = {"epochs": panel.epochsSpin, "batch_size": panel.batchSizeSpin, "lr": panel.learningRateSpin,
             "momentum": panel.momentumSpin, "step_size": panel.stepSizeSpin, "gamma": panel.gammaSpin,
             "plateau_factor": panel.plateauFactorSpin, "plateau_patience": panel.plateauPatienceSpin,
             "early_stopping": panel.earlyStoppingSpin, "grad_clip": panel.gradClipSpin}
    for key, spin in spins.items():
        assert (spin.minimum(), spin.maximum()) == pytest.approx(WINDOW_LIMITS[key]), key
    assert panel.seedSpin.maximum() == WINDOW_LIMITS["seed"][1]
    assert panel.weightDecaySpin.maximum() == WINDOW_LIMITS["weight_decay"][1]


def test_preset_order_as_a_bare_state_dict_is_proposed_as_the_core_rebuilds_it(qtbot, window, tmp_path):
    """Linear, BatchNorm1d, ReLU, Dropout, Linear saved as a bare state_dict: accepted as proposed it predicts alike."""
    from nnstudio.core.model.checkpoint import load_checkpoint
    from nnstudio.core.model.spec import SpecModel

    torch.manual_seed(3)
    layers = [{"type": "Linear", "out_features": 16}, {"type": "BatchNorm1d"}, {"type": "ReLU"},
              {"type": "Dropout", "p": 0.2}, {"type": "Linear", "out_features": "auto"}]
    net = SpecModel(layers, 5, 1)
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(64, 5) * 3 + 1)  # running statistics away from 0/1, so a misplaced norm shows
    net.eval()
    path = tmp_path / "preset.pt"
    torch.save(net.state_dict(), path)
    core = load_checkpoint(path)
    with qtbot.waitSignal(window.layers_asked, timeout=10000):
        window.open_path(path)
    dialog = _dialog(qtbot, window, "inferredModelDialog")
    assert dialog.answers() == core.inferred.default_answers()
    with qtbot.waitSignal(window.checkpoint_loaded, timeout=10000):
        dialog.accept()
    assert [l["type"] for l in window.modelBuilder.layers()] == [l["type"] for l in layers]
    x = torch.randn(40, 5) * 3 + 1
    with torch.no_grad():
        assert (window.model(x) - net(x)).abs().max().item() < 1e-5


def test_model_class_takes_init_arguments_from_the_top_level_of_the_notes_dict(qtbot, window, tmp_path):
    from notes_models import hparam_checkpoint

    net = hparam_checkpoint(tmp_path / "model.pth", tmp_path / "model.py")
    window.open_model_class(tmp_path / "model.pth", tmp_path / "model.py")
    dialog = _dialog(qtbot, window, "runModelCodeDialog")
    assert dialog.argumentsEdit.text() == "input_size=10, hidden_size=64, dropout=0.2, n_classes=3"
    with qtbot.waitSignal(window.checkpoint_loaded, timeout=20000):
        dialog.runButton.click()
    assert [l["type"] for l in window.modelBuilder.layers()] == ["Linear", "BatchNorm1d", "ReLU", "Dropout", "Linear"]
    x = torch.randn(25, 10) * 2 + 0.5
    with torch.no_grad():
        assert (window.model(x) - net(x)).abs().max().item() < 1e-5
