"""Checkpoints: stop at step k, save, restore, resume, and get the uninterrupted run's bits.

The oracle of a resume is the run that was never stopped: params and state after
``k + m`` steps must be bit-identical, whatever tool saved them (orbax-checkpoint with a
target, orbax without one plus ``jopt.restore_state``, flax.serialization's bytes).
A changed model is checked against the rule written out in NumPy.
"""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest
from flax import serialization

import jopt
from jopt.schedules import LearningRateSchedule

K, M = 3, 3  # stop after K steps, resume for M more

# Every Optimizer class in jopt.optimizers.__all__, at its defaults (a larger rate so
# that every step moves), then the wrappers, a chain and a partition.
OPTIMIZER_CLASSES = [
    getattr(jopt.optimizers, n)
    for n in jopt.optimizers.__all__
    if inspect.isclass(getattr(jopt.optimizers, n))
    and issubclass(getattr(jopt.optimizers, n), jopt.Optimizer)
    and getattr(jopt.optimizers, n) is not jopt.Optimizer
]
OPTIMIZERS: list[Any] = [cls(learning_rate=0.05) for cls in OPTIMIZER_CLASSES] + [
    jopt.Adam(0.05, weight_decay=0.1, clipnorm=1.0, use_ema=True, gradient_accumulation_steps=2),
    jopt.SGD(0.05, momentum=0.9, master_weights=True),
    jopt.SkipNonFinite(jopt.Adam(0.05)),
    jopt.Lookahead(jopt.Adam(0.05), sync_period=2),
    jopt.ScheduleFree(jopt.Adam(0.05, beta_1=0.0)),
    jopt.SAM(jopt.Adam(0.05)),
    jopt.LossScaleOptimizer(jopt.Adam(0.05), initial_scale=8.0, dynamic_growth_steps=2),
    jopt.chain(jopt.clip_by_global_norm(1.0), jopt.Nadam(0.05)),
    jopt.partition(
        {"adam": jopt.Adam(0.05), "sgd": jopt.SGD(0.05, momentum=0.9)},
        [("bias", "sgd")],
        default="adam",
    ),
]
IDS = [
    type(o).__name__ if i < len(OPTIMIZER_CLASSES) else repr(o)[:60]
    for i, o in enumerate(OPTIMIZERS)
]


def params0() -> dict[str, Any]:
    return {
        "dense": {"kernel": jnp.linspace(-1.0, 1.0, 12).reshape(4, 3), "bias": jnp.zeros(3)},
        "blocks": [jnp.ones(2), None, {"scale": jnp.float32(0.5)}],
    }


def grads_at(t: int, params: Any, nan: bool = False) -> Any:
    """A fixed gradient for step t; step 1 holds a NaN for the wrappers to skip."""
    leaves, treedef = jax.tree.flatten(params)
    out = [
        jnp.sin(jnp.arange(jnp.size(x), dtype=jnp.float32) + 3.0 * t).reshape(jnp.shape(x))
        for x in leaves
    ]
    if nan and t == 1:
        out[0] = out[0].at[(0,) * out[0].ndim].set(jnp.nan)
    return treedef.unflatten(out)


def train(opt: Any, params: Any, state: Any, steps: range, nan: bool) -> tuple[Any, Any]:
    for t in steps:
        params, state = jopt.apply_gradients(opt, grads_at(t, params, nan), state, params)
    return params, state


