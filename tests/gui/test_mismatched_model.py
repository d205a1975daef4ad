"""#20.1: a course-style net whose outputs do not fit the dataset's target opens cleanly with the mismatch said:
no uncaught exception, no evaluation of the previous model left showing, F7 (evaluate) says why."""

from __future__ import annotations

import torch
from guiwindow import load
from PySide6.QtWidgets import QDialog
from test_open_model_files import drop
from torch import nn

from nnstudio.core.data import model_io_size


def test_three_outputs_on_a_binary_target_is_opened_with_the_mismatch_said(qtbot, window, churn_csv, tmp_path):
    load(qtbot, window, churn_csv)
    df = window.datasetPanel.dataframe()
    n_in, n_out = model_io_size(df, window.datasetPanel.target(), window.datasetPanel.task(),
                                window.datasetPanel.features())
    assert n_out == 1  # binary
    window.evaluationPanel.evaluationHeader.setText("previous model's results")
    net = nn.Sequential(nn.Linear(n_in, 16), nn.ReLU(), nn.Linear(16, 3))
    path = tmp_path / "net.pt"
    torch.save(net.state_dict(), path)
    errors = []
    window.error_shown.connect(errors.append)
    drop(window, path)
    qtbot.waitUntil(lambda: window.findChild(QDialog, "inferredModelDialog") is not None
                    or window.model is not None or errors, timeout=10000)
    dialog = window.findChild(QDialog, "inferredModelDialog")
    if dialog is not None and window.model is None:
        dialog.accept()
    qtbot.waitUntil(lambda: window.model is not None or errors, timeout=10000)
    message = " ".join(errors) + " " + window.statusBar().currentMessage()
    assert "3 outputs" in message and "binary" in message, message
    assert window.evaluationPanel.evaluationHeader.text() != "previous model's results"
    window.actionEvaluate.trigger()  # F7
    qtbot.waitUntil(lambda: len(errors) >= 1)
    assert "3 outputs" in errors[-1], errors
