"""8-bit slots (``slot_dtypes={"momentum": "int8", ...}``): bitsandbytes' Adam8bit as the
oracle where it runs (CPU), float32-state runs as the reference elsewhere, and the
compositions (jit, vmap sweeps, checkpoints, changed models, master weights, wrappers,
buckets)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

import jopt
from jopt.formulas.quantization import Quantized

INT8 = {"momentum": "int8", "velocity": "int8"}
SHAPE = (64, 64)  # 4096 elements: the smallest leaf stored in 8 bits


def grads_at(i: int, shape: tuple[int, ...] = SHAPE) -> np.ndarray:
    rng = np.random.default_rng(100 + i)
    return (rng.standard_normal(shape) * np.exp(rng.uniform(-2, 1))).astype(np.float32)


def params0() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {
        "w": jnp.asarray(rng.standard_normal(SHAPE), jnp.float32),
        "b": jnp.asarray(rng.standard_normal(8), jnp.float32),  # small: stays float32
    }


def grads(i: int) -> dict[str, Any]:
    return {"w": jnp.asarray(grads_at(i)), "b": jnp.asarray(grads_at(i, (8,)))}


def train(opt: Any, params: Any, state: Any, steps: range) -> tuple[Any, Any]:
    for i in steps:
        params, state = opt.apply_gradients(grads(i), state, params)
    return params, state


# ---- bitsandbytes' Adam8bit, run live on CPU --------------------------------------


def test_one_step_from_a_bitsandbytes_state_is_adam8bits_step() -> None:
    torch = pytest.importorskip("torch")
    bnb = pytest.importorskip("bitsandbytes")
    w = torch.nn.Parameter(torch.from_numpy(np.array(params0()["w"])))
    ref = bnb.optim.Adam8bit([w], lr=0.01, eps=1e-8)
    for i in range(5):
        w.grad = torch.from_numpy(grads_at(i))
        ref.step()
    s = ref.state[w]
    before = w.detach().numpy().copy()
    state = s["state1"].numpy().copy(), s["absmax1"].numpy().copy()
    state2 = s["state2"].numpy().copy(), s["absmax2"].numpy().copy()
    w.grad = torch.from_numpy(grads_at(5))
    ref.step()

    # jopt's Adam from bitsandbytes' state; bitsandbytes adds eps after the bias
    # correction of sqrt(v), Keras before it: the same rule with eps * sqrt(1 - beta_2**6).
    opt = jopt.Adam(0.01, epsilon=1e-8 * np.sqrt(1 - 0.999**6), slot_dtypes=INT8)
    template = opt.init({"w": jnp.asarray(before)})
    m = Quantized(jnp.asarray((state[0].astype(np.int16) - 128).astype(np.int8)), state[1])
    v = Quantized(jnp.asarray(state2[0]), jnp.asarray(state2[1]))
    mine = template._replace(step=jnp.int32(5), slots={"momentum": {"w": m}, "velocity": {"w": v}})
    for apply in (opt.apply, jax.jit(opt.apply)):
        params, new = apply({"w": jnp.asarray(grads_at(5))}, mine, {"w": jnp.asarray(before)})
        np.testing.assert_allclose(params["w"], w.detach().numpy(), rtol=1e-6, atol=1e-7)
        for name, key in (("momentum", "state1"), ("velocity", "state2")):
            theirs = s[key].numpy().astype(np.int64)
            q = new.slots[name]["w"]
            ours = np.asarray(q.codes).astype(np.int64) + (128 if name == "momentum" else 0)
            absmax = s["absmax1" if name == "momentum" else "absmax2"].numpy()
            np.testing.assert_allclose(q.scale, absmax, rtol=1e-6)
            # Codes differ only where bitsandbytes' search is not nearest or a float32
            # rounding of the new moment crosses a boundary.
            assert (ours == theirs).mean() > 0.95


def test_trajectory_follows_adam8bit_closer_than_float32_states_do() -> None:
    torch = pytest.importorskip("torch")
    bnb = pytest.importorskip("bitsandbytes")
    steps = 60
    w = torch.nn.Parameter(torch.from_numpy(np.array(params0()["w"])))
    ref = bnb.optim.Adam8bit([w], lr=0.01, eps=1e-8)
    for i in range(steps):
        w.grad = torch.from_numpy(grads_at(i))
        ref.step()
    theirs = w.detach().numpy()
    start = np.asarray(params0()["w"])

    def run(slot_dtypes: Any) -> np.ndarray:
        opt = jopt.Adam(0.01, epsilon=1e-8, slot_dtypes=slot_dtypes)
        p = {"w": jnp.asarray(start)}
        p, _ = train_w(opt, p, steps)
        return np.asarray(p["w"])

    eight, full = run(INT8), run(None)
    moved = np.abs(theirs - start).mean()
    assert np.abs(eight - theirs).mean() < 0.1 * np.abs(full - theirs).mean()
    assert np.abs(eight - theirs).mean() < 0.01 * moved


def train_w(opt: Any, p: Any, steps: int) -> tuple[Any, Any]:
    state = opt.init(p)
    for i in range(steps):
        p, state = opt.apply_gradients({"w": jnp.asarray(grads_at(i))}, state, p)
    return p, state


# ---- the documented bound: 1000 steps against float32 states ----------------------


def least_squares_run(opt: Any, steps: int = 1000) -> tuple[jax.Array, jax.Array]:
    """Minibatch least squares, 64 x 128 weights (32 blocks): the problem whose bound
    README's Memory section quotes."""
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(k1, (1024, 64))
    y = x @ (jax.random.normal(k2, (64, 128)) / 8) + 0.1 * jax.random.normal(k3, (1024, 128))

    def loss(w: jax.Array, idx: Any = slice(None)) -> jax.Array:
        return 0.5 * jnp.mean(jnp.sum((x[idx] @ w - y[idx]) ** 2, -1))

    def body(carry: Any, i: jax.Array) -> Any:
        p, s = carry
        idx = jax.random.randint(jax.random.fold_in(k3, i), (64,), 0, 1024)
        p, s = opt.apply(jax.grad(lambda p: loss(p["w"], idx))(p), s, p)
        return (p, s), loss(p["w"])

    p = {"w": jnp.zeros((64, 128))}
    (p, _), losses = jax.jit(lambda p, s: jax.lax.scan(body, (p, s), jnp.arange(steps)))(
        p, opt.init(p)
    )
    return p["w"], losses


