"""The window's process keeps OpenMP teams out of the GUI thread (see nnstudio.gui.app)."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_gui_thread_computes_single_threaded_while_other_threads_keep_the_default(tmp_path):
    # A fresh interpreter: the setting is per thread and process-wide state must not leak into other tests.
    code = textwrap.dedent("""
        import threading, torch
        from nnstudio.gui.app import openmp_in_training_thread_only
        default = torch.get_num_threads()
        openmp_in_training_thread_only()
        seen = []
        def trainer_thread():
            seen.append(torch.get_num_threads())
            torch.set_num_threads(default)  # what Trainer.fit does in the training thread
            seen.append(torch.get_num_threads())
        t = threading.Thread(target=trainer_thread)
        t.start(); t.join()
        print(default, torch.get_num_threads(), *seen)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    default, main_after, other_before, other_set = map(int, out.stdout.split())
    assert main_after == 1
    assert other_before == 1  # no thread builds a team unless it asks (the loader, the warm-up)
    assert other_set == default  # the training thread asks for its own


def test_training_from_the_window_still_uses_every_core_for_large_ops(qtbot, tmp_path, monkeypatch):
    """The GUI thread's single thread does not leak into the run: the engine's choice reaches the fit."""
    import torch
    from PySide6.QtCore import QSettings, Qt

    from nnstudio.core.training import engine
    from nnstudio.gui.main_window import MainWindow

    monkeypatch.setattr(engine, "_cores", lambda: 2)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # as run_app leaves the GUI thread
    try:
        w = MainWindow(settings=QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat), logdir=tmp_path / "runs")
        qtbot.addWidget(w)
        w.show()
        with qtbot.waitSignal(w.datasetPanel.dataset_loaded, timeout=20000):
            w.open_sample()
        w.modelBuilder.set_layers([{"type": "Linear", "out_features": 1024}, {"type": "ReLU"},
                                   {"type": "Linear", "out_features": "auto"}], undoable=False)
        w.trainingPanel.epochsSpin.setValue(1)
        with qtbot.waitSignal(w.controller.fit_started, timeout=60000) as started:
            qtbot.mouseClick(w.trainingPanel.trainButton, Qt.MouseButton.LeftButton)
        assert started.args[0]["threads"] == 2
        assert torch.get_num_threads() == 1  # the GUI thread is untouched
        qtbot.waitUntil(lambda: not w.controller.is_running(), timeout=60000)
        w.shutdown()
    finally:
        torch.set_num_threads(previous)
