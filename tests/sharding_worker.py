"""The checks of tests/test_sharding.py, run in a process with 8 simulated CPU devices.

``python -m tests.sharding_worker OUT.json`` (with
``XLA_FLAGS=--xla_force_host_platform_device_count=8``) runs every check in
:data:`CHECKS` and writes ``{name: "ok" or the failure's traceback}``; the rest of the
suite keeps its one device. The oracle for every number is the same optimizer run on
one device with unsharded arrays: sharding must not change a bit of an elementwise rule.
"""

from __future__ import annotations

import functools
import json
import re
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import jopt
from jopt import sharding

CHECKS: dict[str, Callable[[], None]] = {}
FIGURES: dict[str, Any] = {}  # measurements for the report, not assertions
STEPS = 3


def check(fn: Callable[[], None]) -> Callable[[], None]:
    CHECKS[fn.__name__] = fn
    return fn


# ---- the model, its layouts, the optimizers ---------------------------------------------

SHAPES = {
    "dense1": {"kernel": (16, 8), "bias": (8,)},
    "dense2": {"kernel": (8, 4), "bias": (4,)},
    "scale": (),
}

# Each layout: mesh shape and axis names, and the spec of each param leaf.
LAYOUTS: dict[str, tuple[tuple[int, ...], tuple[str, ...], dict[str, Any]]] = {
    # Data parallel: params replicated, the batch split (grads arrive replicated).
    "dp-1d": ((8,), ("data",), {}),
    # Fully sharded params over the data axis (FSDP-like).
    "fsdp-1d": (
        (8,),
        ("data",),
        {"dense1": {"kernel": P("data", None), "bias": P("data")}, "dense2": {"kernel": P("data")}},
    ),
    # Model (tensor) parallel: Megatron's column then row split.
    "tp-1d": (
        (8,),
        ("model",),
        {
            "dense1": {"kernel": P(None, "model"), "bias": P("model")},
            "dense2": {"kernel": P("model", None)},
        },
    ),
    # Data x model: replicated over "data", split over "model".
    "dp-tp-2d": (
        (4, 2),
        ("data", "model"),
        {
            "dense1": {"kernel": P(None, "model"), "bias": P("model")},
            "dense2": {"kernel": P("model", None)},
        },
    ),
    # Every leaf split over both axes where it divides.
    "fsdp-tp-2d": (
        (4, 2),
        ("data", "model"),
        {
            "dense1": {"kernel": P("data", "model"), "bias": P("model")},
            "dense2": {"kernel": P("data", "model"), "bias": P("model")},
        },
    ),
}

# Elementwise rules: the foundation's every variant, then a sample of the catalogue.
FOUNDATION: dict[str, Callable[[], Any]] = {
    "SGD": lambda: jopt.SGD(0.1),
    "SGD-momentum": lambda: jopt.SGD(0.1, momentum=0.9),
    "SGD-nesterov": lambda: jopt.SGD(0.1, momentum=0.9, nesterov=True),
    "RMSprop": lambda: jopt.RMSprop(0.01),
    "RMSprop-momentum": lambda: jopt.RMSprop(0.01, momentum=0.9),
    "RMSprop-centered": lambda: jopt.RMSprop(0.01, centered=True),
    "RMSprop-centered-momentum": lambda: jopt.RMSprop(0.01, momentum=0.5, centered=True),
    "Adam": lambda: jopt.Adam(0.01),
    "Adam-amsgrad": lambda: jopt.Adam(0.01, amsgrad=True),
}
ELEMENTWISE: dict[str, Callable[[], Any]] = FOUNDATION | {
    "Adam-ema-wd-accum": lambda: jopt.Adam(
        0.01, use_ema=True, weight_decay=0.1, gradient_accumulation_steps=2
    ),
    "AdamW": lambda: jopt.AdamW(0.01),
    "Nadam": lambda: jopt.Nadam(0.01),
    "Lion": lambda: jopt.Lion(0.01),
    "Adagrad": lambda: jopt.Adagrad(0.1),
    "Ftrl": lambda: jopt.Ftrl(0.1, l1_regularization_strength=0.01),
    "ScheduleFreeAdamW": lambda: jopt.ScheduleFreeAdamW(0.01),
    "partition": lambda: jopt.partition(
        {"adam": jopt.Adam(0.01), "sgd": jopt.SGD(0.1, momentum=0.9)},
        [(r"bias", "sgd")],
        default="adam",
    ),
}
# Rules that reduce over a leaf or over the tree: a sharded leaf needs a collective.
REDUCING: dict[str, Callable[[], Any]] = {
    "Adam-global_clipnorm": lambda: jopt.Adam(0.01, global_clipnorm=0.5),
    "chain-clip_by_global_norm": lambda: jopt.chain(jopt.clip_by_global_norm(0.5), jopt.SGD(0.1)),
    # Whether every grad is finite is one answer for the whole tree.
    "LossScaleOptimizer": lambda: jopt.LossScaleOptimizer(jopt.Adam(0.01)),
    "Lamb": lambda: jopt.Lamb(0.01),
    "Adafactor": lambda: jopt.Adafactor(0.01),
    "Muon": lambda: jopt.Muon(0.01),
}
ALL = ELEMENTWISE | REDUCING

