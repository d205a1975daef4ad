"""What the GUI tests do to the real window more than once."""

from __future__ import annotations


def load(qtbot, window, path):
    """Open a data file in the window and wait until the dataset panel has it."""
    with qtbot.waitSignal(window.datasetPanel.dataset_loaded, timeout=20000):
        window.open_path(path)
