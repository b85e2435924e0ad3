"""Hyperparameters declared once: a name, a default and a check.

An optimizer class declares each argument of its rule as a class attribute::

    class Adam(Optimizer):
        beta_1 = Hyperparam(0.9, unit_interval_open)
        amsgrad = Hyperparam(False, boolean, live=False)

and that one line drives the constructor's check, :attr:`jopt.Optimizer.hyperparam_names`
(the values the state holds live), ``set_hyperparams``' check of a live value and, at
import, a check that the ``__init__`` signature's default is the declared one (the
signature stays explicit, for readers, IDEs and Keras's argument names). The attribute
is also the instance's value: ``opt.beta_1`` is the checked constructor value, typed as
the check's result.

A check is any ``check(name, value) -> value`` that returns the value to store or
raises naming ``name``, the value received and what is allowed; the common ones are
here, built on :func:`jopt.core.validation.check_number`.
"""

from __future__ import annotations

import inspect
import numbers
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, Literal, TypeVar, overload

from jopt.core.validation import check_bool, check_int, check_number

__all__ = [
    "Hyperparam",
    "boolean",
    "check_signature",
    "declared_in",
    "in_range",
    "integer",
    "keeps_int",
    "keras_epsilon",
    "non_negative",
    "none_means",
    "one_of",
    "optional",
    "positive",
    "real",
    "signature_checked",
    "unit_interval",
    "unit_interval_open",
    "validate",
]

T = TypeVar("T")
U = TypeVar("U")
C = TypeVar("C", bound=type)

Check = Callable[[str, Any], T]

# ---- checks ---------------------------------------------------------------------------


