"""Tubes of the demo phantom: branching vessel and airway trees, and the ribs.

A tube is a chain of capsule segments with a linearly tapering radius. Trees grow from the hila
by repeated asymmetric forking (radii shrink roughly by Murray's law) and are steered away from
the pleura with the distance map of a coarse lung mask, so vessels fill the lungs without
leaving them. Vessels seen end-on look like nodules in one slice: these are the hard negatives
a nodule detector has to learn to reject by following them through neighbouring slices.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from meddiag_desktop.demo.anatomy import Anatomy

MIN_VESSEL_RADIUS_MM = 0.35
MIN_AIRWAY_RADIUS_MM = 1.4
MAX_BRANCHES = 6000


@dataclass(frozen=True)
class Segments:
    """Capsules from ``start`` to ``end`` (n x 3, anatomy mm) with radii ``r0`` -> ``r1``."""

    start: np.ndarray
    end: np.ndarray
    r0: np.ndarray
    r1: np.ndarray

    @staticmethod
    def from_rows(rows: list[tuple[np.ndarray, np.ndarray, float, float]]) -> Segments:
        if not rows:
            empty = np.zeros((0, 3))
            return Segments(empty, empty, np.zeros(0), np.zeros(0))
        return Segments(
            np.array([r[0] for r in rows], dtype=float),
            np.array([r[1] for r in rows], dtype=float),
            np.array([r[2] for r in rows], dtype=float),
            np.array([r[3] for r in rows], dtype=float),
        )

    def scaled(self, factor: float) -> Segments:
        return Segments(self.start, self.end, self.r0 * factor, self.r1 * factor)

    def __len__(self) -> int:
        return len(self.r0)

    def surface_distance(self, point: np.ndarray) -> np.ndarray:
        """Distance from ``point`` to each capsule's surface (negative inside)."""
        d = self.end - self.start
        length2 = np.maximum((d * d).sum(axis=1), 1e-9)
        t = np.clip(((point - self.start) * d).sum(axis=1) / length2, 0.0, 1.0)
        nearest = self.start + t[:, None] * d
        radius = self.r0 + t * (self.r1 - self.r0)
        return np.linalg.norm(point - nearest, axis=1) - radius


@dataclass(frozen=True)
class Grid:
    """Pixel centres of a volume in anatomy millimetres (float32), per axis."""

    xs: np.ndarray
    ys: np.ndarray
    zs: np.ndarray

    @property
    def spacing(self) -> np.ndarray:
        return np.array([_step(self.xs), _step(self.ys), _step(self.zs)])

    def index_range(self, lo: float, hi: float, axis: int) -> tuple[int, int]:
        """Indices [i0, i1) of the pixel centres between ``lo`` and ``hi`` mm on ``axis``."""
        centres = (self.xs, self.ys, self.zs)[axis]
        first, step, count = float(centres[0]), _step(centres), centres.size
        i0 = min(max(math.ceil((lo - first) / step), 0), count)
        i1 = min(max(math.floor((hi - first) / step) + 1, 0), count)
        return i0, i1


def _step(centres: np.ndarray) -> float:
    return float(centres[1] - centres[0]) if centres.size > 1 else 1.0


