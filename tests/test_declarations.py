"""Hyperparameters declared once (jopt/core/declarations.py): each class's declarations
match its signature and Keras 3's own signature (run live), drive ``hyperparam_names``,
and ``set_hyperparams`` refuses an out-of-range live value with the constructor's
message; a class whose signature disagrees with its declarations is refused when made,
and each docstring's Args state the declared defaults.
"""

from __future__ import annotations

import ast
import inspect
import re
from typing import Any

import jax.numpy as jnp
import keras
import pytest

import jopt
from jopt.core.declarations import (
    Hyperparam,
    declared_in,
    integer,
    non_negative,
    signature_checked,
    unit_interval_open,
)
from jopt.core.options import OPTION_DEFAULTS, OPTIONS
from jopt.optimizers.optimizer import LearningRate, Optimizer, default

CLASSES = [
    v
    for module in (jopt.optimizers, jopt.legacy)
    for n in module.__all__
    if isinstance(v := getattr(module, n), type) and issubclass(v, Optimizer) and v is not Optimizer
]
# Keras 3's class of the same name, where Keras has one.
KERAS = {
    c: getattr(keras.optimizers, c.__name__)
    for c in CLASSES
    if c.__module__ != "jopt.legacy" and hasattr(keras.optimizers, c.__name__)
}
NOT_RULE = {"self", "learning_rate", "name", "kwargs", "options", *OPTION_DEFAULTS}
PARAMS = {"w": jnp.ones((2, 3))}


def _ids(c: type) -> str:
    return f"{c.__module__.rsplit('.', 1)[-1]}.{c.__name__}"


def test_every_optimizer_class_is_covered() -> None:
    # Keras 3.15 has 15 optimizer classes; LossScaleOptimizer is a wrapper here.
    assert len(CLASSES) == 27 and len(KERAS) == 14


@pytest.mark.parametrize("cls", CLASSES, ids=_ids)
def test_declarations_are_the_signature(cls: type[Optimizer]) -> None:
    """Each rule argument of the signature is declared, in order, with its default, and
    hyperparam_names / optional_hyperparams are the declared live ones."""
    params = inspect.signature(cls.__init__).parameters
    rule = [(n, p.default) for n, p in params.items() if n not in NOT_RULE]
    declared = [(h.name, h.default) for h in cls.rule_hyperparams]
    assert rule == declared
    assert all(type(a) is type(b) for (_, a), (_, b) in zip(rule, declared, strict=True))
    assert cls.hyperparam_names == tuple(h.name for h in cls.rule_hyperparams if h.live)
    assert cls.optional_hyperparams == {h.name for h in cls.rule_hyperparams if h.live == "when on"}
    opt = cls()
    for h in cls.rule_hyperparams:  # the stored value is the checked default
        assert getattr(opt, h.name) == h.check(h.name, h.default) or h.default is None


@pytest.mark.parametrize("cls", list(KERAS), ids=_ids)
def test_declared_defaults_are_keras(cls: type[Optimizer]) -> None:
    """Keras 3's signature, read live: the same rule arguments, in the same order, with
    the same defaults; the same learning rate and base-option defaults."""
    k_params = inspect.signature(KERAS[cls].__init__).parameters
    ours = inspect.signature(cls.__init__).parameters
    k_rule = [(n, p.default) for n, p in k_params.items() if n not in NOT_RULE]
    assert [n for n, _ in k_rule] == [h.name for h in cls.rule_hyperparams]
    for (name, k_default), h in zip(k_rule, cls.rule_hyperparams, strict=True):
        if name == "exclude_layers":  # Keras's Muon: None, turned into []
            assert k_default is None and h.default is None
        else:
            assert h.default == k_default, name
    assert float(ours["learning_rate"].default) == k_params["learning_rate"].default
    for name in OPTION_DEFAULTS.keys() & k_params.keys():
        default_here = ours[name].default if name in ours else OPTION_DEFAULTS[name]
        assert default_here == k_params[name].default, name


def _rejected(cls: type[Optimizer], name: str) -> tuple[Any, str]:
    """A value the constructor refuses for ``name``, and its message."""
    for bad in (-1.0, 1.5, 2.0, 0.0, 1.0, 0.5, 3.0, float("inf")):
        try:
            cls(**{name: bad})
        except ValueError as e:
            return bad, str(e)
    raise AssertionError(f"{cls.__name__} takes every candidate for {name}")


LIVE = [
    (cls, name)
    for cls in CLASSES
    for name in cls().initial_hyperparams()
    if name != "learning_rate"
]


@pytest.mark.parametrize(("cls", "name"), LIVE, ids=[f"{_ids(c)}-{n}" for c, n in LIVE])
def test_set_hyperparams_refuses_what_the_constructor_refuses(
    cls: type[Optimizer], name: str
) -> None:
    bad, message = _rejected(cls, name)
    opt = cls()
    state = opt.init(PARAMS)
    with pytest.raises(ValueError) as e:
        opt.set_hyperparams(state, **{name: bad})
    assert str(e.value) == message
    with pytest.raises(ValueError):  # a concrete array is checked the same way
        opt.set_hyperparams(state, **{name: jnp.float32(bad)})


def test_base_options_are_checked_live_by_their_declaration() -> None:
    opt = jopt.SGD(0.1, clipnorm=1.0, use_ema=True, loss_scale_factor=2.0)
    state = opt.init(PARAMS)
    for name, bad in (("clipnorm", 0.0), ("ema_momentum", 1.5), ("loss_scale_factor", -1.0)):
        with pytest.raises(ValueError) as live:
            opt.set_hyperparams(state, **{name: bad})
        with pytest.raises(ValueError) as built:
            jopt.SGD(0.1, **{"clipnorm": 1.0, "use_ema": True, name: bad})
        assert str(live.value) == str(built.value)
    assert [h.name for h in OPTIONS] == list(OPTION_DEFAULTS)


