"""The TID 1500 Measurement Report (Comprehensive 3D SR) of one review's kept findings.

One volumetric measurement group per kept finding, each tied to its segment in the SEG written
from the same outcome (``ReferencedSegment``: the SEG's SOP instance and segment number, found by
the finding's tracking UID so that the two objects cannot be paired wrongly), and to the finding
across exports by its tracking identifier and tracking UID. Its numbers are the ones the
database holds (the same as the PDF's table):

- volume in mL (UCUM ``ml``), long and short axis in mm (SNOMED CT "Long axis"/"Short axis",
  measured RECIST-style in the axial plane);
- mean intensity: CT "Attenuation Coefficient" with derivation "Mean" in Hounsfield units; for
  other modalities, uncalibrated scanner values, "Mean" in arbitrary units (``[arb'U]``);
- for the model's findings (accepted, edited) the model's confidence, its mean lesion
  probability over the finding as "Certainty of Finding" in percent, with the model as the
  measurement's algorithm. A manual finding has no model confidence, so none is written.

The reviewer (the signer, else the user exporting) is the person observer and the model the
device observer. An unsigned review is a draft: completion PARTIAL, verification UNVERIFIED,
preliminary; a signed one is COMPLETE, VERIFIED by the signer at the sign-off time, and FINAL.
The series description says DRAFT when it is one, and always that this is not a medical device.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from pydicom.sr.codedict import codes
from pydicom.valuerep import DT

from meddiag_desktop.reports.dicom_codes import (
    ALGORITHM_FAMILY,
    ARBITRARY_UNIT,
    CHARACTER_SET,
    FINDING_CATEGORY,
    HOUNSFIELD_UNIT,
    MANUFACTURER,
    MANUFACTURER_MODEL,
    MILLILITRE,
    MILLIMETRE,
    PERCENT,
    SOFTWARE_VERSIONS,
    SR_SERIES_NUMBER,
    clipped,
    finding_site,
    finding_type,
    model_device_uid,
    person_name,
    procedure_reported,
    signed,
)
from meddiag_desktop.reports.dicom_source import DicomOutputError, read_source_series
from meddiag_desktop.reports.review_outcome import ReportedFinding, ReviewOutcome

if TYPE_CHECKING:  # highdicom takes half a second to import: only when an SR is written
    import highdicom as hd
    from pydicom.dataset import Dataset

NOT_FOR_CLINICAL_USE = "not a medical device, not for clinical use"
UNKNOWN_ORGANIZATION = "not recorded"


def build_sr(outcome: ReviewOutcome, seg: hd.seg.Segmentation) -> hd.sr.Comprehensive3DSR:
    """The Measurement Report of ``outcome``, referencing the segments of ``seg``.

    ``seg`` is the SEG :func:`~meddiag_desktop.reports.dicom_seg.build_seg` made from the same
    outcome. Raises :class:`DicomOutputError` when the SR cannot be made: the reasons the SEG
    cannot, or a ``seg`` of another series or without a segment for a kept finding.
    """
    import highdicom as hd

    source = read_source_series(outcome)
    segment_of = _segment_numbers(outcome, seg, source.series_uid)
    groups = [
        _measurement_group(outcome, reported, seg, segment_of[reported.tracking_uid])
        for reported in outcome.findings
    ]
    report = hd.sr.MeasurementReport(
        observation_context=_observation_context(outcome),
        procedure_reported=procedure_reported(outcome),
        imaging_measurements=groups,
    )
    is_signed = signed(outcome)
    verifier = person_name(outcome.signed_by) if is_signed and outcome.signed_by else None
    sr = hd.sr.Comprehensive3DSR(
        evidence=[seg, *source.datasets],
        content=report,
        series_instance_uid=hd.UID(),
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=is_signed,
        is_final=is_signed,
        is_verified=is_signed,
        verifying_observer_name=verifier,
        verifying_organization=(
            clipped(outcome.scan.metadata.institution or UNKNOWN_ORGANIZATION)
            if is_signed
            else None
        ),
        institution_name=outcome.scan.metadata.institution or None,
        series_description=clipped(
            f"{'DRAFT ' if not is_signed else ''}MedDiag measurements - {NOT_FOR_CLINICAL_USE}"
        ),
        manufacturer_model_name=MANUFACTURER_MODEL,
        software_versions=SOFTWARE_VERSIONS,
        content_qualification=hd.ContentQualificationValues.RESEARCH,
        specific_character_set=CHARACTER_SET,
    )
    if is_signed and outcome.signed_at is not None:
        # highdicom stamps the verification with the time the object is made; it happened at
        # the sign-off.
        sr.VerifyingObserverSequence[0].VerificationDateTime = _dicom_datetime(outcome.signed_at)
    return sr


def _segment_numbers(
    outcome: ReviewOutcome, seg: Dataset, series_uid: str
) -> dict[str, int]:
    """Tracking UID -> segment number in ``seg``, checked to be this outcome's SEG."""
    referenced = {str(item.SeriesInstanceUID) for item in seg.get("ReferencedSeriesSequence", [])}
    if series_uid not in referenced:
        raise DicomOutputError(
            f"case {outcome.case_id}: the SEG {seg.SOPInstanceUID} does not label the case's "
            f"series {series_uid}, so the SR cannot refer to it"
        )
    numbers = {
        str(item.TrackingUID): int(item.SegmentNumber)
        for item in seg.SegmentSequence
        if "TrackingUID" in item
    }
    missing = [f"#{r.number}" for r in outcome.findings if r.tracking_uid not in numbers]
    if missing:
        raise DicomOutputError(
            f"case {outcome.case_id}: the SEG {seg.SOPInstanceUID} has no segment for kept "
            f"finding {', '.join(missing)}; write the SEG from the same review first"
        )
    return numbers