def paint_tubes(
    volume: np.ndarray, grid: Grid, segments: Segments, value: float, edge_mm: float
) -> None:
    """Blend ``value`` into ``volume`` (z, y, x) with partial-volume edges ``edge_mm`` wide."""
    if not len(segments):
        return
    value32 = np.float32(value)
    inv_edge = np.float32(1.0 / edge_mm)
    reach = np.maximum(segments.r0, segments.r1)[:, None] + edge_mm
    lo = np.minimum(segments.start, segments.end) - reach
    hi = np.maximum(segments.start, segments.end) + reach
    first = np.array([grid.xs[0], grid.ys[0], grid.zs[0]], dtype=float)
    sizes = np.array([grid.xs.size, grid.ys.size, grid.zs.size])
    spacing = grid.spacing
    i0 = np.clip(np.ceil((lo - first) / spacing), 0, sizes).astype(int)
    i1 = np.clip(np.floor((hi - first) / spacing) + 1, 0, sizes).astype(int)
    visible = np.flatnonzero(np.all(i1 > i0, axis=1))
    for k in visible:
        (x0, y0, z0), (x1, y1, z1) = i0[k], i1[k]
        a = segments.start[k].astype(np.float32)
        d = (segments.end[k] - segments.start[k]).astype(np.float32)
        r0 = np.float32(segments.r0[k])
        dr = np.float32(segments.r1[k] - segments.r0[k])
        px = (grid.xs[x0:x1] - a[0])[np.newaxis, np.newaxis, :]
        py = (grid.ys[y0:y1] - a[1])[np.newaxis, :, np.newaxis]
        pz = (grid.zs[z0:z1] - a[2])[:, np.newaxis, np.newaxis]
        length2 = np.float32(max(float(d @ d), 1e-6))
        dot = px * d[0] + py * d[1] + pz * d[2]
        t = dot * (1.0 / length2)
        np.maximum(t, 0.0, out=t)
        np.minimum(t, 1.0, out=t)
        dist2 = (px * px + py * py) + pz * pz
        dist2 -= t * (2.0 * dot - t * length2)
        np.maximum(dist2, 0.0, out=dist2)
        cover = t * dr
        cover += r0
        cover -= np.sqrt(dist2)
        cover *= inv_edge
        cover += 0.5
        np.maximum(cover, 0.0, out=cover)
        np.minimum(cover, 1.0, out=cover)
        view = volume[z0:z1, y0:y1, x0:x1]
        view += cover * (value32 - view)


@dataclass(frozen=True)
class LungField:
    """Distance (mm) to the nearest non-lung voxel on a coarse grid, and its gradient."""

    origin: np.ndarray  # anatomy mm of voxel (0, 0, 0), x y z
    spacing: float
    distance_zyx: np.ndarray
    gradient_zyx: tuple[np.ndarray, np.ndarray, np.ndarray]  # d/dz, d/dy, d/dx
    lung_zyx: np.ndarray  # bool

    @staticmethod
    def build(lung_zyx: np.ndarray, origin: np.ndarray, spacing: float) -> LungField:
        distance = ndimage.distance_transform_edt(lung_zyx, sampling=spacing).astype(np.float32)
        gradient = tuple(g.astype(np.float32) for g in np.gradient(distance, spacing))
        return LungField(
            origin, spacing, distance, (gradient[0], gradient[1], gradient[2]), lung_zyx
        )

    def _index(self, point: np.ndarray) -> tuple[int, int, int] | None:
        shape = self.distance_zyx.shape
        i = round((point[0] - self.origin[0]) / self.spacing)
        j = round((point[1] - self.origin[1]) / self.spacing)
        k = round((point[2] - self.origin[2]) / self.spacing)
        if not (0 <= i < shape[2] and 0 <= j < shape[1] and 0 <= k < shape[0]):
            return None
        return k, j, i

    def distance(self, point: np.ndarray) -> float:
        index = self._index(point)
        return 0.0 if index is None else float(self.distance_zyx[index])

    def inward(self, point: np.ndarray) -> np.ndarray:
        """Unit vector (x, y, z) away from the nearest pleura; zero outside the grid."""
        index = self._index(point)
        if index is None:
            return np.zeros(3)
        gz, gy, gx = (g[index] for g in self.gradient_zyx)
        v = np.array([gx, gy, gz], dtype=float)
        n = np.linalg.norm(v)
        return v / n if n > 1e-6 else v


@dataclass(frozen=True)
class _Branch:
    start: np.ndarray
    direction: np.ndarray
    radius: float
    checked: bool  # whether it must stay inside the lung (roots start in the mediastinum)


