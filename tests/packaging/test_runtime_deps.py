"""pandas and pyarrow are for the tests only (~250 MB installed): not runtime dependencies, and nnstudio
runs without them. The bundle test checks the same of the packaged app, but only in CI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEST_ONLY = {"pandas", "pyarrow"}

# Makes pandas and pyarrow look uninstalled: None in sys.modules makes `import pandas` raise
# ModuleNotFoundError and importlib.util.find_spec("pandas") return None, as polars' and torch's optional
# checks expect. Then the self-test: read, train, save, load, predict, the window offscreen.
BLOCKED_SELF_TEST = """
import sys

sys.modules["pandas"] = sys.modules["pyarrow"] = None
sys.argv = ["nnstudio", "--self-test"]
from nnstudio.cli import main
sys.exit(main())
"""


def _names(requirements: list[str]) -> set[str]:
    return {re.match(r"[A-Za-z0-9_.\-]+", req)[0].lower().replace("_", "-") for req in requirements}


def test_pandas_and_pyarrow_are_in_the_test_extra_only():
    import tomllib

    with (ROOT / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)["project"]
    runtime = _names(project["dependencies"])
    assert not runtime & TEST_ONLY, f"runtime dependencies name {sorted(runtime & TEST_ONLY)}"
    assert "polars" in runtime
    assert TEST_ONLY <= _names(project["optional-dependencies"]["test"])


def test_self_test_passes_with_pandas_and_pyarrow_uninstalled(tmp_path: Path):
    # CI's packaging job runs tests/packaging with pytest alone; the frozen app's self-test covers it there.
    for module in ("torch", "PySide6", "polars"):
        pytest.importorskip(module)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path), XDG_RUNTIME_DIR=str(tmp_path),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-c", BLOCKED_SELF_TEST], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.strip().startswith("{")]
    assert lines, f"no summary from the self-test (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    summary = json.loads(lines[-1])
    assert summary.get("ok") is True and proc.returncode == 0, \
        f"{json.dumps(summary)[:3000]}\nstderr:\n{proc.stderr[-3000:]}"
