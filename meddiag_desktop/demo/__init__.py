"""Synthetic demo data: a chest CT phantom with lung nodules and its ground truth.

Qt-free and torch-free (numpy, scipy, SimpleITK), so the GUI, the CLI and the tests can all make
a case to show or check without patient data.
"""

from meddiag_desktop.demo.case import DemoCase, DemoCaseError, ensure_demo_case, write_demo_case
from meddiag_desktop.demo.phantom import Nodule, Phantom, make_phantom

__all__ = [
    "DemoCase",
    "DemoCaseError",
    "Nodule",
    "Phantom",
    "ensure_demo_case",
    "make_phantom",
    "write_demo_case",
]
