"""Prints the worst error of every SGD / RMSprop / Adam parity case, compiled and eager.

Run: ``KERAS_BACKEND=jax python -m tests.parity_report`` (from the repo root). The error
is tests/problems.py's ``relative_error`` (max |a - e| / max(|e|, 1)) over every step of
every leaf; the tests assert compiled <= 1e-6 and eager == 0.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

from tests.keras_oracle import jopt_run
from tests.problems import relative_error
from tests.test_keras_parity import CASES, keras_trajectory
from tests.test_legacy import DATA, SPECS, build, run


def main() -> None:
    print(f"{'Keras 3 case':34s} {'compiled':>10s} {'eager':>10s}")
    for case_id, make, _ in CASES:
        expected = keras_trajectory(case_id)
        errors = [
            max(relative_error(a, e) for a, e in zip(jopt_run(make(), mode), expected, strict=True))
            for mode in ("compiled", "eager")
        ]
        print(f"{case_id:34s} {errors[0]:10.2e} {errors[1]:10.2e}")
    print(f"\n{'tf.keras 2 case (jopt.legacy)':42s} {'compiled':>10s} {'eager':>10s}")
    for spec in SPECS:
        errors = [
            max(
                relative_error(a, DATA[f"{spec['name']}__{j}"])
                for j, a in enumerate(run(build(spec), mode))
            )
            for mode in ("compiled", "eager")
        ]
        print(f"{spec['name']:42s} {errors[0]:10.2e} {errors[1]:10.2e}")


if __name__ == "__main__":
    main()
