"""One process of the two-host test (tests/test_multihost.py): data-parallel training
with jopt across processes joined by ``jax.distributed``, on CPU (gloo collectives).

Run as ``python -m tests.multihost_worker PORT PROCESS_ID NUM_PROCESSES OUT_DIR``; each
process writes the params it holds after training to ``OUT_DIR/params_<id>.npz``.
:func:`reference` is the same training in one process on one device, without a mesh.
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import jopt
from jopt import sharding

STEPS = 5
BATCH = 32  # global batch, split over every device of every host
FEATURES, HIDDEN = 6, 8


def data() -> tuple[np.ndarray, np.ndarray]:
    """The global batches, the same in every process (each host takes its rows)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(STEPS, BATCH, FEATURES)).astype(np.float32)
    y = np.sin(x.sum(-1, keepdims=True)).astype(np.float32)
    return x, y


def init_params() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        "w1": (rng.normal(size=(FEATURES, HIDDEN)) / 3).astype(np.float32),
        "b1": np.zeros(HIDDEN, np.float32),
        "w2": (rng.normal(size=(HIDDEN, 1)) / 3).astype(np.float32),
        "b2": np.zeros(1, np.float32),
    }


def loss(params: dict, x: jax.Array, y: jax.Array) -> jax.Array:
    h = jnp.tanh(x @ params["w1"] + params["b1"])
    return jnp.mean((h @ params["w2"] + params["b2"] - y) ** 2)


def optimizer() -> jopt.Adam:
    return jopt.Adam(0.05, global_clipnorm=1.0)


def reference() -> dict[str, np.ndarray]:
    """The single-process, single-device run: whole batches, no mesh."""
    params = jax.tree.map(jnp.asarray, init_params())
    opt = optimizer()
    state = opt.init(params)
    xs, ys = data()
    grad = jax.jit(jax.grad(loss))
    for t in range(STEPS):
        grads = grad(params, xs[t], ys[t])
        params, state = opt.apply_gradients(grads, state, params)
    return {k: np.asarray(v) for k, v in params.items()}


def train(zero: bool) -> dict[str, np.ndarray]:
    """STEPS of Adam with global-norm clipping, data parallel over all devices; with
    ``zero`` the state is partitioned over the data axis (ZeRO-1). Returns the params this
    host holds and ``slot_bytes``, the bytes of Adam's slots on this host's devices."""
    mesh = jax.make_mesh((jax.device_count(),), ("data",))
    replicated = NamedSharding(mesh, P())
    batch_sharding = NamedSharding(mesh, P("data"))
    # Every host passes the same values; device_put makes one global, replicated array.
    params = jax.device_put(init_params(), replicated)
    opt = optimizer()
    # Plain: the eager init, whose scalars are put on the global mesh by every host;
    # ZeRO-1: one compiled init that writes each device's part.
    state = sharding.init_sharded(opt, params, zero_axis="data") if zero else opt.init(params)
    # Every leaf of the state, scalars included, spans both hosts' devices.
    assert all(set(x.sharding.device_set) == set(jax.devices()) for x in jax.tree.leaves(state))
    param_shardings = jax.tree.map(lambda p: p.sharding, params)
    state_shardings = jax.tree.map(lambda s: s.sharding, state)

    def step(params: dict, state: jopt.OptimizerState, x: jax.Array, y: jax.Array) -> tuple:
        # x and y are split over "data": jit sums the gradient over every host.
        grads = jax.grad(loss)(params, x, y)
        return opt.apply_gradients(grads, state, params)

    step = jax.jit(step, out_shardings=(param_shardings, state_shardings))
    xs, ys = data()
    per_host = BATCH // jax.process_count()
    rows = slice(jax.process_index() * per_host, (jax.process_index() + 1) * per_host)
    for t in range(STEPS):
        # Each host feeds only its own rows of the global batch.
        x = jax.make_array_from_process_local_data(batch_sharding, xs[t, rows], xs[t].shape)
        y = jax.make_array_from_process_local_data(batch_sharding, ys[t, rows], ys[t].shape)
        params, state = step(params, state, x, y)
    # The layout is kept step after step: params replicated on every device of every host.
    assert jax.tree.map(lambda p: p.sharding, params) == param_shardings
    slot_bytes = sum(
        shard.data.nbytes
        for leaf in jax.tree.leaves(state.slots)
        for shard in leaf.addressable_shards
    )
    # Replicated: every host's local shard is the whole array.
    held = {k: np.asarray(v.addressable_data(0)) for k, v in params.items()}
    return held | {"slot_bytes": np.asarray(slot_bytes)}


def main(port: str, process_id: int, num_processes: int, out_dir: str) -> None:
    # Two CPU devices per process: data parallelism inside a host and across hosts.
    jax.config.update("jax_num_cpu_devices", 2)
    jax.distributed.initialize(
        f"localhost:{port}",
        num_processes=num_processes,
        process_id=process_id,
        initialization_timeout=60,
    )
    assert jax.process_count() == num_processes
    assert jax.device_count() == 2 * num_processes
    plain, zero = train(zero=False), train(zero=True)
    np.savez(
        os.path.join(out_dir, f"params_{process_id}.npz"),
        **{f"plain/{k}": v for k, v in plain.items()},
        **{f"zero/{k}": v for k, v in zero.items()},
    )
    jax.distributed.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
