"""#20.6: the per-class table shows every column at 1024, 1280 and 1366 wide; the code dock's lines are readable."""

from __future__ import annotations

import pytest
from guiwindow import load
from PySide6.QtCore import Qt
from test_main_window import train


@pytest.mark.parametrize("width", [1024, 1280, 1366])
def test_per_class_table_shows_all_its_columns(qtbot, window, flowers_csv, width):
    window.resize(width, 720)
    load(qtbot, window, flowers_csv)
    assert train(qtbot, window, epochs=1)["status"] == "completed"
    window.centralTabs.setCurrentWidget(window.evaluationTab)
    table = window.evaluationPanel.perClassTable
    qtbot.waitUntil(lambda: table.isVisible() and table.model().rowCount() > 0)
    header = table.horizontalHeader()
    headers = [table.model().headerData(c, Qt.Orientation.Horizontal) for c in range(table.model().columnCount())]
    assert {"precision", "recall"} <= {str(h).lower() for h in headers}, headers
    qtbot.waitUntil(lambda: table.viewport().width() >= header.length())
    for c in range(header.count()):
        assert header.sectionSize(c) >= header.sectionSizeHint(c) or header.sectionSize(c) >= table.sizeHintForColumn(c)


def test_the_code_dock_wraps_its_lines_by_default_and_on_request_not(qtbot, window):
    window.codeView.raise_()
    window.codeView.show()
    panel = window.codeViewPanel
    qtbot.waitUntil(lambda: "class Net(nn.Module):" in panel.text())
    window.resizeDocks([window.codeView], [300], Qt.Orientation.Horizontal)
    qtbot.waitUntil(lambda: panel.codeEdit.viewport().width() > 0)
    bar = panel.codeEdit.horizontalScrollBar()
    assert bar.maximum() == 0  # nothing cut: the long lines wrap
    panel.wrapButton.click()
    qtbot.waitUntil(lambda: bar.maximum() > 0)  # one line each: scroll sideways
