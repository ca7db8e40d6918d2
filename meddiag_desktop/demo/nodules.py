"""Lung nodules of the demo phantom: where they go, what they look like, and their mask.

Solid nodules are slightly lobulated spheres of soft tissue; part-solid ones are a ground-glass
halo (about -500 HU) around an off-centre solid core. The ground-truth mask is the whole nodule
(halo included), drawn on the same analytic shape as the intensities, so mask and image agree
voxel for voxel whatever the grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from meddiag_desktop.demo.tubes import Grid, LungField, Segments

MIN_DIAMETER_MM = 4.0
MAX_DIAMETER_MM = 30.0
PLEURA_MARGIN_MM = 3.0
MAX_TRIES = 400


@dataclass(frozen=True)
class NoduleShape:
    """One nodule in anatomy millimetres (before it is placed in patient coordinates)."""

    centre: np.ndarray  # x, y, z
    radius: float
    kind: str  # "solid" | "part-solid"
    hu: float  # solid tissue (or the solid core)
    halo_hu: float  # ground glass; unused for solid nodules
    core_fraction: float  # core radius / radius (part-solid)
    core_offset: np.ndarray  # core centre relative to the centre, mm
    lobes: np.ndarray  # (k, 3) unit vectors of the lobulation
    lobe_amplitudes: np.ndarray  # (k,)


@dataclass(frozen=True)
class NoduleSizes:
    """Nodules of given diameters (mm), placed clear of ``among`` as well."""

    diameters_mm: tuple[float, ...]
    among: tuple[NoduleShape, ...] = ()


def random_diameter(rng: np.random.Generator) -> float:
    """Log-uniform between 4 and 30 mm: as many 4-8 mm nodules as 8-15 or 15-30 mm ones."""
    return float(np.exp(rng.uniform(np.log(MIN_DIAMETER_MM), np.log(MAX_DIAMETER_MM))))


def place_nodules(
    rng: np.random.Generator,
    count: int,
    lung: LungField,
    vessels: Segments,
    field_of_view: tuple[np.ndarray, np.ndarray],
    sizes: NoduleSizes | None = None,
) -> list[NoduleShape]:
    """``count`` nodules inside the lungs, clear of large vessels, of each other and of the edge
    of the field of view (lo, hi in anatomy mm). Fewer when the lungs are out of view.

    ``sizes``: solid nodules of exactly these diameters instead of random ones (``count`` is
    then ignored), also kept clear of the nodules ``sizes.among`` (another visit's).
    """
    candidates = np.flatnonzero(lung.distance_zyx >= MIN_DIAMETER_MM / 2 + PLEURA_MARGIN_MM)
    placed: list[NoduleShape] = []
    lo, hi = field_of_view
    big = Segments(vessels.start, vessels.end, vessels.r0, vessels.r1)
    fixed = sizes.diameters_mm if sizes is not None else ()
    others = list(sizes.among) if sizes is not None else []
    for index in range(len(fixed) if sizes is not None else count):
        if sizes is not None:
            diameter, kind = fixed[index], "solid"
        else:
            diameter = random_diameter(rng)
            kind = "part-solid" if diameter >= 8.0 and rng.uniform() < 0.35 else "solid"
        for attempt in range(MAX_TRIES):
            # After half the tries, accept a smaller nodule rather than none (random sizes).
            late = attempt >= MAX_TRIES // 2 and sizes is None
            shrink = 1.0 - attempt / MAX_TRIES if late else 1.0
            radius = max(MIN_DIAMETER_MM / 2.0, diameter / 2.0 * shrink)
            if candidates.size == 0:
                break
            flat = candidates[rng.integers(candidates.size)]
            index_zyx = np.array(np.unravel_index(flat, lung.distance_zyx.shape), dtype=float)
            centre = lung.origin + (index_zyx[::-1] + rng.uniform(-0.5, 0.5, 3)) * lung.spacing
            if _fits(centre, radius, lung, big, placed + others, lo, hi):
                placed.append(_shape(rng, centre, radius, kind))
                break
    return placed


def _fits(
    centre: np.ndarray,
    radius: float,
    lung: LungField,
    vessels: Segments,
    placed: list[NoduleShape],
    lo: np.ndarray,
    hi: np.ndarray,
) -> bool:
    margin = radius + PLEURA_MARGIN_MM
    if np.any(centre - margin < lo) or np.any(centre + margin > hi):
        return False
    if lung.distance(centre) < radius + PLEURA_MARGIN_MM + lung.spacing:
        return False
    for other in placed:
        if np.linalg.norm(other.centre - centre) < other.radius + radius + 8.0:
            return False
    if len(vessels):
        clearance = vessels.surface_distance(centre)
        thick = (vessels.r0 + vessels.r1) > 2.0  # vessels of 1 mm radius and more
        if np.any(clearance[thick] < radius + 1.0) or np.any(clearance < radius * 0.5):
            return False
    return True


def _shape(rng: np.random.Generator, centre: np.ndarray, radius: float, kind: str) -> NoduleShape:
    lobes = rng.standard_normal((3, 3))
    lobes /= np.linalg.norm(lobes, axis=1, keepdims=True)
    core_fraction = rng.uniform(0.35, 0.6) if kind == "part-solid" else 1.0
    offset = rng.standard_normal(3)
    offset *= (1.0 - core_fraction) * radius * 0.4 / max(float(np.linalg.norm(offset)), 1e-6)
    return NoduleShape(
        centre=centre,
        radius=radius,
        kind=kind,
        hu=float(rng.uniform(5.0, 55.0)),
        halo_hu=float(rng.uniform(-620.0, -430.0)),
        core_fraction=float(core_fraction),
        core_offset=offset,
        lobes=lobes,
        lobe_amplitudes=rng.uniform(-0.07, 0.07, 3),
    )


def paint_nodule(
    volume: np.ndarray, mask: np.ndarray, grid: Grid, nodule: NoduleShape, edge_mm: float
) -> None:
    """Blend the nodule into ``volume`` and set its voxels to 1 in ``mask`` (both z, y, x)."""
    reach = nodule.radius * 1.25 + edge_mm
    c = nodule.centre
    x0, x1 = grid.index_range(c[0] - reach, c[0] + reach, 0)
    y0, y1 = grid.index_range(c[1] - reach, c[1] + reach, 1)
    z0, z1 = grid.index_range(c[2] - reach, c[2] + reach, 2)
    if x1 <= x0 or y1 <= y0 or z1 <= z0:
        return
    px = (grid.xs[x0:x1] - np.float32(c[0]))[np.newaxis, np.newaxis, :]
    py = (grid.ys[y0:y1] - np.float32(c[1]))[np.newaxis, :, np.newaxis]
    pz = (grid.zs[z0:z1] - np.float32(c[2]))[:, np.newaxis, np.newaxis]
    distance = np.sqrt(px * px + py * py + pz * pz)
    inv = 1.0 / np.maximum(distance, np.float32(1e-3))
    bumps = np.zeros_like(distance)
    for lobe, amplitude in zip(nodule.lobes, nodule.lobe_amplitudes, strict=True):
        cos = (px * lobe[0] + py * lobe[1] + pz * lobe[2]) * inv
        bumps += np.float32(amplitude) * (2.5 * cos**3 - 1.5 * cos)  # Legendre P3: zero mean
    surface = np.float32(nodule.radius) * (1.0 + bumps)
    view = volume[z0:z1, y0:y1, x0:x1]
    outer = _cover(surface - distance, edge_mm)
    if nodule.kind == "part-solid":
        view += outer * (np.float32(nodule.halo_hu) - view)
        o = nodule.core_offset
        core_distance = np.sqrt((px - o[0]) ** 2 + (py - o[1]) ** 2 + (pz - o[2]) ** 2)
        core = _cover(surface * np.float32(nodule.core_fraction) - core_distance, edge_mm)
        view += core * (np.float32(nodule.hu) - view)
    else:
        view += outer * (np.float32(nodule.hu) - view)
    mask[z0:z1, y0:y1, x0:x1][distance <= surface] = 1


def _cover(signed_distance: np.ndarray, edge_mm: float) -> np.ndarray:
    """Fraction of a voxel inside a surface, from the signed distance to it (partial volume)."""
    return np.clip(signed_distance * np.float32(1.0 / edge_mm) + np.float32(0.5), 0.0, 1.0)


def nodule_volume_mm3(nodule: NoduleShape, directions: int = 20000) -> float:
    """The volume of the nodule's analytic shape (its lobulated sphere), on no grid at all.

    The surface lies at ``radius * (1 + bumps(u))`` in each direction ``u``, so the volume is
    the integral of ``r(u)^3 / 3`` over the sphere of directions (Fibonacci points, equal area).
    """
    k = np.arange(directions) + 0.5
    z = 1.0 - 2.0 * k / directions
    ring = np.sqrt(1.0 - z * z)
    angle = np.pi * (1.0 + 5.0**0.5) * k
    units = np.stack([ring * np.cos(angle), ring * np.sin(angle), z], axis=1)
    bumps = np.zeros(directions)
    for lobe, amplitude in zip(nodule.lobes, nodule.lobe_amplitudes, strict=True):
        cos = units @ lobe
        bumps += amplitude * (2.5 * cos**3 - 1.5 * cos)
    radii = nodule.radius * (1.0 + bumps)
    return float(4.0 * np.pi * np.mean(radii**3) / 3.0)
