"""benchmarks/distributed.py and benchmarks/health.py run end to end in their smallest form (no timing asserts)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_distributed_benchmark_reports_every_case(tmp_path):
    out = tmp_path / "dist.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.distributed", "--tiny", "--models", "32-16-10",
                           "--json", str(out)], cwd=ROOT, env=dict(os.environ), capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (cell,) = json.loads(out.read_text())["cells"]
    for case in ("1p1t", "1p2t", "2p1t"):
        assert "error" not in cell[case], cell[case]
        assert cell[case]["rows_per_s"] > 0
    assert cell["2p1t"]["step_ddp_ms"] > 0 and cell["2p1t"]["allreduce_ms"] > 0
    assert cell["2p1t"]["params"] == 32 * 16 + 16 + 16 * 10 + 10
    assert 0 < cell["efficiency"] and 0 < cell["speedup_vs_1p2t"]


def test_health_benchmark_reports_the_costs(tmp_path):
    out = tmp_path / "health.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.health", "--rounds", "1", "--epochs", "2", "--json",
                           str(out)], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    from nnstudio.core.training.engine import GRAD_NORM_EVERY

    assert set(result["derived_cost"]) == {f"every_{GRAD_NORM_EVERY}", "every_step"}
    assert result["norm_call_us"] > 0 and result["step_us"] > 0
