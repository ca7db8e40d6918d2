"""The DICOM Segmentation of one review's kept findings, on the source series' exact grid.

One BINARY segment per kept finding, numbered in the order of ``outcome.findings`` (so segment
``k`` is ``outcome.findings[k - 1]``), each frame naming the source image it lies on and carrying
that image's own position (highdicom takes both from the source headers, which
:mod:`~meddiag_desktop.reports.dicom_source` has put in the array's slice order and checked to be
the scan's grid). Patient, study and frame of reference are the source's, so a PACS files the SEG
with the series it labels; rejected findings are in no frame since they are not in the outcome.

Segment algorithm type, by how the finding was kept:

- ``ACCEPTED``: AUTOMATIC. The outline is the model's, voxel for voxel; a person approved it
  but did not change it, so the model alone produced the segment.
- ``EDITED``: SEMIAUTOMATIC. The standard's word for a segment "calculated with user
  assistance": the model proposed it and the radiologist changed the outline. The model is
  still named (algorithm identification), since it is where the outline started.
- ``MANUAL``: MANUAL. The radiologist drew it; no algorithm is named, as the standard requires.

Every SEG says it is not a medical device (ContentDescription, SeriesDescription, and Content
Qualification RESEARCH); an unsigned review also says DRAFT there and in its ContentLabel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from meddiag_desktop.reports.dicom_codes import (
    ALGORITHM_FAMILY,
    CHARACTER_SET,
    DEVICE_SERIAL_NUMBER,
    FINDING_CATEGORY,
    MANUFACTURER,
    MANUFACTURER_MODEL,
    SEG_SERIES_NUMBER,
    SOFTWARE_VERSIONS,
    clipped,
    finding_site,
    finding_type,
    person_name,
    signed,
)
from meddiag_desktop.reports.dicom_source import DicomOutputError, read_source_series
from meddiag_desktop.reports.review_outcome import KeptDecision, ReportedFinding, ReviewOutcome
from meddiag_desktop.safe_text import printable

if TYPE_CHECKING:  # highdicom takes half a second to import: only when a SEG is written
    import highdicom as hd

DRAFT_LABEL = "DRAFT"
SIGNED_LABEL = "FINDINGS"
NOT_FOR_CLINICAL_USE = "not a medical device, not for clinical use"


def build_seg(outcome: ReviewOutcome) -> hd.seg.Segmentation:
    """The SEG of ``outcome``'s kept findings; the caller saves it with ``.save_as(path)``.

    Raises :class:`DicomOutputError` when no SEG can be made: a non-DICOM source, no kept
    finding, source files that are not the scan's exact grid, or an AI finding without the model
    that made it.
    """
    import highdicom as hd

    source = read_source_series(outcome)
    draft = not signed(outcome)
    empty = [f"#{r.number}" for r in outcome.findings if r.region.voxel_count == 0]
    if empty:
        raise DicomOutputError(
            f"case {outcome.case_id}: kept finding {', '.join(empty)} has no voxels, so it "
            "cannot be a segment"
        )
    descriptions = [
        _segment_description(outcome, number, reported)
        for number, reported in enumerate(outcome.findings, start=1)
    ]
    status = "DRAFT (unsigned)" if draft else "Signed review"
    try:
        return hd.seg.Segmentation(
            source_images=list(source.datasets),
            pixel_array=_segment_pixels(outcome),
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=SEG_SERIES_NUMBER,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer=MANUFACTURER,
            manufacturer_model_name=MANUFACTURER_MODEL,
            software_versions=SOFTWARE_VERSIONS,
            device_serial_number=DEVICE_SERIAL_NUMBER,
            content_label=DRAFT_LABEL if draft else SIGNED_LABEL,
            content_description=clipped(f"{status}: {NOT_FOR_CLINICAL_USE}"),
            content_creator_name=person_name(outcome.reviewer),
            series_description=clipped(
                f"{'DRAFT ' if draft else ''}MedDiag findings - {NOT_FOR_CLINICAL_USE}"
            ),
            content_qualification=hd.ContentQualificationValues.RESEARCH,
            specific_character_set=CHARACTER_SET,
            omit_empty_frames=True,
        )
    except (ValueError, TypeError, AttributeError) as exc:
        # highdicom's own checks of the source headers (e.g. a missing attribute it copies).
        raise DicomOutputError(
            f"case {outcome.case_id}: the DICOM SEG cannot be made from the source series "
            f"{source.series_uid} ({exc})"
        ) from exc


def algorithm_type(reported: ReportedFinding) -> str:
    """AUTOMATIC, SEMIAUTOMATIC or MANUAL: see the module's docstring for why."""
    if reported.manual:
        return "MANUAL"
    if reported.decision is KeptDecision.EDITED:
        return "SEMIAUTOMATIC"
    return "AUTOMATIC"


def segment_label(reported: ReportedFinding) -> str:
    """The finding's label and number as the case list prints it, e.g. ``nodule #2``."""
    return clipped(f"{printable(reported.finding.label_name) or 'finding'} #{reported.number}")


def _segment_description(
    outcome: ReviewOutcome, number: int, reported: ReportedFinding
) -> hd.seg.SegmentDescription:
    import highdicom as hd

    kind = algorithm_type(reported)
    identification = None
    if kind != "MANUAL":
        if outcome.model is None:
            raise DicomOutputError(
                f"case {outcome.case_id}: finding #{reported.number} is a model's finding but "
                "the case has no model run to name as its algorithm"
            )
        model = outcome.model
        identification = hd.AlgorithmIdentificationSequence(
            name=clipped(model.name),
            family=ALGORITHM_FAMILY,
            version=clipped(model.version),
            source=clipped(MANUFACTURER_MODEL),
            parameters={
                "sha256": model.sha256,
                "execution provider": model.provider,
                **{str(key): str(value) for key, value in model.parameters.items()},
            },
        )
    site = finding_site(outcome)
    colour = outcome.label_colours.get(reported.finding.label)
    return hd.seg.SegmentDescription(
        segment_number=number,
        segment_label=segment_label(reported),
        segmented_property_category=FINDING_CATEGORY,
        segmented_property_type=finding_type(reported.finding.label_name),
        algorithm_type=kind,
        algorithm_identification=identification,
        tracking_uid=reported.tracking_uid,
        tracking_id=reported.tracking_id,
        anatomic_regions=[site] if site is not None else None,
        display_color=hd.color.CIELabColor.from_string(colour) if colour else None,
    )


def _segment_pixels(outcome: ReviewOutcome) -> np.ndarray:
    """The segments as highdicom takes them: a label map of segment numbers (one byte a voxel)
    when no two kept findings share a voxel, else one boolean mask per segment.

    The label map keeps a 300-slice CT with many findings at one volume of memory; overlapping
    outlines (a manual lesion drawn over an AI one) need the stack, or one would hide the other.
    """
    shape = outcome.scan.shape_zyx
    count = len(outcome.findings)
    labels = np.zeros(shape, dtype=np.uint8 if count < 256 else np.uint16)
    for number, reported in enumerate(outcome.findings, start=1):
        labels[reported.region.box][reported.region.mask_zyx] = number
    claimed = sum(reported.region.voxel_count for reported in outcome.findings)
    if claimed == int(np.count_nonzero(labels)):
        return labels
    stack = np.zeros((*shape, count), dtype=bool)
    for index, reported in enumerate(outcome.findings):
        stack[(*reported.region.box, index)] = reported.region.mask_zyx
    return stack
