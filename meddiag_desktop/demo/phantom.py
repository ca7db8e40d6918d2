"""A synthetic chest CT with lung nodules and their ground-truth mask, made from a seed.

The phantom exists so the whole workflow (open a series, run a model, review findings) can be
shown and tested without patient data, and so the demo nodule model has something to learn
from. It is meant to look like a chest CT at a glance: air, a body with fat and muscle, ribs,
spine and sternum, a mediastinum with heart and great vessels, and two lungs at about -860 HU
holding branching vessel and airway trees. Vessels seen end-on look like nodules in a single
slice and are the hard negatives; the nodules (2-6, 4-30 mm, solid or part-solid) are the
positives. Scanner blur and slightly correlated noise come last.

All sizes are in millimetres, so any grid sees the same anatomy (nodules are kept inside the
field of view). Work is done slice by slice and in float32, so a 512 x 512 x 300 volume takes
seconds and about four bytes a voxel, plus the int16 result and the uint8 mask.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from meddiag_desktop.demo import anatomy as anatomy_module
from meddiag_desktop.demo.anatomy import Anatomy, random_anatomy, render_slice, texture_at
from meddiag_desktop.demo.nodules import NoduleShape, paint_nodule, place_nodules
from meddiag_desktop.demo.patient_pose import PatientPose
from meddiag_desktop.demo.tubes import (
    MIN_AIRWAY_RADIUS_MM,
    MIN_VESSEL_RADIUS_MM,
    Grid,
    LungField,
    Segments,
    airway_roots,
    grow_tree,
    hilar_trunks,
    paint_tubes,
    rib_segments,
    vessel_roots,
)
from meddiag_desktop.domain import IDENTITY_DIRECTION, ScanMetadata, Volume

DEFAULT_SHAPE_ZYX = (150, 384, 384)
DEFAULT_SPACING_XYZ_MM = (0.9, 0.9, 2.0)
# Where the middle of the lungs sits in patient coordinates (a typical table position).
CENTRE_LPS_MM = (0.0, 0.0, -180.0)
BLUR_FWHM_MM = 1.0
LUNG_TEXTURE_HU = 14.0
NODULE_COUNT_RANGE = (2, 6)

# The coarse grid on which lungs are found for growing vessels and placing nodules. It is fixed
# in anatomy millimetres so that every field of view gets the same vessels.
_COARSE_SPACING_MM = 3.0
_COARSE_LO = np.array([-180.0, -130.0, -175.0])
_COARSE_HI = np.array([180.0, 130.0, 150.0])


@dataclass(frozen=True)
class Nodule:
    """One synthetic nodule: where it is (LPS mm), how big, what kind, its mean HU."""

    centre_lps_mm: tuple[float, float, float]
    diameter_mm: float
    kind: str  # "solid" | "part-solid"
    mean_hu: float  # measured in the final volume over the nodule's mask


@dataclass(frozen=True, eq=False)
class Phantom:
    volume: Volume  # int16 HU
    mask_zyx: np.ndarray  # uint8, 1 = nodule, on the volume's grid
    nodules: list[Nodule]


def make_phantom(
    seed: int,
    shape_zyx: tuple[int, int, int] = DEFAULT_SHAPE_ZYX,
    spacing_xyz_mm: tuple[float, float, float] = DEFAULT_SPACING_XYZ_MM,
    nodules: int | None = None,
) -> Phantom:
    """A synthetic chest CT (int16 HU) with nodules; the same seed gives the same phantom.

    ``nodules`` fixes how many are placed (by default 2-6, depending on the seed); fewer are
    placed when the field of view shows too little lung.
    """
    shape, spacing = checked_grid(shape_zyx, spacing_xyz_mm)
    scene = phantom_scene(seed)
    grid = _grid(shape, spacing)
    nodule_rng = np.random.default_rng([seed, 2])
    low, high = NODULE_COUNT_RANGE
    count = int(nodule_rng.integers(low, high + 1)) if nodules is None else int(nodules)
    fov = field_of_view(grid, spacing)
    shapes = place_nodules(nodule_rng, count, scene.lung, scene.vessels, fov)
    return render_phantom(
        scene, shapes, ScanSettings(shape, spacing, _metadata(seed, shape, spacing))
    )


@dataclass(frozen=True, eq=False)
class PhantomScene:
    """What stays the same between scans of one synthetic patient: the body and its trees."""

    seed: int
    anatomy: Anatomy
    lung: LungField  # on the coarse grid, for steering vessels and placing nodules
    vessels: Segments
    airways: Segments  # main bronchi and the airway tree


def phantom_scene(seed: int) -> PhantomScene:
    """The anatomy, vessels and airways of the phantom patient ``seed``."""
    anatomy = random_anatomy(np.random.default_rng([seed, 0]))
    lung = _coarse_lung(anatomy)
    tree_rng = np.random.default_rng([seed, 1])
    vessels = grow_tree(tree_rng, lung, vessel_roots(anatomy, tree_rng), MIN_VESSEL_RADIUS_MM)
    bronchi, bronchus_roots = airway_roots(anatomy, tree_rng)
    airways = grow_tree(tree_rng, lung, bronchus_roots, MIN_AIRWAY_RADIUS_MM, (5.0, 8.0))
    return PhantomScene(
        seed, anatomy, lung, vessels, Segments.from_rows(_rows(bronchi) + _rows(airways))
    )


def checked_grid(
    shape_zyx: tuple[int, int, int], spacing_xyz_mm: tuple[float, float, float]
) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
    """The voxel counts and spacing as ints and floats; ValueError when they make no grid."""
    if len(shape_zyx) != 3 or min(shape_zyx) < 1:
        raise ValueError(f"shape_zyx must be three positive sizes, got {shape_zyx}")
    if len(spacing_xyz_mm) != 3 or min(spacing_xyz_mm) <= 0:
        raise ValueError(f"spacing_xyz_mm must be three positive sizes, got {spacing_xyz_mm}")
    shape = (int(shape_zyx[0]), int(shape_zyx[1]), int(shape_zyx[2]))
    spacing = (float(spacing_xyz_mm[0]), float(spacing_xyz_mm[1]), float(spacing_xyz_mm[2]))
    return shape, spacing


def field_of_view(grid: Grid, spacing: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The lowest and highest corner (anatomy mm) of the voxels of ``grid``."""
    half = np.asarray(spacing) / 2.0
    return (
        np.array([grid.xs[0], grid.ys[0], grid.zs[0]]) - half,
        np.array([grid.xs[-1], grid.ys[-1], grid.zs[-1]]) + half,
    )


