"""``plot``: a schedule's rate against the step, as a matplotlib figure for notebooks."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from jopt.core.validation import check_int, check_step

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot"]


def _steps(steps: Any) -> np.ndarray:
    if isinstance(steps, numbers.Integral) and not isinstance(steps, bool):
        return np.arange(check_int("steps", steps, 1))
    try:
        check_step(steps)
    except TypeError:
        raise TypeError(
            f"steps must be a number of steps or a 1-D array of steps, got {steps!r:.60}"
        ) from None
    grid = np.asarray(steps)
    if grid.ndim != 1 or grid.size == 0:
        raise ValueError(
            f"steps must be a number of steps or a 1-D array of steps, got shape {grid.shape}"
        )
    return grid


def plot(
    schedule: Any,
    steps: Any,
    *,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Draws a schedule's rate at each step and returns the matplotlib figure.

    Any schedule (a callable ``step -> rate``) works; it is evaluated once on all the
    steps under ``jax.jit``. A dict ``{label: schedule}`` draws several on one axes,
    with a legend. The figure is made without ``pyplot`` (no global state, any
    backend); a notebook displays a returned figure, and ``fig.savefig(path)`` writes it.
    Needs matplotlib (the ``demo`` extra).

    Args:
        schedule: a schedule, or a dict of them by label.
        steps: a number of steps ``n`` (drawn at ``0 .. n - 1``), or a 1-D array of steps.
        ax: draw into these matplotlib axes instead of a new figure (their figure is
            returned).
        title: the title (default: the schedule's repr, or none for a dict).

    Returns:
        The ``matplotlib.figure.Figure``.

    Raises:
        TypeError: ``schedule`` is not callable (or a dict of callables), or ``steps``
            is not a number of steps or an array of them.
        ValueError: ``steps`` is < 1, or not 1-D.

    Example:
        >>> import jopt
        >>> fig = jopt.schedules.plot(jopt.schedules.OneCycle(0.1, 100), 100)
        >>> ax = fig.axes[0]
        >>> ax.get_xlabel(), ax.get_ylabel(), len(ax.lines[0].get_ydata())
        ('step', 'learning rate', 100)
    """
    curves = dict(schedule) if isinstance(schedule, Mapping) else {None: schedule}
    if not curves:
        raise TypeError("schedule must be a schedule or a dict of them, got an empty dict")
    for label, s in curves.items():
        if not callable(s):
            where = "schedule" if label is None else f"schedule[{label!r}]"
            raise TypeError(f"{where} must be a schedule (a callable step -> rate), got {s!r:.100}")
    grid = _steps(steps)
    if ax is None:
        from matplotlib.figure import Figure  # matplotlib is optional: only plot needs it

        fig = Figure(figsize=(6.4, 3.6), layout="constrained")
        ax = fig.add_subplot()
    for label, s in curves.items():
        rates = np.asarray(jax.jit(lambda t, s=s: jnp.asarray(s(t), jnp.float32))(grid))
        ax.plot(grid, np.broadcast_to(rates, grid.shape), label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    ax.grid(alpha=0.3)
    if title is None and len(curves) == 1 and None in curves:
        title = repr(schedule)
    if title:
        ax.set_title(title, fontsize=9)
    if None not in curves:
        ax.legend(fontsize=8)
    figure = ax.get_figure()
    assert figure is not None
    return figure  # type: ignore[return-value]
