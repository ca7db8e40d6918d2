"""The plain-text report ``meddiag evaluate`` prints: a per-case table and the overall figures."""

from __future__ import annotations

import textwrap

from meddiag_desktop.evaluation.report import CRITERION, EvaluationReport
from meddiag_desktop.evaluation.timings import TOTAL

_CASE_COLUMNS = (
    ("case", "<"),
    ("Dice", ">"),
    ("sens", ">"),
    ("prec", ">"),
    ("lesions", ">"),
    ("TP", ">"),
    ("FN", ">"),
    ("FP", ">"),
    ("recall", ">"),
    ("time s", ">"),
)


def format_report(report: EvaluationReport) -> str:
    """A readable summary; '-' marks a measure that is undefined (for example, nothing to find)."""
    lines = [f"Evaluation of {len(report.cases)} case(s). Voxel measures are for any lesion."]
    rows = [[title for title, _ in _CASE_COLUMNS]]
    for case in report.cases:
        any_lesion, lesions = case.overlap.any_lesion, case.lesions
        total = case.timings_s.get(TOTAL) if case.timings_s else None
        rows.append(
            [
                case.name,
                _num(any_lesion.dice),
                _num(any_lesion.sensitivity),
                _num(any_lesion.precision),
                str(lesions.reference_lesions),
                str(lesions.detected),
                str(lesions.missed),
                str(lesions.false_positive),
                _num(lesions.recall),
                _num(total, 1),
            ]
        )
    lines += _table(rows, [align for _, align in _CASE_COLUMNS])
    lines += ["", "Overall (voxel counts pooled over cases; mean Dice = mean of per-case Dice)"]
    label_rows = [["label", "Dice", "mean Dice", "sensitivity", "precision"]]
    for label in report.label_values:
        overlap = report.pooled_label(label)
        label_rows.append(
            [
                str(label),
                _num(overlap.dice),
                _num(report.mean_dice(label)),
                _num(overlap.sensitivity),
                _num(overlap.precision),
            ]
        )
    overall = report.any_lesion
    label_rows.append(
        [
            "any",
            _num(overall.dice),
            _num(report.mean_dice(None)),
            _num(overall.sensitivity),
            _num(overall.precision),
        ]
    )
    lines += _table(label_rows, ["<", ">", ">", ">", ">"])
    lines += ["", *_lesion_lines(report), *_froc_lines(report), *_timing_lines(report)]
    return "\n".join(lines)


def _lesion_lines(report: EvaluationReport) -> list[str]:
    lesions, options = report.lesions, report.options
    return [
        f"Lesions: {lesions.reference_lesions} in the reference, {lesions.predicted_lesions} "
        f"predicted; TP {lesions.detected}, FN {lesions.missed}, FP {lesions.false_positive}",
        f"  recall {_num(lesions.recall)}, precision {_num(lesions.precision)}, "
        f"F1 {_num(lesions.f1)}, {_num(report.fp_per_case, 2)} false positives per case",
        f"  recall for lesions >= {options.min_diameter_mm:g} mm: {_num(lesions.large_recall)} "
        f"({lesions.large_detected} of {lesions.large_reference})",
        *textwrap.wrap(
            "criterion: " + CRITERION.format(distance=options.min_distance_mm),
            width=96,
            initial_indent="  ",
            subsequent_indent="    ",
        ),
    ]


def _froc_lines(report: EvaluationReport) -> list[str]:
    with_maps = sum(case.threshold_counts is not None for case in report.cases)
    if report.froc is None:
        reason = (
            "no probability maps (probabilities.nii.gz beside mask.nii.gz)"
            if with_maps == 0
            else "no reference lesions in the cases with probability maps"
        )
        return ["", f"FROC: not computed, {reason}."]
    froc = report.froc
    lines = [
        "",
        f"FROC over {froc.cases} case(s) with probability maps, {froc.reference_lesions} "
        f"reference lesion(s); score (mean sensitivity) {_num(froc.score)}",
    ]
    rows = [["FP per case", *(f"{e.fp_per_case:g}" for e in froc.at_rates)]]
    rows.append(
        [
            "sensitivity",
            *(_num(e.sensitivity) + ("*" if e.beyond_sweep else "") for e in froc.at_rates),
        ]
    )
    lines += _table(rows, ["<"] + [">"] * len(froc.at_rates))
    if any(e.beyond_sweep for e in froc.at_rates):
        lines.append("  * beyond the lowest threshold's false-positive rate: curve held flat")
    if with_maps < len(report.cases):
        lines.append(
            f"  ({len(report.cases) - with_maps} case(s) without probability maps left out)"
        )
    return lines


def _timing_lines(report: EvaluationReport) -> list[str]:
    timings = report.mean_timings_s
    if timings is None:
        return []
    stages = ", ".join(f"{stage} {seconds:.2f}" for stage, seconds in timings.items())
    return [
        "",
        f"Run time (findings.json, {report.timed_cases} case(s)): mean total "
        f"{_num(report.mean_total_s, 2)} s",
        *textwrap.wrap(
            f"stage means in s: {stages}", width=96, initial_indent="  ", subsequent_indent="    "
        ),
    ]


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _table(rows: list[list[str]], aligns: list[str]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            f"{cell:{align}{width}}" for cell, align, width in zip(row, aligns, widths, strict=True)
        ).rstrip()
        for row in rows
    ]
