"""Bad input, all of it: every public constructor and function, called wrongly, raises a
TypeError or ValueError whose message names the argument or the pytree path.

The table is built from the signatures where it can be (every numeric, boolean and list
argument of every optimizer and schedule gets a string, NaN, Inf, a list, ...) and
written out by hand for the rest (pytrees, states, steps, the functions). A last test
checks that every public name has at least one row, so a new one cannot slip through.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jopt
import jopt.schedules as S
from jopt.core.options import OPTION_DEFAULTS

Row = tuple[str, Callable[[], Any], type, str]
ROWS: list[Row] = []


def row(name: str, call: Callable[[], Any], error: Any, pattern: str) -> None:
    ROWS.append((name, call, error, pattern))


def public_classes(module: Any, base: type) -> list[type]:
    return [
        v
        for n in module.__all__
        if inspect.isclass(v := getattr(module, n)) and issubclass(v, base) and v is not base
    ]


OPTIMIZER_CLASSES = public_classes(jopt.optimizers, jopt.Optimizer) + public_classes(
    jopt.legacy, jopt.Optimizer
)
SCHEDULE_CLASSES = public_classes(S, S.LearningRateSchedule)

# ---- constructors, from their signatures ---------------------------------------------

NOT_A_NUMBER = ["fast", [0.1], {"v": 0.1}, jnp.ones(2), 1j]


def numeric_rows(owner: str, make: Callable[..., Any], params: dict[str, Any]) -> None:
    """A number argument gets each wrong type and a non-finite value."""
    for name, default in params.items():
        if isinstance(default, bool):
            for bad in ("yes", 1, None):
                row(
                    f"{owner}({name}={bad!r})",
                    lambda n=name, b=bad: make(**{n: b}),
                    TypeError,
                    rf"\b{name}\b must be True or False",
                )
        elif isinstance(default, int | float) or (default is None and name in NUMERIC_NONE):
            # An integer argument (ns_steps, warmup_steps) may answer ValueError: "must be
            # an integer >= 0"; a float one answers TypeError: "must be a real number".
            error = (TypeError, ValueError) if type(default) is int else TypeError
            for bad in NOT_A_NUMBER:
                row(
                    f"{owner}({name}={bad!r:.20})",
                    lambda n=name, b=bad: make(**{n: b}),
                    # a dict learning_rate is read as a serialized schedule: a bad config
                    (TypeError, ValueError) if isinstance(bad, dict) else error,
                    rf"\b{name}\b",
                )
            for bad in (math.nan, math.inf, -math.inf):
                row(
                    f"{owner}({name}={bad})",
                    lambda n=name, b=bad: make(**{n: b}),
                    ValueError,
                    rf"\b{name}\b must be",
                )


# Arguments whose default is None but take a number when given.
NUMERIC_NONE = {
    "weight_decay",
    "adam_weight_decay",
    "rms_rate",
    "warmup_target",
    "epsilon",
    "clipnorm",
    "clipvalue",
    "global_clipnorm",
    "loss_scale_factor",
    "step_size_down",
}

for cls in OPTIMIZER_CLASSES:
    owner = f"{cls.__module__.split('.')[-1]}.{cls.__name__}"
    sig = inspect.signature(cls.__init__).parameters
    numeric_rows(
        owner,
        cls,
        {
            n: p.default
            for n, p in sig.items()
            if n not in ("self", "options", "name")
            and p.kind is not p.VAR_KEYWORD
            and p.default is not inspect.Parameter.empty
        },
    )
    row(f"{owner}(name=3)", lambda c=cls: c(name=3), TypeError, "name must be a string")
    row(f"{owner}(unknown keyword)", lambda c=cls: c(learnin_rate=0.1), TypeError, "learnin_rate")
    for name in ("exclude_layers",):
        if name in sig:
            for bad in (3, "head", {"head": 1}, [1]):
                row(
                    f"{owner}({name}={bad!r})",
                    lambda c=cls, n=name, b=bad: c(**{n: b}),
                    TypeError,
                    name,
                )
            row(
                f"{owner}({name}=bad regex)",
                lambda c=cls, n=name: c(**{n: ["(unclosed"]}),
                ValueError,
                rf"{name}.*not a valid regular expression",
            )

# The base options every optimizer takes (one class suffices: one shared validation).
numeric_rows(
    "Adam",
    jopt.Adam,
    {
        n: v
        for n, v in OPTION_DEFAULTS.items()
        if n
        not in (
            "exclude_from_weight_decay",
            "slot_dtypes",
            "ema_overwrite_frequency",
            "gradient_accumulation_steps",
        )
    },
)
for name, low in (("ema_overwrite_frequency", 1), ("gradient_accumulation_steps", 2)):
    for bad in ("2", 2.5, low - 1, True):
        row(
            f"Adam({name}={bad!r})",
            lambda n=name, b=bad: jopt.Adam(**{n: b}),
            ValueError,
            rf"{name} must be None or an integer >= {low}",
        )
for bad in (3, "bias", {"bias": 1}, [1]):
    row(
        f"Adam(exclude_from_weight_decay={bad!r})",
        lambda b=bad: jopt.Adam(exclude_from_weight_decay=b),
        TypeError,
        "exclude_from_weight_decay",
    )
row(
    "Adam(exclude_from_weight_decay=bad regex)",
    lambda: jopt.Adam(exclude_from_weight_decay=["[bias"]),
    ValueError,
    r"exclude_from_weight_decay\[0\] = '\[bias' is not a valid regular expression",
)
for bad, error, pattern in (
    ("float32", TypeError, "slot_dtypes must map slot names to dtypes"),
    ({"momentum": "int32"}, TypeError, r"slot_dtypes\['momentum'\] must be a floating dtype"),
    ({"momentum": "nope"}, TypeError, r"slot_dtypes\['momentum'\] is not a dtype"),
    ({"momentumm": "float32"}, ValueError, r"slot_dtypes names \['momentumm'\]"),
):
    row(f"Adam(slot_dtypes={bad!r})", lambda b=bad: jopt.Adam(slot_dtypes=b), error, pattern)
row(
    "Adafactor(slot_dtypes={'r': 'int8'})",
    lambda: jopt.Adafactor(slot_dtypes={"r": "int8"}),
    ValueError,
    r"slot_dtypes\['r'\] = 'int8': Adafactor's 'r' cannot be stored in 8 bits",
)
row(
    "Quantized with int32 codes",
    lambda: jopt.Quantized(jnp.ones(3, jnp.int32), jnp.ones(1)).dequantize(),
    TypeError,
    "Quantized.codes must be int8 or uint8, got int32",
)
for kw, pattern in (
    (dict(learning_rate=-1.0), r"learning_rate must be in \[0, inf\), got -1"),
    (dict(beta_1=1.0), r"beta_1 must be in \[0, 1\)"),
    (dict(clipnorm=1.0, clipvalue=1.0), "at most one of clipnorm, clipvalue, global_clipnorm"),
    (dict(weight_decay=-0.1), r"weight_decay must be in \[0, inf\)"),
    (dict(ema_momentum=1.5), r"ema_momentum must be in \[0, 1\]"),
    (dict(learning_rate={"class_name": "Nope", "config": {}}), "unknown schedule class_name"),
):
    row(f"Adam({kw})", lambda k=kw: jopt.Adam(**k), ValueError, pattern)
row(
    "Adam(lr=, learning_rate=)",
    lambda: jopt.Adam(0.1, lr=0.1),
    TypeError,
    "learning_rate or its legacy alias lr, not both",
)

# Schedules: every argument of every class.
SCHEDULE_ARGS: dict[type, dict[str, Any]] = {
    S.ExponentialDecay: dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5),
    S.PiecewiseConstantDecay: dict(boundaries=[5], values=[0.1, 0.01]),
    S.PolynomialDecay: dict(initial_learning_rate=0.1, decay_steps=10),
    S.InverseTimeDecay: dict(initial_learning_rate=0.1, decay_steps=10, decay_rate=0.5),
    S.CosineDecay: dict(initial_learning_rate=0.1, decay_steps=10),
    S.CosineDecayRestarts: dict(initial_learning_rate=0.1, first_decay_steps=10),
    S.Warmup: dict(schedule=S.constant(0.1), warmup_steps=5),
    S.Join: dict(schedules=(S.constant(0.1), S.constant(0.01)), boundaries=(5,)),
    S.Constant: dict(value=0.1),
    S.OneCycle: dict(max_learning_rate=0.1, total_steps=100),
    S.CyclicLR: dict(base_learning_rate=0.01, max_learning_rate=0.1, step_size_up=4),
    S.StepDecay: dict(initial_learning_rate=0.1, step_size=10),
    S.MultiStepDecay: dict(initial_learning_rate=0.1, milestones=[5, 10]),
    S.WarmupStableDecay: dict(
        peak_learning_rate=0.1, warmup_steps=2, stable_steps=5, decay_steps=3
    ),
}
for cls in SCHEDULE_CLASSES:
    args = SCHEDULE_ARGS[cls]

    def make(cls: type = cls, args: dict[str, Any] = args, **kw: Any) -> Any:
        return cls(**{**args, **kw})

    sig = inspect.signature(cls).parameters
    numeric_rows(
        cls.__name__,
        make,
        {
            n: (p.default if p.default is not inspect.Parameter.empty else args[n])
            for n, p in sig.items()
            if n != "name"
            and isinstance(args.get(n, p.default), int | float | None)
            and not isinstance(args.get(n, p.default), bool)
        },
    )
    schedule = make()
    for bad in ("10", None, True, 1j, jnp.ones(2, bool), ["a"]):
        row(
            f"{cls.__name__}()(step={bad!r:.20})",
            lambda s=schedule, b=bad: s(b),
            TypeError,
            "step must be an integer step count",
        )
for pattern, call in (
    (
        r"boundaries must be strictly increasing",
        lambda: S.PiecewiseConstantDecay([5, 2], [1, 2, 3]),
    ),
    (r"values must have len\(boundaries\) \+ 1 = 2", lambda: S.PiecewiseConstantDecay([5], [1])),
    (r"boundaries\[0\] must be", lambda: S.PiecewiseConstantDecay([math.nan], [1, 2])),
    (r"decay_steps must be in \(0, inf\)", lambda: S.ExponentialDecay(0.1, 0, 0.5)),
    (r"boundaries must have len\(schedules\) - 1 = 0", lambda: S.join([S.constant(0.1)], [3])),
    (r"warmup_steps must be in \[0, inf\)", lambda: S.warmup(S.constant(0.1), -3)),
    (
        "unknown schedule class_name 'Nope'",
        lambda: S.deserialize({"class_name": "Nope", "config": {}}),
    ),
    ("deserialize expects a dict with 'class_name' and 'config'", lambda: S.deserialize("x")),
    (r"total_steps must be an integer >= 1, got 0", lambda: S.OneCycle(0.1, 0)),
    (r"pct_start must be in \[0, 1\], got 1.5", lambda: S.OneCycle(0.1, 10, pct_start=1.5)),
    (
        r"anneal_strategy must be one of \['cos', 'linear'\], got 'cosine'",
        lambda: S.OneCycle(0.1, 10, anneal_strategy="cosine"),
    ),
    (r"div_factor must be in \(0, inf\)", lambda: S.OneCycle(0.1, 10, div_factor=0.0)),
    (r"final_div_factor must be in \(0, inf\)", lambda: S.OneCycle(0.1, 10, final_div_factor=-1)),
    (
        r"max_learning_rate must be >= base_learning_rate \(0.1\), got 0.01",
        lambda: S.CyclicLR(0.1, 0.01),
    ),
    (r"step_size_up must be in \(0, inf\)", lambda: S.CyclicLR(0.01, 0.1, step_size_up=0)),
    (r"step_size_down must be in \(0, inf\)", lambda: S.CyclicLR(0.01, 0.1, 5, -1)),
    (
        r"mode must be one of \['triangular', 'triangular2', 'exp_range'\], got 'exp'",
        lambda: S.CyclicLR(0.01, 0.1, mode="exp"),
    ),
    (r"gamma must be in \(0, 1\], got 1.5", lambda: S.CyclicLR(0.01, 0.1, gamma=1.5)),
    (r"step_size must be an integer >= 1, got 2.5", lambda: S.StepDecay(0.1, 2.5)),
    (r"gamma must be in \[0, inf\)", lambda: S.StepDecay(0.1, 3, gamma=-0.1)),
    (
        r"milestones must be non-decreasing, got \[10, 5\] \(milestones\[1\] = 5 < 10\)",
        lambda: S.MultiStepDecay(0.1, [10, 5]),
    ),
    (r"milestones\[0\] must be in \[0, inf\)", lambda: S.MultiStepDecay(0.1, [-1, 5])),
    (r"milestones\[1\] must be finite", lambda: S.MultiStepDecay(0.1, [1, math.inf])),
    (r"decay_steps must be in \[0, inf\)", lambda: S.WarmupStableDecay(0.1, 1, 1, -1)),
    (
        r"decay_shape must be one of \['linear', 'cosine', '1-sqrt'\], got 'sqrt'",
        lambda: S.WarmupStableDecay(0.1, 1, 1, 1, decay_shape="sqrt"),
    ),
    (r"steps must be an integer >= 1, got 0", lambda: S.plot(S.constant(0.1), 0)),
    (
        r"steps must be .* a 1-D array of steps, got shape \(2, 2\)",
        lambda: S.plot(S.constant(0.1), np.ones((2, 2))),
    ),
):
    row(pattern[:40], call, ValueError, pattern)
for pattern, call in (
    ("schedule must be a schedule", lambda: S.warmup("x", 3)),
    (r"schedules\[0\] must be a schedule", lambda: S.join(["x", S.constant(1.0)], [3])),
    ("value must be a real number", lambda: S.constant("x")),
    ("serialize takes a jopt LearningRateSchedule", lambda: S.serialize(3)),
    ("unexpected keyword argument 'x'", lambda: S.ExponentialDecay.from_config({"x": 1})),
    ("milestones must be a list or tuple", lambda: S.MultiStepDecay(0.1, 30)),
    (r"milestones\[0\] must be a real number", lambda: S.MultiStepDecay(0.1, ["30"])),
    ("schedule must be a schedule", lambda: S.plot("x", 10)),
    (r"schedule\['a'\] must be a schedule", lambda: S.plot({"a": 0.1}, 10)),
    ("schedule must be a schedule or a dict of them", lambda: S.plot({}, 10)),
    ("steps must be a number of steps or a 1-D array", lambda: S.plot(S.constant(0.1), "10")),
):
    row(pattern[:40], call, TypeError, pattern)

# ReduceLROnPlateau: every numeric argument from its signature, then the rest.
numeric_rows(
    "ReduceLROnPlateau",
    jopt.ReduceLROnPlateau,
    {
        n: p.default
        for n, p in inspect.signature(jopt.ReduceLROnPlateau).parameters.items()
        if n not in ("mode", "monitor")
    },
)
PLATEAU = jopt.ReduceLROnPlateau()
SGD_STATE = jopt.SGD(0.1).init({"w": jnp.ones(2)})
for pattern, call in (
    (r"factor must be in \[0, 1\), got 1", lambda: jopt.ReduceLROnPlateau(factor=1.0)),
    (r"patience must be an integer >= 0, got -1", lambda: jopt.ReduceLROnPlateau(patience=-1)),
    (r"cooldown must be an integer >= 0, got 1.5", lambda: jopt.ReduceLROnPlateau(cooldown=1.5)),
    (r"min_delta must be in \[0, inf\)", lambda: jopt.ReduceLROnPlateau(min_delta=-1e-4)),
    (r"min_lr must be in \[0, inf\)", lambda: jopt.ReduceLROnPlateau(min_lr=-1.0)),
    (
        r"mode must be one of \['min', 'max', 'auto'\], got 'minimum'",
        lambda: jopt.ReduceLROnPlateau(mode="minimum"),
    ),
    (
        r"mode='auto' cannot tell whether monitor='val_f1' should fall or rise",
        lambda: jopt.ReduceLROnPlateau(mode="auto", monitor="val_f1"),
    ),
    (
        r"metric must be a scalar, got shape \(2,\)",
        lambda: PLATEAU.update(jnp.ones(2), PLATEAU.init(), SGD_STATE),
    ),
    (
        "opt_state holds no learning rate to reduce",
        lambda: PLATEAU.update(
            1.0, PLATEAU.init(), jopt.chain(jopt.clip_by_norm(1.0)).init({"w": jnp.ones(2)})
        ),
    ),
    (
        r"min_lr=0.1 bounds a scheduled rate's effective value",
        lambda: jopt.ReduceLROnPlateau(min_lr=0.1).update(
            1.0, PLATEAU.init(), jopt.SGD(S.constant(0.1)).init({"w": jnp.ones(2)})
        ),
    ),
):
    row(f"ReduceLROnPlateau: {pattern[:40]}", call, ValueError, pattern)
for pattern, call in (
    ("monitor must be a string, got 3", lambda: jopt.ReduceLROnPlateau(monitor=3)),
    (
        "metric must be a real number or a 0-d array of one, got 'low'",
        lambda: PLATEAU.update("low", PLATEAU.init(), SGD_STATE),
    ),
    ("metric must be a real number", lambda: PLATEAU.update(True, PLATEAU.init(), SGD_STATE)),
    ("metric must be a real number", lambda: PLATEAU.update(None, PLATEAU.init(), SGD_STATE)),
    (
        r"state must be this rule's PlateauState \(plateau.init\(\)\), got OptimizerState",
        lambda: PLATEAU.update(1.0, SGD_STATE, PLATEAU.init()),
    ),
    (
        "no jopt OptimizerState found in dict",
        lambda: PLATEAU.update(1.0, PLATEAU.init(), {"w": jnp.ones(2)}),
    ),
):
    row(f"ReduceLROnPlateau: {pattern[:40]}", call, TypeError, pattern)

# ---- trees, states and steps ------------------------------------------------------------

PARAMS = {"enc": {"kernel": jnp.ones((2, 3)), "bias": jnp.zeros(3)}, "head": [jnp.ones(2)]}


def with_leaf(path: tuple[Any, ...], value: Any, tree: Any = PARAMS) -> Any:
    """``tree`` with the leaf at ``path`` replaced (or removed, for ``...``)."""
    if not path:
        return value
    if isinstance(tree, dict):
        out = {
            k: v for k, v in tree.items() if not (k == path[0] and value is ... and len(path) == 1)
        }
        if path[0] in out:
            out[path[0]] = with_leaf(path[1:], value, tree[path[0]])
        elif value is not ...:
            out[path[0]] = value
        return out
    items = list(tree)
    items[path[0]] = with_leaf(path[1:], value, tree[path[0]])
    return items


BAD_GRADS = [
    (
        "missing leaf",
        with_leaf(("enc", "bias"), ...),
        ValueError,
        r"grads\['enc'\]\['bias'\] is missing \(params has it\)",
    ),
    (
        "extra leaf",
        with_leaf(("dec",), jnp.ones(1)),
        ValueError,
        r"grads\['dec'\] is not in params",
    ),
    (
        "other shape",
        with_leaf(("enc", "kernel"), jnp.ones((3, 2))),
        ValueError,
        r"grads\['enc'\]\['kernel'\] has shape \(3, 2\) but params\['enc'\]\['kernel'\] has shape "
        r"\(2, 3\)",
    ),
    (
        "int leaf",
        with_leaf(("head", 0), jnp.ones(2, jnp.int32)),
        TypeError,
        r"grads\['head'\]\[0\] has dtype int32",
    ),
    (
        "bool leaf",
        with_leaf(("head", 0), jnp.ones(2, bool)),
        TypeError,
        r"grads\['head'\]\[0\] has dtype bool",
    ),
    (
        "complex leaf",
        with_leaf(("enc", "bias"), jnp.ones(3, jnp.complex64)),
        TypeError,
        r"grads\['enc'\]\['bias'\] has dtype complex64",
    ),
    (
        "string leaf",
        with_leaf(("enc", "bias"), "grad"),
        (TypeError, ValueError),
        r"grads\['enc'\]\['bias'\] (has shape \(\)|has type str)",
    ),
    (
        "list for dict",
        [jnp.ones((2, 3)), jnp.zeros(3), jnp.ones(2)],
        ValueError,
        r"grads\[0\] is not in params|is missing",
    ),
    ("None", None, ValueError, r"grads\['enc'\]\['bias'\] is missing"),
]
BAD_PARAMS = [
    (
        "int params",
        with_leaf(("head", 0), jnp.ones(2, jnp.int32)),
        TypeError,
        r"params\['head'\]\[0\] has dtype int32",
    ),
    (
        "complex params",
        with_leaf(("head", 0), jnp.ones(2, jnp.complex64)),
        TypeError,
        r"params\['head'\]\[0\] has dtype complex64",
    ),
    (
        "string params",
        with_leaf(("head", 0), "w"),
        (TypeError, ValueError),
        r"params\['head'\]\[0\] (has type str|has shape \(\))",
    ),
]

for cls in OPTIMIZER_CLASSES:
    owner = f"{cls.__module__.split('.')[-1]}.{cls.__name__}"
    opt = cls()
    state = opt.init(PARAMS)
    for what, grads, error, pattern in BAD_GRADS:
        row(
            f"{owner}.update(grads={what})",
            lambda o=opt, g=grads, s=state: o.update(g, s, PARAMS),
            error,
            pattern,
        )
        row(
            f"{owner}.apply(grads={what})",
            lambda o=opt, g=grads, s=state: o.apply(g, s, PARAMS),
            error,
            pattern,
        )
    for what, params, error, pattern in BAD_PARAMS:
        row(f"{owner}.init({what})", lambda o=opt, p=params: o.init(p), error, pattern)
        row(
            f"{owner}.apply(params={what})",
            lambda o=opt, p=params, s=state: o.apply(PARAMS, s, p),
            error,
            pattern,
        )
    for what, bad_state, error, pattern in (
        ("None", None, TypeError, "expects the OptimizerState made by its init"),
        ("a dict", {"step": 0}, TypeError, "expects the OptimizerState made by its init"),
        (
            "another optimizer's",
            (jopt.Adagrad() if cls is not jopt.Adagrad else jopt.Lion()).init(PARAMS),
            ValueError,
            "differently configured optimizer",
        ),
        (
            "a sweep's",
            jax.tree.map(lambda x: jnp.stack([x, x]), state),
            ValueError,
            r"this state is batched \(step has shape \(2,\)\)",
        ),
    ):
        row(
            f"{owner}.update(state={what})",
            lambda o=opt, s=bad_state: o.update(PARAMS, s, PARAMS),
            error,
            pattern,
        )
    for bad in ("10", None, 1j):
        if bad is None:
            continue  # lr(None) is the rate at step 0, by design
        row(f"{owner}.lr({bad!r})", lambda o=opt, b=bad: o.lr(b), TypeError, "step must be")
    row(
        f"{owner}.set_hyperparams(learning_rate='x')",
        lambda o=opt, s=state: o.set_hyperparams(s, learning_rate="x"),
        TypeError,
        "learning_rate must be a real number",
    )
    row(
        f"{owner}.set_hyperparams(nope=1)",
        lambda o=opt, s=state: o.set_hyperparams(s, nope=1.0),
        ValueError,
        "holds no live hyperparameter 'nope'",
    )

ADAM, ADAM_STATE = jopt.Adam(), jopt.Adam().init(PARAMS)
for what, grads, error, pattern in BAD_GRADS[:7]:
    row(
        f"Adam.apply_gradients(grads={what})",
        lambda g=grads: ADAM.apply_gradients(g, ADAM_STATE, PARAMS),
        error,
        pattern,
    )
    row(
        f"apply_updates(updates={what})",
        lambda g=grads: jopt.apply_updates(PARAMS, g),
        error,
        pattern.replace("grads", "updates"),
    )
row(
    "Adam.apply_gradients(zip of non-pairs)",
    lambda: ADAM.apply_gradients([1, 2], ADAM_STATE),
    TypeError,
    "item 0 is int",
)
row(
    "Adam.averaged_params without use_ema",
    lambda: ADAM.averaged_params(ADAM_STATE),
    ValueError,
    "construct it with use_ema=True",
)
row(
    "Adam(weight_decay).update without params",
    lambda: jopt.Adam(weight_decay=0.1).update(PARAMS, jopt.Adam(weight_decay=0.1).init(PARAMS)),
    ValueError,
    "needs params",
)

# The catalogue beyond Keras: the ranges and needs of its rules.
for what, call, error, pattern in (
    (
        "RAdam(beta_2=1.0)",
        lambda: jopt.RAdam(beta_2=1.0),
        ValueError,
        r"beta_2 must be in \[0, 1\)",
    ),
    (
        "AdaBelief(epsilon_root=-1)",
        lambda: jopt.AdaBelief(epsilon_root=-1),
        ValueError,
        "epsilon_root",
    ),
    (
        "Yogi(initial_accumulator_value=-1)",
        lambda: jopt.Yogi(initial_accumulator_value=-1),
        ValueError,
        "initial_accumulator_value",
    ),
    (
        "LARS(trust_coefficient=0)",
        lambda: jopt.LARS(trust_coefficient=0),
        ValueError,
        r"trust_coefficient must be in \(0",
    ),
    ("Adan(beta_3=1.0)", lambda: jopt.Adan(beta_3=1.0), ValueError, "beta_3 must be in"),
    ("ADOPT(epsilon=0)", lambda: jopt.ADOPT(epsilon=0.0), ValueError, r"epsilon must be in \(0"),
    ("AdEMAMix(alpha=-1)", lambda: jopt.AdEMAMix(alpha=-1.0), ValueError, "alpha must be in"),
    ("Prodigy(d0=0)", lambda: jopt.Prodigy(d0=0.0), ValueError, r"d0 must be in \(0"),
    (
        "Rprop(eta_minus=1)",
        lambda: jopt.Rprop(eta_minus=1.0),
        ValueError,
        r"eta_minus must be in \(0, 1\)",
    ),
    ("Rprop(eta_plus=1)", lambda: jopt.Rprop(eta_plus=1.0), ValueError, r"eta_plus must be in \(1"),
    (
        "Rprop(max_step_size < min_step_size)",
        lambda: jopt.Rprop(min_step_size=1.0, max_step_size=0.5),
        ValueError,
        r"max_step_size must be in \[1",
    ),
    (
        "SignSGD(momentum=1)",
        lambda: jopt.SignSGD(momentum=1.0),
        ValueError,
        r"momentum must be in \[0, 1\)",
    ),
    (
        "LARS.update without params",
        lambda: jopt.LARS().update(PARAMS, jopt.LARS().init(PARAMS)),
        ValueError,
        "LARS needs params",
    ),
    (
        "Prodigy.update without params",
        lambda: jopt.Prodigy().update(PARAMS, jopt.Prodigy().init(PARAMS)),
        ValueError,
        "Prodigy needs params",
    ),
):
    row(what, call, error, pattern)

# Lookahead around any transformation.
LOOKAHEAD = jopt.Lookahead(jopt.Adam())
for what, call, error, pattern in (
    (
        "Lookahead(sync_period=0)",
        lambda: jopt.Lookahead(jopt.Adam(), sync_period=0),
        ValueError,
        "sync_period must be an integer >= 1",
    ),
    (
        "Lookahead(sync_period=2.5)",
        lambda: jopt.Lookahead(jopt.Adam(), sync_period=2.5),
        ValueError,
        "sync_period must be an integer",
    ),
    (
        "Lookahead(slow_step_size=2)",
        lambda: jopt.Lookahead(jopt.Adam(), slow_step_size=2.0),
        ValueError,
        r"slow_step_size must be in \[0, 1\]",
    ),
    (
        "Lookahead(inner=3)",
        lambda: jopt.Lookahead(3),
        TypeError,
        "Lookahead wraps a transformation with init and update",
    ),
    (
        "Lookahead.update(state=None)",
        lambda: LOOKAHEAD.update(PARAMS, None, PARAMS),
        TypeError,
        "expects the LookaheadState",
    ),
    (
        "Lookahead.update without params",
        lambda: LOOKAHEAD.update(PARAMS, LOOKAHEAD.init(PARAMS)),
        ValueError,
        "Lookahead needs params",
    ),
):
    row(what, call, error, pattern)

# ScheduleFree around any transformation.
SF = jopt.ScheduleFree(jopt.Adam())
for what, call, error, pattern in (
    (
        "ScheduleFree(inner=3)",
        lambda: jopt.ScheduleFree(3),
        TypeError,
        "ScheduleFree.s inner must be a transformation",
    ),
    (
        "ScheduleFree(optax inner, no learning_rate)",
        lambda: jopt.ScheduleFree(jopt.clip_by_norm(1.0)),
        ValueError,
        "pass learning_rate",
    ),
    (
        "ScheduleFree(learning_rate=0)",
        lambda: jopt.ScheduleFree(jopt.Adam(), learning_rate=0.0),
        ValueError,
        r"learning_rate must be in \(0",
    ),
    (
        "ScheduleFree(beta_1=0)",
        lambda: jopt.ScheduleFree(jopt.Adam(), beta_1=0.0),
        ValueError,
        r"beta_1 must be in \(0, 1\]",
    ),
    (
        "ScheduleFree(weight_lr_power='2')",
        lambda: jopt.ScheduleFree(jopt.Adam(), weight_lr_power="2"),
        TypeError,
        "weight_lr_power must be a real number",
    ),
    (
        "ScheduleFree.update(state=None)",
        lambda: SF.update(PARAMS, None, PARAMS),
        TypeError,
        "expects the ScheduleFreeState",
    ),
    (
        "ScheduleFree.update without params",
        lambda: SF.update(PARAMS, SF.init(PARAMS)),
        ValueError,
        "ScheduleFree needs params",
    ),
):
    row(what, call, error, pattern)

# SAM around any transformation.
SAM_OPT = jopt.SAM(jopt.Adam())
for what, call, error, pattern in (
    ("SAM(inner=3)", lambda: jopt.SAM(3), TypeError, "SAM wraps a transformation"),
    ("SAM(rho=-1)", lambda: jopt.SAM(jopt.Adam(), rho=-1.0), ValueError, "rho must be in"),
    (
        "SAM(sync_period=1)",
        lambda: jopt.SAM(jopt.Adam(), sync_period=1),
        ValueError,
        "sync_period must be an integer >= 2",
    ),
    (
        "SAM.update(state=None)",
        lambda: SAM_OPT.update(PARAMS, None, PARAMS),
        TypeError,
        "expects the SAMState",
    ),
    (
        "SAM.update without params",
        lambda: SAM_OPT.update(PARAMS, SAM_OPT.init(PARAMS)),
        ValueError,
        "SAM needs params",
    ),
):
    row(what, call, error, pattern)

# Wrappers, chains, partitions, building blocks.
SKIP = jopt.SkipNonFinite(jopt.Adam())
LSO = jopt.LossScaleOptimizer(jopt.Adam())
for name, wrapper in (("SkipNonFinite", SKIP), ("LossScaleOptimizer", LSO)):
    wstate = wrapper.init(PARAMS)
    for what, grads, error, pattern in BAD_GRADS[:6]:
        row(
            f"{name}.update(grads={what})",
            lambda w=wrapper, g=grads, s=wstate: w.update(g, s, PARAMS),
            error,
            pattern,
        )
    row(
        f"{name}.update(state=Adam's)",
        lambda w=wrapper: w.update(PARAMS, ADAM_STATE, PARAMS),
        TypeError,
        f"{name}.update expects the",
    )
    row(
        f"{name}.apply(state=None)",
        lambda w=wrapper: w.apply(PARAMS, None, PARAMS),
        TypeError,
        f"{name}.apply expects the",
    )
    wrapper_cls = type(wrapper)
    for bad in ("adam", None):
        row(
            f"{name}(inner={bad!r})",
            lambda c=wrapper_cls, b=bad: c(b),
            TypeError,
            f"{name}'s inner must be a transformation with init and update",
        )
row(
    "LossScaleOptimizer.scale_loss(state=None)",
    lambda: LSO.scale_loss(1.0, None),
    TypeError,
    "scale_loss expects the LossScaleState",
)
for kw, pattern in (
    (dict(initial_scale=0.0), r"initial_scale must be in \(0, inf\)"),
    (dict(initial_scale=math.nan), "initial_scale must be finite"),
    (dict(dynamic_growth_steps=0), "dynamic_growth_steps must be an integer >= 1"),
    (dict(dynamic_growth_steps="10"), "dynamic_growth_steps must be an integer >= 1"),
    (dict(dynamic_growth_steps=True), "dynamic_growth_steps must be an integer >= 1"),
):
    row(
        f"LossScaleOptimizer({kw})",
        lambda k=kw: jopt.LossScaleOptimizer(jopt.SGD(), **k),
        ValueError,
        pattern,
    )
row(
    "LossScaleOptimizer(inner with loss_scale_factor)",
    lambda: jopt.LossScaleOptimizer(jopt.SGD(loss_scale_factor=2.0)),
    ValueError,
    "without loss_scale_factor",
)

# L-BFGS (a transformation of its own, not an Optimizer subclass) and minimize.
LBFGS = jopt.LBFGS()
LBFGS_STATE = LBFGS.init(PARAMS)


def sum_of_squares(p: Any) -> Any:
    return sum(jnp.sum(x**2) for x in jax.tree.leaves(p))


numeric_rows(
    "lbfgs.LBFGS",
    jopt.LBFGS,
    {
        n: p.default
        for n, p in inspect.signature(jopt.LBFGS.__init__).parameters.items()
        if n not in ("self", "linesearch", "name", "max_learning_rate")
    },
)
for kw, error, pattern in (
    (dict(learning_rate=0.0), ValueError, r"learning_rate must be in \(0, inf\)"),
    (dict(memory_size=0), ValueError, "memory_size must be an integer >= 1"),
    (dict(memory_size=2.5), ValueError, "memory_size must be an integer >= 1"),
    (dict(max_linesearch_steps=0), ValueError, "max_linesearch_steps must be an integer >= 1"),
    (dict(linesearch="wolfe"), ValueError, "linesearch must be 'zoom' or None"),
    (dict(linesearch=3), TypeError, "linesearch must be 'zoom' or None"),
    (dict(slope_rtol=1.0), ValueError, r"slope_rtol must be in \(0, 1\)"),
    (dict(curv_rtol=1e-5), ValueError, r"curv_rtol must be in \(0.0001, 1\)"),
    (dict(curv_rtol=1.0), ValueError, r"curv_rtol must be in \(0.0001, 1\)"),
    (dict(approx_dec_rtol=-1.0), ValueError, r"approx_dec_rtol must be in \[0, inf\)"),
    (dict(increase_factor=1.0), ValueError, r"increase_factor must be in \(1, inf\)"),
    (dict(max_learning_rate=0.0), ValueError, r"max_learning_rate must be in \(0, inf\)"),
    (dict(max_learning_rate="1"), TypeError, "max_learning_rate must be a real number"),
    (dict(max_learning_rate=math.inf), ValueError, "max_learning_rate must be finite"),
    (dict(stepsize_precision=-1.0), ValueError, r"stepsize_precision must be in \[0, inf\)"),
    (dict(name=3), TypeError, "name must be a string"),
    (dict(learnin_rate=0.1), TypeError, "learnin_rate"),
):
    row(f"LBFGS({kw!r:.40})", lambda k=kw: jopt.LBFGS(**k), error, pattern)
for what, params, error, pattern in BAD_PARAMS:
    row(f"LBFGS.init({what})", lambda p=params: LBFGS.init(p), error, pattern)
    row(
        f"LBFGS.update(params={what})",
        lambda p=params: LBFGS.update(PARAMS, LBFGS_STATE, p, value_fn=sum_of_squares),
        error,
        pattern,
    )
row("LBFGS.init({})", lambda: LBFGS.init({}), ValueError, "params has no array leaves")
for what, grads, error, pattern in BAD_GRADS:
    row(
        f"LBFGS.update(grads={what})",
        lambda g=grads: LBFGS.update(g, LBFGS_STATE, PARAMS, value_fn=sum_of_squares),
        error,
        pattern,
    )
row(
    "LBFGS.update(grad=int leaf)",
    lambda: LBFGS.update(
        PARAMS, LBFGS_STATE, PARAMS, value_fn=sum_of_squares, grad=BAD_PARAMS[0][1]
    ),
    TypeError,
    r"grad\['head'\]\[0\] has dtype int32",
)
for what, bad_state, error, pattern in (
    ("None", None, TypeError, "LBFGS.update expects the LBFGSState made by its init"),
    ("Adam's", ADAM_STATE, TypeError, "LBFGS.update expects the LBFGSState made by its init"),
    (
        "memory_size=5's",
        jopt.LBFGS(memory_size=5).init(PARAMS),
        ValueError,
        "holds 5 memory rows .* differently configured optimizer",
    ),
    (
        "a batched one",
        jax.tree.map(lambda x: jnp.stack([x, x]), LBFGS_STATE),
        ValueError,
        r"this state is batched \(step has shape \(2,\)\)",
    ),
):
    row(
        f"LBFGS.update(state={what})",
        lambda s=bad_state: LBFGS.update(PARAMS, s, PARAMS, value_fn=sum_of_squares),
        error,
        pattern,
    )
for what, call, error, pattern in (
    (
        "no value_fn",
        lambda: LBFGS.update(PARAMS, LBFGS_STATE, PARAMS),
        TypeError,
        "needs value_fn=",
    ),
    (
        "value_fn=3",
        lambda: LBFGS.update(PARAMS, LBFGS_STATE, PARAMS, value_fn=3),
        TypeError,
        "needs value_fn=",
    ),
    (
        "no params",
        lambda: LBFGS.update(PARAMS, LBFGS_STATE, value_fn=sum_of_squares),
        ValueError,
        "needs the params",
    ),
    (
        "a keyword value_fn does not take",
        lambda: LBFGS.update(PARAMS, LBFGS_STATE, PARAMS, value_fn=sum_of_squares, data=1),
        TypeError,
        r"keyword arguments \['data'\] that value_fn does not take",
    ),
):
    row(f"LBFGS.update({what})", call, error, pattern)
for kw, error, pattern in (
    (dict(value_fn="loss"), TypeError, "minimize's value_fn must be callable"),
    (dict(opt="lbfgs"), TypeError, "minimize's opt must be a transformation with init and update"),
    (dict(max_steps=-1), ValueError, "max_steps must be an integer >= 0"),
    (dict(max_steps=2.5), ValueError, "max_steps must be an integer >= 0"),
    (dict(max_steps=True), ValueError, "max_steps must be an integer >= 0"),
    (dict(tol=-1.0), ValueError, r"tol must be in \[0, inf\)"),
    (dict(tol="1e-6"), TypeError, "tol must be a real number"),
    (dict(tol=math.nan), ValueError, "tol must be finite"),
    (dict(args=[1.0]), TypeError, "minimize's args must be a tuple"),
    (dict(params=BAD_PARAMS[0][1]), TypeError, r"params\['head'\]\[0\] has dtype int32"),
    (dict(params={}), ValueError, "minimize: params has no array leaves"),
):
    row(
        f"minimize({kw!r:.40})",
        lambda k=kw: jopt.minimize(**({"value_fn": sum_of_squares, "params": PARAMS} | k)),
        error,
        pattern,
    )

CHAIN = jopt.chain(jopt.clip_by_norm(1.0), jopt.Adam())
row(
    "chain('adam')",
    lambda: jopt.chain("adam"),
    TypeError,
    "chain argument '0' .* must be a transformation with init and update",
)
row("freeze(1)", lambda: jopt.freeze(1), TypeError, "positional argument")
row(
    "chain.update(state of another chain)",
    lambda: CHAIN.update(PARAMS, jopt.chain(jopt.Adam()).init(PARAMS), PARAMS),
    ValueError,
    "it was made by a different chain",
)
row(
    "chain.update(state=None)",
    lambda: CHAIN.update(PARAMS, None, PARAMS),
    ValueError,
    "this chain's state holds NoneType",
)

PART = jopt.partition({"adam": jopt.Adam(), "sgd": jopt.SGD()}, [("bias", "sgd")], default="adam")
PART_STATE = PART.init(PARAMS)
for pattern, error, call in (
    ("partition expects a non-empty dict", TypeError, lambda: jopt.partition({}, "a")),
    (
        r"transforms\['a'\] must be a transformation with init and update",
        TypeError,
        lambda: jopt.partition({"a": "adam"}, "a"),
    ),
    ("partition labels must be strings", TypeError, lambda: jopt.partition({1: jopt.Adam()}, "a")),
    (
        r"labels\['w'\] must be a label string",
        TypeError,
        lambda: jopt.partition({"a": jopt.Adam()}, {"w": 3}),
    ),
    ("label 'b' .* has no transform", ValueError, lambda: jopt.partition({"a": jopt.Adam()}, "b")),
    (
        "pattern '\\[' is not a valid regular expression",
        ValueError,
        lambda: jopt.partition({"a": jopt.Adam()}, [("[", "a")]),
    ),
    (
        "default applies to .* pairs only",
        TypeError,
        lambda: jopt.partition({"a": jopt.Adam()}, "a", default="a"),
    ),
    (
        r"params\['enc'\]\['kernel'\] matches none of the patterns",
        ValueError,
        lambda: jopt.partition({"a": jopt.Adam()}, [("bias", "a")]).init(PARAMS),
    ),
    (
        r"labels\['enc'\]\['bias'\] is missing",
        ValueError,
        lambda: jopt.partition({"a": jopt.Adam()}, {"enc": {"kernel": "a"}, "head": "a"}).init(
            PARAMS
        ),
    ),
    (
        r"grads\['enc'\]\['bias'\] is missing",
        ValueError,
        lambda: PART.update(with_leaf(("enc", "bias"), ...), PART_STATE, PARAMS),
    ),
    ("expects the PartitionState", TypeError, lambda: PART.update(PARAMS, ADAM_STATE, PARAMS)),
    (
        "it was made by a different partition",
        ValueError,
        lambda: PART.update(PARAMS, PART_STATE._replace(groups={"adam": ADAM_STATE}), PARAMS),
    ),
    (
        "set_group_hyperparams expects a PartitionState",
        TypeError,
        lambda: jopt.set_group_hyperparams(ADAM_STATE, "adam", learning_rate=0.1),
    ),
    (
        "no group 'nope'",
        KeyError,
        lambda: jopt.set_group_hyperparams(PART_STATE, "nope", learning_rate=0.1),
    ),
):
    row(f"partition: {pattern[:40]}", call, error, pattern)

for fn, arg in (
    (jopt.clip_by_norm, "clipnorm"),
    (jopt.clip_by_global_norm, "global_clipnorm"),
    (jopt.clip_by_value, "clipvalue"),
    (jopt.scale, "factor"),
    (jopt.add_decayed_weights, "weight_decay"),
    (jopt.ema, "ema_momentum"),
):
    for bad in ("x", None, math.nan, [1.0]):
        row(
            f"{fn.__name__}({bad!r})",
            lambda f=fn, b=bad: f(b),
            TypeError if not isinstance(bad, float) else ValueError,
            arg,
        )
    row(
        f"{fn.__name__}.update(state=None)",
        lambda f=fn: f(0.5).update(PARAMS, None, PARAMS),
        TypeError,
        f"{fn.__name__}.update expects the OptimizerState",
    )
row(
    "add_decayed_weights(exclude=3)",
    lambda: jopt.add_decayed_weights(0.1, exclude=3),
    TypeError,
    "exclude must be a list of strings",
)
row(
    "add_decayed_weights.update(params mismatch)",
    lambda: jopt.add_decayed_weights(0.1).update(
        PARAMS, jopt.add_decayed_weights(0.1).init(PARAMS), with_leaf(("enc", "bias"), ...)
    ),
    ValueError,
    r"updates\['enc'\]\['bias'\] is not",
)
row(
    "ema.update without params",
    lambda: jopt.ema(0.9).update(PARAMS, jopt.ema(0.9).init(PARAMS)),
    ValueError,
    "needs params",
)

# Live hyperparameters and sweeps.
for kw, error, pattern in (
    (dict(learning_rate=math.nan), ValueError, "learning_rate must be finite"),
    (dict(learning_rate=-1.0), ValueError, r"learning_rate must be in \[0, inf\)"),
    (dict(learning_rate="x"), TypeError, "learning_rate must be a real number"),
    (dict(learning_rate=None), TypeError, "learning_rate must be a real number"),
    (dict(learning_rate=jnp.ones(3)), ValueError, r"learning_rate has shape \(3,\)"),
    (dict(learning_rate=jnp.array(jnp.inf)), ValueError, "learning_rate must be finite"),
    (dict(beta_3=0.1), ValueError, "no optimizer state holds hyperparameter 'beta_3'"),
):
    row(
        f"set_hyperparams({kw!r:.40})",
        lambda k=kw: jopt.set_hyperparams(ADAM_STATE, **k),
        error,
        pattern,
    )
row("hyperparams('x')", lambda: jopt.hyperparams("x"), TypeError, "no jopt OptimizerState found")
for kw, error, pattern in (
    ({}, TypeError, "sweep_init needs at least one hyperparameter"),
    (dict(learning_rate=[0.1, -1.0]), ValueError, r"learning_rate\[1\]: learning_rate must be"),
    (dict(learning_rate="abc"), ValueError, "learning_rate must be a non-empty 1-D sequence"),
    (dict(learning_rate=[0.1], beta_1=[0.9, 0.8]), ValueError, "the same number of values"),
    (dict(learning_rate=[["a"]]), ValueError, "learning_rate must be a non-empty 1-D"),
):
    row(f"sweep_init({kw!r:.40})", lambda k=kw: jopt.sweep_init(ADAM, PARAMS, **k), error, pattern)

# Serialization, checkpoints, and the other public entry points.
for call, error, pattern in (
    (lambda: jopt.optimizers.serialize("adam"), TypeError, "serialize takes a jopt optimizer"),
    (
        lambda: jopt.optimizers.deserialize("adam"),
        ValueError,
        "deserialize expects a dict with 'class_name'",
    ),
    (
        lambda: jopt.optimizers.deserialize({"class_name": "Nope", "config": {}}),
        ValueError,
        "unknown optimizer class_name 'Nope'",
    ),
    (lambda: jopt.optimizers.get("nope"), ValueError, "unknown optimizer name 'nope'"),
    (lambda: jopt.optimizers.get(3), TypeError, "get's identifier must be"),
    (lambda: jopt.Adam.from_config({"x": 1}), TypeError, "unexpected keyword argument.*x"),
    (
        lambda: jopt.restore_state(ADAM, "x", PARAMS),
        ValueError,
        "holds an OptimizerState .* saved state holds str",
    ),
    (
        lambda: jopt.restore_state(ADAM, ADAM_STATE, PARAMS, on_change="raise"),
        TypeError,
        "on_change must be",
    ),
    (
        lambda: jopt.restore_state("adam", ADAM_STATE, PARAMS),
        TypeError,
        "restore_state.s opt must be a transformation",
    ),
    (
        lambda: jopt.apply_gradients("adam", PARAMS, ADAM_STATE, PARAMS),
        TypeError,
        "apply_gradients's optimizer must be a transformation with init and update",
    ),
    (lambda: jopt.bucketed("adam"), TypeError, "bucketed needs a per-leaf rule"),
    (lambda: jopt.layout.pack({"w": "x"}), TypeError, r"tree\['w'\]"),
    (lambda: jopt.layout.pack({"w": jnp.arange(3)}), TypeError, r"tree\['w'\] has dtype int32"),
    (lambda: jopt.summary("x"), TypeError, "summary takes an optimizer's state"),
    (
        lambda: jopt.TrainState.create(params=PARAMS, opt="adam"),
        TypeError,
        "opt must be a transformation with init and update",
    ),
    (
        lambda: jopt.TrainState.create(params=BAD_PARAMS[0][1], opt=ADAM),
        TypeError,
        r"params\['head'\]\[0\] has dtype int32",
    ),
):
    row(pattern[:40], call, error, pattern)


@pytest.mark.parametrize(
    ("call", "error", "pattern"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS]
)
def test_bad_input_raises_naming_the_argument_or_path(
    call: Callable[[], Any], error: type, pattern: str
) -> None:
    with pytest.raises(error, match=pattern):
        call()


# ---- what is accepted on purpose, with its documented result -----------------------------


def test_grads_of_another_float_dtype_are_cast_to_the_params_as_keras_does() -> None:
    """Keras casts each gradient to its variable's dtype; so does jopt (NumPy oracle)."""
    params = {"w": jnp.array([1.0, -2.0, 3.0])}
    g16 = {"w": jnp.array([0.1, 0.2, -0.3], jnp.float16)}
    new, _ = jopt.SGD(0.5).apply(g16, jopt.SGD(0.5).init(params), params)
    expected = np.float32([1.0, -2.0, 3.0]) - np.float32(0.5) * np.float16([0.1, 0.2, -0.3]).astype(
        np.float32
    )
    assert new["w"].dtype == jnp.float32
    np.testing.assert_array_equal(new["w"], expected)