def in_range(
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> Check[float]:
    """A finite real number in an interval (a bound ``None`` is infinite), as a float.

    Example:
        >>> in_range(0.0, 1.0, low_open=True)("beta_1", 0.0)
        Traceback (most recent call last):
        ...
        ValueError: beta_1 must be in (0, 1], got 0
    """
    return partial(check_number, low=low, high=high, low_open=low_open, high_open=high_open)


#: Any finite real number.
real: Check[float] = in_range()
#: ``[0, 1)``: a decay rate that must forget (Adam's betas).
unit_interval_open: Check[float] = in_range(0.0, 1.0, high_open=True)
#: ``[0, 1]``: a momentum or decay rate that may keep everything.
unit_interval: Check[float] = in_range(0.0, 1.0)
#: ``[0, inf)``: an epsilon, a decay strength.
non_negative: Check[float] = in_range(0.0)
#: ``(0, inf)``: a threshold or scale that must be on.
positive: Check[float] = in_range(0.0, low_open=True)
#: ``True`` or ``False`` (not 0 or 1).
boolean: Check[bool] = check_bool


def integer(low: int, *, optional: bool = False) -> Check[Any]:
    """An integer >= ``low`` (a NumPy integer too; stored as ``int``); with ``optional``
    also ``None``.

    Example:
        >>> integer(0)("ns_steps", 2.5)
        Traceback (most recent call last):
        ...
        ValueError: ns_steps must be an integer >= 0, got 2.5
    """

    def check(name: str, value: Any) -> Any:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            value = int(value)
        return check_int(name, value, low, optional=optional)

    return check


def optional(check: Check[T]) -> Check[T | None]:
    """``None`` (a part of the rule left out, Muon's ``rms_rate=None``) or what ``check``
    accepts.

    Example:
        >>> optional(positive)("rms_rate", None) is None
        True
    """

    def optional_check(name: str, value: Any) -> T | None:
        return None if value is None else check(name, value)

    return optional_check


def none_means(default: U, check: Check[T]) -> Check[T | U]:
    """``None`` stands for ``default`` (tf.keras 2's ``epsilon=None``); anything else is
    checked by ``check``.

    Example:
        >>> none_means(1e-7, non_negative)("epsilon", None)
        1e-07
    """

    def none_means_check(name: str, value: Any) -> T | U:
        return default if value is None else check(name, value)

    return none_means_check


def one_of(*choices: Any) -> Check[Any]:
    """One of ``choices`` (compared with its type: ``1`` is not ``True``); a value of
    another type is a ``TypeError``, another value a ``ValueError``.

    Example:
        >>> one_of("zoom", None)("linesearch", "wolfe")
        Traceback (most recent call last):
        ...
        ValueError: linesearch must be 'zoom' or None, got 'wolfe'
    """
    allowed = " or ".join(map(repr, choices))

    def one_of_check(name: str, value: Any) -> Any:
        kinds = [type(c) for c in choices]
        if any(type(value) is type(c) and value == c for c in choices):
            return value
        error = ValueError if type(value) in kinds else TypeError
        raise error(f"{name} must be {allowed}, got {value!r:.100}")

    return one_of_check


#: Keras's ``epsilon``: ``>= 0``; ``None`` means Keras's default 1e-7 (tf.keras 2's spelling).
keras_epsilon: Check[float] = none_means(1e-7, non_negative)


def keeps_int(check: Check[float]) -> Check[int | float]:
    """``check``, but an integer stays an ``int`` (so ``jnp.power`` takes Keras's
    ``integer_pow``: Adafactor's ``beta_2_decay``, Ftrl's ``learning_rate_power``).

    Example:
        >>> keeps_int(in_range(high=0.0))("learning_rate_power", -1)
        -1
    """

    def keeps_int_check(name: str, value: Any) -> int | float:
        checked = check(name, value)
        return int(value) if isinstance(value, numbers.Integral) else checked

    return keeps_int_check


# ---- the declaration --------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Hyperparam(Generic[T]):
    """One argument of an optimizer's rule, declared once as a class attribute.

    Attributes:
        default: the constructor's default (the ``__init__`` signature must repeat it;
            the class is refused at import otherwise).
        check: ``check(name, value) -> value``; run on the constructor's value and on a
            live value given to ``set_hyperparams``.
        live: ``True``: the state holds it (a float32 scalar the compiled step reads);
            ``"when on"``: held only when the constructor's value is not 0 or ``None``
            (that part of the rule is left out otherwise, SGD's ``momentum=0``);
            ``False``: fixed by the constructor (a bool or an int that shapes the
            compiled step, or a value only ``init`` reads).
        name: the argument's name, the attribute's own (set when the class is made).

    Example:
        >>> import jopt
        >>> jopt.Adam.beta_1
        Hyperparam(beta_1=0.9)
        >>> jopt.Adam().beta_1
        0.9
    """

    default: Any
    check: Check[T]
    live: bool | Literal["when on"] = True
    name: str = ""

    def __set_name__(self, owner: type, name: str) -> None:
        object.__setattr__(self, "name", name)

    # No __set__: the instance's own value (set by the constructor) shadows this.
    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Hyperparam[T]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...
    def __get__(self, obj: object | None, owner: type | None = None) -> Hyperparam[T] | T:
        if obj is None:
            return self
        raise AttributeError(f"{type(obj).__name__} was not given {self.name!r}")

    def __repr__(self) -> str:
        return f"Hyperparam({self.name}={self.default!r})"


def declared_in(cls: type) -> tuple[Hyperparam[Any], ...]:
    """The hyperparameters ``cls`` and its bases declare: a base's first, each class's in
    the order written; a subclass's declaration of a name replaces its base's in place.

    Example:
        >>> import jopt
        >>> [h.name for h in declared_in(jopt.Adam)][:3]
        ['weight_decay', 'clipnorm', 'global_clipnorm']
    """
    found: dict[str, Hyperparam[Any]] = {}
    for klass in reversed(cls.__mro__):
        for value in vars(klass).values():
            if isinstance(value, Hyperparam):
                found[value.name] = value
    return tuple(found.values())


def validate(
    declared: Iterable[Hyperparam[Any]], values: Mapping[str, Any], owner: str
) -> dict[str, Any]:
    """Each of ``values`` checked by its declaration, in declared order.

    ``values`` must give every declared name and no other (``owner``, the class's
    name, is for that programming error's message).
    """
    declared = tuple(declared)
    names = [h.name for h in declared]
    if set(values) != set(names):
        raise TypeError(
            f"{owner} passes {sorted(values)} but declares {sorted(names)}: pass each "
            "declared hyperparameter once"
        )
    return {h.name: h.check(h.name, values[h.name]) for h in declared}


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and bool(a == b)


def check_signature(
    cls: type, declared: Iterable[Hyperparam[Any]], skip: Iterable[str] = ()
) -> None:
    """Raises ``TypeError`` unless ``cls.__init__``'s named parameters (``self``,
    ``**kwargs`` and the names in ``skip`` aside) are ``declared``'s names, in order,
    with the declared defaults (the signature and the declaration cannot disagree), and
    each declared default passes its own check."""
    skip = set(skip)
    params = [
        p
        for p in list(inspect.signature(cls.__init__).parameters.values())[1:]  # type: ignore[misc]
        if p.kind is not inspect.Parameter.VAR_KEYWORD and p.name not in skip
    ]
    declared = tuple(declared)
    got = [(p.name, p.default) for p in params]
    want = [(h.name, h.default) for h in declared]
    if [n for n, _ in got] != [n for n, _ in want] or not all(
        _same(a, b) for (_, a), (_, b) in zip(got, want, strict=True)
    ):
        raise TypeError(
            f"{cls.__module__}.{cls.__qualname__}.__init__'s signature {got} disagrees "
            f"with its declared hyperparameters {want}: give each declared name, in the "
            "declared order, with the declared default"
        )
    for h in declared:
        try:
            h.check(h.name, h.default)
        except (TypeError, ValueError) as e:
            raise TypeError(
                f"{cls.__qualname__} declares {h.name}={h.default!r}, which its check refuses: {e}"
            ) from e


def signature_checked(cls: C) -> C:
    """Class decorator: :func:`check_signature` against every declaration of ``cls``
    (for a class outside :class:`jopt.Optimizer`'s hierarchy, which checks its own)."""
    check_signature(cls, declared_in(cls))
    return cls
