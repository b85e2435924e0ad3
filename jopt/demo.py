"""The README's main job: train a small MLP on scikit-learn's digits with four jopt optimizers.

Run ``python -m jopt.demo`` (needs the ``demo`` extra: scikit-learn, matplotlib, tqdm).
It trains the same 64 -> 64 -> 10 MLP, from the same initial weights, with SGD with
momentum, RMSprop, Adam and Adam on an ``ExponentialDecay`` schedule, prints a table of
final train loss, test accuracy, steps/s and final learning rate, and saves the loss
curves to ``artifacts/demo_loss.png``.

The pattern to copy is :func:`train_step`: one ``jax.jit``-ed function that computes the
loss and gradients and applies the optimizer, with the (frozen, hashable) optimizer as a
static argument and its state passed through like any other pytree.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import io
import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jopt

Params = dict[str, dict[str, jax.Array]]

LAYER_SIZES = (64, 64, 10)
BATCH_SIZE = 64


def load_data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Returns ``(x_train, y_train, x_test, y_test)``: 8x8 digits scaled to [0, 1], 75/25 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y.astype(np.int32), test_size=0.25, random_state=seed, stratify=y
    )
    return x_train, y_train, x_test, y_test


def init_mlp(key: jax.Array, sizes: tuple[int, ...] = LAYER_SIZES) -> Params:
    """Returns Glorot-uniform kernels and zero biases, ``{"dense_0": {"kernel", "bias"}, ...}``."""
    params = {}
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        key, sub = jax.random.split(key)
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        params[f"dense_{i}"] = {
            "kernel": jax.random.uniform(sub, (fan_in, fan_out), jnp.float32, -limit, limit),
            "bias": jnp.zeros(fan_out, jnp.float32),
        }
    return params


def predict(params: Params, x: jax.Array) -> jax.Array:
    """Returns the logits of the MLP: tanh on every layer but the last."""
    *hidden, last = params.values()
    for layer in hidden:
        x = jnp.tanh(x @ layer["kernel"] + layer["bias"])
    return x @ last["kernel"] + last["bias"]


def loss_fn(params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
    """Returns the mean softmax cross-entropy of the logits against integer labels ``y``."""
    log_probs = jax.nn.log_softmax(predict(params, x))
    return -jnp.mean(jnp.take_along_axis(log_probs, y[:, None], axis=1))


@functools.partial(jax.jit, static_argnums=0)
def train_step(
    opt: jopt.Optimizer, params: Params, state: jopt.OptimizerState, x: jax.Array, y: jax.Array
) -> tuple[Params, jopt.OptimizerState, jax.Array]:
    """One compiled update: returns ``(new_params, new_state, loss)``.

    ``opt`` is static (one compiled program per optimizer); ``state`` is a pytree of
    arrays, traced like ``params``, so its step count and slots live on the device.
    """
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    updates, state = opt.update(grads, state, params)
    return jopt.apply_updates(params, updates), state, loss


@jax.jit
def accuracy(params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
    """Returns the fraction of ``x`` whose arg-max logit is the label ``y``."""
    return jnp.mean(jnp.argmax(predict(params, x), axis=1) == y)


def optimizers() -> dict[str, jopt.Optimizer]:
    """Returns the four optimizers the demo compares, by display name."""
    decay = jopt.schedules.ExponentialDecay(0.003, decay_steps=200, decay_rate=0.5)
    return {
        "SGD(0.1, momentum=0.9)": jopt.SGD(0.1, momentum=0.9),
        "RMSprop(0.001)": jopt.RMSprop(0.001),
        "Adam(0.001)": jopt.Adam(0.001),
        "Adam(ExponentialDecay(0.003))": jopt.Adam(learning_rate=decay),
    }


def train(
    opt: jopt.Optimizer,
    params: Params,
    data: tuple[np.ndarray, ...],
    *,
    epochs: int,
    seed: int,
    label: str,
    quiet: bool,
    checkpoint: Checkpoint | None = None,
    max_steps: int | None = None,
    log_lr: bool = False,
) -> dict[str, Any]:
    """Trains ``params`` with ``opt`` on minibatches; returns the run's results.

    The first step compiles :func:`train_step`; steps/s counts only the steps after it.
    With ``checkpoint``, the run resumes from its last save (params, optimizer state,
    step, losses so far) and saves every ``checkpoint.every`` steps and at the end; the
    batches are the same as in an uninterrupted run, so are the numbers. ``max_steps``
    stops early (as a killed run would). ``log_lr`` prints ``opt.lr(step)`` each epoch.
    """
    from tqdm.auto import tqdm

    x_train, y_train, x_test, y_test = data
    rng = np.random.default_rng(seed)
    n_batches = len(x_train) // BATCH_SIZE  # drop the ragged tail: one shape, one compile
    state = opt.init(params)
    epoch_losses: list[float] = []
    partial: list[Any] = []
    done = 0
    if checkpoint is not None and checkpoint.exists():
        params, state, done, epoch_losses, partial = checkpoint.load(params, state)
        print(f"{label}: resumed from {checkpoint.path} at step {done}")
    steps, start = 0, 0.0
    bar = tqdm(range(epochs), desc=label, disable=quiet or log_lr, leave=True)
    for epoch in bar:
        order = rng.permutation(len(x_train))[: n_batches * BATCH_SIZE].reshape(n_batches, -1)
        if (epoch + 1) * n_batches <= done:
            continue  # finished before the restart: its batches were drawn, as then
        losses = partial if epoch * n_batches < done else []
        for i, idx in enumerate(order):
            step = epoch * n_batches + i
            if step < done:
                continue
            if max_steps is not None and step >= max_steps:
                return {"stopped_at": step}
            params, state, loss = train_step(opt, params, state, x_train[idx], y_train[idx])
            losses.append(loss)
            if steps == 0:
                loss.block_until_ready()
                start = time.perf_counter()
            steps += 1
            if checkpoint is not None and (step + 1) % checkpoint.every == 0:
                checkpoint.save(params, state, step + 1, epoch_losses, losses)
        epoch_losses.append(float(np.mean(jax.device_get(losses))))  # no op to compile
        rate = float(opt.lr(state))  # the rate of the next step: opt.lr(step)
        bar.set_postfix(loss=f"{epoch_losses[-1]:.4f}", lr=f"{rate:.3e}")
        if log_lr:
            step = int(state.step)
            print(
                f"epoch {epoch + 1:>3}  step {step:>5}  loss {epoch_losses[-1]:.4f}  "
                f"lr(step={step}) {float(opt.lr(step)):.4e}"
            )
    if checkpoint is not None:
        checkpoint.save(params, state, epochs * n_batches, epoch_losses, [])
    elapsed = time.perf_counter() - start
    return {
        "losses": epoch_losses,
        "final_loss": epoch_losses[-1],
        "test_accuracy": float(accuracy(params, x_test, y_test)),
        "steps_per_s": (steps - 1) / elapsed if steps > 1 else float("nan"),
        "final_lr": float(opt.lr(state)),
        "params": params,
    }


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A run's checkpoint in ``path``: the arrays as a NumPy ``.npz``, counters as JSON.

    Saved atomically (written aside, then renamed), so a run killed mid-save resumes from
    the previous one. Restored onto the run's own params and state, so the optimizer
    state comes back as jopt's types (no :func:`jopt.restore_state` needed).
    """

    path: Path
    every: int = 50

    def exists(self) -> bool:
        return (self.path / "arrays.npz").exists() and (self.path / "meta.json").exists()

    def save(
        self, params: Any, state: Any, step: int, losses: list[float], partial: list[Any]
    ) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        meta = {
            "step": step,
            "epoch_losses": losses,
            "partial_losses": [float(x) for x in jax.device_get(partial)],
        }
        # Leaves in the pytree's order; load() puts them back into the run's own state.
        leaves = jax.device_get(jax.tree.leaves({"params": params, "state": state}))
        buffer = io.BytesIO()
        np.savez(buffer, *leaves)
        for name, data in (
            ("arrays.npz", buffer.getvalue()),
            ("meta.json", json.dumps(meta).encode()),
        ):
            tmp = self.path / (name + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, self.path / name)

    def load(self, params: Any, state: Any) -> tuple[Any, Any, int, list[float], list[Any]]:
        treedef = jax.tree.structure({"params": params, "state": state})
        with np.load(self.path / "arrays.npz") as saved:
            leaves = [jnp.asarray(saved[f"arr_{i}"]) for i in range(len(saved.files))]
        restored = jax.tree.unflatten(treedef, leaves)
        meta = json.loads((self.path / "meta.json").read_text())
        partial = [np.float32(x) for x in meta["partial_losses"]]
        return restored["params"], restored["state"], meta["step"], meta["epoch_losses"], partial