# An instruction line: "%name = TYPE op(", TYPE a tuple "(f32[], f32[])" or "f32[8,4]{1,0}".
COLLECTIVE = re.compile(
    r"^\s*\S+ = (\(.*?\)|\S+) "
    r"(all-reduce|all-gather|reduce-scatter|collective-permute|all-to-all)(?:-start)?\(",
    re.M,
)
SCALARS = re.compile(r"\(?(f32|pred)\[\](, (f32|pred)\[\])*\)?")
# Rules whose only communication is scalars: norms, all-finite checks, trust ratios.
SCALAR_REDUCING = (
    "Adam-global_clipnorm",
    "chain-clip_by_global_norm",
    "LossScaleOptimizer",
    "Lamb",
)


def collectives(compiled_text: str | None) -> list[tuple[str, str]]:
    """``[(result type, collective), ...]`` in a compiled HLO module's text."""
    found = COLLECTIVE.findall(re.sub(r"/\*.*?\*/", "", compiled_text or ""))  # /*index=5*/
    return [(result, op) for result, op, *_ in found]


def make_mesh(layout: str, kind: AxisType = AxisType.Auto) -> Mesh:
    shape, names, _ = LAYOUTS[layout]
    return jax.make_mesh(shape, names, axis_types=(kind,) * len(names))


def param_specs(layout: str) -> Any:
    specs = LAYOUTS[layout][2]

    def spec(path: Any, _: Any) -> P:
        node: Any = specs
        for key in path:
            node = node.get(key.key, {}) if isinstance(node, dict) else node
        return node if isinstance(node, P) else P()

    return jax.tree_util.tree_map_with_path(spec, SHAPES, is_leaf=lambda x: isinstance(x, tuple))


def host_values(seed: int, scale: float = 1.0) -> Any:
    rng = np.random.default_rng(seed)
    return jax.tree.map(
        lambda s: (scale * rng.normal(size=s)).astype(np.float32),
        SHAPES,
        is_leaf=lambda x: isinstance(x, tuple),
    )


def placed(values: Any, mesh: Mesh, specs: Any) -> Any:
    return jax.tree.map(lambda v, s: jax.device_put(v, NamedSharding(mesh, s)), values, specs)


def shardings(tree: Any) -> Any:
    return jax.tree.map(lambda x: x.sharding, tree)


def assert_same_layout(got: Any, want: Any, what: str) -> None:
    """Every leaf of ``got`` has the sharding of the same leaf of ``want`` (equivalent
    shardings: ``P('data')`` and ``P('data', None)`` are one layout)."""
    flat_got = jax.tree_util.tree_flatten_with_path(got)[0]
    flat_want = jax.tree.leaves(want)
    assert len(flat_got) == len(flat_want), what
    for (path, x), y in zip(flat_got, flat_want, strict=True):
        y_sharding = y.sharding if isinstance(y, jax.Array) else y
        assert x.sharding.is_equivalent_to(y_sharding, x.ndim), (
            f"{what}{jax.tree_util.keystr(path)}: {x.sharding} is not {y_sharding}"
        )


@functools.cache
def single_device_run(name: str) -> tuple[Any, Any]:
    """The oracle: the same steps on one device, unsharded arrays."""
    tx = ALL[name]()
    device = jax.devices()[0]
    params = jax.device_put(host_values(0), device)
    state = tx.init(params)
    for t in range(STEPS):
        grads = jax.device_put(host_values(t + 1), device)
        params, state = jopt.apply_gradients(tx, grads, state, params)
    return params, state