@dataclass(frozen=True)
class ScanSettings:
    """How one scan of a phantom patient is taken.

    ``pose``: where the patient lies in the scanner relative to the first scan (a later
    visit); the anatomy is then drawn on a larger grid in its own frame and resampled into the
    scanner's (linear; the mask from its interpolated cover), before blur and noise.
    ``visit``: 0 for the first scan; later visits get noise of their own.
    """

    shape_zyx: tuple[int, int, int]
    spacing_xyz_mm: tuple[float, float, float]
    metadata: ScanMetadata
    pose: PatientPose | None = None
    visit: int = 0


def render_phantom(scene: PhantomScene, shapes: list[NoduleShape], scan: ScanSettings) -> Phantom:
    """The scan of ``scene`` with the nodules ``shapes``, taken as ``scan`` says."""
    shape, spacing = checked_grid(scan.shape_zyx, scan.spacing_xyz_mm)
    pose = scan.pose
    grid = _grid(shape, spacing)
    edge_mm = float(np.mean(spacing))
    if pose is None:
        hu, mask = _paint(scene, grid, shapes, edge_mm)
    else:
        drawn = _padded(grid, pose.reach_mm(field_of_view(grid, spacing)))
        hu, mask = _paint(scene, drawn, shapes, edge_mm)
        hu, mask = pose.resample(
            hu, mask, (drawn.xs, drawn.ys, drawn.zs), (grid.xs, grid.ys, grid.zs)
        )
    _blur(hu, spacing)
    noise_rng = np.random.default_rng([scene.seed, 3] + ([scan.visit] if scan.visit else []))
    array = _add_noise_and_quantise(hu, noise_rng, float(noise_rng.uniform(10.0, 20.0)))
    del hu
    volume = Volume(
        array_zyx=array,
        spacing_xyz_mm=spacing,
        origin_lps_mm=_to_lps(np.array([grid.xs[0], grid.ys[0], grid.zs[0]], dtype=float)),
        direction_lps=IDENTITY_DIRECTION,
        metadata=scan.metadata,
        source=f"synthetic phantom (seed {scene.seed})",
    )
    listed = [_describe(nodule, array, mask, grid, pose) for nodule in shapes]
    return Phantom(volume=volume, mask_zyx=mask, nodules=listed)


