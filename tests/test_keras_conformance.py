"""Keras 3's own optimizer and schedule tests, run against jopt.

Each test method of the Keras test files shipped in the installed wheel
(``keras/src/optimizers/*_test.py``, ``keras/src/optimizers/schedules/*_test.py``) runs
as written, with the Keras class it tests replaced by the jopt class of the same name:
schedules directly (they are the same callables), optimizers through :class:`Stateful`,
a thin stateful facade over the functional jopt optimizer (Keras's tests hold variables
and call ``opt.apply_gradients(zip(grads, vars))``). So Keras's golden values, configs and
errors are asserted against jopt's numbers by Keras's own code, and a Keras release that
changes an expectation shows up here.

A test that exercises what jopt deliberately does not have (``model.fit``, Keras
variables on the optimizer, sparse ``IndexedSlices``, TensorFlow-only paths, Keras's
serialization registry) is skipped with its reason in ``SKIPS``; every other test must
pass. ``python -m pytest tests/test_keras_conformance.py -rs`` lists the count and the
reasons.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import types
import unittest
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt
from jopt import schedules as jopt_schedules

KERAS_OPTIMIZERS = "keras.src.optimizers"


class Count(int):
    """Keras's ``optimizer.iterations`` is a variable: ``.value`` reads it."""

    @property
    def value(self) -> int:
        return int(self)


class Stateful:
    """Keras's stateful optimizer interface over a functional jopt optimizer.

    Only what Keras's tests call: ``apply_gradients(zip(grads, vars))`` assigns the new
    values to the Keras variables, ``iterations``, ``learning_rate``,
    ``exclude_from_weight_decay``, ``_clip_gradients``, ``get_config``/``from_config``,
    the EMA (``_model_variables_moving_average``, ``finalize_variable_values``).
    """

    jopt_class: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # A wrapped optimizer (LossScaleOptimizer(SGD())) wraps the jopt one.
        args = tuple(a.opt if isinstance(a, Stateful) else a for a in args)
        kwargs = {k: v.opt if isinstance(v, Stateful) else v for k, v in kwargs.items()}
        self._args, self._kwargs = args, kwargs
        self.opt = self.jopt_class(*args, **kwargs)
        self.state: Any = None
        self._vars: list[Any] = []

    @classmethod
    def wrapping(cls, jopt_class: Any) -> type[Stateful]:
        return type(jopt_class.__name__, (cls,), {"jopt_class": jopt_class})

    def exclude_from_weight_decay(self, var_list: Any = None, var_names: Any = None) -> None:
        patterns = [f"'[^'@]*{n}[^'@]*@" for n in var_names or []]
        patterns += [f"@{id(v)}'" for v in var_list or []]
        self.opt = self.jopt_class(*self._args, **self._kwargs, exclude_from_weight_decay=patterns)

    def _params(self, variables: list[Any]) -> dict[str, Any]:
        # Keyed "name@id": Keras excludes from weight decay by name or by identity.
        return {f"{v.name}@{id(v)}": jnp.asarray(v.value) for v in variables}

    def build(self, variables: list[Any]) -> None:
        self._vars = list(variables)
        self.state = self.opt.init(self._params(self._vars))

    def apply(self, grads: list[Any], variables: list[Any]) -> None:
        self.apply_gradients(zip(grads, variables, strict=True))

    def apply_gradients(self, grads_and_vars: Any) -> None:
        grads, variables = zip(*grads_and_vars, strict=True)
        if self.state is None:
            self._vars = list(variables)
            self.state = self.opt.init(self._params(self._vars))
        params = self._params(list(variables))
        named = dict(
            zip(params, (None if g is None else jnp.asarray(g) for g in grads), strict=True)
        )
        keys = list(params)
        params, self.state = self.opt.apply_gradients(named, self.state, params)
        for v, key in zip(variables, keys, strict=True):
            v.assign(np.asarray(params[key]))

    @property
    def iterations(self) -> Any:
        state = self.state
        while state is not None and not hasattr(state, "step"):
            state = state.inner  # a wrapper's state: the inner optimizer counts steps
        return Count(0 if state is None else int(state.step))

    @property
    def variables(self) -> list[Any]:
        return [types.SimpleNamespace(value=x) for x in jax.tree.leaves(self.state)]

    def scale_loss(self, loss: Any) -> Any:
        return self.opt.scale_loss(loss, self.state)

    @property
    def learning_rate(self) -> Any:
        return self.opt.lr(self.state) if self.state is not None else self.opt.lr()

    def _clip_gradients(self, grads: list[Any]) -> list[Any]:
        clip = {
            k: self._kwargs[k]
            for k in ("clipnorm", "clipvalue", "global_clipnorm")
            if k in self._kwargs
        }
        sgd = jopt.SGD(1.0, **clip)
        tree = [jnp.asarray(g, jnp.float32) for g in grads]
        updates, _ = sgd.update(tree, sgd.init(tree), tree)
        return [-u for u in updates]

    @property
    def _model_variables_moving_average(self) -> list[Any]:
        average = self.state.slots["average"]
        return [average[key] for key in self._params(self._vars)]

    def finalize_variable_values(self, variables: list[Any]) -> None:
        averaged = self.opt.averaged_params(self.state)
        for v, key in zip(variables, self._params(variables), strict=True):
            v.assign(np.asarray(averaged[key]))

    def get_config(self) -> dict[str, Any]:
        return self.opt.get_config()

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Stateful:
        facade = cls.__new__(cls)
        facade.opt, facade.state, facade._vars = cls.jopt_class.from_config(config), None, []
        facade._args, facade._kwargs = (), {}
        return facade

    def __getattr__(self, name: str) -> Any:  # initial_scale, name, ...: the jopt object's
        if name.startswith("__") or name == "opt":
            raise AttributeError(name)
        return getattr(self.opt, name)


