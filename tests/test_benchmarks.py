"""The benchmark runs (quick mode), so it never rots; its own correctness check must pass.

Timings are printed and written, never asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_step_time_benchmark_quick_run(tmp_path: Path) -> None:
    out = tmp_path / "step_time.json"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "step_time.py"), "--quick", "--json", str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    result = json.loads(out.read_text())
    agreement = result["agreement"]
    for name in ("Adam", "SGD", "RMSprop"):
        assert agreement[name]["vs_numpy"] <= agreement["rtol"]
        assert agreement[name]["apply_gradients_vs_update"] == 0.0
    assert {r["optimizer"] for r in result["results"]} == {"Adam", "SGD", "RMSprop"}
