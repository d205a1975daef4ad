"""The code view: the course-notes PyTorch of the window's current state, and the File > Export entries.

The text comes from ``core.export.codegen`` (the same text *Export > Python script* writes). It is regenerated
after the dataset choices, layers or training settings change, debounced, and only while the dock is shown.
While training, the lines whose numbers the plots show are marked; hovering a layer in the builder marks
its attribute line.
"""

from __future__ import annotations

import copy
import keyword
from pathlib import Path
from typing import Any, Callable, Protocol

from PySide6.QtCore import QObject, QRegularExpression, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QTextOption,
    QGuiApplication,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextCursor,
    QTextFormat,
)
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from nnstudio.core.export.codegen import GeneratedCode



class CodeViewHost(Protocol):
    """What the code view asks of the window it serves (the window passes itself; nothing imports it back)."""

    datasetPanel: Any
    model: Any
    last_run: Any
    loaded_checkpoint: Any

    def run_config(self) -> Any: ...
    def prepare_data(self) -> Any: ...
    def show_error(self, title: str, message: str) -> None: ...
    def statusBar(self) -> Any: ...
    def _last_dir(self, kind: str = "data") -> str: ...
    def _remember_dir(self, path: Any, kind: str = "data") -> None: ...

#: What each marked loop part feeds on the plots.
PLOT_PARTS = {"step_loss": "step loss curve", "epoch_loss": "epoch loss points", "validation": "validation curve",
              "learning_rate": "learning rate"}


def _format(color: str, bold: bool = False, italic: bool = False) -> QTextCharFormat:
    fmt = QTextCharFormat()
    fmt.setForeground(QColor(color))
    if bold:
        fmt.setFontWeight(QFont.Weight.Bold)
    fmt.setFontItalic(italic)
    return fmt


class PythonHighlighter(QSyntaxHighlighter):
    """Keywords, builtins, strings, numbers, comments and decorators, one line at a time (docstrings span lines)."""

    def __init__(self, document):
        super().__init__(document)
        kw = _format("#0033b3", bold=True)
        rules = [(QRegularExpression(r"\b(" + "|".join(keyword.kwlist) + r")\b"), kw),
                 (QRegularExpression(r"\b(self|super|print|len|range|float|int|str|list|dict|sorted|isinstance)\b"),
                  _format("#871094")),
                 (QRegularExpression(r"\b(nn|torch|np|pd|optim)\b"), _format("#00627a")),
                 (QRegularExpression(r"\b[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?\b"), _format("#1750eb")),
                 (QRegularExpression(r"^\s*@\w+(\.\w+)*"), _format("#9e880d")),
                 (QRegularExpression(r"\bdef\s+(\w+)|\bclass\s+(\w+)"), _format("#00627a", bold=True)),
                 (QRegularExpression(r"[rfb]?'[^'\\n]*'|[rfb]?\"[^\"\\n]*\""), _format("#067d17"))]
        self.rules = rules
        self.comment = _format("#8c8c8c", italic=True)
        self.docstring = _format("#067d17", italic=True)
        self.triple = QRegularExpression('"""')

    def highlightBlock(self, text: str) -> None:
        for pattern, fmt in self.rules:
            it = pattern.globalMatch(text)
            while it.hasNext():
                m = it.next()
                self.setFormat(m.capturedStart(), m.capturedLength(), fmt)
        hash_at = _comment_start(text)
        if hash_at >= 0:
            self.setFormat(hash_at, len(text) - hash_at, self.comment)
        # Triple-quoted strings: state 1 = inside one at the end of this block.
        start = 0 if self.previousBlockState() == 1 else -1
        pos = 0
        self.setCurrentBlockState(0)
        while True:
            if start < 0:
                m = self.triple.match(text, pos)
                if not m.hasMatch():
                    break
                start, pos = m.capturedStart(), m.capturedEnd()
            m = self.triple.match(text, pos)
            if not m.hasMatch():
                self.setFormat(start, len(text) - start, self.docstring)
                self.setCurrentBlockState(1)
                break
            self.setFormat(start, m.capturedEnd() - start, self.docstring)
            pos, start = m.capturedEnd(), -1


def _comment_start(text: str) -> int:
    quote = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            return i
    return -1


