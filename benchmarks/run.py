"""Run nnstudio's speed suite: print tables, write JSON (and, for a full run, benchmarks/RESULTS.md).

    python -m benchmarks.run                 # full: 200k-row training cells, 1M-row CSV, start-up, plots
    python -m benchmarks.run --quick         # small sizes, a few minutes
    python -m benchmarks.run --tiny          # seconds; what tests/test_benchmarks_quick.py runs
    python -m benchmarks.run --sections training --models 32-16-10 --batches 4096 --repeats 5

Every section runs its references in the same process (or the same round of subprocesses), interleaved
and repeated; tables give median ratios with their min–max over rounds. No section asserts on timings.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from typing import Any, Callable

if __package__ in (None, ""):  # `python benchmarks/run.py`
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "benchmarks"

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from benchmarks import common  # noqa: E402
from benchmarks.common import ROOT, fmt_rate, fmt_ratio, markdown_table  # noqa: E402

SECTIONS = ("training", "window", "csv", "startup", "plot")
RESULTS_DIR = os.path.join(ROOT, "benchmarks", "results")
RESULTS_MD = os.path.join(ROOT, "benchmarks", "RESULTS.md")

PROFILES: dict[str, dict[str, Any]] = {
    "full": {
        "training": {"rows": 200_000, "epochs": 1, "repeats": 5,
                     "models": ["32-16-10", "32-128-128-10", "32-1024-1024-10"], "batches": [32, 256, 4096],
                     "cases": ["raw", "raw_fused", "raw_1thread", "textbook", "engine", "engine_cli", "lightning"]},
        "window": {"rows": 200_000, "epochs": 1, "repeats": 3, "min_fit_seconds": 3.0,
                   "models": ["32-16-10", "32-128-128-10", "32-1024-1024-10"], "batches": [32, 256, 4096]},
        "csv": {"rows": 1_000_000, "repeats": 3},
        "startup": {"repeats": 5},
        "plot": {"sizes": [1_000_000, 10_000_000], "repeats": 5},
    },
    "quick": {
        "training": {"rows": 20_000, "epochs": 1, "repeats": 3, "models": ["32-16-10", "32-128-128-10"],
                     "batches": [32, 256, 4096], "cases": ["raw", "raw_fused", "textbook", "engine", "engine_cli"]},
        "window": {"rows": 20_000, "epochs": 1, "repeats": 2, "min_fit_seconds": 1.0, "models": ["32-16-10"],
                   "batches": [256]},
        "csv": {"rows": 100_000, "repeats": 3},
        "startup": {"repeats": 3},
        "plot": {"sizes": [1_000_000], "repeats": 3},
    },
    "tiny": {
        "training": {"rows": 2048, "epochs": 1, "repeats": 1, "models": ["32-16-10"], "batches": [256],
                     "cases": ["raw", "raw_fused", "raw_1thread", "textbook", "engine", "engine_cli", "lightning"]},
        "window": {"rows": 4096, "epochs": 1, "repeats": 1, "min_fit_seconds": 0.0, "models": ["32-16-10"],
                   "batches": [512]},
        "csv": {"rows": 5_000, "repeats": 1},
        "startup": {"repeats": 1},
        "plot": {"sizes": [10_000], "repeats": 1},
    },
}


# ---------------------------------------------------------------------------------------------- sections

def run_training(p: dict, log) -> dict:
    from benchmarks import training

    return training.measure(p["models"], p["batches"], p["cases"], p["rows"], p["epochs"], p["repeats"], log)


def run_window(p: dict, log) -> dict:
    from benchmarks import window

    return window.measure(p["models"], p["batches"], p["rows"], p["epochs"], p["repeats"], log,
                          min_fit_seconds=p.get("min_fit_seconds", 0.0))


def run_csv(p: dict, log) -> dict:
    from benchmarks import csv_load

    return csv_load.measure(p["rows"], p["repeats"], log=log)


def run_startup(p: dict, log) -> dict:
    from benchmarks import startup

    return startup.measure(p["repeats"], log)


def run_plot(p: dict, log) -> dict:
    script = os.path.join(ROOT, "benchmarks", "plot_redraw.py")
    if not os.path.exists(script):
        log("  skipped: benchmarks/plot_redraw.py is not there")
        return {"skipped": "benchmarks/plot_redraw.py is not there"}
    cmd = [sys.executable, script, "--sizes", *map(str, p["sizes"]), "--repeats", str(p["repeats"])]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800,
                          env=dict(os.environ, QT_QPA_PLATFORM="offscreen"))
    if proc.returncode != 0:
        raise RuntimeError(f"plot_redraw.py failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    out = json.loads(proc.stdout[proc.stdout.index("{"):])
    for r in out.get("results", []):
        log(f"  {r['points']:>10,} points: redraw {r['redraw_ms_median']:.1f} ms")
    return out


RUNNERS: dict[str, Callable[[dict, Callable], dict]] = {
    "training": run_training, "window": run_window, "csv": run_csv, "startup": run_startup, "plot": run_plot,
}


def plot_targets(section: dict) -> list[dict]:
    if "skipped" in section:
        return [{"target": "10^6-point step-loss redraw < 30 ms", "where": "plot", "skipped": section["skipped"]}]
    out = []
    for r in section.get("results", []):
        if r["points"] == 1_000_000:
            v = r["redraw_ms_median"]
            samples = r.get("redraw_ms_samples") or [v]
            out.append({"target": "10^6-point step-loss redraw < 30 ms", "where": "1,000,000 points", "median": v,
                        "min": min(samples), "max": max(samples), "need": 30.0, "met": v < 30.0,
                        "lower_is_better": True, "unit": "ms"})
    return out


def all_targets(results: dict) -> list[dict]:
    from benchmarks import csv_load, startup, training, window

    sections = results["sections"]
    out: list[dict] = []
    if "training" in sections and "error" not in sections["training"]:
        out += training.targets(sections["training"])
    if "window" in sections and "error" not in sections["window"]:
        out += window.targets(sections["window"])
    if "csv" in sections and "error" not in sections["csv"]:
        out += csv_load.targets(sections["csv"])
    if "startup" in sections and "error" not in sections["startup"]:
        out += startup.targets(sections["startup"])
    if "plot" in sections and "error" not in sections["plot"]:
        out += plot_targets(sections["plot"])
    return out


# ---------------------------------------------------------------------------------------------- report

def _value(t: dict) -> str:
    if "skipped" in t:
        return "skipped"
    unit = t.get("unit", "×")
    if unit == "ms":
        return f"{t['median']:.1f} ms ({t['min']:.1f}–{t['max']:.1f})"
    return f"{t['median']:.2f}× ({t['min']:.2f}–{t['max']:.2f})"


def report(results: dict) -> str:
    m = results["machine"]
    parts = [f"# nnstudio benchmarks ({results['profile']})", "",
             f"{m['started']} · {m['cpu']} · {m['cores']} cores · torch {m['torch']} "
             f"({m['torch_threads_default']} threads by default) · Python {m['python']} · PySide6 {m['pyside6']} · "
             f"load average at start {m['loadavg_at_start']}, at end {results.get('loadavg_at_end')} · "
             f"{results.get('seconds', 0) / 60:.1f} min", ""]
    for i, run in enumerate(results.get("combined_from", [])):
        cells = run.get("params") or {}
        what = ", ".join(f"{name} ({', '.join(cells[name].get('models', []))} × {cells[name].get('batches', '')})"
                         if name in ("training", "window") and name in cells and i else name for name in run["sections"])
        parts += [f"- run {i + 1}, {run['started']}, load average {run['loadavg_at_start']} → {run['loadavg_at_end']}: "
                  f"{what}" + (" (its cells replace run 1's)" if i else "")]
    if results.get("combined_from"):
        parts.append("")
    busy = [x for x in (m.get("loadavg_at_start"), results.get("loadavg_at_end")) if x]
    if busy and max(x[0] for x in busy) > m["cores"] - 0.5:
        parts += [f"> The machine was busy (1-minute load average up to {max(x[0] for x in busy):.1f} on {m['cores']} "
                  "cores, this suite included): cases with two torch threads (the raw loop's default) suffer most "
                  "from other processes; see benchmarks/README.md.", ""]
    s = results["sections"]
    tr = s.get("training")
    if tr and "cells" in tr:
        cases = [c for c in tr["cases"] if c != "raw"]
        from benchmarks.training import CASE_LABELS

        header = ["model", "batch", "raw loop (samples/s)"] + [f"{CASE_LABELS[c]} / raw" for c in cases]
        if "engine" in tr["cases"]:
            header += ["engine / raw + fused", "engine / textbook", "engine threads"]
        rows = []
        for cell in tr["cells"]:
            row = [cell["model"], cell["batch"], fmt_rate(cell["samples_per_s"]["raw"]["median"])]
            row += [fmt_ratio(cell["ratio_vs_raw"].get(c)) for c in cases]
            if "engine" in tr["cases"]:
                row += [fmt_ratio(cell.get("engine_vs_raw_fused")), fmt_ratio(cell.get("engine_vs_textbook")),
                        cell["engine_threads"]]
            rows.append(row)
        parts += [f"## Training throughput ({tr['rows']:,} rows × {tr['features']}, {tr['classes']} classes, "
                  f"{tr['epochs']} epoch(s) per run, {tr['repeats']} interleaved rounds; ratios are medians of "
                  f"same-round ratios, min–max in brackets; Lightning: {tr['lightning']})", "",
                  markdown_table(header, rows), ""]
    win = s.get("window")
    if win:
        parts.append("## Training from the window (offscreen, plots live) vs headless")
        parts.append("")
        if "skipped" in win:
            parts += [f"skipped: {win['skipped']}", ""]
        elif "cells" in win:
            rows = [[c["model"], c["batch"], c["epochs"], fmt_rate(c["samples_per_s"]["window"]["median"]),
                     fmt_rate(c["samples_per_s"]["headless"]["median"]), fmt_ratio(c["window_vs_headless"]),
                     fmt_ratio(c["window_vs_headless_by_wall"]),
                     f"{c['stall_ms']['median']:.0f} ({c['stall_ms']['min']:.0f}–{c['stall_ms']['max']:.0f})",
                     f"{c['stall_fit_ms']['median']:.0f} ({c['stall_fit_ms']['min']:.0f}–{c['stall_fit_ms']['max']:.0f})"]
                    for c in win["cells"]]
            parts += [markdown_table(["model", "batch", "epochs", "window (samples/s)", "headless (samples/s)",
                                      "window / headless (fit)", "window / headless (click to done)",
                                      "longest stall, click to done (ms)", "longest stall during the fit (ms)"], rows),
                      ""]
        elif "error" in win:
            parts += [f"failed: {win['error'].splitlines()[-1]}", ""]
    csv_ = s.get("csv")
    if csv_ and "seconds" in csv_:
        rows = [[c, f"{csv_['seconds'][c]['median']:.2f} ({csv_['seconds'][c]['min']:.2f}–{csv_['seconds'][c]['max']:.2f})",
                 f"{csv_['peak_rss_delta_bytes'][c]['median'] / 2**20:.0f}",
                 f"{csv_['peak_vs_float32'][c]['median']:.2f}×"] for c in csv_["seconds"]]
        extra = ""
        if "nnstudio_read_seconds" in csv_:
            extra = (f" nnstudio = read_table {csv_['nnstudio_read_seconds']['median']:.2f}s + prepare "
                     f"{csv_['nnstudio_prepare_seconds']['median']:.2f}s; nnstudio / polars "
                     f"{fmt_ratio(csv_.get('nnstudio_vs_polars'))}, / pandas {fmt_ratio(csv_.get('nnstudio_vs_pandas'))}.")
        parts += [f"## CSV to tensors ({csv_['rows']:,} rows, {csv_['columns']}, {csv_['file_bytes'] / 2**20:.0f} MiB; "
                  f"float32 data {csv_['float32_bytes'] / 2**20:.0f} MiB)", "",
                  markdown_table(["case", "seconds", "peak RSS over baseline (MiB)", "peak / float32 data"], rows),
                  "", extra.strip(), ""]
    st = s.get("startup")
    if st and "shown_s" in st:
        rows = [[c, f"{st['shown_s'][c]['median']:.2f}", f"{st['responsive_s'][c]['median']:.2f}"]
                for c in st["shown_s"]]
        parts += ["## Start-up (process start to window shown / responsive, seconds)", "",
                  markdown_table(["case", "shown", "responsive"], rows), ""]
        if "nnstudio_vs_bare_responsive" in st:
            parts += [f"nnstudio / bare window + import torch: responsive {fmt_ratio(st['nnstudio_vs_bare_responsive'])}, "
                      f"shown {fmt_ratio(st['nnstudio_vs_bare_shown'])}", ""]
        else:
            parts += [f"nnstudio window skipped: {st.get('skipped', {}).get('nnstudio')}", ""]
    pl = s.get("plot")
    if pl and "results" in pl:
        rows = [[f"{r['points']:,}", f"{r['redraw_ms_median']:.1f}", f"{r.get('setdata_only_ms_median', float('nan')):.1f}",
                 r.get("points_drawn_after_downsampling", "")] for r in pl["results"]]
        parts += ["## Step-loss plot redraw (benchmarks/plot_redraw.py)", "",
                  markdown_table(["points", "redraw + repaint (ms)", "setData only (ms)", "points drawn"], rows), ""]
    for name, sec in s.items():
        if isinstance(sec, dict) and "error" in sec:
            parts += [f"**{name} failed**: `{sec['error'].strip().splitlines()[-1]}`", ""]
    targets = results.get("targets", [])
    if targets:
        rows = [[t["target"], t["where"], _value(t),
                 ("≤ " if t.get("lower_is_better") else "≥ ") + (f"{t['need']:g} ms" if t.get("unit") == "ms"
                                                                 else f"{t['need']:g}×") if "need" in t else "",
                 "skipped: " + t["skipped"] if "skipped" in t else ("met" if t["met"] else "**missed**")]
                for t in targets]
        met = sum(1 for t in targets if t.get("met"))
        measured = sum(1 for t in targets if "met" in t)
        parts += [f"## Targets (issue 5): {met} of {measured} met", "",
                  markdown_table(["target", "where", "measured: median (min–max)", "need", "result"], rows), ""]
    return "\n".join(parts).rstrip() + "\n"


def combine(runs: list[dict]) -> dict:
    """Later runs' cells (training, window) and other sections replace earlier ones; targets are re-evaluated."""
    out = json.loads(json.dumps(runs[0]))
    for run in runs[1:]:
        for name, sec in run["sections"].items():
            mine = out["sections"].get(name)
            if name in ("training", "window") and mine and "cells" in mine and "cells" in sec:
                keep = {(c["model"], c["batch"]): c for c in mine["cells"]}
                keep.update({(c["model"], c["batch"]): c for c in sec["cells"]})
                order = {m: i for i, m in enumerate(["32-16-10", "32-128-128-10", "32-1024-1024-10"])}
                mine["cells"] = sorted(keep.values(), key=lambda c: (order.get(c["model"], 99), c["model"], c["batch"]))
                if name == "training":
                    mine["cases"] = list(dict.fromkeys(mine["cases"] + sec["cases"]))
            else:
                out["sections"][name] = sec
    if len(runs) > 1:
        out["combined_from"] = [{"started": r["machine"]["started"], "loadavg_at_start": r["machine"]["loadavg_at_start"],
                                 "loadavg_at_end": r.get("loadavg_at_end"), "sections": list(r["sections"]),
                                 "params": r.get("params")} for r in runs]
        out["seconds"] = sum(r.get("seconds", 0) for r in runs)
        out["loadavg_at_end"] = runs[-1].get("loadavg_at_end")
    out["targets"] = all_targets(out)
    return out


