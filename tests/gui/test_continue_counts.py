"""#20.10: Continue shows the epochs it trains as the run's own numbers (epoch 6/6 after 3 + 3), not 3/3."""

from __future__ import annotations

from guiwindow import load
from test_resume_window import make_window, run


def test_continue_progress_counts_on_from_the_first_part(qtbot, tmp_path, flowers_csv):
    w = make_window(qtbot, tmp_path)
    load(qtbot, w, flowers_csv)
    run(qtbot, w, w.actionTrain, 3)
    assert "epoch 3/3 ·" in w.trainingPanel.progressLabel.text()
    info = run(qtbot, w, w.actionContinue, 3)
    assert info["epochs"] == 6
    text = w.trainingPanel.progressLabel.text()
    assert "epoch 6/6 ·" in text and "3/3" not in text, text
    w.model_unsaved = False
    w.shutdown()