def _observation_context(outcome: ReviewOutcome) -> hd.sr.ObservationContext:
    import highdicom as hd

    person = hd.sr.ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
            name=person_name(outcome.reviewer),
            login_name=outcome.reviewer,
            organization_name=outcome.scan.metadata.institution or None,
        ),
    )
    device = None
    if outcome.model is not None:
        model = outcome.model
        device = hd.sr.ObserverContext(
            observer_type=codes.DCM.Device,
            observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
                uid=model_device_uid(model),
                name=clipped(model.name),
                manufacturer_name=MANUFACTURER,
                model_name=clipped(f"{model.name} {model.version}"),
            ),
        )
    return hd.sr.ObservationContext(
        observer_person_context=person, observer_device_context=device
    )


def _measurement_group(
    outcome: ReviewOutcome, reported: ReportedFinding, seg: Dataset, segment_number: int
) -> hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations:
    import highdicom as hd

    site = finding_site(outcome)
    return hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=reported.tracking_uid, identifier=reported.tracking_id
        ),
        referenced_segment=_referenced_segment(seg, segment_number),
        finding_type=finding_type(reported.finding.label_name),
        finding_category=FINDING_CATEGORY,
        finding_sites=[hd.sr.FindingSite(site)] if site is not None else None,
        measurements=_measurements(outcome, reported),
    )


def _referenced_segment(seg: Dataset, segment_number: int) -> hd.sr.ReferencedSegment:
    """The SR's reference to one segment of ``seg`` and the source images its frames lie on.

    Not highdicom's ``ReferencedSegment.from_segmentation``: it looks for each frame's segment
    in the per-frame functional groups only, and a SEG of one segment (highdicom writes its
    Segment Identification once, in the shared groups) made it fail on a real CT.
    """
    import highdicom as hd

    shared = seg.SharedFunctionalGroupsSequence[0]
    sources: dict[str, str] = {}  # SOP Instance UID -> SOP Class UID, in frame order
    for frame in seg.PerFrameFunctionalGroupsSequence:
        identification = frame.get("SegmentIdentificationSequence") or shared.get(
            "SegmentIdentificationSequence"
        )
        if int(identification[0].ReferencedSegmentNumber) != segment_number:
            continue
        for derivation in frame.get("DerivationImageSequence", []):
            for image in derivation.get("SourceImageSequence", []):
                sources.setdefault(
                    str(image.ReferencedSOPInstanceUID), str(image.ReferencedSOPClassUID)
                )
    if not sources:
        raise DicomOutputError(
            f"the SEG {seg.SOPInstanceUID} has no frame of segment {segment_number}"
        )
    return hd.sr.ReferencedSegment(
        sop_class_uid=str(seg.SOPClassUID),
        sop_instance_uid=str(seg.SOPInstanceUID),
        segment_number=segment_number,
        source_images=[
            hd.sr.SourceImageForSegmentation(
                referenced_sop_class_uid=class_uid, referenced_sop_instance_uid=uid
            )
            for uid, class_uid in sources.items()
        ],
    )


def _measurements(outcome: ReviewOutcome, reported: ReportedFinding) -> list[hd.sr.Measurement]:
    import highdicom as hd

    f = reported.finding
    ct = outcome.scan.metadata.modality.upper() == "CT"
    measurements = [
        hd.sr.Measurement(name=codes.SCT.Volume, value=f.volume_ml, unit=MILLILITRE),
        hd.sr.Measurement(name=codes.SCT.LongAxis, value=f.long_axis_mm, unit=MILLIMETRE),
        hd.sr.Measurement(name=codes.SCT.ShortAxis, value=f.short_axis_mm, unit=MILLIMETRE),
        hd.sr.Measurement(
            name=codes.DCM.AttenuationCoefficient if ct else codes.SCT.Mean,
            value=f.mean_intensity,
            unit=HOUNSFIELD_UNIT if ct else ARBITRARY_UNIT,
            derivation=codes.SCT.Mean if ct else None,
        ),
    ]
    if not reported.manual and outcome.model is not None:
        model = outcome.model
        measurements.append(
            hd.sr.Measurement(
                name=codes.DCM.CertaintyOfFinding,
                value=100.0 * f.mean_probability,
                unit=PERCENT,
                algorithm_id=hd.sr.AlgorithmIdentification(
                    name=clipped(model.name),
                    version=clipped(model.version),
                    parameters=[f"sha256 {model.sha256}"],
                    family=ALGORITHM_FAMILY,
                ),
            )
        )
    return measurements


def _dicom_datetime(moment: datetime) -> DT:
    """A DICOM DT of ``moment``, with its UTC offset when it has one."""
    return DT(moment.strftime("%Y%m%d%H%M%S") + (moment.strftime("%z") or ""))
