"""Wrappers that guard an optimizer against non-finite gradients.

:class:`SkipNonFinite` skips any update whose gradients hold NaN or Inf and counts the
skipped steps; :class:`LossScaleOptimizer` is Keras's dynamic loss scaling built on the
same skip. Either way a skipped step leaves params and the inner state bit-for-bit
untouched: the state is never half-updated.

A plain optimizer takes the step and propagates NaN and Inf exactly as Keras 3 does
(``tests/test_bad_input.py`` checks each against Keras). A NaN or Inf in one gradient
element reaches, in the params after the step (and in the slots it feeds, for good):

* that element only: SGD (with or without momentum), RMSprop, Adam, AdamW, Adamax,
  Nadam, Adagrad, Adadelta, Ftrl, Lamb (a NaN norm fails the trust ratio's test, which
  then is 1), ScheduleFreeAdamW; Lion for NaN, while an Inf gives ``sign(Inf) = 1``, a
  finite step;
* its whole leaf: Adafactor (factored moments mix rows and columns), Muon on its 2-D
  leaves (Newton-Schulz mixes the matrix; its AdamW-rule leaves: the element), and
  ``clipnorm`` for a NaN (an Inf scales the leaf's other elements by ``c / inf = 0``);
* every leaf: ``global_clipnorm``.

The step count advances either way. Guard a run with :class:`SkipNonFinite` (or
:class:`LossScaleOptimizer` for float16 training) rather than repairing a NaN'd state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from jopt.composites.delegation import WrapsOne
from jopt.composites.loss_scale_args import (
    check_loss_scale_arguments,
    loss_scale_kwargs_from_config,
)
from jopt.core.placement import replicate_like
from jopt.core.protocol import Applies, apply_step, require_transformation
from jopt.core.pytrees import check_float_leaves
from jopt.core.registry import register_config_class
from jopt.core.serialization import serialize
from jopt.core.state import html_state, pretty_state
from jopt.core.validation import check_int, check_number

__all__ = ["LossScaleOptimizer", "LossScaleState", "SkipNonFinite", "SkipNonFiniteState"]

PyTree = Any


def all_finite(grads: PyTree) -> jax.Array | bool:
    """True when every element of every leaf is finite."""
    leaves = jax.tree.leaves(grads)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in leaves])) if leaves else True


def _select(keep_new: jax.Array | bool, new: PyTree, old: PyTree) -> PyTree:
    return jax.tree.map(lambda n, o: jnp.where(keep_new, n, o), new, old)


class Wrapper(WrapsOne, Applies):
    """What the non-finite wrappers share: any inner transformation, a frozen config,
    the guarded ``update``/``apply``, ``lr`` and ``apply_gradients`` through the inner."""

    inner: Any
    #: The state type this wrapper's ``init`` makes.
    state_type: ClassVar[type]

    def __post_init__(self) -> None:
        require_transformation(self.inner, f"{type(self).__name__}'s inner")

    def init(self, params: PyTree) -> Any:
        """The wrapper's initial state; each wrapper defines it."""
        raise NotImplementedError

    def _check_state(self, state: Any, what: str) -> None:
        if not isinstance(state, self.state_type):
            raise TypeError(
                f"{type(self).__name__}.{what} expects the {self.state_type.__name__} made "
                f"by its init, got {type(state).__name__}: a state of another (unwrapped "
                "or differently wrapped) optimizer"
            )

    def update(
        self, grads: PyTree, state: Any, params: PyTree | None = None, **extra: Any
    ) -> tuple[PyTree, Any]:
        """Returns ``(updates, new_state)``; a skipped step's updates are zeros."""
        del extra
        self._check_state(state, "update")
        zeros = jax.tree.map(jnp.zeros_like, grads)
        return self._guarded(lambda g, s: self.inner.update(g, s, params), zeros, grads, state)

    def apply(self, grads: PyTree, state: Any, params: PyTree) -> tuple[PyTree, Any]:
        """Returns ``(new_params, new_state)``; a skipped step returns ``params`` as they are."""
        self._check_state(state, "apply")
        return self._guarded(
            lambda g, s: apply_step(self.inner, g, s, params), params, grads, state
        )

    def _guarded(self, step: Any, skipped: PyTree, grads: PyTree, state: Any) -> Any:
        """Runs ``step(grads, inner_state) -> (result, inner_state)`` when ``grads`` are
        all finite; otherwise returns ``skipped`` and the inner state untouched."""
        raise NotImplementedError

    def __repr__(self) -> str:
        """The class and its non-default arguments, as an optimizer's repr."""
        shown = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if f.default is dataclasses.MISSING or getattr(self, f.name) != f.default
        ]
        return f"{type(self).__name__}({', '.join(shown)})"


