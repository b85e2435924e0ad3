"""The combination matrix: every optimizer x every base option x every composition.

Generated from one table: each jopt optimizer class (all of ``jopt.optimizers``, found
through the registry, so a new optimizer joins by being defined) with each option
(alone and a few combined) is run per leaf, its own arithmetic, which the parity suites
hold to Keras's numbers. Every composition then has to give those same numbers:

* the wrappers ``SkipNonFinite`` and ``LossScaleOptimizer`` (on finite, scaled grads),
  and a skipped non-finite step that leaves params and state bit-identical;
* the layouts: ``bucketed`` (every rule and option), and packed params
  (``jopt.layout.pack``) through ``bucketed`` where the rule is elementwise and takes no
  per-leaf norm (packed, a whole bucket is one leaf);
* ``chain`` (alone, and after an identity optax transformation), ``partition`` (each
  group against the optimizer run on its own leaves), and the wrappers around a
  partition and a bucketed optimizer.

Keras's own combinations are held to Keras elsewhere: the options in test_options.py,
``LossScaleOptimizer(MultiOptimizer)`` against ``jopt.LossScaleOptimizer(partition)`` in
test_groups.py. Runs here are eager (the compiled step is held equal to the eager one by
the property suites), two steps each.
"""

from __future__ import annotations

import os
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jopt
from jopt.core.protocol import apply_step
from jopt.core.registry import registered_config_classes

CLASSES = sorted(
    (n, c)
    for n, c in registered_config_classes(by_name=True).items()
    if issubclass(c, jopt.Optimizer)
)

# Options by name: constructor keywords, or a callable of the class (slot names differ).
OPTIONS: dict[str, Any] = {
    "plain": {},
    "weight_decay": {"weight_decay": 0.1},
    "clipnorm": {"clipnorm": 0.5},
    "global_clipnorm": {"global_clipnorm": 0.5},
    "clipvalue": {"clipvalue": 0.05},
    "use_ema": {"use_ema": True, "ema_momentum": 0.5, "ema_overwrite_frequency": 2},
    "loss_scale_factor": {"loss_scale_factor": 4.0},
    "accumulation": {"gradient_accumulation_steps": 2},
    "master_weights": {"master_weights": True},
    "slot_dtypes": lambda cls: {"slot_dtypes": {_first_slot(cls): "bfloat16"}},
    "decay+ema+accumulation": {
        "weight_decay": 0.05,
        "use_ema": True,
        "gradient_accumulation_steps": 2,
    },
    "clip+master": {"global_clipnorm": 1.0, "master_weights": True},
}


def _first_slot(cls: type) -> str:
    return cls(learning_rate=0.05).slot_names()[0]


def build(cls: type, option: str) -> Any:
    kwargs = OPTIONS[option]
    kwargs = kwargs(cls) if callable(kwargs) else kwargs
    return cls(learning_rate=0.05, **kwargs)


def has_option(cls: type, option: str) -> bool:
    return option != "slot_dtypes" or bool(cls(learning_rate=0.05).slot_names())


RNG = np.random.default_rng(0)
PARAMS = {
    "dense": {"kernel": RNG.standard_normal((4, 3)), "bias": RNG.standard_normal(3)},
    "scale": RNG.standard_normal(()),
}
GRADS = [
    jax.tree.map(lambda p, i=i: RNG.standard_normal(np.shape(p)) * 10.0**-i, PARAMS)
    for i in range(2)
]


def tree(x: Any, dtype: Any) -> Any:
    return jax.tree.map(lambda a: jnp.asarray(a, dtype), x)


def run(tx: Any, params: Any, grads: list[Any], scale: float = 1.0) -> tuple[Any, Any]:
    state = tx.init(params)
    for g in grads:
        params, state = jopt.apply_gradients(
            tx, jax.tree.map(lambda x: x * scale, g), state, params
        )
    return params, state


