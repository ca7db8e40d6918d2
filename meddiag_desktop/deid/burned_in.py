"""Whether a source image may show identifying text in its pixels (PS3.15 E.1.1, step 4).

No header change removes a name burned into the pixels, and MedDiag does not clean pixel
data, so such images are refused unless the user confirms: Burned In Annotation ``YES``, or a
secondary capture (a picture of a screen, a scanned document), which usually carries text.
"""

from __future__ import annotations

from pydicom.dataset import Dataset

from meddiag_desktop.scans.sop_classes import is_secondary_capture


def burned_in_reason(dataset: Dataset) -> str:
    """Why ``dataset``'s pixels may identify the patient; empty when nothing says so."""
    if str(dataset.get("BurnedInAnnotation", "")).strip().upper() == "YES":
        return "its Burned In Annotation is YES (text such as the name is part of the pixels)"
    sop_class = str(dataset.get("SOPClassUID", "") or getattr(
        getattr(dataset, "file_meta", None), "MediaStorageSOPClassUID", ""
    ))
    if is_secondary_capture(sop_class):
        return "it is a secondary capture (a picture of a screen or a document), which often "\
            "shows the patient's name"
    return ""
