"""Registration of a prior study to the current one (SimpleITK): rigid, then affine if asked.

Both scans are first reduced to a coarse isotropic copy (``grid_mm``, 3 mm by default: a chest
CT of 22 M voxels becomes about 1.3 million), averaged, not sampled, so nothing aliases. On
that copy:

- a body mask (CT: above -500 HU; other modalities: Otsu's threshold), its largest part, with
  the holes of each axial slice (lungs, bowel gas) filled;
- a centred initial alignment that puts the two body masks' centres of mass together (the
  patient moved on the table; the scanner's coordinates say little): for a chest or an abdomen
  this is within a couple of centimetres, well inside what the coarsest level corrects;
- Mattes mutual information (works within and across CT and MR contrasts) sampled at random in
  the current body mask (grown by two voxels so the skin edge counts), a gradient descent with
  scales from physical shifts, on three levels (shrink factors 4, 2, 1 of the coarse copy).

Progress is reported after every iteration (``progress(Progress)``); ``cancelled()`` is asked
at the same moments and, when it says so, the optimiser is stopped from its iteration command
and :class:`RegistrationCancelled` raised as soon as it returns (a worker's Cancel stops it
within one iteration per remaining level, well under a second). Quality is the final metric
and, measured on the coarse copies before and after, the normalised cross-correlation inside
the body and the Dice overlap of the two body masks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from meddiag_desktop.domain import Progress, Volume
from meddiag_desktop.followup.errors import FollowUpError, RegistrationCancelled
from meddiag_desktop.followup.transform import StoredTransform, TransformType, place

ProgressCallback = Callable[[Progress], None]
CancelCheck = Callable[[], bool]

CT_BODY_HU = -500.0


@dataclass(frozen=True)
class RegistrationOptions:
    """How to register; the defaults register the demo pair in a few seconds on two cores."""

    affine: bool = False  # a 12-parameter affine after the rigid stage
    grid_mm: float = 3.0  # the isotropic spacing both scans are reduced to (4 mm: 0.6 deg off)
    shrink_factors: tuple[int, ...] = (4, 2, 1)  # of the reduced copy, coarsest first
    smoothing_mm: tuple[float, ...] = (8.0, 4.0, 0.0)  # Gaussian sigma per level
    histogram_bins: int = 32
    sampling_fraction: float = 0.25  # of the body-mask voxels, per iteration
    max_iterations: int = 120  # per level
    seed: int = 20250106  # of the metric's random sampling: the same result every run

    def __post_init__(self) -> None:
        if len(self.shrink_factors) != len(self.smoothing_mm) or not self.shrink_factors:
            raise ValueError("give one smoothing sigma per shrink factor")
        if self.grid_mm <= 0 or not 0 < self.sampling_fraction <= 1:
            raise ValueError("grid_mm must be positive and sampling_fraction in (0, 1]")


@dataclass(frozen=True)
class RegistrationQuality:
    """How well the two studies line up: metric, and before/after figures on the coarse grid."""

    metric: float  # final Mattes mutual information (negative: lower is better)
    ncc_before: float  # normalised cross-correlation inside the current body, -1..1
    ncc_after: float
    body_dice_before: float  # overlap of the two body masks, 0..1
    body_dice_after: float


@dataclass(frozen=True)
class RegistrationResult:
    transform: StoredTransform  # current LPS point -> prior LPS point
    quality: RegistrationQuality
    seconds: float
    iterations: int  # all levels and stages
    stop_reason: str  # the optimiser's own words for the last level

    @property
    def kind(self) -> TransformType:
        return self.transform.kind


@dataclass(frozen=True, eq=False)
class _Coarse:
    image: sitk.Image  # float32, grid_mm isotropic
    body: sitk.Image  # uint8 body mask on the same grid


def register(
    current: Volume,
    prior: Volume,
    options: RegistrationOptions | None = None,
    progress: ProgressCallback | None = None,
    cancelled: CancelCheck | None = None,
) -> RegistrationResult:
    """Register ``prior`` (moving) to ``current`` (fixed); see the module docstring.

    Raises :class:`RegistrationCancelled` when ``cancelled()`` turns true, and
    :class:`FollowUpError` when a scan shows no body to register on.
    """
    options = options or RegistrationOptions()
    started = time.perf_counter()
    report = progress or (lambda _p: None)
    is_cancelled = cancelled or (lambda: False)
    report(Progress(0.0, "registration", "reducing both scans"))
    fixed = _coarse(current, options.grid_mm, "current")
    moving = _coarse(prior, options.grid_mm, "prior")
    if is_cancelled():
        raise RegistrationCancelled("registration cancelled")
    initial = sitk.CenteredTransformInitializer(
        sitk.Cast(fixed.body, sitk.sitkFloat32),
        sitk.Cast(moving.body, sitk.sitkFloat32),
        sitk.Euler3DTransform(),
        sitk.CenteredTransformInitializerFilter.MOMENTS,
    )
    rigid = sitk.Euler3DTransform(initial)
    stages = 2 if options.affine else 1
    tracker = _Tracker(report, is_cancelled, options, stages)
    metric, stop, iterations = _run_stage(fixed, moving, rigid, options, tracker, "rigid")
    final: sitk.Transform = rigid
    if options.affine:
        affine = sitk.AffineTransform(3)
        affine.SetCenter(rigid.GetCenter())
        affine.SetMatrix(rigid.GetMatrix())
        affine.SetTranslation(rigid.GetTranslation())
        tracker.next_stage()
        metric, stop, more = _run_stage(fixed, moving, affine, options, tracker, "affine")
        iterations += more
        final = affine
    quality = _quality(fixed, moving, final, metric)
    report(Progress(1.0, "registration", f"done: metric {metric:.3f}"))
    return RegistrationResult(
        StoredTransform.from_sitk(final),
        quality,
        time.perf_counter() - started,
        iterations,
        stop,
    )


class _Tracker:
    """Turns the optimiser's iteration events into Progress, and a cancel into an exception."""

    def __init__(
        self,
        report: ProgressCallback,
        cancelled: CancelCheck,
        options: RegistrationOptions,
        stages: int,
    ) -> None:
        self.report, self.cancelled = report, cancelled
        self.levels = len(options.shrink_factors)
        self.max_iterations = options.max_iterations
        self.stages, self.stage = stages, 0
        self.level = -1
        self.asked_to_stop = False

    def next_stage(self) -> None:
        self.stage += 1
        self.level = -1

    def on_level(self) -> None:
        self.level += 1

    def on_iteration(self, method: sitk.ImageRegistrationMethod, name: str) -> None:
        if self.asked_to_stop or self.cancelled():
            # Not an exception raised here: SimpleITK prints it through sys.excepthook (which
            # the app and pytest-qt treat as a crash) before turning it into a RuntimeError.
            # StopRegistration ends the level; each later level is stopped at its first step.
            self.asked_to_stop = True
            method.StopRegistration()
            return
        level = max(self.level, 0)
        iteration = method.GetOptimizerIteration()
        done = (level + min(iteration / self.max_iterations, 1.0)) / self.levels
        fraction = 0.05 + 0.9 * (self.stage + done) / self.stages
        self.report(
            Progress(
                fraction,
                "registration",
                f"{name}, level {level + 1}/{self.levels}, iteration {iteration}: "
                f"metric {method.GetMetricValue():.4f}",
            )
        )


