"""Property tests (hypothesis): invariants every optimizer keeps on random pytrees.

Trees are drawn with random depth, containers (dicts, lists, tuples), leaf shapes and
dtypes (float32, bfloat16, float16); hyperparameters are drawn from their valid ranges
and set live in the state (``opt.set_hyperparams``, which checks them as the
constructor does), so one compiled program serves many draws; gradients are random
normals over six orders of magnitude. Runs are derandomized (the same examples in CI
and here) and each property draws a modest number of examples to stay fast.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jopt
import jopt.schedules as S

SETTINGS = dict(
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
INT32_MAX = int(np.iinfo(np.int32).max)


@dataclasses.dataclass(frozen=True)
class Leaf:
    """A leaf to be: its shape and dtype (not a pytree node, so trees of it stay trees)."""

    shape: tuple[int, ...]
    dtype: str


leaves = st.builds(
    Leaf,
    st.sampled_from([(), (3,), (2, 3), (2, 2, 2), (4, 1)]),
    st.sampled_from(["float32", "bfloat16", "float16"]),
)
trees = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.dictionaries(
            st.sampled_from(["a", "b", "kernel", "bias"]), children, min_size=1, max_size=3
        ),
        st.lists(children, min_size=1, max_size=3),
        st.tuples(children, children),
    ),
    max_leaves=5,
)


def is_leaf(x: Any) -> bool:
    return isinstance(x, Leaf)


def materialize(spec: Any, seed: int, scale: float = 1.0) -> Any:
    """Arrays for a tree of Leaf: normals times ``scale``, in each leaf's dtype."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(
        lambda leaf: jnp.asarray(scale * rng.standard_normal(leaf.shape), leaf.dtype),
        spec,
        is_leaf=is_leaf,
    )


UNIT = st.floats(0.0, 0.99)
RATE = st.floats(1e-4, 0.1)
EPS = st.floats(1e-7, 1e-3)
# Each optimizer (with the options that change its program), and its live
# hyperparameters' valid ranges. beta_2 stays <= 0.99: in bfloat16 0.999 rounds to 1.0,
# which makes Keras's Nadam and ScheduleFreeAdamW divide 0 by 0 (see the README).
SPECS: list[tuple[Any, dict[str, Any]]] = [
    (jopt.SGD(0.1, momentum=0.9, nesterov=True), dict(learning_rate=RATE, momentum=UNIT)),
    (
        jopt.RMSprop(0.01, momentum=0.5, centered=True),
        dict(learning_rate=RATE, rho=st.floats(0.5, 0.99), momentum=UNIT, epsilon=EPS),
    ),
    (
        jopt.Adam(0.01, amsgrad=True),
        dict(learning_rate=RATE, beta_1=UNIT, beta_2=st.floats(0.5, 0.99), epsilon=EPS),
    ),
    (jopt.AdamW(0.01, beta_2=0.99), dict(learning_rate=RATE, weight_decay=st.floats(0.0, 0.1))),
    (jopt.Adamax(0.01), dict(learning_rate=RATE, beta_1=UNIT, beta_2=st.floats(0.5, 0.99))),
    (jopt.Nadam(0.01, beta_2=0.99), dict(learning_rate=RATE, beta_1=UNIT)),
    (jopt.Lion(0.01), dict(learning_rate=RATE, beta_1=st.floats(0.01, 0.99), beta_2=UNIT)),
    (jopt.Adagrad(0.01), dict(learning_rate=RATE, epsilon=EPS)),
    (jopt.Adadelta(1.0), dict(rho=st.floats(0.5, 0.99), epsilon=EPS)),
    (
        jopt.Ftrl(0.01, l1_regularization_strength=0.01),
        dict(learning_rate=RATE, l2_regularization_strength=st.floats(0.0, 0.1)),
    ),
    (jopt.Lamb(0.01, beta_2=0.99), dict(learning_rate=RATE, beta_1=UNIT)),
    (jopt.Adafactor(0.01), dict(learning_rate=RATE)),
    (jopt.Muon(0.01, adam_beta_2=0.99), dict(learning_rate=RATE, momentum=UNIT)),
    (jopt.ScheduleFreeAdamW(0.01, beta_2=0.99), dict(learning_rate=RATE, beta_1=UNIT)),
    (jopt.RAdam(0.01, beta_2=0.99), dict(learning_rate=RATE, beta_1=UNIT, epsilon=EPS)),
    (jopt.AdaBelief(0.01, beta_2=0.99), dict(learning_rate=RATE, beta_1=UNIT, epsilon=EPS)),
    (jopt.Yogi(0.01, beta_2=0.99), dict(learning_rate=RATE, beta_1=UNIT, epsilon=EPS)),
    (jopt.LARS(1.0), dict(learning_rate=RATE, momentum=UNIT)),
    (jopt.Adan(0.01), dict(learning_rate=RATE, beta_1=UNIT, beta_2=UNIT)),
    (jopt.ADOPT(0.01, beta_2=0.99), dict(learning_rate=RATE, beta_1=UNIT)),
    (jopt.AdEMAMix(0.01, beta_2=0.99), dict(learning_rate=RATE, alpha=st.floats(0.0, 8.0))),
    (jopt.Prodigy(beta_2=0.99), dict(learning_rate=st.floats(0.1, 1.0), beta_1=UNIT)),
    (jopt.Rprop(0.01), dict(eta_plus=st.floats(1.01, 2.0))),
    (jopt.SignSGD(0.01, momentum=0.9), dict(learning_rate=RATE, momentum=UNIT)),
]