def assert_bit_identical(a: Any, b: Any) -> None:
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert jnp.result_type(x) == jnp.result_type(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def save(path: Path, tree: Any) -> None:
    with ocp.StandardCheckpointer() as ckpt:
        ckpt.save(path, tree)
        ckpt.wait_until_finished()


def restore(path: Path, target: Any | None = None) -> Any:
    with ocp.StandardCheckpointer() as ckpt:
        return ckpt.restore(path, target)


def stopped_and_full(opt: Any) -> tuple[Any, Any, Any, bool]:
    nan = isinstance(opt, jopt.SkipNonFinite | jopt.LossScaleOptimizer)
    p0 = params0()
    full = train(opt, p0, opt.init(p0), range(K + M), nan)
    stopped = train(opt, p0, opt.init(p0), range(K), nan)
    return p0, stopped, full, nan


# Muon included: its Muon-rule leaves' velocity placeholder has one element, since
# orbax refuses zero-size arrays.
ORBAX_OPTIMIZERS = OPTIMIZERS


def test_orbax_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path: Path) -> None:
    """Every optimizer, in one checkpoint (orbax's fixed cost is paid once)."""
    runs = {str(i): stopped_and_full(opt) for i, opt in enumerate(ORBAX_OPTIMIZERS)}
    save(tmp_path / "ckpt", {i: {"params": r[1][0], "state": r[1][1]} for i, r in runs.items()})
    target = jax.eval_shape(
        lambda: {
            str(i): {"params": params0(), "state": opt.init(params0())}
            for i, opt in enumerate(ORBAX_OPTIMIZERS)
        }
    )
    restored = restore(tmp_path / "ckpt", target)  # with a target: jopt's own NamedTuples
    raw = restore(tmp_path / "ckpt")  # without one: dicts and lists
    for i, opt in enumerate(ORBAX_OPTIMIZERS):
        _, _, full, nan = runs[str(i)]
        mine = restored[str(i)]
        resumed = train(opt, mine["params"], mine["state"], range(K, K + M), nan)
        assert_bit_identical(resumed, full)
        state, report = jopt.restore_state(
            opt, raw[str(i)]["state"], mine["params"], on_change="error"
        )
        assert not report.changed
        assert_bit_identical(state, mine["state"])


@pytest.mark.parametrize("opt", OPTIMIZERS, ids=IDS)
def test_flax_resume_is_bit_identical_to_an_uninterrupted_run(opt: Any) -> None:
    p0, stopped, full, nan = stopped_and_full(opt)
    data = serialization.to_bytes({"params": stopped[0], "state": stopped[1]})
    del stopped
    restored = serialization.from_bytes({"params": p0, "state": opt.init(p0)}, data)
    resumed = train(opt, restored["params"], restored["state"], range(K, K + M), nan)
    assert_bit_identical(resumed, full)
    # The state-dict form (msgpack_restore, to_state_dict) goes through restore_state.
    state, _ = jopt.restore_state(
        opt, serialization.msgpack_restore(data)["state"], p0, on_change="error"
    )
    assert_bit_identical(state, restored["state"])
    assert_bit_identical(
        serialization.from_state_dict(opt.init(p0), serialization.to_state_dict(state)), state
    )


SCHEDULES: list[Any] = [
    jopt.schedules.ExponentialDecay(0.1, 2, 0.5),
    jopt.schedules.ExponentialDecay(0.1, 2, 0.5, staircase=True),
    jopt.schedules.PiecewiseConstantDecay([2, 4], [0.1, 0.05, 0.01]),
    jopt.schedules.PolynomialDecay(0.1, 5, 0.01, power=2.0),
    jopt.schedules.InverseTimeDecay(0.1, 2, 0.5),
    jopt.schedules.CosineDecay(0.0, 5, warmup_target=0.1, warmup_steps=2),
    jopt.schedules.CosineDecayRestarts(0.1, 2),
    jopt.schedules.warmup(jopt.schedules.CosineDecay(0.1, 5), 2),
    jopt.schedules.join([jopt.schedules.constant(0.1), jopt.schedules.CosineDecay(0.1, 4)], [2]),
    jopt.schedules.constant(0.1),
    jopt.schedules.OneCycle(0.1, 8),
    jopt.schedules.CyclicLR(0.01, 0.1, 2, mode="triangular2"),
    jopt.schedules.StepDecay(0.1, 2),
    jopt.schedules.MultiStepDecay(0.1, [2, 4]),
    jopt.schedules.WarmupStableDecay(0.1, 2, 2, 4, 0.01, "1-sqrt"),
]


