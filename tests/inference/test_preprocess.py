"""Model space and back: one resampling from the stored integers, slab by slab on the way back."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from tiny_models import make_model_folder

from meddiag_desktop.domain import ScanMetadata, Volume
from meddiag_desktop.inference.card import InputMode, ModelCard, read_card
from meddiag_desktop.inference.preprocess import (
    Grid,
    model_channel,
    model_space_image,
    original_slabs,
    prepare,
    slab_on_original_grid,
    undo_pad_crop,
)
from meddiag_desktop.scans.file_formats import image_from_volume


def rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


DIRECTIONS = {
    "identity": np.eye(3),
    "flipped": np.diag([-1.0, -1.0, 1.0]),
    "permuted": np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]),
    "oblique": rotation(0.3) @ np.diag([1.0, -1.0, 1.0]),
}


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> ModelCard:
    return read_card(make_model_folder(tmp_path_factory.mktemp("m") / "m"))


def reference(volume: Volume, card: ModelCard) -> sitk.Image:
    """The straightforward way: cast to float32, DICOMOrient, resample the cell-edge box."""
    image = sitk.Cast(image_from_volume(volume), sitk.sitkFloat32)
    if card.input.orientation:
        image = sitk.DICOMOrient(image, card.input.orientation)
    spacing = card.input.target_spacing_xyz_mm
    if spacing is None or np.allclose(image.GetSpacing(), spacing, rtol=1e-4):
        return image
    old_size, old_spacing = np.array(image.GetSize()), np.array(image.GetSpacing())
    size = np.maximum(1, np.round(old_size * old_spacing / spacing)).astype(int)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    origin = np.array(image.GetOrigin()) + direction @ ((np.array(spacing) - old_spacing) / 2)
    return sitk.Resample(image, [int(v) for v in size], sitk.Transform(), sitk.sitkLinear,
                         origin.tolist(), list(spacing), image.GetDirection(),
                         float(volume.array_zyx.min()), sitk.sitkFloat32)


@pytest.mark.parametrize(
    ("direction", "spacing", "orientation"),
    list(itertools.product(DIRECTIONS, [None, (1.0, 1.0, 1.0), (1.5, 0.7, 2.1)],
                           ["LPS", "LIA", None])),
)
def test_model_space_matches_cast_orient_resample(card, direction, spacing, orientation) -> None:
    rng = np.random.default_rng(1)
    volume = Volume(rng.integers(-1000, 400, (23, 31, 29)).astype(np.int16), (0.8, 0.9, 2.0),
                    (-10.0, 5.0, 3.0), tuple(DIRECTIONS[direction].ravel()),
                    metadata=ScanMetadata(modality="CT"))
    spec = dataclasses.replace(card.input, target_spacing_xyz_mm=spacing, orientation=orientation)
    custom = dataclasses.replace(card, input=spec)
    model_input = prepare(volume, custom)
    expected = reference(volume, custom)
    assert model_input.model_grid.same_as(Grid.of(expected))
    window = np.clip(sitk.GetArrayFromImage(expected), -1000.0, 400.0)
    assert np.allclose(model_input.array_zyx, (window + 1000.0) / 1400.0, atol=1e-6)
    # and back, slab by slab, equals one resampling of the whole channel
    channel = rng.random(model_input.array_zyx.shape, dtype=np.float32)
    if model_input.same_grid:
        whole = channel
        source: sitk.Image | np.ndarray = channel
    else:
        image = sitk.GetImageFromArray(channel)
        image.CopyInformation(expected)
        whole = sitk.GetArrayFromImage(sitk.Resample(image, image_from_volume(volume),
                                                     sitk.Transform(), sitk.sitkLinear, 0.0,
                                                     sitk.sitkFloat32))
        source = model_space_image(channel, model_input)
    slabs = original_slabs(model_input, max_voxels=2000)
    assert len(slabs) > 3
    for prepared in (source, model_channel(channel, model_input)):  # SimpleITK, separable
        back = np.concatenate(
            [slab_on_original_grid(prepared, model_input, a, b) for a, b in slabs])
        assert back.shape == volume.shape_zyx
        assert np.abs(back - whole).max() < 1e-5
    assert isinstance(model_channel(channel, model_input), np.ndarray)  # axes always line up


@pytest.mark.parametrize("size", [29, 30, 31, 33])  # crops of 1 and 3, pads of 1 and 3
def test_whole_volume_pad_and_crop_are_undone(card, tmp_path: Path, size: int) -> None:
    spec = dataclasses.replace(card.input, mode=InputMode.WHOLE_VOLUME, shape_zyx=(30, 30, 30),
                               target_spacing_xyz_mm=None, orientation=None)
    custom = dataclasses.replace(card, input=spec)
    array = np.arange(size**3, dtype=np.int16).reshape(size, size, size)
    model_input = prepare(Volume(array, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0)), custom)
    assert model_input.array_zyx.shape == (30, 30, 30)
    back = undo_pad_crop(model_input.array_zyx, model_input)
    assert back.shape == (size, size, size)
    normalised = (np.clip(array.astype(np.float32), -1000, 400) + 1000) / 1400
    if size <= 30:  # padded: everything comes back
        assert np.allclose(back, normalised)
    else:  # cropped: the centre comes back, the rest is 0
        start = (size - 30) // 2
        inner = (slice(start, start + 30),) * 3
        assert np.allclose(back[inner], normalised[inner])
        outside = np.ones(back.shape, bool)
        outside[inner] = False
        assert np.all(back[outside] == 0)
