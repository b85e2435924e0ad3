"""MkDocs hooks: the API pages are written from ``__all__``, so no public name is missed.

Each API page (``docs/api/*.md``) holds its own introduction and a ``<!-- members -->``
marker; at build time the marker becomes one mkdocstrings block per public object that
belongs on that page. An object exported under several names (``jopt.Adam`` is also
``jopt.optimizers.Adam``) is documented once, under its first public name (a top-level
one first), and its other names are listed as links to it. A public name without a
docstring is a warning, so ``mkdocs build --strict`` fails on it.

The hooks also add the notebooks (from ``notebooks/``, rendered by mkdocs-jupyter),
the changelog (``CHANGELOG.md``), the benchmark and test READMEs, and the benchmark plot
when ``make bench`` has drawn it (``artifacts/step_time.png`` is git-ignored).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("mkdocs.plugins.jopt")


# The public modules: jopt and each module in its __all__. An object's documented name
# is its first public name, so a top-level name wins over a submodule's.
def public_modules() -> list[str]:
    jopt = importlib.import_module("jopt")
    return ["jopt"] + [
        getattr(jopt, n).__name__ for n in jopt.__all__ if inspect.ismodule(getattr(jopt, n))
    ]


# API page of an object, from the module that defines it (first prefix that matches);
# anything else (the core protocol, apply_gradients, TrainState, checkpoints, ...) goes
# to "core", so a new module never drops a name.
PAGES = (
    ("jopt.legacy", "legacy"),
    ("jopt.optimizers", "optimizers"),
    ("jopt.composites.wrappers", "optimizers"),
    ("jopt.schedules", "schedules"),
    ("jopt.layout", "layout"),
    ("jopt.sharding", "sharding"),
    ("jopt.transforms", "blocks"),
    ("jopt.composites", "blocks"),
    ("jopt.tools.sweeps", "blocks"),
)
DEFAULT_PAGE = "core"
MARKER = "<!-- members -->"
# The subclass hooks of an optimizer, documented once on jopt.Optimizer.
SUBCLASS_HOOKS = r"!^(leaf_update|slot_names|init_slot|init_scalars|begin_step|check_relations)$"
BENCH_PLOT = ROOT / "artifacts" / "step_time.png"


def public_names() -> list[tuple[str, str, Any]]:
    """Every ``(module, name, object)`` of the public modules' ``__all__``."""
    out = []
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        for name in module.__all__:
            out.append((module_name, name, getattr(module, name)))
    return out


def documented_objects() -> dict[str, tuple[str, Any, list[str]]]:
    """``{documented path: (page, object, [other public names of it])}``."""
    first: dict[int, str] = {}
    out: dict[str, tuple[str, Any, list[str]]] = {}
    for module_name, name, value in public_names():
        path = f"{module_name}.{name}"
        if id(value) in first:
            out[first[id(value)]][2].append(path)
            continue
        if inspect.ismodule(value):
            path = value.__name__
        elif _shadows_a_module(name):
            # jopt.hyperparams is a function and a module (jopt.bucketed the function of
            # jopt.layout.bucketed): griffe reads the module, so such a function is
            # documented under the path of its definition.
            path = f"{value.__module__}.{value.__qualname__}"
        first[id(value)] = path
        out[path] = (page_of(value), value, [])
    return out


def _shadows_a_module(name: str) -> bool:
    return any(m.startswith("jopt.") and m.endswith("." + name) for m in list(sys.modules))


def public_name(path: str, value: Any) -> str:
    """The name a heading shows: the first public name of ``value``."""
    for module_name, name, v in public_names():
        if v is value:
            return f"{module_name}.{name}"
    return path


def page_of(value: Any) -> str:
    defined_in = value.__name__ if inspect.ismodule(value) else getattr(value, "__module__", "")
    for prefix, page in PAGES:
        if defined_in == prefix or defined_in.startswith(prefix + "."):
            return page
    return DEFAULT_PAGE


def _order(item: tuple[str, tuple[str, Any, list[str]]]) -> tuple[int, str, int]:
    _, (_, value, _) = item
    if inspect.ismodule(value):
        return (0, "", 0)
    try:
        line = inspect.getsourcelines(value)[1]
    except (OSError, TypeError):
        line = 0
    return (1, getattr(value, "__module__", ""), line)


def _directive(path: str, value: Any) -> str:
    options: list[str] = []
    if inspect.ismodule(value):
        options.append("members: false")
    elif inspect.isclass(value):
        from jopt.optimizers import Optimizer

        if issubclass(value, Optimizer) and value is not Optimizer:
            options.append(f'filters: ["!^_", "{SUBCLASS_HOOKS}"]')
    shown = public_name(path, value)
    if shown != path:
        options += [f'heading: "{shown}"', f'toc_label: "{shown}"']
    block = f"::: {path}\n"
    if options:
        block += "    options:\n" + "".join(f"      {o}\n" for o in options)
    return block


def page_markdown(page: str) -> str:
    """The generated part of one API page."""
    objects = sorted(((p, v) for p, v in documented_objects().items() if v[0] == page), key=_order)
    parts = []
    aliases = []
    for path, (_, value, others) in objects:
        if not (inspect.getdoc(value) or "").strip():
            log.warning("%s has no docstring: the API reference needs one", path)
        parts.append(_directive(path, value))
        aliases += [(other, path) for other in others]
    if aliases:
        rows = "".join(f"| `{o}` | [`{p}`][{p}] |\n" for o, p in aliases)
        parts.append(f"## Also exported as\n\n| name | documented as |\n|---|---|\n{rows}")
    return "\n".join(parts)


def _demoted(text: str) -> str:
    """A README's headings one level down, below a page's own title."""
    return re.sub(r"^(#+) ", r"#\1 ", text, flags=re.M)


@event_priority(100)  # before mkdocs-jupyter's on_files, which picks up the notebooks
def on_files(files: Files, config: MkDocsConfig) -> Files:
    for notebook in sorted((ROOT / "notebooks").glob("*.ipynb")):
        files.append(
            File(
                f"notebooks/{notebook.name}",
                src_dir=str(ROOT),
                dest_dir=config.site_dir,
                use_directory_urls=config.use_directory_urls,
            )
        )
    changelog = (ROOT / "CHANGELOG.md").read_text()
    files.append(File.generated(config, "changelog.md", content=changelog))
    if BENCH_PLOT.exists():
        files.append(
            File(
                "artifacts/step_time.png",
                src_dir=str(ROOT),
                dest_dir=config.site_dir,
                use_directory_urls=config.use_directory_urls,
            )
        )
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    src = page.file.src_uri
    if src.startswith("api/") and MARKER in markdown:
        return markdown.replace(MARKER, page_markdown(Path(src).stem))
    if src == "benchmarks.md":
        plot = (
            "![Step time against the number of leaves](artifacts/step_time.png)"
            if BENCH_PLOT.exists()
            else "*(`make bench` draws the plot of step time against the number of leaves "
            "into `artifacts/step_time.png`; this page shows it once it exists.)*"
        )
        markdown = markdown.replace("<!-- plot -->", plot)
        return markdown.replace(
            "<!-- benchmarks/README.md -->",
            _demoted((ROOT / "benchmarks" / "README.md").read_text()),
        )
    if src == "tests.md":
        return markdown.replace(
            "<!-- tests/README.md -->", _demoted((ROOT / "tests" / "README.md").read_text())
        )
    return markdown
