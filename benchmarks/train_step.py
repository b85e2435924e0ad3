"""A user's whole train step (forward, backward, update) of flax models: jopt against optax.

Run from the repository root (see benchmarks/README.md)::

    python benchmarks/train_step.py            # Adam, ~3 minutes; artifacts/train_step.json
    python benchmarks/train_step.py --optimizers Adam,SGD,RMSprop   # ~7 minutes
    python benchmarks/train_step.py --quick    # smoke run: tiny models, 3 repetitions
    python benchmarks/train_step.py --models transformer --reps 50

``step_time.py`` times the optimizer's update alone; this times what a user feels: a
``jax.jit(train_step)`` that computes the loss's gradients of a flax (linen) model on a
fixed synthetic batch and applies one update, for two models (``make_models``):

* ``transformer``: a 24-layer pre-norm decoder (d_model 64, 4 heads, MLP 256, biases
  and LayerNorms everywhere): 390 small leaves, 1.2M params;
* ``wide``: a 4-layer MLP 64-2048-2048-2048-10: 8 large leaves, 8.5M params;

and these contenders (``CONTENDERS``), each the train step its users write:

* ``jopt``: ``jopt.TrainState.create(params, jopt.Adam(...))`` and
  ``state.apply_gradients(grads)`` in the user's own jit: jopt's default path, whatever
  layout jopt picks for the tree;
* ``jopt+flax``: the jopt optimizer as the ``tx`` of flax's
  ``flax.training.train_state.TrainState``;
* ``jopt.bucketed``: ``jopt.TrainState.create(params, jopt.bucketed(jopt.Adam(...)))``,
  the opt-in bucketed layout;
* ``optax``: ``optax.adam(...)`` as the ``tx`` of flax's TrainState, the baseline;
* ``floor``: no optimizer, ``p - lr g`` in plain jax: the step's cost without one.

Optimizers (``--optimizers``): Adam (the default), SGD with momentum 0.9 and RMSprop,
configured alike in jopt and optax (``contenders.make_contests``). Measured per (model,
optimizer): **first step**, a fresh ``jax.jit`` of a fresh function timed by stage
(trace, lower, compile, first run), without and with donation of the state
(``donate_argnums=0``); **step** and **step, donated**, the median of ``--reps`` steps,
every contender one step per repetition in a rotated order; **peak memory** of the
donated step from XLA's ``memory_analysis()`` over params + grads + optimizer state +
batch bytes (activations make it exceed 1). Before the timed repetitions each
contender's params after ``CHECK_STEPS`` steps are compared with a reference's
(:func:`references`, :func:`agree`); the run stops if they differ.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from contenders import Contest, make_contests
from flax.training import train_state as flax_train_state
from report import table
from run_facts import RunFacts
from step_time import Runner, cold_start, memory, time_rotated
from trees import TreeSpec, tree_bytes

import jopt

PyTree = Any
Batch = tuple[jax.Array, jax.Array]
Loss = Callable[[PyTree, Batch], jax.Array]


# ---- the models -------------------------------------------------------------------------


class Block(nn.Module):
    """A pre-norm decoder block: causal self-attention and a GELU MLP, residual both."""

    heads: int
    mlp: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        mask = nn.make_causal_mask(jnp.ones(x.shape[:2], jnp.int32))
        x = x + nn.MultiHeadDotProductAttention(num_heads=self.heads)(nn.LayerNorm()(x), mask=mask)
        h = nn.gelu(nn.Dense(self.mlp)(nn.LayerNorm()(x)))
        return x + nn.Dense(x.shape[-1])(h)


class Decoder(nn.Module):
    """Token and position embeddings, ``layers`` blocks, a final LayerNorm, an untied head."""

    layers: int
    d_model: int
    heads: int
    mlp: int
    vocab: int

    @nn.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        pos = self.param("position", nn.initializers.normal(0.02), (tokens.shape[1], self.d_model))
        x = nn.Embed(self.vocab, self.d_model)(tokens) + pos
        for _ in range(self.layers):
            x = Block(self.heads, self.mlp)(x)
        return nn.Dense(self.vocab)(nn.LayerNorm()(x))


class MLP(nn.Module):
    """Dense layers with ReLU between them; the last one gives the logits."""

    widths: tuple[int, ...]

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for w in self.widths[:-1]:
            x = nn.relu(nn.Dense(w)(x))
        return nn.Dense(self.widths[-1])(x)


@dataclass(frozen=True)
class Model:
    """A flax model with its fixed synthetic batch: ``--models`` key, label, parts."""

    key: str
    label: str
    module: nn.Module
    batch: Batch  # inputs, integer labels (next tokens for the decoder)

    def init(self) -> PyTree:
        return self.module.init(jax.random.key(0), self.batch[0])["params"]

    def loss(self, params: PyTree, batch: Batch) -> jax.Array:
        logits = self.module.apply({"params": params}, batch[0])
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch[1]).mean()


MODEL_KEYS = ("transformer", "wide")


def make_models(quick: bool) -> list[Model]:
    """The two models of issue 15 item 6; ``quick`` shrinks both for a smoke run."""
    rng = np.random.default_rng(0)
    layers, d_model, heads, mlp, vocab, seq, batch = (
        (1, 16, 2, 32, 32, 8, 2) if quick else (24, 64, 4, 256, 256, 32, 8)
    )
    tokens = jnp.asarray(rng.integers(0, vocab, (batch, seq + 1)), jnp.int32)
    decoder = Decoder(layers, d_model, heads, mlp, vocab)
    label = f"transformer {layers}L d{d_model}"
    widths = (64, 64, 64, 10) if quick else (2048, 2048, 2048, 10)
    n = 8 if quick else 32
    x = jnp.asarray(rng.standard_normal((n, 64), dtype=np.float32))
    y = jnp.asarray(rng.integers(0, 10, n), jnp.int32)
    return [
        Model("transformer", label, decoder, (tokens[:, :-1], tokens[:, 1:])),
        Model("wide", "MLP 64-" + "-".join(map(str, widths)), MLP(widths), (x, y)),
    ]


# ---- the contenders: a train state and the user's train step ----------------------------


class TrainFns(NamedTuple):
    """``create(params) -> state`` and a pure ``step(state, batch) -> (state, loss)``."""

    create: Callable[[PyTree], Any]
    step: Callable[[Any, Batch], tuple[Any, jax.Array]]
    params: Callable[[Any], PyTree]  # the params of a state, for the agreement check


def jopt_train_state(opt: jopt.Optimizer | Any, loss: Loss, model: nn.Module) -> TrainFns:
    """``jopt.TrainState`` with ``state.apply_gradients(grads)`` in the user's jit."""
    del model

    def step(state: jopt.TrainState, batch: Batch) -> tuple[jopt.TrainState, jax.Array]:
        value, grads = jax.value_and_grad(loss)(state.params, batch)
        return state.apply_gradients(grads), value

    return TrainFns(lambda p: jopt.TrainState.create(p, opt), step, lambda s: s.params)


