"""Step-for-step parity with Keras 3 (JAX backend) for SGD, RMSprop and Adam.

The oracle is Keras itself: each case runs ``keras.optimizers.X.apply_gradients`` on
``keras.Variable``s with the same gradient sequence, and jopt must reproduce every
step's params to float32 rounding, both through its compiled ``apply_gradients`` and
eagerly through ``update`` + ``apply_updates``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jopt
from tests.keras_oracle import jopt_run, keras_run
from tests.problems import make_problem, relative_error

# Compiled: XLA fuses and reassociates a few ops, so allow float32 rounding accumulated
# over 25 steps, a few ulps of O(1) values (measured worst: 3.6e-7). Eager runs the same
# ops in the same order as Keras, one by one, and must be bit-identical.
TOL = {"compiled": 1e-6, "eager": 0.0}


class _DecayedSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """tf.keras 2's ``decay`` written as a Keras 3 schedule: base(t) / (1 + decay * t)."""

    def __init__(self, base: Any, decay: float) -> None:
        self.base, self.decay = base, decay

    def __call__(self, step: Any) -> Any:
        step = keras.ops.cast(step, "float32")
        base = self.base(step) if callable(self.base) else keras.ops.cast(self.base, "float32")
        return base / (1.0 + keras.ops.cast(self.decay, "float32") * step)


def _exp(staircase: bool = False) -> dict[str, Any]:
    return dict(initial_learning_rate=0.1, decay_steps=5, decay_rate=0.5, staircase=staircase)


# (id, jopt constructor, Keras constructor). Schedules are built on each side from one
# config; tf.keras 2's `decay` has no Keras 3 spelling, so its oracle is the schedule above.
CASES: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
    ("sgd", lambda: jopt.SGD(), lambda: keras.optimizers.SGD()),
    (
        "sgd_momentum",
        lambda: jopt.SGD(0.05, momentum=0.9),
        lambda: keras.optimizers.SGD(0.05, momentum=0.9),
    ),
    (
        "sgd_nesterov",
        lambda: jopt.SGD(0.05, momentum=0.9, nesterov=True),
        lambda: keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True),
    ),
    (
        "sgd_schedule",
        lambda: jopt.SGD(jopt.schedules.ExponentialDecay(**_exp()), momentum=0.5),
        lambda: keras.optimizers.SGD(
            keras.optimizers.schedules.ExponentialDecay(**_exp()), momentum=0.5
        ),
    ),
    (
        "sgd_lr_alias_decay",
        lambda: jopt.SGD(lr=0.05, momentum=0.9, decay=0.01),
        lambda: keras.optimizers.SGD(_DecayedSchedule(0.05, 0.01), momentum=0.9),
    ),
    ("rmsprop", lambda: jopt.RMSprop(), lambda: keras.optimizers.RMSprop()),
    (
        "rmsprop_momentum",
        lambda: jopt.RMSprop(0.01, momentum=0.9),
        lambda: keras.optimizers.RMSprop(0.01, momentum=0.9),
    ),
    (
        "rmsprop_centered",
        lambda: jopt.RMSprop(0.01, centered=True),
        lambda: keras.optimizers.RMSprop(0.01, centered=True),
    ),
    (
        "rmsprop_centered_momentum",
        lambda: jopt.RMSprop(0.01, momentum=0.5, centered=True),
        lambda: keras.optimizers.RMSprop(0.01, momentum=0.5, centered=True),
    ),
    (
        "rmsprop_rho_epsilon",
        lambda: jopt.RMSprop(0.01, rho=0.8, epsilon=1e-3),
        lambda: keras.optimizers.RMSprop(0.01, rho=0.8, epsilon=1e-3),
    ),
    (
        "rmsprop_schedule_staircase",
        lambda: jopt.RMSprop(jopt.schedules.ExponentialDecay(**_exp(True)), momentum=0.5),
        lambda: keras.optimizers.RMSprop(
            keras.optimizers.schedules.ExponentialDecay(**_exp(True)), momentum=0.5
        ),
    ),
    (
        "rmsprop_lr_alias_decay",
        lambda: jopt.RMSprop(lr=0.01, decay=0.05, centered=True),
        lambda: keras.optimizers.RMSprop(_DecayedSchedule(0.01, 0.05), centered=True),
    ),
    ("adam", lambda: jopt.Adam(), lambda: keras.optimizers.Adam()),
    (
        "adam_amsgrad",
        lambda: jopt.Adam(0.01, amsgrad=True),
        lambda: keras.optimizers.Adam(0.01, amsgrad=True),
    ),
    (
        "adam_betas_epsilon",
        lambda: jopt.Adam(0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-3),
        lambda: keras.optimizers.Adam(0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-3),
    ),
    (
        "adam_betas_amsgrad",
        lambda: jopt.Adam(0.01, beta_1=0.8, beta_2=0.99, amsgrad=True),
        lambda: keras.optimizers.Adam(0.01, beta_1=0.8, beta_2=0.99, amsgrad=True),
    ),
    (
        "adam_schedule",
        lambda: jopt.Adam(jopt.schedules.ExponentialDecay(**_exp())),
        lambda: keras.optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(**_exp())),
    ),
    (
        "adam_lr_alias_decay",
        lambda: jopt.Adam(lr=0.01, decay=0.05, amsgrad=True),
        lambda: keras.optimizers.Adam(_DecayedSchedule(0.01, 0.05), amsgrad=True),
    ),
    (
        "adam_schedule_decay",
        lambda: jopt.Adam(jopt.schedules.ExponentialDecay(**_exp(True)), decay=0.05),
        lambda: keras.optimizers.Adam(
            _DecayedSchedule(keras.optimizers.schedules.ExponentialDecay(**_exp(True)), 0.05)
        ),
    ),
]


@functools.cache
def keras_trajectory(case_id: str, dtype: str = "float32") -> list[np.ndarray]:
    return keras_run({c[0]: c[2] for c in CASES}[case_id], dtype)


@pytest.mark.parametrize("mode", ["compiled", "eager"])
@pytest.mark.parametrize("case_id", [c[0] for c in CASES])
def test_matches_keras_step_for_step(case_id: str, mode: str) -> None:
    make_jopt = {c[0]: c[1] for c in CASES}[case_id]
    expected = keras_trajectory(case_id)
    actual = jopt_run(make_jopt(), mode)
    for j, (a, e) in enumerate(zip(actual, expected, strict=True)):
        assert np.all(np.isfinite(e))
        err = relative_error(a, e)
        assert err <= TOL[mode], f"{case_id} leaf {j}: worst error {err:.3g} > {TOL[mode]:g}"
        # The trajectory really moved: parity is not two optimizers standing still.
        assert relative_error(e[-1], make_problem()[0][j]) > 1e-4


@pytest.mark.parametrize("case_id", ["sgd_momentum", "rmsprop_centered_momentum", "adam_amsgrad"])
def test_bfloat16_params_match_keras_and_keep_dtype(case_id: str) -> None:
    """With bfloat16 variables Keras keeps slots and arithmetic in bfloat16; so does jopt."""
    make_jopt = {c[0]: c[1] for c in CASES}[case_id]
    expected = keras_trajectory(case_id, "bfloat16")
    actual = jopt_run(make_jopt(), "compiled", jnp.bfloat16)
    for a, e in zip(actual, expected, strict=True):
        # One bfloat16 ulp of slack for XLA fusing bf16 ops differently (measured: 0).
        assert relative_error(a, e) <= 2.0**-8
