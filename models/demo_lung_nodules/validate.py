"""Measure the bundled demo model on held-out phantoms with the product's own pipeline.

Run (the card's [validation] figures come from exactly this command):

    .venv/bin/python models/demo_lung_nodules/validate.py --seeds 2000-2019 --write-card

Each phantom is written as a DICOM demo case (``meddiag demo make``), run through ``meddiag
infer`` exactly as a user would, and scored with ``meddiag evaluate``. The figures printed at
the end (mean and spread over the scans, 95% intervals) are the ones ``--write-card`` puts in
``card.toml``'s [validation] table, replacing it whole.

Seeds 0-55 trained the model and seeds 1000-1009 were looked at while it was developed (its
threshold, minimum lesion size and tiling were chosen with them in view): neither may be used
for the card's figures, which must come from phantoms nobody tuned anything on.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import statistics
import tempfile
import tomllib
from pathlib import Path

from scipy.stats import chi2

from meddiag_desktop.cli import main as meddiag

MODEL_FOLDER = Path(__file__).resolve().parent
CARD = MODEL_FOLDER / "card.toml"
DEFAULT_SEEDS = "2000-2019"
TUNING_SEEDS = range(1000, 1010)  # train.py's held-out check, seen during development
COMMAND = ".venv/bin/python models/demo_lung_nodules/validate.py --seeds {seeds} --write-card"


def seed_range(text: str) -> list[int]:
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


def used_seeds() -> set[int]:
    """Seeds the model was trained on (from the card) or tuned with."""
    training = tomllib.loads(CARD.read_text(encoding="utf-8")).get("training", {})
    first, last = training.get("seeds", [0, 999])
    return set(range(first, last + 1)) | set(TUNING_SEEDS)


def run(args: list[str]) -> str:
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        code = meddiag(args)
    if code != 0:
        raise SystemExit(f"meddiag {' '.join(args)} failed with exit code {code}")
    return output.getvalue()


def wilson_interval(hits: int, total: int, z: float = 1.959964) -> tuple[float, float]:
    """95% interval of a proportion (Wilson score): sound at 0 and 1, unlike p +- 2 SE."""
    if total == 0:
        return (0.0, 1.0)
    p = hits / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return (max(0.0, centre - half), min(1.0, centre + half))


def poisson_rate_interval(events: int, scans: int) -> tuple[float, float]:
    """Exact (Garwood) 95% interval of false positives per scan from their total count: with
    0 false positives in 20 scans the rate is still only known to be below 0.18."""
    low = 0.0 if events == 0 else chi2.ppf(0.025, 2 * events) / 2
    high = chi2.ppf(0.975, 2 * events + 2) / 2
    return (float(low) / scans, float(high) / scans)


def spread(values: list[float]) -> dict[str, float]:
    """Mean, sample SD, min and max over the scans."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "sd": sd, "min": min(values), "max": max(values)}


