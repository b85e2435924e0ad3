"""The demo speaks the seed's flags, prints ``opt.lr(step)``, and resumes a killed run.

A run stopped mid-epoch (``--max_steps``, as a kill would) and started again continues
from its last save and ends with the same params, losses and rate, bit for bit, as an
uninterrupted run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import keras
import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")

import jopt
from jopt import demo

FLAGS = ["--optimizer", "sgd", "--init_learning_rate", "0.1", "--lr_decay_rate", "0.5"]
FLAGS += ["--lr_decay_steps", "10", "--staircase", "--epochs", "2"]


def run(tmp_path: Path, *extra: str) -> dict:
    return demo.main([*FLAGS, "--quiet", "--out", str(tmp_path / "loss.png"), *extra])


def test_flags_in_the_seeds_names_build_the_keras_optimizer() -> None:
    namespace = argparse.Namespace(
        config=None,
        optimizer="RMSprop",
        init_learning_rate=0.01,
        lr_decay_rate=0.9,
        lr_decay_steps=100.0,
        staircase=True,
    )
    _, opt = demo.optimizer_from_flags(namespace)
    schedule = jopt.schedules.ExponentialDecay(0.01, 100.0, 0.9, staircase=True)
    assert opt == jopt.RMSprop(learning_rate=schedule)
    # A Keras config, as keras.optimizers.serialize writes it.
    keras_adam = keras.optimizers.Adam(learning_rate=0.003, amsgrad=True, name="adam")
    namespace.config = json.dumps(keras.optimizers.serialize(keras_adam))
    _, opt = demo.optimizer_from_flags(namespace)
    rate = keras_adam.get_config()["learning_rate"]  # Keras keeps it as a float32
    assert opt == jopt.Adam(learning_rate=rate, amsgrad=True)


def test_killed_and_restarted_run_continues_with_the_same_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = ["--checkpoint", str(tmp_path / "ckpt"), "--save_every", "5"]
    stopped = run(tmp_path, *checkpoint, "--max_steps", "17")  # mid-epoch 1, after a save
    assert next(iter(stopped.values())) == {"stopped_at": 17}
    resumed = next(iter(run(tmp_path, *checkpoint).values()))
    assert "resumed from" in capsys.readouterr().out
    straight = next(iter(run(tmp_path).values()))
    for a, b in zip(
        jax.tree.leaves(resumed["params"]),
        jax.tree.leaves(straight["params"]),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    assert resumed["losses"] == straight["losses"]
    assert resumed["final_lr"] == straight["final_lr"] == pytest.approx(0.1 * 0.5 ** (42 // 10))


def test_lr_is_printed_as_it_trains(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    demo.main([*FLAGS, "--out", str(tmp_path / "loss.png")])
    out = capsys.readouterr().out
    assert "lr(step=21) 2.5000e-02" in out and "lr(step=42) 6.2500e-03" in out
