"""What a de-identified export does beyond the Basic Profile: the options a user picks.

Each option is one of PS3.15 Annex E's, named on the command line as in ``--options
retain-dates,clean-descriptors``, and coded in the outputs' Deidentification Method Code
Sequence with its CID 7050 code (pydicom's code dictionary, not typed in here).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from meddiag_desktop.deid.errors import DeidError


class DeidOption(StrEnum):
    """The PS3.15 options MedDiag supports, by their command-line names."""

    # Retain Longitudinal Temporal Information with Modified Dates: every date moves by the
    # patient's one offset, so intervals between studies survive.
    RETAIN_DATES = "retain-dates"
    # Retain Patient Characteristics: sex, age, size, weight, smoking and pregnancy status...
    RETAIN_PATIENT_CHARACTERISTICS = "retain-patient-characteristics"
    # Clean Descriptors: study/series/protocol descriptions kept, with identifying text removed.
    CLEAN_DESCRIPTORS = "clean-descriptors"

    @property
    def code(self) -> Code:
        """The option's CID 7050 code."""
        return _OPTION_CODES[self]

    @property
    def meaning(self) -> str:
        """The option's name as PS3.15 writes it (the code's meaning)."""
        return str(self.code.meaning)


_OPTION_CODES = {
    DeidOption.RETAIN_DATES: codes.DCM.RetainLongitudinalTemporalInformationModifiedDatesOption,
    DeidOption.RETAIN_PATIENT_CHARACTERISTICS: codes.DCM.RetainPatientCharacteristicsOption,
    DeidOption.CLEAN_DESCRIPTORS: codes.DCM.CleanDescriptorsOption,
}
BASIC_PROFILE_CODE: Code = codes.DCM.BasicApplicationConfidentialityProfile


def parse_options(text: str | Iterable[str]) -> frozenset[DeidOption]:
    """``"retain-dates,clean-descriptors"`` (or the words one by one) -> the options; an
    unknown word is a :class:`DeidError` listing the known ones."""
    words = text.split(",") if isinstance(text, str) else list(text)
    chosen: set[DeidOption] = set()
    for word in (w.strip().lower() for w in words):
        if not word:
            continue
        try:
            chosen.add(DeidOption(word))
        except ValueError:
            known = ", ".join(option.value for option in DeidOption)
            raise DeidError(
                f"unknown de-identification option {word!r}: choose from {known}"
            ) from None
    return frozenset(chosen)


def in_order(options: Iterable[DeidOption]) -> list[DeidOption]:
    """The options in the order :class:`DeidOption` lists them (stable in files and logs)."""
    chosen = set(options)
    return [option for option in DeidOption if option in chosen]
