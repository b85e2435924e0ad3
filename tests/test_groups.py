"""jopt.partition (jopt/groups.py): one transformation per group of leaves, and freeze.

Oracles: Keras 3's ``MultiOptimizer`` run live on the same gradients (eager bit-identical,
compiled within 1e-6, step counts alike); ``optax.multi_transform`` for composition with
optax; for freeze, the params themselves, bit for bit.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import keras
import numpy as np
import optax
import pytest

import jopt
from jopt.composites.groups import (
    Freeze,
    Partition,
    PartitionState,
    freeze,
    partition,
    set_group_hyperparams,
)
from tests.problems import make_problem, relative_error

# ---- Keras's MultiOptimizer, run on the same gradients --------------------------------

NAMES = ("bias0", "kernel0", "bias1", "kernel1", "kernel2")
SHAPES = ((3,), (2, 3), (2,), (2, 2, 2), (4, 1, 2, 1))
STEPS = 20
TOL = {"compiled": 1e-6, "eager": 0.0}


def _keras_multi(
    make_adam: Callable[[], Any], make_sgd: Callable[[], Any], with_default: bool
) -> tuple[list[np.ndarray], Any]:
    """Each variable's value after each step, and the MultiOptimizer; kernels go to Adam,
    biases to SGD (the default optimizer, or a map entry with an unused default)."""
    init, grads = make_problem(shapes=SHAPES, steps=STEPS)
    variables = [keras.Variable(x, name=n) for x, n in zip(init, NAMES, strict=True)]
    adam, sgd = make_adam(), make_sgd()
    if with_default:
        omap = keras.optimizers.OptimizerMap(sgd, {"kernel.*": adam})
    else:
        omap = keras.optimizers.OptimizerMap(keras.optimizers.RMSprop(), {"kernel.*": adam})
        omap["bias.*"] = sgd
    multi = keras.optimizers.MultiOptimizer(omap)
    if getattr(adam, "weight_decay", None):
        adam.exclude_from_weight_decay(var_names=["kernel2"])
    out: list[list[np.ndarray]] = [[] for _ in variables]
    for t in range(STEPS):
        multi.apply([jnp.asarray(g[t]) for g in grads], variables)
        for j, v in enumerate(variables):
            out[j].append(np.asarray(v.value))
    return [np.stack(o) for o in out], multi


def _jopt_multi(tx: Partition, mode: str) -> tuple[list[np.ndarray], PartitionState]:
    init, grads = make_problem(shapes=SHAPES, steps=STEPS)
    params = {n: jnp.asarray(x) for n, x in zip(NAMES, init, strict=True)}
    state = tx.init(params)
    out: list[list[np.ndarray]] = [[] for _ in NAMES]
    for t in range(STEPS):
        g = {n: jnp.asarray(x[t]) for n, x in zip(NAMES, grads, strict=True)}
        if mode == "compiled":
            params, state = jopt.apply_gradients(tx, g, state, params)
        else:
            with jax.disable_jit():
                params, state = tx.apply(g, state, params)
        for j, n in enumerate(NAMES):
            out[j].append(np.asarray(params[n]))
    return [np.stack(o) for o in out], state


# (id, jopt Adam group, jopt SGD group, Keras twins). "options" puts a global norm clip on
# the kernels (it must see the kernels only, as Keras's inner Adam does), weight decay
# with a path exclusion and Nesterov on the rest.
CONFIGS = [
    (
        "plain",
        lambda: jopt.Adam(0.05),
        lambda: jopt.SGD(0.05, momentum=0.9),
        lambda: keras.optimizers.Adam(0.05),
        lambda: keras.optimizers.SGD(0.05, momentum=0.9),
    ),
    (
        "options",
        lambda: jopt.AdamW(
            0.05, weight_decay=0.1, global_clipnorm=0.5, exclude_from_weight_decay=["kernel2"]
        ),
        lambda: jopt.SGD(0.05, momentum=0.9, nesterov=True, weight_decay=0.2),
        lambda: keras.optimizers.AdamW(0.05, weight_decay=0.1, global_clipnorm=0.5),
        lambda: keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True, weight_decay=0.2),
    ),
]

# The same labelling in each form partition accepts.
LABEL_FORMS: dict[str, Callable[[], dict[str, Any]]] = {
    "patterns+default": lambda: {"labels": [("kernel", "adam")], "default": "sgd"},
    "patterns": lambda: {"labels": [(r"\['kernel", "adam"), (r"\['bias", "sgd")]},
    "tree": lambda: {"labels": {n: "adam" if "kernel" in n else "sgd" for n in NAMES}},
    "callable": lambda: {
        "labels": lambda params: {n: "adam" if p.ndim > 1 else "sgd" for n, p in params.items()}
    },
}


@pytest.mark.parametrize("mode", ["eager", "compiled"])
@pytest.mark.parametrize("form", list(LABEL_FORMS))
@pytest.mark.parametrize(
    ("config", "adam", "sgd", "k_adam", "k_sgd"), CONFIGS, ids=[c[0] for c in CONFIGS]
)
def test_matches_keras_multi_optimizer(
    config: str, adam: Any, sgd: Any, k_adam: Any, k_sgd: Any, form: str, mode: str
) -> None:
    del config
    expected, multi = _keras_multi(k_adam, k_sgd, with_default=form == "patterns+default")
    tx = partition({"adam": adam(), "sgd": sgd()}, **LABEL_FORMS[form]())
    actual, state = _jopt_multi(tx, mode)
    for name, a, e in zip(NAMES, actual, expected, strict=True):
        err = relative_error(a, e)
        assert err <= TOL[mode], f"{name}: {err:.2e} > {TOL[mode]}"
        assert relative_error(e[-1], e[0]) > 1e-4, f"{name} did not move"
    assert int(state.step) == int(multi.iterations.value) == STEPS
    assert int(state.groups["adam"].step) == int(multi.optimizers[0].iterations.value)
    assert int(state.groups["sgd"].step) == int(multi.optimizers[1].iterations.value)


def test_a_group_with_no_leaves_warns_and_never_steps_as_keras_default_optimizer() -> None:
    """Keras never builds nor applies an inner optimizer with no variables."""
    _, multi = _keras_multi(lambda: keras.optimizers.Adam(), keras.optimizers.SGD, False)
    unused = multi.optimizers[2]  # the default comes after the map's entries
    assert int(unused.iterations.value) == 0 and int(multi.iterations.value) == STEPS

    tx = partition(
        {"adam": jopt.Adam(), "sgd": jopt.SGD(), "rmsprop": jopt.RMSprop()},
        [("kernel", "adam"), ("bias", "sgd")],
        default="rmsprop",
    )
    with pytest.warns(UserWarning, match="'rmsprop' gets no leaves"):
        _, state = _jopt_multi(tx, "compiled")
    assert int(state.groups["rmsprop"].step) == 0 and int(state.step) == STEPS
    assert int(state.groups["adam"].step) == STEPS


# ---- the state, readable by name; hyperparameters per group ---------------------------


def _two_groups() -> tuple[Partition, dict[str, Any], dict[str, Any]]:
    tx = partition(
        {"adam": jopt.Adam(0.1), "sgd": jopt.SGD(0.1, momentum=0.9)},
        {"enc": {"kernel": "adam", "bias": "sgd"}, "head": "sgd"},
    )
    params = {
        "enc": {"kernel": jnp.ones((2, 3)), "bias": jnp.zeros(3)},
        "head": jnp.array([0.5, 0.5]),
    }
    grads = {
        "enc": {"kernel": jnp.full((2, 3), 0.3), "bias": jnp.array([1.0, -2.0, 0.5])},
        "head": jnp.array([0.25, -1.0]),
    }
    return tx, params, grads


def test_state_reads_by_label_and_slot_name() -> None:
    tx, params, grads = _two_groups()
    state = tx.init(params)
    params, state = tx.apply(grads, state, params)
    momentum = state.groups["sgd"].slots["momentum"]
    assert momentum["enc"]["kernel"] is None  # Adam's leaf
    np.testing.assert_array_equal(momentum["head"], -0.1 * np.array([0.25, -1.0], np.float32))
    assert state.groups["adam"].slots["velocity"]["enc"]["bias"] is None
    assert state.groups["adam"].slots["velocity"]["enc"]["kernel"].shape == (2, 3)
    assert int(state.step) == int(state.groups["adam"].step) == 1
    assert tx.leaf_labels(params) == {"enc": {"bias": "sgd", "kernel": "adam"}, "head": "sgd"}


def test_hyperparams_reach_every_group_and_one_group_changes_alone() -> None:
    tx, params, grads = _two_groups()
    state = tx.init(params)
    assert set(jopt.hyperparams(state)) == {".groups['adam']", ".groups['sgd']"}

    everywhere = jopt.set_hyperparams(state, learning_rate=0.5)
    assert {float(h["learning_rate"]) for h in jopt.hyperparams(everywhere).values()} == {0.5}

    @chex.assert_max_traces(n=1)
    def step(grads: Any, state: PartitionState, params: Any) -> Any:
        return tx.apply(grads, state, params)

    step = jax.jit(step)
    before, _ = step(grads, state, params)
    after, new = step(grads, set_group_hyperparams(state, "sgd", learning_rate=0.05), params)
    assert float(jopt.hyperparams(new.groups["sgd"])["learning_rate"]) == pytest.approx(0.05)
    chex.assert_trees_all_equal(after["enc"]["kernel"], before["enc"]["kernel"])  # Adam's
    np.testing.assert_allclose(  # SGD's first step is -lr * g
        after["head"], params["head"] - 0.05 * grads["head"], rtol=1e-6
    )
    with pytest.raises(KeyError, match=r"no group 'rms'.*'adam', 'sgd'"):
        set_group_hyperparams(state, "rms", learning_rate=0.1)
    with pytest.raises(ValueError, match="'rho'"):  # Adam has no rho
        set_group_hyperparams(state, "adam", rho=0.5)


# ---- freeze ---------------------------------------------------------------------------

ODD = jnp.array([-0.0, 0.0, jnp.nan, -jnp.nan, jnp.inf, -jnp.inf, 3.0, 1.2e-38])
SUBNORMAL = jnp.array([1e-45, -1e-40])


@pytest.mark.parametrize(
    "frozen", [freeze(), None, "implicit"], ids=["freeze()", "None", "label 'freeze'"]
)
@pytest.mark.parametrize("path", ["apply", "jopt.apply_updates", "optax.apply_updates", "jit"])
def test_frozen_params_stay_bit_identical(frozen: Any, path: str) -> None:
    """Every value, -0.0 and NaN included; subnormals too where no arithmetic runs
    (apply, apply_gradients): eager XLA on CPU flushes them to zero in ``p + -0.0``."""
    body = ODD if "apply_updates" in path else jnp.concatenate([ODD, SUBNORMAL])
    transforms = {"sgd": jopt.SGD(0.1, momentum=0.9)}
    if frozen != "implicit":
        transforms["freeze"] = frozen
    tx = partition(transforms, [("body", "freeze")], default="sgd")
    params = {"body": body, "bf16": {"body": body.astype(jnp.bfloat16)}, "head": jnp.ones(2)}
    grads = jax.tree.map(jnp.ones_like, params)
    state = tx.init(params)
    assert state.groups["freeze"] == ()
    new = params
    for _ in range(3):
        if path == "apply":
            new, state = tx.apply(grads, state, new)
        elif path == "jit":
            new, state = tx.apply_gradients(grads, state, new)
        else:
            updates, state = tx.update(grads, state, new)
            add = jopt.apply_updates if path == "jopt.apply_updates" else optax.apply_updates
            new = add(new, updates)
    for leaf, before in [(new["body"], body), (new["bf16"]["body"], params["bf16"]["body"])]:
        assert leaf.dtype == before.dtype
        np.testing.assert_array_equal(
            np.asarray(leaf).view(np.uint8), np.asarray(before).view(np.uint8)
        )
    assert float(new["head"][0]) < 1.0
    assert int(state.step) == 3


def test_freeze_alone_is_an_optax_transformation() -> None:
    init, update = freeze()
    assert init({"w": jnp.ones(2)}) == () and freeze() == Freeze() and hash(freeze())
    assert update({"w": jnp.ones(2)}, ())[1] == ()
    chained = optax.chain(optax.scale(2.0), freeze())
    updates, _ = chained.update({"w": jnp.ones(2)}, chained.init({"w": jnp.ones(2)}))
    np.testing.assert_array_equal(updates["w"], np.zeros(2))


# ---- composition with optax, both ways ------------------------------------------------


def test_partition_inside_optax_chain_and_jopt_chain() -> None:
    tx, params, grads = _two_groups()
    clip = optax.clip_by_global_norm(1.0)
    clipped, _ = clip.update(grads, clip.init(params))
    expected, _ = tx.update(clipped, tx.init(params), params)
    for chained in (optax.chain(clip, tx), jopt.chain(clip, tx)):
        updates, state = chained.update(grads, chained.init(params), params)
        chex.assert_trees_all_close(updates, expected, rtol=1e-6)
    assert isinstance(state["partition"], PartitionState)


def test_optax_transforms_as_groups_match_optax_multi_transform() -> None:
    """optax groups, a jopt group and a frozen one, against optax.multi_transform."""
    params = {"a": jnp.arange(3.0), "b": {"c": jnp.ones((2, 2)), "d": jnp.full(2, -1.0)}}
    labels = {"a": "adam", "b": {"c": "lion", "d": "frozen"}}
    transforms = {"adam": optax.adam(0.1), "lion": jopt.Lion(0.01), "frozen": freeze()}
    optax_transforms = {**transforms, "frozen": optax.set_to_zero()}
    ours, theirs = partition(transforms, labels), optax.multi_transform(optax_transforms, labels)
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    rng = np.random.default_rng(0)
    for _ in range(4):
        grads = jax.tree.map(lambda p: jnp.asarray(rng.standard_normal(p.shape), p.dtype), params)
        u_ours, s_ours = jax.jit(ours.update)(grads, s_ours, params)
        u_theirs, s_theirs = jax.jit(theirs.update)(grads, s_theirs, params)
        chex.assert_trees_all_close(u_ours, u_theirs, rtol=1e-6)
        params = optax.apply_updates(params, u_ours)


def test_jopt_optimizers_inside_optax_multi_transform_match_partition() -> None:
    tx, params, grads = _two_groups()
    labels = tx.leaf_labels(params)
    multi = optax.multi_transform(dict(tx.transforms), labels)
    s_ours, s_theirs = tx.init(params), multi.init(params)
    for _ in range(3):
        u_ours, s_ours = tx.update(grads, s_ours, params)
        u_theirs, s_theirs = multi.update(grads, s_theirs, params)
        chex.assert_trees_all_equal(u_ours, u_theirs)
        params = jopt.apply_updates(params, u_ours)


# ---- apply_gradients, jit, structure --------------------------------------------------


def test_apply_gradients_keeps_each_groups_keras_arithmetic() -> None:
    """apply_gradients runs Partition.apply (the groups' own apply), not update +
    apply_updates: with weight decay the two differ by a rounding when run op by op."""
    tx = partition(
        {"adamw": jopt.AdamW(0.05, weight_decay=0.3), "sgd": jopt.SGD(0.07, weight_decay=0.2)},
        [("k", "adamw")],
        default="sgd",
    )
    rng = np.random.default_rng(0)
    params = {k: jnp.asarray(rng.standard_normal(50), jnp.float32) for k in ("k", "b")}
    ours = theirs = params
    s_ours = s_theirs = tx.init(params)
    with jax.disable_jit():
        for _ in range(20):
            grads = {k: jnp.asarray(rng.standard_normal(50), jnp.float32) for k in params}
            ours, s_ours = jopt.apply_gradients(tx, grads, s_ours, ours)
            theirs, s_theirs = tx.apply(grads, s_theirs, theirs)
    chex.assert_trees_all_equal(ours, theirs)


def test_one_compile_for_many_steps_and_equal_partitions_share_it() -> None:
    make = lambda: partition(
        {"adam": jopt.Adam(0.1), "sgd": jopt.SGD(0.1)},
        {"enc": {"kernel": "adam", "bias": "sgd"}, "head": "sgd"},
    )
    tx, params, grads = _two_groups()
    assert make() == make() and hash(make()) == hash(make())
    assert make() != tx  # SGD's momentum differs

    @chex.assert_max_traces(n=1)
    def step(t: Partition, grads: Any, state: PartitionState, params: Any) -> Any:
        return t.apply(grads, state, params)

    step = jax.jit(step, static_argnums=0)
    state = make().init(params)
    for _ in range(3):
        params, state = step(make(), grads, state, params)
    assert int(state.step) == 3


def test_donation_and_a_wrapped_group() -> None:
    """A SkipNonFinite group skips alone; donating gives the same numbers."""
    tx = partition(
        {"adam": jopt.SkipNonFinite(jopt.Adam(0.1)), "sgd": jopt.SGD(0.1)},
        {"enc": {"kernel": "adam", "bias": "sgd"}, "head": "sgd"},
    )
    _, params, grads = _two_groups()
    bad = {**grads, "enc": {**grads["enc"], "kernel": grads["enc"]["kernel"].at[0, 0].set(jnp.nan)}}
    state = tx.init(params)
    kept, new = tx.apply_gradients(bad, state, params)
    chex.assert_trees_all_equal(kept["enc"]["kernel"], params["enc"]["kernel"])
    assert int(new.groups["adam"].skipped) == 1 and int(new.groups["adam"].inner.step) == 0
    assert int(new.groups["sgd"].step) == 1 and float(kept["head"][0]) < 0.5
    expected, _ = tx.apply_gradients(grads, state, params)
    copy = jax.tree.map(jnp.copy, (state, params))
    donated, _ = tx.apply_gradients(grads, *copy, donate=True)
    chex.assert_trees_all_equal(donated, expected)


def test_nested_trees_keep_structure_dtypes_and_none_leaves() -> None:
    class Pair(NamedTuple):
        a: Any
        b: Any

    params = {"x": Pair(jnp.ones(2, jnp.bfloat16), None), "y": [jnp.ones(()), jnp.zeros(3)]}
    grads = {"x": Pair(jnp.ones(2, jnp.bfloat16), None), "y": [jnp.ones(()), jnp.ones(3)]}
    tx = partition({"adam": jopt.Adam(0.1), "sgd": jopt.SGD(0.1)}, {"x": "adam", "y": "sgd"})
    state = tx.init(params)
    eager, _ = tx.apply(grads, state, params)
    compiled, _ = jax.jit(tx.apply)(grads, state, params)
    updates, _ = tx.update(grads, state)  # no params: these rules need none
    for out in (eager, compiled, jopt.apply_updates(params, updates)):
        chex.assert_trees_all_equal_structs(out, params)
        assert out["x"].a.dtype == jnp.bfloat16 and out["x"].b is None
    chex.assert_trees_all_close(eager, compiled)


def test_list_of_pairs_label_tree_goes_through_a_callable() -> None:
    params = [(jnp.ones(2), jnp.ones(1))]
    labels = [("adam", "sgd")]  # read as (pattern, label) pairs: "adam" matches no path
    with pytest.raises(ValueError, match=r"params\[0\]\[0\] matches none.*lambda params"):
        partition({"adam": jopt.Adam(), "sgd": jopt.SGD()}, labels).init(params)
    tx = partition({"adam": jopt.Adam(), "sgd": jopt.SGD()}, lambda p: labels)
    assert tx.leaf_labels(params) == [("adam", "sgd")]


# ---- bad input ------------------------------------------------------------------------

TWO = {"adam": jopt.Adam(), "sgd": jopt.SGD()}
PARAMS = {"enc": {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)}}


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: partition(TWO, [("kernel", "adma")]), ValueError, "'adma'.*no transform"),
        (lambda: partition(TWO, {"enc": "rms"}), ValueError, r"'rms' \(at labels\['enc'\]\)"),
        (lambda: partition(TWO, [("(", "adam")]), ValueError, "not a valid regular"),
        (lambda: partition(TWO, {"enc": "adam"}, default="sgd"), TypeError, "default"),
        (lambda: partition(TWO, [("k", "adam")], default="x"), ValueError, "'x' .the default"),
        (
            lambda: partition({"a": "adam"}, "a"),
            TypeError,
            r"transforms\['a'\] must be a transformation with init",
        ),
        (lambda: partition({}, "a"), TypeError, "non-empty dict"),
        (lambda: partition(TWO, {"enc": 3}), TypeError, r"labels\['enc'\] must be a label"),
    ],
)
def test_bad_construction_names_what_is_wrong(make: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        ({"enc": {"kernel": "adam"}}, r"labels\['enc'\]\['bias'\] is missing"),
        ({"enc": "adam", "dec": "sgd"}, r"labels\['dec'\] is not in params"),
        ({"enc": {"kernel": {"w": "adam"}, "bias": "sgd"}}, r"labels\['enc'\]\['kernel'\]\['w'\]"),
        ([("kernel", "adam")], r"params\['enc'\]\['bias'\] matches none of the patterns"),
        (
            lambda p: {"enc": {"kernel": "adam", "bias": "rms"}},
            r"'rms' of params\['enc'\]\['bias'\]",
        ),
    ],
)
def test_labels_that_do_not_fit_the_params_name_the_path(labels: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        partition(TWO, labels).init(PARAMS)


def test_wrong_state_and_grads_name_the_problem() -> None:
    tx = partition(TWO, {"enc": {"kernel": "adam", "bias": "sgd"}})
    state = tx.init(PARAMS)
    with pytest.raises(ValueError, match=r"grads\['enc'\]\['bias'\] is missing"):
        tx.update({"enc": {"kernel": jnp.ones((2, 2))}}, state, PARAMS)
    with pytest.raises(TypeError, match="expects the PartitionState"):
        tx.update(PARAMS, jopt.Adam().init(PARAMS), PARAMS)
    other = partition(
        {"adam": jopt.Adam(), "lion": jopt.Lion()}, [("kernel", "adam")], default="lion"
    )
    with pytest.raises(ValueError, match="made by a different partition"):
        other.update(PARAMS, state, PARAMS)


def test_no_warning_when_every_group_has_leaves() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        partition(TWO, {"enc": {"kernel": "adam", "bias": "sgd"}}).init(PARAMS)


@pytest.mark.parametrize("mode", ["eager", "compiled"])
def test_loss_scale_optimizer_around_a_partition_matches_keras_around_a_multi_optimizer(
    mode: str,
) -> None:
    # Keras wraps a MultiOptimizer in a LossScaleOptimizer; so does jopt with a partition.
    # The loss is scaled by 4 (exact in binary), so the unscaled grads are the problem's.
    scale = 4.0
    init, grads = make_problem(shapes=SHAPES, steps=STEPS)
    variables = [keras.Variable(x, name=n) for x, n in zip(init, NAMES, strict=True)]
    omap = keras.optimizers.OptimizerMap(
        keras.optimizers.SGD(0.05, momentum=0.9), {"kernel.*": keras.optimizers.Adam(0.05)}
    )
    lso = keras.optimizers.LossScaleOptimizer(
        keras.optimizers.MultiOptimizer(omap), initial_scale=scale
    )
    expected: list[list[np.ndarray]] = [[] for _ in variables]
    for t in range(STEPS):
        with jax.disable_jit():  # Keras's eager LossScaleOptimizer.apply on JAX: no tracing
            lso.apply([jnp.asarray(g[t] * scale) for g in grads], variables)
        for j, v in enumerate(variables):
            expected[j].append(np.asarray(v.value))

    tx = jopt.LossScaleOptimizer(
        partition({"adam": jopt.Adam(0.05), "sgd": jopt.SGD(0.05, momentum=0.9)},
                  [("kernel", "adam"), ("bias", "sgd")]),
        initial_scale=scale,
    )  # fmt: skip
    params = {n: jnp.asarray(x) for n, x in zip(NAMES, init, strict=True)}
    state = tx.init(params)
    for t in range(STEPS):
        g = {n: jnp.asarray(x[t] * scale) for n, x in zip(NAMES, grads, strict=True)}
        if mode == "compiled":
            params, state = jopt.apply_gradients(tx, g, state, params)
        else:
            with jax.disable_jit():
                params, state = tx.apply(g, state, params)
        for j, n in enumerate(NAMES):
            assert relative_error(params[n], expected[j][t]) <= TOL[mode], (n, t)
    assert float(state.scale) == float(lso.dynamic_scale.value)
