"""How a row of the layer stack is drawn: its drawn icon, the delegate that paints shape and parameter count in
the row, muted secondary text, and spin boxes that ignore the wheel until focused."""

from __future__ import annotations


from PySide6.QtCore import (
    QModelIndex,
    QSize,
    Qt,
)
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QIcon,
    QPainter,
    QPainterPath,
    QPalette,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import (
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from nnstudio.gui.layer_stack import ERROR_COLOR, LayerStackModel


# --------------------------------------------------------------------------------------------
# Small widgets
# --------------------------------------------------------------------------------------------


def _muted(palette: QPalette) -> QColor:
    """Secondary text: between the text and the background, readable in light and dark themes."""
    text, base = palette.color(QPalette.ColorRole.WindowText), palette.color(QPalette.ColorRole.Window)
    return QColor(*(round(0.6 * a + 0.4 * b) for a, b in zip(text.getRgb()[:3], base.getRgb()[:3])))


def _drawn_icon(kind: str, color: QColor) -> QIcon:
    """Small line icons for when the platform has no icon theme (Xvfb, some Linux desktops)."""
    icon = QIcon()
    for size in (16, 32):
        pixmap = QPixmap(size, size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.scale(size / 16, size / 16)
        pen = QPen(color, 1.6, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin)
        painter.setPen(pen)
        path = QPainterPath()
        if kind == "add":
            path.moveTo(8, 3); path.lineTo(8, 13); path.moveTo(3, 8); path.lineTo(13, 8)
        elif kind == "remove":
            path.moveTo(3, 8); path.lineTo(13, 8)
        elif kind == "duplicate":
            path.addRoundedRect(2.5, 5.5, 8, 8, 1.5, 1.5)
            path.moveTo(5.5, 3.5); path.lineTo(5.5, 3.0); path.arcTo(5.5, 2.5, 2, 2, 180, -90)
            path.moveTo(6.5, 2.5); path.lineTo(12.5, 2.5); path.arcTo(11.5, 2.5, 2, 2, 90, -90)
            path.lineTo(13.5, 9.5)
        elif kind == "up":
            path.moveTo(3.5, 10.5); path.lineTo(8, 5.5); path.lineTo(12.5, 10.5)
        elif kind == "down":
            path.moveTo(3.5, 5.5); path.lineTo(8, 10.5); path.lineTo(12.5, 5.5)
        elif kind in ("undo", "redo"):
            path.moveTo(3, 7); path.lineTo(10, 7); path.cubicTo(14.5, 7, 14.5, 13, 10, 13); path.lineTo(7, 13)
            path.moveTo(5.5, 4.5); path.lineTo(3, 7); path.lineTo(5.5, 9.5)
            if kind == "redo":
                painter.translate(16, 0)
                painter.scale(-1, 1)
        painter.drawPath(path)
        painter.end()
        icon.addPixmap(pixmap)
    return icon


class _LayerDelegate(QStyledItemDelegate):
    """Roomier rows, and in the layer column the type in full text with its settings muted beside it."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        size = super().sizeHint(option, index)
        return QSize(size.width() + 6, max(size.height() + 8, 24))

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        if index.column() != LayerStackModel.LAYER_COLUMN:
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        layer_type, _, details = opt.text.partition(LayerStackModel.DETAIL_SEPARATOR)
        opt.text = ""
        widget = opt.widget
        style = widget.style() if widget is not None else None
        if style is None:
            super().paint(painter, option, index)
            return
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        rect = style.subElementRect(QStyle.SubElement.SE_ItemViewItemText, opt, widget).adjusted(3, 0, -3, 0)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        enabled = bool(opt.state & QStyle.StateFlag.State_Enabled)
        group = QPalette.ColorGroup.Normal if enabled else QPalette.ColorGroup.Disabled
        if selected:
            main = opt.palette.color(group, QPalette.ColorRole.HighlightedText)
            muted = main
        else:
            error = index.data(LayerStackModel.ErrorRole)
            main = ERROR_COLOR if error else opt.palette.color(group, QPalette.ColorRole.Text)
            muted = ERROR_COLOR if error else _muted(opt.palette)
        painter.save()
        painter.setFont(opt.font)
        metrics = QFontMetrics(opt.font)
        align = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        painter.setPen(main)
        painter.drawText(rect, align, metrics.elidedText(layer_type, Qt.TextElideMode.ElideRight, rect.width()))
        used = metrics.horizontalAdvance(layer_type) + metrics.horizontalAdvance("  ")
        if details and used < rect.width():
            plain = QFont(opt.font)
            plain.setBold(False)
            painter.setFont(plain)
            painter.setPen(muted)
            rest = rect.adjusted(used, 0, 0, 0)
            painter.drawText(rest, align, QFontMetrics(plain).elidedText(details, Qt.TextElideMode.ElideRight,
                                                                         rest.width()))
        painter.restore()


def _no_wheel_focus(widget: QWidget) -> QWidget:
    """Spin boxes in a scrolling dock should not change when the wheel merely passes over them."""
    widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    return widget
