"""jopt.layout: bucketed optimizers and packed params give the per-leaf rules' numbers.

The oracle is Keras 3 (the parity suite's cases, run through ``jopt.bucketed``) and,
for the rest of the catalogue and mixed layouts, the optimizer's own per-leaf rule,
which the parity suites check against Keras.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt
from jopt.layout import Bucketed, BucketedState, Layout, Packed, bucketed, pack
from tests.keras_oracle import jopt_run
from tests.problems import relative_error
from tests.test_keras_parity import CASES, TOL, keras_trajectory
from tests.test_optimizers import OPTIMIZERS

# The shared catalogue's elementwise rules, and options that change how leaves group.
ELEMENTWISE = [o for o in OPTIMIZERS if o.elementwise and not o.clipnorm] + [
    jopt.AdamW(0.01, exclude_from_weight_decay=["b"]),
    jopt.Adam(0.01, global_clipnorm=0.5, use_ema=True, ema_overwrite_frequency=3),
    jopt.SGD(0.1, momentum=0.5, gradient_accumulation_steps=2, clipvalue=0.5),
    jopt.Adam(0.01, master_weights=True, slot_dtypes={"velocity": jnp.float32}),
]


def _tree(seed: int, scale: float = 1.0, scalar: bool = True) -> dict[str, Any]:
    """Leaves of several ranks and two dtypes, so there are two buckets (and a third for
    AdamW's excluded bias)."""
    rng = np.random.default_rng(seed)
    shapes = {"w": (3, 4), "b": (4,), "k": (2, 2, 3), **({"s": ()} if scalar else {})}
    tree: dict[str, Any] = {
        k: jnp.asarray(scale * rng.standard_normal(s), jnp.float32) for k, s in shapes.items()
    }
    tree["h"] = jnp.asarray(scale * rng.standard_normal((5,)), jnp.bfloat16)
    return tree


def _run(opt: Any, steps: int, compiled: bool, scalar: bool = True) -> tuple[Any, Any]:
    params, state = _tree(0, scalar=scalar), opt.init(_tree(0, scalar=scalar))
    for t in range(steps):
        grads = _tree(100 + t, 0.5, scalar)
        if compiled:
            params, state = opt.apply_gradients(grads, state, params)
        else:
            with jax.disable_jit():
                params, state = opt.apply(grads, state, params)
    return params, state


@pytest.mark.parametrize("mode", ["compiled", "eager"])
@pytest.mark.parametrize("case_id", [c[0] for c in CASES])
def test_bucketed_matches_keras_step_for_step(case_id: str, mode: str) -> None:
    make = {c[0]: c[1] for c in CASES}[case_id]
    actual = jopt_run(bucketed(make()), mode)
    for j, (a, e) in enumerate(zip(actual, keras_trajectory(case_id), strict=True)):
        err = relative_error(a, e)
        assert err <= TOL[mode], f"{case_id} leaf {j}: worst error {err:.3g} > {TOL[mode]:g}"


# global_clipnorm sums the squares bucket by bucket, not leaf by leaf: a rounding apart.
EXACT = [o for o in ELEMENTWISE if not o.global_clipnorm]


@pytest.mark.parametrize("opt", EXACT, ids=repr)
def test_bucketed_equals_the_per_leaf_rule_eagerly_bit_for_bit(opt: Any) -> None:
    expected, expected_state = _run(opt, 4, compiled=False, scalar=False)
    actual, state = _run(bucketed(opt), 4, compiled=False, scalar=False)
    chex.assert_trees_all_equal(actual, expected)
    chex.assert_trees_all_equal_dtypes(actual, expected)
    slots = bucketed(opt).slots(state, _tree(0, scalar=False))
    chex.assert_trees_all_equal(slots, dict(expected_state.slots))
    assert int(state.inner.step) == int(expected_state.step)


@pytest.mark.parametrize("opt", ELEMENTWISE, ids=repr)
def test_a_0d_leaf_and_global_norms_are_within_float32_rounding(opt: Any) -> None:
    """XLA compiles an elementwise op on a 0-d array to other machine code than on a
    vector (scalar versus vectorized ``pow``, ``div``), so a 0-d param packed into a
    bucket can land one float32 ulp away; global norms sum in another order."""
    expected, expected_state = _run(opt, 4, compiled=False)
    actual, state = _run(bucketed(opt), 4, compiled=False)
    slots = bucketed(opt).slots(state, _tree(0))
    for a, e in zip(
        jax.tree.leaves((actual, slots)),
        jax.tree.leaves((expected, dict(expected_state.slots))),
        strict=True,
    ):
        tol = 1e-6 if a.dtype == jnp.float32 else 2.0**-7  # the dtype's rounding, a few times
        assert relative_error(np.asarray(a, np.float32), np.asarray(e, np.float32)) <= tol


@pytest.mark.parametrize("opt", ELEMENTWISE[1:4] + ELEMENTWISE[-4:], ids=repr)
def test_bucketed_compiled_matches_the_per_leaf_rule(opt: Any) -> None:
    expected, _ = _run(opt, 4, compiled=True)
    actual, _ = _run(bucketed(opt), 4, compiled=True)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        assert a.dtype == e.dtype
        tol = 1e-6 if a.dtype == jnp.float32 else 2.0**-8  # one rounding of the dtype
        assert relative_error(np.asarray(a, np.float32), np.asarray(e, np.float32)) <= tol


def test_update_returns_per_leaf_updates_equal_to_the_rule() -> None:
    opt = jopt.AdamW(0.01, exclude_from_weight_decay=["b"])
    params, grads = _tree(0), _tree(1)
    expected, _ = opt.update(grads, opt.init(params), params)
    b = bucketed(opt)
    with jax.disable_jit():
        actual, _ = b.update(grads, b.init(params), params)
    chex.assert_trees_all_equal(actual, expected)


def test_buckets_are_per_dtype_and_weight_decay_group() -> None:
    opt = bucketed(jopt.AdamW(0.01, exclude_from_weight_decay=["b"]))
    state = opt.init(_tree(0))
    assert set(state.inner.slots["momentum"]) == {"float32", "float32/no_decay", "bfloat16"}
    assert state.inner.slots["momentum"]["float32"].shape == (12 + 1 + 12,)  # k, s, w
    assert isinstance(state, BucketedState)
    assert {p.path: p.offset for p in state.inner.layout.places}["['w']"] == 13


def test_non_optimizers_are_refused() -> None:
    with pytest.raises(TypeError, match="per-leaf rule"):
        Bucketed(jopt.chain())  # type: ignore[arg-type]


def test_mismatched_grads_name_the_path() -> None:
    opt = bucketed(jopt.Adam())
    params = _tree(0)
    state = opt.init(params)
    grads = dict(_tree(1))
    del grads["k"]
    with pytest.raises(ValueError, match=r"grads\['k'\] is missing"):
        opt.apply_gradients(grads, state, params)
    with pytest.raises(TypeError, match="BucketedState"):
        opt.update(_tree(1), jopt.Adam().init(params), params)


def test_no_retrace_and_donation_keeps_the_layout() -> None:
    opt = bucketed(jopt.Adam(0.01))
    params = _tree(0)
    state = opt.init(params)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(params: Any, state: BucketedState, grads: Any) -> Any:
        return opt.apply(grads, state, params)

    expected_p, expected_s = params, state
    for t in range(3):
        expected_p, expected_s = step(expected_p, expected_s, _tree(10 + t))
    for t in range(3):
        params, state = opt.apply_gradients(_tree(10 + t), state, params, donate=True)
    chex.assert_trees_all_close(params, expected_p, rtol=1e-6)
    assert state.inner.layout == opt.init(_tree(0)).inner.layout


def test_vmapped_sweep_equals_separate_runs() -> None:
    opt = bucketed(jopt.Adam(0.01))
    params, grads = _tree(0), _tree(1)
    rates = [0.1, 0.01, 0.001]
    params_k, states = jopt.sweep_init(opt, params, learning_rate=rates)
    out, _ = jax.jit(jax.vmap(lambda p, s: opt.apply(grads, s, p)))(params_k, states)
    for i, rate in enumerate(rates):
        single = bucketed(jopt.Adam(rate))
        expected, _ = single.apply(grads, single.init(params), params)
        chex.assert_trees_all_close(jax.tree.map(lambda x, i=i: x[i], out), expected, rtol=1e-6)


def test_layout_round_trips_with_static_and_runtime_offsets() -> None:
    tree = _tree(3)
    layout = Layout.of(tree)
    buckets = layout.pack(tree)
    assert {k: v.shape for k, v in buckets.items()} == {"float32": (29,), "bfloat16": (5,)}
    chex.assert_trees_all_equal(layout.unpack(buckets), tree)
    offsets = layout.offsets()
    chex.assert_trees_all_equal(jax.jit(layout.unpack)(buckets, offsets), tree)
    assert layout == Layout.of(jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), tree))