@st.composite
def problems(draw: Any, spec_index: st.SearchStrategy[int] | None = None) -> tuple[Any, ...]:
    """(optimizer, live values, params, list of grads) for a few steps."""
    i = draw(st.integers(0, len(SPECS) - 1) if spec_index is None else spec_index)
    opt, ranges = SPECS[i]
    values = {k: draw(v) for k, v in ranges.items()}
    tree = draw(trees)
    seed = draw(st.integers(0, 2**16))
    scale = 10.0 ** draw(st.floats(-3, 1))
    params = materialize(tree, seed)
    grads = [materialize(tree, seed + 1 + t, scale) for t in range(3)]
    return opt, values, params, grads


def run(opt: Any, values: dict[str, Any], params: Any, grads: list[Any], apply: Any) -> Any:
    state = opt.set_hyperparams(opt.init(params), **values)
    for g in grads:
        params, state = apply(g, state, params)
    return params, state


def ulps(dtype: Any) -> float:
    return float(jnp.finfo(dtype).eps)


@settings(max_examples=6, **SETTINGS)
@given(problems())
def test_eager_equals_jit_structure_dtypes_kept_and_finite(problem: tuple[Any, ...]) -> None:
    """Properties 1, 3 and 4: one run, eager and compiled, checked four ways."""
    opt, values, params, grads = problem
    init = opt.init(params)
    with jax.disable_jit():
        eager = run(opt, values, params, grads, opt.apply)
    compiled = run(opt, values, params, grads, jax.jit(opt.apply))
    for new, ref in (
        (eager[0], params),
        (compiled[0], params),
        (eager[1], init),
        (compiled[1], init),
    ):
        chex.assert_trees_all_equal_structs(new, ref)
        chex.assert_trees_all_equal_dtypes(new, ref)
        chex.assert_trees_all_equal_shapes(new, ref)
    chex.assert_tree_all_finite(compiled)
    chex.assert_tree_all_finite(eager)
    # Compiled code fuses what eager rounds op by op (an intermediate kept in float32
    # instead of rounded to bfloat16): each of the 3 steps may move a value by a few
    # roundings of its dtype, relative to its size (or to 1 for values below 1).
    for e, c in zip(jax.tree.leaves(eager[0]), jax.tree.leaves(compiled[0]), strict=True):
        e64, c64 = np.asarray(e, np.float64), np.asarray(c, np.float64)
        bound = 3 * 8 * ulps(e.dtype) * np.maximum(np.abs(e64), 1.0)
        assert np.all(np.abs(e64 - c64) <= bound), (opt, values, np.max(np.abs(e64 - c64)))


@settings(max_examples=5, **SETTINGS)
@given(problems(), st.integers(2, 3))
def test_vmap_over_a_batch_of_problems_equals_a_loop(problem: tuple[Any, ...], k: int) -> None:
    """Property 2: K problems (other params, grads and live values) in one vmapped step."""
    opt, values, params, grads = problem
    batch_params = [jax.tree.map(lambda x, i=i: x * (1.0 + 0.25 * i), params) for i in range(k)]
    batch_grads = [jax.tree.map(lambda x, i=i: x * (0.5 + i), grads[0]) for i in range(k)]
    states = [
        opt.set_hyperparams(opt.init(params), **{n: v * (1.0 - 0.1 * i) for n, v in values.items()})
        for i in range(k)
    ]
    step = jax.jit(opt.apply)
    looped = [step(g, s, p) for g, s, p in zip(batch_grads, states, batch_params, strict=True)]

    def stack(trees: list[Any]) -> Any:
        return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)

    mapped = jax.jit(jax.vmap(opt.apply))(stack(batch_grads), stack(states), stack(batch_params))
    # The same program per element, batched: equal within the rounding of a reordered
    # reduction (norms, Newton-Schulz) in each leaf's dtype.
    for m, ref in zip(jax.tree.leaves(mapped), jax.tree.leaves(stack(looped)), strict=True):
        if not jnp.issubdtype(m.dtype, jnp.floating):  # step counts
            np.testing.assert_array_equal(m, ref)
            continue
        m64, r64 = np.asarray(m, np.float64), np.asarray(ref, np.float64)
        assert np.all(np.isfinite(r64)), (opt, values)
        bound = 8 * ulps(m.dtype) * np.maximum(np.abs(r64), 1.0)
        assert np.all(np.abs(m64 - r64) <= bound), (opt, np.max(np.abs(m64 - r64)))


