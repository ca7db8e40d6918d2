"""Measure the bundled demo model on held-out phantoms with the product's own pipeline.

Run: .venv/bin/python models/demo_lung_nodules/validate.py [--seeds 1000-1009] [--out DIR]

Each held-out phantom (seeds never used in training: training uses 0..999) is written as a DICOM
demo case, run through ``meddiag infer`` exactly as a user would, and scored with
``meddiag evaluate``. The figures printed at the end are the ones the card reports.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
from pathlib import Path

from meddiag_desktop.cli import main as meddiag

MODEL_FOLDER = Path(__file__).resolve().parent


def seed_range(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def run(args: list[str]) -> str:
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        code = meddiag(args)
    if code != 0:
        raise SystemExit(f"meddiag {' '.join(args)} failed with exit code {code}")
    return output.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", default="1000-1009", type=seed_range)
    parser.add_argument("--out", type=Path, help="keep cases and predictions here")
    parser.add_argument("--min-diameter-mm", type=float, default=6.0)
    args = parser.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="meddiag-validate-"))
    cases, predictions = work / "cases", work / "predictions"
    for seed in args.seeds:
        case = cases / f"phantom-{seed}"
        if not (case / "nodules.json").is_file():
            run(["demo", "make", str(case), "--seed", str(seed)])
        run(["infer", str(case / "dicom"), "--model", str(MODEL_FOLDER), "--out",
             str(predictions / f"phantom-{seed}"), "--probabilities", "--provider", "cpu"])
        print(f"seed {seed}: done", flush=True)
    report = json.loads(run(["evaluate", "--pred", str(predictions), "--ref", str(cases),
                             "--json", "--min-diameter-mm", str(args.min_diameter_mm)]))
    overall = report["overall"]
    lesions = overall["lesions"]
    figures = {
        "heldout_seeds": f"{args.seeds[0]}-{args.seeds[-1]}",
        "cases": len(args.seeds),
        "dice": round(overall["any_lesion"]["dice"], 3),
        "mean_case_dice": round(overall["any_lesion"]["mean_dice"], 3),
        "lesion_sensitivity": round(lesions["recall"], 3),
        f"lesion_sensitivity_ge_{args.min_diameter_mm:g}mm": round(lesions["recall_min_size"], 3),
        "false_positives_per_scan": round(lesions["fp_per_case"], 2),
        "reference_lesions": lesions["tp"] + lesions["fn"],
        "mean_seconds_per_case_cpu": round(overall["timings_s"]["mean_total"], 1)
        if overall.get("timings_s") else None,
        "froc": overall.get("froc"),
    }
    print(json.dumps(figures, indent=2))
    print(f"cases and predictions kept in {work}")


if __name__ == "__main__":
    main()
