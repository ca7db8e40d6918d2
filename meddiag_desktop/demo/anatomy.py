"""The chest of the demo phantom, one axial slice at a time: body, chest wall, lungs, mediastinum.

Everything is in *anatomy millimetres*: x toward the patient's left, y toward the back, z toward
the head (the LPS axes), with the origin in the middle of the lungs. Shapes are analytic (nested
ellipses, a domed diaphragm, circles for the great vessels and the spine), so a slice costs a few
dozen array operations whatever the pixel spacing, and any grid sees the same anatomy. Tubes
(vessels, airways, ribs) and nodules are drawn in 3-D afterwards by :mod:`.tubes` and
:mod:`.nodules`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Hounsfield units of the tissues (non-contrast CT).
AIR_HU = -1000.0
FAT_HU = -95.0
MUSCLE_HU = 45.0
BLOOD_HU = 40.0
LIVER_HU = 58.0
ABDOMEN_HU = 35.0
LUNG_HU = -860.0
CSF_HU = 12.0
DISC_HU = 85.0
CORTICAL_HU = 780.0
CANCELLOUS_HU = 240.0
FISSURE_HU = -620.0

VERTEBRA_PITCH_MM = 27.0
DISC_FRACTION = 0.2


@dataclass(frozen=True)
class Anatomy:
    """The sizes that vary from one phantom to the next (all in millimetres)."""

    body_a: float  # half width of the body (left-right)
    body_b_ant: float  # centre to the anterior skin
    body_b_post: float  # centre to the posterior skin
    fat: tuple[float, float, float]  # subcutaneous fat: lateral, anterior, posterior
    wall: tuple[float, float, float]  # skin to the inside of the rib cage: lateral, ant., post.
    apex_z: float  # top of the lungs
    dome_z: tuple[float, float]  # top of the right and left diaphragm domes
    heart_centre: tuple[float, float, float]
    heart_axes: tuple[float, float, float]
    carina_z: float
    arch_z: float  # the aortic arch
    spine_y: float  # centre of the vertebral bodies
    lung_hu: float
    texture: np.ndarray  # coarse lung texture field (z, y, x) on TEXTURE_GRID


TEXTURE_SPACING_MM = 6.0
TEXTURE_EXTENT_MM = (360.0, 360.0, 420.0)  # x, y, z: covers any reasonable field of view


def random_anatomy(rng: np.random.Generator) -> Anatomy:
    """Plausible adult sizes, varied by a few per cent between phantoms."""

    def jitter(value: float, fraction: float = 0.05) -> float:
        return float(value * (1.0 + rng.uniform(-fraction, fraction)))

    scale = rng.uniform(0.94, 1.05)
    nz, ny, nx = (int(e / TEXTURE_SPACING_MM) + 3 for e in TEXTURE_EXTENT_MM[::-1])
    raw = rng.standard_normal((nz, ny, nx), dtype=np.float32)
    from scipy.ndimage import gaussian_filter  # local: keeps module import light

    texture = gaussian_filter(raw, 1.0, mode="wrap")
    texture *= np.float32(1.0 / max(float(texture.std()), 1e-6))
    return Anatomy(
        body_a=jitter(158.0) * scale,
        body_b_ant=jitter(98.0) * scale,
        body_b_post=jitter(112.0) * scale,
        fat=(jitter(17.0, 0.3), jitter(11.0, 0.3), jitter(12.0, 0.3)),
        wall=(jitter(31.0, 0.1), jitter(25.0, 0.1), jitter(31.0, 0.1)),
        apex_z=jitter(122.0, 0.04),
        dome_z=(jitter(-58.0, 0.12), jitter(-74.0, 0.1)),
        heart_centre=(jitter(20.0, 0.2), jitter(-24.0, 0.15), jitter(-44.0, 0.1)),
        heart_axes=(jitter(66.0), jitter(50.0), jitter(44.0)),
        carina_z=jitter(36.0, 0.1),
        arch_z=jitter(56.0, 0.08),
        spine_y=jitter(52.0, 0.04) * scale,
        lung_hu=LUNG_HU + rng.uniform(-20.0, 20.0),
        texture=texture,
    )


def _half_axes_profile(anatomy: Anatomy, z: float) -> float:
    """How much of the rib cage's width is left at height z (it narrows to the lung apices)."""
    start = anatomy.apex_z - 78.0
    if z <= start:
        return 1.0
    t = (z - start) / (anatomy.apex_z + 4.0 - start)
    return float(np.sqrt(max(0.0, 1.0 - t * t)))


