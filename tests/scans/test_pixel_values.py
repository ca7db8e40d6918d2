"""Stored pixels -> scanner units for the layouts scanners write (CT in HU)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from meddiag_desktop.scans import discover, load

POSITIONS = [(0.0, 0.0, float(z)) for z in range(3)]


def rewrite(paths: list[Path], **attributes) -> None:
    """Change pixel-module attributes of already written slices (the pixel bytes stay)."""
    for path in paths:
        ds = pydicom.dcmread(path)
        for name, value in attributes.items():
            setattr(ds, name, value)
        ds.save_as(path, enforce_file_format=True)


@pytest.mark.parametrize(
    ("signed", "bits_stored", "intercept", "stored", "expected"),
    [
        # unsigned 12 bit, the most common CT layout, with garbage (overlay) bits above bit 11
        (False, 12, -1024, [0, 1024, 4095, 0xF000 | 24], [-1024, 0, 3071, -1000]),
        # signed 12 bit: bits above the 12 stored ones are sign extension
        (True, 12, 0, [-2048, -1, 2047, 0x7000 | 5], [-2048, -1, 2047, 5]),
        # signed 16 bit with an intercept: checked per slice, fits
        (True, 16, -1024, [0, 1000, 3000, -30000], [-1024, -24, 1976, -31024]),
        # unsigned 16 bit whose values leave int16 once the intercept is added: general path
        (False, 16, 0, [0, 40000, 65535, 7], [0, 40000, 65535, 7]),
        # signed 16 bit whose intercept pushes past int16: general path, wider type
        (True, 16, -1024, [-32000, 0, 5, 6], [-33024, -1024, -1019, -1018]),
    ],
)
def test_rescale_and_stored_bits(tmp_path: Path, write_series, signed: bool, bits_stored: int,
                                 intercept: int, stored: list[int],
                                 expected: list[int]) -> None:
    raw = (np.array(stored, dtype=np.int64) & 0xFFFF).astype(np.uint16)  # the stored bits
    block = np.tile(raw.view(np.int16).reshape(2, 2), (3, 1, 1))
    paths = write_series(tmp_path, POSITIONS, slices=block, shape=(2, 2))
    rewrite(paths, PixelRepresentation=int(signed), BitsStored=bits_stored,
            HighBit=bits_stored - 1, RescaleIntercept=intercept)
    volume = load(discover(tmp_path)[0])
    assert volume.array_zyx[1].ravel().tolist() == expected
    if bits_stored == 12:
        assert volume.array_zyx.dtype == np.int16
