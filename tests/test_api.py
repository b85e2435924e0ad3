"""The public API is defined in one place, and every public name is documented."""

from __future__ import annotations

import inspect

import pytest

import jopt
import jopt.legacy
import jopt.schedules

PUBLIC = [
    (m.__name__, n)
    for m in (jopt, jopt.layout, jopt.legacy, jopt.optimizers, jopt.schedules, jopt.sharding)
    for n in m.__all__
]


def test_the_package_exports_exactly_its_all() -> None:
    """Every public name reachable as jopt.X is in jopt.__all__, and the reverse."""
    public = {n for n, v in vars(jopt).items() if not n.startswith("_") and not inspect.ismodule(v)}
    modules = {n for n in jopt.__all__ if inspect.ismodule(getattr(jopt, n))}
    assert public == set(jopt.__all__) - modules
    assert modules == {"layout", "legacy", "optimizers", "schedules", "sharding"}


@pytest.mark.parametrize(
    "module", [jopt.layout, jopt.legacy, jopt.schedules, jopt.sharding], ids=lambda m: m.__name__
)
def test_public_modules_export_what_they_define(module: object) -> None:
    # What the module defines, and the core's leaf helpers it re-exports as public
    # (jopt.sharding's placement helpers live in jopt.core.placement, below optimizers).
    homes = (module.__name__, "jopt.core.")  # type: ignore[attr-defined]
    defined = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_")
        and str(getattr(v, "__module__", "")).startswith(homes)
        and not inspect.ismodule(v)
        and (str(v.__module__).startswith(homes[0]) or n in module.__all__)  # type: ignore[attr-defined]
    }
    assert defined == set(module.__all__)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("module", "name"), PUBLIC, ids=[f"{m}.{n}" for m, n in PUBLIC])
def test_every_public_name_has_a_docstring_with_an_example(module: str, name: str) -> None:
    value = getattr(__import__(module, fromlist=["_"]), name)
    doc = inspect.getdoc(value) or ""
    assert len(doc) > 40, f"{module}.{name} has no real docstring"
    if not inspect.ismodule(value) and name not in {
        "Transformation",
        "LearningRateSchedule",
        "Optimizer",
    }:
        assert ">>>" in doc, f"{module}.{name}'s docstring has no runnable example"