def _barrel(anatomy: Anatomy, z: float) -> float:
    """The rib cage widens from the thoracic inlet to the lung bases (a barrel, not a box)."""
    t = (anatomy.apex_z - z) / (anatomy.apex_z - anatomy.dome_z[1])
    return float(0.84 + 0.16 * np.sin(np.pi / 2 * np.clip(t, 0.0, 1.0)))


def _y_term(y: np.ndarray, b_ant: float, b_post: float) -> np.ndarray:
    """The y part of the body's outline: an ellipse in front, flattened at the back."""
    t = np.where(y < 0, (y / b_ant) ** 2, (y / b_post) ** 2)
    return np.where(y < 0, t, 0.35 * t + 0.65 * t * t).astype(np.float32)


def _mediastinum_half_width(y: np.ndarray, z: float, anatomy: Anatomy) -> np.ndarray:
    """Half width of the central band (sternum to spine) that holds no lung, per row."""
    sy = anatomy.spine_y
    rows = np.interp(
        y,
        [-110.0, -60.0, 0.0, 25.0, sy - 18.0, sy - 6.0, sy + 20.0, 140.0],
        [9.0, 12.0, 15.0, 15.0, 22.0, 30.0, 34.0, 34.0],
    )
    if anatomy.carina_z - 40.0 < z < anatomy.arch_z + 25.0:  # great vessels above the heart
        rows = rows + np.where(y < 30.0, 8.0, 0.0)
    return rows.astype(np.float32)


@dataclass(frozen=True)
class SliceTissues:
    hu: np.ndarray  # float32 (ny, nx)
    lung: np.ndarray  # bool (ny, nx)


def render_slice(anatomy: Anatomy, z: float, xs: np.ndarray, ys: np.ndarray) -> SliceTissues:
    """Tissues of the axial slice at height ``z`` on the pixel centres ``xs`` by ``ys`` (mm)."""
    a = anatomy
    hu = np.full((ys.size, xs.size), AIR_HU, dtype=np.float32)
    lung = np.zeros(hu.shape, dtype=bool)
    window = _window(xs, ys, (-a.body_a, a.body_a), (-a.body_b_ant, a.body_b_post))
    if window is None:
        return SliceTissues(hu, lung)
    rows, cols = window
    x = xs[cols][np.newaxis, :].astype(np.float32)
    y = ys[rows][:, np.newaxis].astype(np.float32)
    view = hu[rows, cols]

    body = (x / a.body_a) ** 2 + _y_term(y, a.body_b_ant, a.body_b_post) < 1.0
    np.copyto(view, FAT_HU, where=body)
    fat_lat, fat_ant, fat_post = a.fat
    muscle = (x / (a.body_a - fat_lat)) ** 2 + _y_term(
        y, a.body_b_ant - fat_ant, a.body_b_post - fat_post
    ) < 1.0
    np.copyto(view, MUSCLE_HU, where=muscle)

    profile = _half_axes_profile(a, z)
    if profile > 0.05:
        wall_lat, wall_ant, wall_post = a.wall
        width = (a.body_a - wall_lat) * profile * _barrel(a, z)
        cavity = (x / width) ** 2 + _y_term(
            y, (a.body_b_ant - wall_ant) * profile, (a.body_b_post - wall_post) * profile
        ) < 1.0
        lung[rows, cols] = _thorax(view, cavity, x, y, z, a)
    _spine(hu, xs, ys, z, a)
    _sternum_and_scapulae(hu, xs, ys, z, a)
    return SliceTissues(hu, lung)


