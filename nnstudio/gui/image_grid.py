"""Thumbnail grids of image datasets: the dataset preview (`imagePreview`: a few images per class, counts
per class) and the evaluation's misclassified test images (`misclassifiedGrid`: true/predicted, probability).

Views only: the files are listed by `core.data.images` and predictions made by `core.results.predict`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

THUMB = 64


def thumbnail(path: str | Path, size: int = THUMB) -> QIcon:
    """A file as a square icon, scaled without smoothing away small images (8×8 digits stay readable)."""
    image = QImage(str(path))
    if image.isNull():
        return QIcon()
    mode = Qt.TransformationMode.FastTransformation if max(image.width(), image.height()) < size else \
        Qt.TransformationMode.SmoothTransformation
    return QIcon(QPixmap.fromImage(image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, mode)))


class ThumbnailList(QListWidget):
    """Thumbnails in rows that fill the width: as many cells of at least THUMB + a margin as fit, widened to
    share the rest, so a narrow dock shows 4 (not 2) per row and a wide one more; captions wrap onto a second
    line where the grid allows two (misclassified, predicted) and are elided past it (the full text is in the tooltip)."""

    MARGIN = 4  # each side of a thumbnail, inside its cell

    def __init__(self, caption_lines: int = 1, parent: QWidget | None = None):
        super().__init__(parent)
        self.caption_lines = caption_lines
        self.setViewMode(QListWidget.ViewMode.IconMode)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.setMovement(QListWidget.Movement.Static)
        self.setWordWrap(True)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setUniformItemSizes(True)
        self.setSpacing(0)
        self._fit_grid()

    def cell_width(self, available: int) -> int:
        """The widest cell that still puts as many thumbnails on a row as fit in `available` pixels."""
        least = THUMB + 2 * self.MARGIN
        available -= 2  # Qt wraps a row whose cells would end exactly at the viewport's edge
        return max(least, available // max(1, available // least))

    def _fit_grid(self) -> None:
        lines = self.fontMetrics().lineSpacing() * self.caption_lines
        size = QSize(self.cell_width(self.viewport().width()), THUMB + lines + 2 * self.MARGIN)
        if size != self.gridSize():
            self.setGridSize(size)

    def resizeEvent(self, event) -> None:
        self._fit_grid()  # before the base class lays the items out again for the new width
        super().resizeEvent(event)

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        return QSize(THUMB + 2 * self.MARGIN + self.verticalScrollBar().sizeHint().width() + 2 * self.frameWidth(),
                     hint.height())


def _relative(path: Path, root: Path) -> str:
    """A file as the user named it: below the dataset's folder, else whole (a table may list absolute paths)."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


class _Grid(QWidget):
    def __init__(self, name: str, parent: QWidget | None = None, caption_lines: int = 1):
        super().__init__(parent)
        self.setObjectName(name)
        self.summaryLabel = QLabel("")
        self.summaryLabel.setObjectName("summaryLabel")
        self.summaryLabel.setWordWrap(True)
        self.thumbnailList = ThumbnailList(caption_lines)
        self.thumbnailList.setObjectName("thumbnailList")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.summaryLabel)
        layout.addWidget(self.thumbnailList)

    def heightForWidth(self, width: int) -> int:
        """The least height at this width (the wrapped summary and the list's minimum): a dock's scroll area asks
        this of a panel with a word-wrapped label, and the list scrolls inside a short dock instead of the dock
        scrolling around the list."""
        layout = self.layout()
        m = layout.contentsMargins()
        label = self.summaryLabel.heightForWidth(max(1, width - m.left() - m.right()))
        return m.top() + m.bottom() + layout.spacing() + max(label, 0) + self.thumbnailList.minimumSizeHint().height()

    def _add(self, path: Path, text: str, tip: str) -> None:
        item = QListWidgetItem(thumbnail(path), text)
        item.setToolTip(tip)
        item.setData(Qt.ItemDataRole.UserRole, str(path))
        self.thumbnailList.addItem(item)

    def texts(self) -> list[str]:
        return [self.thumbnailList.item(i).text() for i in range(self.thumbnailList.count())]