class CodeViewPanel(QWidget):
    """Read-only, highlighted code with a copy button; `source` gives the code (or raises a sentence)."""

    code_changed = Signal()
    copied = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.source: Callable[[], GeneratedCode] | None = None
        self.code: GeneratedCode | None = None
        self._dirty = True
        self._hovered = -1
        self._training = False
        root = QVBoxLayout(self)
        root.setContentsMargins(6, 6, 6, 6)
        row = QHBoxLayout()
        self.captionLabel = QLabel("The PyTorch of this run, as the course notes write it")
        self.captionLabel.setObjectName("captionLabel")
        self.captionLabel.setWordWrap(True)
        self.copyButton = QToolButton()
        self.copyButton.setObjectName("copyButton")
        self.copyButton.setText("Copy")
        self.copyButton.setToolTip("Copy the whole script to the clipboard")
        self.wrapButton = QToolButton()
        self.wrapButton.setObjectName("wrapButton")
        self.wrapButton.setText("Wrap")
        self.wrapButton.setCheckable(True)
        self.wrapButton.setChecked(True)  # a dock ~300 px wide would otherwise cut most lines
        self.wrapButton.setToolTip("Wrap long lines at the dock's width (off: one line each, scroll sideways)")
        self.wrapButton.toggled.connect(self._on_wrapButton_toggled)
        row.addWidget(self.captionLabel, 1)
        row.addWidget(self.wrapButton)
        row.addWidget(self.copyButton)
        root.addLayout(row)
        self.codeEdit = QPlainTextEdit()
        self.codeEdit.setObjectName("codeEdit")
        self.codeEdit.setReadOnly(True)
        self.codeEdit.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.codeEdit.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        self.codeEdit.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                              | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.codeEdit.setFont(font)
        self.highlighter = PythonHighlighter(self.codeEdit.document())
        root.addWidget(self.codeEdit, 1)
        self.statusLabel = QLabel()
        self.statusLabel.setObjectName("statusLabel")
        self.statusLabel.setWordWrap(True)
        root.addWidget(self.statusLabel)
        self.updateTimer = QTimer(self)
        self.updateTimer.setObjectName("updateTimer")
        self.updateTimer.setSingleShot(True)
        self.updateTimer.setInterval(250)
        self.updateTimer.timeout.connect(self._on_updateTimer_timeout)
        self.copyButton.clicked.connect(self._on_copyButton_clicked)

    # ---- public

    def _on_wrapButton_toggled(self, wrap: bool) -> None:
        self.codeEdit.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth if wrap
                                      else QPlainTextEdit.LineWrapMode.NoWrap)

    def text(self) -> str:
        return self.codeEdit.toPlainText()

    def schedule_update(self) -> None:
        """Regenerate soon (edits in a burst give one regeneration); while hidden, when shown again."""
        self._dirty = True
        if self.isVisible():
            self.updateTimer.start()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._dirty:
            self.updateTimer.start(0)

    def regenerate(self) -> None:
        self.updateTimer.stop()
        self._dirty = False
        if self.source is None:
            return
        try:
            code = self.source()
        except Exception as exc:  # an invalid stack or setting: say so and keep the last good text
            self.statusLabel.setText(f"Not updated: {exc}")
            return
        self.code = code
        bar = self.codeEdit.verticalScrollBar()
        position = bar.value()
        self.codeEdit.setPlainText(code.text)
        bar.setValue(position)
        self.set_training(self._training)
        self.code_changed.emit()

    def highlight_layer(self, index: int) -> None:
        """Mark the attribute line of layer `index` (0-based); -1 clears the mark."""
        self._hovered = index
        self._refresh_marks()
        line = self.code.layer_lines.get(index) if self.code and index >= 0 else None
        if line is not None:
            block = self.codeEdit.document().findBlockByNumber(line)
            self.codeEdit.setTextCursor(QTextCursor(block))
            self.codeEdit.centerCursor()

    def set_training(self, running: bool) -> None:
        """While training, mark the lines whose numbers the plots show."""
        self._training = running
        self._refresh_marks()
        if running and self.code:
            where = "; ".join(f"{label}: line {self.code.parts[p][0] + 1}" for p, label in PLOT_PARTS.items()
                              if p in self.code.parts)
            self.statusLabel.setText(f"Training. The plots show — {where}")
        elif not running:
            self.statusLabel.setText("")

    def marked_lines(self) -> dict[str, list[int]]:
        """Which lines carry which mark now (for tests and for the screenshot's reader)."""
        out: dict[str, list[int]] = {}
        for sel in self.codeEdit.extraSelections():
            out.setdefault(sel.format.property(QTextFormat.Property.UserProperty), []).append(
                sel.cursor.blockNumber())
        return out

    # ---- internals
    def _selection(self, line: int, color: str, kind: str) -> QTextEdit.ExtraSelection:
        sel = QTextEdit.ExtraSelection()
        sel.format.setBackground(QColor(color))
        sel.format.setProperty(QTextFormat.Property.FullWidthSelection, True)
        sel.format.setProperty(QTextFormat.Property.UserProperty, kind)
        sel.cursor = QTextCursor(self.codeEdit.document().findBlockByNumber(line))
        return sel

    def _refresh_marks(self) -> None:
        selections = []
        code = self.code
        if code is not None:
            if self._training:
                for part in PLOT_PARTS:
                    if part in code.parts:
                        first, last = code.parts[part]
                        selections += [self._selection(n, "#fff1c2", "plot") for n in range(first, last + 1)]
            line = code.layer_lines.get(self._hovered) if self._hovered >= 0 else None
            if line is not None:
                selections.append(self._selection(line, "#cfe3ff", "layer"))
        self.codeEdit.setExtraSelections(selections)

    def _on_updateTimer_timeout(self) -> None:
        self.regenerate()

    def _on_copyButton_clicked(self) -> None:
        QGuiApplication.clipboard().setText(self.text())
        self.copied.emit()


