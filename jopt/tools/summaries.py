"""Readable summaries of optimizer states: step, learning rate, live values, memory by slot.

A state is a pytree of arrays; printed raw it is a wall of numbers. :func:`summary`
gives what one wants to see in a notebook instead, as text or (in IPython and Jupyter)
an HTML table. The current learning rate needs the optimizer (a schedule lives in the
optimizer, its step in the state), so it is shown when the optimizer is given, and a
:class:`jopt.TrainState`, which holds both, always shows it.
"""

from __future__ import annotations

import dataclasses
import html
from typing import Any, Protocol, runtime_checkable

import jax
import numpy as np

from jopt.core.protocol import Composite, HasLearningRate, StateContainer, is_transformation
from jopt.core.slot_storage import is_quantized
from jopt.core.state import OptimizerState, set_state_display

__all__ = ["StateSummary", "Summarizable", "lr_of", "step_of", "summary"]

PyTree = Any


@runtime_checkable
class Summarizable(Protocol):
    """An object that holds an optimizer, its state and the params (a
    :class:`jopt.TrainState`), which :func:`summary` takes as it is."""

    def summary_parts(self) -> tuple[Any, Any, Any]:
        """``(optimizer, params, optimizer state)``."""
        ...


def step_of(state: PyTree) -> jax.Array:
    """The update count of a jopt state: its own ``step``, a container's ``step``
    counter, or the first one found inside it (a wrapper's inner state, a
    :func:`jopt.chain`'s dict).

    Raises:
        TypeError: no jopt state (hence no step count) inside ``state``.
    """
    if isinstance(state, OptimizerState):
        return state.step
    if isinstance(state, StateContainer):
        counters = state.counters()
        if "step" in counters:
            return counters["step"]
        children: Any = list(state.children().values())
    elif isinstance(state, dict | tuple | list):
        children = list(state.values()) if isinstance(state, dict) else list(state)
    else:
        children = []
    for child in children:
        try:
            return step_of(child)
        except TypeError:
            continue
    raise TypeError(
        f"no jopt step count found in a {type(state).__name__} state: the step is read "
        "from a jopt optimizer's state (or one inside a chain, partition or wrapper)"
    )


def lr_of(opt: Any, state: PyTree) -> Any:
    """``opt.lr(state)``, the rate of the next update (a dict by group for a partition).

    Raises:
        TypeError: ``opt`` reports no learning rate (it lacks ``HasLearningRate``).
    """
    if not isinstance(opt, HasLearningRate):
        raise TypeError(
            f"{type(opt).__name__} reports no learning rate (it lacks the HasLearningRate "
            "capability of jopt's optimizers, wrappers, chains and partitions): read "
            "jopt.hyperparams(state)"
        )
    return opt.lr(state)


# ---- formatting ----------------------------------------------------------------------


def _nbytes(leaf: Any) -> int:
    return int(np.prod(np.shape(leaf), dtype=np.int64)) * np.dtype(leaf.dtype).itemsize