def test_1000_steps_stay_within_the_documented_bound_of_float32_states() -> None:
    w8, loss8 = least_squares_run(jopt.Adam(1e-3, slot_dtypes=INT8))
    w32, loss32 = least_squares_run(jopt.Adam(1e-3))
    assert float(jnp.linalg.norm(w8 - w32) / jnp.linalg.norm(w32)) < 0.005
    assert abs(float(loss8[-1]) / float(loss32[-1]) - 1) < 0.005


# ---- every elementwise optimizer ---------------------------------------------------

ELEMENTWISE = [
    (jopt.Adam(0.01, amsgrad=True), {"velocity_hat"}),
    (jopt.AdamW(0.01), set()),
    (jopt.Nadam(0.01), set()),
    (jopt.Adamax(0.01), {"norm"}),
    (jopt.Lion(0.001), set()),
    (jopt.RMSprop(0.01, momentum=0.9, centered=True), set()),
    (jopt.SGD(0.01, momentum=0.9), set()),
    (jopt.Adagrad(0.01), set()),
    (jopt.Adadelta(1.0), set()),
    (jopt.Lamb(0.01), set()),
]
UNSIGNED = {"velocity", "velocity_hat", "norm", "accumulator", "accumulated_grad",
            "accumulated_delta_var"}  # fmt: skip


@pytest.mark.parametrize("base", [b for b, _ in ELEMENTWISE], ids=lambda o: type(o).__name__)
def test_every_elementwise_optimizer_keeps_its_slots_in_8_bits(base: Any) -> None:
    names = base.slot_names()
    opt = type(base).from_config(base.get_config() | {"slot_dtypes": dict.fromkeys(names, "int8")})
    p0 = params0()
    state = opt.init(p0)
    for name in names:
        q = state.slots[name]["w"]
        assert isinstance(q, Quantized) and q.shape == SHAPE and q.scale.shape == (16,)
        assert q.signed == (name not in UNSIGNED)
        assert state.slots[name]["b"].dtype == jnp.float32  # small: kept float32
    eager = p0, state
    for i in range(3):
        eager = opt.apply(grads(i), eager[1], eager[0])
    jitted = train(opt, p0, state, range(3))
    chex.assert_trees_all_close(jitted, eager, rtol=1e-6, atol=1e-7)
    full, _ = train(base, p0, base.init(p0), range(3))
    # The 8-bit run moves the params as the float32-state run does, within 3% (NumPy
    # oracle: the float32-state run's own motion).
    moved = np.abs(np.asarray(full["w"]) - np.asarray(p0["w"]))
    diff = np.abs(np.asarray(jitted[0]["w"]) - np.asarray(full["w"]))
    assert diff.mean() < 0.03 * moved.mean()
    np.testing.assert_array_equal(jitted[0]["b"], full["b"])  # float32 slots: the same
    values = opt.slots(jitted[1])
    assert all(values[n]["w"].dtype == jnp.float32 and values[n]["w"].shape == SHAPE for n in names)
    assert "8-bit blocks" in str(jopt.summary(jitted[1], opt))


