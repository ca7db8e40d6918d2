"""Discovery takes a few shortcuts per series for speed (positions parsed and stacked at once,
SliceRefs built without their __init__, classification once per combination of fields): each
must give exactly what the plain way gives."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import numpy as np
import pytest

from meddiag_desktop.domain import SliceRef
from meddiag_desktop.scans import discover
from meddiag_desktop.scans.dicom_header import DicomHeader, HeaderReader
from meddiag_desktop.scans.discovery import _positions, _slice_refs
from meddiag_desktop.scans.slice_geometry import analyse_stack


def test_slice_refs_equal_those_of_the_constructor(tmp_path: Path, write_series) -> None:
    paths = write_series(tmp_path, [(0.0, 0.0, float(z)) for z in range(4)])
    reader = HeaderReader()
    headers = [reader.read(path) for path in paths]
    positions = [h.floats("image_position") for h in headers]
    refs = _slice_refs(headers, positions, [3, 1, 0, 2])
    for ref, index in zip(refs, [3, 1, 0, 2], strict=True):
        plain = SliceRef(
            path=paths[index],
            position_lps_mm=positions[index],
            rescale_slope=1.0,
            rescale_intercept=0.0,
            pixel_offset=headers[index].pixel_offset,
        )
        assert ref == plain and hash(ref) == hash(plain) and repr(ref) == repr(plain)
        assert vars(ref) == vars(plain)
        assert pickle.loads(pickle.dumps(ref)) == plain
        with pytest.raises(dataclasses.FrozenInstanceError):
            ref.pixel_offset = 0  # type: ignore[misc]
    assert not hasattr(SliceRef, "__post_init__")  # nothing the shortcut would skip


def test_slice_refs_per_file_rescale_and_pixel_reading() -> None:
    def header(name: str, slope: str, intercept: str, syntax: str, length: int) -> DicomHeader:
        return DicomHeader(
            path=Path(name),
            rows=2,
            columns=2,
            bits_allocated=16,
            transfer_syntax=syntax,
            pixel_offset=100,
            pixel_length=length,
            rescale_slope=slope,
            rescale_intercept=intercept,
        )

    explicit, jpeg = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.4.50"
    headers = [
        header("a", "2", "-1024", explicit, 8),
        header("b", "", "", explicit, 8),
        header("c", "0", "x", explicit, 8),
        header("d", "2", "-1024", jpeg, 8),
        header("e", "2", "-1024", explicit, 6),
        header("f", "2", "-1024", explicit, 8),
    ]
    refs = _slice_refs(headers, [(0.0, 0.0, float(i)) for i in range(6)], range(6))
    assert [(r.rescale_slope, r.rescale_intercept, r.pixel_offset) for r in refs] == [
        (2.0, -1024.0, 100),
        (1.0, 0.0, 100),
        (1.0, 0.0, 100),
        (2.0, -1024.0, -1),
        (2.0, -1024.0, -1),
        (2.0, -1024.0, 100),
    ]


@pytest.mark.parametrize(
    "texts",
    [
        ["1\\2\\3", "-4.5\\5e1\\ 6 "],
        ["1\\2\\3", "1\\2"],
        ["1\\2\\3", "1\\2\\3\\4"],
        ["1\\2\\3", ""],
        ["1\\2\\3", "a\\b\\c"],
        ["nan\\inf\\-0", "1\\2\\3"],
        [],
    ],
)
def test_positions_as_headers_give_them(texts: list[str]) -> None:
    headers = [DicomHeader(path=Path(f"{i}"), image_position=t) for i, t in enumerate(texts)]
    positions, points = _positions(headers)
    assert positions == [h.floats("image_position") for h in headers]
    if points is None:
        assert not texts or any(len(p) != 3 for p in positions)
    else:
        assert np.array_equal(points, np.asarray(positions, dtype=float), equal_nan=True)


def test_stack_geometry_from_an_array_or_tuples() -> None:
    positions = [(0.0, 0.3 * k, 2.5 * k + (0.004 if k == 3 else 0.0)) for k in range(7)][::-1]
    orientation = (1.0, 0.0, 0.0, 0.0, 0.96, -0.28)
    from_tuples = analyse_stack(positions, orientation)
    assert analyse_stack(np.array(positions), orientation) == from_tuples
    assert from_tuples.closest_gap_mm == float(np.min(from_tuples.gaps_mm))


def test_two_series_of_other_sizes_in_one_folder(tmp_path: Path, write_series) -> None:
    write_series(tmp_path / "a", [(0.0, 0.0, float(z)) for z in range(5)])
    write_series(tmp_path / "b", [(0.0, 0.0, float(z)) for z in range(3)], shape=(4, 4))
    found = discover(tmp_path)
    assert sorted(len(s.files) for s in found) == [3, 5]
    assert all(s.loadable for s in found)