def assert_numbers_equal(got: Any, name: str, what: str) -> None:
    """Equal to the single-device run, to float32 rounding.

    Most cases are bit-identical (counted in FIGURES). XLA compiles a shard's smaller loop
    differently from the whole array's (vector width, fused multiply-adds), which can move
    a sqrt or a quotient by one ulp, and a norm split over devices adds in another order:
    rtol 1e-6 (8 ulp) and atol 1e-7 (one ulp of the unit-scale params, for elements that
    cancel to near zero).
    """
    want = single_device_run(name)
    exact = True
    for (path, x), y in zip(
        jax.tree_util.tree_flatten_with_path(got)[0], jax.tree.leaves(want), strict=True
    ):
        x, y = np.asarray(x), np.asarray(y)
        np.testing.assert_allclose(
            x, y, rtol=1e-6, atol=1e-7, err_msg=f"{what}{jax.tree_util.keystr(path)}"
        )
        exact = exact and np.array_equal(x, y)
    FIGURES.setdefault("bit-identical to one device", []).append(exact)


def device_bytes(tree: Any) -> dict[Any, int]:
    """Bytes each device holds of the arrays in ``tree``."""
    held: dict[Any, int] = {}
    for leaf in jax.tree.leaves(tree):
        for shard in leaf.addressable_shards:
            held[shard.device] = held.get(shard.device, 0) + shard.data.nbytes
    return held


# ---- the checks ---------------------------------------------------------------------------


def _params_like(node: Any, params: Any) -> list[Any] | None:
    """``node``'s leaves in the params' order when it is shaped like the params (a slot,
    an EMA, a group's slots with ``None`` for others' leaves), else None."""
    if isinstance(node, jax.Array):
        return None
    try:
        return jax.tree.structure(params).flatten_up_to(node)
    except (ValueError, TypeError):
        return None


def _init_keeps_param_shardings(layout: str) -> None:
    mesh = make_mesh(layout)
    params = placed(host_values(0), mesh, param_specs(layout))
    param_leaves = jax.tree.leaves(params)
    everywhere = set(mesh.devices.flat)
    for name, make in ALL.items():
        tx = make()
        state = tx.init(params)
        # The oracle is the params' own layout: every params-shaped subtree of the state
        # (slots, EMA, a group's slots) has it; everything else is replicated on the mesh.
        subtrees = jax.tree.leaves(state, is_leaf=lambda n: _params_like(n, params) is not None)
        for node in subtrees:
            for x, p in zip(_params_like(node, params) or [], param_leaves, strict=False):
                if x is not None and x.shape == p.shape:
                    assert x.sharding.is_equivalent_to(p.sharding, p.ndim), (name, x.sharding, p)
        for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
            where = f"{layout} {name} state{jax.tree_util.keystr(path)}"
            assert leaf.sharding.device_set == everywhere, f"{where} is on {leaf.sharding}"
            if leaf.ndim == 0:
                assert leaf.sharding.is_fully_replicated, f"{where}: {leaf.sharding}"
        # state_shardings predicts the same layout from shapes alone.
        assert_same_layout(state, sharding.state_shardings(tx, params), f"{layout} {name}")


# jopt.apply_gradients inside a jit, as in a train step: the very program its eager form
# compiles and caches (it traces the same step), lowered once for its HLO and then run.
STEP = jax.jit(jopt.apply_gradients, static_argnums=0)


def _steps_keep_shardings_and_numbers(
    layout: str, optimizers: dict[str, Callable[[], Any]]
) -> None:
    """Three steps: the layout of params and state is kept, the numbers are one device's,
    and an elementwise rule's compiled step has no collective at all."""
    mesh = make_mesh(layout)
    specs = param_specs(layout)
    for name, make in optimizers.items():
        tx = make()
        params = placed(host_values(0), mesh, specs)
        state = tx.init(params)
        layout_in = shardings((params, state))
        grads = placed(host_values(1), mesh, specs)
        compiled = STEP.lower(tx, grads, state, params).compile()
        found = collectives(compiled.as_text())
        if name in ELEMENTWISE:
            assert not found, f"{layout} {name}: {found}"
        else:
            FIGURES.setdefault("collectives", {})[f"{layout} {name}"] = found
        if name in SCALAR_REDUCING:
            assert all(op == "all-reduce" and SCALARS.fullmatch(r) for r, op in found), found
        for t in range(STEPS):
            grads = placed(host_values(t + 1), mesh, specs)
            params, state = compiled(grads, state, params)  # tx is static
            assert_same_layout((params, state), layout_in, f"{layout} {name} step {t} ")
        assert_numbers_equal((params, state), name, f"{layout} {name} ")