@pytest.mark.parametrize(
    "opts",
    [
        (jopt.SGD(0.1, momentum=0.9), jopt.SGD(0.1, momentum=0.9)),
        (jopt.Adam(0.01), jopt.Adam(0.01)),
        # The same leaves (rank < 2) excluded, by bucket name and by path.
        (
            jopt.AdamW(0.01, exclude_from_weight_decay=["no_decay"]),
            jopt.AdamW(0.01, exclude_from_weight_decay=["b", "s", "h"]),
        ),
    ],
    ids=lambda o: type(o[0]).__name__,
)
def test_packed_params_train_as_the_tree_does(opts: Any) -> None:
    opt, tree_opt = opts

    def loss(tree: Any, x: jax.Array) -> jax.Array:
        y = jnp.tanh(x @ tree["w"] + tree["b"]) @ tree["k"].reshape(4, 3)
        return jnp.mean(y**2) + tree["s"] ** 2 + jnp.sum(tree["h"].astype(jnp.float32) ** 2)

    no_decay = lambda path, leaf: "no_decay" if leaf.ndim < 2 else None
    tree = _tree(0)
    packed = pack(tree, no_decay)
    assert isinstance(packed, Packed) and "float32/no_decay" in packed.buckets
    state_t, state_p = tree_opt.init(tree), opt.init(packed)
    x = jnp.asarray(np.random.default_rng(5).standard_normal((8, 3)), jnp.float32)
    for _ in range(3):
        with jax.disable_jit():
            g_t = jax.grad(loss)(tree, x)
            g_p = jax.grad(lambda p: loss(p.unpack(), x))(packed)
            assert isinstance(g_p, Packed)
            chex.assert_trees_all_close(g_p.unpack(), g_t, rtol=1e-6)
            # Same gradients in, same numbers out: feed the tree's grads packed.
            g_p = pack(g_t, no_decay)
            tree, state_t = tree_opt.apply(g_t, state_t, tree)
            packed, state_p = opt.apply(g_p, state_p, packed)
    chex.assert_trees_all_equal(packed.unpack(), tree)
    chex.assert_trees_all_equal(
        state_p.slots[opt.slot_names()[0]].unpack(), state_t.slots[opt.slot_names()[0]]
    )