def flax_state(tx: Any, loss: Loss, model: nn.Module) -> TrainFns:
    """flax's ``TrainState`` with ``tx`` (a jopt optimizer or an optax transformation)."""

    def step(
        state: flax_train_state.TrainState, batch: Batch
    ) -> tuple[flax_train_state.TrainState, jax.Array]:
        value, grads = jax.value_and_grad(loss)(state.params, batch)
        return state.apply_gradients(grads=grads), value

    def create(params: PyTree) -> flax_train_state.TrainState:
        return flax_train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)

    return TrainFns(create, step, lambda s: s.params)


def floor(contest: Contest, loss: Loss, model: nn.Module) -> TrainFns:
    """No optimizer: the state is the params, the update ``p - lr g`` in plain jax.

    What every optimizer's train step costs at least (forward, backward, one read of the
    grads and one write of the params), so ``step - floor`` is the optimizer's share.
    Not an optimizer of the contest, so not in the agreement check.
    """
    del model
    lr = float(contest.jopt.get_config()["learning_rate"])

    def step(params: PyTree, batch: Batch) -> tuple[PyTree, jax.Array]:
        value, grads = jax.value_and_grad(loss)(params, batch)
        return jax.tree.map(lambda p, g: p - lr * g, params, grads), value

    return TrainFns(lambda p: p, step, lambda p: p)


