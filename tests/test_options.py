"""Keras's base options on every optimizer, against Keras 3 step for step.

weight_decay (with exclusions by path), clipnorm / clipvalue / global_clipnorm, use_ema
with ema_momentum and ema_overwrite_frequency, loss_scale_factor and
gradient_accumulation_steps, alone and combined, on SGD, RMSprop and Adam.
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
from tests.problems import relative_error

TOL = {"compiled": 1e-6, "eager": 0.0}

S = jopt.schedules.ExponentialDecay
KS = keras.optimizers.schedules.ExponentialDecay

# (id, jopt optimizer, Keras optimizer, options for both)
CASES: list[tuple[str, Callable[..., Any], Callable[..., Any], dict[str, Any]]] = [
    (
        "sgd_weight_decay",
        jopt.SGD,
        keras.optimizers.SGD,
        dict(learning_rate=0.05, momentum=0.9, weight_decay=0.1),
    ),
    (
        "adam_weight_decay",
        jopt.Adam,
        keras.optimizers.Adam,
        dict(learning_rate=0.01, weight_decay=0.05),
    ),
    (
        "rmsprop_clipnorm",
        jopt.RMSprop,
        keras.optimizers.RMSprop,
        dict(learning_rate=0.01, momentum=0.5, clipnorm=0.5),
    ),
    ("adam_clipvalue", jopt.Adam, keras.optimizers.Adam, dict(learning_rate=0.01, clipvalue=0.3)),
    (
        "sgd_global_clipnorm",
        jopt.SGD,
        keras.optimizers.SGD,
        dict(learning_rate=0.1, momentum=0.9, nesterov=True, global_clipnorm=1.0),
    ),
    (
        "adam_ema",
        jopt.Adam,
        keras.optimizers.Adam,
        dict(learning_rate=0.01, use_ema=True, ema_momentum=0.9),
    ),
    (
        "sgd_ema_overwrite",
        jopt.SGD,
        keras.optimizers.SGD,
        dict(
            learning_rate=0.05,
            momentum=0.5,
            use_ema=True,
            ema_momentum=0.8,
            ema_overwrite_frequency=4,
        ),
    ),
    (
        "rmsprop_loss_scale",
        jopt.RMSprop,
        keras.optimizers.RMSprop,
        dict(learning_rate=0.01, centered=True, loss_scale_factor=128.0),
    ),
    (
        "adam_accumulation",
        jopt.Adam,
        keras.optimizers.Adam,
        dict(learning_rate=0.05, gradient_accumulation_steps=3),
    ),
    (
        "rmsprop_accumulation_momentum",
        jopt.RMSprop,
        keras.optimizers.RMSprop,
        dict(learning_rate=0.01, momentum=0.9, gradient_accumulation_steps=2),
    ),
    (
        "adam_everything",
        jopt.Adam,
        keras.optimizers.Adam,
        dict(
            learning_rate=0.02,
            amsgrad=True,
            weight_decay=0.1,
            clipnorm=1.0,
            use_ema=True,
            ema_momentum=0.7,
            ema_overwrite_frequency=5,
            loss_scale_factor=2.0,
            gradient_accumulation_steps=2,
        ),
    ),
]


def build(case_id: str, side: str) -> Any:
    """The case's optimizer; a schedule is built fresh on each side from one config."""
    _, ours, theirs, options = next(c for c in CASES if c[0] == case_id)
    return (ours if side == "jopt" else theirs)(**options)


def keras_average(opt: Any) -> list[np.ndarray]:
    return [np.asarray(a.value) for a in opt._model_variables_moving_average]


@functools.cache
def keras_trajectory(case_id: str, mode: str) -> tuple[list[np.ndarray], int]:
    """Keras's run in jopt's ``mode``: eager (op by op), or its compiled stateless_apply
    (what model.fit runs on JAX), the compiled twin of jopt's compiled step.

    Eager Keras re-traces a lax.cond at every accumulation step (~0.6 s each), so eager
    accumulation cases run 7 steps: still two boundaries at k = 3."""
    accumulates = build(case_id, "keras").gradient_accumulation_steps is not None
    steps = 7 if accumulates and mode == "eager" else 25
    use_ema = build(case_id, "keras").use_ema
    result = keras_run(
        lambda: build(case_id, "keras"),
        steps=steps,
        final=keras_average if use_ema else None,
        stateless=mode == "compiled",
    )
    return result, steps


