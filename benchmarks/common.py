"""Shared helpers: robust statistics over interleaved repeats, machine facts, subprocess peaks."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from typing import Any, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median with min and max: what every table cell reports."""
    vals = [float(v) for v in values]
    if not vals:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan"), "n": 0}
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def paired_ratios(values: Sequence[float], reference: Sequence[float]) -> list[float]:
    """Round-by-round ratios: each repeat is compared with the reference measured in the same round,
    so a machine that gets busier or quieter between rounds moves both sides together."""
    return [v / r for v, r in zip(values, reference) if r > 0]


def rotate(items: Sequence[Any], k: int) -> list[Any]:
    items = list(items)
    if not items:
        return items
    k %= len(items)
    return items[k:] + items[:k]


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def machine() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "cpu": cpu_model(), "cores": cores(), "python": platform.python_version(), "torch": torch.__version__,
        "torch_threads_default": torch.get_num_threads(), "platform": platform.platform(),
        "loadavg_at_start": loadavg(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    try:
        import PySide6

        info["pyside6"] = PySide6.__version__
    except Exception:
        info["pyside6"] = None
    return info


def maxrss_bytes(usage) -> int:
    """ru_maxrss is KiB on Linux, bytes on macOS."""
    return int(usage.ru_maxrss) * (1 if sys.platform == "darwin" else 1024)


def fmt_rate(x: float) -> str:
    if x != x:
        return "–"
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


def fmt_ratio(s: dict[str, float] | None) -> str:
    """`1.23× (1.10–1.31)`: median and the spread over rounds."""
    if not s or not s.get("n"):
        return "–"
    if s["n"] == 1:
        return f"{s['median']:.2f}×"
    return f"{s['median']:.2f}× ({s['min']:.2f}–{s['max']:.2f})"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