def _diaphragm_z(x: np.ndarray, y: np.ndarray, a: Anatomy) -> np.ndarray:
    dome = np.where(x < 0, a.dome_z[0], a.dome_z[1]).astype(np.float32)
    lateral = ((np.abs(x) - 62.0) / 95.0) ** 2
    back = np.clip(y / 90.0, 0.0, 1.0)  # the posterior recesses reach lowest
    return dome - 58.0 * lateral - 30.0 * ((y + 5.0) / 95.0) ** 2 - 24.0 * back


def _disc(x: np.ndarray, y: np.ndarray, centre: tuple[float, float], radius: float) -> np.ndarray:
    return (x - centre[0]) ** 2 + (y - centre[1]) ** 2 < radius * radius


def _thorax(
    hu: np.ndarray, cavity: np.ndarray, x: np.ndarray, y: np.ndarray, z: float, a: Anatomy
) -> np.ndarray:
    """Fill the rib cage: lungs, mediastinum, heart, great vessels, upper abdomen."""
    above = z > _diaphragm_z(x, y, a)
    thorax = cavity & above
    abdomen = cavity & ~above
    if abdomen.any():
        np.copyto(hu, ABDOMEN_HU, where=abdomen)
        np.copyto(hu, LIVER_HU, where=abdomen & (x < 18.0))
        # Stomach under the left dome: fluid with a cap of gas above a level surface.
        centre_z = a.dome_z[1] - 48.0
        dz = (z - centre_z) / 34.0
        if abs(dz) < 1.0:
            stomach = abdomen & (
                ((x - 60.0) / 34.0) ** 2 + ((y + 18.0) / 30.0) ** 2 < 1.0 - dz * dz
            )
            np.copyto(hu, AIR_HU if z > centre_z + 12.0 else 15.0, where=stomach)

    band = np.abs(x - 5.0) < _mediastinum_half_width(y, z, a)
    heart_norm = _heart_norm(x, y, z, a)
    if heart_norm is not None:
        band |= heart_norm < 1.13
    vessels = _great_vessels(z, a)
    for centre, radius in vessels:
        band |= _disc(x, y, centre, radius + 3.0)
    mediastinum = thorax & band
    lung = thorax & ~band
    np.copyto(hu, FAT_HU, where=mediastinum)

    if heart_norm is not None:
        np.copyto(hu, BLOOD_HU, where=thorax & (heart_norm < 1.0))
    for centre, radius in vessels:
        np.copyto(hu, BLOOD_HU, where=thorax & _disc(x, y, centre, radius))
    if z > a.carina_z:  # trachea: wall and air
        np.copyto(hu, MUSCLE_HU, where=_disc(x, y, (0.0, 14.0), 10.0))
        np.copyto(hu, AIR_HU, where=_disc(x, y, (0.0, 14.0), 8.5))
    if z > a.dome_z[1] - 30:  # oesophagus, collapsed
        np.copyto(hu, MUSCLE_HU, where=thorax & _disc(x, y, (8.0, 32.0), 6.5))

    if lung.any():
        gradient = a.lung_hu + 50.0 * np.clip(y / 90.0, -1.0, 1.0)  # dependent lung is denser
        np.copyto(hu, np.broadcast_to(gradient, hu.shape), where=lung)
        _fissures(hu, lung, x, y, z)
    return lung


# The heart's long axis runs from the base (right, back, up) to the apex (left, front, down).
_HEART_AXES = np.linalg.qr(
    np.array([[0.62, -0.45, -0.64], [0.45, 0.85, -0.1], [0.64, -0.1, 0.76]]).T
)[0]