def optimizer_from_flags(args: argparse.Namespace) -> tuple[str, jopt.Optimizer] | None:
    """The optimizer the seed's flags describe, or ``None`` to run the four-way comparison.

    ``--config`` is a Keras optimizer config as JSON (``{"class_name": "Adam", "config":
    {...}}``, what ``keras.optimizers.serialize`` writes); otherwise ``--optimizer`` names
    the class (Keras's names, any case) and ``--init_learning_rate`` its rate, decayed by
    ``ExponentialDecay(init_learning_rate, lr_decay_steps, lr_decay_rate, staircase)``
    when ``--lr_decay_rate`` is given.
    """
    if args.config is not None:
        opt = jopt.optimizers.get(json.loads(args.config))
        return type(opt).__name__, opt
    if args.optimizer is None and args.init_learning_rate is None:
        return None
    rate: Any = args.init_learning_rate
    if args.lr_decay_rate is not None:
        if rate is None:
            raise SystemExit("--lr_decay_rate needs --init_learning_rate")
        rate = jopt.schedules.ExponentialDecay(
            rate, args.lr_decay_steps, args.lr_decay_rate, staircase=args.staircase
        )
    cls = type(jopt.optimizers.get(args.optimizer or "adam"))
    opt = cls() if rate is None else cls(learning_rate=rate)
    return type(opt).__name__, opt


