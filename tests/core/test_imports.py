"""The core and the headless command line run with Qt impossible to import."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from corehelpers import cli_env, write_toml
from nnstudio.resources import sample_dataset

CORE_DIR = Path(__file__).resolve().parents[2] / "nnstudio" / "core"
# every module of the core, found on disk, so a new package cannot slip past the blocker
CORE_MODULES = sorted(".".join(p.relative_to(CORE_DIR).with_suffix("").parts).removesuffix(".__init__")
                      for p in CORE_DIR.rglob("*.py") if p.name != "__init__.py" or p.parent != CORE_DIR)


def test_the_module_list_holds_every_package():
    assert {"data", "model.spec", "training.engine", "results.evaluate", "export.codegen", "run", "config"} <= set(CORE_MODULES)


def test_core_imports_no_qt(tmp_path):
    toml = write_toml(tmp_path / "run.toml", sample_dataset("flowers.csv"), epochs=1)
    script = textwrap.dedent(f"""
        import importlib, importlib.abc, json, sys

        BLOCKED = ("PySide6", "shiboken6", "pyqtgraph")

        class BlockQt(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"Qt is blocked in this test: {{name}}")
                return None

        sys.meta_path.insert(0, BlockQt())
        try:
            import PySide6  # noqa: F401
        except ImportError:
            pass
        else:
            raise SystemExit("the blocker did not block PySide6")

        for name in {CORE_MODULES!r}:
            importlib.import_module("nnstudio.core." + name)
        from nnstudio import cli

        rc = cli.main(["train", {str(toml)!r}, "--json", "--quiet"])
        assert rc == 0, rc
        rc = cli.main(["info", "model.pt"])
        assert rc == 0, rc
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not loaded, loaded
        print("OK")
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=cli_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.rstrip().endswith("OK")
    assert '"test"' in proc.stdout and "total parameters" in proc.stdout