# Property 5: zero gradients leave params unchanged where the rule says so: every rule
# whose update is a multiple of the gradient and its moments (all zero from init), with
# no weight decay. Not Ftrl (it assigns w = f(accumulators), 0 when |linear| <= l1:
# Keras's Ftrl zeroes the params on a zero gradient) nor ScheduleFreeAdamW (its params
# are an interpolation of two sequences, which a zero gradient still moves), nor Yogi
# (its moments start at 1e-6, optax's, so its first steps move without a gradient).
ZERO_GRAD_SPECS = [
    i
    for i, (o, _) in enumerate(SPECS)
    if not isinstance(o, jopt.Ftrl | jopt.ScheduleFreeAdamW | jopt.AdamW | jopt.Yogi)
]


@settings(max_examples=8, **SETTINGS)
@given(problems(st.sampled_from(ZERO_GRAD_SPECS)))
def test_zero_gradients_leave_params_unchanged(problem: tuple[Any, ...]) -> None:
    opt, values, params, grads = problem
    values = {k: v for k, v in values.items() if k != "weight_decay"}
    zeros = [jax.tree.map(jnp.zeros_like, g) for g in grads]
    if isinstance(opt, jopt.Muon):  # its decays are on by default
        opt = jopt.Muon(0.01, adam_beta_2=0.99, weight_decay=None, adam_weight_decay=None)
    new, _ = run(opt, values, params, zeros, jax.jit(opt.apply))
    chex.assert_trees_all_equal(new, params)


# Property 6: the step count saturates at the int32 maximum instead of wrapping.
SATURATING = [o for o, _ in SPECS] + [
    jopt.Adam(0.01, gradient_accumulation_steps=3, use_ema=True, ema_overwrite_frequency=2),
    jopt.SkipNonFinite(jopt.Adam(0.01)),
    jopt.LossScaleOptimizer(jopt.Adam(0.01)),
]


@pytest.mark.parametrize("opt", SATURATING, ids=lambda o: repr(o)[:40])
def test_the_step_count_saturates_at_the_int32_maximum(opt: Any) -> None:
    params = {"kernel": jnp.ones((2, 3)), "bias": jnp.zeros(3)}
    state = opt.init(params)
    near_max = jnp.int32(INT32_MAX - 1)

    def with_step(s: Any) -> Any:
        if isinstance(s, jopt.OptimizerState):
            return s._replace(step=near_max)
        return s._replace(inner=s.inner._replace(step=near_max))

    state = with_step(state)
    step = jax.jit(opt.apply)
    for _ in range(3):
        params, state = step(jax.tree.map(jnp.ones_like, params), state, params)
    inner = state if isinstance(state, jopt.OptimizerState) else state.inner
    assert int(inner.step) == INT32_MAX
    chex.assert_tree_all_finite(params)
    assert np.isfinite(float(opt.lr(state)))


def test_a_partition_step_saturates_too() -> None:
    tx = jopt.partition({"a": jopt.Adam(), "s": jopt.SGD()}, [("bias", "s")], default="a")
    params = {"kernel": jnp.ones(2), "bias": jnp.ones(2)}
    state = tx.init(params)
    state = state._replace(
        step=jnp.int32(INT32_MAX),
        groups={k: v._replace(step=jnp.int32(INT32_MAX)) for k, v in state.groups.items()},
    )
    params, state = tx.apply(params, state, params)
    assert int(state.step) == INT32_MAX
    assert all(int(g.step) == INT32_MAX for g in state.groups.values())