def grow_tree(
    rng: np.random.Generator,
    lung: LungField,
    roots: list[tuple[tuple[float, float, float], tuple[float, float, float], float]],
    min_radius: float,
    length_factor: tuple[float, float] = (8.0, 13.0),
    max_branches: int = MAX_BRANCHES,
) -> Segments:
    """Grow trees from ``roots`` (start, direction, radius), breadth first, into the lungs."""
    queue: deque[_Branch] = deque(
        _Branch(np.array(p, float), _unit(np.array(d, float)), r, False) for p, d, r in roots
    )
    rows: list[tuple[np.ndarray, np.ndarray, float, float]] = []
    branches = 0
    while queue and branches < max_branches:
        branch = queue.popleft()
        branches += 1
        end = _grow_branch(rng, lung, branch, length_factor, rows)
        if end is None:
            continue
        point, direction, radius = end
        if radius * 0.9 < min_radius:
            continue
        side = _unit(_cross(direction, rng.standard_normal(3)))
        angle_major = np.radians(rng.uniform(12.0, 28.0))
        angle_minor = np.radians(rng.uniform(35.0, 70.0))
        major = np.cos(angle_major) * direction + np.sin(angle_major) * side
        minor = np.cos(angle_minor) * direction - np.sin(angle_minor) * side
        for new_direction, factor in (
            (major, rng.uniform(0.82, 0.92)),
            (minor, rng.uniform(0.6, 0.8)),
        ):
            if radius * factor >= min_radius:
                queue.append(_Branch(point, _unit(new_direction), radius * factor, True))
    return Segments.from_rows(rows)


def _grow_branch(
    rng: np.random.Generator,
    lung: LungField,
    branch: _Branch,
    length_factor: tuple[float, float],
    rows: list,
) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Add one branch's segments; returns where it ends (None when it ran into the pleura)."""
    length = float(np.clip(branch.radius * rng.uniform(*length_factor), 5.0, 45.0))
    steps = max(1, int(np.ceil(length / 6.0)))
    step = length / steps
    r_end = branch.radius * rng.uniform(0.86, 0.95)
    point, direction, radius = branch.start, branch.direction, branch.radius
    for k in range(steps):
        direction = _unit(direction + rng.normal(0.0, 0.1, 3))
        if branch.checked:
            clearance = lung.distance(point)
            if clearance < 18.0:
                pull = 0.7 * (18.0 - clearance) / 18.0
                direction = _unit(direction + pull * lung.inward(point))
        nxt = point + step * direction
        r_next = branch.radius + (r_end - branch.radius) * (k + 1) / steps
        if branch.checked and lung.distance(nxt) < r_next + 1.5:
            return None
        rows.append((point, nxt, radius, r_next))
        point, radius = nxt, r_next
    return point, direction, radius