class SkipNonFiniteState(NamedTuple):
    """``inner``: the wrapped optimizer's state; ``skipped``: int32 count of skipped steps.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> state = jopt.SkipNonFinite(jopt.Adam()).init({"w": jnp.ones(2)})
        >>> int(state.skipped), int(state.inner.step)
        (0, 0)
    """

    inner: Any
    skipped: jax.Array

    def children(self) -> Mapping[str, Any]:
        """``{".inner": inner}``."""
        return {".inner": self.inner}

    def counters(self) -> Mapping[str, Any]:
        """``{"skipped": skipped}``."""
        return {"skipped": self.skipped}

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        pretty_state(self, p, cycle)

    def _repr_html_(self) -> str:
        return html_state(self)


@dataclasses.dataclass(frozen=True, repr=False)
class SkipNonFinite(Wrapper):
    """Skips every update whose gradients hold NaN or Inf, and counts the skipped steps.

    Rule: if all gradients are finite, the inner optimizer's update; otherwise params,
    the inner state (step count included) are returned unchanged and
    ``state.skipped += 1``. Decided on all leaves at once, so no leaf is half-updated.

    Args:
        inner: the optimizer to guard.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> opt = jopt.SkipNonFinite(jopt.SGD(0.1))
        >>> params = {"w": jnp.ones(2)}
        >>> state = opt.init(params)
        >>> params, state = opt.apply_gradients({"w": jnp.array([1.0, jnp.nan])}, state, params)
        >>> params["w"], int(state.skipped), int(state.inner.step)
        (Array([1., 1.], dtype=float32), 1, 0)
    """

    inner: Any
    state_type: ClassVar[type] = SkipNonFiniteState

    @property
    def name(self) -> str:
        """The inner transformation's name (Keras's), so a chain names it alike."""
        name = getattr(self.inner, "name", None)
        return name if isinstance(name, str) else "skip_non_finite"

    def init(self, params: PyTree) -> SkipNonFiniteState:
        """The inner state and a zero skip count."""
        skipped = replicate_like(jnp.zeros([], jnp.int32), params)
        return SkipNonFiniteState(self.inner.init(params), skipped)

    def _guarded(
        self, step: Any, skipped: Any, grads: PyTree, state: SkipNonFiniteState
    ) -> tuple[Any, SkipNonFiniteState]:
        finite = all_finite(grads)
        result, inner = step(grads, state.inner)
        return _select(finite, result, skipped), SkipNonFiniteState(
            _select(finite, inner, state.inner), state.skipped + jnp.where(finite, 0, 1)
        )


class LossScaleState(NamedTuple):
    """``inner``: the wrapped optimizer's state; ``scale``: float32 current loss scale;
    ``step_counter``: int32 finite steps since the scale last changed (Keras's names).

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> state = jopt.LossScaleOptimizer(jopt.Adam()).init({"w": jnp.ones(2)})
        >>> float(state.scale), int(state.step_counter)
        (32768.0, 0)
    """

    inner: Any
    scale: jax.Array
    step_counter: jax.Array

    def children(self) -> Mapping[str, Any]:
        """``{".inner": inner}``."""
        return {".inner": self.inner}

    def counters(self) -> Mapping[str, Any]:
        """``{"scale": scale, "step_counter": step_counter}``."""
        return {"scale": self.scale, "step_counter": self.step_counter}

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        pretty_state(self, p, cycle)

    def _repr_html_(self) -> str:
        return html_state(self)


