"""Prints the worst relative error of every torch-style schedule and plateau sequence.

Run: ``python -m tests.lr_control_report`` (from the repo root). Schedules: against
torch's schedulers run live (WarmupStableDecay: against its float64 NumPy formula), each
mode of ``tests/test_schedules_pytorch.py``; the tests assert <= 1e-6. Plateau: the rate
after every call against Keras's ``ReduceLROnPlateau`` callback (eager and jitted) and
torch's (where its semantics match), ``tests/test_plateau.py``; asserted equal to Keras's
(the same float32 numbers) and within 1e-6 of torch's (float64).
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

from tests.test_plateau import NOT_TORCH, SEQUENCE_IDS, worst_keras_error, worst_torch_error
from tests.test_schedules_pytorch import (
    MODES,
    TORCH_IDS,
    WSD_IDS,
    worst_wsd_error,
)
from tests.test_schedules_pytorch import worst_torch_error as worst_schedule_error


def main() -> None:
    print(f"{'schedule vs torch':34s} " + " ".join(f"{m:>9s}" for m in MODES))
    for case_id in TORCH_IDS:
        errors = [worst_schedule_error(case_id, m) for m in MODES]
        print(f"{case_id:34s} " + " ".join(f"{e:9.2e}" for e in errors))
    print(f"\n{'WarmupStableDecay vs NumPy':34s} " + " ".join(f"{m:>9s}" for m in MODES))
    for case_id in WSD_IDS:
        errors = [worst_wsd_error(case_id, m) for m in MODES]
        print(f"{case_id:34s} " + " ".join(f"{e:9.2e}" for e in errors))
    print(f"\n{'plateau sequence':20s} {'Keras eager':>12s} {'Keras jit':>12s} {'torch':>12s}")
    for seq_id in SEQUENCE_IDS:
        torch_error = "n/a" if seq_id in NOT_TORCH else f"{worst_torch_error(seq_id):.2e}"
        print(
            f"{seq_id:20s} {worst_keras_error(seq_id, 'eager'):12.2e} "
            f"{worst_keras_error(seq_id, 'jit'):12.2e} {torch_error:>12s}"
        )


if __name__ == "__main__":
    main()