def _unit(v: np.ndarray) -> np.ndarray:
    n = math.sqrt(float(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]))
    return v / n if n > 1e-9 else np.array([0.0, 0.0, 1.0])


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array(
        [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
    )


def vessel_roots(a: Anatomy, rng: np.random.Generator) -> list:
    """Lobar arteries and veins leaving each hilum: (start, direction, radius)."""
    roots = []
    for s in (-1.0, 1.0):
        hilum_artery = (s * 50.0, -4.0, a.carina_z - 30.0)
        hilum_vein = (s * 44.0, 10.0, a.carina_z - 55.0)
        lobar = [
            (hilum_artery, (0.3 * s, -0.2, 1.0), 4.6),
            (hilum_artery, (0.9 * s, -0.5, 0.1), 4.0),
            (hilum_artery, (0.8 * s, 0.7, -0.2), 4.0),
            (hilum_artery, (0.35 * s, 0.3, -1.0), 5.4),
            (hilum_artery, (0.4 * s, 0.9, 0.4), 3.6),
            (hilum_vein, (0.2 * s, -0.5, 1.0), 4.2),
            (hilum_vein, (1.0 * s, 0.1, -0.1), 4.2),
            (hilum_vein, (0.4 * s, 0.5, -1.0), 5.0),
            (hilum_vein, (0.7 * s, -0.7, -0.6), 4.0),
        ]
        if s < 0:  # right middle lobe
            lobar.append((hilum_artery, (0.5 * s, -1.0, -0.5), 3.6))
        for start, direction, radius in lobar:
            for _ in range(2):  # two segmental trunks per lobar direction
                jittered = np.array(direction) + rng.normal(0.0, 0.3, 3)
                roots.append((start, tuple(jittered), radius * rng.uniform(0.75, 0.9)))
    return roots


def hilar_trunks(a: Anatomy) -> Segments:
    """Main pulmonary arteries and veins between the heart and the hila (drawn, not grown)."""
    rows = []
    for s in (-1.0, 1.0):
        rows.append(
            (
                np.array([10.0, -22.0, a.carina_z - 20.0]),
                np.array([s * 50.0, -4.0, a.carina_z - 30.0]),
                9.5,
                7.0,
            )
        )
        rows.append(
            (
                np.array([12.0, 8.0, a.carina_z - 60.0]),
                np.array([s * 44.0, 10.0, a.carina_z - 55.0]),
                8.0,
                6.5,
            )
        )
    return Segments.from_rows(rows)


def airway_roots(a: Anatomy, rng: np.random.Generator) -> tuple[Segments, list]:
    """The main bronchi (drawn) and the lobar bronchi that start each airway tree."""
    rows = []
    roots = []
    carina = np.array([0.0, 14.0, a.carina_z])
    for s in (-1.0, 1.0):
        hilum = np.array([s * 42.0, 12.0, a.carina_z - (18.0 if s < 0 else 26.0)])
        rows.append((carina, hilum, 7.5, 6.0))
        for direction, radius in (
            ((0.3 * s, -0.1, 1.0), 4.2),
            ((0.9 * s, -0.3, -0.2), 3.6),
            ((0.35 * s, 0.45, -1.0), 4.8),
            ((0.5 * s, 0.9, 0.1), 3.4),
        ):
            jittered = np.array(direction) + rng.normal(0.0, 0.1, 3)
            roots.append((tuple(hilum), tuple(jittered), radius))
    return Segments.from_rows(rows), roots


def rib_segments(a: Anatomy) -> tuple[Segments, Segments]:
    """Ribs (bone) and costal cartilages, as chains following the inside of the chest wall."""
    from meddiag_desktop.demo.anatomy import _half_axes_profile

    bone: list[tuple[np.ndarray, np.ndarray, float, float]] = []
    cartilage: list[tuple[np.ndarray, np.ndarray, float, float]] = []
    wall_lat, wall_ant, wall_post = a.wall
    for k in range(12):
        z_back = a.apex_z - 8.0 - 24.0 * k
        theta_end = 2.85 if k < 7 else (2.45 if k < 10 else 1.75)
        cartilage_from = 2.35 if k < 7 else 2.1
        radius = 4.0 if k == 0 else 4.8
        for s in (-1.0, 1.0):
            points = []
            for theta in np.arange(0.32, theta_end + 1e-6, 0.11):
                u = (theta - 0.32) / (2.85 - 0.32)
                z = z_back + 7.0 * np.sin(np.pi * min(u * 2.0, 1.0)) - 52.0 * u**1.4
                profile = max(_half_axes_profile(a, z), 0.25)
                ra = (a.body_a - wall_lat) * profile
                rb_ant = (a.body_b_ant - wall_ant) * profile
                rb_post = (a.body_b_post - wall_post) * profile
                sx, cy = np.sin(theta), np.cos(theta)
                rho = _ray_to_outline(sx, cy, ra, rb_ant, rb_post)
                outward = rho + radius + 0.8
                points.append((np.array([s * outward * sx, outward * cy, z]), theta))
            for (p, theta), (q, _) in itertools.pairwise(points):
                target = cartilage if theta >= cartilage_from else bone
                target.append((p, q, radius, radius))
    return Segments.from_rows(bone), Segments.from_rows(cartilage)


def _ray_to_outline(sx: float, cy: float, a: float, b_ant: float, b_post: float) -> float:
    """Distance along (sx, cy) from the centre to the flattened-ellipse outline (bisection)."""
    lo, hi = 0.0, 400.0
    for _ in range(30):
        mid = (lo + hi) / 2.0
        x, y = mid * sx, mid * cy
        t = (y / b_ant) ** 2 if y < 0 else (y / b_post) ** 2
        q = t if y < 0 else 0.35 * t + 0.65 * t * t
        if (x / a) ** 2 + q < 1.0:
            lo = mid
        else:
            hi = mid
    return lo