# name -> build(contest, loss, module)
CONTENDERS: dict[str, Callable[[Contest, Loss, nn.Module], TrainFns]] = {
    "jopt": lambda c, loss, m: jopt_train_state(c.jopt, loss, m),
    "jopt+flax": lambda c, loss, m: flax_state(c.jopt, loss, m),
    "jopt.bucketed": lambda c, loss, m: jopt_train_state(jopt.bucketed(c.jopt), loss, m),
    "optax": lambda c, loss, m: flax_state(c.optax, loss, m),
    "floor": floor,
}


# ---- agreement before timing ------------------------------------------------------------

CHECK_STEPS = 3
# Each contender's change of the params after CHECK_STEPS steps from one init, dp, must
# match its reference's, dp_ref, to ||dp - dp_ref|| / ||dp_ref|| <= TOL (relative L2
# over the whole model). A wrong gradient, hyperparameter or a missed step is ~1 there,
# and even the two epsilon placements of Adam (adam_rule) differ by 4e-3 to 7e-2 here.
# Two programs of one rule differ by float32 rounding, which a few elements amplify:
# where a ReLU sits at 0 one program's rounding can switch it on (an update of up to
# ~lr, where the other has none), and under optax's placement a gradient near eps moves
# its element by ~lr g / (|g| + eps). Measured, per element, up to 5e-4 lr (wide MLP,
# optax against its oracle) while the relative L2 stays at 3e-7 to 2e-5: a per-element
# bound would fail by chance, the whole model's L2 does not. The largest element
# difference, in learning rates, is reported beside it.
TOL = 1e-4


def adam_rule(contest: Contest, keras: bool) -> optax.GradientTransformation:
    """Adam written out in jnp, the check's oracle for one epsilon placement.

    ``m += (g - m)(1 - beta_1)``, ``v += (g^2 - v)(1 - beta_2)``, then

    * ``keras=True`` (Keras 3's ``Adam.update_step``, jopt's rule):
      ``p -= lr sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + eps)``;
    * ``keras=False`` (Kingma & Ba, optax's ``scale_by_adam``):
      ``p -= lr m_hat / (sqrt(v_hat) + eps)``, ``m_hat = m / (1 - beta_1^t)``,
      ``v_hat = v / (1 - beta_2^t)``.

    Keras's rule is optax's with ``eps`` replaced by ``eps / sqrt(1 - beta_2^t)`` (31x
    larger at t=1), so the two differ where ``sqrt(v_hat)`` is not far above that: elements
    with small gradients (here the wide MLP's first layer and the decoder's key biases)
    move less under Keras's rule, by up to 3.8 lr in three steps here (4e-3 to 7e-2 of the
    whole change, relative L2). That is a real difference of the two libraries' Adam, so
    jopt is checked against the first and optax against the second, each to rounding.
    """
    config = contest.jopt.get_config()  # Keras's names: the same values as optax's
    lr, b1, b2, eps = (float(config[k]) for k in ("learning_rate", "beta_1", "beta_2", "epsilon"))

    def init(params: PyTree) -> tuple[jax.Array, PyTree, PyTree]:
        zeros = jax.tree.map(jnp.zeros_like, params)
        return jnp.zeros([], jnp.int32), zeros, zeros

    def update(grads: PyTree, state: Any, params: PyTree = None) -> tuple[PyTree, Any]:
        del params
        count, m, v = state
        count = count + 1
        t = count.astype(jnp.float32)
        c1, c2 = 1 - jnp.float32(b1) ** t, 1 - jnp.float32(b2) ** t
        if keras:
            m = jax.tree.map(lambda m, g: m + (g - m) * (1 - b1), m, grads)
            v = jax.tree.map(lambda v, g: v + (g * g - v) * (1 - b2), v, grads)
            alpha = lr * jnp.sqrt(c2) / c1
            step = jax.tree.map(lambda m, v: -(m * alpha) / (jnp.sqrt(v) + eps), m, v)
        else:
            m = jax.tree.map(lambda m, g: (1 - b1) * g + b1 * m, m, grads)
            v = jax.tree.map(lambda v, g: (1 - b2) * g * g + b2 * v, v, grads)
            step = jax.tree.map(lambda m, v: -lr * ((m / c1) / (jnp.sqrt(v / c2) + eps)), m, v)
        return step, (count, m, v)

    return optax.GradientTransformation(init, update)


