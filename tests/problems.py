"""The shared test problem: a few leaves of several ranks and a hard gradient sequence.

Gradients are fed to the optimizers directly (no loss), so every implementation sees
exactly the same inputs. Their magnitudes span 1e-4 to 3, some are exactly zero and the
last steps shrink, so epsilon, AMSGrad's maximum and the bias correction all matter.
"""

from __future__ import annotations

import numpy as np

SHAPES: tuple[tuple[int, ...], ...] = ((3,), (2, 3), (2, 2, 2), (4, 1, 2, 1))
STEPS = 25


def make_problem(
    seed: int = 0, shapes: tuple[tuple[int, ...], ...] = SHAPES, steps: int = STEPS
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Returns ``(initial values, gradient sequences)``; grads[j] has shape (steps, *shape)."""
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = []
    for s in shapes:
        g = rng.standard_normal((steps, *s)) * 10.0 ** rng.uniform(-4, 0.5, (steps, *s))
        tail = min(10, steps)
        g[steps - tail :] *= 0.3 ** np.arange(1, tail + 1).reshape((tail,) + (1,) * len(s))
        g.reshape(steps, -1)[3, 0] = 0.0
        grads.append(g.astype(np.float32))
    return init, grads


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |a - e| / max(|e|, 1): relative for values above 1, absolute below."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    return float(np.max(np.abs(actual - expected) / np.maximum(np.abs(expected), 1.0)))
