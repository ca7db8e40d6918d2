"""What a DICOM SEG in a folder labels, from its header: the series it references and its
segments, so ``meddiag scan`` and the series list can show it beside that series.

A SEG is not a scan: its frames are masks on the grid of another series. Discovery lists it as
a :attr:`~meddiag_desktop.domain.SeriesKind.SEGMENTATION` that names the series it was drawn on
(``ReferencedSeriesSequence``; else the series of the source images its frames name) and says
whether the folder scanned holds that series. Only the header is read (pydicom, pixels left
out); a folder holds few SEGs, so the cost beside the fast header reader does not matter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from meddiag_desktop.domain import ScanMetadata, SegmentationReference, SeriesInfo, SeriesKind

# Parts that can carry a SEG's overlay: what the viewer shows as a 3-D scan.
_STACKS = (
    SeriesKind.VOLUME,
    SeriesKind.SINGLE_IMAGE,
    SeriesKind.TIME_SERIES,
    SeriesKind.MULTI_FRAME,
)


def reference_of(dataset: Dataset) -> SegmentationReference:
    """The series and source images a SEG dataset names, and its segments' labels."""
    series_uids = [
        str(item.get("SeriesInstanceUID", ""))
        for item in dataset.get("ReferencedSeriesSequence", [])
    ]
    instances: dict[str, None] = {}
    for item in dataset.get("ReferencedSeriesSequence", []):
        for ref in item.get("ReferencedInstanceSequence", []):
            instances[str(ref.get("ReferencedSOPInstanceUID", ""))] = None
    for frame in dataset.get("PerFrameFunctionalGroupsSequence", []):
        for uid in frame_source_uids(frame):
            instances[uid] = None
    instances.pop("", None)
    labels = tuple(
        (int(item.get("SegmentNumber", 0)), str(item.get("SegmentLabel", "")))
        for item in dataset.get("SegmentSequence", [])
    )
    return SegmentationReference(
        referenced_series_uid=next((uid for uid in series_uids if uid), ""),
        segment_labels=labels,
        referenced_instance_uids=tuple(instances),
    )


def frame_source_uids(frame: Dataset) -> list[str]:
    """The SOP Instance UIDs one SEG frame says it was derived from (DerivationImageSequence)."""
    return [
        str(source.get("ReferencedSOPInstanceUID", ""))
        for derivation in frame.get("DerivationImageSequence", [])
        for source in derivation.get("SourceImageSequence", [])
        if source.get("ReferencedSOPInstanceUID")
    ]


def describe(path: Path, metadata: ScanMetadata, size_xyz: tuple[int, int, int]) -> SeriesInfo:
    """One SEG file as a series entry; its reference is resolved by :func:`with_references`."""
    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=True)
        reference = reference_of(dataset)
    except (InvalidDicomError, OSError, ValueError, TypeError, AttributeError) as exc:
        return SeriesInfo(
            key="",
            kind=SeriesKind.SEGMENTATION,
            metadata=metadata,
            files=(path,),
            size_xyz=size_xyz,
            reason=f"a segmentation (DICOM SEG) whose header cannot be read: {exc}",
        )
    return SeriesInfo(
        key="",
        kind=SeriesKind.SEGMENTATION,
        metadata=metadata,
        files=(path,),
        size_xyz=size_xyz,
        segmentation=reference,
    )


def with_references(
    series: list[SeriesInfo], instances: Iterable[tuple[str, str]] = ()
) -> list[SeriesInfo]:
    """Every SEG in ``series`` with the key of the series it labels, when it is among them.

    ``instances`` ((SOP Instance UID, Series Instance UID) of the files scanned) resolve a SEG
    that names no series by the source images its frames name.
    """
    segs = [s for s in series if s.segmentation is not None]
    if not segs:
        return series
    series_of = dict(instances)
    resolved = {id(s): _resolved(s, series, series_of) for s in segs}
    return [resolved.get(id(s), s) for s in series]


def _resolved(seg: SeriesInfo, found: list[SeriesInfo], series_of: dict[str, str]) -> SeriesInfo:
    reference = seg.segmentation
    assert reference is not None
    uid = reference.referenced_series_uid
    if not uid:
        uid = next((series_of[i] for i in reference.referenced_instance_uids if i in series_of), "")
    candidates = [s for s in found if uid and s.uid == uid and s.kind in _STACKS]
    candidates.sort(key=lambda s: not s.loadable)
    key = candidates[0].key if candidates else ""
    labels = ", ".join(f"{n} {label}" for n, label in reference.segment_labels) or "no segments"
    if key:
        reason = f"a segmentation (DICOM SEG: {labels}): opens as an overlay on series {key}"
    elif uid:
        reason = (
            f"a segmentation (DICOM SEG: {labels}) of series {uid}, which is not among the "
            "files scanned"
        )
    else:
        reason = f"a segmentation (DICOM SEG: {labels}) that names no series it labels"
    return replace(
        seg,
        reason=reason,
        segmentation=replace(reference, referenced_series_uid=uid, reference_key=key),
    )
