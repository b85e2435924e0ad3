"""The release: ``python -m build`` makes an sdist and a wheel that install and run.

The wheel is built from the sdist (as ``python -m build`` does), so a file the sdist
forgets fails here too. It is installed with ``--no-deps`` into a fresh virtual
environment that reaches this interpreter's packages (jax, numpy, ...) through a ``.pth``
file, so nothing is downloaded; the README's first example then runs in that
environment from a folder outside the checkout, so the checkout's ``jopt`` is not the
one imported.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

import jopt

ROOT = Path(__file__).resolve().parent.parent


def _has_build_backend() -> bool:
    """This environment's setuptools can build jopt (77: SPDX license, license-files)."""
    try:
        version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return False
    return tuple(int(p) for p in version.split(".")[:2] if p.isdigit()) >= (77,)


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # With this environment's setuptools when it can (nothing downloaded); otherwise build
    # isolates itself and installs setuptools (Python >= 3.12 venvs come without one).
    isolation = ["--no-isolation"] if _has_build_backend() else []
    subprocess.run(
        [sys.executable, "-m", "build", *isolation, "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def _one(dist: Path, pattern: str) -> Path:
    (found,) = dist.glob(pattern)
    return found


def test_version_comes_from_one_place(dist: Path) -> None:
    version = re.search(r'__version__ = "(.+)"', (ROOT / "jopt/_version.py").read_text())
    assert version and jopt.__version__ == version.group(1)
    project = (ROOT / "pyproject.toml").read_text().split("\n[project]\n", 1)[1].split("\n[", 1)[0]
    assert re.search(r'^dynamic = \["version"\]', project, re.M)
    assert not re.search(r"^version =", project, re.M)
    assert _one(dist, "*.whl").name.startswith(f"jopt-{jopt.__version__}-py3-none-any")
    assert _one(dist, "*.tar.gz").name == f"jopt-{jopt.__version__}.tar.gz"


def test_archives_hold_the_package_and_not_the_tests_or_notebooks(dist: Path) -> None:
    wheel = zipfile.ZipFile(_one(dist, "*.whl")).namelist()
    with tarfile.open(_one(dist, "*.tar.gz")) as sdist:
        source = [n.split("/", 1)[1] for n in sdist.getnames() if "/" in n]
    for names in (wheel, source):
        assert "jopt/py.typed" in names
        assert "jopt/optimizers/adam.py" in names
        assert not [n for n in names if n.startswith(("tests/", "notebooks/", "benchmarks/"))]
        assert not [n for n in names if n.endswith(".ipynb")]
    assert f"jopt-{jopt.__version__}.dist-info/licenses/LICENSE" in wheel
    assert {"LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml"} <= set(source)
    metadata = (
        zipfile.ZipFile(_one(dist, "*.whl"))
        .read(f"jopt-{jopt.__version__}.dist-info/METADATA")
        .decode()
    )
    assert "License-Expression: Apache-2.0" in metadata
    assert "Project-URL: Documentation" in metadata
    assert "Requires-Dist: jax>=" in metadata


def test_the_wheel_runs_the_readme_example_in_a_fresh_environment(
    dist: Path, tmp_path: Path
) -> None:
    env = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    python = env / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--target",
            site,
            str(_one(dist, "*.whl")),
        ],
        check=True,
        timeout=120,
    )
    # The dependencies: this interpreter's site-packages, after the fresh one's.
    (Path(site) / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    readme = (ROOT / "README.md").read_text()
    example = re.findall(r"```python\n(.*?)```", readme, re.S)[0]
    script = tmp_path / "first_example.py"
    script.write_text(
        "import jopt\n"
        f"assert jopt.__file__.startswith({site!r}), jopt.__file__\n"
        "print('version', jopt.__version__)\n" + example
    )
    run = subprocess.run(
        [str(python), "-I", str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"version {jopt.__version__}" in run.stdout
    loss = re.search(r"loss (\S+)\s+step 500", run.stdout)
    assert loss and float(loss.group(1)) < 1e-4, run.stdout