def references(contest: Contest) -> dict[str, optax.GradientTransformation]:
    """The oracle each contender is checked against, by contender name.

    Adam: :func:`adam_rule` with jopt's (Keras's) epsilon placement for the jopt
    contenders, optax's for optax. SGD with momentum and RMSprop: one rule in both
    libraries (``benchmarks/agreement.py`` checks both against Keras's to 3.6e-6), so
    optax itself is every jopt contender's reference.
    """
    if contest.name == "Adam":
        keras, kingma = adam_rule(contest, keras=True), adam_rule(contest, keras=False)
        return {n: kingma if n == "optax" else keras for n in CONTENDERS if n != "floor"}
    return {n: contest.optax for n in CONTENDERS if n not in ("optax", "floor")}


def noise(path: tuple[Any, ...]) -> bool:
    """Whether a leaf is an attention key projection's bias, left out of the check.

    Softmax ignores a shift shared by all keys, so these biases' exact gradient is 0 and
    the computed one is rounding noise, of a sign that differs between any two programs.
    Under optax's epsilon placement (``m_hat / (sqrt(v_hat) + eps)``) a noise gradient
    ``g`` moves its element by about ``lr |g| / (|g| + eps)``: up to 0.08 lr measured
    between optax and its oracle, 7.5e-4 of the ``--quick`` decoder's whole change.
    """
    keys = [str(getattr(k, "key", k)) for k in path]
    return keys[-2:] == ["key", "bias"]


def agree(
    contest: Contest, start: PyTree, after: dict[str, PyTree], oracle: dict[str, PyTree]
) -> dict[str, dict[str, float]]:
    """Each contender's change of the params against its reference's (see ``TOL``).

    ``start``: the init; ``after``: each contender's params after ``CHECK_STEPS`` steps;
    ``oracle``: the params its reference (:func:`references`) reached (optax's own run for
    SGD and RMSprop). Returns per contender ``rel_l2``, ``||dp - dp_ref|| / ||dp_ref||``,
    and ``max_over_lr``, the largest element difference over the learning rate, both
    without the key biases (:func:`noise`). Raises ``SystemExit`` if ``rel_l2 > TOL``.
    """
    lr = float(contest.jopt.get_config()["learning_rate"])

    def change(params: PyTree) -> np.ndarray:
        leaves = jax.tree_util.tree_leaves_with_path(params)
        kept = [
            np.ravel(np.asarray(p, np.float64) - np.asarray(p0, np.float64))
            for (path, p), p0 in zip(leaves, jax.tree.leaves(start), strict=True)
            if not noise(path)
        ]
        return np.concatenate(kept)

    report: dict[str, dict[str, float]] = {}
    for name, params in after.items():
        if name not in oracle:
            continue
        d, ref = change(params), change(oracle[name])
        rel = float(np.linalg.norm(d - ref) / np.linalg.norm(ref))
        report[name] = {"rel_l2": rel, "max_over_lr": float(np.max(np.abs(d - ref))) / lr}
        if not rel <= TOL:
            raise SystemExit(
                f"{contest.name}: {name}'s change of the params after {CHECK_STEPS} steps "
                f"differs from its reference's by {rel:.2e} (relative L2, > {TOL}); "
                "not benchmarking"
            )
    return report


