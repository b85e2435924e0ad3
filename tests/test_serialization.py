"""Optimizers written by keras.optimizers.serialize rebuild as jopt optimizers with the same
numbers; jopt's own serialize round-trips."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import pytest

import jopt
from tests.keras_oracle import jopt_run, keras_run
from tests.problems import relative_error

KS = keras.optimizers.schedules

KERAS_OPTIMIZERS: list[Callable[[], Any]] = [
    lambda: keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True, clipnorm=1.0),
    lambda: keras.optimizers.Adam(KS.ExponentialDecay(0.05, 5, 0.5), amsgrad=True),
    lambda: keras.optimizers.AdamW(0.01, weight_decay=0.1, use_ema=True),
    lambda: keras.optimizers.RMSprop(0.01, centered=True, global_clipnorm=2.0),
    lambda: keras.optimizers.Nadam(0.01, beta_2=0.99),
    lambda: keras.optimizers.Ftrl(0.05, l1_regularization_strength=0.01),
    lambda: keras.optimizers.Lamb(0.01),
    lambda: keras.optimizers.Adagrad(0.05),
]


@pytest.mark.parametrize("make_keras", KERAS_OPTIMIZERS)
def test_keras_written_config_gives_a_jopt_optimizer_with_the_same_numbers(
    make_keras: Callable[[], Any],
) -> None:
    written = keras.optimizers.serialize(make_keras())
    opt = jopt.optimizers.deserialize(written)
    assert type(opt).__name__ == written["class_name"]
    expected = keras_run(make_keras, steps=12)
    actual = jopt_run(opt, steps=12)
    for a, e in zip(actual, expected, strict=True):
        assert relative_error(a, e) <= 1e-6
    assert jopt.optimizers.deserialize(jopt.optimizers.serialize(opt)) == opt


def test_loss_scale_optimizer_round_trips_with_its_inner_optimizer() -> None:
    written = keras.optimizers.serialize(
        keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(0.01), initial_scale=8.0)
    )
    opt = jopt.optimizers.deserialize(written)
    assert isinstance(opt, jopt.LossScaleOptimizer) and isinstance(opt.inner, jopt.Adam)
    assert opt.initial_scale == 8.0 and opt.dynamic_growth_steps == 2000
    assert opt.inner.lr() == jopt.Adam(0.01).lr()  # Keras wrote 0.01 rounded to float32
    assert jopt.optimizers.deserialize(jopt.optimizers.serialize(opt)) == opt


def test_get_and_bad_identifiers() -> None:
    assert jopt.optimizers.get("Adam") == jopt.Adam()
    assert jopt.optimizers.get(jopt.SGD(0.1)) == jopt.SGD(0.1)
    with pytest.raises(ValueError, match="unknown optimizer name 'adamz'"):
        jopt.optimizers.get("adamz")
    with pytest.raises(ValueError, match="unknown optimizer class_name 'Nope'"):
        jopt.optimizers.deserialize({"class_name": "Nope", "config": {}})
