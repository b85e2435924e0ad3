"""The protocol: apply_updates, chain, and composition with optax in both directions."""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt


class Pair(NamedTuple):
    a: jax.Array
    b: jax.Array


def test_apply_updates_keeps_each_param_dtype_and_none_leaves() -> None:
    params = {"w": jnp.ones(3, jnp.bfloat16), "b": jnp.ones(2), "skip": None}
    updates = {"w": jnp.full(3, 0.5), "b": jnp.full(2, 0.25, jnp.bfloat16), "skip": None}
    out = jopt.apply_updates(params, updates)
    assert out["w"].dtype == jnp.bfloat16 and out["b"].dtype == jnp.float32
    assert out["skip"] is None
    np.testing.assert_array_equal(np.asarray(out["w"], np.float32), np.full(3, 1.5))
    np.testing.assert_array_equal(out["b"], np.full(2, 1.25))


def test_apply_updates_names_the_differing_path() -> None:
    with pytest.raises(ValueError, match=r"updates\['enc'\]\['bias'\] is missing"):
        jopt.apply_updates(
            {"enc": {"bias": jnp.ones(1), "kernel": jnp.ones(2)}},
            {"enc": {"kernel": jnp.ones(2)}},
        )


def test_optax_chain_accepts_a_jopt_optimizer() -> None:
    """optax.chain(clip, jopt.Adam()) equals clipping by hand, then jopt.Adam."""
    params = {"w": jnp.arange(3.0), "b": jnp.ones(2)}
    grads = {"w": jnp.array([3.0, -4.0, 12.0]), "b": jnp.array([5.0, 0.0])}
    tx = optax.chain(optax.clip_by_global_norm(1.0), jopt.Adam(0.1))
    updates, _ = tx.update(grads, tx.init(params), params)

    norm = np.sqrt(sum(float(jnp.sum(g**2)) for g in jax.tree.leaves(grads)))
    clipped = jax.tree.map(lambda g: g / norm, grads)
    adam = jopt.Adam(0.1)
    expected, _ = adam.update(clipped, adam.init(params), params)
    chex.assert_trees_all_close(updates, expected, rtol=1e-6)


def test_optax_transforms_inside_jopt_chain_and_jopt_in_optax_multi_transform() -> None:
    params = {"enc": jnp.ones(2), "dec": jnp.ones(2)}
    grads = {"enc": jnp.array([1.0, 2.0]), "dec": jnp.array([-1.0, 0.5])}
    tx = jopt.chain(optax.scale(0.5), sgd=jopt.SGD(0.1))
    state = tx.init(params)
    assert sorted(state) == ["0", "sgd"]
    updates, state = tx.update(grads, state, params)
    chex.assert_trees_all_close(updates, jax.tree.map(lambda g: -0.05 * g, grads))

    multi = optax.multi_transform(
        {"a": jopt.Adam(0.1), "s": jopt.SGD(0.1)}, {"enc": "a", "dec": "s"}
    )
    updates, _ = multi.update(grads, multi.init(params), params)
    chex.assert_trees_all_close(updates["dec"], -0.1 * grads["dec"])
    # Adam's first step is lr * sign(g) up to epsilon.
    chex.assert_trees_all_close(updates["enc"], -0.1 * jnp.sign(grads["enc"]), rtol=1e-5)


def test_jopt_optimizer_unpacks_like_an_optax_gradient_transformation() -> None:
    init, update = jopt.SGD(0.5)
    params = Pair(jnp.ones(2), jnp.zeros(1))
    updates, _ = update(Pair(jnp.ones(2), jnp.ones(1)), init(params))
    chex.assert_trees_all_close(updates, Pair(jnp.full(2, -0.5), jnp.full(1, -0.5)))


def test_chain_names_are_unique_and_order_is_kept() -> None:
    tx = jopt.chain(optax.scale(2.0), optax.scale(-1.0), jopt.SGD(1.0), jopt.SGD(1.0))
    state = tx.init({"w": jnp.ones(1)})
    assert sorted(state) == ["0", "1", "sgd", "sgd_1"]
    updates, _ = tx.update({"w": jnp.ones(1)}, state)
    chex.assert_trees_all_close(updates["w"], jnp.array([-2.0]))  # 1 * 2 * -1 * -1 * -1


def test_chain_rejects_a_non_transformation() -> None:
    with pytest.raises(TypeError, match="must be a transformation with init and update"):
        jopt.chain(jopt.SGD(), "adam")  # type: ignore[arg-type]
