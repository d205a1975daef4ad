"""The window's whole table path (open, preview, roles, train, evaluate, predict, export) runs with pandas and
pyarrow unimportable: nnstudio's runtime needs polars only."""

import json
import os
import subprocess
import sys

SCRIPT = r"""
import json, sys
from pathlib import Path


sys.modules["pandas"] = None  # import pandas / pyarrow raise ImportError; find_spec says they are absent
sys.modules["pyarrow"] = None
from PySide6.QtCore import QEventLoop, QSettings, QTimer
from PySide6.QtWidgets import QApplication

app = QApplication([])
from nnstudio.gui.main_window import MainWindow

tmp = Path(sys.argv[1])
errors = []
w = MainWindow(settings=QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat), logdir=tmp / "runs")
w.error_shown.connect(errors.append)
w.show()


def wait(signal, seconds):
    loop = QEventLoop()
    got = []
    signal.connect(lambda *a: (got.append(a), loop.quit()))
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    return loop, got


loop, got = wait(w.datasetPanel.dataset_loaded, 60)
w.open_sample()
loop.exec()
panel = w.datasetPanel
model = panel.model
sex = panel.dataframe().columns.index("sex")
shown = [model.data(model.index(r, sex)) for r in range(model.rowCount())]
panel.set_role("year", "ignore")
w.trainingPanel.epochsSpin.setValue(2)
loop, finished = wait(w.training_finished, 120)
w.trainingPanel.trainButton.click()
loop.exec()
rows = tmp / "new.csv"
panel.dataframe().drop("species").head(25).write_csv(rows)
predicted = w.predictPanel.predict_path(rows)
w.predictPanel.export_csv(tmp / "predictions.csv")
w.shutdown()
print(json.dumps({"rows": model.rowCount(), "missing_sex_shown": shown.count("\u2014"),
                  "null_sex": panel.dataframe()["sex"].null_count(), "trained": bool(finished),
                  "features": w.last_run.data.preprocessor.feature_names if w.last_run else None,
                  "predicted": predicted, "predict_rows": w.predictPanel.predictModel.rowCount(),
                  "errors": errors, "loaded": sorted(m for m, mod in sys.modules.items() if m.split(".")[0] in ("pandas", "pyarrow") and mod)}))
"""


def test_open_train_predict_in_the_window_with_pandas_and_pyarrow_blocked(tmp_path):
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["errors"] == [] and result["loaded"] == []
    assert result["rows"] == 344  # the Palmer Penguins sample, the window's default start
    assert result["missing_sex_shown"] == result["null_sex"] == 11  # empty CSV cells shown as missing
    assert result["trained"]
    assert "year" not in result["features"] and "island" in result["features"]
    assert result["predicted"] and result["predict_rows"] == 25
    assert (tmp_path / "predictions.csv").read_text().count("\n") == 26