def _heart_norm(x: np.ndarray, y: np.ndarray, z: float, a: Anatomy) -> np.ndarray | None:
    """The heart as a tilted ellipsoid: < 1 inside (None when the slice misses it)."""
    hx, hy, hz = a.heart_centre
    if abs(z - hz) > 1.1 * max(a.heart_axes):
        return None
    dz = z - hz
    total = np.zeros(np.broadcast_shapes(x.shape, y.shape), dtype=np.float32)
    for axis, half in zip(_HEART_AXES.T, a.heart_axes, strict=True):
        u = (x - hx) * np.float32(axis[0]) + (y - hy) * np.float32(axis[1]) + axis[2] * dz
        total += (u * np.float32(1.0 / half)) ** 2
    return total


def _great_vessels(z: float, a: Anatomy) -> list:
    """In-plane circles (centre, radius) of the aorta and pulmonary trunk at height z."""
    circles: list[tuple[tuple[float, float], float]] = []
    descending = (22.0, a.spine_y - 14.0)
    ascending = (-14.0, -22.0)
    if z < a.arch_z:
        circles.append((descending, 12.0))
    if a.heart_centre[2] + 25.0 < z < a.arch_z:
        circles.append((ascending, 15.0))
    if abs(z - a.arch_z) < 13.0:  # the arch runs from front right to back left
        r = 13.0 * np.sqrt(1.0 - ((z - a.arch_z) / 13.5) ** 2)
        for t in np.linspace(0.0, 1.0, 7):
            bend = 10.0 * np.sin(np.pi * t)
            cx = ascending[0] + t * (descending[0] - ascending[0]) - bend
            cy = ascending[1] + t * (descending[1] - ascending[1])
            circles.append(((float(cx), float(cy)), float(r)))
    if a.heart_centre[2] + 15.0 < z < a.carina_z - 18.0:
        circles.append(((12.0, -32.0), 13.0))  # pulmonary trunk
    return circles


def _fissures(hu: np.ndarray, lung: np.ndarray, x: np.ndarray, y: np.ndarray, z: float) -> None:
    """The major fissures: thin oblique sheets, posterior-superior to anterior-inferior."""
    plane_z = -78.0 + 1.05 * (y + 60.0) + 0.6 * (np.abs(x) - 60.0)
    distance = np.abs(z - plane_z) * np.float32(1.0 / 1.58)  # |normal| of the plane
    near = lung & (distance < 0.9)
    if near.any():
        weight = np.clip(1.0 - distance / 0.9, 0.0, 1.0) * 0.45
        hu += np.where(near, weight * (FISSURE_HU - hu), 0.0).astype(np.float32)


def _window(
    xs: np.ndarray, ys: np.ndarray, x_range: tuple[float, float], y_range: tuple[float, float]
) -> tuple[slice, slice] | None:
    """The pixel rows and columns covering a rectangle in mm (None when outside the slice)."""
    i0, i1 = np.searchsorted(xs, x_range)
    j0, j1 = np.searchsorted(ys, y_range)
    if i1 <= i0 or j1 <= j0:
        return None
    return slice(int(j0), int(j1)), slice(int(i0), int(i1))


def _spine(hu: np.ndarray, xs: np.ndarray, ys: np.ndarray, z: float, a: Anatomy) -> None:
    """Vertebral body (or disc), spinal canal, lamina, spinous and transverse processes."""
    sy = a.spine_y
    window = _window(xs, ys, (-48.0, 48.0), (sy - 22.0, sy + 60.0))
    if window is None:
        return
    rows, cols = window
    x = xs[cols][np.newaxis, :].astype(np.float32)
    y = ys[rows][:, np.newaxis].astype(np.float32)
    view = hu[rows, cols]
    phase = (z / VERTEBRA_PITCH_MM) % 1.0
    body_r = 16.5
    r2 = x * x + (y - sy) ** 2
    if phase < DISC_FRACTION:
        view[r2 < body_r**2] = DISC_HU
    else:
        view[r2 < body_r**2] = CORTICAL_HU
        view[r2 < (body_r - 1.6) ** 2] = CANCELLOUS_HU
    canal_y = sy + 27.0
    c2 = x * x + (y - canal_y) ** 2
    if 0.3 < phase < 0.92:
        view[(c2 < 13.0**2) & (y > sy + 14.0)] = CORTICAL_HU - 150.0
        if 0.38 < phase < 0.85:
            spinous = (np.abs(x) < 3.5) & (y > canal_y + 10.0) & (y < canal_y + 26.0)
            view[spinous] = CORTICAL_HU - 150.0
        if 0.42 < phase < 0.78:
            transverse = (np.abs(x) > 10.0) & (np.abs(x) < 33.0) & (np.abs(y - canal_y + 4) < 4.0)
            view[transverse] = CORTICAL_HU - 150.0
    view[c2 < 8.0**2] = CSF_HU


