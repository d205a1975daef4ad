"""Training from the real window (offscreen, plots live) against the engine headless, and the GUI thread's stalls.

One subprocess hosts a QApplication and `nnstudio.gui.MainWindow`, shown at 1400×900. It opens the synthetic
table (a .npy: N × 32 features and the class as the last column), sets the layers and the training settings
in the window's own panels, presses the Train button and waits for `training_finished`. Between window runs,
interleaved, it fits the same prepared data and config headless on the main thread (`Trainer.fit`, no
callbacks). Each cell trains enough epochs for a headless fit to last `min_fit_seconds` (a run's fixed
costs belong to start-up, which the click-to-done column shows). Throughput is training rows × epochs over
the fit's own clock (`FitFinished.seconds`: the epoch loop with validation, the same span on both sides);
the click-to-finished wall time is kept as well. The process is set up as the app sets itself up (the GUI
thread computes with one torch thread, `nnstudio.gui.app.openmp_in_training_thread_only`), and the headless
fit runs in a fresh thread of its own, as the engine runs in the window and as fast as `nnstudio train` runs
it on the main thread (one OpenMP team either way; measured equal).
A 10 ms QTimer runs throughout each window run; its largest gap is the main thread's longest stall, reported
for the whole click-to-finished span and for the fit alone (preparing tensors on click is outside the fit).

    python -m benchmarks.window child '{"models": [...], ...}'   # used by the suite
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import time
from typing import Callable, Sequence

from benchmarks.common import ROOT, fmt_ratio, paired_ratios, rotate, spread

CASES = ("window", "headless")


def available() -> str | None:
    from benchmarks.startup import window_available

    return window_available()


def _wait(signal, timeout_s: float, fail_signal=None):
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    got: list = []
    failed: list = []

    def on_done(*args):
        got.append(args)
        loop.quit()

    def on_fail(*args):
        failed.append(args)
        loop.quit()

    signal.connect(on_done)
    if fail_signal is not None:
        fail_signal.connect(on_fail)
    guard = QTimer()
    guard.setSingleShot(True)
    guard.timeout.connect(loop.quit)
    guard.start(int(timeout_s * 1000))
    try:
        if not got:
            loop.exec()
    finally:
        guard.stop()
        signal.disconnect(on_done)
        if fail_signal is not None:
            fail_signal.disconnect(on_fail)
    if failed:
        raise RuntimeError(f"the window reported an error: {failed[0]}")
    if not got:
        raise TimeoutError(f"no signal within {timeout_s:.0f}s")
    return got[0]


def _in_thread(work: Callable):
    """Run `work` in a fresh thread (as the window trains: in a thread of its own, whose OpenMP team goes
    when it ends); the GUI thread waits. Returns its result, re-raises its error."""
    import threading

    out: list = []
    err: list = []

    def run() -> None:
        try:
            out.append(work())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            err.append(exc)

    t = threading.Thread(target=run, name="nnstudio-bench-headless")
    t.start()
    t.join()
    if err:
        raise err[0]
    return out[0]


def child(params: dict) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import numpy as np
    import torch

    # As the app does (nnstudio.gui.app.run_app), before anything computes: the GUI thread builds no OpenMP
    # team; only the thread that trains does (a second team would slow both; see that function).
    from nnstudio.gui.app import openmp_in_training_thread_only

    openmp_in_training_thread_only()
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from benchmarks.training import MODELS, layer_spec, make_data
    from nnstudio.core.training.engine import TrainConfig, Trainer
    from nnstudio.core.model.spec import build_model

    app = QApplication.instance() or QApplication(sys.argv[:1])
    from nnstudio.gui import MainWindow

    rows, repeats = params["rows"], params["repeats"]
    tmp = tempfile.TemporaryDirectory(prefix="nnstudio-bench-window-")
    X, y = make_data(rows)
    path = os.path.join(tmp.name, "synthetic.npy")
    np.save(path, np.concatenate([X.numpy(), y.numpy()[:, None].astype(np.float32)], axis=1))
    del X, y

    settings = QSettings(os.path.join(tmp.name, "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings=settings, logdir=os.path.join(tmp.name, "runs"))
    window.resize(1400, 900)
    window.show()
    app.processEvents()
    t0 = time.perf_counter()
    window.open_dataset(path)
    _wait(window.datasetPanel.dataset_loaded, 600, window.error_shown)
    load_s = time.perf_counter() - t0

    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    fit_marks: dict[str, float] = {}
    window.controller.fit_started.connect(lambda *_: fit_marks.__setitem__("start", time.perf_counter()))
    window.controller.fit_finished.connect(lambda *_: fit_marks.__setitem__("end", time.perf_counter()))

    def max_gap(lo: float, hi: float) -> float:
        inside = [t for t in ticks if lo <= t <= hi]
        points = [lo, *inside, hi]
        return max(b - a for a, b in zip(points, points[1:])) * 1e3

    cells = []
    for model_name in params["models"]:
        layers = layer_spec(MODELS[model_name])
        window.modelBuilder.set_layers(layers, undoable=False)
        for batch in params["batches"]:
            cfg = TrainConfig(epochs=1, batch_size=batch, optimizer="Adam", lr=1e-3, seed=0, device="cpu")
            window.trainingPanel.set_train_config(cfg)
            app.processEvents()
            data = window.prepare_data()
            n_train = len(data.train)
            # Enough epochs that a fit lasts min_fit_seconds headless: a run's fixed costs (TensorBoard
            # writer, thread start) are start-up, reported by the click-to-done column, not throughput.
            one = _in_thread(lambda: Trainer(build_model(layers, data.n_features, data.n_outputs), data,
                                             window.run_config().training).fit())
            epochs = max(params["epochs"], min(100, math.ceil(params.get("min_fit_seconds", 0.0) / max(one.seconds, 1e-6))))
            cfg.epochs = epochs
            window.trainingPanel.set_train_config(cfg)
            app.processEvents()
            runs: dict[str, list[dict]] = {c: [] for c in CASES}
            for r in range(repeats + 1):  # round 0 warms both paths up and is not kept
                for case in rotate(CASES, r):
                    if case == "window":
                        ticks.clear()
                        fit_marks.clear()
                        timer.start()
                        t_click = time.perf_counter()
                        window.trainingPanel.trainButton.click()
                        info = _wait(window.training_finished, 3600, window.error_shown)[0]
                        t_done = time.perf_counter()
                        timer.stop()
                        seconds = float(info["seconds"])
                        run = {"fit_seconds": seconds, "wall_seconds": t_done - t_click,
                               "stall_ms": max_gap(t_click, t_done),
                               "stall_fit_ms": max_gap(fit_marks.get("start", t_click), fit_marks.get("end", t_done)),
                               "steps": info.get("steps")}
                    else:
                        model = build_model(layers, data.n_features, data.n_outputs)
                        t_start = time.perf_counter()
                        result = _in_thread(lambda: Trainer(model, data, window.run_config().training).fit())
                        run = {"fit_seconds": result.seconds, "wall_seconds": time.perf_counter() - t_start,
                               "steps": result.steps}
                    run["samples_per_s"] = n_train * epochs / run["fit_seconds"]
                    if r > 0:
                        runs[case].append(run)
                    app.processEvents()
            w = [x["samples_per_s"] for x in runs["window"]]
            h = [x["samples_per_s"] for x in runs["headless"]]
            cells.append({
                "model": model_name, "batch": batch, "n_train": n_train, "epochs": epochs, "repeats": repeats,
                "samples_per_s": {"window": spread(w), "headless": spread(h)},
                "window_vs_headless": spread(paired_ratios(w, h)),
                "window_vs_headless_by_wall": spread(paired_ratios(
                    [x["wall_seconds"] for x in runs["headless"]], [x["wall_seconds"] for x in runs["window"]])),
                "stall_ms": spread([x["stall_ms"] for x in runs["window"]]),
                "stall_fit_ms": spread([x["stall_fit_ms"] for x in runs["window"]]),
                "runs": runs,
            })
            print(json.dumps({"progress": f"{model_name} @ {batch}: window/headless "
                              f"{fmt_ratio(cells[-1]['window_vs_headless'])}, stall "
                              f"{cells[-1]['stall_ms']['median']:.0f} ms (fit {cells[-1]['stall_fit_ms']['median']:.0f} ms)"}),
                  flush=True)
    window.close()
    window.shutdown()
    app.processEvents()
    tmp.cleanup()
    return {"rows": rows, "min_fit_seconds": params.get("min_fit_seconds", 0.0), "load_seconds": load_s, "cells": cells}


def measure(models: Sequence[str], batches: Sequence[int], rows: int, epochs: int, repeats: int,
            log: Callable[[str], None] = print, timeout: float = 7200, min_fit_seconds: float = 0.0) -> dict:
    note = available()
    if note:
        log(f"  skipped: {note}")
        return {"skipped": note}
    params = {"models": list(models), "batches": list(batches), "rows": rows, "epochs": epochs, "repeats": repeats,
              "min_fit_seconds": min_fit_seconds}
    with tempfile.TemporaryDirectory(prefix="nnstudio-bench-home-") as home:
        env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"),
                   XDG_CONFIG_HOME=home, XDG_DATA_HOME=home, XDG_CACHE_HOME=home)
        proc = subprocess.Popen([sys.executable, "-m", "benchmarks.window", "child", json.dumps(params)], cwd=ROOT,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        result = None
        deadline = time.monotonic() + timeout
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("{"):
                msg = json.loads(line)
                if "progress" in msg:
                    log("  " + msg["progress"])
                else:
                    result = msg
            if time.monotonic() > deadline:
                proc.kill()
                break
        stderr = proc.stderr.read() if proc.stderr else ""
        proc.wait()
    if result is None:
        raise RuntimeError(f"window case failed (exit {proc.returncode}): {stderr.strip()[-3000:]}")
    return result


def targets(section: dict) -> list[dict]:
    if "skipped" in section:
        return [{"target": "window ≥ 0.9× headless, main-thread stall ≤ 50 ms", "where": "window",
                 "skipped": section["skipped"]}]
    out = []
    for cell in section["cells"]:
        where = f"{cell['model']} @ {cell['batch']}"
        s = cell["window_vs_headless"]
        out.append({"target": "window ≥ 0.9× headless", "where": where, "median": s["median"], "min": s["min"],
                    "max": s["max"], "need": 0.9, "met": s["median"] >= 0.9})
        s = cell["stall_ms"]
        out.append({"target": "main-thread stall ≤ 50 ms", "where": where, "median": s["median"], "min": s["min"],
                    "max": s["max"], "need": 50.0, "met": s["median"] <= 50.0, "lower_is_better": True, "unit": "ms"})
    return out


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "child":
        print(json.dumps(child(json.loads(sys.argv[2]))), flush=True)
