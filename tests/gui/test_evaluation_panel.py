"""The evaluation and predict tabs, driven through the real window after real runs."""

from __future__ import annotations

import csv

import numpy as np
import polars as pl
import pytest
import torch
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QImage

from nnstudio.core.model.checkpoint import load_checkpoint
from nnstudio.core.data import as_table, read_table
from nnstudio.gui.main_window import MainWindow

from guiwindow import load


@pytest.fixture
def window(window):
    window.resize(1366, 768)  # the panels' plots at a common laptop size
    return window


def train(qtbot, window, epochs=3):
    window.trainingPanel.epochsSpin.setValue(epochs)
    with qtbot.waitSignal(window.training_finished, timeout=60000) as blocker:
        qtbot.mouseClick(window.trainingPanel.trainButton, Qt.MouseButton.LeftButton)
    return blocker.args[0]


def test_classification_run_shows_confusion_matrix_of_the_test_split(qtbot, window, flowers_csv, tmp_path):
    load(qtbot, window, flowers_csv)
    info = train(qtbot, window)
    panel = window.evaluationPanel
    assert window.centralTabs.currentWidget() is window.evaluationTab and panel.isVisible()
    test = window.last_run.data.test
    with torch.no_grad():
        pred = window.model(test.X).argmax(1).numpy()
    y = test.y.cpu().numpy()
    independent = np.zeros((3, 3), dtype=int)
    np.add.at(independent, (y, pred), 1)
    matrix = panel.confusionMatrix
    assert matrix.values.sum() == len(test)
    np.testing.assert_array_equal(matrix.values, independent)
    assert matrix.cell_texts() == [[f"{v:,}" for v in row] for row in independent]
    classes = window.last_run.data.preprocessor.classes
    assert [t[1] for t in matrix.getAxis("bottom")._tickLevels[0]] == classes
    assert [t[1] for t in matrix.getAxis("left")._tickLevels[0]] == classes
    assert panel.perClassModel.rowCount() == 3
    assert [panel.perClassModel.cell(i, "support") for i in range(3)] == independent.sum(axis=1).tolist()
    assert panel.metricsModel.rowCount() == 3  # train, validation, test
    assert not panel.binaryBox.isVisible()
    # the status bar's summary is the test score, labelled as such
    assert "test score" in window.statusBar().currentMessage()
    assert f"{info['test']['accuracy']:.4g}" in window.statusBar().currentMessage()

    panel.normalizeCheck.setChecked(True)
    np.testing.assert_allclose(matrix.values.sum(axis=1), 1.0, atol=1e-6)
    assert matrix.cell_texts()[0][0] == f"{independent[0, 0] / independent[0].sum():.2f}"
    panel.export_csv("confusion", tmp_path / "confusion.csv")
    rows = list(csv.reader(open(tmp_path / "confusion.csv")))
    assert rows[0] == ["actual \\ predicted", *classes]
    assert float(rows[1][1]) == pytest.approx(independent[0, 0] / independent[0].sum())
    for view in panel.view_names():
        png = panel.export_png(view, tmp_path / f"{view}.png")
        assert not QImage(str(png)).isNull()

    path = tmp_path / "flowers.pt"
    assert window.save_checkpoint(path)
    stored = load_checkpoint(path).metrics
    assert stored["test_accuracy"] == pytest.approx(info["test"]["accuracy"])
    assert "test_loss" in stored and "val_accuracy" in stored


def test_binary_threshold_slider_changes_matrix_and_is_saved(qtbot, window, churn_csv, tmp_path):
    load(qtbot, window, churn_csv)
    train(qtbot, window)
    panel = window.evaluationPanel
    assert panel.binaryBox.isVisible()
    test = window.last_run.data.test
    with torch.no_grad():
        prob = torch.sigmoid(window.model(test.X).reshape(-1)).numpy()
    y = test.y.cpu().numpy().astype(int)

    def expected(t):
        pred = (prob > t).astype(int)
        return np.array([[((y == a) & (pred == b)).sum() for b in (0, 1)] for a in (0, 1)])

    np.testing.assert_array_equal(panel.confusionMatrix.values, expected(0.5))
    before = panel.thresholdMetrics.text()
    panel.thresholdSlider.setValue(20)
    np.testing.assert_array_equal(panel.confusionMatrix.values, expected(0.2))
    assert not np.array_equal(expected(0.2), expected(0.5))
    assert panel.thresholdMetrics.text() != before and "0.20" in panel.thresholdMetrics.text()
    assert panel.confusionMatrix.values.sum() == len(test)
    assert len(panel.rocCurve.getData()[0]) > 2 and "AUC" in panel.rocPlot.getPlotItem().titleLabel.text
    assert panel.rocMarker.data["x"][0] == pytest.approx(expected(0.2)[0, 1] / expected(0.2)[0].sum())

    qtbot.mouseClick(panel.keepThresholdButton, Qt.MouseButton.LeftButton)
    assert window.decision_threshold == pytest.approx(0.2)
    path = tmp_path / "churn.pt"
    assert window.save_checkpoint(path)
    assert load_checkpoint(path).threshold == pytest.approx(0.2)
    new = tmp_path / "new.csv"
    as_table(read_table(churn_csv)).drop("churned").head(100).write_csv(new)
    assert window.predictPanel.predict_path(new)
    predicted = window.predictPanel.prediction.columns
    np.testing.assert_array_equal(predicted["prediction"] == "yes", predicted["probability_yes"] > 0.2)