def test_every_schedule_class_is_checked() -> None:
    classes = {
        v
        for v in vars(jopt.schedules).values()
        if inspect.isclass(v)
        and issubclass(v, LearningRateSchedule)
        and v is not LearningRateSchedule
    }
    assert classes == {type(s) for s in SCHEDULES}


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: repr(s)[:50])
def test_a_resumed_schedule_gives_step_ks_rate(schedule: Any) -> None:
    opt = jopt.SGD(schedule, momentum=0.9, decay=0.01)
    p0 = params0()
    full = train(opt, p0, opt.init(p0), range(K + M), nan=False)
    stopped = train(opt, p0, opt.init(p0), range(K), nan=False)
    data = serialization.to_bytes({"params": stopped[0], "state": stopped[1]})
    restored = serialization.from_bytes({"params": p0, "state": opt.init(p0)}, data)
    # Step k's rate: the schedule at k, with tf.keras 2's decay lr / (1 + decay * k).
    expected = np.float32(schedule(K)) / np.float32(1 + 0.01 * K)
    np.testing.assert_allclose(float(opt.lr(restored["state"])), expected, rtol=1e-6)
    assert float(opt.lr(restored["state"])) == float(opt.lr(stopped[1]))
    assert_bit_identical(
        train(opt, restored["params"], restored["state"], range(K, K + M), nan=False), full
    )


def test_restored_live_hyperparameters_win_over_the_constructors() -> None:
    """The constructor gives the initial values; a restored state resumes with its own."""
    p0 = params0()
    saved = jopt.set_hyperparams(jopt.Adam(0.05).init(p0), learning_rate=0.002, beta_1=0.8)
    state, _ = jopt.restore_state(jopt.Adam(0.1), serialization.to_state_dict(saved), p0)
    assert float(jopt.Adam(0.1).lr(state)) == float(np.float32(0.002))
    assert float(state.hyperparams["beta_1"]) == float(np.float32(0.8))


# ---- a state from a differently configured optimizer ---------------------------------

MISMATCHES = [
    (jopt.Adam(), jopt.Adam(amsgrad=True), r"slots \['momentum', 'velocity'\]"),
    (jopt.Adam(), jopt.AdamW(), r"hyperparams .*'weight_decay'"),
    (jopt.Adam(), jopt.Nadam(), r"scalars \[\] but .* holds \['u_product'\]"),
    (jopt.SGD(momentum=0.9), jopt.SGD(), r"hyperparams .*'momentum'"),
    (jopt.Adam(), jopt.Adam(use_ema=True), r"hyperparams .*'ema_momentum'"),
    (
        jopt.Adam(),
        jopt.SkipNonFinite(jopt.Adam()),
        r"holds entries \['hyperparams', .*\] but SkipNonFinite.* holds \['inner', 'skipped'\]",
    ),
    (jopt.SkipNonFinite(jopt.Adam()), jopt.Adam(), "holds an OptimizerState"),
    (jopt.chain(jopt.clip_by_norm(1.0), jopt.Adam()), jopt.chain(jopt.Adam()), "entries"),
    (
        jopt.partition({"a": jopt.Adam(), "b": jopt.SGD()}, [("bias", "b")], default="a"),
        jopt.partition({"a": jopt.Adam(), "c": jopt.SGD()}, [("bias", "c")], default="a"),
        r"state\.groups: .*\['a', 'b'\]",
    ),
]


@pytest.mark.parametrize(
    ("saved_by", "opt", "pattern"), MISMATCHES, ids=[f"{i}" for i in range(len(MISMATCHES))]
)
def test_a_state_of_another_configuration_is_refused_clearly(
    saved_by: Any, opt: Any, pattern: str
) -> None:
    p0 = params0()
    saved = saved_by.init(p0)
    for form in (saved, serialization.to_state_dict(saved)):
        with pytest.raises(ValueError, match="differently configured optimizer") as info:
            jopt.restore_state(opt, form, p0)
        assert info.match(pattern)
    # jopt's own update refuses it as well (flax's from_bytes would silently drop the
    # saved momentum of SGD(momentum=0.9) restored into SGD(): check with restore_state).
    with pytest.raises((TypeError, ValueError)):
        jopt.apply_gradients(opt, p0, saved, p0)


