"""The sweep benchmark runs (quick mode), so it never rots; timings are not asserted."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_sweep_models_benchmark_quick_run(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "sweep_models", ROOT / "benchmarks" / "sweep_models.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "sweep.json"
    results = module.main(["--quick", "--json", str(out)])
    assert [r["model"] for r in results] == list(module.MODELS)
    assert json.loads(out.read_text()) == results
    for r in results:
        assert r["vmapped_s"] > 0 and r["sequential_s"] > 0
        # Sweep member 0 and its separate run compute the same formulas: after 20 steps
        # they are float32 rounding apart, not diverged.
        assert r["drift"]["20"] < 1e-4
