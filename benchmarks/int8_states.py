"""8-bit Adam states against float32 ones: the same training, a quarter of the memory.

Run ``python benchmarks/int8_states.py`` (``--quick`` for a smoke run of a few seconds).
Two models, each trained twice from the same initial weights on the same batches, with
``jopt.Adam(1e-3)`` (float32 slots) and ``jopt.Adam(1e-3, slot_dtypes={"momentum":
"int8", "velocity": "int8"})`` (block-wise 8-bit slots):

* a 64 -> 256 -> 256 -> 10 tanh MLP on scikit-learn's digits (softmax cross-entropy);
* a character-level transformer language model (2 pre-norm layers, d_model 128, 4
  heads, context 64) on text that ships with Python: the docstrings and source of a
  fixed list of standard-library modules, byte-level (vocabulary 256), split 90/10.

It reports, per model: the final loss (digits: the whole training set's; LM: the
held-out text's, on fixed batches), the accuracy (digits: test set; LM: held-out next
byte), the optimizer state's bytes per parameter (every slot and block scale, over the
param count), and the step time of 8-bit over float32 states (medians of interleaved
rounds of compiled, donated steps). Loss curves of both go to ``artifacts/int8_states.png``
and every figure to ``artifacts/int8_states.json``.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jopt

INT8 = {"momentum": "int8", "velocity": "int8"}
# The LM's text: standard-library modules present in every CPython 3.10+ install.
MODULES = (
    "argparse.py", "textwrap.py", "dataclasses.py", "functools.py", "inspect.py",
    "pathlib.py", "typing.py", "collections/__init__.py", "json/decoder.py",
    "json/encoder.py", "difflib.py", "string.py", "statistics.py", "fractions.py",
    "heapq.py", "bisect.py", "enum.py", "random.py", "shutil.py", "tempfile.py",
)  # fmt: skip


def contenders(lr: float) -> dict[str, jopt.Optimizer]:
    return {"float32": jopt.Adam(lr), "int8": jopt.Adam(lr, slot_dtypes=INT8)}


def state_bytes_per_param(state: Any, params: Any) -> float:
    n = sum(x.size for x in jax.tree.leaves(params))
    nbytes = sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(state.slots))
    return nbytes / n


# ---- models --------------------------------------------------------------------------


def dense(key: jax.Array, fan_in: int, fan_out: int) -> dict[str, jax.Array]:
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return {
        "kernel": jax.random.uniform(key, (fan_in, fan_out), jnp.float32, -limit, limit),
        "bias": jnp.zeros(fan_out),
    }


def mlp_init(key: jax.Array, sizes: tuple[int, ...]) -> dict[str, Any]:
    keys = jax.random.split(key, len(sizes) - 1)
    pairs = zip(keys, sizes[:-1], sizes[1:], strict=True)
    return {f"dense_{i}": dense(k, a, b) for i, (k, a, b) in enumerate(pairs)}


def mlp_logits(params: dict[str, Any], x: jax.Array) -> jax.Array:
    *hidden, last = params.values()
    for layer in hidden:
        x = jnp.tanh(x @ layer["kernel"] + layer["bias"])
    return x @ last["kernel"] + last["bias"]


def layer_norm(p: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + 1e-5) * p["scale"] + p["bias"]


def lm_init(key: jax.Array, d: int, layers: int, context: int) -> dict[str, Any]:
    keys = iter(jax.random.split(key, 4 * layers + 2))
    norm = {"scale": jnp.ones(d), "bias": jnp.zeros(d)}
    params: dict[str, Any] = {
        "embed": 0.02 * jax.random.normal(next(keys), (256, d)),
        "position": 0.02 * jax.random.normal(next(keys), (context, d)),
        "final_norm": dict(norm),
    }
    for i in range(layers):
        params[f"layer_{i}"] = {
            "norm_1": dict(norm),
            "qkv": dense(next(keys), d, 3 * d),
            "out": dense(next(keys), d, d),
            "norm_2": dict(norm),
            "mlp_in": dense(next(keys), d, 4 * d),
            "mlp_out": dense(next(keys), 4 * d, d),
        }
    return params


def lm_logits(params: dict[str, Any], tokens: jax.Array, heads: int = 4) -> jax.Array:
    b, t = tokens.shape
    x = params["embed"][tokens] + params["position"][:t]
    mask = jnp.tril(jnp.ones((t, t), bool))
    for name in sorted(k for k in params if k.startswith("layer_")):
        p = params[name]
        h = layer_norm(p["norm_1"], x)
        q, k, v = jnp.split(h @ p["qkv"]["kernel"] + p["qkv"]["bias"], 3, axis=-1)
        q, k, v = (a.reshape(b, t, heads, -1) for a in (q, k, v))
        att = jnp.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(q.shape[-1])
        att = jax.nn.softmax(jnp.where(mask, att, -1e9), axis=-1)
        y = jnp.einsum("bhqk,bkhd->bqhd", att, v).reshape(b, t, -1)
        x = x + y @ p["out"]["kernel"] + p["out"]["bias"]
        h = layer_norm(p["norm_2"], x)
        h = jax.nn.gelu(h @ p["mlp_in"]["kernel"] + p["mlp_in"]["bias"])
        x = x + h @ p["mlp_out"]["kernel"] + p["mlp_out"]["bias"]
    return layer_norm(params["final_norm"], x) @ params["embed"].T


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, labels[..., None], axis=-1))


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return jnp.mean(jnp.argmax(logits, -1) == labels)


# ---- data ----------------------------------------------------------------------------


def digits(seed: int) -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    return tuple(
        train_test_split(
            (x / 16.0).astype(np.float32),
            y.astype(np.int32),
            test_size=0.25,
            random_state=seed,
            stratify=y,
        )
    )


def stdlib_text() -> np.ndarray:
    root = Path(sysconfig.get_paths()["stdlib"])
    text = b"".join((root / m).read_bytes() for m in MODULES if (root / m).exists())
    return np.frombuffer(text, np.uint8).astype(np.int32)


# ---- training ------------------------------------------------------------------------


def make_step(opt: jopt.Optimizer, loss: Any) -> Any:
    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(params: Any, state: Any, x: jax.Array, y: jax.Array) -> Any:
        value, grads = jax.value_and_grad(loss)(params, x, y)
        params, state = opt.apply(grads, state, params)
        return params, state, value

    return step


def run(
    params0: Any,
    loss: Any,
    batches: list[tuple[np.ndarray, np.ndarray]],
    evaluate: Any,
    lr: float,
    time_rounds: int,
) -> dict[str, Any]:
    """Trains each contender from ``params0`` on ``batches``; times them interleaved."""
    out: dict[str, Any] = {}
    steps = {}
    for name, opt in contenders(lr).items():
        step = steps[name] = make_step(opt, loss)
        params = jax.tree.map(jnp.array, params0)  # a copy: the step donates its input
        state = opt.init(params)
        bytes_pp = state_bytes_per_param(state, params)
        curve = []
        for x, y in batches:
            params, state, value = step(params, state, x, y)
            curve.append(value)
        out[name] = {
            "curve": [float(v) for v in jax.device_get(curve)],
            "state_bytes_per_param": bytes_pp,
            **{k: float(v) for k, v in evaluate(params).items()},
            "_live": (params, state),
        }
    # Step time: rounds of 10 steps per contender, alternating, medians of the rounds.
    times: dict[str, list[float]] = {name: [] for name in steps}
    x, y = batches[0]
    for _ in range(time_rounds):
        for name, step in steps.items():
            params, state = out[name]["_live"]
            start = time.perf_counter()
            for _ in range(10):
                params, state, value = step(params, state, x, y)
            value.block_until_ready()
            times[name].append((time.perf_counter() - start) / 10)
            out[name]["_live"] = (params, state)
    for name in steps:
        del out[name]["_live"]
        out[name]["step_ms"] = 1e3 * float(np.median(times[name]))
    out["step_time_ratio"] = out["int8"]["step_ms"] / out["float32"]["step_ms"]
    out["loss_ratio"] = out["int8"]["loss"] / out["float32"]["loss"]
    out["accuracy_points"] = 100 * (out["int8"]["accuracy"] - out["float32"]["accuracy"])
    out["params"] = sum(x.size for x in jax.tree.leaves(params0))
    return out


def digits_benchmark(epochs: int, hidden: int, rounds: int) -> dict[str, Any]:
    x_train, x_test, y_train, y_test = digits(0)
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(epochs):
        order = rng.permutation(len(x_train))[: len(x_train) // 64 * 64].reshape(-1, 64)
        batches += [(x_train[i], y_train[i]) for i in order]
    params0 = mlp_init(jax.random.PRNGKey(0), (64, hidden, hidden, 10))

    def loss(p: Any, x: jax.Array, y: jax.Array) -> jax.Array:
        return cross_entropy(mlp_logits(p, x), y)

    def evaluate(p: Any) -> dict[str, jax.Array]:
        return {
            "loss": loss(p, x_train, y_train),
            "accuracy": accuracy(mlp_logits(p, x_test), y_test),
        }

    return run(params0, loss, batches, evaluate, 1e-3, rounds)


def lm_benchmark(steps: int, d: int, layers: int, rounds: int) -> dict[str, Any]:
    context, batch = 64, 32
    text = stdlib_text()
    split = int(0.9 * len(text))
    train, held = text[:split], text[split:]
    rng = np.random.default_rng(0)

    def windows(src: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        starts = rng.integers(0, len(src) - context - 1, n)
        w = np.stack([src[s : s + context + 1] for s in starts])
        return w[:, :-1], w[:, 1:]

    batches = [windows(train, batch) for _ in range(steps)]
    held_x, held_y = windows(held, 256)
    params0 = lm_init(jax.random.PRNGKey(0), d, layers, context)

    def loss(p: Any, x: jax.Array, y: jax.Array) -> jax.Array:
        return cross_entropy(lm_logits(p, x), y)

    @jax.jit
    def evaluate(p: Any) -> dict[str, jax.Array]:
        logits = lm_logits(p, held_x)
        return {"loss": cross_entropy(logits, held_y), "accuracy": accuracy(logits, held_y)}

    result = run(params0, loss, batches, evaluate, 1e-3, rounds)
    result["text_bytes"] = len(text)
    return result


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4))
    for ax, (title, r) in zip(np.atleast_1d(axes), results.items(), strict=True):
        for name, style in (("float32", "-"), ("int8", "--")):
            curve = np.asarray(r[name]["curve"])
            if len(curve) > 40:
                curve = np.convolve(curve, np.ones(20) / 20, mode="valid")
            ax.plot(curve, style, label=f"Adam, {name} states")
        ax.set(title=title, xlabel="step", ylabel="train loss (20-step mean)", yscale="log")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--out", type=Path, default=Path("artifacts"), help="output folder")
    parser.add_argument("--lm-steps", type=int, default=1500, help="LM training steps")
    parser.add_argument("--digits-epochs", type=int, default=30, help="MLP training epochs")
    parser.add_argument("--rounds", type=int, default=15, help="step-time rounds of 10 steps")
    args = parser.parse_args(argv)
    if args.quick:
        digits_args, lm_args, rounds = (2, 64), (20, 32, 1), 2
    else:
        digits_args = (args.digits_epochs, 256)
        lm_args, rounds = (args.lm_steps, 128, 2), args.rounds
    results = {"digits MLP": digits_benchmark(*digits_args, rounds)}
    print("digits MLP done", flush=True)
    results["stdlib char LM"] = lm_benchmark(*lm_args, rounds)
    args.out.mkdir(parents=True, exist_ok=True)
    plot(results, args.out / "int8_states.png")
    meta = {
        "quick": args.quick,
        "lm_steps": lm_args[0],
        "digits_epochs": digits_args[0],
        "rounds": rounds,
        "jax": jax.__version__,
        "python": sys.version.split()[0],
    }
    (args.out / "int8_states.json").write_text(json.dumps({"meta": meta, **results}, indent=1))
    print(f"{'model':16} {'params':>8} {'state B/param':>15} {'final loss':>19} "
          f"{'accuracy %':>15} {'step ms':>13} {'ratio':>6}")  # fmt: skip
    for title, r in results.items():
        f, q = r["float32"], r["int8"]
        print(
            f"{title:16} {r['params']:>8,} {f['state_bytes_per_param']:>6.2f} -> "
            f"{q['state_bytes_per_param']:<5.2f} {f['loss']:>8.4f} -> {q['loss']:<7.4f} "
            f"{100 * f['accuracy']:>6.2f} -> {100 * q['accuracy']:<5.2f} "
            f"{f['step_ms']:>5.2f} -> {q['step_ms']:<5.2f} {r['step_time_ratio']:>5.2f}x"
        )
        print(
            f"{'':16} loss ratio {r['loss_ratio']:.4f}, accuracy difference "
            f"{r['accuracy_points']:+.2f} points"
        )
    return results


if __name__ == "__main__":
    main()