def _run_stage(
    fixed: _Coarse,
    moving: _Coarse,
    transform: sitk.Transform,
    options: RegistrationOptions,
    tracker: _Tracker,
    name: str,
) -> tuple[float, str, int]:
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=options.histogram_bins)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(options.sampling_fraction, options.seed)
    method.SetMetricFixedMask(sitk.BinaryDilate(fixed.body, [2, 2, 2]))
    method.SetInterpolator(sitk.sitkLinear)
    # A regular step that halves whenever the gradient turns: a plain gradient descent with a
    # learning rate estimated each iteration oscillated by a whole coarse voxel here.
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=options.grid_mm / 2.0,
        minStep=options.grid_mm / 400.0,
        numberOfIterations=options.max_iterations,
        relaxationFactor=0.5,
        gradientMagnitudeTolerance=1e-8,
        estimateLearningRate=method.Never,
    )
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel(list(options.shrink_factors))
    method.SetSmoothingSigmasPerLevel(list(options.smoothing_mm))
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    method.SetInitialTransform(transform, inPlace=True)
    iterations = [0]

    def on_iteration() -> None:
        iterations[0] += 1
        tracker.on_iteration(method, name)

    method.AddCommand(sitk.sitkMultiResolutionIterationEvent, tracker.on_level)
    method.AddCommand(sitk.sitkIterationEvent, on_iteration)
    try:
        method.Execute(fixed.image, moving.image)
    except RuntimeError as exc:
        raise FollowUpError(f"the registration failed: {_first_line(exc)}") from exc
    if tracker.asked_to_stop:
        raise RegistrationCancelled("registration cancelled")
    return (
        float(method.GetMetricValue()),
        method.GetOptimizerStopConditionDescription(),
        iterations[0],
    )


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if "ERROR" in line or "rror" in line]
    return (useful or lines or ["unknown error"])[-1][:200]


