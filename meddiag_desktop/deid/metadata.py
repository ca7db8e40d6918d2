"""A scan's metadata as a de-identified export shows it (PDF, CSV, JSON).

The fields go through the very rules the DICOM files do (:func:`.dataset.deidentify_dataset`
on a dataset holding them), so a report never shows what the images no longer carry: the
pseudonym for the name and the ID, no birth date, UIDs mapped as in the files, dates moved or
gone, descriptions cleaned or gone, as the options say.
"""

from __future__ import annotations

from dataclasses import fields, replace

from pydicom.dataset import Dataset

from meddiag_desktop.deid.dataset import DeidSettings, TextCleaner, deidentify_dataset
from meddiag_desktop.domain import ScanMetadata

# ScanMetadata field -> the DICOM attribute it was read from.
_ATTRIBUTES = {
    "modality": "Modality",
    "patient_name": "PatientName",
    "patient_id": "PatientID",
    "patient_birth_date": "PatientBirthDate",
    "patient_sex": "PatientSex",
    "study_uid": "StudyInstanceUID",
    "series_uid": "SeriesInstanceUID",
    "study_date": "StudyDate",
    "series_date": "SeriesDate",
    "study_description": "StudyDescription",
    "series_description": "SeriesDescription",
    "series_number": "SeriesNumber",
    "institution": "InstitutionName",
    "manufacturer": "Manufacturer",
    "manufacturer_model": "ManufacturerModelName",
    "body_part_examined": "BodyPartExamined",
    "protocol_name": "ProtocolName",
}
_DUMMIES = ("ANONYMIZED",)  # dicom-anonymizer's dummy text: shown as nothing in a report


def deidentified_metadata(metadata: ScanMetadata, settings: DeidSettings) -> ScanMetadata:
    """``metadata`` with every field as the de-identified DICOM files hold it."""
    dataset = Dataset()
    for name, keyword in _ATTRIBUTES.items():
        value = getattr(metadata, name)
        if value:
            setattr(dataset, keyword, value)
    deidentify_dataset(dataset, settings)
    changed: dict[str, str] = {}
    for name, keyword in _ATTRIBUTES.items():
        value = str(dataset.get(keyword, "") or "")
        changed[name] = "" if value in _DUMMIES else value
    changed["patient_name"] = changed["patient_name"].rstrip("^")
    known = {f.name for f in fields(ScanMetadata)}
    extra = {name: "" for name in known - set(_ATTRIBUTES) if name != "modality_guessed_from"}
    return replace(metadata, **changed, **extra)


def text_cleaner(metadata: ScanMetadata) -> TextCleaner:
    """The cleaner of free text (warnings, audit lines) that knows this patient's words."""
    dataset = Dataset()
    for name, keyword in _ATTRIBUTES.items():
        value = getattr(metadata, name)
        if value:
            setattr(dataset, keyword, value)
    return TextCleaner.of(dataset)