def test_none_leaves_pass_through_and_python_floats_are_params() -> None:
    params = {"w": 2.0, "frozen": None}
    opt = jopt.SGD(0.5)
    new, _ = opt.apply({"w": 1.0, "frozen": None}, opt.init(params), params)
    assert new["frozen"] is None and float(new["w"]) == 1.5


# Data types (states, configurations) take no arguments a user passes wrongly by hand.
NOT_CALLED_WITH_USER_INPUT = {
    # The capabilities are abstract bases and protocols: declared, never called.
    "Applies",
    "Composite",
    "HasLearningRate",
    "LiveHyperparams",
    "PerLeafRule",
    "StateContainer",
    "EvaluatesLoss",
    "Chain",  # built by jopt.chain, whose arguments have rows
    "Block",
    "Bucketed",
    "BucketedState",
    "GradientTransformation",
    "LBFGSState",
    "LossScaleState",
    "MinimizeResult",
    "LookaheadState",
    "SAMState",
    "ScheduleFreeState",
    "Optimizer",
    "OptimizerState",
    "Partition",
    "PartitionState",
    "PlateauState",
    "RestoreReport",
    "SkipNonFiniteState",
    "StepContext",
    "Transformation",
    "LearningRateSchedule",
    "Schedule",
}
KNOWN_GAPS: set[str] = set()


