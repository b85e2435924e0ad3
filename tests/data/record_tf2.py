"""Record reference trajectories from the tf.keras 2 legacy optimizers.

This script feeds a fixed, numpy-generated gradient sequence to
``tf_keras.optimizers.legacy.{SGD, RMSprop, Adam}`` (the tf.keras 2.x
``optimizer_v2`` implementations) via ``opt.apply_gradients`` -- no loss
function is involved -- and stores the value of every variable after every
step in ``tf2_trajectories.npz`` next to this file.

The test suite only reads the ``.npz``; it never imports tensorflow.  This
script is run by hand, once, to (re)generate the file.

Recorded with tensorflow==2.21.0, tf-keras==2.21.0 (numpy 2.4.6), on CPU::

    python3 -m venv /work/tfvenv
    /work/tfvenv/bin/pip install tensorflow==2.21.0 tf-keras==2.21.0 numpy
    TF_USE_LEGACY_KERAS=1 CUDA_VISIBLE_DEVICES="" TF_CPP_MIN_LOG_LEVEL=2 \\
        /work/tfvenv/bin/python tests/data/record_tf2.py [OUTPUT.npz]

Setup: three float32 variables of shapes (3,), (2, 3) and (2, 2, 2) with
standard-normal initial values; ``T`` = 25 steps.  Gradients are
``standard_normal * 10 ** uniform(-4, 0.5)`` per element, scaled by
``0.3 ** k`` over the last 10 steps (k = 1..10) so that AMSGrad's running max
of ``v`` differs from ``v``; a few entries are exactly 0 and one entry per
step of variable 2 has magnitude ~1e-4 (scaled as above), so epsilon
matters.  Everything comes from ``np.random.default_rng(0)``.

Layout of the ``.npz`` (all arrays load with ``allow_pickle=False``):

- ``init_{j}``: float32, initial value of variable ``j`` (j = 0, 1, 2);
- ``grads_{j}``: float32 ``(T, *shape_j)``, gradient fed for variable ``j``
  at each step;
- ``case_names``: 1-D str array of case names;
- ``case_specs``: 1-D str array, one JSON string per case:
  ``{"name": ..., "class": "SGD"|"RMSprop"|"Adam", "kwargs": {...}}``, with
  kwargs exactly as passed to the legacy class; a learning-rate schedule is
  written as ``{"class_name": "ExponentialDecay", "config": {...}}``
  (``tf_keras.optimizers.schedules.serialize`` minus its other keys);
- ``{case}__{j}``: float32 ``(T, *shape_j)``, value of variable ``j`` after
  each of the ``T`` steps (row ``t`` is after ``t + 1`` updates);
- ``versions``: 0-d str array, JSON with tensorflow, tf-keras, numpy versions.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow as tf
import tf_keras

T = 25
SHAPES: tuple[tuple[int, ...], ...] = ((3,), (2, 3), (2, 2, 2))
OUT = Path(__file__).with_name("tf2_trajectories.npz")


def make_data() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Return (initial values, gradient sequences), all float32."""
    rng = np.random.default_rng(0)
    inits = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    scale = np.ones(T)
    scale[T - 10 :] = 0.3 ** np.arange(1, 11)
    grads = []
    for s in SHAPES:
        g = np.stack([rng.standard_normal(s) * 10.0 ** rng.uniform(-4, 0.5, s) for _ in range(T)])
        grads.append(g * scale.reshape((T, *(1,) * len(s))))
    grads[0][3, 1] = 0.0
    grads[1][7, 1, 2] = 0.0
    grads[1][20, 0, 0] = 0.0
    grads[2][:, 1, 1, 1] = 1e-4 * rng.choice([-1.0, 1.0], T) * scale
    return inits, [g.astype(np.float32) for g in grads]


def exp_decay(lr: float, staircase: bool) -> Any:
    """ExponentialDecay(lr, decay_steps=5, decay_rate=0.5)."""
    return tf_keras.optimizers.schedules.ExponentialDecay(
        lr, decay_steps=5, decay_rate=0.5, staircase=staircase
    )


