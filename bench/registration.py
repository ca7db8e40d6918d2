"""Benchmark: registering the follow-up demo pair (issue 14's budget: under 30 s on 2 cores).

Run: .venv/bin/python bench/registration.py [--repeats 5] [--seed 7] [--affine] [--grid-mm 3]
     [--json]

The pair (``meddiag demo make DIR --follow-up``: 150 x 384 x 384 voxels of 0.9 x 0.9 x 2 mm,
the patient moved 17 mm and turned 3.9 degrees) is made in memory once; then
:func:`meddiag_desktop.followup.registration.register` registers the baseline to the follow-up
``--repeats`` times. Each run's wall time (the reduction to the coarse grid included) and its
error against the known move are printed: the rotation error (degrees) and the largest
displacement error (mm) over the nodule centres and the middle of the scan. The last lines are
``median seconds: N.NN`` and ``worst error: R deg, T mm``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

from meddiag_desktop.demo.follow_up import (
    FOLLOW_UP_POSE,
    current_to_prior,
    make_follow_up_pair,
)
from meddiag_desktop.followup.registration import RegistrationOptions, register


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--affine", action="store_true")
    parser.add_argument("--grid-mm", type=float, default=RegistrationOptions().grid_mm)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    made = time.perf_counter()
    pair = make_follow_up_pair(args.seed)
    print(f"pair made in {time.perf_counter() - made:.1f} s; cpus {os.cpu_count()}")
    truth_matrix, truth_offset = current_to_prior(FOLLOW_UP_POSE)
    current = pair.follow_up.volume
    points = [
        np.asarray(lesion["centre_lps_mm"][1])
        for lesion in pair.truth["lesions"]
        if lesion["centre_lps_mm"][1] is not None
    ]
    points.append(np.asarray(current.index_to_lps(tuple((np.asarray(current.size_xyz) - 1) / 2))))
    options = RegistrationOptions(affine=args.affine, grid_mm=args.grid_mm)

    runs = []
    for repeat in range(args.repeats):
        started = time.perf_counter()
        result = register(current, pair.baseline.volume, options)
        seconds = time.perf_counter() - started
        matrix, offset = result.transform.matrix_and_translation()
        u, _s, vt = np.linalg.svd(matrix @ truth_matrix.T)
        rotation = u @ vt
        angle = float(np.degrees(np.arccos(np.clip((np.trace(rotation) - 1) / 2, -1, 1))))
        shift = max(
            float(np.linalg.norm((matrix @ p + offset) - (truth_matrix @ p + truth_offset)))
            for p in points
        )
        runs.append(
            {
                "seconds": seconds,
                "rotation_error_deg": angle,
                "displacement_error_mm": shift,
                "metric": result.quality.metric,
                "ncc_after": result.quality.ncc_after,
                "iterations": result.iterations,
            }
        )
        print(
            f"run {repeat + 1}: {seconds:.2f} s, {result.iterations} iterations, rotation error "
            f"{angle:.3f} deg, displacement error {shift:.3f} mm, metric "
            f"{result.quality.metric:.4f}, NCC {result.quality.ncc_before:.3f} -> "
            f"{result.quality.ncc_after:.3f}"
        )
    median = statistics.median(r["seconds"] for r in runs)
    worst_rotation = max(r["rotation_error_deg"] for r in runs)
    worst_shift = max(r["displacement_error_mm"] for r in runs)
    if args.json:
        print(json.dumps({"runs": runs, "median_seconds": median}, indent=2))
    print(f"median seconds: {median:.2f}")
    print(f"worst error: {worst_rotation:.3f} deg, {worst_shift:.3f} mm")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
