"""Fixtures for the scan-layer tests: where the real DICOM/volume samples are, and a writer of
small synthetic DICOM series whose geometry the test chooses."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

WriteSeries = Callable[..., list[Path]]


@pytest.fixture(scope="session")
def dicom_root(sample_data: Path) -> Path:
    return sample_data / "dicom"


@pytest.fixture(scope="session")
def volumes_root(sample_data: Path) -> Path:
    return sample_data / "volumes"


def write_ct_series(
    folder: Path,
    positions: Sequence[Sequence[float]],
    orientation: Sequence[float] = (1, 0, 0, 0, 1, 0),
    pixel_spacing: tuple[float, float] = (1.0, 1.0),
    slices: np.ndarray | None = None,
    shape: tuple[int, int] = (8, 8),
) -> list[Path]:
    """One uncompressed CT slice per position (``ImagePositionPatient``), in file order.

    ``slices`` (z, rows, columns) int16 gives the stored values; by default slice ``i`` is all
    ``i``. Rescale is identity, so the loaded values equal the stored ones.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if slices is None:
        slices = np.stack([np.full(shape, i, dtype=np.int16) for i in range(len(positions))])
    study, series = generate_uid(), generate_uid()
    paths = []
    for index, (position, pixels) in enumerate(zip(positions, slices, strict=True)):
        sop = generate_uid()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.Modality = "CT"
        ds.SeriesNumber = 1
        ds.InstanceNumber = index + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [float(v) for v in position]
        ds.ImageOrientationPatient = [float(v) for v in orientation]
        ds.PixelSpacing = list(pixel_spacing)
        ds.Rows, ds.Columns = pixels.shape
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleSlope = 1
        ds.RescaleIntercept = 0
        ds.PixelData = np.ascontiguousarray(pixels, dtype="<i2").tobytes()
        path = folder / f"{index:03d}.dcm"
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
        paths.append(path)
    return paths


@pytest.fixture
def write_series() -> WriteSeries:
    """``write_series(folder, positions, orientation=..., ...)`` -> the files written."""
    return write_ct_series