def plot_losses(results: dict[str, dict[str, Any]], out: Path) -> None:
    """Writes one loss curve per optimizer to the PNG ``out`` (Agg canvas, no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, result in results.items():
        epochs = np.arange(1, len(result["losses"]) + 1)
        ax.plot(epochs, result["losses"], marker="o", markersize=3, label=name)
    ax.set(xlabel="epoch", ylabel="train loss (mean cross-entropy)", yscale="log")
    ax.set_title("MLP 64-64-10 on sklearn digits")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Runs the demo; returns, by optimizer name, its per-epoch ``losses``, ``final_loss``,
    ``test_accuracy``, ``steps_per_s`` and ``final_lr``.

    Example (what ``tests/test_demo.py`` runs)::

        results = main(["--epochs", "5", "--quiet", "--out", "/tmp/loss.png"])
        results["Adam(0.001)"]["test_accuracy"]  # about 0.9
    """
    parser = argparse.ArgumentParser(prog="python -m jopt.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=20, help="epochs per optimizer (20)")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("artifacts/demo_loss.png"),
        help="PNG of the loss curves (artifacts/demo_loss.png)",
    )
    parser.add_argument("--seed", type=int, default=0, help="data split, init, shuffle (0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    flags = parser.add_argument_group(
        "one optimizer, configured as the seed's script was (instead of the comparison)"
    )
    flags.add_argument("--optimizer", help="a Keras optimizer name: sgd, rmsprop, adam, ...")
    flags.add_argument("--init_learning_rate", type=float, help="initial learning rate")
    flags.add_argument("--lr_decay_rate", type=float, help="ExponentialDecay's decay_rate")
    flags.add_argument("--lr_decay_steps", type=float, default=1000, help="decay_steps (1000)")
    flags.add_argument("--staircase", action="store_true", help="decay in discrete steps")
    flags.add_argument("--config", help="a Keras optimizer config as JSON (serialize's dict)")
    flags.add_argument("--checkpoint", type=Path, help="save here and resume from here")
    flags.add_argument("--save_every", type=int, default=50, help="steps between saves (50)")
    flags.add_argument("--max_steps", type=int, help="stop after this many steps in all")
    args = parser.parse_args(argv)

    data = load_data(args.seed)
    params = init_mlp(jax.random.key(args.seed))
    single = optimizer_from_flags(args)
    checkpoint = None if args.checkpoint is None else Checkpoint(args.checkpoint, args.save_every)
    if single is None and (checkpoint is not None or args.max_steps is not None):
        parser.error("--checkpoint and --max_steps need one optimizer (--optimizer or --config)")
    chosen = dict([single]) if single is not None else optimizers()
    if single is not None:
        print(f"optimizer: {single[1]!r}")
    results = {
        name: train(
            opt,
            params,
            data,
            epochs=args.epochs,
            seed=args.seed,
            label=name,
            quiet=args.quiet,
            checkpoint=checkpoint,
            max_steps=args.max_steps,
            log_lr=single is not None and not args.quiet,
        )
        for name, opt in chosen.items()
    }
    if any("stopped_at" in r for r in results.values()):
        print(f"stopped at step {args.max_steps} (--max_steps); run again to resume")
        return results

    header = f"{'optimizer':<30} {'train loss':>10} {'test acc':>9} {'steps/s':>9} {'final lr':>10}"
    print(header, "-" * len(header), sep="\n")
    for name, r in results.items():
        print(
            f"{name:<30} {r['final_loss']:>10.4f} {r['test_accuracy']:>9.3f} "
            f"{r['steps_per_s']:>9.0f} {r['final_lr']:>10.2e}"
        )
    plot_losses(results, args.out)
    print(f"loss curves: {args.out}")
    return results


if __name__ == "__main__":
    main()