def test_regression_run_fills_predicted_vs_actual(qtbot, window, houses_csv):
    load(qtbot, window, houses_csv)
    train(qtbot, window)
    panel = window.evaluationPanel
    test = window.last_run.data.test
    x, y = panel.scatter.getData()
    assert len(x) == len(test)
    pre = window.last_run.data.preprocessor
    np.testing.assert_allclose(np.sort(x), np.sort(test.y.cpu().double().numpy() * pre.target_std + pre.target_mean),
                               rtol=1e-6)
    with torch.no_grad():
        expected = window.model(test.X).reshape(-1).double().numpy() * pre.target_std + pre.target_mean
    np.testing.assert_allclose(y, expected, rtol=1e-5)
    lx, ly = panel.identityLine.getData()
    assert list(lx) == list(ly) and lx[0] <= min(x.min(), y.min()) and lx[-1] >= max(x.max(), y.max())
    assert panel.largestErrorsModel.rowCount() == 20
    errors = [abs(panel.largestErrorsModel.cell(i, "error")) for i in range(20)]
    assert errors == sorted(errors, reverse=True)
    districts = set(as_table(read_table(houses_csv))["district"])
    assert {panel.largestErrorsModel.cell(i, "district") for i in range(20)} <= districts  # decoded one-hot
    assert isinstance(panel.largestErrorsModel.cell(0, "area_m2"), float)
    assert sum(panel.residualBars.opts["height"]) == len(test)
    assert "test score" in window.statusBar().currentMessage() and "rmse" in window.statusBar().currentMessage()


def test_prediction_on_a_new_file_exports_csv_and_names_each_bad_column(qtbot, window, flowers_csv, tmp_path):
    load(qtbot, window, flowers_csv)
    train(qtbot, window, epochs=2)
    panel = window.predictPanel
    source = as_table(read_table(flowers_csv))
    new = tmp_path / "new.csv"
    source.drop("species").head(40).with_columns(comment=pl.lit("hi")).write_csv(new)
    with qtbot.waitSignal(panel.predicted, timeout=10000):
        assert panel.predict_path(new)
    assert panel.predictModel.rowCount() == 40
    assert "comment" in panel.predictMessages.text()
    out = tmp_path / "predictions.csv"
    panel.export_csv(out)
    written = pl.read_csv(out)
    classes = window.last_run.data.preprocessor.classes
    assert written.columns == [*(c for c in source.columns if c != "species"), "comment", "prediction",
                               *[f"probability_{c}" for c in classes]]
    assert written["prediction"].to_list() == window.current_checkpoint().predict(read_table(flowers_csv).head(40))
    np.testing.assert_allclose(written.select(f"probability_{c}" for c in classes).sum_horizontal(), 1.0, atol=1e-5)

    cases = {
        "missing": (source.drop("species", "petal_width").head(10), ["petal_width", "missing"]),
        "unknown": (source.drop("species").head(10).with_columns(colour=pl.Series(["plaid"] + ["white"] * 9)),
                    ["colour", "plaid", "row 1"]),
        "unparseable": (source.drop("species").head(10).with_columns(
                            sepal_length=pl.Series([str(v) if i != 2 else "lots"
                                                    for i, v in enumerate(source["sepal_length"].head(10))])),
                        ["sepal_length", "lots", "row 3"]),
    }
    for name, (frame, words) in cases.items():
        bad = tmp_path / f"{name}.csv"
        frame.write_csv(bad)
        with qtbot.waitSignal(window.error_shown, timeout=10000) as blocker:
            assert not panel.predict_path(bad)
        for word in words:
            assert word in blocker.args[0], (name, blocker.args[0])
        assert panel.predictModel.rowCount() == 40  # the last good prediction stays shown


def test_opened_checkpoint_is_evaluated_once_its_dataset_is_loaded(qtbot, window, flowers_csv, tmp_path):
    load(qtbot, window, flowers_csv)
    window.trainingPanel.classWeightCombo.setCurrentIndex(window.trainingPanel.classWeightCombo.findData("balanced"))
    assert window.trainingPanel.train_config().class_weight == "balanced"
    assert window.run_config().to_dict()["training"]["class_weight"] == "balanced"
    train(qtbot, window, epochs=2)
    assert window.last_run.trainer.loss_fn.weight is not None
    path = tmp_path / "flowers.pt"
    assert window.save_checkpoint(path)
    other = MainWindow(settings=QSettings(str(tmp_path / "other.ini"), QSettings.Format.IniFormat),
                       logdir=tmp_path / "runs2")
    qtbot.addWidget(other)
    assert other.open_checkpoint(path)
    assert other.trainingPanel.classWeightCombo.currentData() == "balanced"  # restored from the checkpoint
    assert other.evaluationPanel.evaluation is None  # no dataset yet: nothing to evaluate
    assert other.predictPanel.predictOpenButton.isEnabled()  # but new files can be predicted
    load(qtbot, other, flowers_csv)
    ev = other.evaluationPanel.evaluation
    assert ev is not None and ev.report.confusion.sum() == len(window.last_run.data.test)
    np.testing.assert_array_equal(ev.report.confusion, window.evaluation.report.confusion)
    assert ev.table["test"]["loss"] == pytest.approx(window.evaluation.table["test"]["loss"], rel=1e-5)
    other.shutdown()


def test_evaluation_tab_opened_before_any_run_says_what_it_needs(qtbot, window):
    assert window._evaluation_panel is None  # not made at start-up (it imports pyqtgraph)
    window.centralTabs.setCurrentWidget(window.evaluationTab)
    panel = window._evaluation_panel
    assert panel is not None and panel.objectName() == "evaluationPanel" and panel.isVisible()
    assert "Train a model" in panel.evaluationHeader.text()
    assert not window.actionEvaluate.isEnabled() and not window.actionPredict.isEnabled()