# ---------------------------------------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="nnstudio's speed suite")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small sizes (minutes)")
    mode.add_argument("--tiny", action="store_true", help="smallest sizes (seconds): proves every case runs")
    parser.add_argument("--json", default=os.path.join(RESULTS_DIR, "latest.json"), help="where to write the JSON")
    parser.add_argument("--markdown", default=None,
                        help=f"where to write the tables (default: {os.path.relpath(RESULTS_MD, ROOT)} after a full run "
                             "of every section, nowhere otherwise)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--models", default=None, help="training/window: comma-separated subset, e.g. 32-16-10")
    parser.add_argument("--batches", default=None, help="training/window: comma-separated batch sizes")
    parser.add_argument("--rows", type=int, default=None, help="training/window/csv: rows of the synthetic tables")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved rounds per cell")
    parser.add_argument("--report", nargs="+", metavar="JSON", default=None,
                        help="measure nothing: print (and with --markdown write) the tables of earlier JSON results; "
                             "with several files, a later file's training/window cells and sections replace the "
                             "earlier ones (re-measure what a busy machine spoiled, keep the rest)")
    args = parser.parse_args(argv)
    if args.report:
        results = combine([json.load(open(path)) for path in args.report])
        text = report(results)
        print(text)
        if args.markdown:
            with open(args.markdown, "w") as fh:
                fh.write(text)
            print(f"tables: {args.markdown}")
        return 0

    profile = "tiny" if args.tiny else "quick" if args.quick else "full"
    sections = [x.strip() for x in args.sections.split(",") if x.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    params = json.loads(json.dumps(PROFILES[profile]))
    for name, p in params.items():
        if args.models and "models" in p:
            p["models"] = args.models.split(",")
        if args.batches and "batches" in p:
            p["batches"] = [int(b) for b in args.batches.split(",")]
        if args.rows and "rows" in p:
            p["rows"] = args.rows
        if args.repeats and "repeats" in p:
            p["repeats"] = args.repeats
    customised = any(v is not None for v in (args.models, args.batches, args.rows, args.repeats))

    def log(line: str) -> None:
        print(line, flush=True)

    started = time.perf_counter()
    results: dict[str, Any] = {"profile": profile, "machine": common.machine(), "params": {}, "sections": {}}
    log(f"nnstudio benchmarks, {profile} profile: {', '.join(sections)}  (load average {results['machine']['loadavg_at_start']})")
    for name in sections:
        log(f"[{name}]")
        results["params"][name] = params[name]
        t0 = time.perf_counter()
        try:
            results["sections"][name] = RUNNERS[name](params[name], log)
        except Exception:
            results["sections"][name] = {"error": traceback.format_exc()}
            log(f"  FAILED: {traceback.format_exc().strip().splitlines()[-1]}")
        results["sections"][name]["section_seconds"] = time.perf_counter() - t0
    results["seconds"] = time.perf_counter() - started
    results["loadavg_at_end"] = common.loadavg()
    results["targets"] = all_targets(results)

    text = report(results)
    print()
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as fh:
        json.dump(results, fh, indent=1, default=str)
    print(f"JSON: {args.json}")
    markdown = args.markdown
    if markdown is None and profile == "full" and set(sections) == set(SECTIONS) and not customised:
        markdown = RESULTS_MD
    if markdown:
        with open(markdown, "w") as fh:
            fh.write(text)
        print(f"tables: {markdown}")
    return 1 if any("error" in s for s in results["sections"].values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