def close(actual: Any, expected: Any) -> None:
    # Equal arithmetic in another arrangement: a few float32 ulps (bucketed's 0-d leaf,
    # a partition's per-group sums). bfloat16 params (master weights) are the rounding of
    # float32 master copies that agree to those ulps; one that sits on a rounding
    # boundary lands one bfloat16 ulp (at most 2^-7 relative) away: seen in a chain,
    # whose compiled program fuses the same rule differently.
    bf16 = any(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(expected))
    rtol, atol = (2.0**-7, 0.0) if bf16 else (1e-6, 1e-7)
    chex.assert_trees_all_close(actual, expected, rtol=rtol, atol=atol)


def check_reference(opt: Any, params: Any, grads: list[Any]) -> Any:
    """The optimizer's own per-leaf numbers, finite; with master weights, checked
    against the float32 rule."""
    expected, state = run(opt, params, grads)
    chex.assert_tree_all_finite(expected)
    if opt.master_weights:
        # With master weights the rule runs in float32 throughout (its optimizer-wide
        # scalars too, as Nadam's u_product): the master copy is exactly the float32
        # run's params with the slots stored as the bfloat16 run stores them (Keras's
        # dtype, the param's), and the params are its rounding.
        stored = {n: "bfloat16" for n in opt.slot_names()}
        config = {**opt.get_config(), "master_weights": False, "slot_dtypes": stored}
        f32, _ = run(
            type(opt).from_config(config),
            tree(params, jnp.float32),
            [tree(g, jnp.float32) for g in grads],
        )
        chex.assert_trees_all_equal(state.slots["master_weights"], f32)
        chex.assert_trees_all_equal(expected, tree(f32, params["scale"].dtype))
    return expected


def skip_non_finite(opt: Any, params: Any, grads: list[Any], expected: Any) -> None:
    close(run(jopt.SkipNonFinite(opt), params, grads)[0], expected)
    skip = jopt.SkipNonFinite(opt)
    state0 = skip.init(params)
    nan = jax.tree.map(lambda g: g.at[...].set(jnp.nan), grads[0])
    same_params, same_state = apply_step(skip, nan, state0, params)
    chex.assert_trees_all_equal(same_params, params)
    chex.assert_trees_all_equal(same_state.inner, state0.inner)
    assert int(same_state.skipped) == 1


def loss_scale(opt: Any, params: Any, grads: list[Any], expected: Any) -> None:
    if opt.loss_scale_factor is not None:  # the wrapper sets the inner's scale itself
        with pytest.raises(ValueError, match="loss_scale_factor"):
            jopt.LossScaleOptimizer(opt)
        return
    wrapped = jopt.LossScaleOptimizer(opt, initial_scale=4.0)
    close(run(wrapped, params, grads, scale=4.0)[0], expected)


def chained(opt: Any, params: Any, grads: list[Any], expected: Any) -> None:
    close(run(jopt.chain(opt), params, grads)[0], expected)
    close(run(jopt.chain(optax.identity(), opt), params, grads)[0], expected)


def layouts(opt: Any, params: Any, grads: list[Any], expected: Any) -> None:
    close(run(jopt.bucketed(opt), params, grads)[0], expected)
    close(run(jopt.bucketed(jopt.SkipNonFinite(opt)), params, grads)[0], expected)
    if not opt.elementwise or opt.clipnorm:
        return  # packed params make a bucket one leaf: its norm is not a leaf's
    pack = jopt.layout.pack
    packed, _ = run(jopt.bucketed(opt), pack(params), [pack(g) for g in grads])
    close(packed.unpack(), expected)


def partitions(opt: Any, params: Any, grads: list[Any], expected: Any) -> None:
    # Each group's numbers are the optimizer's on that group's leaves alone.
    part = jopt.partition({"a": opt, "b": opt}, {"dense": "a", "scale": "b"})
    per_group = {k: run(opt, params[k], [g[k] for g in grads])[0] for k in params}
    close(run(part, params, grads)[0], per_group)
    close(run(jopt.SkipNonFinite(part), params, grads)[0], per_group)
    if opt.loss_scale_factor is None:
        scaled = jopt.LossScaleOptimizer(part, initial_scale=4.0)
        close(run(scaled, params, grads, scale=4.0)[0], per_group)


