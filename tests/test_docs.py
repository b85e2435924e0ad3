"""The documentation site builds strictly, and its API reference holds every public name once.

The build is ``mkdocs build --strict`` into a temporary folder, as ``make docs`` runs it
but without executing the notebooks (nbmake runs them already): a broken link, a public
name without a docstring, a docstring griffe cannot parse, or an unresolved
cross-reference fails it. The API pages are written from ``__all__`` by ``docs/hooks.py``;
the test reads the built HTML, not the hook, to count each name's entries.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
HEADING = re.compile(r'<h\d id="([^"]+)" class="doc doc-heading"')


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {k: v for k, v in os.environ.items() if k != "JOPT_DOCS_EXECUTE"}
    env["NO_MKDOCS_2_WARNING"] = "1"
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    warnings = [line for line in run.stderr.splitlines() if "WARNING" in line]
    assert run.returncode == 0, "mkdocs build --strict failed:\n" + "\n".join(
        warnings or run.stderr.splitlines()[-30:]
    )
    return out


def _object(path: str) -> Any:
    """The object a documented path names, imported (the module part first)."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            value = getattr(value, attr)
        return value
    raise AssertionError(f"{path} names nothing importable")


def _public() -> list[tuple[str, Any]]:
    """Every name of ``jopt.__all__`` and of each public module's ``__all__``."""
    import jopt

    modules = [jopt] + [getattr(jopt, n) for n in jopt.__all__]
    out = []
    for module in filter(inspect.ismodule, modules):
        module_name = module.__name__
        out += [(f"{module_name}.{n}", getattr(module, n)) for n in module.__all__]
    return out


def test_the_site_builds_strictly(site: Path) -> None:
    for page in ("index.html", "api/optimizers/index.html", "notebooks/quickstart/index.html"):
        assert (site / page).exists(), page


def test_every_public_name_has_exactly_one_api_entry(site: Path) -> None:
    entries: Counter[str] = Counter()
    for page in (site / "api").rglob("*.html"):
        entries.update(HEADING.findall(page.read_text()))
    # Each entry, imported, is the object it documents.
    by_object: dict[int, list[str]] = {}
    for path in entries:
        by_object.setdefault(id(_object(path)), []).append(path)
    missing, twice = [], []
    for name, value in _public():
        paths = [p for p in by_object.get(id(value), []) if _is_root_entry(p, value)]
        if not paths:
            missing.append(name)
        elif len(paths) > 1 or entries[paths[0]] > 1:
            twice.append(f"{name}: {paths}")
    assert not missing, f"public names with no API entry: {missing}"
    assert not twice, f"public names documented more than once: {twice}"


def _is_root_entry(path: str, value: Any) -> bool:
    """A heading documents ``value`` itself, not a same-object attribute inside another."""
    if inspect.ismodule(value):
        return path == value.__name__
    return path.rsplit(".", 1)[-1] == getattr(value, "__name__", None)


def test_every_aliased_name_is_listed_on_its_module_page(site: Path) -> None:
    """``jopt.optimizers.Adam`` is ``jopt.Adam``: its page says so and links there."""
    text = "".join(p.read_text() for p in (site / "api").rglob("*.html"))
    seen: dict[int, str] = {}
    for name, value in _public():
        if id(value) in seen and not inspect.ismodule(value):
            assert f"<code>{name}</code>" in text, f"{name} is not listed as an alias"
        seen.setdefault(id(value), name)


def test_docs_python_examples_run() -> None:
    """Every ```python block of the guides runs, each page's blocks in one namespace.

    A block the README also holds (the first example) is run by test_readme.py.
    """
    readme = set(re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S))
    ran = 0
    for page in sorted(DOCS.rglob("*.md")):
        blocks = re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
        namespace: dict[str, object] = {}
        for block in blocks:
            if block in readme:
                continue
            exec(compile(block, str(page.relative_to(ROOT)), "exec"), namespace)
            ran += 1
    assert ran >= 3


def test_readme_links_into_the_site() -> None:
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert len(links) >= 5, "the README links into the documentation site"
    for link in links:
        assert (ROOT / link).exists(), f"README links to {link}, which does not exist"


def test_a_public_name_without_a_docstring_is_a_build_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Under --strict a warning of the ``mkdocs`` loggers fails the build."""
    spec = importlib.util.spec_from_file_location("jopt_docs_hooks", DOCS / "hooks.py")
    assert spec and spec.loader
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)

    def undocumented() -> None:
        pass

    monkeypatch.setattr(
        hooks, "documented_objects", lambda: {"jopt.undocumented": ("core", undocumented, [])}
    )
    with caplog.at_level("WARNING", logger="mkdocs.plugins.jopt"):
        assert "::: jopt.undocumented" in hooks.page_markdown("core")
    assert "jopt.undocumented has no docstring" in caplog.text