@pytest.mark.parametrize(
    ("make", "slot", "why"),
    [
        (lambda d: jopt.Adafactor(slot_dtypes=d), "r", "row and column statistics"),
        (lambda d: jopt.Ftrl(slot_dtypes=d), "linear", "would move the weights"),
        (lambda d: jopt.ScheduleFreeAdamW(slot_dtypes=d), "momentum", "it is z"),
        (lambda d: jopt.Adam(master_weights=True, slot_dtypes=d), "master_weights", "exact"),
        (lambda d: jopt.Adam(use_ema=True, slot_dtypes=d), "average", "copy of the params"),
    ],
)
def test_int8_is_refused_for_a_slot_needed_whole_or_exact(make: Any, slot: str, why: str) -> None:
    with pytest.raises(ValueError, match=rf"slot_dtypes\['{slot}'\] = 'int8': .*{why}"):
        make({slot: "int8"})


# ---- compositions ------------------------------------------------------------------


def test_jit_does_not_retrace_and_a_sweep_equals_its_runs() -> None:
    opt = jopt.Adam(0.01, slot_dtypes=INT8)

    @chex.assert_max_traces(n=1)
    def step(p: Any, s: Any, g: Any) -> Any:
        return opt.apply(g, s, p)

    jitted = jax.jit(step)
    p, s = params0(), opt.init(params0())
    for i in range(2):
        p, s = jitted(p, s, grads(i))
    pk, sk = jopt.sweep_init(opt, params0(), learning_rate=[0.01, 0.05])
    vstep = jax.jit(jax.vmap(lambda p, s, g: opt.apply(g, s, p), in_axes=(0, 0, None)))
    for i in range(2):
        pk, sk = vstep(pk, sk, grads(i))
    for k, lr in enumerate([0.01, 0.05]):
        one = jopt.Adam(lr, slot_dtypes=INT8)
        want = train(one, params0(), one.init(params0()), range(2))
        chex.assert_trees_all_close(jax.tree.map(lambda a, k=k: a[k], (pk, sk)), want, rtol=1e-6)


def test_orbax_round_trip_resumes_bit_identically_and_fits_a_changed_model(
    tmp_path: Path,
) -> None:
    opt = jopt.Adam(0.01, slot_dtypes=INT8)
    p, s = train(opt, params0(), opt.init(params0()), range(3))
    full = train(opt, p, s, range(3, 5))
    with ocp.StandardCheckpointer() as ckpt:
        ckpt.save(tmp_path / "a", {"params": p, "state": s})
    with ocp.StandardCheckpointer() as ckpt:
        target = jax.eval_shape(lambda: {"params": params0(), "state": opt.init(params0())})
        restored = ckpt.restore(tmp_path / "a", target)
    with ocp.StandardCheckpointer() as ckpt:
        raw = ckpt.restore(tmp_path / "a")
    resumed = train(opt, restored["params"], restored["state"], range(3, 5))
    chex.assert_trees_all_equal(resumed, full)
    state, report = jopt.restore_state(opt, raw["state"], p, on_change="error")
    chex.assert_trees_all_equal(state, s)
    # A new 8-bit leaf gets a fresh (zero) slot; the trained ones are kept bit for bit.
    bigger = {**p, "w2": jnp.ones(SHAPE)}
    with pytest.warns(UserWarning, match="w2"):
        state, report = jopt.restore_state(opt, raw["state"], bigger)
    assert all("w2" in path for path in report.new) and report.new
    chex.assert_trees_all_equal(state.slots["momentum"]["w"], s.slots["momentum"]["w"])
    np.testing.assert_array_equal(opt.slots(state)["momentum"]["w2"], 0.0)
    g = {**grads(3), "w2": jnp.ones(SHAPE)}
    after, _ = opt.apply_gradients(g, state, bigger)
    assert bool(jnp.all(after["w2"] < 1.0))


