"""#20.10: ignoring a column updates the parameter count in the status bar, after training too."""

from __future__ import annotations

from guiwindow import load
from test_main_window import train


def _count(text: str) -> int:
    return int(text.split(" parameters")[0].split("·")[-1].strip().replace(",", ""))


def test_the_status_bar_count_follows_an_ignored_column(qtbot, window):
    from nnstudio.resources import sample_dataset

    load(qtbot, window, sample_dataset("penguins.csv"))
    assert train(qtbot, window, epochs=1)["status"] == "completed"
    before = _count(window.modelStatus.text())
    assert before == _count(window.modelBuilder.modelSummaryLabel.text())
    window.datasetPanel.set_role("island", "ignore")  # 3 categories: 3 inputs fewer
    qtbot.waitUntil(lambda: _count(window.modelBuilder.modelSummaryLabel.text()) < before)
    after = _count(window.modelBuilder.modelSummaryLabel.text())
    assert _count(window.modelStatus.text()) == after
    assert "train again" in window.modelStatus.text()