def test_a_non_slot_value_of_another_shape_or_dtype_is_refused_naming_it() -> None:
    p0 = params0()
    opt = jopt.Adam()
    saved = serialization.to_state_dict(opt.init(p0))
    saved["step"] = np.zeros(4, np.int32)  # a sweep's stacked step
    with pytest.raises(ValueError, match=r"state\.step has shape \(4,\) .* sweep"):
        jopt.restore_state(opt, saved, p0)
    saved["step"] = np.float32(3.0)
    with pytest.raises(ValueError, match=r"state\.step has dtype float32 .* int32"):
        jopt.restore_state(opt, saved, p0)
    with pytest.raises(TypeError, match="on_change"):
        jopt.restore_state(opt, opt.init(p0), p0, on_change="raise")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a transformation with init and update"):
        jopt.restore_state("adam", opt.init(p0), p0)  # type: ignore[arg-type]


# ---- a changed model -----------------------------------------------------------------


def mlp(params: dict[str, Any], x: jax.Array) -> jax.Array:
    for name in sorted(params):
        x = x @ params[name]["kernel"] + params[name]["bias"]
        if name != sorted(params)[-1]:
            x = jnp.tanh(x)
    return x


def loss(params: dict[str, Any], x: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.mean((mlp(params, x) - y) ** 2)


@jax.jit
def grad_fn(params: dict[str, Any], x: jax.Array, y: jax.Array) -> Any:
    return jax.grad(loss)(params, x, y)


def layer(rng: np.random.Generator, n_in: int, n_out: int) -> dict[str, np.ndarray]:
    kernel = rng.standard_normal((n_in, n_out)).astype(np.float32) / np.sqrt(n_in)
    return {"kernel": kernel, "bias": np.zeros(n_out, np.float32)}


def test_add_a_layer_to_a_trained_model_and_resume(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4)).astype(np.float32)
    y = np.sin(x[:, :1]) + 0.5 * x[:, 1:2]
    x, y = jnp.asarray(x), jnp.asarray(y)
    params = jax.device_put({"dense_0": layer(rng, 4, 8), "dense_1": layer(rng, 8, 1)})
    opt = jopt.Adam(0.01)
    state = opt.init(params)
    for _ in range(20):
        params, state = opt.apply_gradients(grad_fn(params, x, y), state, params)
    save(tmp_path / "ckpt", {"params": params, "state": state})

    # The new model: the trained layers, and a new one on top of them.
    saved = restore(tmp_path / "ckpt")  # no target: the saved structure, whatever it was
    new_params = {**saved["params"], "dense_2": jax.device_put(layer(rng, 1, 1))}
    with pytest.warns(
        UserWarning,
        match=r"new \(fresh slots\): \['dense_2'\]\['bias'\], "
        r"\['dense_2'\]\['kernel'\]",
    ):
        new_state, report = jopt.restore_state(opt, saved["state"], new_params)
    assert report.new == ("['dense_2']['bias']", "['dense_2']['kernel']")
    assert set(report.kept) == {f"['dense_{i}']['{n}']" for i in (0, 1) for n in ("bias", "kernel")}
    assert report.dropped == report.reshaped == report.recast == report.moved == ()
    assert int(new_state.step) == 20
    for slot in ("momentum", "velocity"):
        for name in ("dense_0", "dense_1"):
            assert_bit_identical(new_state.slots[slot][name], state.slots[slot][name])
        for leaf in ("kernel", "bias"):
            np.testing.assert_array_equal(new_state.slots[slot]["dense_2"][leaf], 0.0)

    # The next step is Keras's Adam rule on the restored slots, step 21 (NumPy oracle).
    g = grad_fn(new_params, x, y)
    after, _ = opt.apply_gradients(g, new_state, new_params)
    t = 21
    for name in ("dense_0", "dense_2"):
        for leaf in ("kernel", "bias"):
            gi = np.asarray(g[name][leaf], np.float64)
            m = np.asarray(new_state.slots["momentum"][name][leaf], np.float64)
            v = np.asarray(new_state.slots["velocity"][name][leaf], np.float64)
            m, v = m + (gi - m) * 0.1, v + (gi**2 - v) * 0.001
            alpha = 0.01 * np.sqrt(1 - 0.999**t) / (1 - 0.9**t)
            expected = np.asarray(new_params[name][leaf], np.float64) - alpha * m / (
                np.sqrt(v) + 1e-7
            )
            np.testing.assert_allclose(after[name][leaf], expected, rtol=2e-6, atol=1e-7)

    # And training goes on: the bigger model's loss falls from where it starts.
    loss_fn = jax.jit(loss)
    start = float(loss_fn(new_params, x, y))
    for _ in range(30):
        new_params, new_state = opt.apply_gradients(
            grad_fn(new_params, x, y), new_state, new_params
        )
    end = float(loss_fn(new_params, x, y))
    assert np.isfinite(end) and end < start


