"""The demo runs end to end: every optimizer learns the digits and the plot is written."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")

from jopt import demo

# 5 epochs (105 steps): over seeds 0-5 the slowest optimizer, Adam(0.001), reaches a
# test accuracy of 0.86-0.91 and the others more; at 3 epochs it is only 0.78-0.86.
EPOCHS = 5
MIN_ACCURACY = 0.8


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, dict], Path]:
    out = tmp_path_factory.mktemp("demo") / "loss.png"
    results = demo.main(["--epochs", str(EPOCHS), "--quiet", "--seed", "0", "--out", str(out)])
    return results, out


def test_every_optimizer_ran(run: tuple[dict[str, dict], Path]) -> None:
    results, _ = run
    assert set(results) == set(demo.optimizers())


@pytest.mark.parametrize("name", list(demo.optimizers()))
def test_optimizer_learns(run: tuple[dict[str, dict], Path], name: str) -> None:
    r = run[0][name]
    assert len(r["losses"]) == EPOCHS
    for key in ("final_loss", "test_accuracy", "steps_per_s", "final_lr"):
        assert math.isfinite(r[key]), f"{name}: {key} = {r[key]}"
    assert all(math.isfinite(x) for x in r["losses"]), f"{name}: losses {r['losses']}"
    assert r["losses"][-1] < r["losses"][0], f"{name}: loss did not decrease: {r['losses']}"
    assert r["test_accuracy"] > MIN_ACCURACY, f"{name}: test accuracy {r['test_accuracy']:.3f}"
    assert r["steps_per_s"] > 0
    assert r["final_lr"] > 0


def test_scheduled_lr_decayed(run: tuple[dict[str, dict], Path]) -> None:
    results, _ = run
    n_train = len(demo.load_data(seed=0)[0])
    steps = EPOCHS * (n_train // demo.BATCH_SIZE)  # the ragged last batch is dropped
    expected = 0.003 * 0.5 ** (steps / 200)
    assert results["Adam(ExponentialDecay(0.003))"]["final_lr"] == pytest.approx(expected, rel=1e-5)


def test_png_written(run: tuple[dict[str, dict], Path]) -> None:
    _, out = run
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 1000