def make_cases() -> list[tuple[str, str, dict[str, Any]]]:
    """(name, legacy class name, kwargs) for every recorded case."""
    small = {"learning_rate": 0.01, "rho": 0.8, "epsilon": 1e-3}
    adam_small = {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-3}
    return [
        ("sgd", "SGD", {}),
        ("sgd_momentum", "SGD", {"momentum": 0.9}),
        ("sgd_nesterov", "SGD", {"momentum": 0.9, "nesterov": True}),
        ("sgd_decay", "SGD", {"learning_rate": 0.05, "momentum": 0.5, "decay": 0.01}),
        ("sgd_nesterov_decay", "SGD", {"momentum": 0.9, "nesterov": True, "decay": 0.05}),
        ("sgd_schedule", "SGD", {"learning_rate": exp_decay(0.1, False), "momentum": 0.9}),
        (
            "sgd_schedule_staircase_decay",
            "SGD",
            {"learning_rate": exp_decay(0.1, True), "momentum": 0.9, "decay": 0.05},
        ),
        ("sgd_schedule_plain", "SGD", {"learning_rate": exp_decay(0.1, False)}),
        ("rmsprop", "RMSprop", {}),
        ("rmsprop_momentum", "RMSprop", {"momentum": 0.9}),
        ("rmsprop_centered", "RMSprop", {"centered": True}),
        ("rmsprop_centered_momentum", "RMSprop", {"centered": True, "momentum": 0.9}),
        ("rmsprop_small", "RMSprop", dict(small)),
        ("rmsprop_small_momentum", "RMSprop", {**small, "momentum": 0.5}),
        ("rmsprop_small_centered", "RMSprop", {**small, "centered": True}),
        (
            "rmsprop_small_centered_momentum",
            "RMSprop",
            {**small, "centered": True, "momentum": 0.5},
        ),
        ("rmsprop_decay", "RMSprop", {"decay": 0.01}),
        (
            "rmsprop_decay_centered_momentum",
            "RMSprop",
            {"decay": 0.01, "momentum": 0.9, "centered": True},
        ),
        ("rmsprop_schedule", "RMSprop", {"learning_rate": exp_decay(0.01, False)}),
        (
            "rmsprop_schedule_staircase_decay_momentum",
            "RMSprop",
            {"learning_rate": exp_decay(0.01, True), "decay": 0.05, "momentum": 0.9},
        ),
        ("adam", "Adam", {}),
        ("adam_amsgrad", "Adam", {"amsgrad": True}),
        ("adam_small", "Adam", dict(adam_small)),
        ("adam_small_amsgrad", "Adam", {**adam_small, "amsgrad": True}),
        ("adam_decay", "Adam", {"decay": 0.01}),
        ("adam_decay_amsgrad", "Adam", {"decay": 0.01, "amsgrad": True}),
        ("adam_schedule", "Adam", {"learning_rate": exp_decay(0.01, False)}),
        (
            "adam_schedule_staircase_decay_amsgrad",
            "Adam",
            {"learning_rate": exp_decay(0.01, True), "decay": 0.05, "amsgrad": True},
        ),
    ]


def to_json(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Kwargs with schedules replaced by their serialized class_name/config."""
    out: dict[str, Any] = {}
    for k, v in kwargs.items():
        if isinstance(v, tf_keras.optimizers.schedules.LearningRateSchedule):
            ser = tf_keras.optimizers.schedules.serialize(v)
            v = {"class_name": ser["class_name"], "config": ser["config"]}
        out[k] = v
    return out


def run_case(
    cls: str, kwargs: dict[str, Any], inits: list[np.ndarray], grads: list[np.ndarray]
) -> list[np.ndarray]:
    """Apply the T gradients with a fresh optimizer; return per-step values."""
    opt = getattr(tf_keras.optimizers.legacy, cls)(**kwargs)
    tvars = [tf.Variable(x, dtype=tf.float32) for x in inits]
    traj = [np.zeros((T, *x.shape), np.float32) for x in inits]
    for t in range(T):
        opt.apply_gradients(zip([tf.constant(g[t]) for g in grads], tvars, strict=True))
        for j, v in enumerate(tvars):
            traj[j][t] = v.numpy()
    return traj


def main() -> None:
    """Record every case and write the .npz."""
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    inits, grads = make_data()
    arrays: dict[str, np.ndarray] = {}
    for j in range(len(SHAPES)):
        arrays[f"init_{j}"] = inits[j]
        arrays[f"grads_{j}"] = grads[j]
    names, specs = [], []
    for name, cls, kwargs in make_cases():
        spec = {"name": name, "class": cls, "kwargs": to_json(kwargs)}
        names.append(name)
        specs.append(json.dumps(spec, sort_keys=True))
        for j, traj in enumerate(run_case(cls, kwargs, inits, grads)):
            if not np.all(np.isfinite(traj)):
                raise RuntimeError(f"non-finite values in {name}")
            arrays[f"{name}__{j}"] = traj
    arrays["case_names"] = np.array(names)
    arrays["case_specs"] = np.array(specs)
    versions = {
        "tensorflow": tf.__version__,
        "tf_keras": tf_keras.__version__,
        "numpy": np.__version__,
    }
    arrays["versions"] = np.array(json.dumps(versions, sort_keys=True))
    np.savez_compressed(out, **arrays)
    print(f"wrote {len(names)} cases to {out}")


if __name__ == "__main__":
    main()
