"""How the window fits a screen: the first size from the available geometry, docks that scroll, never clip.

The rule every dock follows (the Dataset, Model and Training panels today; evaluation, runs or code views
later): its panel sits in a ``DockScrollArea``, so a dock narrower or shorter than its panel scrolls
instead of cutting controls off, and the plots in the middle keep ``MIN_PLOT_WIDTH``. A panel states the
width it needs (``minimumSizeHint``) and may pin what must stay visible (the Training panel pins Train
below its own scrolling settings); side areas tab their docks (``QMainWindow.tabifyDockWidget``).
"""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDockWidget, QFrame, QMainWindow, QScrollArea, QStyle, QWidget

#: The plots never get narrower than this while the window is at least this wide plus two thin docks.
MIN_PLOT_WIDTH = 300
#: The size the window takes where the screen has room for it.
PREFERRED_SIZE = QSize(1440, 860)
#: Room a window manager's frame and title bar take, for a first size that fits inside the screen.
FRAME_ALLOWANCE = QSize(16, 40)


class DockScrollArea(QScrollArea):
    """A dock's content: scrolls when the dock is smaller than the panel, never squeezes it below its minimum."""

    def __init__(self, panel: QWidget, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName(f"{panel.objectName() or 'panel'}Scroll")
        self.setWidget(panel)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)

    def sizeHint(self) -> QSize:
        widget = self.widget()
        return widget.sizeHint() if widget is not None else super().sizeHint()

    def minimumSizeHint(self) -> QSize:
        """Small: the dock may shrink (the plots come first); what no longer fits scrolls."""
        bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        return QSize(4 * bar, 4 * bar)


def available_geometry(window: QWidget) -> QRect:
    screen = window.screen() or QGuiApplication.primaryScreen()
    return screen.availableGeometry()


def first_size(available: QSize) -> QSize:
    """The preferred size, shrunk to what the screen offers less the window frame."""
    return QSize(min(PREFERRED_SIZE.width(), available.width() - FRAME_ALLOWANCE.width()),
                 min(PREFERRED_SIZE.height(), available.height() - FRAME_ALLOWANCE.height()))


def fit_to_screen(window: QMainWindow, restored: bool = False) -> None:
    """Size the window to the available geometry of its screen.

    Without a saved geometry it takes the preferred size, shrunk to the screen; a saved geometry from a
    larger screen (or one since made smaller) is replaced the same way; one that fits is kept.
    """
    area = available_geometry(window)
    if restored and area.contains(window.frameGeometry()):
        return
    window.resize(first_size(area.size()))
    window.move(area.topLeft())


#: Room the dock separators and frames take between the docks and the plots.
SEPARATOR_SLACK = 40


#: Share of the window's width the plots get at least when the docks are first sized.
PLOT_SHARE = 0.36


def side_widths(window_width: int, left_wanted: int, right_wanted: int, left_needed: int = 0,
                right_needed: int = 0) -> tuple[int, int]:
    """Dock widths that leave the plots their share: the right column (run controls) is served first.

    A column narrower than its panels need (``*_needed``: their minimum width plus a scroll bar) would scroll
    sideways, so the plots' share gives way for it, down to ``MIN_PLOT_WIDTH`` and no further.
    """
    plots = max(MIN_PLOT_WIDTH, int(PLOT_SHARE * window_width))
    room = max(0, window_width - plots - SEPARATOR_SLACK)
    right = min(right_wanted, room)
    left = min(left_wanted, room - right)
    spare = max(0, window_width - MIN_PLOT_WIDTH - SEPARATOR_SLACK - left - right)
    grow = min(spare, max(0, right_needed - right))
    right += grow
    left += min(spare - grow, max(0, left_needed - left))
    return left, right


#: A dock's frame around its content, each side.
DOCK_FRAME = 2


def needed_width(window: QMainWindow, area: Qt.DockWidgetArea) -> int:
    """The width the docks in `area` need to show their panels without scrolling sideways."""
    widest = 0
    for dock in window.findChildren(QDockWidget):
        scroll = dock.widget()
        if window.dockWidgetArea(dock) != area or not isinstance(scroll, DockScrollArea) or scroll.widget() is None:
            continue
        bar = scroll.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        panel = scroll.widget()
        least = max(panel.minimumSizeHint().width(), panel.minimumWidth())  # what QScrollArea squeezes it to
        widest = max(widest, least + bar + 2 * DOCK_FRAME)
    return widest


def fit_docks(window: QMainWindow, left: QDockWidget, right: QDockWidget, left_wanted: int,
              right_wanted: int) -> None:
    """Give the side docks widths that fit this window (at start, on Reset layout, on another screen)."""
    lw, rw = side_widths(window.width(), left_wanted, right_wanted,
                         needed_width(window, Qt.DockWidgetArea.LeftDockWidgetArea),
                         needed_width(window, Qt.DockWidgetArea.RightDockWidgetArea))
    window.resizeDocks([left, right], [lw, rw], Qt.Orientation.Horizontal)
