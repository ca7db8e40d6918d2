"""Writing small label and probability maps for the evaluation tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

WriteMap = Callable[..., Path]


@pytest.fixture
def write_map() -> WriteMap:
    """``write_map(path, array_zyx, spacing_xyz=(1, 1, 1), origin_xyz=(0, 0, 0))`` -> path."""

    def write(
        path: Path,
        array_zyx: np.ndarray,
        spacing_xyz: tuple[float, float, float] = (1.0, 1.0, 1.0),
        origin_xyz: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        image = sitk.GetImageFromArray(array_zyx)
        image.SetSpacing(spacing_xyz)
        image.SetOrigin(origin_xyz)
        sitk.WriteImage(image, str(path))
        return path

    return write


def cube(
    shape_zyx: tuple[int, int, int], corner_zyx: tuple[int, int, int], size: int, value: int = 1
) -> np.ndarray:
    """A label map of ``shape_zyx`` with one cube of ``value``."""
    array = np.zeros(shape_zyx, dtype=np.uint8)
    z, y, x = corner_zyx
    array[z : z + size, y : y + size, x : x + size] = value
    return array
