"""The benchmark runs (quick mode), so it never rots; its own correctness gate must pass.

Timings are printed and written, never asserted; what is checked is that every
contender's updates agreed with Keras's rule before timing and that every measurement
the README promises is in the JSON and the plot is written.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).parent.parent


def run_quick(script: str, *args: str) -> str:
    """Runs ``benchmarks/<script> --quick *args`` on this checkout's jopt; its stdout."""
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick", *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ).stdout


def test_step_time_benchmark_quick_run(tmp_path: Path) -> None:
    out = tmp_path / "step_time.json"
    run_quick("step_time.py", "--json", str(out))
    result = json.loads(out.read_text())
    assert (tmp_path / "step_time.png").stat().st_size > 0

    expected = {"jopt", "jopt.per_leaf", "jopt.packed", "optax", "keras"}
    if importlib.util.find_spec("torch") is not None:
        expected |= {"torch.fused", "torch.foreach"}
    assert set(result["meta"]["libraries"]) == expected
    agreement = result["agreement"]
    for name in ("Adam", "SGD", "RMSprop"):
        # torch has no fused RMSprop; everything else was checked against Keras's rule.
        checked = expected - ({"torch.fused"} if name == "RMSprop" else set())
        assert set(agreement[name]) == checked
        assert all(err <= agreement["rtol"] for err in agreement[name].values())

    assert {r["optimizer"] for r in result["results"]} == {"Adam", "SGD", "RMSprop"}
    # The README's table (benchmarks/report.py): a row per group, jopt's donated step over
    # optax's as the run measured it.
    rows = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "report.py"), str(out)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.splitlines()[2 : 2 + len(result["results"])]
    for row, group in zip(rows, result["results"], strict=True):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == group["optimizer"]
        steps = group["step_s"]
        ratio = steps["jopt+donate"]["median"] / steps["optax+donate"]["median"]
        assert cells[3] == f"{ratio:.2f}"
    for group in result["results"]:
        for lib in ("jopt", "optax", "keras"):
            # Keras is timed as its JAX trainer runs it: donated only.
            plain = lib != "keras"
            assert (lib in group["step_s"]) is plain
            assert group["step_s"][lib + "+donate"]["donation_effective"] is True
            stages = {"plain", "donated"} if plain else {"donated"}
            assert set(group["first_step_s"][lib]) == stages
            mem = group["memory"][lib]
            assert mem["peak"] == mem["argument"] + mem["output"] - mem["alias"] + mem["temp"]


def test_int8_states_benchmark_quick_run(tmp_path: Path) -> None:
    run_quick("int8_states.py", "--out", str(tmp_path))
    result = json.loads((tmp_path / "int8_states.json").read_text())
    assert (tmp_path / "int8_states.png").stat().st_size > 0
    for model in ("digits MLP", "stdlib char LM"):
        r = result[model]
        for key in ("step_time_ratio", "loss_ratio", "accuracy_points", "params"):
            assert np.isfinite(r[key])
        assert r["float32"]["state_bytes_per_param"] == 8.0
        assert r["int8"]["state_bytes_per_param"] < 8.0
        assert len(r["int8"]["curve"]) == len(r["float32"]["curve"]) > 0


def test_train_step_benchmark_quick_run(tmp_path: Path) -> None:
    # One model, Adam (the optimizer with a written-out oracle per library): the decoder
    # runs the same code on another tree, at 3x the compile time of this small MLP.
    out = tmp_path / "train_step.json"
    run_quick("train_step.py", "--models", "wide", "--optimizers", "Adam", "--json", str(out))
    result = json.loads(out.read_text())
    contenders = {"jopt", "jopt+flax", "jopt.bucketed", "optax", "floor"}
    assert set(result["meta"]["libraries"]) == contenders
    (group,) = result["results"]
    assert (group["tree"], group["optimizer"]) == ("wide", "Adam")
    # Every contender was checked against Adam's rule with its library's epsilon placement.
    assert set(group["agreement"]) == contenders - {"floor"}  # floor: no optimizer
    assert all(err["rel_l2"] <= 1e-4 for err in group["agreement"].values())
    for name in contenders:
        assert set(group["first_step_s"][name]) == {"plain", "donated"}
        assert group["step_s"][name]["donation_effective"] is False
        assert group["step_s"][name + "+donate"]["donation_effective"] is True
        mem = group["memory"][name]
        assert mem["peak"] == mem["argument"] + mem["output"] - mem["alias"] + mem["temp"]


def test_bucketed_rules_benchmark_quick_run() -> None:
    stdout = run_quick("bucketed_rules.py")
    assert stdout.count("ratio") == 2 * 4, stdout  # step and first step, 4 rules


def test_leaf_floor_benchmark_quick_run() -> None:
    stdout = run_quick("leaf_floor.py")
    # Two trees, each with three floors and jopt and optax for SGD and Adam.
    for key in ("floor.call", "floor.per_leaf", "floor.flat", "jopt SGD", "optax Adam"):
        assert stdout.count(f"  {key} ") == 2, stdout
