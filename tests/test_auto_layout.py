"""The automatic layout (the ``layout`` option): a tree of many small leaves runs on flat
buckets with the per-leaf rule's numbers, in ``opt.init/update``, ``apply_gradients``,
a user's own ``jax.jit``, ``jopt.TrainState`` and flax's ``TrainState``.

The oracle is the same optimizer with ``layout="per_leaf"``, whose numbers the parity
suites check against Keras, optax and torch. An elementwise rule applied to leaves laid
end to end computes the same arithmetic on every element; compiled, XLA may fuse (and
vectorise) a long buffer and a 3-element leaf differently, so compiled results agree to
float32 rounding (rtol 1e-6, a few ulps), eager ones bit for bit.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import keras
import numpy as np
import optax
import pytest

import jopt
from jopt.core.registry import registered_config_classes
from jopt.optimizers.buckets import AUTO_MIN_SMALL_LEAVES
from tests.keras_oracle import jopt_run, keras_run
from tests.problems import make_problem, relative_error

# Mixed small leaves (scalars, vectors, small matrices, one bfloat16) and one large leaf
# that keeps a bucket of its own: enough small leaves for "auto" to pack.
SHAPES = [(), (3,), (4, 3), (7,), (2, 2, 2)] * 14 + [(100, 90)]


def _tree(seed: int, dtype_of_last_small: str = "bfloat16") -> dict[str, jax.Array]:
    rng = np.random.default_rng(seed)
    tree = {
        f"layer_{i:02d}": jnp.asarray(rng.standard_normal(s), jnp.float32)
        for i, s in enumerate(SHAPES)
    }
    tree["layer_01"] = tree["layer_01"].astype(dtype_of_last_small)
    return tree


PARAMS = _tree(0)
GRADS = [_tree(s) for s in (1, 2, 3)]


def _elementwise_classes() -> list[type]:
    """Every registered optimizer class whose rule is elementwise: the ones "auto" packs
    (the others run bucketed on request: tests/test_bucketed_every_rule.py)."""
    out = []
    for name, cls in sorted(registered_config_classes(by_name=True).items()):
        if not isinstance(cls, type) or not issubclass(cls, jopt.Optimizer):
            continue
        if cls.elementwise and name == cls.__name__:
            out.append(cls)
    return out


CLASSES = _elementwise_classes()


def _run(opt: jopt.Optimizer, compiled: bool) -> tuple:
    state = opt.init(PARAMS)
    params = PARAMS
    step = jax.jit(opt.apply) if compiled else opt.apply
    for g in GRADS:
        params, state = step(jax.tree.map(lambda x, p: x.astype(p.dtype), g, params), state, params)
    return params, state


def test_the_threshold_is_what_init_uses() -> None:
    small = {f"b{i}": jnp.zeros(2) for i in range(AUTO_MIN_SMALL_LEAVES)}
    assert jopt.Adam().init(small).layout is not None
    fewer = dict(list(small.items())[:-1])
    assert jopt.Adam().init(fewer).layout is None
    # Large leaves do not count: each would keep a bucket of its own.
    large = {f"w{i}": jnp.zeros(9_000) for i in range(AUTO_MIN_SMALL_LEAVES)}
    assert jopt.Adam().init(large).layout is None


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_auto_layout_matches_per_leaf_compiled(cls: type) -> None:
    opt, ref = cls(learning_rate=0.01), cls(learning_rate=0.01, layout="per_leaf")
    assert opt.init(PARAMS).layout is not None, "auto should pack this tree"
    (p, s), (rp, rs) = _run(opt, True), _run(ref, True)
    assert rs.layout is None
    chex.assert_trees_all_close(p, rp, rtol=1e-6, atol=1e-7)
    chex.assert_trees_all_close(opt.slots(s, PARAMS), ref.slots(rs), rtol=1e-6, atol=1e-7)
    chex.assert_trees_all_equal(s.step, rs.step)
    chex.assert_trees_all_close(s.scalars, rs.scalars, rtol=1e-6)


# exact: the rule is + - * / and sqrt elementwise, so eager steps are bit for bit. Not
# exact: Ftrl's power runs XLA's pow, vectorised on a bucket and scalar on a 0-d leaf
# (one ulp apart), and a global norm sums its squares in the buckets' order.
@pytest.mark.parametrize(
    ("opt", "exact"),
    [
        (jopt.Adam(0.01, amsgrad=True), True),
        (jopt.AdamW(0.01, weight_decay=0.1, exclude_from_weight_decay=["layer_0"]), True),
        (jopt.Nadam(0.01), True),
        (jopt.Adagrad(0.1), True),
        (jopt.SGD(0.1, momentum=0.9, nesterov=True, use_ema=True, global_clipnorm=1.0), False),
        (jopt.Ftrl(0.1, l1_regularization_strength=0.01), False),
    ],
    ids=lambda x: repr(x) if isinstance(x, jopt.Optimizer) else "",
)
def test_auto_layout_matches_per_leaf_eagerly(opt: jopt.Optimizer, exact: bool) -> None:
    ref = type(opt).from_config({**opt.get_config(), "layout": "per_leaf"})
    (p, s), (rp, rs) = _run(opt, False), _run(ref, False)
    assert s.layout is not None and rs.layout is None
    close = {"rtol": 0.0, "atol": 0.0} if exact else {"rtol": 1e-6, "atol": 1e-7}
    chex.assert_trees_all_close(p, rp, **close)
    chex.assert_trees_all_close(opt.slots(s, PARAMS), ref.slots(rs), **close)
    if opt.use_ema:
        chex.assert_trees_all_close(opt.averaged_params(s), ref.averaged_params(rs), **close)


def test_update_in_a_users_jit_traces_once_and_keeps_the_layout() -> None:
    opt, ref = jopt.Adam(0.01), jopt.Adam(0.01, layout="per_leaf")

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(params, state, grads):  # type: ignore[no-untyped-def]
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    params, state = PARAMS, opt.init(PARAMS)
    rparams, rstate = PARAMS, ref.init(PARAMS)
    for g in GRADS:
        g = jax.tree.map(lambda x, p: x.astype(p.dtype), g, PARAMS)
        params, state = step(params, state, g)
        updates, rstate = ref.update(g, rstate, rparams)
        rparams = optax.apply_updates(rparams, updates)
    chex.assert_trees_all_close(params, rparams, rtol=1e-6, atol=1e-7)
    assert state.layout == opt.init(PARAMS).layout
    chex.assert_tree_all_finite(state)


def test_apply_gradients_train_state_and_flax_use_the_auto_layout() -> None:
    from flax.training import train_state

    opt, ref = jopt.RMSprop(0.01, momentum=0.5), jopt.RMSprop(0.01, momentum=0.5, layout="per_leaf")
    grads = jax.tree.map(lambda x, p: x.astype(p.dtype), GRADS[0], PARAMS)

    ours = jopt.TrainState.create(PARAMS, opt)
    assert ours.opt_state.layout is not None
    ours = jax.jit(lambda s, g: s.apply_gradients(g))(ours, grads)
    flax_state = train_state.TrainState.create(apply_fn=None, params=PARAMS, tx=opt)
    flax_state = flax_state.apply_gradients(grads=grads)
    params, state = opt.apply_gradients(grads, opt.init(PARAMS), PARAMS, donate=False)

    rparams, _ = ref.apply_gradients(grads, ref.init(PARAMS), PARAMS)
    for got in (ours.params, flax_state.params, params):
        chex.assert_trees_all_close(got, rparams, rtol=1e-6, atol=1e-7)
    assert state.layout is not None
    assert "flat buckets" in str(jopt.summary(state, opt))
    # The layout is static: flax's msgpack writes nothing for it and keeps the target's.
    from flax import serialization

    restored = serialization.from_bytes(
        train_state.TrainState.create(apply_fn=None, params=PARAMS, tx=opt),
        serialization.to_bytes(flax_state),
    )
    chex.assert_trees_all_equal(restored.opt_state, flax_state.opt_state)


def test_opt_outs_and_per_leaf_cases() -> None:
    assert jopt.Adam(layout="per_leaf").init(PARAMS).layout is None
    # Not elementwise (a leaf's norm, a matrix's shape): per leaf under auto, packed on
    # request with a segment sum a rounding apart.
    for opt in (jopt.Lamb(), jopt.Adafactor(), jopt.Adam(clipnorm=1.0)):
        assert opt.init(PARAMS).layout is None
    assert jopt.Lamb(layout="bucketed").init(PARAMS).layout is not None
    # 8-bit slots quantize per leaf in blocks: kept per leaf under auto.
    int8 = jopt.Adam(slot_dtypes={"momentum": "int8"})
    assert int8.init(PARAMS).layout is None
    # Forced: a tree too small for auto.
    assert jopt.Adam(layout="bucketed").init({"w": jnp.ones(3)}).layout is not None
    assert jopt.Adam(layout="bucketed").get_config()["layout"] == "bucketed"
    assert "layout" not in jopt.Adam().get_config()  # Keras's own dict by default


def test_bad_layout_and_mismatched_grads_are_clear_errors() -> None:
    with pytest.raises(
        ValueError, match="layout must be 'auto' or 'per_leaf' or 'bucketed', got 'packed'"
    ):
        jopt.Adam(layout="packed")
    opt = jopt.Adam()
    state = opt.init(PARAMS)
    # The slots read per param without the params: the state holds its layout.
    chex.assert_trees_all_equal(opt.slots(state), jopt.Adam(layout="per_leaf").init(PARAMS).slots)
    with pytest.raises(ValueError, match="grads"):
        opt.update({k: v for k, v in GRADS[0].items() if k != "layer_03"}, state, PARAMS)


def test_checkpoint_round_trip_of_a_bucketed_state(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import orbax.checkpoint as ocp

    opt = jopt.Adam(0.01)
    state = opt.init(PARAMS)
    params, state = opt.apply_gradients(
        jax.tree.map(lambda x, p: x.astype(p.dtype), GRADS[0], PARAMS), state, PARAMS
    )
    with ocp.StandardCheckpointer() as ckpt:
        ckpt.save(tmp_path / "s", {"params": params, "opt_state": state})
    with ocp.StandardCheckpointer() as ckpt:
        target = jax.eval_shape(lambda: {"params": params, "opt_state": opt.init(params)})
        restored = ckpt.restore(tmp_path / "s", target)
    chex.assert_trees_all_equal(restored["opt_state"], state)
    assert restored["opt_state"].layout is not None


def _composites(layout: str) -> dict[str, object]:
    """Each composite around Adam (and SGD) in one layout: labels split the tree in two
    groups of 35 small leaves, so partition's members stay per leaf under auto; the
    other composites see the whole tree."""
    adam = jopt.Adam(0.01, layout=layout)
    labels = {k: ("sgd" if k < "layer_36" else "adam") for k in PARAMS}
    return {
        "SkipNonFinite": jopt.SkipNonFinite(adam),
        "LossScaleOptimizer": jopt.LossScaleOptimizer(adam),
        "chain": jopt.chain(optax.clip_by_global_norm(10.0), adam),
        "Lookahead": jopt.Lookahead(adam, sync_period=2),
        "partition": jopt.partition(
            {"sgd": jopt.SGD(0.1, momentum=0.9, layout=layout), "adam": adam}, labels
        ),
    }


@pytest.mark.parametrize("name", sorted(_composites("auto")))
def test_composites_around_an_auto_layout_match_per_leaf(name: str) -> None:
    opt, ref = _composites("auto")[name], _composites("per_leaf")[name]
    grads = [jax.tree.map(lambda x, p: x.astype(p.dtype), g, PARAMS) for g in GRADS]
    out = []
    for tx in (opt, ref):
        params, state = PARAMS, tx.init(PARAMS)
        step = jax.jit(tx.apply_gradients)  # one jit: a fresh one per step would recompile
        for g in grads:
            params, state = step(g, state, params)
        out.append(params)
    chex.assert_trees_all_close(out[0], out[1], rtol=1e-6, atol=1e-7)
    packed = [
        x
        for x in jax.tree.leaves(
            opt.init(PARAMS), is_leaf=lambda x: isinstance(x, jopt.OptimizerState)
        )
        if isinstance(x, jopt.OptimizerState)
    ]
    assert any(s.layout is not None for s in packed) == (name != "partition")


# Keras 3 itself as the oracle for the packed step: its stateless_apply, compiled, over
# 72 small variables (tests/problems.py's shapes, repeated), 10 steps; the parity suites'
# tolerance for compiled steps (1e-6, float32 rounding accumulated over the steps).
KERAS_SHAPES = tuple(s for _ in range(18) for s in ((3,), (2, 3), (2, 2, 2), (4, 1, 2, 1)))


@pytest.mark.parametrize(
    "name",
    ["Adam", "SGD"],
)
def test_auto_layout_follows_keras_live(name: str) -> None:
    make = {
        "Adam": lambda m: m.Adam(0.01, amsgrad=True, weight_decay=0.1),
        "SGD": lambda m: m.SGD(0.1, momentum=0.9, nesterov=True),
    }[name]
    opt = make(jopt)
    init, _ = make_problem(shapes=KERAS_SHAPES, steps=10)
    assert opt.init([jnp.asarray(x) for x in init]).layout is not None, "auto should pack"
    expected = keras_run(
        lambda: make(keras.optimizers), shapes=KERAS_SHAPES, steps=10, stateless=True
    )
    actual = jopt_run(opt, "compiled", shapes=KERAS_SHAPES, steps=10)
    for j, (a, e) in enumerate(zip(actual, expected, strict=True)):
        err = relative_error(a, e)
        assert err <= 1e-6, f"{name} leaf {j}: worst error {err:.3g} > 1e-6"
