"""Who is timed: the optimizers (equal hyperparameters everywhere) and the libraries.

Every JAX contender is a :class:`Built`: a pure ``init(params) -> state`` and a pure
``step(params, state, grads) -> (params, state)`` that the harness jits itself (with and
without donation), so all JAX libraries are compiled, timed and measured the same way.

jopt variants are a registry of named builders, each taking a jopt optimizer. To time a
new layout, register it at the bottom of this module::

    def _bucketed(opt: jopt.Optimizer) -> Built:
        tx = jopt.layout.bucketed(opt)  # an (init, update) pair over the same params
        return Built(tx.init, user_step(tx, jopt.apply_updates))

    register_jopt_variant("jopt.bucketed", _bucketed)

:class:`Built`'s optional ``pack``/``unpack`` cover a packed-params mode. Every
registered variant is checked against Keras's rule before it is timed.

PyTorch (``torch.optim``, ``fused=True`` and ``foreach=True`` where torch has them on
CPU) and Keras 3's own JAX optimizers (``stateless_apply``) join when importable.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import numpy as np
import optax

import jopt

PyTree = Any
Step = Callable[[PyTree, PyTree, PyTree], tuple[PyTree, PyTree]]
Reference = Callable[[np.ndarray, dict[str, np.ndarray], int], tuple[np.ndarray, dict]]


# ---- the optimizers ---------------------------------------------------------------------


def _adam_reference(g: np.ndarray, s: dict, t: int) -> tuple[np.ndarray, dict]:
    """Keras 3's Adam in float64; betas rounded to float32 first, as Keras casts them."""
    lr, b1, b2, eps = (float(np.float32(x)) for x in (1e-3, 0.9, 0.999, 1e-7))
    m = s.get("m", 0.0) + (g - s.get("m", 0.0)) * (1 - 0.9)
    v = s.get("v", 0.0) + (g * g - s.get("v", 0.0)) * (1 - 0.999)
    alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
    return -(m * alpha) / (np.sqrt(v) + eps), {"m": m, "v": v}


def _sgd_reference(g: np.ndarray, s: dict, t: int) -> tuple[np.ndarray, dict]:
    """Keras 3's SGD with momentum: ``v = momentum * v - lr * g``, update ``v``."""
    del t
    v = float(np.float32(0.9)) * s.get("v", 0.0) - float(np.float32(0.01)) * g
    return v, {"v": v}


def _rmsprop_reference(g: np.ndarray, s: dict, t: int) -> tuple[np.ndarray, dict]:
    """Keras 3's RMSprop: ``v = rho v + (1 - rho) g^2``, update ``-lr g / sqrt(v + eps)``."""
    del t
    v = 0.9 * s.get("v", 0.0) + (1 - 0.9) * g * g
    return -float(np.float32(1e-3)) * g / np.sqrt(v + 1e-7), {"v": v}


@dataclass(frozen=True)
class Contest:
    """One optimizer, configured alike in every library, with its NumPy reference.

    ``torch``: the ``torch.optim`` class name and its keyword arguments (None: not timed
    against torch). ``torch_fused``: whether torch has ``fused=True`` for it on CPU.
    ``reference`` None: the libraries' rules differ on purpose (epsilon placement,
    defaults...), so the optimizer is timed only; jopt's numbers are tested against Keras.
    """

    name: str
    jopt: jopt.Optimizer
    optax: optax.GradientTransformation
    reference: Reference | None = None
    torch: tuple[str, dict[str, Any]] | None = None
    torch_fused: bool = False


