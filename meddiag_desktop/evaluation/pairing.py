"""Which predicted label map is compared with which reference: the pairing rules.

A *prediction case* is a label-map file, or a case folder holding ``mask.nii.gz`` (the output
folder of ``meddiag infer --out DIR``; ``probabilities.nii.gz`` and ``findings.json`` beside the
mask are used when present). A *reference case* is a label-map file, or a case folder holding
``ground_truth.nii.gz`` (the demo case layout) or exactly one label map whose name contains
'label', 'mask', 'seg' or 'truth'. Label maps are NIfTI (.nii.gz, .nii), MetaImage (.mha, .mhd)
or NRRD (.nrrd, .nhdr).

Each path given is one case (a file or a case folder) or a folder of cases (its case
subfolders and every label-map file directly inside it). A case is named after its folder when
it is a case folder (or its ``mask.*``/``ground_truth.*`` file), else after its file name
without the extension. When each side holds exactly one case, the two are compared whatever
their names; otherwise cases are paired by name, and any name without a partner is an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from meddiag_desktop.evaluation.errors import EvaluationError
from meddiag_desktop.evaluation.label_maps import is_label_map_file, strip_suffix
from meddiag_desktop.scans.errors import ScanError

PREDICTION_MASK = "mask.nii.gz"
PROBABILITIES = "probabilities.nii.gz"
FINDINGS = "findings.json"
GROUND_TRUTH = "ground_truth.nii.gz"
REFERENCE_WORDS = ("label", "mask", "seg", "truth")
_FOLDER_NAMED_STEMS = {"mask", "ground_truth"}
_SHOWN_NAMES = 10


@dataclass(frozen=True)
class Case:
    """One side of a pair: the label map and, for predictions, the files beside it."""

    name: str
    label_map: Path
    probabilities: Path | None = None
    findings: Path | None = None


@dataclass(frozen=True)
class CasePair:
    name: str
    reference: Case
    prediction: Case


def pair_cases(predictions: Sequence[Path], references: Sequence[Path]) -> list[CasePair]:
    """Find the cases under both lists of paths and pair them (rules in the module docstring)."""
    predicted = _unique(_collect(predictions, prediction=True), "--pred")
    referenced = _unique(_collect(references, prediction=False), "--ref")
    if len(predicted) == 1 and len(referenced) == 1:
        (prediction,) = predicted.values()
        (reference,) = referenced.values()
        return [CasePair(reference.name, reference, prediction)]
    missing_reference = sorted(set(predicted) - set(referenced))
    missing_prediction = sorted(set(referenced) - set(predicted))
    if missing_reference or missing_prediction:
        problems = []
        if missing_reference:
            problems.append(f"no reference for prediction case(s) {_names(missing_reference)}")
        if missing_prediction:
            problems.append(f"no prediction for reference case(s) {_names(missing_prediction)}")
        raise EvaluationError(
            "cases are paired by name and some names have no partner: " + "; ".join(problems)
        )
    return [CasePair(name, referenced[name], predicted[name]) for name in sorted(predicted)]


def prediction_case(folder_or_file: Path) -> Case | None:
    """The prediction case a path is by itself, or ``None`` when it is not one."""
    if folder_or_file.is_file():
        if not is_label_map_file(folder_or_file):
            return None
        if folder_or_file.name.lower() == PREDICTION_MASK:
            return _prediction_folder(folder_or_file.parent)
        return Case(_file_case_name(folder_or_file), folder_or_file)
    if (folder_or_file / PREDICTION_MASK).is_file():
        return _prediction_folder(folder_or_file)
    return None


def reference_case(folder_or_file: Path, inside_folder_of_cases: bool = True) -> Case | None:
    """The reference case a path is by itself, or ``None`` when it is not one.

    A folder with several possible reference label maps is an error inside a folder of cases;
    given by itself it is ``None``, so its files are taken as a folder of cases.
    """
    if folder_or_file.is_file():
        if not is_label_map_file(folder_or_file):
            return None
        return Case(_file_case_name(folder_or_file), folder_or_file)
    ground_truth = folder_or_file / GROUND_TRUTH
    if ground_truth.is_file():
        return Case(folder_or_file.name, ground_truth)
    candidates = sorted(
        p
        for p in folder_or_file.iterdir()
        if p.is_file()
        and is_label_map_file(p)
        and any(word in p.name.lower() for word in REFERENCE_WORDS)
    )
    if len(candidates) > 1:
        if not inside_folder_of_cases:
            return None
        listed = ", ".join(p.name for p in candidates)
        raise ScanError(
            folder_or_file,
            f"holds several possible reference label maps ({listed}): "
            f"name one file, or call the reference {GROUND_TRUTH}",
        )
    return Case(folder_or_file.name, candidates[0]) if candidates else None


def _collect(paths: Iterable[Path], prediction: bool) -> list[Case]:
    as_case = prediction_case if prediction else reference_case
    option = "--pred" if prediction else "--ref"
    cases: list[Case] = []
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise ScanError(path, f"not found ({option})")
        if path.is_file():
            case = as_case(path)
            if case is None:
                raise ScanError(path, "is not a label map (NIfTI, MHA or NRRD expected)")
            cases.append(case)
            continue
        case = prediction_case(path) if prediction else reference_case(path, False)
        if case is not None:
            cases.append(case)
            continue
        found = [c for c in (as_case(child) for child in sorted(path.iterdir())) if c is not None]
        if not found:
            raise ScanError(path, f"holds no {'prediction' if prediction else 'reference'} cases")
        cases.extend(found)
    return cases


def _unique(cases: list[Case], option: str) -> dict[str, Case]:
    by_name: dict[str, Case] = {}
    for case in cases:
        earlier = by_name.get(case.name)
        if earlier is not None and earlier.label_map != case.label_map:
            raise EvaluationError(
                f"two {option} cases are both named '{case.name}': "
                f"{earlier.label_map} and {case.label_map}"
            )
        by_name[case.name] = case
    return by_name


def _prediction_folder(folder: Path) -> Case:
    probabilities = folder / PROBABILITIES
    findings = folder / FINDINGS
    return Case(
        folder.resolve().name,
        folder / PREDICTION_MASK,
        probabilities if probabilities.is_file() else None,
        findings if findings.is_file() else None,
    )


def _file_case_name(path: Path) -> str:
    stem = strip_suffix(path.name)
    return path.resolve().parent.name if stem.lower() in _FOLDER_NAMED_STEMS else stem


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN_NAMES])
    more = len(names) - _SHOWN_NAMES
    return shown + (f" and {more} more" if more > 0 else "")
