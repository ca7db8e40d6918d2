"""The FROC plot (or, without probability maps, the single operating point) as an image file.

matplotlib is imported here only, and drawn through its Agg canvas directly: no pyplot, no
global backend switch, so the GUI's own matplotlib use (if any) is untouched.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from meddiag_desktop.evaluation.froc import envelope
from meddiag_desktop.evaluation.report import EvaluationReport
from meddiag_desktop.scans.errors import ScanError

PLOT_SUFFIXES = (".png", ".pdf", ".svg")
X_LABEL = "Mean false positives per case (log scale)"
Y_LABEL = "Lesion-wise sensitivity"


def plot_froc(report: EvaluationReport, path: Path) -> str:
    """Write the plot to ``path``; returns a one-line description of what was drawn."""
    path = Path(path)
    if not path.name.lower().endswith(PLOT_SUFFIXES):
        raise ScanError(path, f"plot must end in {', '.join(PLOT_SUFFIXES)}")
    if not path.parent.is_dir():
        raise ScanError(path, f"cannot be written: folder {path.parent} does not exist")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 5), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    if report.froc is not None:
        description = _draw_froc(axes, report)
    else:
        description = _draw_operating_point(axes, report)
    axes.set_xscale("log")
    ticks = _x_ticks(report.options.fp_rates, axes.get_xlim()[1])
    axes.set_xticks(ticks, [f"{tick:g}" for tick in ticks])
    axes.set_xticks([], minor=True)
    axes.set_xlabel(X_LABEL)
    axes.set_ylabel(Y_LABEL)
    axes.set_ylim(-0.03, 1.1)
    axes.set_yticks([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    axes.grid(True, which="both", alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="lower right", fontsize="small")
    figure.tight_layout()
    try:
        figure.savefig(path)
    except OSError as exc:
        raise ScanError(path, f"could not be written ({exc.strerror or exc})") from exc
    return description


def _x_ticks(rates: tuple[float, ...], right: float) -> list[float]:
    """The standard rates, then doubling steps (or wider, at most six more) up to ``right``."""
    ticks = sorted(rates)
    factor = 2.0
    while ticks[-1] * factor**6 < right:
        factor *= 2.0
    while ticks[-1] * factor <= right:
        ticks.append(ticks[-1] * factor)
    return ticks


def _x_limits(fp_values: list[float], rates: tuple[float, ...]) -> tuple[float, float]:
    positive = [v for v in (*fp_values, *rates) if v > 0]
    return min(positive) / 2, max(positive) * 2


def _draw_froc(axes, report: EvaluationReport) -> str:
    froc = report.froc
    assert froc is not None
    fp, sensitivity = envelope(froc.points)
    left, right = _x_limits(list(fp), report.options.fp_rates)
    axes.set_xlim(left, right)
    # Interpolation is linear in FP, so on a log axis the curve is drawn densely, not as chords.
    dense = np.geomspace(left, right, 400)
    axes.plot(
        dense,
        np.interp(dense, fp, sensitivity),
        "-",
        color="tab:blue",
        lw=1.5,
        label="FROC (best sensitivity at <= FP rate)",
    )
    swept = [max(p.fp_per_case, left) for p in froc.points]
    axes.plot(
        swept,
        [p.sensitivity for p in froc.points],
        ".",
        color="tab:blue",
        ms=5,
        clip_on=False,
        label=f"thresholds {froc.points[0].threshold:g}..{froc.points[-1].threshold:g}",
    )
    rates = [e.fp_per_case for e in froc.at_rates]
    axes.plot(
        rates,
        [e.sensitivity for e in froc.at_rates],
        "o",
        color="tab:red",
        ms=6,
        label="at the standard FP rates",
    )
    for entry in froc.at_rates:
        axes.annotate(
            f"{entry.sensitivity:.2f}",
            (entry.fp_per_case, entry.sensitivity),
            textcoords="offset points",
            xytext=(0, 7),
            ha="center",
            fontsize=8,
        )
    axes.set_title(
        f"FROC: {froc.cases} case(s), {froc.reference_lesions} lesion(s), "
        f"score {froc.score:.3f}\n(rates at 0 FP drawn at the left edge)",
        fontsize=10,
    )
    return f"FROC curve over {froc.cases} case(s) with probability maps"


def _draw_operating_point(axes, report: EvaluationReport) -> str:
    lesions = report.lesions
    fp_rate = report.fp_per_case or 0.0
    recall = lesions.recall
    left, right = _x_limits([fp_rate], report.options.fp_rates)
    axes.set_xlim(left, right)
    if recall is not None:
        axes.plot(
            [max(fp_rate, left)],
            [recall],
            "o",
            color="tab:red",
            ms=8,
            label=f"operating point: {fp_rate:.2f} FP/case, sensitivity {recall:.2f}",
        )
    else:
        axes.text(
            0.5,
            0.5,
            "no reference lesions: sensitivity undefined",
            transform=axes.transAxes,
            ha="center",
        )
    axes.set_title(
        "Lesion detection: single operating point\n"
        "(no probability maps, so no FROC curve; 0 FP drawn at the left edge)",
        fontsize=10,
    )
    return "single operating point (no probability maps, so no FROC curve)"