def make_contests() -> list[Contest]:
    """Adam, SGD (momentum 0.9), RMSprop with equal hyperparameters, then the catalogue.

    Torch's rules, checked against Keras's before timing: Adam adds epsilon to
    ``sqrt(v / (1 - beta_2**t))`` (as optax does; Keras adds it to ``sqrt(v)``), RMSprop
    adds it outside the square root (Keras inside), and SGD keeps ``buf = m buf + g``,
    ``p -= lr buf`` (Keras ``v = m v - lr g``, ``p += v``: equal up to rounding).
    """
    return [
        Contest(
            "Adam",
            jopt.Adam(1e-3),
            optax.adam(1e-3, eps=1e-7),
            _adam_reference,
            ("Adam", {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-7}),
            torch_fused=True,
        ),
        Contest(
            "SGD",
            jopt.SGD(0.01, momentum=0.9),
            optax.sgd(0.01, momentum=0.9),
            _sgd_reference,
            ("SGD", {"lr": 0.01, "momentum": 0.9}),
            torch_fused=True,
        ),
        Contest(
            "RMSprop",
            jopt.RMSprop(1e-3),
            optax.rmsprop(1e-3, decay=0.9, eps=1e-7),
            _rmsprop_reference,
            ("RMSprop", {"lr": 1e-3, "alpha": 0.9, "eps": 1e-7}),
            torch_fused=False,  # torch 2.13 has no fused RMSprop
        ),
        # The rest of the catalogue that optax also has, configured alike (timing only).
        Contest("AdamW", jopt.AdamW(1e-3), optax.adamw(1e-3, eps=1e-7, weight_decay=0.004)),
        Contest("Adamax", jopt.Adamax(1e-3), optax.adamax(1e-3, eps=1e-7)),
        Contest("Nadam", jopt.Nadam(1e-3), optax.nadam(1e-3, eps=1e-7)),
        Contest("Lion", jopt.Lion(1e-3), optax.lion(1e-3, b1=0.9, b2=0.99)),
        Contest(
            "Adagrad",
            jopt.Adagrad(1e-3),
            optax.adagrad(1e-3, initial_accumulator_value=0.1, eps=1e-7),
        ),
        Contest("Adadelta", jopt.Adadelta(1e-3), optax.adadelta(1e-3, rho=0.95, eps=1e-7)),
        Contest("Lamb", jopt.Lamb(1e-3), optax.lamb(1e-3, eps=1e-6)),
        Contest("Adafactor", jopt.Adafactor(1e-3), optax.adafactor(1e-3)),
    ]


# ---- JAX contenders ---------------------------------------------------------------------


class Built(NamedTuple):
    """What a JAX contender gives the harness for one optimizer and one tree.

    ``init(params) -> state`` and ``step(params, state, grads) -> (params, state)`` are
    pure; the harness jits ``step``. ``pack`` (optional) maps a params-shaped tree to the
    contender's own layout and is applied, untimed, to params and grads before timing (a
    packed-params mode, where the user's gradients come packed too); ``unpack`` maps the
    contender's params back to the tree for the agreement check.
    """

    init: Callable[[PyTree], PyTree]
    step: Step
    pack: Callable[[PyTree], PyTree] | None = None
    unpack: Callable[[PyTree], PyTree] | None = None


def user_step(tx: Any, apply_updates: Callable[[PyTree, PyTree], PyTree]) -> Step:
    """The step a user writes; a new function object per call, so each jit starts cold."""

    def step(params: PyTree, state: PyTree, grads: PyTree) -> tuple[PyTree, PyTree]:
        updates, state = tx.update(grads, state, params)
        return apply_updates(params, updates), state

    return step


JoptVariant = Callable[[jopt.Optimizer], "Built | tuple"]
# name -> (builder, run by default)
JOPT_VARIANTS: dict[str, tuple[JoptVariant, bool]] = {}


def register_jopt_variant(name: str, build: JoptVariant, default: bool = True) -> None:
    """Adds a jopt contender: ``build(opt)`` returns :class:`Built` or ``(init, step[, ...])``.

    ``default=False`` keeps it out of a plain run; ``--contenders NAME,...`` selects it.
    """
    if not name.startswith("jopt"):
        raise ValueError(f"a jopt variant's name starts with 'jopt', got {name!r}")
    JOPT_VARIANTS[name] = (build, default)


def _jopt_apply(opt: jopt.Optimizer) -> Built:
    # What opt.apply_gradients compiles: Keras's arithmetic for the new params.
    return Built(opt.init, lambda p, s, g: opt.apply(g, s, p))


def _bucketed(opt: jopt.Optimizer) -> Built:
    # The state packed into flat buckets, the params the user's tree.
    tx = jopt.layout.bucketed(opt)
    return Built(tx.init, user_step(tx, jopt.apply_updates))


def _packed(opt: jopt.Optimizer) -> Built:
    # Params (and so grads and state) packed too; the user reads params.unpack().
    return Built(
        opt.init, user_step(opt, jopt.apply_updates), jopt.layout.pack, lambda p: p.unpack()
    )


def _per_leaf(opt: jopt.Optimizer) -> Built:
    # The opt-out of the automatic layout: every slot shaped like its param.
    flat = type(opt).from_config({**opt.get_config(), "layout": "per_leaf"})
    return Built(flat.init, user_step(flat, jopt.apply_updates))


