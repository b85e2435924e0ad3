"""``jopt.bucketed`` runs every optimizer and option with the per-leaf rule's numbers.

The oracle is jopt's own per-leaf rule (held to Keras, optax and torch by the parity
suites): the same optimizer, on the same tree, run leaf by leaf. Rules that read a
leaf's norm or mean (Lamb's and LARS's trust ratios, Adafactor's RMS, ``clipnorm``) take
it as a segment sum over the bucket, and Prodigy's sums run over the buckets: the same
terms added in another order, so a per-leaf scalar (a norm, a trust ratio) can land a
float32 rounding or a few away (6e-8 relative each), and it scales the leaf's update by
as much; compiled, XLA also fuses a bucket's arithmetic differently (one rounding, as in
``tests/test_layout.py``). Asserted on params and slots: ``max |a - e| / max(|e|, 1)``
<= 1e-6, a few roundings (measured at most 1.2e-7 over every case here, eager and jit);
a bfloat16 leaf within one bfloat16 rounding (``2**-7``; measured 0).
Matrices whose shape a rule reads (Adafactor's factored moments, Muon's
orthogonalization) keep a bucket of their own, in their shape, with the per-leaf update.

LBFGS is not here: it is not a per-leaf rule (it evaluates the loss in a line search
and mixes every leaf), so ``jopt.bucketed`` refuses it with a ``TypeError``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest

import jopt
from jopt.core.registry import registered_config_classes
from tests.keras_oracle import jopt_run, keras_run
from tests.problems import relative_error

CLASSES = sorted(
    (n, c)
    for n, c in registered_config_classes(by_name=True).items()
    if issubclass(c, jopt.Optimizer)
)
# Every class as it comes, and clipnorm (a per-leaf norm) on a few rules.
CASES = [(name, {}) for name, _ in CLASSES] + [
    (name, {"clipnorm": 0.5}) for name in ("SGD", "Adam", "Lamb", "Adafactor", "Muon")
]


def _tree(seed: int, scale: float = 1.0) -> dict[str, Any]:
    """Matrices (one of them an embedding, which Muon gives AdamW), a rank-3 leaf,
    vectors, a scalar, and two bfloat16 leaves (a bucket of their own)."""
    rng = np.random.default_rng(seed)
    shapes = {
        "dense": {"kernel": (4, 3), "bias": (3,)},
        "embedding": {"table": (3, 2)},
        "k3": (2, 2, 3),
        "v": (5,),
        "s": (),
    }
    tree = jax.tree.map(
        lambda s: jnp.asarray(scale * rng.standard_normal(s), jnp.float32),
        shapes,
        is_leaf=lambda x: isinstance(x, tuple),
    )
    tree["half"] = {
        k: jnp.asarray(scale * rng.standard_normal(s), jnp.bfloat16)
        for k, s in (("w", (2, 3)), ("b", (4,)))
    }
    return tree


def _run(opt: Any, compiled: bool) -> tuple[Any, Any]:
    params = _tree(0)
    state = opt.init(params)
    step = jax.jit(opt.apply) if compiled else opt.apply
    for t in range(3):
        params, state = step(_tree(10 + t, 0.5), state, params)
    return params, state


def _assert_close(actual: Any, expected: Any) -> None:
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    flat, _ = jax.tree_util.tree_flatten_with_path(actual)
    for (path, a), e in zip(flat, jax.tree.leaves(expected), strict=True):
        assert a.shape == e.shape and a.dtype == e.dtype, jax.tree_util.keystr(path)
        tol = 2.0**-7 if a.dtype == jnp.bfloat16 else 1e-6
        a, e = np.asarray(a, np.float32), np.asarray(e, np.float32)
        # NaN exactly where the per-leaf rule gives NaN (per-leaf Nadam's bfloat16 leaves
        # are NaN at these settings).
        nan = np.isnan(e)
        np.testing.assert_array_equal(np.isnan(a), nan, err_msg=jax.tree_util.keystr(path))
        err = relative_error(a[~nan], e[~nan]) if not nan.all() else 0.0
        assert err <= tol, f"{jax.tree_util.keystr(path)}: {err:.3g} > {tol:g}"


@pytest.mark.parametrize("mode", ["eager", "jit"])
@pytest.mark.parametrize(
    ("name", "options"), CASES, ids=[n + "".join(f"-{k}" for k in o) for n, o in CASES]
)
def test_bucketed_gives_the_per_leaf_rules_numbers(name: str, options: Any, mode: str) -> None:
    opt = dict(CLASSES)[name](learning_rate=0.05, **options)
    assert opt.bucket_refusal() is None
    expected, expected_state = _run(opt, mode == "jit")
    laid = jopt.bucketed(opt)
    actual, state = _run(laid, mode == "jit")
    _assert_close(actual, expected)
    _assert_close(laid.slots(state, _tree(0)), opt.slots(expected_state))
    assert int(state.inner.step) == int(expected_state.step) == 3


def test_matrices_a_rule_reads_whole_keep_their_shape_in_a_bucket_of_their_own() -> None:
    params = _tree(0)
    adafactor = jopt.bucketed(jopt.Adafactor()).init(params).inner.slots
    # Rank >= 2 alone and unraveled (factored r and c); the rest shares a bucket.
    assert adafactor["velocity"]["float32/['dense']['kernel']"].shape == (4, 3)
    assert adafactor["r"]["float32/['k3']"].shape == (2, 2)
    assert adafactor["velocity"]["float32"].shape == (3 + 5 + 1,)  # bias, s, v
    muon = jopt.bucketed(jopt.Muon()).init(params).inner.slots
    # Muon's matrices alone (a velocity placeholder); the embedding and the rest on AdamW.
    assert muon["velocity"]["float32/['dense']['kernel']"].shape == (1,)
    assert muon["velocity"]["float32/adam_weight_decay"].shape == (3 + 6 + 12 + 1 + 5,)
    with pytest.raises(TypeError, match="per-leaf rule"):
        jopt.bucketed(jopt.LBFGS())


# The parity suites' oracle, run through the bucketed layout: Keras 3 itself, 25 steps on
# leaves of rank 0-4 (tests/problems.py), compiled. Their tolerance: float32 rounding
# accumulated over the steps (1e-6, as tests/test_optimizers_factored.py allows jopt's
# own compiled steps).
KERAS_CASES = {
    "Lamb": (lambda: jopt.Lamb(0.01), lambda k: k.Lamb(0.01)),
    "Adafactor": (lambda: jopt.Adafactor(0.1), lambda k: k.Adafactor(0.1)),
    "Muon": (lambda: jopt.Muon(0.01), lambda k: k.Muon(0.01)),
    "SGD-clipnorm": (
        lambda: jopt.SGD(0.1, momentum=0.9, clipnorm=0.5),
        lambda k: k.SGD(0.1, momentum=0.9, clipnorm=0.5),
    ),
}


@pytest.mark.parametrize("case", list(KERAS_CASES))
def test_bucketed_matches_keras_step_for_step(case: str) -> None:
    make_jopt, make_keras = KERAS_CASES[case]
    expected = keras_run(lambda: make_keras(keras.optimizers), stateless=True)
    actual = jopt_run(jopt.bucketed(make_jopt()), "compiled")
    for j, (a, e) in enumerate(zip(actual, expected, strict=True)):
        err = relative_error(a, e)
        assert err <= 1e-6, f"{case} leaf {j}: worst error {err:.3g} > 1e-6"
