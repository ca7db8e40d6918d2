"""The coded concepts the DICOM SEG and SR describe one review with, so both say the same thing.

A PACS or viewer reads codes, not our label names: a segment and the SR's measurement group of
one finding must carry the same finding type, the same body site and the same device (the model),
or a reader joining them by tracking UID sees two different lesions. Every code comes from
pydicom's dictionary of the standard's codes (none typed by hand), except the UCUM unit for
millilitres, which that dictionary lacks. Nothing here imports highdicom (half a second), so
importing the writers costs nothing until one runs.
"""

from __future__ import annotations

import hashlib

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid

from meddiag_desktop import __version__
from meddiag_desktop.reports.review_outcome import ModelSummary, ReviewOutcome
from meddiag_desktop.safe_text import printable

MANUFACTURER = "MedDiag"
MANUFACTURER_MODEL = "MedDiag Desktop"
SOFTWARE_VERSIONS = f"meddiag-desktop {__version__}"
# Enhanced General Equipment needs a Device Serial Number; a software product installed on
# many machines has none, so every export names the product instead of inventing one.
DEVICE_SERIAL_NUMBER = "meddiag-desktop"
# Unicode (UTF-8) for every object we write, whatever the source used. pydicom has already
# decoded the copied patient and study text from the source's character set, and our own text
# (usernames, label and model names) may hold any letter; a scanner's empty or absent Specific
# Character Set (seen on a real CT) would otherwise be copied, and be refused or turn names
# into question marks.
CHARACTER_SET = "ISO_IR 192"
# Series numbers of the derived objects: above the scanner's usual range, so a PACS lists them
# after the source series; the SEG before the SR that refers to it.
SEG_SERIES_NUMBER = 9001
SR_SERIES_NUMBER = 9002

ALGORITHM_FAMILY = codes.DCM.ArtificialIntelligence  # the model, in SEG and SR alike
# Finding category of every kept finding (CID 7150 "Segmentation Property Categories").
FINDING_CATEGORY = codes.SCT.MorphologicallyAbnormalStructure
# Finding type by the model's label name; any other name is a generic lesion (its name stays in
# the segment label and tracking identifier).
_FINDING_TYPES: dict[str, Code] = {
    "nodule": codes.SCT.Nodule,
    "mass": codes.SCT.Mass,
    "tumor": codes.SCT.Neoplasm,
    "tumour": codes.SCT.Neoplasm,
    "neoplasm": codes.SCT.Neoplasm,
    "lesion": codes.SCT.Lesion,
}
# Finding site from the source's Body Part Examined (its defined terms, PS3.16 Annex L).
_BODY_PARTS: dict[str, Code] = {
    "CHEST": codes.SCT.Chest,
    "THORAX": codes.SCT.Thorax,
    "LUNG": codes.SCT.Lung,
    "ABDOMEN": codes.SCT.Abdomen,
    "LIVER": codes.SCT.Liver,
    "PELVIS": codes.SCT.Pelvis,
    "HEAD": codes.SCT.Head,
    "BRAIN": codes.SCT.Brain,
}

MILLILITRE = Code("ml", "UCUM", "milliliter")
MILLIMETRE = codes.UCUM.Millimeter
HOUNSFIELD_UNIT = codes.UCUM.HounsfieldUnit
ARBITRARY_UNIT = codes.UCUM.ArbitraryUnit
PERCENT = codes.UCUM.Percent


def finding_type(label_name: str) -> Code:
    """The SNOMED CT code of a finding type named by the model's label (Lesion when unknown)."""
    return _FINDING_TYPES.get(label_name.strip().lower(), codes.SCT.Lesion)


def finding_site(outcome: ReviewOutcome) -> Code | None:
    """The body site the source series says it shows, when its Body Part Examined is known."""
    return _BODY_PARTS.get(outcome.scan.metadata.body_part_examined.strip().upper())


def procedure_reported(outcome: ReviewOutcome) -> Code:
    """TID 1500's procedure reported: computed tomography for CT, else 'imaging procedure'."""
    if outcome.scan.metadata.modality.upper() == "CT":
        return codes.SCT.ComputedTomography
    return codes.SCT.ImagingProcedure


def model_device_uid(model: ModelSummary) -> str:
    """A UID for the model as an SR device observer: the same for the same model file.

    Derived from the model's sha256, so every report made with one model names one device and
    a different file (even under the same name and version) names another.
    """
    digest = hashlib.sha256(f"{model.name}\0{model.version}\0{model.sha256}".encode()).hexdigest()
    return str(generate_uid(prefix="2.25.", entropy_srcs=[digest]))


def signed(outcome: ReviewOutcome) -> bool:
    """Signed only with both a signer and a time; anything less is written as DRAFT."""
    return not outcome.draft and bool(outcome.signed_by)


def clipped(text: str, limit: int = 64) -> str:
    """``text`` cut to a DICOM string's maximum length (LO: 64 characters)."""
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def person_name(username: str) -> str:
    """A username as a DICOM person name: the family-name component alone, then a caret.

    The trailing caret says "one component on purpose" (PS3.5 6.2.1.2); without it a bare
    ``dr_demo`` reads as the retired free-text form. Carets and backslashes in the name would
    split it into components or values, so they become spaces.
    """
    cleaned = printable(username).replace("^", " ").replace("\\", " ").strip()
    return f"{cleaned[:63] or 'unknown'}^"