_SHARDED_SCRIPT = """
import jax, jax.numpy as jnp, numpy as np, jopt
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
mesh = Mesh(np.array(jax.devices()), ("model",))
split = NamedSharding(mesh, P("model"))
params = {"w": jax.device_put(jnp.arange(8.0), split), "b": jax.device_put(jnp.ones(4), split)}
grads = jax.tree.map(lambda x: x * 0.5, params)
opt = jopt.bucketed(jopt.Adam(0.1))
state = opt.init(params)
assert state.inner.layout is None, "sharded params must fall back to the per-leaf state"
assert state.inner.slots["momentum"]["w"].sharding == split
new, state = opt.apply_gradients(grads, state, params)
assert new["w"].sharding == split and state.inner.slots["velocity"]["b"].sharding == split
expected, _ = jopt.Adam(0.1).apply(grads, jopt.Adam(0.1).init(params), params)
np.testing.assert_array_equal(np.asarray(new["w"]), np.asarray(expected["w"]))
print("ok")
"""


def test_sharded_params_fall_back_to_the_per_leaf_state_and_keep_shardings() -> None:
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "JAX_PLATFORMS": "cpu",
    }
    run = subprocess.run(
        [sys.executable, "-c", _SHARDED_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]


@pytest.mark.parametrize("wrap", [jopt.SkipNonFinite, jopt.LossScaleOptimizer])
def test_wrappers_skip_a_non_finite_step_of_a_bucketed_optimizer(wrap: Any) -> None:
    opt = wrap(bucketed(jopt.Adam(0.1)))
    params = _tree(0)
    state = opt.init(params)
    bad = dict(_tree(1), b=jnp.full(4, jnp.nan, jnp.float32))
    new, state = opt.apply_gradients(bad, state, params)
    chex.assert_trees_all_equal(new, params)
    assert int(state.inner.inner.step) == 0
    new, state = opt.apply_gradients(_tree(1), state, params)
    assert int(state.inner.inner.step) == 1
    # The same two steps, unbucketed.
    plain = wrap(jopt.Adam(0.1))
    expected, plain_state = plain.apply_gradients(bad, plain.init(params), params)
    expected, _ = plain.apply_gradients(_tree(1), plain_state, expected)
    chex.assert_trees_all_close(new, expected, rtol=1e-6)


@pytest.mark.parametrize("runtime_offsets", [False, True], ids=["static", "offsets"])
def test_packed_gradients_are_one_concatenation_per_bucket(runtime_offsets: bool) -> None:
    """unpack's gradient concatenates the cotangents (no bucket-sized pad per leaf, which
    made a 1000-leaf step quadratic), and equals the gradient on the tree."""
    tree = {f"l{i}": _tree(i, scalar=False) for i in range(3)}
    packed = pack(tree)
    offsets = packed.offsets() if runtime_offsets else None

    def loss(t: Any) -> jax.Array:
        return sum(
            jnp.sum(jnp.sin(x.astype(jnp.float32)) * (i + 1))
            for i, x in enumerate(jax.tree.leaves(t))
        )

    grad = jax.grad(lambda p: loss(p.unpack(offsets)))
    text = str(jax.make_jaxpr(grad)(packed))  # nested jaxprs included
    assert " pad[" not in text and "pad(" not in text and "concatenate" in text
    chex.assert_trees_all_equal(grad(packed).unpack(), jax.grad(loss)(tree))


def test_large_leaves_keep_a_bucket_of_their_own_with_the_same_numbers() -> None:
    opt = jopt.AdamW(0.01, exclude_from_weight_decay=["b"])
    small_only = bucketed(opt, max_leaf_size=10)  # w, k (12 elements) stand alone
    state = small_only.init(_tree(0))
    assert set(state.inner.slots["momentum"]) == {
        "float32",
        "float32/['k']",
        "float32/['w']",
        "float32/no_decay",
        "bfloat16",
    }
    expected, _ = _run(opt, 3, compiled=False, scalar=False)
    actual, _ = _run(small_only, 3, compiled=False, scalar=False)
    chex.assert_trees_all_equal(actual, expected)
    with pytest.raises(ValueError, match="max_leaf_size must be an integer >= 0"):
        bucketed(opt, max_leaf_size=-1)


def test_summary_shows_the_layout_and_the_inner_state() -> None:
    opt = bucketed(jopt.Adam(0.25))
    text = str(jopt.summary(opt.init(_tree(0)), opt))
    assert "5 leaves in flat buckets" in text  # w, b, k, s, h
    assert "lr (next update)  0.25" in text
    sharded_fallback = BucketedState(jopt.Adam(0.25, layout="per_leaf").init(_tree(0)))
    assert "per leaf (sharded params)" in str(jopt.summary(sharded_fallback, opt))