class CodeExport(QObject):
    """The window's code view dock and File > Export entries; lives in the GUI thread with the window."""

    def __init__(self, window: CodeViewHost):
        super().__init__(window)
        self.setObjectName("codeExport")
        self.window = window
        self.panel = CodeViewPanel()
        self.panel.setObjectName("codeViewPanel")
        self.panel.source = self.current_code

    def current_code(self) -> GeneratedCode:
        from nnstudio.core.export.codegen import facts_from_frame, generate

        w = self.window
        cfg = w.run_config()
        if w.datasetPanel.images() is not None:
            return self._image_code(cfg)
        df = w.datasetPanel.dataframe()
        facts = None
        if df is not None:
            path = w.datasetPanel.path() or "data.csv"
            facts = facts_from_frame(df, path, w.datasetPanel.target(), w.datasetPanel.task_choice(),
                                     exclude=getattr(cfg.data, "exclude", ()))  # [data] exclude, once it lands
            cfg.data.path = str(path)
        return generate(cfg, facts, source="the nnstudio window")

    def _image_code(self, cfg) -> GeneratedCode:
        """The course-style CNN script of `nnstudio export --script` for the open image folder; the live view
        needs only the folder's classes and the input shape, so nothing is decoded for it."""
        from types import SimpleNamespace

        from nnstudio.core.data.images import ImagePreprocessor
        from nnstudio.core.export.codegen_images import image_script

        w = self.window
        shape, _n = w._io_shape()
        if shape is None:
            raise ValueError("the image folder has no readable image size")
        c = shape[0]
        pre = ImagePreprocessor(list(w.datasetPanel.images()["classes"]), c, shape[1], shape[2], [0.0] * c, [1.0] * c)
        storage = {"storage": w.datasetPanel.images().get("storage")}  # streamed runs' scripts decode in workers
        text = image_script(cfg, SimpleNamespace(preprocessor=pre, report=storage), "the nnstudio window")
        rows = [i for i, line in enumerate(text.splitlines()) if line.startswith("        self.") and "  # -> " in line]
        return GeneratedCode(text, dict(enumerate(rows)), {})

    # ---- signals from the window's panels
    def _on_inputs_changed(self, *args: Any) -> None:
        self.panel.schedule_update()

    def _on_layer_hovered(self, row: int) -> None:
        self.panel.highlight_layer(row)

    def _on_running_changed(self, running: bool) -> None:
        self.panel.set_training(running)

    # ---- File > Export
    def _on_export_script_triggered(self) -> None:
        w = self.window
        if not w.datasetPanel.has_data() or not w.datasetPanel.path():
            w.show_error("Nothing to export", "Open a dataset file first: the script reads the same file.")
            return
        start = str(Path(w._last_dir("export")) / "train.py")
        path, _ = QFileDialog.getSaveFileName(w, "Export Python script", start, "Python script (*.py)")
        if path:
            self.export_script(path if Path(path).suffix else path + ".py")

    def export_script(self, path: str | Path) -> bool:
        """Write the standalone script for the window's current state (column decisions from the real fit)."""
        from nnstudio.core.export.codegen import atomic_text_write, check_source, facts_from_frame, generate
        from nnstudio.core.errors import NNStudioError

        w = self.window
        try:
            if w.datasetPanel.images() is not None:  # the folder read the way a run reads it, as the CLI does
                from nnstudio.core.export.codegen_images import image_script

                cfg = copy.deepcopy(w.run_config())
                cfg.output.checkpoint = str(Path(path).with_suffix(".pt").resolve())  # beside the script
                atomic_text_write(image_script(cfg, w.prepare_data(), "the nnstudio window"), path)
                w._remember_dir(path, "export")
                w.statusBar().showMessage(f"exported {path}: run it with python {Path(path).name}", 10000)
                return True
            check_source(w.datasetPanel.path())
            cfg = copy.deepcopy(w.run_config())
            data = w.prepare_data()
            df = w.datasetPanel.dataframe()
            facts = facts_from_frame(df, w.datasetPanel.path(), data.preprocessor.target, data.task, data.preprocessor)
            cfg.output.checkpoint = Path(path).with_suffix(".pt").name  # beside the script, never nnstudio's own
            cfg.output.logdir = Path(cfg.output.logdir or "runs").name
            atomic_text_write(generate(cfg, facts, source="the nnstudio window", script_name=Path(path).name).text,
                              path)
        except (NNStudioError, OSError) as exc:
            w.show_error("Cannot export the script", str(exc))
            return False
        w._remember_dir(path, "export")
        w.statusBar().showMessage(f"exported {path}: run it with python {Path(path).name}", 10000)
        return True

    def _on_export_model_triggered(self) -> None:
        w = self.window
        if w.model is None:
            w.show_error("Nothing to export", "Train a model or open a checkpoint first.")
            return
        filters = {"ONNX, checked with onnxruntime (*.onnx)": "onnx", "TorchScript (*.pt)": "torchscript",
                   "Plain nn.Sequential state_dict (*.pt)": "state_dict"}
        path, chosen = QFileDialog.getSaveFileName(w, "Export model", str(Path(w._last_dir("export")) / "model.onnx"),
                                                   ";;".join(filters))
        if path:
            fmt = filters.get(chosen, "onnx")
            self.export_model(path if Path(path).suffix else path + (".onnx" if fmt == "onnx" else ".pt"), fmt)

    def preprocessor(self):
        w = self.window
        if w.last_run is not None and w.last_run.model is w.model:
            return w.last_run.data.preprocessor
        return w.loaded_checkpoint.preprocessor if w.loaded_checkpoint is not None else None

    def export_model(self, path: str | Path, fmt: str):
        from nnstudio.core.errors import NNStudioError
        from nnstudio.core.export.formats import export_model

        w = self.window
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        if fmt != "state_dict":  # seconds of tracing and checking: say it is under way before the wait
            w.statusBar().showMessage(f"exporting {Path(path).name}, then checking it on sample rows…")
            QApplication.processEvents()
        try:
            report = export_model(w.model, self.preprocessor(), path, fmt)
        except (NNStudioError, OSError) as exc:
            w.show_error("Cannot export the model", str(exc))
            return None
        finally:
            QApplication.restoreOverrideCursor()
        if not report.ok:
            w.show_error("The export does not match the model", report.message())
        else:
            w._remember_dir(path, "export")
            w.statusBar().showMessage(report.message(), 15000)
            box = QMessageBox(QMessageBox.Icon.Information, "Model exported",
                              f"{report.message()}\n\nInputs, categories and classes: {report.sidecar.name}",
                              QMessageBox.StandardButton.Ok, w)
            box.setObjectName("exportDialog")
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.open()
        return report
