"""Start-up: process start to the main window shown and responsive, against a bare PySide6 window + `import torch`.

Each case is a fresh interpreter (settings in an empty temporary home), with nnstudio byte-compiled as
an installed copy is. The parent notes the wall clock
just before spawning; the child reports (on stdout) the wall clock when the event loop first runs with the
main window visible ("shown"), and when it is responsive: the start of the first 100 ms in which a 10 ms QTimer ticked with no gap over
50 ms (a window that imports torch in the GUI thread right after showing is shown, but not responsive).

    python -m benchmarks.startup child bare|nnstudio   # one measurement (used by the suite)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Callable, Sequence

from benchmarks.common import ROOT, fmt_ratio, paired_ratios, rotate, spread

CASES = ("bare", "nnstudio")
QUIET_WINDOW_S = 0.100
MAX_GAP_S = 0.050


def window_available() -> str | None:
    """None when nnstudio.gui.MainWindow can be imported, else why not."""
    try:
        from nnstudio.gui import MainWindow  # noqa: F401
    except Exception as exc:  # ImportError while the window is being written, or any error inside it
        return f"nnstudio.gui.MainWindow is not available ({type(exc).__name__}: {exc})"
    return None


def child(case: str) -> None:
    """Bare: import torch, show a QMainWindow. nnstudio: the `nnstudio` command with no arguments (window + sample)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    ticks: list[float] = []
    state: dict = {}

    def tick() -> None:
        now = time.perf_counter()
        if "shown" not in state:
            if not any(isinstance(w, QMainWindow) and w.isVisible() for w in app.topLevelWidgets()):
                return
            state["shown"] = time.time()
            state["quiet_start"] = now
            ticks.append(now)
            return
        if now - ticks[-1] > MAX_GAP_S:
            state["quiet_start"] = now
        ticks.append(now)
        if now - state["quiet_start"] >= QUIET_WINDOW_S:
            timer.stop()
            gaps = [b - a for a, b in zip(ticks, ticks[1:])]
            print(json.dumps({"case": case, "shown": state["shown"],
                              "responsive": state["shown"] + (state["quiet_start"] - ticks[0]),
                              "longest_gap_ms": max(gaps) * 1e3 if gaps else 0.0}), flush=True)
            for w in app.topLevelWidgets():
                w.close()
            app.quit()

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    timer.start()
    if case == "bare":
        import torch  # noqa: F401
        from PySide6.QtWidgets import QLabel

        window = QMainWindow()
        window.setCentralWidget(QLabel("bare"))
        window.resize(1200, 800)
        window.show()
        app.exec()
    else:
        from nnstudio.cli import main

        main([])


def compile_sources() -> None:
    """Byte-compile the nnstudio package first, as installing it does (pip writes its .pyc files).

    Without this, a shell with PYTHONDONTWRITEBYTECODE=1 compiles nnstudio's ~25 modules from source
    in every child (~80 ms measured) while torch, the reference, loads from its installed bytecode:
    a cost the installed app never has. Stale files are simply recompiled; __pycache__ is git-ignored.
    """
    import compileall

    compileall.compile_dir(os.path.join(ROOT, "nnstudio"), quiet=1)


def _run_child(case: str, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="nnstudio-bench-home-") as home:
        env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"),
                   XDG_CONFIG_HOME=home, XDG_DATA_HOME=home, XDG_CACHE_HOME=home)  # no user settings either way
        start = time.time()
        proc = subprocess.run([sys.executable, "-m", "benchmarks.startup", "child", case], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"start-up case {case} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    out = json.loads(lines[-1])
    return {"shown_s": out["shown"] - start, "responsive_s": out["responsive"] - start,
            "longest_gap_ms": out["longest_gap_ms"]}


def measure(repeats: int, log: Callable[[str], None] = print, timeout: float = 180) -> dict:
    cases: Sequence[str] = CASES
    note = window_available()
    if note:
        cases = ("bare",)
    compile_sources()
    runs: dict[str, list[dict]] = {c: [] for c in cases}
    for r in range(repeats):
        for case in rotate(cases, r):
            runs[case].append(_run_child(case, timeout))
    out: dict = {
        "repeats": repeats,
        "shown_s": {c: spread([x["shown_s"] for x in v]) for c, v in runs.items()},
        "responsive_s": {c: spread([x["responsive_s"] for x in v]) for c, v in runs.items()},
        "runs": runs,
    }
    if note:
        out["skipped"] = {"nnstudio": note}
    else:
        out["nnstudio_vs_bare_responsive"] = spread(paired_ratios([x["responsive_s"] for x in runs["nnstudio"]],
                                                                  [x["responsive_s"] for x in runs["bare"]]))
        out["nnstudio_vs_bare_shown"] = spread(paired_ratios([x["shown_s"] for x in runs["nnstudio"]],
                                                             [x["shown_s"] for x in runs["bare"]]))
    log("  " + "  ".join(f"{c} shown {out['shown_s'][c]['median']:.2f}s responsive {out['responsive_s'][c]['median']:.2f}s"
                         for c in cases)
        + (f"  nnstudio/bare {fmt_ratio(out['nnstudio_vs_bare_responsive'])}" if not note else f"  ({note})"))
    return out


def targets(section: dict) -> list[dict]:
    if "nnstudio_vs_bare_responsive" not in section:
        return [{"target": "window shown and responsive ≤ 1.2× bare window + import torch", "where": "start-up",
                 "skipped": section.get("skipped", {}).get("nnstudio", "not measured")}]
    s = section["nnstudio_vs_bare_responsive"]
    return [{"target": "window shown and responsive ≤ 1.2× bare window + import torch", "where": "start-up",
             "median": s["median"], "min": s["min"], "max": s["max"], "need": 1.2, "met": s["median"] <= 1.2,
             "lower_is_better": True}]


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "child":
        child(sys.argv[2])
    else:
        print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 3), indent=1))