COMPOSITIONS = {
    "skip_non_finite": skip_non_finite,
    "loss_scale": loss_scale,
    "chain": chained,
    "layouts": layouts,
    "partition": partitions,
}

CLASS_OF = dict(CLASSES)
OPTION_NAMES = list(OPTIONS)


def _option_for(name: str, index: int) -> str:
    """The index-th option (cyclically) that the class has."""
    cls = CLASS_OF[name]
    for k in range(len(OPTION_NAMES)):
        option = OPTION_NAMES[(index + k) % len(OPTION_NAMES)]
        if has_option(cls, option):
            return option
    raise AssertionError(name)


# The suite runs a covering sample: every (optimizer, composition) pair once, with the
# options rotated so that every (option, composition) pair occurs too. The whole cube,
# every optimizer x option x composition, runs with JOPT_FULL_MATRIX=1 (about 25
# minutes on 2 cores: eager steps, a few seconds a cell).
CUBE = [
    (name, option, comp)
    for name, _ in CLASSES
    for option in OPTION_NAMES
    for comp in COMPOSITIONS
    if has_option(CLASS_OF[name], option)
]
SAMPLE = [
    (name, _option_for(name, i + 3 * c), comp)
    for i, (name, _) in enumerate(CLASSES)
    for c, comp in enumerate(COMPOSITIONS)
]
CELLS = CUBE if os.environ.get("JOPT_FULL_MATRIX") else SAMPLE


@pytest.mark.parametrize(
    ("name", "option", "composition"),
    CELLS,
    ids=[f"{n}-{o}-{c}" for n, o, c in CELLS],
)
def test_every_composition_gives_the_optimizers_numbers(
    name: str, option: str, composition: str
) -> None:
    opt = build(CLASS_OF[name], option)
    dtype = jnp.bfloat16 if opt.master_weights else jnp.float32
    params = tree(PARAMS, dtype)
    grads = [tree(g, dtype) for g in GRADS]
    expected = check_reference(opt, params, grads)
    COMPOSITIONS[composition](opt, params, grads, expected)


def test_the_sample_covers_every_pair_with_a_composition() -> None:
    # A new optimizer class joins the matrix by being defined in jopt.optimizers.
    assert {name for name, _ in CLASSES} >= {
        "SGD", "RMSprop", "Adam", "AdamW", "Adadelta", "Adagrad", "Adamax", "Adafactor",
        "Nadam", "Ftrl", "Lion", "Lamb", "Muon", "ScheduleFreeAdamW",
    }  # fmt: skip
    assert {(n, c) for n, _, c in SAMPLE} == {(n, c) for n, _ in CLASSES for c in COMPOSITIONS}
    assert {(o, c) for _, o, c in SAMPLE} == {(o, c) for o in OPTIONS for c in COMPOSITIONS}
    assert set(SAMPLE) <= set(CUBE)


@pytest.mark.parametrize(("name", "cls"), CLASSES, ids=[n for n, _ in CLASSES])
def test_the_options_slots_start_at_zero_whatever_the_rules_own_start(name: str, cls: type) -> None:
    # Keras creates the gradient accumulators and the EMA averages with zeros, also for
    # an optimizer whose own slots start elsewhere (Adagrad's and Ftrl's accumulators).
    opt = cls(learning_rate=0.05, gradient_accumulation_steps=2, use_ema=True)
    state = opt.init(tree(PARAMS, jnp.float32))
    for slot in ("gradient_accumulator", "average"):
        chex.assert_trees_all_equal(
            state.slots[slot], tree(jax.tree.map(np.zeros_like, PARAMS), jnp.float32)
        )
