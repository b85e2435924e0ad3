"""The parameter trees the benchmarks run on: equal flat leaves, and a transformer's shapes.

The four flat trees are the ones of issue 6 (equal 1-D float32 leaves: 64 leaves of 8M
params in all, 500 of 4M, 1000 of 2M, 2000 of 2M); ``transformer`` is a real model's
mix of kernels, biases, embeddings and norm scales. ``--quick`` shrinks each tree so a
smoke run compiles in well under a second per program.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any


@dataclass(frozen=True)
class TreeSpec:
    """A parameter tree to benchmark on: a key (``--trees``), a label and every leaf's shape."""

    key: str
    label: str
    shapes: dict[str, Any]
    flat: bool  # equal 1-D leaves: a point on the step time vs leaves plot

    @property
    def leaves(self) -> int:
        return len(jax.tree.leaves(self.shapes, is_leaf=_is_shape))

    @property
    def params(self) -> int:
        return sum(math.prod(s) for s in jax.tree.leaves(self.shapes, is_leaf=_is_shape))


def _is_shape(x: Any) -> bool:
    return isinstance(x, tuple)


def flat_shapes(leaves: int, total: int) -> dict[str, Any]:
    """``leaves`` 1-D float32 leaves of equal size summing to ``total`` parameters."""
    return {f"w{i:04d}": (total // leaves,) for i in range(leaves)}


def transformer_shapes(
    layers: int, d_model: int, mlp: int, vocab: int, max_len: int
) -> dict[str, Any]:
    """The parameter shapes of a pre-norm decoder-only transformer with an untied head."""

    def dense(n_in: int, n_out: int) -> dict[str, tuple[int, ...]]:
        return {"kernel": (n_in, n_out), "bias": (n_out,)}

    def norm() -> dict[str, tuple[int, ...]]:
        return {"scale": (d_model,), "bias": (d_model,)}

    block = {
        "norm_1": norm(),
        "attention": {k: dense(d_model, d_model) for k in ("query", "key", "value", "out")},
        "norm_2": norm(),
        "mlp": {"fc_1": dense(d_model, mlp), "fc_2": dense(mlp, d_model)},
    }
    return {
        "embed": {"token": (vocab, d_model), "position": (max_len, d_model)},
        **{f"block_{i}": block for i in range(layers)},
        "final_norm": norm(),
        "head": dense(d_model, vocab),
    }


TREE_KEYS = ("64", "500", "1000", "2000", "transformer")


def make_trees(quick: bool) -> list[TreeSpec]:
    """The trees of issue 6 plus the transformer; ``quick`` shrinks them for a smoke run."""
    if quick:
        sizes = {
            "64": (4, 1 << 18),
            "500": (16, 1 << 17),
            "1000": (32, 1 << 16),
            "2000": (48, 1 << 16),
        }
        model = ("transformer 1L d64", transformer_shapes(1, 64, 256, 512, 64))
    else:
        sizes = {
            "64": (64, 8_000_000),
            "500": (500, 4_000_000),
            "1000": (1000, 2_000_000),
            "2000": (2000, 2_000_000),
        }
        model = ("transformer 6L d256", transformer_shapes(6, 256, 1024, 8192, 512))
    trees = [
        TreeSpec(k, f"{n} leaves, {total / 1e6:.3g}M", flat_shapes(n, total), flat=True)
        for k, (n, total) in sizes.items()
    ]
    return [*trees, TreeSpec("transformer", model[0], model[1], flat=False)]


def random_tree(shapes: dict[str, Any], seed: int, scale: float) -> PyTree:
    """float32 normal values of the given shapes, as device arrays."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(
        lambda s: jnp.asarray(rng.standard_normal(s, dtype=np.float32) * scale),
        shapes,
        is_leaf=_is_shape,
    )


def copy_tree(tree: PyTree) -> PyTree:
    """Fresh buffers, so one contender's donation cannot touch another's arrays."""
    return jax.tree.map(jnp.copy, tree)


def tree_bytes(tree: PyTree) -> int:
    """Bytes held by the arrays of ``tree`` (any leaf with ``nbytes``)."""
    return sum(int(x.nbytes) for x in jax.tree.leaves(tree) if hasattr(x, "nbytes"))