def reference_params(model: Model, contest: Contest, names: list[str]) -> dict[str, PyTree]:
    """Params after ``CHECK_STEPS`` steps of each reference in :func:`references`.

    A reference that is a contender's own optimizer (optax for SGD and RMSprop) is not
    run here: the group's run of that contender gives its params.
    """
    params = model.init()
    runs: dict[int, PyTree] = {}
    out: dict[str, PyTree] = {}
    for name, tx in references(contest).items():
        if name not in names or tx is contest.optax:
            continue
        if id(tx) not in runs:
            fns = flax_state(tx, model.loss, model.module)
            state, step = fns.create(params), jax.jit(fns.step)
            for _ in range(CHECK_STEPS):
                state, _ = step(state, model.batch)
            runs[id(tx)] = jax.tree.map(np.asarray, state.params)
        out[name] = runs[id(tx)]
    return out


# ---- timing -----------------------------------------------------------------------------


class Carry:
    """A train state carried from step to step through one jitted train step."""

    def __init__(self, call: Callable[..., Any], state: Any, batch: Batch) -> None:
        self.call, self.state, self.batch = call, state, batch
        self.donation_effective: bool | None = None

    def __call__(self) -> None:
        old = jax.tree.leaves(self.state)[0]
        self.state, loss = self.call(self.state, self.batch)
        jax.block_until_ready((self.state, loss))
        if self.donation_effective is None:
            self.donation_effective = old.is_deleted()


def first_step(
    step: Callable[..., Any], state: Any, batch: Batch, donate: bool
) -> tuple[Carry, dict[str, float], Any]:
    """Trace, lower, compile and first run of a fresh ``jax.jit`` of a fresh function."""
    jitted = jax.jit(lambda s, b: step(s, b), donate_argnums=(0,) if donate else ())
    (new_state, _), times, compiled = cold_start(jitted, state, batch)
    return Carry(jitted, new_state, batch), times, compiled


def bench_group(
    model: Model, contest: Contest, names: list[str], reps: int, flip: bool
) -> dict[str, Any]:
    """First steps, the agreement check, then interleaved step times of one pair."""
    params = model.init()
    result: dict[str, Any] = {
        "optimizer": contest.name,
        "tree": model.key,
        "first_step_s": {},
        "memory": {},
        "step_s": {},
    }
    runners: list[Runner] = []
    carries: dict[str, Carry] = {}
    after: dict[str, PyTree] = {}
    # Compiles one at a time: every contender's plain jit, then every donated one in the
    # reverse order (so drift of the machine's load hits them alike), starting from the
    # other end from group to group.
    order = names[::-1] if flip else names
    fns = {name: CONTENDERS[name](contest, model.loss, model.module) for name in names}
    for donate in (False, True):
        for name in order[::-1] if donate else order:
            state = fns[name].create(jax.tree.map(jnp.copy, params))
            ideal = tree_bytes((state, params, model.batch))  # + grads, as params
            carry, times, compiled = first_step(fns[name].step, state, model.batch, donate)
            result["first_step_s"].setdefault(name, {})["donated" if donate else "plain"] = times
            if donate:
                result["memory"][name] = memory(compiled, ideal)
            else:
                # The plain jit's first step was step 1 from the shared init: run the
                # rest of the check's steps on it now, before any timing.
                for _ in range(CHECK_STEPS - 1):
                    carry()
                after[name] = jax.tree.map(np.asarray, fns[name].params(carry.state))
            key = name + ("+donate" if donate else "")
            runners.append(Runner(key, carry))
            carries[key] = carry
    oracle = reference_params(model, contest, names)
    for name, tx in references(contest).items():
        if tx is contest.optax and name in names and "optax" in after:
            oracle[name] = after["optax"]
    result["agreement"] = agree(contest, params, after, oracle)
    time_rotated(runners, reps, carries, result)
    return result


