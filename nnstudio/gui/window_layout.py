"""How the window is laid out: the central tabs with the plots and the evaluation, the docks (dataset, model,
training, code), the status bar, and the layout saved, restored and fitted to the screen."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDockWidget, QLabel, QSplitter, QTabWidget, QVBoxLayout,
    QWidget)

from nnstudio.gui.dataset_panel import DatasetPanel
from nnstudio.gui import dock_layout
from nnstudio.gui.dock_layout import MIN_PLOT_WIDTH, DockScrollArea, fit_docks, fit_to_screen
from nnstudio.gui.model_builder import ModelBuilderPanel
from nnstudio.gui.plots import LossPlot, MetricsPlot
from nnstudio.gui.predict_panel import PredictPanel
from nnstudio.gui.training_panel import TrainingPanel


class WindowLayout:
    """The window's layout, built once and restored from the settings."""

    # ------------------------------------------------------------------------------------------ layout
    def _build_central(self) -> None:
        self.lossPlot = LossPlot()
        self.lossPlot.setObjectName("lossPlot")
        self.metricsPlot = MetricsPlot()
        self.metricsPlot.setObjectName("metricsPlot")
        self.plotSplitter = QSplitter(Qt.Orientation.Vertical)
        self.plotSplitter.setObjectName("plotSplitter")
        self.plotSplitter.addWidget(self.lossPlot)
        self.plotSplitter.addWidget(self.metricsPlot)
        self.plotSplitter.setStretchFactor(0, 3)
        self.plotSplitter.setStretchFactor(1, 2)
        self.plotSplitter.setMinimumWidth(MIN_PLOT_WIDTH)  # the docks shrink and scroll first
        self.setCentralWidget(self.plotSplitter)

    def _build_evaluation(self) -> None:
        """Evaluation and prediction are tabs beside the training curves (they need the width)."""
        plots = self.takeCentralWidget()
        self.centralTabs = QTabWidget()
        self.centralTabs.setObjectName("centralTabs")
        self.centralTabs.setDocumentMode(True)
        self._evaluation_panel = None
        self.evaluationTab = QWidget()  # holds the panel, made at first use: it imports pyqtgraph
        self.evaluationTab.setObjectName("evaluationTab")
        layout = QVBoxLayout(self.evaluationTab)
        layout.setContentsMargins(0, 0, 0, 0)
        self.predictPanel = PredictPanel()
        self.predictPanel.setObjectName("predictPanel")
        self.centralTabs.addTab(plots, "Training curves")
        self.centralTabs.addTab(self.evaluationTab, "Evaluation")
        self.centralTabs.addTab(self.predictPanel, "Predict")
        self._experiments_panel = None
        self.experimentsTab = QWidget()  # holds the Experiments panel, made when the tab is first opened
        self.experimentsTab.setObjectName("experimentsTab")
        QVBoxLayout(self.experimentsTab).setContentsMargins(0, 0, 0, 0)
        self.centralTabs.addTab(self.experimentsTab, "Experiments")
        self.centralTabs.currentChanged.connect(self._on_centralTabs_current_changed)
        self.setCentralWidget(self.centralTabs)

    @property
    def evaluationPanel(self):
        """The evaluation panel, made the first time it is needed (a run's end, F7, the tab opened)."""
        if self._evaluation_panel is None:
            from nnstudio.gui.evaluation_panel import EvaluationPanel

            panel = EvaluationPanel()
            panel.setObjectName("evaluationPanel")
            self.evaluationTab.layout().addWidget(panel)
            panel.show()  # a child added to a shown window stays hidden until shown
            panel.threshold_kept.connect(self._on_evaluation_threshold_kept)
            panel.exported.connect(self._on_view_exported)
            panel.export_failed.connect(self._on_export_failed)
            self._evaluation_panel = panel
        return self._evaluation_panel

    def _on_centralTabs_current_changed(self, index: int) -> None:
        if self.centralTabs.widget(index) is self.evaluationTab:
            self.evaluationPanel  # noqa: B018 - shows what it needs when opened before any evaluation
        elif self.centralTabs.widget(index) is self.experimentsTab:
            self.experimentsPanel.refresh_space()

    @property
    def experimentsPanel(self):
        """Sweeps over the current settings (gui/experiments_panel.py), made at first use: it imports optuna."""
        if self._experiments_panel is None:
            from nnstudio.gui.experiments_panel import ExperimentsPanel

            panel = ExperimentsPanel(self.run_config)
            panel.setObjectName("experimentsPanel")
            self.experimentsTab.layout().addWidget(panel)
            panel.show()
            panel.best_applied.connect(self._on_experimentsPanel_best_applied)
            panel.model_opened.connect(self.open_path)
            self._experiments_panel = panel
        return self._experiments_panel

    def _on_experimentsPanel_best_applied(self, params: dict) -> None:
        """The best trial's values set in the builder and the training panel (undoable in the builder)."""
        from nnstudio.core.experiments.space import trial_config

        cfg = trial_config(self._experiments_panel.sweep, params)
        self.modelBuilder.set_layers(cfg.layers)
        self.trainingPanel.set_train_config(cfg.training)

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        """Every dock scrolls rather than clips its panel (see gui/dock_layout.py for what a new dock does)."""
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(DockScrollArea(widget))
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        self.datasetPanel = DatasetPanel()
        self.datasetPanel.setObjectName("datasetPanel")
        self.modelBuilder = ModelBuilderPanel()
        self.modelBuilder.setObjectName("modelBuilder")
        self.trainingPanel = TrainingPanel()
        self.trainingPanel.setObjectName("trainingPanel")
        # Data and model share the left column as tabs (the order people work in); training controls sit
        # on the right, so the plots keep the middle of the window.
        self.datasetDock = self._dock("Dataset", "datasetDock", self.datasetPanel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.modelDock = self._dock("Model", "modelDock", self.modelBuilder, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.tabifyDockWidget(self.datasetDock, self.modelDock)
        self.datasetDock.raise_()
        self.trainingDock = self._dock("Training", "trainingDock", self.trainingPanel,
                                       Qt.DockWidgetArea.RightDockWidgetArea)
        self.setTabPosition(Qt.DockWidgetArea.LeftDockWidgetArea, QTabWidget.TabPosition.North)
        self._default_state = None
        self._build_code_view()

    def _build_code_view(self) -> None:
        """The code view dock, tabbed behind Training, and its File > Export actions (gui/code_view.py)."""
        from nnstudio.gui.code_view import CodeExport

        self.codeExport = CodeExport(self)
        self.codeViewPanel = self.codeExport.panel
        self.codeView = self._dock("Code", "codeView", self.codeViewPanel, Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(self.trainingDock, self.codeView)
        self.trainingDock.raise_()
        self.actionExportScript = self._action("actionExportScript", "&Python script…",
                                               self.codeExport._on_export_script_triggered,
                                               tip="The run as a script that needs only torch, numpy, polars and tensorboard")
        self.actionExportModel = self._action("actionExportModel", "&Model (ONNX, TorchScript, state_dict)…",
                                              self.codeExport._on_export_model_triggered,
                                              tip="The trained model for use without nnstudio, checked after export")

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        status.setObjectName("statusBar")
        self.datasetStatus = QLabel("no dataset")
        self.datasetStatus.setObjectName("datasetStatus")
        self.modelStatus = QLabel("")
        self.modelStatus.setObjectName("modelStatus")
        status.addPermanentWidget(self.datasetStatus)
        status.addPermanentWidget(self.modelStatus)

    # ------------------------------------------------------------------------------------------ settings
    def _restore_settings(self) -> None:
        geometry = self.settings.value("window/geometry")
        restored = geometry is not None and self.restoreGeometry(geometry)
        saved_for = int(self.settings.value("window/screenWidth", 0) or 0)
        moved = saved_for != dock_layout.available_geometry(self).width()
        # a geometry from another screen is not kept (Qt squeezes it onto this screen in its own way): the
        # window takes this screen's first size, as on a fresh start
        fit_to_screen(self, restored=restored and not moved)
        self._fit_docks()
        self._default_state = self.saveState()
        state = self.settings.value("window/state")
        if state is not None and self.restoreState(state) and moved:
            # docks sized for another screen would squeeze the plots (axes cut) or scroll sideways: keep the
            # arrangement, fit the widths to this one
            self._fit_docks()
        self._rebuild_recent_menu()

    def _save_settings(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.setValue("window/screenWidth", dock_layout.available_geometry(self).width())
        self.settings.sync()

    def _fit_docks(self) -> None:
        """Side columns as wide as their panels want, as far as the plots' minimum width allows."""
        fit_docks(self, self.datasetDock, self.trainingDock, left_wanted=470,
                  right_wanted=max(330, self.trainingPanel.minimumSizeHint().width()))

    def _on_reset_layout(self) -> None:
        if self._default_state is not None:
            self.restoreState(self._default_state)
        for dock in (self.datasetDock, self.modelDock, self.trainingDock):
            dock.show()
        self._fit_docks()

    def _update_title(self, path: str | Path | None) -> None:
        """The window names what it shows: the project if one is open, else the dataset."""
        self.setWindowTitle(f"{Path(path).name} — nnstudio" if path else "nnstudio")