@check
def eager_apply_gradients_keeps_shardings() -> None:
    """The eager, cached ``opt.apply_gradients`` keeps the layout too, donating or not
    (donated, the step updates each device's shards in place)."""
    for layout, donate in (("tp-1d", False), ("fsdp-tp-2d", False), ("fsdp-tp-2d", True)):
        mesh = make_mesh(layout)
        specs = param_specs(layout)
        tx = ALL["Adam-amsgrad"]()
        params = placed(host_values(0), mesh, specs)
        state = tx.init(params)
        layout_in = shardings((params, state))
        for t in range(STEPS):
            grads = placed(host_values(t + 1), mesh, specs)
            old = params
            params, state = tx.apply_gradients(grads, state, params, donate=donate)
            assert_same_layout((params, state), layout_in, f"{layout} step {t} ")
            assert old["dense1"]["kernel"].is_deleted() == donate, (layout, donate)
        assert_numbers_equal((params, state), "Adam-amsgrad", f"{layout} donate={donate} ")


for _layout in LAYOUTS:
    CHECKS[f"init_keeps_param_shardings[{_layout}]"] = lambda layout=_layout: (
        _init_keeps_param_shardings(layout)
    )
    # Every variant of the foundation on a 1-D and a 2-D model-parallel layout; the rest
    # of the sample on the richest layout; Adam and a global norm on the 1-D others.
    _three = {k: ALL[k] for k in ("SGD-nesterov", "RMSprop-centered-momentum", "Adam-amsgrad")}
    _optimizers = {
        "fsdp-tp-2d": _three | {k: v for k, v in ALL.items() if k not in FOUNDATION},
        "tp-1d": FOUNDATION | {"Adam-global_clipnorm": REDUCING["Adam-global_clipnorm"]},
        "dp-tp-2d": FOUNDATION | {"Adam-global_clipnorm": REDUCING["Adam-global_clipnorm"]},
    }.get(_layout, {k: ALL[k] for k in ("Adam-amsgrad", "Adam-global_clipnorm")})
    CHECKS[f"steps_keep_shardings_and_numbers[{_layout}]"] = (
        lambda layout=_layout, optimizers=_optimizers: _steps_keep_shardings_and_numbers(
            layout, optimizers
        )
    )


@check
def update_keeps_shardings() -> None:
    """``update`` (jitted, no out_shardings) gives updates laid out as the params, and
    ``apply_updates`` keeps them."""
    mesh = make_mesh("tp-1d")
    specs = param_specs("tp-1d")
    params = placed(host_values(0), mesh, specs)
    grads = placed(host_values(1), mesh, specs)
    for name in ("SGD-nesterov", "RMSprop-centered-momentum", "Adam-amsgrad"):
        tx = ALL[name]()
        state = tx.init(params)
        update = jax.jit(tx.update).lower(grads, state, params).compile()
        assert not collectives(update.as_text()), name
        updates, new_state = update(grads, state, params)
        assert_same_layout(updates, params, f"{name} updates")
        assert_same_layout(new_state, state, f"{name} state")
        assert_same_layout(jopt.apply_updates(params, updates), params, f"{name} apply_updates")