def test_relations_hold_for_live_values() -> None:
    """Rprop's max_step_size >= min_step_size holds against the state's live values;
    Prodigy's beta_3=None is sqrt(beta_2)."""
    opt = jopt.Rprop(0.01, min_step_size=1e-3)
    state = opt.init(PARAMS)
    with pytest.raises(ValueError, match=r"max_step_size must be in \[0.001, inf\), got 0.0001"):
        opt.set_hyperparams(state, max_step_size=1e-4)
    state = opt.set_hyperparams(state, min_step_size=1e-5)
    state = opt.set_hyperparams(state, max_step_size=1e-4)  # above the live minimum
    assert float(state.hyperparams["max_step_size"]) == pytest.approx(1e-4)
    with pytest.raises(ValueError, match=r"max_step_size must be in \[100, inf\), got 50"):
        jopt.Rprop(min_step_size=100.0)
    assert jopt.Prodigy(beta_2=0.81).beta_3 == pytest.approx(0.9)


def test_a_live_none_is_refused_clearly() -> None:
    opt = jopt.Muon(0.01)
    with pytest.raises(ValueError, match="rms_rate=None leaves a part of Muon's rule out"):
        opt.set_hyperparams(opt.init(PARAMS), rms_rate=None)
    adam = jopt.Adam()  # epsilon=None means 1e-7, live as in the constructor
    state = adam.set_hyperparams(adam.init(PARAMS), epsilon=None)
    assert float(state.hyperparams["epsilon"]) == pytest.approx(1e-7)


def test_a_signature_that_disagrees_with_its_declarations_is_refused() -> None:
    with pytest.raises(TypeError, match=r"signature .*beta.*0\.5.* disagrees .*0\.9"):

        class WrongDefault(Optimizer):
            beta = Hyperparam(0.9, unit_interval_open)

            def __init__(self, learning_rate: LearningRate = default(0.1), beta: float = 0.5):
                super().__init__(learning_rate, dict(beta=beta), {})

    with pytest.raises(TypeError, match="disagrees"):

        class Undeclared(Optimizer):
            beta = Hyperparam(0.9, unit_interval_open)

            def __init__(
                self, learning_rate: LearningRate = default(0.1), beta: float = 0.9, eps: float = 0
            ):
                super().__init__(learning_rate, dict(beta=beta), {})

    class Right(Optimizer):
        beta = Hyperparam(0.9, unit_interval_open)
        eps = Hyperparam(0.0, non_negative, live=False)

        def __init__(
            self, learning_rate: LearningRate = default(0.1), beta: float = 0.9, eps: float = 0.0
        ):
            super().__init__(learning_rate, dict(beta=beta, eps=eps), {})

    assert Right.hyperparam_names == ("beta",)
    assert [h.name for h in declared_in(Right)][-2:] == ["beta", "eps"]
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\), got 1"):
        Right(beta=1.0)
    assert Right(beta=0.5).beta == 0.5


def test_a_class_outside_the_optimizer_hierarchy_is_checked_by_its_decorator() -> None:
    """LBFGS declares its arguments too: its repr hides the declared defaults."""
    assert [h.name for h in declared_in(jopt.LBFGS)][:2] == ["learning_rate", "memory_size"]
    assert repr(jopt.LBFGS(memory_size=5)) == "LBFGS(memory_size=5)"
    with pytest.raises(ValueError, match=r"curv_rtol must be in \(0.5, 1\), got 0.4"):
        jopt.LBFGS(slope_rtol=0.5, curv_rtol=0.4)
    with pytest.raises(TypeError, match="disagrees"):

        @signature_checked
        class Wrong:
            size = Hyperparam(10, integer(1))

            def __init__(self, size: int = 11) -> None:
                del size

    with pytest.raises(TypeError, match=r"declares size=0, which its check refuses: size must"):

        @signature_checked
        class OutOfRange:
            size = Hyperparam(0, integer(1))

            def __init__(self, size: int = 0) -> None:
                del size


def _args(doc: str) -> dict[str, str]:
    """A Google-style docstring's ``Args:`` entries, each joined onto one line."""
    section = re.search(r"^Args:\n((?:    .*\n|\n)*)", doc + "\n", re.M)
    assert section, "no Args: section"
    entries: dict[str, str] = {}
    name = None
    for line in section.group(1).splitlines():
        if entry := re.match(r"^    (\w+): (.*)", line):
            name = entry.group(1)
            entries[name] = entry.group(2)
        elif name and line.startswith("        "):
            entries[name] += " " + line.strip()
    return entries


@pytest.mark.parametrize(
    "cls", [c for c in CLASSES if c.__module__ != "jopt.legacy"] + [jopt.LBFGS], ids=_ids
)
def test_docstrings_state_each_declared_default(cls: type) -> None:
    """The docstring's Args give each declared argument with its declared default
    (tf.keras 2's classes refer to Keras 3's)."""
    args = _args(inspect.getdoc(cls) or "")
    for h in declared_in(cls):
        if h.name in OPTION_DEFAULTS:
            continue
        said = re.search(r"[Dd]efault:? (?:``)?([^\s;,`)]+?)(?:``)?[.;,)]?(?:\s|$)", args[h.name])
        assert said, f"{h.name}: {args[h.name]}"
        value = ast.literal_eval(said.group(1))
        assert value == h.default and (value is None) == (h.default is None), h.name
