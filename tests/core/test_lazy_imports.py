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
