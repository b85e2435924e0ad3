"""Many hosts: two processes on localhost joined by ``jax.distributed`` train a
data-parallel model with jopt and end with the params of a single-process run."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests import multihost_worker

ROOT = Path(__file__).parent.parent
TIMEOUT_S = 120  # both processes; a hung collective must not hang the suite


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return int(s.getsockname()[1])


def _run_two_hosts(out_dir: Path) -> list[str]:
    """Starts both processes, waits for both; returns their logs (raises on failure)."""
    port = _free_port()
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    env.pop("XLA_FLAGS", None)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.multihost_worker", str(port), str(i), "2", str(out_dir)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    deadline = time.monotonic() + TIMEOUT_S
    logs = []
    try:
        for i, proc in enumerate(procs):
            try:
                logs.append(proc.communicate(timeout=max(1.0, deadline - time.monotonic()))[0])
            except subprocess.TimeoutExpired:
                pytest.fail(f"process {i} still running after {TIMEOUT_S} s (a hung collective?)")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    for i, (proc, log) in enumerate(zip(procs, logs, strict=True)):
        assert proc.returncode == 0, f"process {i} failed:\n{log[-3000:]}"
    return logs


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, np.ndarray]]:
    out_dir = tmp_path_factory.mktemp("multihost")
    _run_two_hosts(out_dir)
    return [dict(np.load(out_dir / f"params_{i}.npz")) for i in range(2)]


@pytest.mark.parametrize("mode", ["plain", "zero"])
def test_both_hosts_hold_the_same_params(hosts: list[dict[str, np.ndarray]], mode: str) -> None:
    """Replicated params are bit-identical on the two hosts, with or without ZeRO-1."""
    first, second = hosts
    for name in multihost_worker.init_params():
        np.testing.assert_array_equal(first[f"{mode}/{name}"], second[f"{mode}/{name}"])


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    return multihost_worker.reference()


@pytest.mark.parametrize("mode", ["plain", "zero"])
def test_two_hosts_match_a_single_process_run(
    hosts: list[dict[str, np.ndarray]], expected: dict[str, np.ndarray], mode: str
) -> None:
    """The oracle is the same training on one device of one process, whole batches.

    The gradient mean is summed over four devices in a different order than one device
    sums the batch: float32 rounding, hence rtol 1e-6 (the steps themselves move the
    params by ~0.05 each, 5e4 times more).
    """
    for name, value in expected.items():
        np.testing.assert_allclose(hosts[0][f"{mode}/{name}"], value, rtol=1e-6, atol=1e-7)
        assert not np.allclose(value, multihost_worker.init_params()[name])  # it trained


def test_zero1_splits_the_state_over_both_hosts(hosts: list[dict[str, np.ndarray]]) -> None:
    """Adam's two slots on one host's two devices: replicated, each device holds all
    (48 + 8 + 8 + 1) float32 = 260 bytes per slot; with ZeRO-1 over the 4 devices, w1
    (6, 8) splits its 8 columns, b1 (8,) and w2 (8, 1) their 8 rows, and b2 (1,) divides
    by nothing and stays whole: (12 + 2 + 2 + 1) * 4 = 68 bytes per slot."""
    for host in hosts:
        assert int(host["plain/slot_bytes"]) == 2 * 2 * 260
        assert int(host["zero/slot_bytes"]) == 2 * 2 * 68
