"""jopt.legacy against trajectories recorded once from tf.keras 2.21 (tests/data/record_tf2.py).

The recording is the oracle; the suite itself never needs tensorflow.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt
from tests.problems import relative_error

DATA = np.load(Path(__file__).parent / "data" / "tf2_trajectories.npz", allow_pickle=False)
SPECS = [json.loads(str(s)) for s in DATA["case_specs"]]
N_VARS = sum(1 for k in DATA.files if k.startswith("init_"))
# Compiled: XLA fuses and reassociates a few float32 ops, a few ulps over 25 steps
# (measured worst 2.1e-7). Eager runs TensorFlow's arithmetic op for op: bit-identical.
TOL = {"compiled": 1e-6, "eager": 0.0}


def build(spec: dict[str, Any], *, alias: bool = False) -> jopt.Optimizer:
    kwargs = dict(spec["kwargs"])
    if alias and "learning_rate" in kwargs:
        kwargs["lr"] = kwargs.pop("learning_rate")  # the spelling old code used
    return getattr(jopt.legacy, spec["class"])(**kwargs)


def run(opt: jopt.Optimizer, mode: str) -> list[np.ndarray]:
    params = [jnp.asarray(DATA[f"init_{j}"]) for j in range(N_VARS)]
    grads = [DATA[f"grads_{j}"] for j in range(N_VARS)]
    state = opt.init(params)
    out: list[list[np.ndarray]] = [[] for _ in params]
    for t in range(grads[0].shape[0]):
        g_t = [jnp.asarray(g[t]) for g in grads]
        if mode == "compiled":
            params, state = opt.apply_gradients(g_t, state, params)
        else:
            with jax.disable_jit():
                updates, state = opt.update(g_t, state, params)
                params = jopt.apply_updates(params, updates)
        for j, p in enumerate(params):
            out[j].append(np.asarray(p))
    return [np.stack(o) for o in out]


@pytest.mark.parametrize("mode", ["compiled", "eager"])
@pytest.mark.parametrize("spec", SPECS, ids=[s["name"] for s in SPECS])
def test_matches_tf_keras_2(spec: dict[str, Any], mode: str) -> None:
    actual = run(build(spec, alias=mode == "eager"), mode)
    for j, a in enumerate(actual):
        expected = DATA[f"{spec['name']}__{j}"]
        err = relative_error(a, expected)
        assert err <= TOL[mode], f"{spec['name']} var {j}: worst error {err:.3g}"


def test_legacy_rmsprop_differs_from_keras_3() -> None:
    """Keras 3 moved epsilon inside the root: a legacy run needs jopt.legacy, not jopt."""
    spec = next(s for s in SPECS if s["name"] == "rmsprop_small")
    keras3 = run(jopt.RMSprop(**spec["kwargs"]), "compiled")
    worst = max(relative_error(a, DATA[f"rmsprop_small__{j}"]) for j, a in enumerate(keras3))
    assert worst > 1e-3


def test_epsilon_zero_or_none_means_1e_7_as_in_tf_keras_2() -> None:
    assert jopt.legacy.Adam(epsilon=0).epsilon == 1e-7
    assert jopt.legacy.RMSprop(epsilon=None).epsilon == 1e-7
    assert jopt.Adam(epsilon=0).epsilon == 0.0  # Keras 3 takes 0 at its word