def test_dropped_reshaped_recast_and_moved_paths_are_reported() -> None:
    params = {"a": jnp.ones(3), "b": jnp.ones((2, 2)), "c": jnp.ones(2), "d": jnp.ones(2)}
    opt = jopt.Adam(0.1)
    state = opt.apply_gradients(params, opt.init(params), params)[1]
    new = {"a": jnp.ones(3), "b": jnp.ones((2, 3)), "d": jnp.ones(2, jnp.bfloat16)}
    with pytest.raises(ValueError, match=r"dropped .*: \['c'\]") as info:
        jopt.restore_state(opt, state, new, on_change="error")
    assert info.match(r"reshaped \(fresh slots\): \['b'\] \(saved \(2, 2\), now \(2, 3\)\)")
    assert info.match(r"recast .*: \['d'\] \(saved float32, now bfloat16\)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restored, report = jopt.restore_state(opt, state, new, on_change="ignore")
    assert (report.kept, report.dropped, report.reshaped, report.recast) == (
        ("['a']",),
        ("['c']",),
        ("['b']",),
        ("['d']",),
    )
    np.testing.assert_array_equal(restored.slots["velocity"]["b"], np.zeros((2, 3)))
    assert restored.slots["velocity"]["d"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(
        restored.slots["velocity"]["d"],
        np.asarray(state.slots["velocity"]["d"]).astype(jnp.bfloat16),
    )

    # A leaf that changed partition group starts fresh in its new group.
    def tx(rule: list[tuple[str, str]]) -> Any:
        return jopt.partition(
            {"adam": jopt.Adam(0.1), "sgd": jopt.SGD(0.1, momentum=0.9)}, rule, default="adam"
        )

    before = tx([("c", "sgd")])
    state = before.apply_gradients(params, before.init(params), params)[1]
    after = tx([("d", "sgd")])
    moved, report = jopt.restore_state(after, state, params, on_change="ignore")
    assert set(report.moved) == {"['c']", "['d']"}
    np.testing.assert_array_equal(moved.groups["sgd"].slots["momentum"]["d"], np.zeros(2))


def test_fresh_ema_and_master_weights_of_a_new_leaf_start_at_its_value() -> None:
    opt = jopt.Adam(0.1, use_ema=True, master_weights=True)
    params = {"a": jnp.ones(2, jnp.bfloat16)}
    state = opt.apply_gradients(params, opt.init(params), params)[1]
    new = {**params, "b": jnp.array([3.0, 4.0], jnp.bfloat16)}
    restored, _ = jopt.restore_state(opt, state, new, on_change="ignore")
    np.testing.assert_array_equal(restored.slots["average"]["b"], np.array([3.0, 4.0]))
    assert restored.slots["master_weights"]["b"].dtype == jnp.float32
    np.testing.assert_array_equal(restored.slots["master_weights"]["b"], np.array([3.0, 4.0]))
    assert_bit_identical(restored.slots["average"]["a"], state.slots["average"]["a"])
