"""Small widgets shared by the panels."""

from __future__ import annotations

import math
import re

from PySide6.QtCore import QEvent, QSize
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QDoubleSpinBox, QLabel, QSizePolicy, QWidget


class LogSpinBox(QDoubleSpinBox):
    """A number box for rates and tolerances: shows and accepts scientific notation, arrows walk 1-2-5 per decade.

    A learning rate lives on a log scale: 1e-4 → 2e-4 → 5e-4 → 1e-3 is what people step through.
    With ``allow_zero`` the value 0 sits below `floor` (weight decay off).
    """

    _NUMBER = re.compile(r"^[+]?(\d+\.?\d*|\.\d+)?([eE][+-]?\d*)?$")

    def __init__(self, floor: float, maximum: float, allow_zero: bool = False, parent: QWidget | None = None,
                 mantissas: tuple[int, ...] = (1, 2, 5)):
        super().__init__(parent)
        self._mantissas = mantissas  # (1,) steps by whole decades (eps: 1e-5 → 1e-4)
        self._floor = floor
        self._allow_zero = allow_zero
        self.setDecimals(12)  # the box rounds values to this many decimals; 1e-6 needs 6, keep headroom
        self.setRange(0.0 if allow_zero else floor, maximum)
        self.setKeyboardTracking(False)
        self.setCorrectionMode(QDoubleSpinBox.CorrectionMode.CorrectToNearestValue)

    def textFromValue(self, value: float) -> str:
        if value == 0:
            return "0"
        text = f"{value:.4g}"
        return re.sub(r"e([+-])0*(\d)", r"e\1\2", text).replace("e+", "e")

    def valueFromText(self, text: str) -> float:
        if self.specialValueText() and text.strip() == self.specialValueText():
            return self.minimum()
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        stripped = text.strip()
        special = self.specialValueText()
        if special and stripped == special:
            return QValidator.State.Acceptable, text, pos
        if special and special.startswith(stripped):
            return QValidator.State.Intermediate, text, pos
        if not stripped or not self._NUMBER.match(stripped):
            return QValidator.State.Invalid if stripped else QValidator.State.Intermediate, text, pos
        try:
            value = float(stripped)
        except ValueError:
            return QValidator.State.Intermediate, text, pos
        if self.minimum() <= value <= self.maximum() and (value == 0 and self._allow_zero or value >= self._floor):
            return QValidator.State.Acceptable, text, pos
        return QValidator.State.Intermediate, text, pos

    def fixup(self, text: str) -> str:
        return self.textFromValue(self.value())

    def stepBy(self, steps: int) -> None:
        value = self.value()
        for _ in range(abs(steps)):
            value = self._next(value, up=steps > 0)
        self.setValue(min(self.maximum(), max(self.minimum(), value)))
        self.selectAll()

    def _next(self, value: float, up: bool) -> float:
        if value <= 0:
            return self._ladder_at_least(self._floor) if up else 0.0
        exponent = math.floor(math.log10(value))
        candidates = sorted(m * 10.0 ** e for e in (exponent - 1, exponent, exponent + 1) for m in self._mantissas)
        if up:
            return next(c for c in candidates if c > value * (1 + 1e-9))
        lower = [c for c in candidates if c < value * (1 - 1e-9)]
        result = lower[-1]
        if result < self._floor * (1 - 1e-9):
            return 0.0 if self._allow_zero else self._floor
        return result

    def _ladder_at_least(self, value: float) -> float:
        exponent = math.floor(math.log10(value))
        return next(m * 10.0 ** e for e in (exponent, exponent + 1) for m in self._mantissas if m * 10.0 ** e >= value * (1 - 1e-9))


class WrappedLine(QWidget):
    """Holds a word-wrapped label outside any layout, so a new text lays the window out again only when it
    needs another height.

    Each ``QLabel.setText`` asks its parent's layout to recompute, and that goes up through every layout to
    the window: the training position, new 4 times a second, relaid out the run controls, the panel, its
    dock and the main window each time (15% of the GUI thread's CPU while a tiny model trained, measured).
    Here the label's request stops at this widget, which asks the layouts above only when the height the
    text needs at this width changes.
    """

    def __init__(self, label: QLabel, parent: QWidget | None = None):
        super().__init__(parent)
        self.label = label
        self._height = 0
        label.setParent(self)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self._fit()

    def sizeHint(self) -> QSize:
        return QSize(self.label.sizeHint().width(), self._height)

    def minimumSizeHint(self) -> QSize:
        return QSize(self.label.minimumSizeHint().width(), self._height)

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.LayoutRequest:  # the label's text (or font) changed
            self._fit()
            return True
        return super().event(event)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        width = self.width() if self.width() > 0 else self.label.sizeHint().width()
        height = self.label.heightForWidth(width)
        if height < 0:
            height = self.label.sizeHint().height()
        self.label.setGeometry(0, 0, width, height)
        if height != self._height:
            self._height = height
            self.updateGeometry()