@pytest.mark.parametrize("mode", ["compiled", "eager"])
@pytest.mark.parametrize("case_id", [c[0] for c in CASES])
def test_base_options_match_keras(case_id: str, mode: str) -> None:
    use_ema = build(case_id, "jopt").use_ema
    expected, steps = keras_trajectory(case_id, mode)
    expected = list(expected)
    actual = jopt_run(
        build(case_id, "jopt"),
        mode,
        steps=steps,
        final=(lambda opt, state: opt.averaged_params(state)) if use_ema else None,
    )
    if use_ema:  # the averages after the last step, leaf by leaf
        for a, e in zip(actual.pop(), expected.pop(), strict=True):
            assert relative_error(a, e) <= TOL[mode]
    for j, (a, e) in enumerate(zip(actual, expected, strict=True)):
        err = relative_error(a, e)
        assert err <= TOL[mode], f"{case_id} leaf {j}: worst error {err:.3g}"


def test_gradient_accumulation_keeps_keras_quirk_schedule_reads_raw_iterations() -> None:
    """With accumulation, Keras's bias correction counts applied updates while a schedule
    reads the raw call count; jopt matches it (params move only every k calls)."""
    make = dict(learning_rate=0.1, gradient_accumulation_steps=3)
    expected = keras_run(
        lambda: keras.optimizers.Adam(
            KS(0.1, decay_steps=2, decay_rate=0.5), gradient_accumulation_steps=3
        )
    )
    actual = jopt_run(
        jopt.Adam(
            S(0.1, decay_steps=2, decay_rate=0.5),
            gradient_accumulation_steps=make["gradient_accumulation_steps"],
        )
    )
    for a, e in zip(actual, expected, strict=True):
        assert relative_error(a, e) <= TOL["compiled"]
        np.testing.assert_array_equal(a[0], a[1])  # unchanged between boundaries
        assert np.any(a[2] != a[1])  # moved on the third call


def test_exclude_from_weight_decay_by_path_names_or_predicate() -> None:
    def exclude_v1(opt: Any, variables: list[Any]) -> None:
        opt.exclude_from_weight_decay(var_list=[variables[1]])

    expected = keras_run(
        lambda: keras.optimizers.Adam(0.01, weight_decay=0.5), configure=exclude_v1
    )
    for exclude in ([r"^\[1\]$"], lambda path: path == "[1]"):
        actual = jopt_run(jopt.Adam(0.01, weight_decay=0.5, exclude_from_weight_decay=exclude))
        for a, e in zip(actual, expected, strict=True):
            assert relative_error(a, e) <= TOL["compiled"]
    undecayed = jopt_run(jopt.Adam(0.01, weight_decay=0.5))
    assert relative_error(undecayed[1], expected[1]) > 1e-3  # the exclusion mattered


def test_options_need_params_and_say_so() -> None:
    opt = jopt.SGD(weight_decay=0.1)
    state = opt.init({"w": jnp.ones(2)})
    with pytest.raises(ValueError, match="needs params"):
        opt.update({"w": jnp.ones(2)}, state)
    with pytest.raises(ValueError, match="keeps no average"):
        jopt.SGD().averaged_params(state)


def test_options_round_trip_through_keras_config() -> None:
    for case_id, ours, theirs, options in CASES:
        config = theirs(**options).get_config()
        rebuilt = ours.from_config(config | {"name": ours().name})
        # Keras writes its float rate rounded to float32; everything else is equal.
        assert rebuilt.lr() == ours(**options).lr(), case_id
        assert rebuilt.get_config() | {"learning_rate": 0} == ours(**options).get_config() | {
            "learning_rate": 0
        }, case_id
