"""Lesions labelled inside their own boxes: the same findings as labelling the whole volume."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from meddiag_desktop.domain import Volume
from meddiag_desktop.inference.findings import _components_in, extract_findings, label_components


def label_map(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (30, 60, 50)
    labels = np.zeros(shape, np.uint8)
    if seed % 3 == 0:  # scattered voxels: one box around all of them
        noise = rng.random(shape) < 0.02
        labels[noise] = rng.integers(1, 3, int(noise.sum()))
        return labels
    for _ in range(25):
        c, r = rng.integers(0, shape), rng.integers(0, 3, 3)
        lo = np.maximum(c - r, 0)
        labels[lo[0]:c[0] + r[0] + 1, lo[1]:c[1] + r[1] + 1, lo[2]:c[2] + r[2] + 1] = \
            rng.integers(1, 3)
    for z in (2, 20):  # equal sizes: the order must not depend on the boxes
        labels[z:z + 2, 5:7, 5:7] = 1
        labels[z:z + 2, 40:42, 30:32] = 1
    return labels


@pytest.mark.parametrize("seed", range(6))
def test_components_in_boxes_equal_whole_volume_labelling(seed: int) -> None:
    labels = label_map(seed)
    for label in (1, 2):
        whole, count = label_components(labels, label)
        boxes = [None, *ndimage.find_objects(whole, max_label=count)]
        found = _components_in(labels, label)
        assert len(found) == count
        for number, (box, mask, _) in enumerate(found, start=1):  # same order, same voxels
            assert box == boxes[number]
            assert np.array_equal(mask, whole[box] == number)


@pytest.mark.parametrize("seed", range(6))
def test_in_place_cleaning_gives_the_same_map(seed: int) -> None:
    labels = label_map(seed)
    rng = np.random.default_rng(seed)
    volume = Volume(rng.integers(-100, 100, labels.shape).astype(np.int16), (0.7, 0.8, 2.0),
                    (0.0, 0.0, 0.0))
    probability = rng.random(labels.shape, dtype=np.float32)
    names = {1: "a", 2: "b"}
    for minimum in (0.0, 5.0):
        cleaned, findings = extract_findings(volume, labels, probability, names, minimum)
        in_place = labels.copy()
        again, same = extract_findings(volume, in_place, probability, names, minimum,
                                       in_place=True)
        assert again is in_place and np.array_equal(again, cleaned) and same == findings
        assert all(type(v) is int for f in findings for v in f.bbox_index_xyz)  # JSON-safe
