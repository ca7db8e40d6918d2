"""write_dicom_series -> discover -> load gives back the same voxels in the same place."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import cast

import numpy as np
import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom import config as pydicom_config
from pydicom.uid import CTImageStorage, MRImageStorage

from meddiag_desktop.domain import IDENTITY_DIRECTION, Matrix3, ScanMetadata, SeriesKind, Volume
from meddiag_desktop.scans import discover, load
from meddiag_desktop.scans.dicom_series_writer import write_dicom_series

GEOMETRY_TOLERANCE = 1e-4


def _rotation(axis: tuple[float, float, float], angle: float) -> np.ndarray:
    axis_v = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    x, y, z = axis_v
    k = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def _direction(matrix: np.ndarray) -> Matrix3:
    return cast(Matrix3, tuple(float(v) for v in matrix.ravel()))


OBLIQUE = _direction(_rotation((0.3, -0.5, 0.8), 0.7))
# Right-handed, z index axis running feet-ward (-z): row x column = normal.
Z_DOWN: Matrix3 = (1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, -1.0)
# Left-handed: DICOM slices cannot say so; the loader gives the mirrored equivalent.
LEFT_HANDED: Matrix3 = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0)


def _volume(
    array: np.ndarray,
    direction: Matrix3 = IDENTITY_DIRECTION,
    spacing: tuple[float, float, float] = (0.7, 0.8, 1.5),
    origin: tuple[float, float, float] = (-120.5, 33.25, -410.0),
    modality: str = "CT",
) -> Volume:
    metadata = ScanMetadata(
        modality=modality,
        patient_name="Doe^Jane",
        patient_id="P-001",
        patient_birth_date="19700101",
        patient_sex="F",
        study_description="Chest",
        institution="Sample Hospital",
    )
    return Volume(array, spacing, origin, direction, metadata=metadata)


def _int16_array(shape: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    array = np.random.default_rng(seed).integers(-32768, 32768, size=shape, dtype=np.int16)
    array.flat[0], array.flat[-1] = -32768, 32767
    return array


def _round_trip(volume: Volume, folder: Path, **kwargs) -> Volume:
    write_dicom_series(volume, folder, **kwargs)
    found = discover(folder)
    assert len(found) == 1
    assert found[0].kind is SeriesKind.VOLUME and found[0].loadable, found[0].reason
    assert found[0].warnings == ()
    return load(found[0])


def _assert_same_geometry(loaded: Volume, original: Volume) -> None:
    np.testing.assert_allclose(
        loaded.spacing_xyz_mm, original.spacing_xyz_mm, atol=GEOMETRY_TOLERANCE
    )
    np.testing.assert_allclose(
        loaded.origin_lps_mm, original.origin_lps_mm, atol=GEOMETRY_TOLERANCE
    )
    np.testing.assert_allclose(
        loaded.direction_lps, original.direction_lps, atol=GEOMETRY_TOLERANCE
    )


def _is_right_handed(direction: tuple[float, ...]) -> bool:
    return bool(np.linalg.det(np.asarray(direction).reshape(3, 3)) > 0)


def _assert_same_voxels_in_space(loaded: Volume, original: Volume) -> None:
    """Every voxel keeps its value and its patient position (left-handed input: z reversed)."""
    if _is_right_handed(original.direction_lps):
        np.testing.assert_array_equal(loaded.array_zyx, original.array_zyx)
        _assert_same_geometry(loaded, original)
        return
    np.testing.assert_array_equal(loaded.array_zyx, original.array_zyx[::-1])
    np.testing.assert_allclose(
        loaded.spacing_xyz_mm, original.spacing_xyz_mm, atol=GEOMETRY_TOLERANCE
    )
    last = original.shape_zyx[0] - 1
    for x, y, z in [(0, 0, 0), (3, 2, 1), (original.size_xyz[0] - 1, 1, last)]:
        np.testing.assert_allclose(
            loaded.index_to_lps((x, y, last - z)),
            original.index_to_lps((x, y, z)),
            atol=GEOMETRY_TOLERANCE,
        )


def test_int16_round_trip_is_exact_with_metadata(tmp_path: Path) -> None:
    original = _volume(_int16_array((5, 7, 9)))
    loaded = _round_trip(original, tmp_path, series_description="Thorax 1.5 mm")
    assert loaded.array_zyx.dtype == np.int16
    np.testing.assert_array_equal(loaded.array_zyx, original.array_zyx)
    _assert_same_geometry(loaded, original)
    meta = loaded.metadata
    assert (meta.modality, meta.patient_id, meta.patient_name) == ("CT", "P-001", "Doe Jane")
    assert (meta.series_description, meta.study_description) == ("Thorax 1.5 mm", "Chest")
    assert meta.study_uid and meta.series_uid and meta.study_uid != meta.series_uid


@pytest.mark.parametrize("direction", [OBLIQUE, Z_DOWN], ids=["oblique", "z-down"])
def test_round_trip_keeps_direction(tmp_path: Path, direction: Matrix3) -> None:
    original = _volume(_int16_array((4, 6, 10), seed=1), direction)
    loaded = _round_trip(original, tmp_path)
    np.testing.assert_array_equal(loaded.array_zyx, original.array_zyx)
    _assert_same_geometry(loaded, original)


def test_left_handed_direction_comes_back_mirrored_but_in_place(tmp_path: Path) -> None:
    original = _volume(_int16_array((4, 5, 6), seed=2), LEFT_HANDED)
    loaded = _round_trip(original, tmp_path)
    _assert_same_voxels_in_space(loaded, original)
    assert _is_right_handed(loaded.direction_lps)


def test_positions_orientation_and_pixel_spacing_in_the_files(tmp_path: Path) -> None:
    original = _volume(_int16_array((3, 4, 6)), OBLIQUE, spacing=(0.6, 0.9, 2.5))
    paths = write_dicom_series(original, tmp_path)
    direction = np.asarray(OBLIQUE).reshape(3, 3)
    for k, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        expected = np.asarray(original.origin_lps_mm) + k * 2.5 * direction[:, 2]
        np.testing.assert_allclose([float(v) for v in ds.ImagePositionPatient], expected, atol=1e-6)
        assert int(ds.InstanceNumber) == k + 1
    np.testing.assert_allclose(
        [float(v) for v in ds.ImageOrientationPatient],
        [*direction[:, 0], *direction[:, 1]],
        atol=1e-9,
    )
    assert [float(v) for v in ds.PixelSpacing] == [0.9, 0.6]  # row spacing (y) first
    assert (ds.Rows, ds.Columns, float(ds.SliceThickness)) == (4, 6, 2.5)
    assert ds.SOPClassUID == CTImageStorage
    assert len({pydicom.dcmread(p).SOPInstanceUID for p in paths}) == len(paths)


def test_files_are_what_pydicom_itself_would_write(tmp_path: Path) -> None:
    """The pre-encoded fast path must produce byte-identical standard files."""
    original = _volume(_int16_array((2, 3, 5)), OBLIQUE, modality="MR")
    previous = pydicom_config.settings.reading_validation_mode
    pydicom_config.settings.reading_validation_mode = pydicom_config.RAISE
    try:
        for path in write_dicom_series(original, tmp_path):
            written = path.read_bytes()
            ds = pydicom.dcmread(path)
            assert written[128:132] == b"DICM"
            assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
            assert ds.SOPClassUID == MRImageStorage
            again = io.BytesIO()
            pydicom.dcmwrite(again, ds, enforce_file_format=True)
            assert again.getvalue() == written
            np.testing.assert_array_equal(
                ds.pixel_array, original.array_zyx[int(ds.InstanceNumber) - 1]
            )
    finally:
        pydicom_config.settings.reading_validation_mode = previous


def test_float_volume_keeps_precision(tmp_path: Path) -> None:
    array = np.random.default_rng(3).normal(100.0, 400.0, size=(3, 8, 8)).astype(np.float32)
    loaded = _round_trip(_volume(array, modality="MR"), tmp_path)
    slope = float(pydicom.dcmread(next(tmp_path.iterdir())).RescaleSlope)
    assert loaded.array_zyx.dtype == np.float32
    error = np.abs(loaded.array_zyx.astype(np.float64) - array).max()
    assert error <= slope / 2 + 1e-6 * np.abs(array).max()
    assert slope < (array.max() - array.min()) / 60000


@pytest.mark.parametrize(
    "array",
    [
        np.arange(2 * 4 * 4, dtype=np.uint16).reshape(2, 4, 4) * 2000,  # 0..62000: needs a shift
        np.arange(2 * 4 * 4, dtype=np.float64).reshape(2, 4, 4) - 1024,  # integer-valued floats
        np.arange(2 * 4 * 4).reshape(2, 4, 4) % 2 == 0,  # a mask
    ],
    ids=["uint16-wide", "integral-float", "bool"],
)
def test_integer_valued_volumes_are_exact(tmp_path: Path, array: np.ndarray) -> None:
    loaded = _round_trip(_volume(array), tmp_path)
    np.testing.assert_array_equal(loaded.array_zyx, array.astype(np.int64))


def _named_volume(patient_name: str) -> Volume:
    return Volume(
        np.zeros((2, 4, 4), np.int16),
        (1.0, 1.0, 1.0),
        (0.0, 0.0, 0.0),
        metadata=ScanMetadata(modality="CT", patient_name=patient_name),
    )


def test_text_outside_latin1_is_written_as_utf8(tmp_path: Path) -> None:
    latin = write_dicom_series(_named_volume("Müller^Jürgen"), tmp_path / "latin")[0]
    utf8 = write_dicom_series(_named_volume("Yamada^Tarō 山田"), tmp_path / "utf8")[0]
    assert pydicom.dcmread(latin).SpecificCharacterSet == "ISO_IR 100"
    assert pydicom.dcmread(utf8).SpecificCharacterSet == "ISO_IR 192"
    assert str(pydicom.dcmread(utf8).PatientName) == "Yamada^Tarō 山田"
    assert discover(tmp_path / "latin")[0].metadata.patient_name == "Müller Jürgen"


def test_utf8_names_survive_discovery(tmp_path: Path) -> None:
    write_dicom_series(_named_volume("Yamada^Tarō 山田"), tmp_path)
    assert discover(tmp_path)[0].metadata.patient_name == "Yamada Tarō 山田"


def test_uid_seed_makes_the_series_reproducible(tmp_path: Path) -> None:
    original = _volume(_int16_array((2, 3, 3)))
    first = write_dicom_series(original, tmp_path / "a", uid_seed="demo")
    second = write_dicom_series(original, tmp_path / "b", uid_seed="demo")
    third = write_dicom_series(original, tmp_path / "c")
    uids = [pydicom.dcmread(p[0]).SOPInstanceUID for p in (first, second, third)]
    assert uids[0] == uids[1] != uids[2]


def test_volumes_dicom_cannot_hold_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="orthonormal"):
        write_dicom_series(
            _volume(_int16_array((2, 2, 2)), (1.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 1.0)),
            tmp_path,
        )
    with pytest.raises(ValueError, match="NaN"):
        write_dicom_series(_volume(np.full((2, 2, 2), np.nan)), tmp_path)


def _quaternion_rotation(q: tuple[float, float, float, float]) -> np.ndarray:
    w, x, y, z = np.asarray(q) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


_unit = st.floats(-1.0, 1.0, allow_nan=False)
_quaternions = st.tuples(_unit, _unit, _unit, _unit).filter(
    lambda q: float(np.linalg.norm(q)) > 0.1
)


@settings(max_examples=25, deadline=None)
@given(
    spacing=st.tuples(*[st.floats(0.1, 5.0, allow_nan=False)] * 3),
    origin=st.tuples(*[st.floats(-500.0, 500.0, allow_nan=False)] * 3),
    quaternion=_quaternions,
    mirrored=st.booleans(),
    slices=st.integers(2, 4),
    seed=st.integers(0, 2**16),
)
def test_round_trip_property(
    spacing: tuple[float, float, float],
    origin: tuple[float, float, float],
    quaternion: tuple[float, float, float, float],
    mirrored: bool,
    slices: int,
    seed: int,
) -> None:
    rotation = _quaternion_rotation(quaternion)
    if mirrored:
        rotation[:, 2] *= -1
    original = _volume(_int16_array((slices, 8, 8), seed), _direction(rotation), spacing, origin)
    with tempfile.TemporaryDirectory() as folder:
        loaded = _round_trip(original, Path(folder))
    _assert_same_voxels_in_space(loaded, original)
