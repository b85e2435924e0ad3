"""What every benchmark run records about itself: versions, machine, commit and load.

Shared by ``step_time.py`` and ``hyperparams.py``, so their tables end with the same
footer and their JSON files carry the same ``meta`` keys.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import optax

import jopt


def git_state() -> str:
    """``<commit>`` of the checkout, ``+dirty`` if ``jopt/`` has uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "jopt"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"
    return (head or "unknown") + ("+dirty" if dirty else "")


def optional_versions() -> dict[str, str]:
    """Versions of the other libraries a run compared against, if it imported them."""
    return {
        name: getattr(sys.modules[name], "__version__", "unknown")
        for name in ("keras", "torch")
        if name in sys.modules
    }


@dataclass
class RunFacts:
    """Started when a run starts; ``footer`` and ``meta`` are read when it ends."""

    started: float = field(default_factory=time.perf_counter)
    load_start: float = field(default_factory=lambda: os.getloadavg()[0])

    def wall(self) -> float:
        return time.perf_counter() - self.started

    def footer(self, repetitions: str) -> str:
        """The table's last lines: wall time, versions, commit, and the machine's load."""
        return (
            f"\nwall time {self.wall():.1f} s, {repetitions}, jax {jax.__version__} "
            f"({jax.default_backend()}), optax {optax.__version__}, "
            + "".join(f"{k} {v}, " for k, v in optional_versions().items())
            + f"jopt {jopt.__version__} ({git_state()})\n"
            f"1-min load average {self.load_start:.2f} at start, "
            f"{os.getloadavg()[0]:.2f} at end on {os.cpu_count()} CPUs (above ~1 means other "
            "work shared the machine)"
        )

    def meta(self, argv: list[str] | None, **extra: Any) -> dict[str, Any]:
        """The JSON's ``meta``: the command, versions, machine, commit, load, and ``extra``."""
        return {
            "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
            **extra,
            "wall_s": self.wall(),
            "jax": jax.__version__,
            "optax": optax.__version__,
            "jopt": jopt.__version__,
            "backend": jax.default_backend(),
            "devices": [str(d) for d in jax.devices()],
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "machine": platform.platform(),
            "git": git_state(),
            "loadavg_1m_start_end": [self.load_start, os.getloadavg()[0]],
            **optional_versions(),
        }
