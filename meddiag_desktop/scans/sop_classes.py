"""DICOM storage classes that matter when deciding whether files form a scan."""

from __future__ import annotations

_SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"

# Enhanced (multi-frame, functional-group) image storage classes.
_ENHANCED = {
    "1.2.840.10008.5.1.4.1.1.2.1": "Enhanced CT",
    "1.2.840.10008.5.1.4.1.1.2.2": "Legacy Converted Enhanced CT",
    "1.2.840.10008.5.1.4.1.1.4.1": "Enhanced MR",
    "1.2.840.10008.5.1.4.1.1.4.3": "Enhanced MR Color",
    "1.2.840.10008.5.1.4.1.1.4.4": "Legacy Converted Enhanced MR",
    "1.2.840.10008.5.1.4.1.1.128.1": "Legacy Converted Enhanced PET",
    "1.2.840.10008.5.1.4.1.1.130": "Enhanced PET",
}

# Segmentation storage classes: labels drawn on another series, opened over that series.
_SEGMENTATION = {
    "1.2.840.10008.5.1.4.1.1.66.4": "Segmentation",
    "1.2.840.10008.5.1.4.1.1.66.7": "Label Map Segmentation",
}

# Class UID (itself or any UID below it, e.g. "...88" covers "...88.33") -> what it is.
_NON_IMAGE_CLASSES = (
    ("1.2.840.10008.5.1.4.1.1.88", "a structured report (SR), not an image"),
    ("1.2.840.10008.5.1.4.1.1.481", "a radiotherapy object (RT plan, structure set or dose)"),
    ("1.2.840.10008.5.1.4.1.1.66.4", "a segmentation object (DICOM SEG), not a scan"),
    ("1.2.840.10008.5.1.4.1.1.66", "registration or spatial-fiducial data, not an image"),
    ("1.2.840.10008.5.1.4.1.1.9", "a waveform (ECG or similar), not an image"),
    ("1.2.840.10008.5.1.4.1.1.11", "a presentation state (display settings), not an image"),
    ("1.2.840.10008.5.1.4.1.1.104", "an encapsulated document (PDF/CDA), not an image"),
    ("1.2.840.10008.5.1.4.1.1.1.1", "a digital X-ray (2-D projection), not a 3-D volume"),
    ("1.2.840.10008.5.1.4.1.1.1", "a computed radiograph (2-D projection), not a 3-D volume"),
    ("1.2.840.10008.5.1.4.1.1.77", "a visible-light photograph, not a scan"),
    ("1.2.840.10008.5.1.4.1.1.3.1", "an ultrasound cine loop, not a 3-D volume"),
    ("1.2.840.10008.5.1.4.1.1.6.1", "an ultrasound image, not a 3-D volume"),
    ("1.2.840.10008.5.1.4.1.1.12", "an angiography (X-ray) image, not a 3-D volume"),
    ("1.2.840.10008.5.1.4.1.1.20", "a nuclear-medicine image in projection format"),
    ("1.2.840.10008.5.1.4.1.1.4.2", "MR spectroscopy, not an image"),
    ("1.2.840.10008.5.1.1", "a print or presentation object, not an image"),
)


def is_secondary_capture(sop_class_uid: str) -> bool:
    stem = _SECONDARY_CAPTURE_PREFIX
    return sop_class_uid == stem or sop_class_uid.startswith(stem + ".")


def is_segmentation(sop_class_uid: str) -> bool:
    """A DICOM SEG (binary, fractional or label map): not a scan, but labels for one."""
    return sop_class_uid in _SEGMENTATION


def is_enhanced(sop_class_uid: str) -> bool:
    return sop_class_uid in _ENHANCED


def non_image_reason(sop_class_uid: str) -> str:
    """Why files of this class are not scans; empty when they may be."""
    for stem, reason in _NON_IMAGE_CLASSES:
        if sop_class_uid == stem or sop_class_uid.startswith(stem + "."):
            return reason
    return ""
