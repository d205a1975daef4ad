"""Importing the core costs no polars (window start-up): it loads when a table is read; pandas and pyarrow never do."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("pandas", "pyarrow", "polars")


@pytest.mark.parametrize("module", ["nnstudio.core.data", "nnstudio.core.run", "nnstudio.core.model.checkpoint",
                                    "nnstudio.core.config", "nnstudio.core.training.engine", "nnstudio.core.training.callbacks"])
def test_core_import_leaves_pandas_and_pyarrow_unloaded(module):
    script = (f"import importlib, json, sys; importlib.import_module({module!r}); "
              f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_reading_a_table_loads_them_when_needed(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1.5,x\n2.5,y\n3.5,x\n")
    script = ("import sys; from nnstudio.core.data import read_table, prepare; df = read_table(sys.argv[1]); "
              "print(type(df).__module__.split('.')[0], 'pandas' in sys.modules, 'pyarrow' in sys.modules, "
              "len(prepare(df).train))")
    proc = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the table is a polars frame, and nothing on the way from file to tensors needs pandas or pyarrow
    assert proc.stdout.split() == ["polars", "False", "False", "3"]


# The command line imports what a command uses, when it runs (issue 23): no window toolkit, plots, torchmetrics or
# TensorBoard for `import nnstudio.cli`, no torch for --help and --version, and a whole `train` without
# torchmetrics or torch's compiler (torch._dynamo, ~1 s).
CLI_HEAVY = ("torch", "torch._dynamo", "PySide6", "PySide6.QtWidgets", "pyqtgraph", "torchmetrics", "tensorboard",
             "polars", "sympy")
CLI_SCRIPT = """
import contextlib, io, json, sys
import nnstudio.cli
argv = json.loads(sys.argv[1])
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        code = nnstudio.cli.main(argv) if argv is not None else 0
    except SystemExit as exc:  # argparse's --help
        code = exc.code
print(json.dumps([code, [m for m in {heavy!r} if m in sys.modules]]))
"""


def _cli_loaded(argv, cwd=None):
    proc = subprocess.run([sys.executable, "-c", CLI_SCRIPT.format(heavy=CLI_HEAVY), json.dumps(argv)],
                          capture_output=True, text=True, timeout=300, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [None, ["--help"], ["train", "--help"], ["predict", "--help"], ["--version"]])
def test_cli_import_help_and_version_load_no_torch_qt_widgets_or_plots(argv):
    code, loaded = _cli_loaded(argv)
    assert code == 0
    allowed = {"PySide6"} if argv == ["--version"] else set()  # --version asks QtCore for Qt's own version
    assert set(loaded) <= allowed, f"nnstudio {' '.join(argv or ['(import)'])} loaded {loaded}"


def test_a_whole_train_run_loads_neither_torchmetrics_nor_torchs_compiler_nor_the_window(tmp_path):
    rows = ["a,b,c,y"] + [f"{i % 7 * 0.5},{(i * 3) % 11},{'pq'[i % 2]},{'uvw'[i % 3]}" for i in range(90)]
    rows[5] = "1.5,,p,v"  # an empty cell: the imputer runs too
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "run.toml").write_text(
        '[data]\npath = "t.csv"\ntarget = "y"\n[model]\nlayers = [{type = "Linear", out_features = 8}, '
        '{type = "ReLU"}, {type = "Linear", out_features = "auto"}]\n[training]\nepochs = 2\nbatch_size = 16\n'
        '[output]\nlogdir = "runs"\ncheckpoint = "m.pt"\n')
    code, loaded = _cli_loaded(["train", str(tmp_path / "run.toml"), "--json"], cwd=tmp_path)
    assert code == 0 and (tmp_path / "m.pt").is_file()
    # torch, polars (the table) and TensorBoard (the log folder) are what a run uses; nothing else heavy
    assert set(loaded) == {"torch", "polars", "tensorboard"}, loaded
    assert list((tmp_path / "runs").rglob("events.out.tfevents.*")), "the run wrote no TensorBoard events"
