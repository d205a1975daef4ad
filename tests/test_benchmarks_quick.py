"""The speed suite runs end to end in its tiny mode and reports every case (no timing assertions)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_tiny_suite_reports_every_case(tmp_path):
    out = tmp_path / "bench.json"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run([sys.executable, "-m", "benchmarks.run", "--tiny", "--json", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Targets (issue 5)" in proc.stdout
    results = json.loads(out.read_text())
    sections = results["sections"]
    assert not [name for name, s in sections.items() if "error" in s]

    training = sections["training"]
    expected = {"raw", "raw_fused", "raw_1thread", "textbook", "engine", "engine_cli"}
    assert expected <= set(training["cases"])
    for cell in training["cells"]:
        for case in training["cases"]:
            assert cell["samples_per_s"][case]["median"] > 0, case
        assert cell["ratio_vs_raw"]["engine"]["median"] > 0
        assert cell["engine_threads"] >= 1

    window = sections["window"]
    if "skipped" not in window:
        for cell in window["cells"]:
            assert cell["samples_per_s"]["window"]["median"] > 0
            assert cell["samples_per_s"]["headless"]["median"] > 0
            assert cell["stall_ms"]["median"] >= 0

    csv_ = sections["csv"]
    for case in ("nnstudio", "polars", "pandas"):
        assert csv_["seconds"][case]["median"] > 0
        assert csv_["peak_rss_delta_bytes"][case]["median"] > 0
        assert all(run["rows"] == csv_["rows"] for run in csv_["runs"][case])

    startup = sections["startup"]
    assert startup["responsive_s"]["bare"]["median"] > 0
    if "skipped" not in startup:
        assert startup["responsive_s"]["nnstudio"]["median"] > 0

    plot = sections["plot"]
    if "skipped" not in plot:
        assert all(r["redraw_ms_median"] > 0 for r in plot["results"])

    assert results["targets"]
