"""IPython display of a state as its summary: shared by the state types of the wrappers
and groups (``SkipNonFiniteState``, ``LossScaleState``, ``PartitionState``), as
``OptimizerState`` and ``TrainState`` display. ``repr`` stays the plain one."""

from __future__ import annotations

from typing import Any

__all__ = ["repr_html", "repr_pretty"]


def repr_pretty(self: Any, p: Any, cycle: bool) -> None:
    """IPython's pretty printer: the state's :func:`jopt.summary` text."""
    from jopt.tools.summaries import summary  # summaries imports the state types' modules

    p.text(repr(self) if cycle else str(summary(self)))


def repr_html(self: Any) -> str:
    """Jupyter's rich display: the state's :func:`jopt.summary` table."""
    from jopt.tools.summaries import summary

    return summary(self)._repr_html_()
