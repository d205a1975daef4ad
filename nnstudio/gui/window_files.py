"""Files the window opens and saves: datasets, checkpoints (a bare state_dict's layers asked about, a model
class from a Python file), and projects (run configs)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog)

from nnstudio.core.model.checkpoint import LoadedCheckpoint, build_checkpoint, atomic_torch_save, load_checkpoint, reinfer
from nnstudio.core.files import file_failure, regular_file
from nnstudio.core.model.user_class import (classes_in, init_parameters, open_with_class, parse_arguments,
                                            read_dict as _read_dict, stored_arguments)
from nnstudio.core.config import RunConfig
from nnstudio.core.errors import DatasetNotCheckpoint, NNStudioError
from nnstudio.gui.model_file_dialogs import InferredModelDialog, RunModelCodeDialog
from nnstudio.gui.start_folders import is_bundled, start_folder
from nnstudio.gui.window_settings import CHECKPOINT_FILTER, DATA_FILTER, PROJECT_FILTER, _excluded_by


def image_options(cfg: RunConfig) -> dict:
    """The [data] keys of an image run that the window keeps beside the dataset panel (the table of image paths'
    column and label included)."""
    keys = ("image_size", "channels", "on_bad", "augment", "stream", "workers", "image_column")
    options = {k: getattr(cfg.data, k) for k in keys if getattr(cfg.data, k, None) is not None}
    if cfg.data.image_column and cfg.data.target:
        options["target"] = cfg.data.target
    return options


class WindowFiles:
    """Opening and saving datasets, checkpoints and projects; every failure is a dialog and the previous state is kept."""

    # ------------------------------------------------------------------------------------------ opening files
    def open_path(self, path: str | Path) -> None:
        """Open a dataset, a checkpoint (.pt) or a project (.toml), by what the file is."""
        path = Path(path)
        if path.is_dir():
            from nnstudio.core.data.images import is_image_folder

            if is_image_folder(path):
                self.open_image_folder(path)
                return
            self.show_error("Cannot open a folder", f"{path} is a folder; open or drop one data file, or a folder "
                                                    "with one subfolder of images per class.")
            return
        if not path.exists():
            self.show_error("File not found", f"{path}: no such file.")
            return
        suffix = path.suffix.lower()
        try:
            regular_file(path, NNStudioError)
        except NNStudioError as exc:
            self.show_error("Cannot open", str(exc))
            return
        if suffix == ".toml":
            self.open_project(path)
        elif suffix in (".pt", ".pth"):
            self.open_checkpoint(path)
        else:
            self.open_dataset(path)

    def open_image_folder(self, path: str | Path) -> bool:
        """An image dataset (class folders): shown in the image preview dock; the previous state is kept on failure."""
        return self._open_images(path)

    def open_image_table(self, path: str | Path, image_column: str, label: str | None = None) -> bool:
        """A CSV/Parquet table whose `image_column` lists image files (relative to the table) and whose `label`
        column (default: the last other column) holds their classes: an image dataset, as `[data] image_column`
        makes it for `nnstudio train`; the previous state is kept on failure."""
        return self._open_images(path, image_column, label)

    def _open_images(self, path: str | Path, image_column: str | None = None, label: str | None = None,
                     keep_options: bool = False) -> bool:
        from nnstudio.gui.image_grid import ImagePreviewWidget

        if getattr(self, "imagePreview", None) is None:
            self.imagePreview = ImagePreviewWidget()
            self.imagePreviewDock = self._dock("Images", "imagePreviewDock", self.imagePreview,
                                               Qt.DockWidgetArea.RightDockWidgetArea)
        from nnstudio.core.data.images import summarize_images

        kind = "image table" if image_column else "image folder"
        try:
            columns: list[str] = []
            if image_column:
                from nnstudio.core.data.image_table import default_label
                from nnstudio.core.data.read import read_table

                columns = [str(c) for c in read_table(path).columns]
                label = label or default_label(columns, image_column)
            kept = self.image_options if (self._pending_project is not None or keep_options) else {}
            info = summarize_images(path, image_column, label, kept.get("stream"), kept.get("image_size"),
                                    kept.get("channels"))
            if len(info["classes"]) < 2:
                raise NNStudioError(f"{path}: only one class {f'in column {label!r}' if image_column else 'folder'}"
                                    "; a classifier needs at least two")
            self.imagePreview.show_folder(path, image_column, label)
        except NNStudioError as exc:
            self._pending_project = None
            self.show_error(f"Cannot open {kind}", str(exc))
            return False
        if self._pending_project is None and not keep_options:
            self.image_options = {}  # a folder opened on its own: the defaults (most common size, auto channels)
        for key in ("image_column", "target"):
            self.image_options.pop(key, None)
        if image_column:  # the run reads the same table: [data] image_column and target
            self.image_options.update(image_column=image_column, target=label)
            info.update(image_column=image_column, label_column=label, columns=columns)
        self.datasetPanel.show_images(path, info)  # the dataset now: dataset_loaded → _on_dataset_loaded
        self.imagePreviewDock.show()
        self.imagePreviewDock.raise_()
        note = ""
        if not self.modelBuilder.is_valid():  # a table's MLP cannot take (N, C, H, W): offer the CNN, undoably
            from nnstudio.core.model.spec import PRESETS

            self.modelBuilder.set_layers(PRESETS["Small CNN"], undoable=True)
            note = ": the layers did not fit images, so the Small CNN preset replaced them (Edit > Undo restores them)"
        self.statusBar().showMessage(f"opened {kind} {Path(path).name}{note}", 10000)
        return True

    def _on_datasetPanel_image_table_found(self, path: str, column: str) -> None:
        """A table just read lists image files: open it as images, as `[data] image_column` does (a project
        saved for it as a table still opens it as one)."""
        pending = self._pending_project
        if pending is not None and not pending.data.image_column:  # a project that reads it as a table
            self.datasetPanel.open_as_table()
            return
        self.open_image_table(path, column, pending.data.target or None if pending is not None else None)

    def _on_datasetPanel_image_label_chosen(self, label: str) -> None:
        images = self.datasetPanel.images() or {}
        if label and images.get("image_column") and label != images.get("label_column"):
            # the same dataset read with other classes: its image size, channels and augmentation stay
            self._open_images(self.datasetPanel.path(), images["image_column"], label, keep_options=True)

    def open_dataset(self, path: str | Path) -> None:
        self.statusBar().showMessage(f"loading {Path(path).name}…")
        self.datasetPanel.open_file(str(path))

    def _on_open_dataset_triggered(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open dataset", self._last_dir(), DATA_FILTER)
        if path:
            self.open_dataset(path)

    def _last_dir(self, kind: str = "data") -> str:
        """Where a dialog of this kind (data, model, project, export) starts: its last folder, else documents."""
        saved = self.settings.value(f"lastDir/{kind}", "")
        if saved and Path(str(saved)).is_dir():
            return str(saved)
        return start_folder()

    def _remember_dir(self, path: str | Path, kind: str = "data") -> None:
        """The folder a file of this kind was opened or saved in; the bundled samples' folder is never remembered
        (it lies inside the installed package)."""
        folder = Path(path).resolve().parent
        if not is_bundled(folder):
            self.settings.setValue(f"lastDir/{kind}", str(folder))

    def _on_dataset_loaded(self, path: str) -> None:
        self._add_recent(path)
        self._remember_dir(path)
        if self._pending_project is None:
            self._project_path = None  # a dataset opened on its own: the project no longer describes the window
        if self._pending_project is not None:
            cfg, self._pending_project = self._pending_project, None
            d = cfg.data
            images = self.datasetPanel.images() is not None
            try:
                if images:
                    self.datasetPanel.set_choices(split=d.split)
                else:
                    self.datasetPanel.set_choices(target=d.target or None, task=d.task, split=d.split,
                                                  missing=d.missing, exclude=d.exclude)
            except NNStudioError as exc:
                self.show_error("Cannot apply the project's data choices", str(exc))
        if self.loaded_checkpoint is not None and self.loaded_checkpoint.preprocessor is not None \
                and self.datasetPanel.dataframe() is not None:
            pre = self.loaded_checkpoint.preprocessor
            if pre.target in self.datasetPanel.dataframe().columns:
                self.datasetPanel.set_choices(target=pre.target, task=pre.task,
                                              exclude=_excluded_by(pre, self.datasetPanel.dataframe()))
        self.statusBar().showMessage(f"loaded {Path(path).name}", 5000)
        self._update_title(self._project_path or path)
        self._on_dataset_choices_changed()
        if self.loaded_checkpoint is not None and self.model is self.loaded_checkpoint.model:
            self.evaluate_current(show=True)

    def _on_dataset_load_failed(self, path: str, message: str) -> None:
        self._pending_project = None
        self.show_error("Cannot open dataset", message)

    # ------------------------------------------------------------------------------------------ checkpoints
    def _on_open_checkpoint_triggered(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open checkpoint", self._last_dir("model"), CHECKPOINT_FILTER)
        if path:
            self.open_checkpoint(path)

    def open_checkpoint(self, path: str | Path) -> bool:
        """Load safely; on any problem show why and change nothing. A state_dict with unknowns asks first."""
        try:
            ckpt = load_checkpoint(path)
        except DatasetNotCheckpoint:
            self.open_dataset(path)
            return False
        except NNStudioError as exc:
            self.show_error("Cannot open checkpoint", str(exc))
            return False
        except Exception as exc:  # whatever else a hostile file provokes is still one sentence, never a traceback
            self.show_error("Cannot open checkpoint", file_failure(path, exc))
            return False
        if ckpt.inferred is not None and ckpt.inferred.needs_answers:
            self._ask_layers(ckpt)
            return False
        return self._apply_checkpoint(ckpt)

    def _ask_layers(self, ckpt: LoadedCheckpoint) -> None:
        dialog = InferredModelDialog(ckpt.path.name, ckpt.inferred, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._pending_inferred = ckpt
        dialog.accepted.connect(self._on_inferredModelDialog_accepted)
        dialog.rejected.connect(self._on_inferredModelDialog_rejected)
        dialog.open()
        self.layers_asked.emit(ckpt.path.name)

    def _on_inferredModelDialog_accepted(self) -> None:
        dialog, ckpt = self.sender(), self._pending_inferred
        self._pending_inferred = None
        if ckpt is None:
            return
        try:
            ckpt = reinfer(ckpt, dialog.answers(), dialog.order(), dialog.dropout_p())
        except (NNStudioError, ValueError) as exc:
            self.show_error("Cannot open checkpoint", f"{ckpt.path.name}: {exc}")
            return
        self._apply_checkpoint(ckpt)

    def _on_inferredModelDialog_rejected(self) -> None:
        self._pending_inferred = None
        self.statusBar().showMessage("nothing opened", 5000)

    def _on_open_model_class_triggered(self) -> None:
        ckpt, _ = QFileDialog.getOpenFileName(self, "Weights to open (state_dict or checkpoint)", self._last_dir("model"),
                                              CHECKPOINT_FILTER)
        if not ckpt:
            return
        py, _ = QFileDialog.getOpenFileName(self, "Python file with the model class", str(Path(ckpt).parent),
                                            "Python files (*.py)")
        if py:
            self.open_model_class(ckpt, py)

    def open_model_class(self, checkpoint: str | Path, py_path: str | Path) -> None:
        """Ask before running `py_path` (it is code); on Run, build its class and load the weights."""
        try:
            classes = classes_in(py_path)
            stored = stored_arguments(_read_dict(checkpoint), init_parameters(py_path, classes[0])) or {}
        except NNStudioError as exc:
            self.show_error("Cannot open model class", str(exc))
            return
        except Exception as exc:
            self.show_error("Cannot open model class", file_failure(checkpoint, exc))
            return
        text = ", ".join(f"{k}={v!r}" for k, v in stored.items())
        dialog = RunModelCodeDialog(Path(py_path).name, Path(checkpoint).name, classes, text, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._pending_model_class = (Path(checkpoint), Path(py_path))
        dialog.accepted.connect(self._on_runModelCodeDialog_accepted)
        dialog.open()

    def _on_runModelCodeDialog_accepted(self) -> None:
        dialog = self.sender()
        checkpoint, py_path = self._pending_model_class
        try:
            text = dialog.argumentsEdit.text().strip()
            arguments = parse_arguments(text) if text else None
            ckpt = open_with_class(checkpoint, py_path, dialog.classCombo.currentText(), arguments)
        except NNStudioError as exc:
            self.show_error("Cannot open model class", str(exc))
            return
        except Exception as exc:
            self.show_error("Cannot open model class", file_failure(py_path, exc))
            return
        self._apply_checkpoint(ckpt)

    def _apply_checkpoint(self, ckpt: LoadedCheckpoint) -> bool:
        path = ckpt.path
        self.loaded_checkpoint = ckpt
        self.model = ckpt.model
        self.model_unsaved = False
        self.checkpoint_path = Path(path)
        self.modelBuilder.set_layers(ckpt.layers, undoable=False)
        self.model = ckpt.model  # set_layers may have reset it through layers_changed
        cfg = ckpt.config or {}
        if cfg.get("training"):
            try:
                self.trainingPanel.set_train_config(RunConfig.from_dict({"training": cfg["training"]}).training)
            except NNStudioError:
                pass
        if ckpt.preprocessor is not None and self.datasetPanel.dataframe() is not None:
            pre = ckpt.preprocessor
            if pre.target in self.datasetPanel.dataframe().columns:
                self.datasetPanel.set_choices(target=pre.target, task=pre.task,
                                              exclude=_excluded_by(pre, self.datasetPanel.dataframe()))
        self._on_dataset_choices_changed()
        self._add_recent(path)
        self._remember_dir(path, "model")
        notes = "; ".join(ckpt.notes)
        self.statusBar().showMessage(f"opened {Path(path).name}: {ckpt.n_parameters:,} parameters"
                                     + (f" — {notes}" if notes else ""), 10000)
        self.decision_threshold = ckpt.threshold
        self._update_model_status()
        self._update_can_train()
        if not self.evaluate_current(show=True) and self._evaluation_panel is not None:
            self._evaluation_panel.clear()
        self.checkpoint_loaded.emit(str(path))
        return True

    def _on_save_checkpoint_triggered(self) -> None:
        start = str(self.checkpoint_path if self.checkpoint_path and not is_bundled(Path(self.checkpoint_path).parent)
                    else Path(self._last_dir("model")) / "model.pt")
        path, _ = QFileDialog.getSaveFileName(self, "Save checkpoint", start, CHECKPOINT_FILTER)
        if path:
            if not Path(path).suffix:
                path += ".pt"
            self.save_checkpoint(path)

    def save_checkpoint(self, path: str | Path) -> bool:
        if self.model is None:
            self.show_error("Nothing to save", "Train a model or open a checkpoint first.")
            return False
        run = self.last_run if self.last_run is not None and self.last_run.model is self.model else None
        try:
            if run is not None:
                from nnstudio.core.model.checkpoint import plain

                obj = run.checkpoint_dict("last")  # resumable: the trainer's whole state
                obj["config"] = build_checkpoint(self.model, None, config=self.run_config().to_dict())["config"]
                test = self.evaluation.table.get("test", {}) if self.evaluation is not None else {}
                obj["metrics"].update(plain({f"test_{k}": v for k, v in test.items()}))
                obj["decision_threshold"] = (None if self.decision_threshold is None
                                             else float(self.decision_threshold))
            else:
                ckpt = self.loaded_checkpoint
                obj = build_checkpoint(self.model, ckpt.preprocessor if ckpt else None,
                                       config=ckpt.config if ckpt else {}, epoch=ckpt.epoch if ckpt else 0,
                                       metrics=ckpt.metrics if ckpt else {}, history=ckpt.history if ckpt else [],
                                       trainer_state=ckpt.trainer_state if ckpt else None,
                                       run_dir=ckpt.run_dir if ckpt else None,
                                       threshold=self.decision_threshold if self.decision_threshold is not None
                                       else (ckpt.threshold if ckpt else None))
            atomic_torch_save(obj, path)
        except (NNStudioError, OSError, TypeError) as exc:
            self.show_error("Cannot save checkpoint", str(exc))
            return False
        self.checkpoint_path = Path(path)
        self.model_unsaved = False
        self._add_recent(path)
        self._remember_dir(path, "model")
        self.statusBar().showMessage(f"saved {path}", 8000)
        self.checkpoint_saved.emit(str(path))
        return True

    # ------------------------------------------------------------------------------------------ projects
    def _on_open_project_triggered(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open project", self._last_dir("project"), PROJECT_FILTER)
        if path:
            self.open_project(path)

    def open_project(self, path: str | Path) -> bool:
        try:
            cfg = RunConfig.load(path)
            self.trainingPanel.check_train_config(cfg.training, Path(path).name)
        except NNStudioError as exc:
            self.show_error("Cannot open project", str(exc))
            return False
        except Exception as exc:  # whatever else a hostile file provokes is still one sentence
            self.show_error("Cannot open project", file_failure(path, exc))
            return False
        self.modelBuilder.set_layers(cfg.layers, undoable=True)
        self.trainingPanel.set_train_config(cfg.training)
        self.logdir = cfg.logdir
        self.data_seed = cfg.data.seed
        self.checkpoint_path = cfg.checkpoint_path
        self.image_options = image_options(cfg)
        if cfg.data.path:
            self._pending_project = cfg
            if cfg.data.image_column:
                self.open_image_table(cfg.data_path, cfg.data.image_column, cfg.data.target or None)
            elif cfg.data_path.is_dir():
                self.open_image_folder(cfg.data_path)
            else:
                self.open_dataset(cfg.data_path)
        self._add_recent(path)
        self._remember_dir(path, "project")
        self._project_path = Path(path)
        self._update_title(path)
        self.project_loaded.emit(str(path))
        return True

    def _on_save_project_triggered(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save project", str(Path(self._last_dir("project")) / "project.toml"),
                                              PROJECT_FILTER)
        if path:
            if not Path(path).suffix:
                path += ".toml"
            self.save_project(path)

    def save_project(self, path: str | Path) -> bool:
        try:
            self.run_config().save(path)
        except (NNStudioError, OSError) as exc:
            self.show_error("Cannot save project", str(exc))
            return False
        self._add_recent(path)
        self._remember_dir(path, "project")
        self._project_path = Path(path)
        self._update_title(path)
        self.statusBar().showMessage(f"saved project {path}", 8000)
        self.project_saved.emit(str(path))
        return True