def test_every_public_name_has_a_row() -> None:
    # A name counts as covered when a row's id, pattern or call's source mentions it.
    sources = {inspect.getsource(r[1]) for r in ROWS}
    text = " ".join([r[0] for r in ROWS] + [r[3] for r in ROWS] + sorted(sources))
    names = (
        {
            n
            for m in (jopt, jopt.optimizers, jopt.schedules, jopt.legacy)
            for n in m.__all__
            if not inspect.ismodule(getattr(m, n))
        }
        - NOT_CALLED_WITH_USER_INPUT
        - KNOWN_GAPS
    )
    missing = sorted(n for n in names if n not in text)
    assert not missing, f"add bad-input rows for {missing}"


# ---- non-finite gradients: what each optimizer does (documented in
# jopt/optimizers/loss_scale.py), against Keras 3 ----------------------------------------

# (class, options, which params a NaN in one gradient element reaches, same for +Inf):
# "element" = that element only, "leaf" = its whole leaf, "all" = every leaf, "none".
NON_FINITE = [
    ("SGD", {}, "element", "element"),
    ("SGD", {"momentum": 0.9}, "element", "element"),
    ("RMSprop", {}, "element", "element"),
    ("Adam", {}, "element", "element"),
    ("AdamW", {}, "element", "element"),
    ("Adamax", {}, "element", "element"),
    ("Nadam", {}, "element", "element"),
    ("Adagrad", {}, "element", "element"),
    ("Adadelta", {}, "element", "element"),
    ("Ftrl", {}, "element", "element"),
    ("ScheduleFreeAdamW", {}, "element", "element"),
    ("Lion", {}, "element", "none"),  # sign(+Inf) = 1: a finite step
    ("Lamb", {}, "element", "element"),  # a NaN norm fails the trust ratio's test: ratio 1
    ("Adafactor", {}, "leaf", "leaf"),  # factored moments mix the whole leaf
    ("Muon", {}, "leaf", "leaf"),  # Newton-Schulz mixes the whole matrix
    ("SGD", {"clipnorm": 1.0}, "leaf", "element"),  # Inf: the others are scaled by c / inf = 0
    ("SGD", {"global_clipnorm": 1.0}, "all", "all"),
]


