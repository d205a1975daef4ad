"""Redraw time of LossPlot with 10^6 and 10^7 step losses (offscreen, 1000x600).

Each sample appends a batch of 100 steps, then times ``redraw()`` (setData on the
buffers) plus ``widget.grab()`` (a forced repaint). Prints JSON; target: 10^6 < 30 ms.

    QT_QPA_PLATFORM=offscreen python benchmarks/plot_redraw.py [--sizes 1000000 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402

from nnstudio.gui.plots import LossPlot, smooth_ema  # noqa: E402

BATCH = 100


def fake_losses(start: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    steps = np.arange(start, start + n, dtype=np.float64)
    loss = (2.0 * np.exp(-steps / 2e5) + 0.1) * (1 + 0.2 * rng.standard_normal(n))
    return steps, loss


def measure(n_points: int, repeats: int, smoothing: float | None) -> dict:
    app = pg.mkQApp()
    rng = np.random.default_rng(0)
    plot = LossPlot()
    plot.resize(1000, 600)
    plot.show()
    if smoothing is not None:
        plot.set_smoothing(smoothing)
    steps, loss = fake_losses(0, n_points, rng)
    t0 = time.perf_counter()
    plot.add_steps(steps, loss)
    append_ms = (time.perf_counter() - t0) * 1e3
    plot.redraw()
    plot.grab()
    app.processEvents()
    samples, setdata = [], []
    next_step = n_points
    for _ in range(repeats):
        steps, loss = fake_losses(next_step, BATCH, rng)
        next_step += BATCH
        plot.add_steps(steps, loss)
        t0 = time.perf_counter()
        plot.redraw()
        t1 = time.perf_counter()
        plot.grab()
        t2 = time.perf_counter()
        samples.append((t2 - t0) * 1e3)
        setdata.append((t1 - t0) * 1e3)
    shown = len(plot.curve("steps").getData()[0])
    plot.close()
    plot.deleteLater()
    app.processEvents()
    return {
        "points": n_points,
        "smoothing": smoothing,
        "redraw_ms_median": round(statistics.median(samples), 2),
        "redraw_ms_samples": [round(s, 2) for s in samples],
        "setdata_only_ms_median": round(statistics.median(setdata), 2),
        "initial_add_steps_ms": round(append_ms, 1),
        "points_drawn_after_downsampling": shown,
    }


def ema_times(repeats: int) -> dict[str, float]:
    y = np.random.default_rng(0).random(10**6)
    y[::1000] = np.nan
    out = {}
    for alpha in (0.01, 0.1, 0.5, 0.99):
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            smooth_ema(y, alpha)
            samples.append((time.perf_counter() - t0) * 1e3)
        out[f"alpha={alpha}"] = round(statistics.median(samples), 2)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10**6, 10**7])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoothing", type=float, default=None,
                        help="also draw the EMA-smoothed curve with this alpha")
    args = parser.parse_args(argv)
    results = [measure(n, args.repeats, args.smoothing) for n in args.sizes]
    print(json.dumps({"benchmark": "LossPlot.redraw+grab", "size": [1000, 600],
                      "results": results, "smooth_ema_1e6_ms": ema_times(args.repeats)},
                     indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