def test_master_weights_with_bfloat16_params() -> None:
    opt = jopt.Adam(0.01, master_weights=True, slot_dtypes=INT8)
    p16 = jax.tree.map(lambda x: x.astype(jnp.bfloat16), params0())
    p, s = train(opt, p16, opt.init(p16), range(3))
    assert p["w"].dtype == jnp.bfloat16 and s.slots["master_weights"]["w"].dtype == jnp.float32
    assert isinstance(s.slots["momentum"]["w"], Quantized)
    np.testing.assert_array_equal(p["w"], s.slots["master_weights"]["w"].astype(jnp.bfloat16))
    ref = jopt.Adam(0.01, master_weights=True)
    _, rs = train(ref, p16, ref.init(p16), range(3))
    master, want = s.slots["master_weights"]["w"], rs.slots["master_weights"]["w"]
    moved = jnp.abs(want - p16["w"].astype(jnp.float32)).mean()
    assert float(jnp.abs(master - want).mean()) < 0.03 * float(moved)


@pytest.mark.parametrize(
    "wrap", [jopt.SkipNonFinite, lambda o: jopt.LossScaleOptimizer(o, initial_scale=8.0)]
)
def test_wrappers_skip_a_non_finite_step_keeping_the_8_bit_state(wrap: Any) -> None:
    opt = wrap(jopt.Adam(0.01, slot_dtypes=INT8))
    p, s = train(opt, params0(), opt.init(params0()), range(2))
    bad = {**grads(2), "w": grads(2)["w"].at[0, 0].set(jnp.nan)}
    p2, s2 = opt.apply_gradients(bad, s, p)
    chex.assert_trees_all_equal(p2, p)
    chex.assert_trees_all_equal(s2.inner.slots, s.inner.slots)
    p3, _ = opt.apply_gradients(grads(2), s2, p2)
    assert bool(jnp.all(jnp.isfinite(p3["w"])))


def test_bucketed_blocks_run_over_the_flat_buckets() -> None:
    opt = jopt.bucketed(jopt.Adam(0.01, slot_dtypes=INT8))
    params = {**params0(), "v": jnp.ones(300)}
    state = opt.init(params)
    flat = state.inner.slots["momentum"]["float32"]
    assert isinstance(flat, Quantized) and flat.shape == (4096 + 8 + 300,)
    assert flat.scale.shape == (-(-4404 // 256),)
    g = {**grads(0), "v": jnp.ones(300)}
    p, state = opt.apply_gradients(g, state, params)
    ref = jopt.Adam(0.01)
    want, _ = ref.apply_gradients(g, ref.init(params), params)
    moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).mean()), want, params)
    diff = jax.tree.map(lambda a, b: float(jnp.abs(a - b).mean()), p, want)
    assert all(diff[k] < 0.03 * moved[k] for k in moved)
    slots = opt.slots(state, p)
    assert slots["momentum"]["w"].shape == SHAPE


def test_muons_momentum_is_8_bit_and_moves_the_params_as_float32_states_do() -> None:
    base = jopt.Muon(0.01)
    opt = jopt.Muon(0.01, slot_dtypes=INT8)
    p0 = params0()
    state = opt.init(p0)
    assert isinstance(state.slots["momentum"]["w"], Quantized)  # Muon rule: no velocity
    p, _ = train(opt, p0, state, range(3))
    want, _ = train(base, p0, base.init(p0), range(3))
    moved = float(jnp.abs(want["w"] - p0["w"]).mean())
    assert float(jnp.abs(p["w"] - want["w"]).mean()) < 0.03 * moved


def test_gradient_accumulation_keeps_the_8_bit_slots_between_updates() -> None:
    opt = jopt.Adam(0.01, slot_dtypes=INT8, gradient_accumulation_steps=2)
    p, s = train(opt, params0(), opt.init(params0()), range(2))  # one update applied
    p2, s2 = opt.apply_gradients(grads(2), s, p)  # accumulates only
    chex.assert_trees_all_equal((p2, s2.slots["momentum"]), (p, s.slots["momentum"]))
    _, s3 = opt.apply_gradients(grads(3), s2, p2)  # the next update
    assert not np.array_equal(s3.slots["momentum"]["w"].codes, s.slots["momentum"]["w"].codes)