def _coarse(volume: Volume, grid_mm: float, role: str) -> _Coarse:
    """The scan averaged down to about ``grid_mm`` and resampled onto an isotropic grid."""
    image = sitk.GetImageFromArray(np.asarray(volume.array_zyx, dtype=np.float32))
    place(image, volume)
    factors = [max(1, round(grid_mm / s)) for s in volume.spacing_xyz_mm]
    shrunk = sitk.BinShrink(image, factors) if max(factors) > 1 else image
    size_mm = [n * s for n, s in zip(image.GetSize(), image.GetSpacing(), strict=True)]
    size = [max(4, int(np.ceil(extent / grid_mm))) for extent in size_mm]
    # The new grid covers the same box: its first voxel centre half a new voxel in.
    direction = np.asarray(volume.direction_lps, dtype=float).reshape(3, 3)
    corner = np.asarray(volume.origin_lps_mm) - direction @ (np.asarray(volume.spacing_xyz_mm) / 2)
    origin = corner + direction @ np.full(3, grid_mm / 2.0)
    reference = sitk.Image(size, sitk.sitkFloat32)
    reference.SetSpacing((grid_mm,) * 3)
    reference.SetOrigin(tuple(float(v) for v in origin))
    reference.SetDirection(tuple(float(v) for v in volume.direction_lps))
    low = float(np.min(volume.array_zyx))
    coarse = sitk.Resample(shrunk, reference, sitk.Transform(), sitk.sitkLinear, low)
    body = _body_mask(coarse, volume.modality.upper() == "CT")
    if not sitk.GetArrayViewFromImage(body).any():
        raise FollowUpError(f"the {role} scan shows no body to register on")
    return _Coarse(coarse, body)


def _body_mask(image: sitk.Image, ct: bool) -> sitk.Image:
    values = sitk.GetArrayFromImage(image)
    inside = values > (CT_BODY_HU if ct else _otsu_threshold(values))
    labels, count = ndimage.label(inside)
    if count > 1:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        inside = labels == int(np.argmax(sizes))
    for k in range(inside.shape[0]):
        inside[k] = ndimage.binary_fill_holes(inside[k])
    mask = sitk.GetImageFromArray(inside.astype(np.uint8))
    mask.CopyInformation(image)
    return mask


def _otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of ``values``: the cut that best separates two classes of them."""
    counts, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2.0
    weight = np.cumsum(counts).astype(float)
    total = weight[-1]
    mean = np.cumsum(counts * centres)
    between = (mean[-1] * weight / total - mean) ** 2 / np.maximum(weight * (total - weight), 1.0)
    return float(centres[int(np.argmax(between[:-1]))])


def _quality(
    fixed: _Coarse, moving: _Coarse, transform: sitk.Transform, metric: float
) -> RegistrationQuality:
    identity = sitk.Transform()

    def figures(t: sitk.Transform) -> tuple[float, float]:
        image = sitk.Resample(moving.image, fixed.image, t, sitk.sitkLinear, 0.0)
        body = sitk.Resample(moving.body, fixed.body, t, sitk.sitkNearestNeighbor, 0)
        inside = sitk.GetArrayViewFromImage(fixed.body).astype(bool)
        a = sitk.GetArrayViewFromImage(fixed.image)[inside].astype(float)
        b = sitk.GetArrayViewFromImage(image)[inside].astype(float)
        a, b = a - a.mean(), b - b.mean()
        ncc = float((a * b).sum() / max(np.sqrt((a * a).sum() * (b * b).sum()), 1e-12))
        other = sitk.GetArrayViewFromImage(body).astype(bool)
        dice = 2.0 * float((inside & other).sum()) / max(float(inside.sum() + other.sum()), 1.0)
        return ncc, dice

    ncc_before, dice_before = figures(identity)
    ncc_after, dice_after = figures(transform)
    return RegistrationQuality(
        metric=metric,
        ncc_before=round(ncc_before, 4),
        ncc_after=round(ncc_after, 4),
        body_dice_before=round(dice_before, 4),
        body_dice_after=round(dice_after, 4),
    )