@register_config_class
@dataclasses.dataclass(frozen=True, repr=False, init=False)
class LossScaleOptimizer(Wrapper):
    """Keras's dynamic loss scaling around an optimizer.

    Multiply the loss by ``opt.scale_loss(loss, state)`` (the current scale) before
    differentiating; the wrapper divides the gradients by the same scale. Rule per step:

    * gradients not all finite: skip the update (params and inner state unchanged),
      ``scale /= 2``, ``step_counter = 0``;
    * finite: apply the inner update to ``grads / scale``; then if ``step_counter``
      is ``dynamic_growth_steps - 1``: ``scale *= 2``, ``step_counter = 0``; else
      ``step_counter += 1``.

    Args:
        inner: the optimizer to wrap (Keras's ``inner_optimizer``).
        initial_scale: > 0. Default 32768.0.
        dynamic_growth_steps: >= 1. Default 2000.

    Example:
        >>> import jax, jax.numpy as jnp, jopt
        >>> opt = jopt.LossScaleOptimizer(jopt.SGD(0.1), initial_scale=4.0)
        >>> params = {"w": jnp.array([2.0])}
        >>> state = opt.init(params)
        >>> loss = lambda p: opt.scale_loss(jnp.sum(p["w"] ** 2), state)
        >>> params, state = opt.apply_gradients(jax.grad(loss)(params), state, params)
        >>> params["w"], float(state.scale)
        (Array([1.6], dtype=float32), 4.0)
        >>> jopt.LossScaleOptimizer(inner_optimizer=jopt.SGD(0.1)) == jopt.LossScaleOptimizer(
        ...     jopt.SGD(0.1))  # Keras's keyword
        True
    """

    inner: Any
    initial_scale: float = 32768.0
    dynamic_growth_steps: int = 2000
    name: str = "loss_scale_optimizer"

    def __init__(
        self,
        inner: Any = None,
        initial_scale: float = 32768.0,
        dynamic_growth_steps: int = 2000,
        *,
        inner_optimizer: Any = None,
        name: str | None = None,
        dynamic: bool = True,
        **kwargs: Any,
    ) -> None:
        if inner is not None and inner_optimizer is not None:
            raise TypeError(
                "LossScaleOptimizer wraps one optimizer: give inner or Keras's "
                "inner_optimizer, not both"
            )
        check_loss_scale_arguments(dynamic, kwargs)
        object.__setattr__(self, "inner", inner if inner is not None else inner_optimizer)
        object.__setattr__(self, "initial_scale", initial_scale)
        object.__setattr__(self, "dynamic_growth_steps", dynamic_growth_steps)
        object.__setattr__(self, "name", "loss_scale_optimizer" if name is None else name)
        self.__post_init__()

    def __post_init__(self) -> None:
        super().__post_init__()
        check_number("initial_scale", self.initial_scale, low=0.0, low_open=True)
        check_int("dynamic_growth_steps", self.dynamic_growth_steps, 1)
        if getattr(self.inner, "loss_scale_factor", None) is not None:
            raise ValueError(
                "LossScaleOptimizer sets the inner optimizer's loss scale itself; build the "
                "inner optimizer without loss_scale_factor"
            )

    state_type: ClassVar[type] = LossScaleState

    def init(self, params: PyTree) -> LossScaleState:
        """The inner state, ``scale = initial_scale`` and ``step_counter = 0``."""
        scale, counter = replicate_like(
            (jnp.asarray(self.initial_scale, jnp.float32), jnp.zeros([], jnp.int32)), params
        )
        return LossScaleState(self.inner.init(params), scale, counter)

    def scale_loss(self, loss: jax.Array, state: LossScaleState) -> jax.Array:
        """``loss * scale``: differentiate this, and pass its gradients to the update."""
        self._check_state(state, "scale_loss")
        return loss * state.scale.astype(jnp.result_type(loss))

    def _guarded(
        self, step: Any, skipped: Any, grads: PyTree, state: LossScaleState
    ) -> tuple[Any, LossScaleState]:
        # Unscaling would promote integer grads to floats: refuse them as the inner does.
        check_float_leaves(grads, "grads")
        finite = all_finite(grads)
        unscaled = jax.tree.map(lambda g: g / state.scale, grads)  # as Keras: promotes
        result, inner = step(unscaled, state.inner)
        result = _select(finite, result, skipped)
        inner = _select(finite, inner, state.inner)
        grow = state.step_counter == self.dynamic_growth_steps - 1
        scale = jnp.where(
            finite, jnp.where(grow, state.scale * 2.0, state.scale), state.scale * 0.5
        )
        counter = jnp.where(finite & ~grow, state.step_counter + 1, 0)
        return result, LossScaleState(inner, scale, counter)

    def get_config(self) -> dict[str, Any]:
        """Keras's config: the inner optimizer serialized, the scale settings."""
        return {
            "name": self.name,
            "inner_optimizer": serialize(self.inner),
            "initial_scale": self.initial_scale,
            "dynamic_growth_steps": self.dynamic_growth_steps,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> LossScaleOptimizer:
        """Rebuilds the wrapper from :meth:`get_config`'s (or Keras's) dict.

        Older Keras configs carry the base options at their defaults; they are dropped.

        Example:
            >>> import jopt
            >>> opt = jopt.LossScaleOptimizer(jopt.SGD(0.1), initial_scale=8.0)
            >>> jopt.LossScaleOptimizer.from_config(opt.get_config()) == opt
            True
        """
        return cls(**loss_scale_kwargs_from_config(config))