STATELESS = r"LossScaleOptimizerTest\.test_\w+_stateless$|test_apply_with_no_vars"
# Keras test -> why jopt does not run it. Every other test must pass.
SKIPS: dict[str, str] = {
    r"\.test_config$": "Keras's serialization harness checks Keras objects; jopt's config "
    "round trip and Keras-written configs are tested in test_serialization.py and below",
    r"test_ema$": "trains a keras.Model with model.fit (Keras's EMA numbers are checked in "
    "this test's first half by test_options.py)",
    r"test_clipnorm_indexed_slices|sparse": "TensorFlow IndexedSlices / sparse variables",
    r"test_fit_lr_correctness": "keras.Model.fit",
    r"test_finite_step_with_inner_loss_scale": "deliberate difference: jopt refuses an "
    "inner optimizer with loss_scale_factor under LossScaleOptimizer (two scales), with a "
    "ValueError saying so; Keras ignores the inner one",
    r"OptimizerTest\.test_gradient_accumulation$": "reads Keras's private _iterations and "
    "_accumulated_gradients (accumulation against Keras: test_options.py)",
    r"test_finite_step_with_overwrite|test_overwrite_with_gradient": "Keras's "
    "overwrite_with_gradient variable flag "
    "(float8 training) has no jopt counterpart",
    r"test_variables$": "a Keras schedule fed a backend.Variable step",
    r"test_model_fit|test_with_model": "keras.Model.fit with a jopt optimizer",
    r"MuonTest\.test_(Newton_Schulz|adamw_|lr_adjust|muon_|should_use)": "Keras's private "
    "Muon methods (zeropower_via_newtonschulz5, _apply_weight_decay, lr_adjust, "
    "_should_use_adamw, build); Muon's numbers against Keras are in "
    "test_optimizers_factored.py",
    r"test_build_with_empty_var_list|SGDTest\.test_single_step": "reads the Keras "
    "optimizer's own variables (optimizer.build / optimizer.variables); jopt's state is "
    "the return value",
    r"OptimizerTest\.test_(ema_with_model_fit|constraints_are_applied|tf_checkpointing|"
    r"mixed_with_tf_variables)": "keras.Model.fit, Keras layer constraints or TensorFlow",
    r"OptimizerTest\.test_(set_weights|setting_lr_to_callable_untracks_lr_var)": "reads or "
    "sets the Keras optimizer's own variables; jopt's state is a returned pytree",
    r"OptimizerTest\.test_optimizer_auto_naming": "deliberate difference: no per-process "
    "name counter (equal configs stay equal)",
    r"OptimizerTest\.test_pickleable_optimizers": "pickles the stateful Keras object (jopt "
    "optimizers are frozen dataclasses and pickle as such)",
    r"^keras\.src\.optimizers\.multi_optimizer_test\.": "Keras's MultiOptimizer API "
    "(OptimizerMap objects, callbacks, model.fit) has no one-to-one jopt counterpart: "
    "jopt.partition's numbers against MultiOptimizer are in test_groups.py, its config "
    "round trip in test_keras_behaviours.py, LossScaleOptimizer around it in "
    "test_groups.py",
    r"^keras\.src\.optimizers\.optimizer_sparse_test\.": "sparse variables and "
    "gradients (Keras skips these itself on JAX; jopt's leaves are dense arrays)",
    STATELESS: "Keras's "
    "stateless_apply over optimizer.variables / apply without variables; jopt's "
    "apply(grads, state, params) is the stateless form",
}