# "jopt" is the default a user gets: update + apply_updates in their own jit, with the
# layout chosen automatically (flat buckets for many small leaves).
register_jopt_variant("jopt", lambda opt: Built(opt.init, user_step(opt, jopt.apply_updates)))
register_jopt_variant("jopt.apply", _jopt_apply, default=False)
register_jopt_variant("jopt.per_leaf", _per_leaf)
# jopt's opt-in layouts (jopt/layout/): the state packed, or params and state packed.
register_jopt_variant("jopt.bucketed", _bucketed, default=False)
register_jopt_variant("jopt.packed", _packed)


@dataclass(frozen=True)
class JaxContender:
    """A JAX library: ``make(contest, params)`` gives its :class:`Built` (None: not offered).

    ``plain``: also time the step without donation (Keras's own JAX trainer always
    donates, and each compile of a 2000-leaf step costs ~15-30 s here).
    """

    name: str
    make: Callable[[Contest, PyTree], Built | None]
    plain: bool = True


def _optax(contest: Contest, params: PyTree) -> Built:
    del params
    return Built(contest.optax.init, user_step(contest.optax, optax.apply_updates))


def keras_available() -> str | None:
    """None if Keras 3 runs on JAX here, else why not."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        import keras
    except ImportError as e:
        return f"keras not importable ({e})"
    if keras.backend.backend() != "jax":
        return f"KERAS_BACKEND is {keras.backend.backend()!r}, not 'jax'"
    return None


def _keras(contest: Contest, params: PyTree) -> Built | None:
    """Keras 3's optimizer, built on variables of ``params``' shapes, run by ``stateless_apply``.

    The optimizer comes from jopt's config in Keras's dict form (the same hyperparameters
    and defaults); its state is the list ``optimizer.variables`` (iterations, learning
    rate, then the slots), params and grads are the tree's leaves in order. This is what
    Keras's own JAX trainer jits.
    """
    import keras

    if contest.reference is None:
        return None  # the catalogue is timed against optax only
    leaves, treedef = jax.tree.flatten(params)
    variables = [keras.Variable(np.zeros(x.shape, x.dtype)) for x in leaves]
    opt = keras.optimizers.deserialize(jopt.optimizers.serialize(contest.jopt))
    opt.build(variables)

    def init(params: PyTree) -> list[jax.Array]:
        del params
        return [jax.numpy.array(v.value, copy=True) for v in opt.variables]

    def step(params: PyTree, state: list, grads: PyTree) -> tuple[PyTree, list]:
        new, state = opt.stateless_apply(state, jax.tree.leaves(grads), jax.tree.leaves(params))
        return jax.tree.unflatten(treedef, new), state

    return Built(init, step)


def jax_contenders(names: list[str] | None) -> tuple[list[JaxContender], list[str]]:
    """The JAX contenders to run (``names`` None: the defaults) and notes on the missing."""
    notes: list[str] = []
    every = [
        JaxContender(n, lambda c, p, b=build: _variant(b, c.jopt))
        for n, (build, _) in JOPT_VARIANTS.items()
    ]
    every.append(JaxContender("optax", _optax))
    why = keras_available()
    if why is None:
        every.append(JaxContender("keras", _keras, plain=False))
    else:
        notes.append(f"keras skipped: {why}")
    default = {n for n, (_, on) in JOPT_VARIANTS.items() if on} | {"optax", "keras"}
    chosen = [c for c in every if (c.name in names if names else c.name in default)]
    return chosen, notes


def _variant(build: JoptVariant, opt: jopt.Optimizer) -> Built | None:
    try:
        x = build(opt)
    except ValueError:
        return None  # a layout that refuses this rule (e.g. bucketed Lamb): not timed
    return x if isinstance(x, Built) else Built(*x)


# ---- PyTorch contenders -----------------------------------------------------------------


TORCH_MODES = ("torch.fused", "torch.foreach")


def torch_available() -> str | None:
    """None if torch imports, else why not."""
    try:
        import torch  # noqa: F401
    except ImportError as e:
        return f"torch not installed ({e}); pip install -e '.[bench]'"
    return None


def make_torch_optimizer(contest: Contest, mode: str, tensors: list) -> Any | None:
    """``torch.optim.<class>(tensors, fused=True | foreach=True, **kwargs)``, or None."""
    import torch

    if contest.torch is None or (mode == "torch.fused" and not contest.torch_fused):
        return None
    cls, kwargs = contest.torch
    flag = {"torch.fused": "fused", "torch.foreach": "foreach"}[mode]
    return getattr(torch.optim, cls)(tensors, **kwargs, **{flag: True})