def nonfinite_problem(bad: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(0)
    w0 = [rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal(4).astype(np.float32)]
    g = [rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal(4).astype(np.float32)]
    g[0][0, 1] = bad
    return w0, g


def scope(params: list[np.ndarray]) -> str:
    bad = [~np.isfinite(p) for p in params]
    if not any(b.any() for b in bad):
        return "none"
    if all(b.all() for b in bad):
        return "all"
    if bad[0].all() and not bad[1].any():
        return "leaf"
    if bad[0].sum() == 1 and bad[0][0, 1] and not bad[1].any():
        return "element"
    return "other"


@pytest.mark.parametrize(
    ("name", "options", "nan_scope", "inf_scope"),
    NON_FINITE,
    ids=[f"{n}{o or ''}" for n, o, _, _ in NON_FINITE],
)
def test_a_plain_optimizer_propagates_non_finite_gradients_as_keras_does(
    name: str, options: dict[str, Any], nan_scope: str, inf_scope: str
) -> None:
    import keras  # the oracle; imported here so the rest of the file does not need it

    for bad, expected_scope in ((np.nan, nan_scope), (np.inf, inf_scope)):
        w0, g = nonfinite_problem(bad)
        variables = [keras.Variable(x) for x in w0]
        getattr(keras.optimizers, name)(learning_rate=0.1, **options).apply_gradients(
            zip([jnp.asarray(x) for x in g], variables, strict=True)
        )
        expected = [np.asarray(v.value) for v in variables]
        opt = getattr(jopt, name)(learning_rate=0.1, **options)
        params = [jnp.asarray(x) for x in w0]
        new, state = opt.apply([jnp.asarray(x) for x in g], opt.init(params), params)
        got = [np.asarray(x) for x in new]
        assert scope(got) == scope(expected) == expected_scope
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
            np.testing.assert_array_equal(np.isposinf(a), np.isposinf(b))
        assert int(state.step) == 1  # the step is taken, and counted


@pytest.mark.parametrize("wrapper", ["SkipNonFinite", "LossScaleOptimizer"])
def test_the_skip_wrappers_leave_params_and_state_untouched_bit_for_bit(wrapper: str) -> None:
    opt = getattr(jopt, wrapper)(jopt.Adam(0.1))
    w0, g = nonfinite_problem(np.nan)
    params = [jnp.asarray(x) for x in w0]
    state = opt.init(params)
    # One finite step first, so the state holds non-zero slots to keep.
    params, state = opt.apply([jnp.ones_like(p) for p in params], state, params)
    for bad in (np.nan, np.inf, -np.inf):
        _, g = nonfinite_problem(bad)
        new, new_state = jax.jit(opt.apply)([jnp.asarray(x) for x in g], state, params)
        chex.assert_trees_all_equal(new, params)
        chex.assert_trees_all_equal(new_state.inner, state.inner)  # slots, step, all of it
        if wrapper == "SkipNonFinite":
            assert int(new_state.skipped) == int(state.skipped) + 1
        else:
            assert float(new_state.scale) == float(state.scale) / 2
            assert int(new_state.step_counter) == 0
        state = new_state
