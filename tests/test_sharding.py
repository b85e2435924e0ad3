"""Sharded params and state: jopt on 8 simulated devices, and jopt.sharding's contract.

The 8-device checks run once, in a subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (tests/sharding_worker.py), so the
rest of the suite keeps its single device; each check is reported here as its own test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import jopt
from jopt import sharding
from tests import sharding_worker

ROOT = Path(__file__).parent.parent
TIMEOUT_S = 300


@pytest.fixture(scope="module")
def eight_devices(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    out = tmp_path_factory.mktemp("sharding") / "results.json"
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": str(ROOT),
    }
    try:
        run = subprocess.run(
            [sys.executable, "-m", "tests.sharding_worker", str(out)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the 8-device worker ran over {TIMEOUT_S} s")
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(out.read_text())["results"]


@pytest.mark.parametrize("check", list(sharding_worker.CHECKS))
def test_on_eight_devices(eight_devices: dict[str, str], check: str) -> None:
    assert eight_devices[check] == "ok", eight_devices[check]


# ---- on this process's one device: the contract of jopt.sharding ------------------------


def _mesh() -> jax.sharding.Mesh:
    return jax.make_mesh((1,), ("data",))


def test_state_shardings_needs_a_mesh() -> None:
    params = {"w": jax.ShapeDtypeStruct((2,), jnp.float32)}
    with pytest.raises(ValueError, match="params carry no NamedSharding"):
        sharding.state_shardings(jopt.Adam(), params)
    # mesh= supplies it; unsharded params are then replicated on it.
    got = sharding.state_shardings(jopt.Adam(), params, mesh=_mesh())
    assert got.slots["velocity"]["w"].spec == P()


def test_state_shardings_refuses_an_unknown_zero_axis() -> None:
    params = {"w": jax.ShapeDtypeStruct((2,), jnp.float32, sharding=NamedSharding(_mesh(), P()))}
    with pytest.raises(ValueError, match=r"zero_axis 'batch' is not an axis of the mesh"):
        sharding.state_shardings(jopt.Adam(), params, zero_axis="batch")


def test_state_shardings_refuses_two_meshes() -> None:
    other = jax.make_mesh((1,), ("model",))
    params = {
        "a": jax.ShapeDtypeStruct((2,), jnp.float32, sharding=NamedSharding(_mesh(), P())),
        "b": jax.ShapeDtypeStruct((2,), jnp.float32, sharding=NamedSharding(other, P())),
    }
    with pytest.raises(ValueError, match="2 different meshes"):
        sharding.state_shardings(jopt.Adam(), params)


def test_unplaced_params_keep_init_as_it_was() -> None:
    """NumPy arrays and Python floats: init works, nothing is committed to a device."""
    state = jopt.Adam().init({"w": np.ones(3, np.float32), "b": 1.0})
    np.testing.assert_array_equal(state.slots["momentum"]["w"], np.zeros(3, np.float32))
    assert state.slots["momentum"]["b"].shape == ()
    assert state.slots["momentum"]["w"].dtype == jnp.float32
    assert not state.step.committed
    tree = {"x": jnp.zeros(2)}
    assert sharding.replicate_like(tree, {"w": np.ones(2)}) is tree


def test_a_single_array_as_params() -> None:
    mesh = _mesh()
    params = jax.device_put(jnp.ones((4, 2)), NamedSharding(mesh, P("data")))
    got = sharding.state_shardings(jopt.SGD(momentum=0.9), params)
    assert got.slots["momentum"].spec == P("data")
    assert got.step.spec == P()
    state = sharding.init_sharded(jopt.SGD(momentum=0.9), params)
    assert state.slots["momentum"].sharding.is_equivalent_to(params.sharding, 2)