class ImagePreviewWidget(_Grid):
    """The first images of each class with the class name under each, and the count per class above."""

    shown = Signal(str)

    def __init__(self, parent: QWidget | None = None, per_class: int = 8):
        super().__init__("imagePreview", parent)
        self.per_class = per_class
        self.counts: dict[str, int] = {}

    def show_folder(self, path: str | Path, image_column: str | None = None, label_column: str | None = None) -> None:
        """Scan (headers only) and show; raises DataError with the core's sentence for a folder it cannot use.
        With `image_column`, `path` is a table listing the images (relative to it), `label_column` their classes."""
        from nnstudio.core.data.images import scan_folder, scan_table

        source = scan_table(path, image_column, label_column) if image_column else scan_folder(path)
        self.thumbnailList.clear()
        self.counts = source.class_counts()
        by_class: dict[str, list[Path]] = {}
        for f, label in zip(source.files, source.labels):
            by_class.setdefault(label, []).append(f)
        for label in source.classes:
            for f in by_class[label][: self.per_class]:
                self._add(f, label, f"{_relative(f, source.root)} ({label})")
        total = sum(self.counts.values())
        sizes = sorted(set(source.sizes), key=source.sizes.count, reverse=True)
        skipped = f"; {len(source.skipped)} file(s) skipped: {source.skipped[0][0]} {source.skipped[0][1]}" \
            if source.skipped else ""
        self.summaryLabel.setText(
            f"{Path(path).name}: {total:,} images in {len(self.counts)} classes ("
            + ", ".join(f"{c}: {n}" for c, n in self.counts.items()) + f"); most common size "
            f"{sizes[0][0]}×{sizes[0][1]}" + (f", {len(sizes)} sizes (others resized)" if len(sizes) > 1 else "")
            + skipped)
        self.shown.emit(str(path))


class MisclassifiedGrid(_Grid):
    """Test images the model got wrong: "true → predicted (probability)" under each thumbnail."""

    def __init__(self, parent: QWidget | None = None, limit: int = 200):
        super().__init__("misclassifiedGrid", parent, caption_lines=2)
        self.limit = limit

    def show_errors(self, paths: Sequence[Path], true: Sequence[str], predicted: Sequence[str],
                    probability: Sequence[float]) -> None:
        self.thumbnailList.clear()
        wrong = [(p, t, q, pr) for p, t, q, pr in zip(paths, true, predicted, probability) if t != q]
        for p, t, q, pr in wrong[: self.limit]:
            self._add(Path(p), f"{t} → {q} ({pr:.2f})", f"{Path(p).name}: true {t}, predicted {q} with p={pr:.3f}")
        n = len(paths)
        self.summaryLabel.setText(f"{len(wrong)} of {n} test images misclassified"
                                  + (f" (first {self.limit} shown)" if len(wrong) > self.limit else ""))


class PredictedImagesGrid(_Grid):
    """The Predict tab's images: each thumbnail with its predicted class and probability."""

    def __init__(self, parent: QWidget | None = None, limit: int = 500):
        super().__init__("predictImages", parent, caption_lines=2)
        self.limit = limit

    def show_predictions(self, paths: Sequence[Path], predicted: Sequence[str], probability: Sequence[float]) -> None:
        self.thumbnailList.clear()
        for p, q, pr in list(zip(paths, predicted, probability))[: self.limit]:
            self._add(Path(p), f"{q} ({pr:.2f})", f"{Path(p).name}: {q} with p={pr:.3f}")
        self.summaryLabel.setText(f"{len(paths):,} image(s) predicted"
                                  + (f" (first {self.limit} shown)" if len(paths) > self.limit else ""))