def _sternum_and_scapulae(
    hu: np.ndarray, xs: np.ndarray, ys: np.ndarray, z: float, a: Anatomy
) -> None:
    if -80.0 < z < 92.0:
        width = 24.0 if z > 62.0 else 15.0
        front = -a.body_b_ant + a.fat[1] + 3.0
        window = _window(xs, ys, (-width - 1, width + 1), (front - 1, front + 16))
        if window is not None:
            rows, cols = window
            x = xs[cols][np.newaxis, :]
            y = ys[rows][:, np.newaxis]
            n = (x / width) ** 2 + ((y - front - 7.0) / 6.0) ** 2
            view = hu[rows, cols]
            view[n < 1.0] = CORTICAL_HU - 100.0
            view[n < 0.55] = CANCELLOUS_HU + 40.0
    if -25.0 < z < 108.0:  # scapulae: curved plates behind the ribs, outside the chest wall
        for side in (-1.0, 1.0):
            p0 = np.array([side * (a.body_a * 0.46), a.body_b_post * 0.80])
            p1 = np.array([side * (a.body_a * 0.86), a.body_b_post * 0.30])
            lo, hi = np.minimum(p0, p1) - 4.0, np.maximum(p0, p1) + 4.0
            window = _window(xs, ys, (lo[0], hi[0]), (lo[1], hi[1]))
            if window is None:
                continue
            rows, cols = window
            x = xs[cols][np.newaxis, :]
            y = ys[rows][:, np.newaxis]
            d = p1 - p0
            t = np.clip(((x - p0[0]) * d[0] + (y - p0[1]) * d[1]) / float(d @ d), 0.0, 1.0)
            bulge = 6.0 * np.sin(np.pi * t)  # a gentle curve around the ribs
            dist2 = (x - p0[0] - t * d[0] - side * bulge * 0.3) ** 2 + (
                y - p0[1] - t * d[1] - bulge
            ) ** 2
            thickness = 2.2 + 2.0 * (t < 0.12)
            hu[rows, cols][dist2 < thickness**2] = CORTICAL_HU - 150.0


def texture_at(anatomy: Anatomy, z: float, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """The lung texture field (unit std) bilinearly sampled on one slice's pixel grid."""
    field = anatomy.texture
    nz, ny, nx = field.shape
    ex, ey, ez = TEXTURE_EXTENT_MM

    def coordinate(values: np.ndarray | float, extent: float, count: int) -> np.ndarray:
        c = (np.asarray(values, dtype=np.float64) + extent / 2.0) / TEXTURE_SPACING_MM + 1.0
        return np.clip(c, 0.0, count - 1.001)

    cz = float(coordinate(z, ez, nz))
    k = int(cz)
    plane = field[k] * np.float32(1.0 - (cz - k)) + field[k + 1] * np.float32(cz - k)
    return _bilinear(plane, coordinate(ys, ey, ny), coordinate(xs, ex, nx))


def _bilinear(plane: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Sample a small 2-D field at a grid of (row, col) positions (separable, by gathering)."""
    r0 = rows.astype(int)
    fr = (rows - r0).astype(np.float32)[:, np.newaxis]
    c0 = cols.astype(int)
    fc = (cols - c0).astype(np.float32)
    by_row = plane[r0] * (1.0 - fr) + plane[r0 + 1] * fr  # (len(rows), plane columns)
    return (by_row[:, c0] * (1.0 - fc) + by_row[:, c0 + 1] * fc).astype(np.float32)
