"""Loads one mutated scan per request the way ``meddiag scan`` and ``meddiag convert`` do, in a
process of its own, so that a crash or a hang in a reader is seen by the fuzz test instead of
taking it down (tests/scans/test_fuzz_damaged_files.py).

Protocol: one JSON object per line on stdin, one JSON answer per line on stdout. Before the
first request the worker prints ``{"ready": true}`` once its imports have succeeded. Requests:

    {"id": ..., "path": mutant path, "reference": undamaged path, "expect": {...},
     "strip": [folder names to blank out of warnings], "out": a .nii.gz path to write}

The answer says what the product did (``refused`` with a ScanError, ``loaded``, or ``error``
with any other exception) and, for a load, how the volume differs from the undamaged one.
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import math
import os
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

# Spacing, origin and direction may differ by rounding noise of the stored decimal strings: far
# below what a radiologist could see, and below what any reader could tell from real jitter.
SPACING_RTOL = 0.01
ORIGIN_ATOL_MM = 0.05
DIRECTION_ATOL = 1e-3
MEMORY_LIMIT = 6 << 30  # a mutant declaring a huge size must fail to allocate, not swap


def main() -> int:
    faulthandler.enable()  # a native crash prints its stack to stderr for the test's report
    with contextlib.suppress(ValueError, OSError):  # a lower hard limit is fine too
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    from meddiag_desktop.cli.scan_commands import series_summary
    from meddiag_desktop.scans import ScanError, choose_series, discover, load, write_volume

    references: dict[str, Any] = {}

    def reference(path: str) -> Any:
        if path not in references:
            folder = Path(path)
            references[path] = load(choose_series(discover(folder), None, folder))
        return references[path]

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        answer: dict = {"id": request["id"]}
        try:
            ref = reference(request["reference"])
        except Exception as exc:  # the undamaged copy must load: that is the test's premise
            answer.update(outcome="reference_failed", message=f"{type(exc).__name__}: {exc}")
            print(json.dumps(answer), flush=True)
            continue
        path = Path(request["path"])
        if request.get("self_test") == "crash":  # the harness's own test of crash handling
            os.abort()
        if request.get("self_test") == "hang":
            time.sleep(3600)
        try:
            # `meddiag scan PATH` (its JSON form), then `meddiag convert PATH --out OUT`
            found = discover(path)
            answer["listing_problems"] = _listing_problems(found, series_summary)
            series = choose_series(found, None, path)
            answer["listed_loadable"] = series.loadable
            volume = load(series)
            write_volume(volume, request["out"])
        except ScanError as exc:
            answer.update(outcome="refused", error_type=type(exc).__name__, message=str(exc))
            answer["names_the_file"] = request["strip"][0] in str(exc)  # the mutant's folder
        except Exception as exc:
            answer.update(
                outcome="error",
                error_type=type(exc).__name__,
                message=str(exc)[:500],
                # the CLI prints these as one line too, but they are not the scan layer's errors
                cli_one_line=isinstance(exc, (ValueError, OSError)),
                traceback=traceback.format_exc()[-3000:],
            )
        else:
            answer.update(outcome="loaded", **_compare(volume, ref, request))
        finally:
            Path(request["out"]).unlink(missing_ok=True)
        print(json.dumps(answer), flush=True)
    return 0


def _listing_problems(found: list, summary: Any) -> list[str]:
    """What ``meddiag scan`` would show wrongly: a series listed loadable with impossible
    geometry, or a listing that is not valid JSON."""
    problems = []
    for series in found:
        try:
            json.dumps(summary(series), allow_nan=False)
        except ValueError:
            problems.append(f"{series.key}: 'scan --json' holds NaN/inf (not valid JSON)")
        spacing = series.spacing_xyz_mm
        if series.loadable and not all(math.isfinite(v) and v > 0 for v in spacing):
            problems.append(f"{series.key}: listed loadable with spacing {spacing}")
    return problems


def _compare(volume: Any, ref: Any, request: dict) -> dict:
    """New warnings, geometry sanity, and every way the volume differs from what is expected."""
    strip = request.get("strip", [])

    def plain(text: str) -> str:
        for folder in strip:
            text = text.replace(folder, "<folder>")
        return text

    old = {plain(w) for w in ref.warnings}
    new = [w for w in volume.warnings if plain(w) not in old]
    expect = request.get("expect", {})
    spacing = np.array(ref.spacing_xyz_mm, dtype=float)
    if "spacing_xy" in expect:
        spacing[:2] = expect["spacing_xy"]
    origin = np.array(ref.origin_lps_mm, dtype=float) + np.array(
        expect.get("origin_shift", (0, 0, 0))
    )
    got_spacing = np.array(volume.spacing_xyz_mm, dtype=float)
    got_origin = np.array(volume.origin_lps_mm, dtype=float)
    got_direction = np.array(volume.direction_lps, dtype=float).reshape(3, 3)
    differences = []
    if volume.array_zyx.shape != ref.array_zyx.shape:
        differences.append(f"shape {volume.array_zyx.shape} instead of {ref.array_zyx.shape}")
    elif not np.array_equal(volume.array_zyx, ref.array_zyx):
        wrong = int(np.count_nonzero(volume.array_zyx != ref.array_zyx))
        differences.append(f"{wrong} of {ref.array_zyx.size} voxels differ")
    if not np.allclose(got_spacing, spacing, rtol=SPACING_RTOL, atol=0):
        differences.append(f"spacing {_fmt(got_spacing)} instead of {_fmt(spacing)}")
    if not np.allclose(got_origin, origin, rtol=0, atol=ORIGIN_ATOL_MM):
        differences.append(f"origin {_fmt(got_origin)} instead of {_fmt(origin)}")
    ref_direction = np.array(ref.direction_lps, dtype=float).reshape(3, 3)
    if not np.allclose(got_direction, ref_direction, rtol=0, atol=DIRECTION_ATOL):
        differences.append("direction differs")
    invalid = []
    if not (np.all(np.isfinite(got_spacing)) and np.all(got_spacing > 0)):
        invalid.append(f"spacing {_fmt(got_spacing)}")
    if not np.all(np.isfinite(got_origin)):
        invalid.append(f"origin {_fmt(got_origin)}")
    if not np.all(np.isfinite(got_direction)) or not np.allclose(
        got_direction.T @ got_direction, np.eye(3), atol=1e-3
    ):
        invalid.append("direction not a finite rotation")
    return {"new_warnings": new, "differences": differences, "invalid_geometry": invalid}


def _fmt(values: np.ndarray) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"


if __name__ == "__main__":
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    sys.exit(main())