def _paint(
    scene: PhantomScene, grid: Grid, shapes: list[NoduleShape], edge_mm: float
) -> tuple[np.ndarray, np.ndarray]:
    """Float32 HU before blur and noise, and the uint8 nodule mask, on ``grid``."""
    anatomy = scene.anatomy
    hu = _render_background(anatomy, grid)
    paint_tubes(hu, grid, hilar_trunks(anatomy), anatomy_module.BLOOD_HU, edge_mm)
    paint_tubes(hu, grid, scene.vessels, anatomy_module.BLOOD_HU, edge_mm)
    _paint_airways(hu, grid, scene.airways, edge_mm)
    mask = np.zeros(hu.shape, dtype=np.uint8)
    for nodule in shapes:
        paint_nodule(hu, mask, grid, nodule, edge_mm)
    bone, cartilage = rib_segments(anatomy)
    paint_tubes(hu, grid, bone, anatomy_module.CORTICAL_HU, edge_mm)
    paint_tubes(hu, grid, bone.scaled(0.62), anatomy_module.CANCELLOUS_HU, edge_mm)
    paint_tubes(hu, grid, cartilage, 130.0, edge_mm)
    return hu, mask


def _padded(grid: Grid, margin_mm: float) -> Grid:
    """``grid`` grown by at least ``margin_mm`` on every side, with thick slices split to about
    the finest spacing (so resampling it blurs thin structures no more than the scan does)."""
    finest = min(_step_of(a) for a in (grid.xs, grid.ys, grid.zs))

    def grown(centres: np.ndarray) -> np.ndarray:
        step = _step_of(centres)
        step /= max(1, round(step / finest))
        extra = int(np.ceil(margin_mm / step))
        first = float(centres[0]) - extra * step
        count = round((float(centres[-1]) - float(centres[0])) / step) + 1 + 2 * extra
        return (first + np.arange(count) * step).astype(np.float32)

    return Grid(grown(grid.xs), grown(grid.ys), grown(grid.zs))


def _step_of(centres: np.ndarray) -> float:
    return float(centres[1] - centres[0]) if centres.size > 1 else 1.0


