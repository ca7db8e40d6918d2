"""Evaluation of predicted label maps against references (``meddiag evaluate``).

Voxel overlap (Dice, sensitivity, precision per label and for any lesion), lesion-wise detection
(criterion in :mod:`~meddiag_desktop.evaluation.lesions`), FROC from probability maps
(:mod:`~meddiag_desktop.evaluation.froc`) and run times. Pairing rules are in
:mod:`~meddiag_desktop.evaluation.pairing`. The plot needs matplotlib, imported only when drawing.
"""

from meddiag_desktop.evaluation.errors import EvaluationError
from meddiag_desktop.evaluation.evaluate import evaluate_case, evaluate_cases
from meddiag_desktop.evaluation.froc import FrocCurve, FrocPoint, SensitivityAtRate
from meddiag_desktop.evaluation.lesions import LesionDetection, ReferenceLesion
from meddiag_desktop.evaluation.options import EvaluationOptions
from meddiag_desktop.evaluation.overlap import VoxelOverlap
from meddiag_desktop.evaluation.pairing import Case, CasePair, pair_cases
from meddiag_desktop.evaluation.report import CaseResult, EvaluationReport

__all__ = [
    "Case",
    "CasePair",
    "CaseResult",
    "EvaluationError",
    "EvaluationOptions",
    "EvaluationReport",
    "FrocCurve",
    "FrocPoint",
    "LesionDetection",
    "ReferenceLesion",
    "SensitivityAtRate",
    "VoxelOverlap",
    "evaluate_case",
    "evaluate_cases",
    "pair_cases",
]