def format_bytes(n: int) -> str:
    """``n`` bytes in binary units: ``'8 B'``, ``'5.0 KiB'``, ``'1.2 GiB'``."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def describe_tree(tree: PyTree) -> str:
    """``'2 arrays of 1,290 float32 (5.0 KiB)'``: array count, element count, dtypes, memory.

    Works on concrete, traced and abstract (``jax.eval_shape``) arrays alike.
    """
    # An 8-bit slot leaf (codes and block scales) counts as one array of its codes' size.
    leaves = [x for x in jax.tree.leaves(tree, is_leaf=is_quantized) if hasattr(x, "shape")]
    size = sum(int(np.prod(np.shape(x), dtype=np.int64)) for x in leaves)
    dtypes = ", ".join(dict.fromkeys(_dtype_name(x) for x in leaves)) or "values"
    arrays = "1 array" if len(leaves) == 1 else f"{len(leaves)} arrays"
    nbytes = sum(_nbytes(a) for a in jax.tree.leaves(leaves))
    return f"{arrays} of {size:,} {dtypes} ({format_bytes(nbytes)})"


def _dtype_name(x: Any) -> str:
    return "8-bit blocks" if is_quantized(x) else str(np.dtype(x.dtype))


def format_value(x: Any) -> str:
    """A scalar as a short number (``0.1``, ``300``); a batched one (a sweep's) as its
    values; a traced one as its type."""
    if isinstance(x, dict):
        return "{" + ", ".join(f"{k!r}: {format_value(v)}" for k, v in x.items()) + "}"
    if isinstance(x, jax.core.Tracer):
        return f"traced {x.dtype}{list(np.shape(x))}"
    if isinstance(x, jax.ShapeDtypeStruct):  # jax.eval_shape's: no values
        return f"{x.dtype}{list(x.shape)}"
    a = np.asarray(x)
    if a.ndim == 0:
        if np.issubdtype(a.dtype, np.integer) or a.dtype == bool:
            return str(a.item())
        return repr(float(f"{float(a):.6g}"))  # 0.1, not 0.10000000149011612
    return np.array2string(a, precision=4, threshold=8, separator=" ")


def _try(fn: Any) -> Any:
    try:
        return format_value(fn())
    except Exception:  # e.g. an abstract state: nothing to evaluate
        return "?"


# ---- the summary ---------------------------------------------------------------------


Rows = tuple[tuple[str, str], ...]


@dataclasses.dataclass(frozen=True)
class StateSummary:
    """What :func:`summary` returns: ``str()`` gives a text table, IPython an HTML one.

    Attributes:
        title: the optimizer's repr (or the state's type when no optimizer was given).
        sections: ``(heading, rows)`` pairs, one per optimizer state inside (a partition
            or a chain holds several); each row is ``(what, value)`` as text.
        headline: the few values of a one-line repr (``step``, ``lr``, ``params``,
            ``opt_state``).

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> s = jopt.summary(jopt.SGD(0.1).init({"w": jnp.ones(3)}))
        >>> s.headline["step"]
        '0'
    """

    title: str
    sections: tuple[tuple[str, Rows], ...]
    headline: dict[str, str]

    def __str__(self) -> str:
        width = max((len(k) for _, rows in self.sections for k, _ in rows), default=0) + 2
        lines = [self.title]
        for heading, rows in self.sections:
            indent = "  "
            if heading:
                lines.append(f"  {heading}")
                indent = "    "
            lines += [f"{indent}{k:<{width}}{v}" for k, v in rows]
        return "\n".join(lines)

    def one_line(self, name: str) -> str:
        """``name(step=..., lr=..., ...)`` from :attr:`headline`: a compact repr."""
        return f"{name}({', '.join(f'{k}={v}' for k, v in self.headline.items())})"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))

    def _repr_html_(self) -> str:
        e = html.escape
        out = [
            "<table>",
            f'<tr><th colspan="2" style="text-align:left">{e(self.title)}</th></tr>',
        ]
        for heading, rows in self.sections:
            if heading:
                out.append(
                    f'<tr><td colspan="2" style="text-align:left"><i>{e(heading)}</i></td></tr>'
                )
            out += [
                f'<tr><td style="text-align:left">{e(k)}</td>'
                f'<td style="text-align:left"><code>{e(v)}</code></td></tr>'
                for k, v in rows
            ]
        return "\n".join([*out, "</table>"])


def _walk(opt: Any, state: PyTree, path: str, out: list[tuple[str, Rows]]) -> None:
    """Appends a section for ``state`` (and for each state inside it)."""
    heading = path + (f": {opt!r}" if opt is not None and path else "")
    if isinstance(state, OptimizerState):
        rows: list[tuple[str, str]] = [("step", format_value(state.step))]
        if isinstance(opt, HasLearningRate):
            rows.append(("lr (next update)", _try(lambda: opt.lr(state))))
        hyper = ", ".join(f"{k}={format_value(v)}" for k, v in state.hyperparams.items())
        rows.append(("hyperparams", hyper or "none"))
        rows += [(f"slot {name}", describe_tree(slot)) for name, slot in state.slots.items()]
        rows += [(f"scalar {name}", format_value(v)) for name, v in state.scalars.items()]
        if state.layout is not None:
            laid = state.layout
            rows.append(
                ("layout", f"{len(laid.places)} leaves in {len(laid.buckets)} flat buckets")
            )
        out.append((heading, tuple(rows)))
        return
    members = opt.members() if isinstance(opt, Composite) else {}
    if isinstance(state, StateContainer):
        # A wrapper's, partition's or layout's state: its counters, then each child.
        counters = [
            (k, v if isinstance(v, str) else format_value(v)) for k, v in state.counters().items()
        ]
        out.append((heading, tuple(counters)))
        children = state.children()
    elif isinstance(state, dict) and state:  # a jopt.chain's state, by name
        if heading:
            out.append((heading, ()))
        children = {f"[{k!r}]": v for k, v in state.items()}
    elif not jax.tree.leaves(state):
        out.append((heading, (("state", "none (holds no arrays)"),)))
        return
    elif isinstance(state, tuple) and not hasattr(type(state), "_fields") and len(state) > 1:
        # An optax chain's state: a tuple of its members' states, each its own section.
        if heading:
            out.append((heading, ()))
        children = {f"[{i}]": v for i, v in enumerate(state)}
    elif isinstance(state, tuple) and hasattr(type(state), "_fields"):
        # An optax state (ScaleByAdamState...): its fields by name.
        rows = [
            (f, format_value(v) if _is_scalar(v) else describe_tree(v))
            for f, v in zip(type(state)._fields, state, strict=True)  # type: ignore[attr-defined]
            if jax.tree.leaves(v)
        ]
        out.append((heading or type(state).__name__, tuple(rows) or (("state", "none"),)))
        return
    else:  # any other transformation's state
        out.append((heading, ((type(state).__name__, describe_tree(state)),)))
        return
    for key, child in children.items():
        _walk(members.get(key), child, path + key, out)


def summary(state: PyTree, opt: Any = None, *, params: PyTree = None) -> StateSummary:
    """Returns a readable summary of an optimizer state, as text or an IPython table.

    For each jopt optimizer state inside ``state`` (one, or several in a partition,
    chain or wrapper): the step, the learning rate of the next update (when ``opt`` is
    given: it holds the schedule), the live hyperparameters, and each slot's array
    count, dtype and memory; a wrapper's counters (``skipped``, ``scale``) too. With
    ``params``, their size as well. A :class:`jopt.TrainState` passed as ``state``
    gives all of these itself. Traced and abstract states are summarized by shape.

    ``print(summary(...))`` gives the text; in Jupyter, the value alone shows a table.
    :class:`jopt.OptimizerState` and :class:`jopt.TrainState` display this way in
    IPython by themselves (``repr`` stays the plain one for an OptimizerState).

    Args:
        state: an optimizer's state (or a :class:`jopt.TrainState`).
        opt: the optimizer that made it, to show the current learning rate.
        params: the params, to show their size.

    Raises:
        TypeError: ``state`` is an optimizer, not a state.

    Example:
        >>> import jax.numpy as jnp, jopt
        >>> opt = jopt.Adam(jopt.schedules.ExponentialDecay(0.1, 10, 0.5))
        >>> state = opt.init({"w": jnp.ones((4, 3)), "b": jnp.zeros(3)})
        >>> print(jopt.summary(state, opt))  # doctest: +NORMALIZE_WHITESPACE
        Adam(learning_rate=ExponentialDecay(initial_learning_rate=0.1, decay_steps=10, \
decay_rate=0.5))
          step              0
          lr (next update)  0.1
          hyperparams       learning_rate_scale=1.0, beta_1=0.9, beta_2=0.999, epsilon=1e-07
          slot momentum     2 arrays of 15 float32 (60 B)
          slot velocity     2 arrays of 15 float32 (60 B)
          total             140 B in 9 arrays
    """
    if isinstance(state, Summarizable):  # a TrainState
        opt, params, state = state.summary_parts()
    if isinstance(state, str | bytes | int | float | bool) or state is None:
        raise TypeError(f"summary takes an optimizer's state, got {state!r:.100}")
    if is_transformation(state):
        raise TypeError(
            f"summary(state, opt) takes an optimizer's state first, got the optimizer "
            f"{state!r:.100}: call jopt.summary(opt.init(params), opt)"
        )
    sections: list[tuple[str, Rows]] = []
    _walk(opt, state, "", sections)
    leaves = [x for x in jax.tree.leaves(state) if hasattr(x, "dtype")]
    total = (
        "total",
        f"{format_bytes(sum(map(_nbytes, leaves)))} in {len(leaves)} "
        f"array{'s' if len(leaves) != 1 else ''}",
    )
    first_heading, first_rows = sections[0]
    if len(sections) == 1 and not first_heading:
        sections = [("", (*first_rows, total))]
    else:
        sections.append(("", (total,)))
    if params is not None:
        heading, rows = sections[0]
        if heading:
            sections.insert(0, ("", (("params", describe_tree(params)),)))
        else:
            sections[0] = (heading, (("params", describe_tree(params)), *rows))

    headline: dict[str, str] = {}
    try:
        headline["step"] = format_value(step_of(state))
    except TypeError:
        pass
    if opt is not None:
        try:
            headline["lr"] = format_value(lr_of(opt, state))
        except TypeError:  # a chain: no readable rate, so none shown
            pass
        except Exception:
            headline["lr"] = "?"
        headline["opt"] = repr(opt)
    if params is not None:
        headline["params"] = describe_tree(params)
    if isinstance(state, OptimizerState) and state.slots:
        slots = ", ".join(
            f"{k} {format_bytes(sum(map(_nbytes, jax.tree.leaves(v))))}"
            for k, v in state.slots.items()
        )
        headline["opt_state"] = f"{{{slots}}}"
    else:
        headline["opt_state"] = total[1]
    title = repr(opt) if opt is not None else type(state).__name__
    if opt is not None and _changed_live(opt, state):
        # The repr gives the constructor's values; the rows below give the live ones.
        title += " (constructor's values; live values below)"
    return StateSummary(title, tuple(sections), headline)


def _changed_live(opt: Any, state: PyTree) -> bool:
    """Whether a live hyperparameter of ``state`` differs from ``opt``'s constructor."""
    initial = getattr(opt, "initial_hyperparams", None)
    if not isinstance(state, OptimizerState) or initial is None:
        return False
    try:
        start = initial()
        return any(
            name in start and float(np.asarray(v)) != float(np.float32(start[name]))
            for name, v in state.hyperparams.items()
            if np.size(v) == 1 and not isinstance(v, jax.core.Tracer)
        )
    except (TypeError, ValueError):
        return False


def _is_scalar(x: Any) -> bool:
    return isinstance(x, jax.Array | np.ndarray | np.generic) and np.ndim(x) == 0


# Every jopt state shows in IPython as its summary.
set_state_display(summary)