def figures_from(report: dict, seeds: list[int], min_diameter_mm: float) -> dict:
    """The card's [validation] table from a ``meddiag evaluate --json`` report; the headline
    figures first (the model picker shows the first eight numbers), then their spread."""
    overall, cases = report["overall"], report["cases"]
    lesions = overall["lesions"]
    fps = [case["lesions"]["fp"] for case in cases]
    dices = [case["any_lesion"]["dice"] for case in cases if case["any_lesion"]["dice"] is not None]
    fp, dice = spread([float(v) for v in fps]), spread(dices)
    large_hit, large_all = lesions["detected_min_size"], lesions["reference_lesions_min_size"]
    fp_low, fp_high = poisson_rate_interval(sum(fps), len(cases))
    large_low, large_high = wilson_interval(large_hit, large_all)
    all_low, all_high = wilson_interval(lesions["tp"], lesions["reference_lesions"])
    timings = overall.get("timings_s") or {}
    size = f"{min_diameter_mm:g}mm"
    return {
        "data": (
            f"Phantoms from seeds {seeds[0]}-{seeds[-1]}, never used in training (seeds 0-55) or "
            "tuning (1000-1009): same generator, as DICOM demo cases (0.9 x 0.9 x 2.0 mm), "
            "meddiag infer (large tiles, CPU) + meddiag evaluate on the original grids. "
            "Lesion-wise: a predicted component overlapping a true nodule (or its centroid "
            "near it) is a hit; any other is a false positive. Intervals are 95%: Wilson for "
            "sensitivities, exact Poisson for false positives per scan."
        ),
        "command": COMMAND.format(seeds=f"{seeds[0]}-{seeds[-1]}"),
        "seeds": [seeds[0], seeds[-1]],
        "cases": len(cases),
        "dice": round(overall["any_lesion"]["dice"], 3),
        "mean_case_dice": round(dice["mean"], 3),
        f"sensitivity_{size}_and_larger": round(large_hit / large_all, 3) if large_all else 0.0,
        "sensitivity_all": round(lesions["recall"], 3),
        "false_positives_per_scan": round(fp["mean"], 2),
        "seconds_per_scan": round(timings["mean_total"], 1) if timings.get("mean_total") else 0.0,
        "case_dice_sd": round(dice["sd"], 3),
        "case_dice_min": round(dice["min"], 3),
        "case_dice_max": round(dice["max"], 3),
        f"sensitivity_{size}_and_larger_95ci": [round(large_low, 3), round(large_high, 3)],
        f"nodules_{size}_and_larger": large_all,
        "sensitivity_all_95ci": [round(all_low, 3), round(all_high, 3)],
        "nodules_all": lesions["reference_lesions"],
        "false_positives": sum(fps),
        "false_positives_per_scan_sd": round(fp["sd"], 2),
        "false_positives_per_scan_min": int(fp["min"]),
        "false_positives_per_scan_max": int(fp["max"]),
        "false_positives_per_scan_95ci": [round(fp_low, 2), round(fp_high, 2)],
    }


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def write_card(figures: dict, card: Path = CARD) -> None:
    """Replace the card's [validation] table (the last one) with ``figures``; the rest of the
    card, comments included, stays as it is."""
    text = card.read_text(encoding="utf-8")
    marker = "\n[validation]\n"
    if marker not in text:
        raise SystemExit(f"{card}: no [validation] table to replace")
    head = text[: text.index(marker)]
    table = "\n".join(f"{key} = {toml_value(value)}" for key, value in figures.items())
    updated = f"{head}{marker}{table}\n"
    tomllib.loads(updated)  # never leave a card that does not parse
    card.write_text(updated, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", default=DEFAULT_SEEDS, type=seed_range)
    parser.add_argument("--out", type=Path, help="keep cases and predictions here")
    parser.add_argument("--min-diameter-mm", type=float, default=6.0)
    parser.add_argument(
        "--write-card", action="store_true", help="replace card.toml's [validation] figures"
    )
    parser.add_argument(
        "--precision",
        default="float32",
        help="run the model in this precision (float32, bfloat16), validated or not: this is "
        "how a precision is validated before a card lists it",
    )
    parser.add_argument("--runtime", default="auto", help="CPU runtime (openvino, onnxruntime)")
    parser.add_argument(
        "--against",
        type=Path,
        metavar="JSON",
        help="a float32 run's evaluation.json: say whether sensitivity, false positives per "
        "scan and Dice are within 0.01 of it",
    )
    parser.add_argument(
        "--from-evaluation",
        type=Path,
        metavar="JSON",
        help="take the scores from the evaluation.json a previous run kept (no inference)",
    )
    args = parser.parse_args()
    seen = sorted(set(args.seeds) & used_seeds())
    if args.write_card and args.precision != "float32":
        parser.error("the card's [validation] figures are float32's; compare with --against")
    if seen and args.write_card:
        parser.error(f"seeds {seen} were used in training or tuning: not for the card")
    if args.from_evaluation is not None:
        report = json.loads(args.from_evaluation.read_text(encoding="utf-8"))
        if len(report["cases"]) != len(args.seeds):
            parser.error(f"{args.from_evaluation} holds {len(report['cases'])} cases, not "
                         f"{len(args.seeds)}")
        publish(report, args, seen)
        return
    work = args.out or Path(tempfile.mkdtemp(prefix="meddiag-validate-"))
    cases, predictions = work / "cases", work / "predictions"
    for seed in args.seeds:
        case = cases / f"phantom-{seed}"
        if not (case / "nodules.json").is_file():
            run(["demo", "make", str(case), "--seed", str(seed)])
        run(["infer", str(case / "dicom"), "--model", str(MODEL_FOLDER), "--out",
             str(predictions / f"phantom-{seed}"), "--provider", "cpu",
             "--runtime", args.runtime, "--precision", args.precision,
             "--allow-unvalidated-precision"])
        print(f"seed {seed}: done", flush=True)
    report = json.loads(run(["evaluate", "--pred", str(predictions), "--ref", str(cases),
                             "--json", "--min-diameter-mm", str(args.min_diameter_mm)]))
    (work / "evaluation.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    publish(report, args, seen)
    print(f"cases, predictions and evaluation.json kept in {work}")


ACCURACY_KEYS = ("sensitivity_6mm_and_larger", "sensitivity_all", "false_positives_per_scan",
                 "dice", "mean_case_dice")


def compare_precision(figures: dict, args: argparse.Namespace) -> bool:
    """Whether this run's figures are within 0.01 of the float32 run's (the rule a reduced
    precision must pass before a card lists it, see cpu_runtime)."""
    reference = json.loads(args.against.read_text(encoding="utf-8"))
    baseline = figures_from(reference, args.seeds, args.min_diameter_mm)
    kept = True
    for key in ACCURACY_KEYS:
        if key not in figures:
            continue
        difference = figures[key] - baseline[key]
        kept = kept and abs(difference) <= 0.01
        print(f"{key}: {figures[key]} vs float32 {baseline[key]} ({difference:+.3f})")
    verdict = "within 0.01 of float32" if kept else "NOT within 0.01 of float32"
    print(f"{args.precision} ({args.runtime}): {verdict}")
    return kept


def publish(report: dict, args: argparse.Namespace, seen: list[int]) -> None:
    """Print the figures (and the false positives of each case); write them into the card."""
    figures = figures_from(report, args.seeds, args.min_diameter_mm)
    if args.against is not None:
        compare_precision(figures, args)
    per_case = {case["name"]: case["lesions"]["fp"] for case in report["cases"]}
    print(f"false positives per case: {per_case}")
    print(json.dumps(figures, indent=2))
    if seen:
        print(f"note: seeds {seen} were used in training or tuning: not held-out figures")
    if args.write_card:
        write_card(figures)
        print(f"wrote the [validation] figures into {CARD}")


if __name__ == "__main__":
    main()