def tree_spec(model: Model) -> TreeSpec:
    """The model's parameter shapes, as ``report.table`` lists trees."""
    shapes = jax.tree.map(lambda x: tuple(x.shape), jax.eval_shape(model.init))
    return TreeSpec(model.key, model.label, shapes, flat=False)


def main(argv: list[str] | None = None) -> int:
    """Parses arguments, runs every (model, optimizer) group, prints and writes results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny models, 3 reps")
    parser.add_argument("--json", default="artifacts/train_step.json", help="output path")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 30)")
    parser.add_argument(
        "--models", default=",".join(MODEL_KEYS), help=f"comma-separated of {MODEL_KEYS}"
    )
    parser.add_argument(
        "--optimizers",
        default="Adam",
        help="comma-separated of Adam,SGD,RMSprop (default Adam: each optimizer adds 8 "
        "compiles of the 24-layer decoder, 1-2 minutes here)",
    )
    parser.add_argument(
        "--contenders",
        default=",".join(CONTENDERS),
        help=f"comma-separated of {','.join(CONTENDERS)}",
    )
    args = parser.parse_args(argv)
    reps = args.reps or (3 if args.quick else 30)
    facts = RunFacts()

    names = [n for n in CONTENDERS if n in args.contenders.split(",")]
    wanted = args.optimizers.split(",")
    contests = [c for c in make_contests()[:3] if c.name in wanted]
    wanted = args.models.split(",")
    models = [m for m in make_models(args.quick) if m.key in wanted]
    if not names or not contests or not models:
        parser.error("no model, optimizer or contender selected")

    results = []
    for i, model in enumerate(models):
        for k, contest in enumerate(contests):
            t0 = time.perf_counter()
            results.append(bench_group(model, contest, names, reps, flip=(i + k) % 2 == 1))
            print(
                f"  {model.label} / {contest.name}: {time.perf_counter() - t0:.1f} s",
                file=sys.stderr,
                flush=True,
            )
            gc.collect()

    trees = {m.key: tree_spec(m) for m in models}
    print(
        f"agreement after {CHECK_STEPS} steps from one init: change of the params against "
        f"the reference's, relative L2 (tolerance {TOL}) / largest element difference in "
        "learning rates (Adam: the rule written out with each library's epsilon "
        "placement; SGD, RMSprop: optax):"
    )
    for r in results:
        cells = ", ".join(
            f"{k} {v['rel_l2']:.1e} / {v['max_over_lr']:.1e}" for k, v in r["agreement"].items()
        )
        print(f"  {trees[r['tree']].label} / {r['optimizer']}: {cells or '-'}")
    print()
    print(table(results, trees, names))
    print(facts.footer(f"{reps} repetitions"))

    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = {
        "meta": facts.meta(
            argv,
            quick=args.quick,
            reps=reps,
            libraries=names,
            check_steps=CHECK_STEPS,
            first_step="jax.jit(train_step).trace -> .lower -> .compile -> first call, seconds",
            step="median wall seconds of one train step incl. block_until_ready, interleaved",
            memory="XLA memory_analysis of the donated train step; peak = argument + output - "
            "alias + temp; ideal = train state + grads + batch bytes (activations excluded)",
        ),
        "models": {
            k: {"label": t.label, "leaves": t.leaves, "params": t.params} for k, t in trees.items()
        },
        "results": results,
    }
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
