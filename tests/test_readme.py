"""The README's Python examples run as written, and the code they promise holds."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).parent.parent / "README.md").read_text()


def test_readme_python_examples_run(capsys: object) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert blocks
    namespaces = []
    for block in blocks:
        namespace: dict[str, object] = {}
        exec(compile(block, "README.md", "exec"), namespace)
        namespaces.append(namespace)
    # The first example fits a line.
    params = next(n["params"] for n in namespaces if "dense" in str(n.get("params", {}).keys()))
    kernel = params["dense"]["kernel"]  # type: ignore[index]
    assert abs(float(kernel[1, 0]) + 2.0) < 1e-3  # the example really fits y = x @ w + b


def test_readme_names_the_two_setup_commands_that_the_makefile_defines() -> None:
    makefile = (Path(__file__).parent.parent / "Makefile").read_text()
    for target in ("demo", "test"):
        assert f"make {target}" in README
        assert re.search(rf"^{target}:", makefile, re.M)