@check
def int8_slots_follow_row_shards() -> None:
    """8-bit slots of a row-sharded param: codes and block scales are split as the param
    (each device's rows are whole blocks, so it quantizes its own shard), and the run is
    bit-identical to one device's."""
    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))
    tx = jopt.Adam(0.01, slot_dtypes={"momentum": "int8", "velocity": "int8"})
    rng = np.random.default_rng(0)
    host = [{"w": rng.standard_normal((128, 64)).astype(np.float32)} for _ in range(STEPS + 1)]
    runs = []
    for where in (None, NamedSharding(mesh, P("data", None))):
        put = (
            (lambda x: jnp.asarray(x))
            if where is None
            else functools.partial(jax.device_put, device=where)
        )
        params = jax.tree.map(put, host[0])
        state = tx.init(params)
        for t in range(STEPS):
            params, state = tx.apply_gradients(jax.tree.map(put, host[t + 1]), state, params)
        runs.append((params, state))
    q = runs[1][1].slots["velocity"]["w"]
    assert q.codes.sharding.spec == P("data", None), q.codes.sharding
    assert q.scale.sharding.spec == P("data"), q.scale.sharding
    for a, b in zip(jax.tree.leaves(runs[0]), jax.tree.leaves(runs[1]), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@check
def int8_slots_with_zero_1_on_an_explicit_mesh() -> None:
    """ZeRO-1 (``zero_axis="data"``) of replicated params on an explicit-axes mesh: the
    8-bit codes are split over the data axis, and the numbers are one device's (a leaf
    split over explicit axes is gathered to quantize it)."""
    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Explicit,))
    tx = jopt.Adam(0.01, slot_dtypes={"momentum": "int8", "velocity": "int8"})
    rng = np.random.default_rng(1)
    host = [{"w": rng.standard_normal((128, 64)).astype(np.float32)} for _ in range(STEPS + 1)]
    params, state = jax.tree.map(jnp.asarray, host[0]), tx.init(jax.tree.map(jnp.asarray, host[0]))
    rep = NamedSharding(mesh, P())
    zp = jax.device_put(host[0], rep)
    zs = sharding.init_sharded(tx, zp, zero_axis="data")
    for t in range(STEPS):
        params, state = tx.apply_gradients(jax.tree.map(jnp.asarray, host[t + 1]), state, params)
        zp, zs = tx.apply_gradients(jax.device_put(host[t + 1], rep), zs, zp)
    assert zs.slots["momentum"]["w"].codes.sharding.spec == P("data", None)
    for a, b in zip(jax.tree.leaves((params, state)), jax.tree.leaves((zp, zs)), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _compiled_step(tx: Any, params: Any, grads: Any, state: Any) -> str:
    return STEP.lower(tx, grads, state, params).compile().as_text()


@check
def hlo_global_clipnorm_is_one_scalar_all_reduce() -> None:
    """The global norm sums each device's partial sums of squares: one all-reduce of
    scalars (a tuple of them, one per split leaf) per mesh axis the params are split
    over, nothing else; none when every grad is whole on every device."""
    expected = {"dp-1d": 0, "fsdp-1d": 1, "tp-1d": 1, "dp-tp-2d": 1, "fsdp-tp-2d": 2}
    for layout, count in expected.items():
        mesh = make_mesh(layout)
        specs = param_specs(layout)
        params = placed(host_values(0), mesh, specs)
        grads = placed(host_values(1), mesh, specs)
        for name in ("Adam-global_clipnorm", "chain-clip_by_global_norm"):
            tx = REDUCING[name]()
            found = collectives(_compiled_step(tx, params, grads, tx.init(params)))
            assert len(found) == count, f"{layout} {name}: {found}"
            for result, op in found:
                assert op == "all-reduce", (layout, name, found)
                assert SCALARS.fullmatch(result), (layout, name, found)


def _padded(spec: P, ndim: int) -> tuple[Any, ...]:
    return tuple(spec) + (None,) * (ndim - len(spec))


def _names(entry: Any) -> tuple[str, ...]:
    return () if entry is None else (entry,) if isinstance(entry, str) else tuple(entry)


def _zero1(layout: str, axis_size: int) -> None:
    mesh = make_mesh(layout)
    specs = param_specs(layout)
    for name in ("SGD-nesterov", "Adam-amsgrad", "Adam-global_clipnorm"):
        tx = ALL[name]()
        params = placed(host_values(0), mesh, specs)
        plain = tx.init(params)
        state = sharding.init_sharded(tx, params, zero_axis="data")
        # Each slot leaf that some dimension lets split over "data" (with the axes it
        # is split over already) is split: each device holds 1/axis_size of its shard.
        for (path, leaf), whole in zip(
            jax.tree_util.tree_flatten_with_path(state.slots)[0],
            jax.tree.leaves(plain.slots),
            strict=True,
        ):
            where = f"{layout} {name} slots{jax.tree_util.keystr(path)}"
            spec = list(whole.sharding.spec) + [None] * leaf.ndim
            splittable = any(
                n % (axis_size * int(np.prod([mesh.shape[a] for a in _names(spec[d])]))) == 0
                for d, n in enumerate(leaf.shape)
            )
            ours, theirs = leaf.addressable_shards[0].data, whole.addressable_shards[0].data
            if splittable:
                assert "data" in str(leaf.sharding.spec), f"{where}: {leaf.sharding.spec}"
                assert ours.size * axis_size == theirs.size, (where, ours.shape, theirs.shape)
            else:
                assert leaf.sharding.is_equivalent_to(whole.sharding, leaf.ndim), where
        before, after = device_bytes(plain.slots), device_bytes(state.slots)
        FIGURES[f"{layout} {name} slot bytes per device"] = (
            max(before.values()),
            max(after.values()),
        )
        param_layout, state_layout = shardings(params), shardings(state)
        step = jax.jit(
            lambda g, s, p, tx=tx: jopt.apply_gradients(tx, g, s, p),
            out_shardings=(param_layout, state_layout),
        )
        for t in range(STEPS):
            grads = placed(host_values(t + 1), mesh, specs)
            params, state = step(grads, state, params)
            assert_same_layout((params, state), (param_layout, state_layout), f"{layout} {name} ")
        assert_numbers_equal((params, state), name, f"{layout} {name} ")
        # The eager, cached apply_gradients keeps both layouts with no out_shardings.
        eager_p, eager_s = (
            placed(host_values(0), mesh, specs),
            sharding.init_sharded(tx, placed(host_values(0), mesh, specs), zero_axis="data"),
        )
        for t in range(2):
            grads = placed(host_values(t + 1), mesh, specs)
            eager_p, eager_s = tx.apply_gradients(grads, eager_s, eager_p)
            assert_same_layout(
                (eager_p, eager_s), (param_layout, state_layout), f"{layout} {name} eager "
            )
        # ZeRO-1's communication: the updated params are gathered, at most one per leaf
        # split; grads arrive whole, so nothing else, but for a global norm over params
        # split over "model" (its partial sums of squares: scalars).
        found = collectives(step.lower(grads, state, params).compile().as_text())
        gathers = [r for r, op in found if op == "all-gather"]
        others = [(r, op) for r, op in found if op != "all-gather"]
        split = sum(
            "data" in str(leaf.sharding.spec)
            for leaf in jax.tree.leaves(state.slots[tx.slot_names()[0]])
        )
        assert 0 < len(gathers) <= split, f"{layout} {name}: {found}"
        if name in ELEMENTWISE or layout == "dp-1d":
            assert not others, f"{layout} {name}: {found}"
        else:
            assert all(op == "all-reduce" and SCALARS.fullmatch(r) for r, op in others), found
        FIGURES.setdefault("zero-1 collectives", {})[f"{layout} {name}"] = found


@check
def zero1_1d_data_parallel() -> None:
    _zero1("dp-1d", 8)


@check
def zero1_2d_data_and_model_parallel() -> None:
    _zero1("dp-tp-2d", 4)


@check
def zero1_falls_back_to_replicated_when_nothing_divides() -> None:
    mesh = make_mesh("dp-1d")
    params = {"odd": jax.ShapeDtypeStruct((3, 5), jnp.float32, sharding=NamedSharding(mesh, P()))}
    got = sharding.state_shardings(jopt.Adam(), params, zero_axis="data")
    assert got.slots["velocity"]["odd"].spec == P(), got
    # The first divisible dimension is taken, and a dimension already split is kept.
    params = {
        "w": jax.ShapeDtypeStruct((3, 16), jnp.float32, sharding=NamedSharding(mesh, P())),
    }
    assert sharding.state_shardings(jopt.Adam(), params, zero_axis="data").slots["velocity"][
        "w"
    ].spec == P(None, "data")
    mesh2 = make_mesh("dp-tp-2d")
    params = {
        "w": jax.ShapeDtypeStruct((8, 8), jnp.float32, sharding=NamedSharding(mesh2, P("model")))
    }
    got = sharding.state_shardings(jopt.Adam(), params, zero_axis="data").slots["velocity"]["w"]
    assert got.spec == P("model", "data"), got


@check
def abstract_init_is_never_materialised_on_one_device() -> None:
    """A state of 2 x 512 MiB is planned from ShapeDtypeStructs: nothing is allocated, and
    the compiled init writes each device's 1/8 directly (per-device output = total / 8)."""
    mesh = make_mesh("fsdp-1d")
    big = {
        "a": jax.ShapeDtypeStruct(
            (8192, 16384), jnp.float32, sharding=NamedSharding(mesh, P("data"))
        ),
        "b": jax.ShapeDtypeStruct(
            (16384, 8192), jnp.float32, sharding=NamedSharding(mesh, P(None, "data"))
        ),
    }
    total_param_bytes = 2 * 8192 * 16384 * 4
    tx = jopt.Adam()
    shapes = jax.eval_shape(tx.init, big)
    assert shapes.slots["velocity"]["a"].shape == (8192, 16384)
    abstract = sharding.abstract_state(tx, big)
    assert abstract.slots["momentum"]["b"].sharding.spec == P(None, "data")
    assert abstract.step.sharding.spec == P()
    compiled = (
        jax.jit(tx.init, out_shardings=sharding.state_shardings(tx, big)).lower(big).compile()
    )
    memory = compiled.memory_analysis()
    two_slots = 2 * total_param_bytes
    assert memory.output_size_in_bytes < two_slots / 8 + 1024, memory
    assert memory.temp_size_in_bytes < 1024, memory
    # With explicit axes, eval_shape itself carries the shardings, equal to the plan.
    explicit = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Explicit,))
    small = {
        "w": jax.ShapeDtypeStruct((16, 4), jnp.float32, sharding=NamedSharding(explicit, P("data")))
    }
    shapes = jax.eval_shape(tx.init, small).slots
    planned = sharding.state_shardings(tx, small).slots
    for got, want in zip(jax.tree.leaves(shapes), jax.tree.leaves(planned), strict=True):
        assert _padded(got.sharding.spec, got.ndim) == _padded(want.spec, got.ndim), (got, want)
    # And for real: each device creates only its shard.
    mesh = make_mesh("fsdp-tp-2d")
    params = placed(host_values(0), mesh, param_specs("fsdp-tp-2d"))
    state = sharding.init_sharded(tx, params)
    kernel = state.slots["velocity"]["dense1"]["kernel"]
    assert {s.data.shape for s in kernel.addressable_shards} == {(4, 4)}
    np.testing.assert_array_equal(np.asarray(kernel), np.zeros((16, 8), np.float32))