SCHEDULE_NAMES = [
    "ExponentialDecay",
    "PiecewiseConstantDecay",
    "PolynomialDecay",
    "InverseTimeDecay",
    "CosineDecay",
    "CosineDecayRestarts",
]


def keras_test_modules() -> list[str]:
    package = importlib.import_module(KERAS_OPTIMIZERS)
    names = [
        f"{KERAS_OPTIMIZERS}.{m.name}"
        for m in pkgutil.iter_modules(package.__path__)
        if m.name.endswith("_test")
    ]
    return [*sorted(names), f"{KERAS_OPTIMIZERS}.schedules.learning_rate_schedule_test"]


def collect() -> list[Any]:
    cases = []
    for module_name in keras_test_modules():
        module = importlib.import_module(module_name)
        for class_name, cls in inspect.getmembers(module, inspect.isclass):
            if not issubclass(cls, unittest.TestCase) or cls.__module__ != module_name:
                continue
            for method in sorted(m for m in dir(cls) if m.startswith("test")):
                test_id = f"{module_name.rsplit('.', 1)[1]}.{class_name}.{method}"
                cases.append(pytest.param(module, cls, method, id=test_id))
    return cases


def swap_in_jopt(module: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Points the Keras test module's optimizer and schedule names at jopt's."""
    for name, value in list(vars(module).items()):
        if (
            isinstance(value, type)
            and hasattr(jopt, name)
            and value.__module__.startswith(KERAS_OPTIMIZERS)
        ):
            jopt_class = getattr(jopt, name)
            if name in SCHEDULE_NAMES:
                monkeypatch.setattr(module, name, getattr(jopt_schedules, name))
            else:
                monkeypatch.setattr(module, name, Stateful.wrapping(jopt_class))
    if hasattr(module, "schedules"):
        monkeypatch.setattr(module, "schedules", jopt_schedules)
    if getattr(module, "optimizers", None) is importlib.import_module(KERAS_OPTIMIZERS):
        monkeypatch.setattr(module, "optimizers", facade_module())


def facade_module() -> types.SimpleNamespace:
    """``keras.src.optimizers`` as the tests use it: each class and ``get``, over jopt."""
    classes = {
        name: Stateful.wrapping(getattr(jopt, name))
        for name in dir(jopt)
        if isinstance(getattr(jopt, name), type) and hasattr(getattr(jopt, name), "get_config")
    }

    def get(identifier: Any) -> Any:
        opt = jopt.optimizers.get(identifier)
        if opt is None:
            return None
        facade = classes[type(opt).__name__].__new__(classes[type(opt).__name__])
        facade.opt, facade.state, facade._vars, facade._args, facade._kwargs = opt, None, [], (), {}
        return facade

    return types.SimpleNamespace(**classes, get=get)


def skip_stateless(stateless: bool) -> None:
    if stateless:
        pytest.skip(SKIPS[STATELESS])


def raises_naming_the_argument(case: unittest.TestCase) -> Any:
    """Keras's ``assertRaisesRegex`` with jopt's wording: the same exception type, and
    the message names the argument Keras's message names (its first backquoted word)."""

    def check(exception: type[BaseException], regex: str) -> Any:
        names = re.findall(r"`(\w+)`", regex)
        pattern = re.escape(names[0]) if names else regex
        return unittest.TestCase.assertRaisesRegex(case, exception, pattern)

    return check


@pytest.mark.parametrize(("module", "cls", "method"), collect())
def test_keras_expectation(
    module: Any, cls: Any, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    test_id = f"{module.__name__}.{cls.__name__}.{method}"
    for pattern, reason in SKIPS.items():
        if re.search(pattern, test_id):
            pytest.skip(reason)
    swap_in_jopt(module, monkeypatch)
    case = cls(method)
    monkeypatch.setattr(case, "assertRaisesRegex", raises_naming_the_argument(case))
    if hasattr(case, "_skip_test_for_stateless"):
        # Keras skips its stateful LossScaleOptimizer tests on JAX (its variables cannot
        # be updated in place there); the facade can, so they run.
        monkeypatch.setattr(case, "_skip_test_for_stateless", skip_stateless)
    case.setUp()
    try:
        getattr(case, method)()
    finally:
        case.tearDown()