POSITIVE = st.floats(1e-3, 10.0)
schedules = st.one_of(
    st.builds(
        S.ExponentialDecay, POSITIVE, st.floats(1.0, 1e6), st.floats(0.01, 2.0), st.booleans()
    ),
    st.builds(
        S.PolynomialDecay,
        POSITIVE,
        st.floats(1.0, 1e6),
        st.floats(0.0, 1.0),
        st.floats(0.1, 5.0),
        st.booleans(),
    ),
    st.builds(
        S.InverseTimeDecay, POSITIVE, st.floats(1.0, 1e6), st.floats(0.0, 10.0), st.booleans()
    ),
    st.builds(S.CosineDecay, POSITIVE, st.floats(1.0, 1e6), st.floats(0.0, 1.0)),
    st.builds(
        lambda i, d, w, s: S.CosineDecay(i, d, warmup_target=w, warmup_steps=s),
        POSITIVE,
        st.floats(1.0, 1e6),
        POSITIVE,
        st.floats(0.0, 1e6),
    ),
    st.builds(
        S.CosineDecayRestarts,
        POSITIVE,
        st.floats(1.0, 1e6),
        st.floats(1.0, 3.0),
        st.floats(0.0, 1.0),
        st.floats(0.0, 1.0),
    ),
    st.builds(
        lambda a, b: S.PiecewiseConstantDecay([a, a + b], [0.1, 0.01, 0.001]),
        st.integers(0, 2**30),
        st.integers(1, 2**30),
    ),
    st.builds(
        lambda d, w: S.warmup(S.CosineDecay(0.1, d), w), st.floats(1.0, 1e6), st.floats(0.0, 1e6)
    ),
)
# torch's schedulers and warmup-stable-decay (a strategy of their own, so the examples
# drawn above stay the ones CI has always seen).
beyond_keras_schedules = st.one_of(
    st.builds(
        S.OneCycle,
        POSITIVE,
        st.integers(1, 2**30),
        st.floats(0.0, 1.0),
        st.sampled_from(["cos", "linear"]),
        st.floats(1.0, 1e4),
        st.floats(1.0, 1e6),
        st.booleans(),
    ),
    st.builds(
        lambda base, extra, up, down, mode, gamma: S.CyclicLR(
            base, base + extra, up, down, mode, gamma
        ),
        POSITIVE,
        POSITIVE,
        st.floats(0.5, 1e6),
        st.none() | st.floats(0.5, 1e6),
        st.sampled_from(["triangular", "triangular2", "exp_range"]),
        st.floats(1e-3, 1.0),
    ),
    st.builds(S.StepDecay, POSITIVE, st.integers(1, 2**30), st.floats(0.0, 1.0)),
    st.builds(
        lambda i, m, g: S.MultiStepDecay(i, sorted(m), g),
        POSITIVE,
        st.lists(st.integers(0, 2**31 - 1), max_size=20),
        st.floats(0.0, 1.0),
    ),
    st.builds(
        S.WarmupStableDecay,
        POSITIVE,
        st.floats(0.0, 1e6),
        st.floats(0.0, 1e6),
        st.floats(0.0, 1e6),
        st.floats(0.0, 1.0),
        st.sampled_from(["linear", "cosine", "1-sqrt"]),
    ),
)


@settings(max_examples=30, **SETTINGS)
@given(schedules, st.lists(st.integers(0, INT32_MAX), min_size=1, max_size=8))
def test_schedules_stay_finite_and_non_negative_at_any_step(
    schedule: Any, steps: list[int]
) -> None:
    """Property 7: every step an int32 step count can hold, eager and batched."""
    steps_array = jnp.asarray([*steps, 0, INT32_MAX], jnp.int32)
    rates = np.asarray(schedule(steps_array))
    assert np.all(np.isfinite(rates)) and np.all(rates >= 0), (schedule, steps)
    # A scalar step and the same step in an array run XLA's scalar and vector code, which
    # may fuse a multiply-add differently: at most one float32 ulp apart (as a 0-d leaf
    # in a bucket is), bit for bit wherever the schedule has no such fusion.
    np.testing.assert_array_max_ulp(
        np.float32(schedule(jnp.int32(steps[0]))), np.float32(rates[0]), maxulp=1
    )


@settings(max_examples=30, **SETTINGS)
@given(beyond_keras_schedules, st.lists(st.integers(0, INT32_MAX), min_size=1, max_size=8))
def test_torch_and_wsd_schedules_stay_finite_and_non_negative_at_any_step(
    schedule: Any, steps: list[int]
) -> None:
    """Property 7 for OneCycle, CyclicLR, StepDecay, MultiStepDecay, WarmupStableDecay."""
    steps_array = jnp.asarray([*steps, 0, INT32_MAX], jnp.int32)
    rates = np.asarray(schedule(steps_array))
    assert np.all(np.isfinite(rates)) and np.all(rates >= 0), (schedule, steps)
    np.testing.assert_allclose(float(schedule(jnp.int32(steps[0]))), rates[0], rtol=1e-6)
    floats = np.asarray(schedule(steps_array.astype(jnp.float32)))
    assert np.all(np.isfinite(floats)) and np.all(floats >= 0), (schedule, steps)