def _grid(shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> Grid:
    nz, ny, nx = shape

    def centres(count: int, step: float) -> np.ndarray:
        return ((np.arange(count) - (count - 1) / 2.0) * step).astype(np.float32)

    return Grid(centres(nx, spacing[0]), centres(ny, spacing[1]), centres(nz, spacing[2]))


def _coarse_lung(anatomy: Anatomy) -> LungField:
    step = _COARSE_SPACING_MM
    xs, ys, zs = (
        np.arange(lo, hi + step / 2, step, dtype=np.float32)
        for lo, hi in zip(_COARSE_LO, _COARSE_HI, strict=True)
    )
    lung = np.stack([render_slice(anatomy, float(z), xs, ys).lung for z in zs])
    return LungField.build(lung, _COARSE_LO.copy(), step)


def _render_background(anatomy: Anatomy, grid: Grid) -> np.ndarray:
    """Body, chest wall, mediastinum and textured lungs, slice by slice (float32 HU)."""
    hu = np.empty((grid.zs.size, grid.ys.size, grid.xs.size), dtype=np.float32)
    for k, z in enumerate(grid.zs):
        tissues = render_slice(anatomy, float(z), grid.xs, grid.ys)
        if tissues.lung.any():
            texture = texture_at(anatomy, float(z), grid.xs, grid.ys)
            tissues.hu[tissues.lung] += LUNG_TEXTURE_HU * texture[tissues.lung]
        hu[k] = tissues.hu
    return hu


def _rows(segments: Segments) -> list:
    return list(zip(segments.start, segments.end, segments.r0, segments.r1, strict=True))


def _paint_airways(hu: np.ndarray, grid: Grid, airways: Segments, edge_mm: float) -> None:
    """Bronchi: a soft-tissue wall around air (the lumen is about 70% of the outer radius)."""
    paint_tubes(hu, grid, airways, 20.0, edge_mm)
    paint_tubes(hu, grid, airways.scaled(0.7), anatomy_module.AIR_HU, edge_mm)


def _blur(hu: np.ndarray, spacing: tuple[float, float, float]) -> None:
    """Scanner point-spread: a Gaussian of BLUR_FWHM_MM, applied in place axis by axis."""
    sigma_mm = BLUR_FWHM_MM / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    for axis, step in zip((2, 1, 0), spacing, strict=True):
        sigma = sigma_mm / step
        if sigma >= 0.15:
            ndimage.gaussian_filter1d(hu, sigma, axis=axis, output=hu, mode="nearest")


def _add_noise_and_quantise(hu: np.ndarray, rng: np.random.Generator, std_hu: float) -> np.ndarray:
    """Add in-plane correlated Gaussian noise slice by slice and round into int16 HU."""
    sigma_px = 0.7
    impulse = np.zeros((15, 15), dtype=np.float64)
    impulse[7, 7] = 1.0
    gain = float(np.sqrt((ndimage.gaussian_filter(impulse, sigma_px) ** 2).sum()))
    scale = np.float32(std_hu / gain)
    out = np.empty(hu.shape, dtype=np.int16)
    noise = np.empty(hu.shape[1:], dtype=np.float32)
    for k in range(hu.shape[0]):
        white = rng.standard_normal(hu.shape[1:], dtype=np.float32)
        ndimage.gaussian_filter(white, sigma_px, output=noise, mode="wrap", truncate=3.0)
        noise *= scale
        noise += hu[k]
        np.rint(noise, out=noise)
        np.clip(noise, -1024.0, 3071.0, out=noise)
        out[k] = noise
    return out


def _to_lps(point: np.ndarray) -> tuple[float, float, float]:
    p = point + np.asarray(CENTRE_LPS_MM)
    return (float(p[0]), float(p[1]), float(p[2]))


def _uid(*parts: object) -> str:
    """A reproducible DICOM UID (the '2.25' UUID-as-integer arc) from the given parts."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


def _metadata(
    seed: int, shape: tuple[int, int, int], spacing: tuple[float, float, float]
) -> ScanMetadata:
    study_uid = _uid("meddiag-demo-phantom", seed, "study")
    return ScanMetadata(
        modality="CT",
        patient_name="PHANTOM^DEMO",
        patient_id=f"PHANTOM-{seed:04d}",
        patient_birth_date="19600101",
        patient_sex="O",
        study_uid=study_uid,
        series_uid=_uid("meddiag-demo-phantom", seed, "series", shape, spacing),
        study_date="20250101",
        series_date="20250101",
        study_description="CT chest - synthetic phantom",
        series_description=f"Axial {spacing[2]:g} mm - synthetic phantom (seed {seed})",
        series_number="2",
        institution="MedDiag Desktop demo (synthetic phantom, not a patient)",
        manufacturer="MedDiag",
        manufacturer_model="Synthetic chest phantom",
    )


def _describe(
    nodule: NoduleShape, array: np.ndarray, mask: np.ndarray, grid: Grid, pose: PatientPose | None
) -> Nodule:
    reach = nodule.radius * 1.3
    c = nodule.centre if pose is None else pose.scanner_point(nodule.centre)
    x0, x1 = grid.index_range(c[0] - reach, c[0] + reach, 0)
    y0, y1 = grid.index_range(c[1] - reach, c[1] + reach, 1)
    z0, z1 = grid.index_range(c[2] - reach, c[2] + reach, 2)
    dx = grid.xs[x0:x1] - np.float32(c[0])
    dy = grid.ys[y0:y1, np.newaxis] - np.float32(c[1])
    dz = grid.zs[z0:z1, np.newaxis, np.newaxis] - np.float32(c[2])
    near = dx * dx + dy * dy + dz * dz <= np.float32(reach * reach)  # not a neighbour's voxels
    inside = near & mask[z0:z1, y0:y1, x0:x1].astype(bool)
    values = array[z0:z1, y0:y1, x0:x1][inside]
    mean = float(values.mean()) if values.size else float(nodule.hu)
    return Nodule(
        centre_lps_mm=_to_lps(np.asarray(c, dtype=float)),
        diameter_mm=round(2.0 * nodule.radius, 2),
        kind=nodule.kind,
        mean_hu=round(mean, 1),
    )
