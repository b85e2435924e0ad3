"""The full-batch problems of ``tests/test_lbfgs.py``, each written twice: in JAX for jopt
and optax, and in NumPy (value and gradient, float64) for SciPy's L-BFGS-B, the oracle.

* ``rosen2``, ``rosen10``, ``rosen100``: Rosenbrock's function from the classic start
  ``(-1.2, 1, -1.2, 1, ...)``; minimum 0 at all ones (SciPy's ``rosen``/``rosen_der``).
* ``logreg``: L2-regularized logistic regression on scikit-learn's digits (all 1,797
  images, pixels / 16, label "digit >= 5"); params ``{"w": (64,), "b": ()}``, a pytree
  with a scalar leaf. Strictly convex (``lam > 0``), so the minimum is unique.
* ``quadratic``: ``0.5 sum_i lam_i (q_i . (x - c))^2`` in 30 dimensions, eigenvalues
  ``lam_i`` from 1 to 1e4 (condition number 1e4), ``q_i`` a random orthonormal basis.
  Written in this factored form, not as ``0.5 x'Ax - b'x``: the latter's value cancels
  to ``~1e-16 |A| |x|^2`` in float64 and ``~1e-4`` in float32 near the minimum, a floor
  on the accuracy any optimizer can reach (its own, not the optimizer's); the factored
  form's value and gradient shrink with ``x - c``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np
import scipy.optimize

LOGREG_L2 = 1e-3


class Problem(NamedTuple):
    """``fn(params, *data)`` in JAX; ``numpy_fn(flat) -> (value, grad)`` over the params
    flattened in ``jax.flatten_util.ravel_pytree`` order; the start and data (float64)."""

    fn: Callable[..., Any]
    numpy_fn: Callable[[np.ndarray], tuple[float, np.ndarray]]
    x0: Any
    data: tuple[np.ndarray, ...]


def rosenbrock(x: jnp.ndarray) -> jnp.ndarray:
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def logistic(params: dict[str, Any], x: jnp.ndarray, t: jnp.ndarray) -> jnp.ndarray:
    z = x @ params["w"] + params["b"]
    loss = jnp.mean(jnp.logaddexp(0.0, z) - t * z)
    return loss + 0.5 * LOGREG_L2 * jnp.sum(params["w"] ** 2)


def quadratic(x: jnp.ndarray, q: jnp.ndarray, lam: jnp.ndarray, c: jnp.ndarray) -> jnp.ndarray:
    z = q.T @ (x - c)
    return 0.5 * jnp.sum(lam * z * z)


@functools.cache
def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return x / 16.0, (y >= 5).astype(np.float64)


def _numpy_logistic(flat: np.ndarray) -> tuple[float, np.ndarray]:
    x, t = digits()
    w, b = flat[1:], flat[0]  # ravel_pytree order: "b" (a scalar) sorts before "w"
    z = x @ w + b
    p = 0.5 * (1.0 + np.tanh(0.5 * z))  # the logistic function, without overflow
    r = (p - t) / len(t)
    value = np.mean(np.logaddexp(0.0, z) - t * z) + 0.5 * LOGREG_L2 * w @ w
    return float(value), np.concatenate([[r.sum()], x.T @ r + LOGREG_L2 * w])


@functools.cache
def _quadratic_data(n: int = 30) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return q, np.logspace(0.0, 4.0, n), rng.standard_normal(n)


def _numpy_quadratic(x: np.ndarray) -> tuple[float, np.ndarray]:
    q, lam, c = _quadratic_data()
    z = q.T @ (x - c)
    return float(0.5 * np.sum(lam * z * z)), q @ (lam * z)


def _numpy_rosenbrock(x: np.ndarray) -> tuple[float, np.ndarray]:
    return float(scipy.optimize.rosen(x)), scipy.optimize.rosen_der(x)


def problem(name: str) -> Problem:
    if name.startswith("rosen"):
        n = int(name[len("rosen") :])
        return Problem(rosenbrock, _numpy_rosenbrock, np.tile([-1.2, 1.0], n // 2), ())
    if name == "logreg":
        x0 = {"w": np.zeros(64), "b": np.zeros(())}
        return Problem(logistic, _numpy_logistic, x0, digits())
    if name == "quadratic":
        return Problem(quadratic, _numpy_quadratic, np.zeros(30), _quadratic_data())
    raise ValueError(name)


NAMES = ("rosen2", "rosen10", "rosen100", "logreg", "quadratic")


@functools.cache
def scipy_minimum(name: str) -> tuple[np.ndarray, float, int]:
    """SciPy's L-BFGS-B minimum in float64, to a projected gradient of 1e-10 (its own
    memory of 10 pairs, as jopt's default): ``(x flattened, value, iterations)``."""
    p = problem(name)
    x0 = np.concatenate([np.ravel(v) for _, v in sorted(_items(p.x0))])
    res = scipy.optimize.minimize(
        p.numpy_fn,
        x0,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": 20000, "maxcor": 10, "ftol": 0.0, "gtol": 1e-10},
    )
    return res.x, float(res.fun), int(res.nit)


def _items(tree: Any) -> list[tuple[str, np.ndarray]]:
    if isinstance(tree, dict):
        return list(tree.items())
    return [("", tree)]
