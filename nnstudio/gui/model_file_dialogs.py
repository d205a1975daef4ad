"""Questions asked before a model file is used: what a state_dict cannot say, and whether to run a .py file."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QLabel,
                               QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout)

from nnstudio.core.model.infer import InferredStack

UNKNOWN_MARK = "?"


class InferredModelDialog(QDialog):
    """The inferred stack with every unknown place marked `?` and a choice for each; nothing is applied until OK."""

    def __init__(self, file_name: str, stack: InferredStack, parent=None):
        super().__init__(parent)
        self.setObjectName("inferredModelDialog")
        self.setWindowTitle(f"Layers of {file_name}")
        self.stack = stack
        layout = QVBoxLayout(self)
        intro = QLabel(f"{file_name} holds only weights. The layers below were matched by their shapes; "
                       "the places marked ? hold layers without weights (an activation, Dropout) that the file "
                       "does not record. Say what your model's forward() does there.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.orderCombo = QComboBox()
        self.orderCombo.setObjectName("orderCombo")
        for order in stack.orders:
            self.orderCombo.addItem(" → ".join(order), order)
        self.orderCombo.setEnabled(stack.ambiguous)
        self.orderCombo.setToolTip("Several orders of these layers fit the shapes; choose the one forward() uses"
                                   if stack.ambiguous else "Only this order fits the shapes")
        form.addRow("Order" + (" (ambiguous)" if stack.ambiguous else ""), self.orderCombo)
        self.dropoutSpin = QDoubleSpinBox()
        self.dropoutSpin.setObjectName("dropoutSpin")
        self.dropoutSpin.setRange(0.0, 0.99)
        self.dropoutSpin.setSingleStep(0.05)
        self.dropoutSpin.setValue(0.5)
        self.dropoutSpin.setToolTip("Dropout's rate is not in the file either; it matters only for further training")
        form.addRow("Dropout p", self.dropoutSpin)
        layout.addLayout(form)
        self.stackList = QListWidget()
        self.stackList.setObjectName("stackList")
        layout.addWidget(self.stackList)
        self.unknownCombos: list[QComboBox] = []
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.setObjectName("buttons")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.orderCombo.currentIndexChanged.connect(self._on_orderCombo_changed)
        self._fill()
        self.resize(560, 460)

    def _fill(self) -> None:
        self.stackList.clear()
        self.unknownCombos = []
        by_after: dict[str, list] = {}
        for unknown in self.stack.unknowns:
            by_after.setdefault(unknown.after, []).append(unknown)
        marked = QBrush(QColor("#b35900"))
        proposed = iter(self.stack.default_answers())  # the core's proposal, the one the command line assumes
        for module in self.stack.modules:
            shape = f"{module.in_features} → {module.out_features}" if module.type == "Linear" else f"{module.in_features}"
            self.stackList.addItem(f"{module.name}: {module.type}({shape})")
            for unknown in by_after.get(module.name, []):
                item = QListWidgetItem(f"{UNKNOWN_MARK}  {unknown.describe()}")
                item.setForeground(marked)
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsSelectable)
                self.stackList.addItem(item)
                combo = QComboBox()
                combo.setObjectName(f"unknownCombo{len(self.unknownCombos)}")
                combo.addItems(list(unknown.choices))
                combo.setCurrentText(next(proposed))
                holder = QListWidgetItem()
                self.stackList.addItem(holder)
                self.stackList.setItemWidget(holder, combo)
                holder.setSizeHint(combo.sizeHint())
                self.unknownCombos.append(combo)

    def _on_orderCombo_changed(self, index: int) -> None:
        order = self.orderCombo.itemData(index)
        if order is not None and tuple(order) != self.order():
            self.stack = self.stack.with_order(tuple(order))
            self._fill()

    def answers(self) -> list[str]:
        return [combo.currentText() for combo in self.unknownCombos]

    def order(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.stack.modules)

    def dropout_p(self) -> float:
        return float(self.dropoutSpin.value())


class RunModelCodeDialog(QDialog):
    """Asks before a Python file runs (it is code), with the class to build and its __init__ arguments."""

    def __init__(self, py_name: str, ckpt_name: str, classes: list[str], arguments: str, parent=None):
        super().__init__(parent)
        self.setObjectName("runModelCodeDialog")
        self.setWindowTitle(f"Run {py_name}?")
        layout = QVBoxLayout(self)
        warning = QLabel(f"To read the weights in {ckpt_name}, nnstudio will run {py_name} and build the class "
                         "below. A Python file can do anything your account can do: run it only if you trust it.")
        warning.setWordWrap(True)
        layout.addWidget(warning)
        form = QFormLayout()
        self.classCombo = QComboBox()
        self.classCombo.setObjectName("classCombo")
        self.classCombo.addItems(classes)
        self.argumentsEdit = QLineEdit(arguments)
        self.argumentsEdit.setObjectName("argumentsEdit")
        self.argumentsEdit.setPlaceholderText("e.g. n_in=8, n_out=3 (empty: the checkpoint's own, or none)")
        form.addRow("Class", self.classCombo)
        form.addRow("Arguments", self.argumentsEdit)
        layout.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        buttons.setObjectName("buttons")
        self.runButton = buttons.addButton(f"Run {py_name}", QDialogButtonBox.ButtonRole.AcceptRole)
        self.runButton.setObjectName("runButton")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