@check
def explicit_axes() -> None:
    """Meshes with explicit axes (jax.make_mesh's default): the same layouts and numbers;
    a jitted init runs inside ``jax.set_mesh``, as JAX asks of explicit sharding."""
    mesh = make_mesh("fsdp-tp-2d", AxisType.Explicit)
    specs = param_specs("fsdp-tp-2d")
    for name in ("RMSprop-centered-momentum", "Adam-global_clipnorm"):
        tx = ALL[name]()
        params = placed(host_values(0), mesh, specs)
        state = tx.init(params)
        assert_same_layout(state, sharding.state_shardings(tx, params), f"explicit {name} init ")
        with jax.set_mesh(mesh):
            assert_same_layout(jax.jit(tx.init)(params), state, f"explicit {name} jit(init) ")
        layout_in = shardings((params, state))
        for t in range(STEPS):
            grads = placed(host_values(t + 1), mesh, specs)
            params, state = jopt.apply_gradients(tx, grads, state, params)
            assert_same_layout((params, state), layout_in, f"explicit {name} step {t} ")
        assert_numbers_equal((params, state), name, f"explicit {name} ")


@check
def docs_sharding_example_runs_on_8_devices() -> None:
    page = (Path(__file__).parent.parent / "docs" / "concepts" / "sharding.md").read_text()
    blocks = re.findall(r"```py\n(.*?)```", page, re.S)
    assert blocks, "no example in docs/concepts/sharding.md"
    namespace: dict[str, Any] = {}
    for block in blocks:
        exec(compile(block, "docs/concepts/sharding.md", "exec"), namespace)
    # It trained with ZeRO-1: Adam's moments split 8 ways, the params whole everywhere.
    state, params = namespace["state"], namespace["params"]
    assert int(state.step) == 1
    assert state.slots["velocity"]["w"].addressable_shards[0].data.shape == (64, 256)
    assert params["w"].sharding.is_fully_replicated
    assert float(jnp.abs(params["w"]).max()) > 0


def main(out: str) -> None:
    assert jax.device_count() == 8, f"run with 8 devices, got {jax.device_count()}"
    results = {}
    for name, fn in CHECKS.items():
        try:
            fn()
            results[name] = "ok"
        except Exception:  # each failure is reported by its own test
            results[name] = traceback.format_exc()
    Path(out).write_text(json.dumps({"results": results, "figures": FIGURES}))


if __name__ == "__main__":
    main(sys.argv[1])
