"""An optimizer's configuration: its arguments checked once by their declarations, then
frozen, hashable (so an optimizer is a valid static argument to ``jax.jit``), readable
(``repr``) and written as Keras's config."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, ClassVar

from typing_extensions import Self

from jopt import schedules
from jopt.core.declarations import Hyperparam, check_signature, declared_in, validate
from jopt.core.frozen import Frozen
from jopt.core.options import OPTION_DEFAULTS, DeclaredOptions, validate_options
from jopt.optimizers.rate_argument import LearningRate, check_decay, resolve_learning_rate

__all__ = ["Configuration"]

# Signature parameters that are not the rule's: the rate, and options a class lists in
# its signature for Keras's default or order (AdamW's and Muon's weight_decay).
_NOT_RULE = frozenset({"learning_rate", "lr", "decay", "name", *OPTION_DEFAULTS})


class Configuration(Frozen, DeclaredOptions):
    """The configuration half of :class:`jopt.Optimizer`: Keras's arguments, each
    declared once (:mod:`jopt.core.declarations`), checked, stored as frozen attributes
    and in :meth:`get_config`'s order.

    Example:
        >>> import jopt
        >>> jopt.SGD(0.1, momentum=0.9) == jopt.SGD(0.1, momentum=0.9)
        True
    """

    #: Keras's default ``name`` (its auto name, without the per-process counter).
    keras_name: ClassVar[str] = "optimizer"

    #: The rule's arguments, each declared once (:class:`~jopt.core.declarations.Hyperparam`
    #: class attributes, the base options' aside), in signature order; derived.
    rule_hyperparams: ClassVar[tuple[Hyperparam[Any], ...]] = ()

    #: The rule's numeric arguments held live in the state (see :meth:`initial_hyperparams`),
    #: in signature order: those declared ``live``. Booleans, integers that shape the
    #: program (``ns_steps``) and values only ``init`` reads (``initial_accumulator_value``)
    #: stay in the config. Derived from the declarations.
    hyperparam_names: ClassVar[tuple[str, ...]] = ()

    #: Those of them whose constructor value 0 or ``None`` leaves a part of the rule out
    #: (SGD's ``momentum``; declared ``live="when on"``): held only when on, as the base
    #: options are. Derived from the declarations.
    optional_hyperparams: ClassVar[frozenset[str]] = frozenset()

    #: The constructor's rate (or schedule). It does not follow ``set_hyperparams``: the
    #: optimizer is frozen and the live value is in the state; read it with ``lr(state)``.
    learning_rate: LearningRate
    decay: float
    name: str
    # The base options are declared (and typed) in DeclaredOptions.

    _instead = "build a new one, or change live values in the state with jopt.set_hyperparams,"

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        """Derives the class's hyperparameter lists from its declarations and checks its
        ``__init__`` signature against them (not for an ``abstract`` base, whose
        ``__init__`` takes the rule as a dict)."""
        super().__init_subclass__(**kwargs)
        # Everything else about a hyperparameter follows from its one declaration.
        options = set(OPTION_DEFAULTS)
        cls.rule_hyperparams = tuple(h for h in declared_in(cls) if h.name not in options)
        cls.hyperparam_names = tuple(h.name for h in cls.rule_hyperparams if h.live)
        cls.optional_hyperparams = frozenset(
            h.name for h in cls.rule_hyperparams if h.live == "when on"
        )
        if "__init__" in vars(cls) and not abstract:
            check_signature(cls, cls.rule_hyperparams, skip=_NOT_RULE)

    def _configure(
        self, learning_rate: Any, rule: dict[str, Any], options: Mapping[str, Any]
    ) -> None:
        """Checks the arguments (the rule's by their declarations) and stores them."""
        options = dict(options)
        lr = options.pop("lr", None)
        decay = options.pop("decay", 0.0)
        name = options.pop("name", None)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string or None, got {name!r:.100}")
        rule = validate(self.rule_hyperparams, rule, type(self).__name__)
        config = {
            "learning_rate": resolve_learning_rate(learning_rate, lr),
            **self.check_relations(rule),
            **validate_options(options),
            "decay": check_decay(decay),
            "name": self.keras_name if name is None else name,
        }
        self._freeze(config)

    @classmethod
    def check_relations(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Checks what no single declaration can (Rprop's ``max_step_size >=
        min_step_size``) and fills a default that depends on another value (Prodigy's
        ``beta_3``); returns the values to store. Runs on the constructor's values,
        each already checked, and on the live ones ``set_hyperparams`` would hold.
        The default accepts them as they are."""
        return values

    def __repr__(self) -> str:
        params = inspect.signature(type(self).__init__).parameters
        # A class's own signature default (AdamW's weight_decay) wins over the common one.
        defaults = OPTION_DEFAULTS | {"decay": 0.0, "name": self.keras_name}
        defaults |= {k: p.default for k, p in params.items() if k not in ("name", "decay")}
        shown = []
        for key, value in self._config:
            default_value = defaults.get(key, inspect.Parameter.empty)
            if default_value is inspect.Parameter.empty or value != default_value:
                shown.append(f"{key}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def get_config(self) -> dict[str, Any]:
        """Returns the config dict, Keras's keys and values (schedules serialized).

        Example:
            >>> import jopt
            >>> jopt.SGD(momentum=0.9).get_config()["momentum"]
            0.9
        """
        config = dict(self._config)
        if config["slot_dtypes"] is not None:
            config["slot_dtypes"] = dict(config["slot_dtypes"])
        if isinstance(self.learning_rate, schedules.LearningRateSchedule):
            config["learning_rate"] = schedules.serialize(self.learning_rate)
        # jopt's extras are written only when used, so the rest is exactly Keras's dict.
        for key, off in (
            ("decay", 0.0),
            ("exclude_from_weight_decay", None),
            ("slot_dtypes", None),
            ("master_weights", False),
            ("layout", "auto"),
        ):
            if config[key] == off:
                del config[key]
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Self:
        """Rebuilds an optimizer from :meth:`get_config`'s (or Keras's) dict.

        Keras's base options are taken with their Keras meaning.
        """
        return cls(**config)
