"""Turn a discovered series (or a file/folder path) into a :class:`Volume`.

Uncompressed slices, nearly every CT and MR on disk, are read straight into the volume's memory
at the pixel offsets discovery found, by two threads: the cost is close to reading the bytes at
all (bench/load_series.py). Compressed slices go through SimpleITK/GDCM, which decodes every
transfer syntax tried here. Geometry is always computed here from the slice positions, never
taken from a reader's guess, so a tilted or gappy stack is resampled (with a warning on the
Volume) instead of being silently sheared.
"""

from __future__ import annotations

import io
import itertools
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from meddiag_desktop.domain import (
    PixelFormat,
    Progress,
    SeriesInfo,
    SeriesKind,
    SliceRef,
    Volume,
    matrix3,
    vector3,
)
from meddiag_desktop.scans import file_formats, multiframe, volume_geometry
from meddiag_desktop.scans.discovery import discover
from meddiag_desktop.scans.errors import ScanError
from meddiag_desktop.scans.slice_geometry import (
    analyse_stack,
    direction_from_orientation,
    resample_to_regular_grid,
)

ProgressCallback = Callable[[Progress], None]


def load(source: SeriesInfo | Path | str, progress: ProgressCallback | None = None) -> Volume:
    """Load a series from :func:`discover`, or the single loadable series at a path."""
    series = source if isinstance(source, SeriesInfo) else _only_loadable(Path(source))
    if not series.loadable:
        where = series.files[0] if series.files else Path(series.key)
        raise ScanError(where, f"cannot be loaded as a volume: {series.reason}")
    if series.kind is SeriesKind.FILE:
        return file_formats.load_file(series.files[0])
    if series.kind is SeriesKind.MULTI_FRAME:
        volume = _load_multiframe(series)
    else:
        volume = _load_stack(series, progress)
    # The last check before anything downstream sees it (file_formats checks its own).
    return volume_geometry.checked(volume, series.files[0] if series.files else series.key)


def _only_loadable(path: Path) -> SeriesInfo:
    if path.is_file() and file_formats.is_volume_file(path):
        return file_formats.describe(path)
    return choose_series(discover(path), None, path)


def choose_series(found: list[SeriesInfo], wanted: str | None, path: Path) -> SeriesInfo:
    """The series a user means: ``wanted`` (a key or UID), or the only loadable one."""
    if wanted:
        matches = [s for s in found if s.key == wanted] or [s for s in found if s.uid == wanted]
        if not matches:
            raise ScanError(path, f"has no series '{wanted}' (see 'meddiag scan {path}')")
        loadable = [s for s in matches if s.loadable]
        return loadable[0] if loadable else matches[0]
    loadable = [s for s in found if s.loadable]
    if len(loadable) == 1:
        return loadable[0]
    if not loadable:
        reasons = "; ".join(f"{s.description or s.key}: {s.reason}" for s in found[:3])
        raise ScanError(path, f"holds no series that can be loaded as a 3-D volume ({reasons})")
    keys = ", ".join(s.key for s in loadable[:6])
    raise ScanError(path, f"holds {len(loadable)} loadable series; pick one ({keys})")


def _stored_dtype(fmt: PixelFormat) -> np.dtype:
    kinds = {8: "i1", 16: "i2", 32: "i4"} if fmt.signed else {8: "u1", 16: "u2", 32: "u4"}
    if fmt.bits_allocated not in kinds:
        raise ScanError("", f"{fmt.bits_allocated}-bit pixels are not supported")
    return np.dtype("<" + kinds[fmt.bits_allocated])


def _load_stack(series: SeriesInfo, progress: ProgressCallback | None) -> Volume:
    fmt = series.pixel_format
    slices = series.slices
    if fmt is None or not slices:
        raise ScanError(series.files[0], "series has no slice information")
    if all(s.pixel_offset >= 0 for s in slices):
        try:
            values = _read_raw(slices, fmt, progress, _int16_in_place(slices, fmt))
        except _DoesNotFitInt16:
            stored = _read_raw(slices, fmt, progress)
            values = _to_scanner_units(_mask_unused_bits(stored, fmt), slices)
    else:
        values = _decode(slices, fmt, progress)
    return _assemble(
        series,
        values,
        [s.position_lps_mm for s in slices],
        series.orientation,
        (series.spacing_xyz_mm[0], series.spacing_xyz_mm[1]),
    )


def _read_raw(
    slices: tuple[SliceRef, ...],
    fmt: PixelFormat,
    progress: ProgressCallback | None,
    per_slice: Callable[[np.ndarray, SliceRef], None] | None = None,
) -> np.ndarray:
    """Read each slice's bytes straight into the volume; ``per_slice`` then converts each block
    in place while it is still in the CPU cache (one pass over memory instead of three).

    Without ``per_slice`` the array has the stored type; with it, int16.
    """
    dtype = _stored_dtype(fmt) if per_slice is None else np.dtype("<i2")
    stack = np.empty((len(slices), fmt.rows, fmt.columns), dtype=dtype)
    row_bytes = fmt.columns * dtype.itemsize
    slice_bytes = fmt.rows * row_bytes
    flat = memoryview(stack).cast("B")  # type: ignore[arg-type]
    # Converting a block right after reading it finds it in the CPU cache instead of memory.
    # Blocks of 512 KB (a 512x512 slice) beat 128 KB ones here: a read and two numpy calls
    # per block cost more than the cache misses saved. Without conversion: one read per slice.
    rows_per_block = fmt.rows if per_slice is None else max(1, _BLOCK_BYTES // row_bytes)

    def read_slice(index: int) -> None:
        ref = slices[index]
        base = index * slice_bytes
        try:
            handle = os.open(ref.path, os.O_RDONLY | _O_BINARY)
        except OSError as exc:
            raise ScanError(ref.path, f"cannot be read ({exc.strerror or exc})") from exc
        try:
            for first_row in range(0, fmt.rows, rows_per_block):
                done = first_row * row_bytes
                size = min(rows_per_block * row_bytes, slice_bytes - done)
                got = _read_at(
                    handle, flat[base + done : base + done + size], ref.pixel_offset + done
                )
                if got != size:
                    raise ScanError(
                        ref.path,
                        f"is truncated: pixel data ends after {done + got} of {slice_bytes} bytes",
                    )
                if per_slice is not None:
                    per_slice(stack[index, first_row : first_row + rows_per_block], ref)
        except OSError as exc:
            raise ScanError(ref.path, f"cannot be read ({exc.strerror or exc})") from exc
        finally:
            os.close(handle)

    _share_out(len(slices), read_slice, progress, _threads_for(stack.nbytes, len(slices)))
    return stack


_BLOCK_BYTES = 512 * 1024
_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows would otherwise translate line ends
# Two threads: file reads release the GIL, so copying the bytes splits over two cores. A fresh
# volume also costs page faults (the kernel zeroing its memory: ~12 ms for 157 MB here) that two
# threads barely shorten. Measured on 2 cores only, so no more than 2 are used.
_MAX_THREADS = 2
_THREADED_FROM_BYTES = 8 << 20


def _threads_for(nbytes: int, count: int) -> int:
    if nbytes < _THREADED_FROM_BYTES or count < 4:
        return 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(_MAX_THREADS, usable or 1))


def _pread_into(handle: int, target: memoryview, offset: int) -> int:
    """Fill ``target`` from byte ``offset`` of the file; fewer bytes only at its end."""
    got = 0
    while got < len(target):
        count = os.preadv(handle, [target[got:]], offset + got)
        if count == 0:
            break
        got += count
    return got


def _seek_read_into(handle: int, target: memoryview, offset: int) -> int:
    """:func:`_pread_into` where there is no ``os.preadv`` (Windows)."""
    os.lseek(handle, offset, os.SEEK_SET)
    got = 0
    with io.FileIO(handle, closefd=False) as raw:
        while got < len(target):
            count = raw.readinto(target[got:])
            if not count:
                break
            got += count
    return got


_read_at = _pread_into if hasattr(os, "preadv") else _seek_read_into


def _share_out(
    count: int,
    work: Callable[[int], None],
    progress: ProgressCallback | None,
    threads: int,
) -> None:
    """``work(i)`` for every i in range(count) on ``threads`` threads, the calling one included.

    Each thread takes the next index when it is free, so a core busy with something else slows
    the whole less than a fixed split would. Progress is reported from the calling thread only
    (a GUI callback must not run elsewhere). When work fails, no new index is started and the
    failure of the lowest index is raised: the same error a one-thread loop would raise.
    """
    indices = itertools.count()  # next() on it is atomic under the GIL
    failures: list[tuple[int, BaseException]] = []
    stop = threading.Event()

    def run(report: bool) -> None:
        next_report = next_report_at_start
        while not stop.is_set():
            index = next(indices)
            if index >= count:
                return
            try:
                work(index)
            except BaseException as exc:  # re-raised on the calling thread below
                failures.append((index, exc))
                stop.set()
                return
            if report and progress is not None and index >= next_report:
                # about every 32 slices, whichever thread read the ones in between
                progress(Progress(index / count, "reading slices", f"{index} of {count}"))
                next_report = (index // 32 + 1) * 32

    if progress is not None:
        # Before any helper starts: on a many-core machine the helpers can take every index
        # before the calling thread gets one, and a load would then report nothing and could
        # not be cancelled (seen in CI).
        progress(Progress(0.0, "reading slices", f"0 of {count}"))
        next_report_at_start = 1
    else:
        next_report_at_start = 0
    helpers = [
        threading.Thread(target=run, args=(False,), name="meddiag-read", daemon=True)
        for _ in range(threads - 1)
    ]
    for helper in helpers:
        helper.start()
    try:
        run(True)
    except BaseException:
        stop.set()  # the progress callback raised (a cancel): stop the helpers too
        raise
    finally:
        for helper in helpers:
            helper.join()
    if failures:
        raise min(failures, key=lambda failure: failure[0])[1]


class _DoesNotFitInt16(Exception):
    """A slice's values plus intercept leave the int16 range: use the general path."""


def _int16_in_place(
    slices: tuple[SliceRef, ...], fmt: PixelFormat
) -> Callable[[np.ndarray, SliceRef], None] | None:
    """A per-slice converter to int16 scanner units (the usual CT: slope 1, intercept -1024);
    None when the stored values already are int16 scanner units (nothing to convert); raises
    :class:`_DoesNotFitInt16` when the series needs another type.

    When BitsStored guarantees the range no pass over the data is needed; otherwise each slice
    is checked while in cache and :class:`_DoesNotFitInt16` sends the load to the general path.
    """
    if fmt.bits_allocated != 16 or not 0 < fmt.bits_stored <= 16:
        raise _DoesNotFitInt16
    intercepts = {s.rescale_intercept for s in slices}
    if {s.rescale_slope for s in slices} != {1.0} or any(i != round(i) for i in intercepts):
        raise _DoesNotFitInt16
    if min(intercepts) < -32768 or max(intercepts) > 32767:
        raise _DoesNotFitInt16
    low = -(1 << (fmt.bits_stored - 1)) if fmt.signed else 0
    high = (1 << (fmt.bits_stored - 1)) - 1 if fmt.signed else (1 << fmt.bits_stored) - 1
    check = low + min(intercepts) < -32768 or high + max(intercepts) > 32767
    shift = 16 - fmt.bits_stored
    mask = np.int16((1 << fmt.bits_stored) - 1) if fmt.bits_stored < 16 else None
    if not check and not shift and intercepts == {0.0}:
        return None  # signed 16-bit values without intercept: the bytes are the result

    def convert(plane: np.ndarray, ref: SliceRef) -> None:
        if shift and fmt.signed:
            np.left_shift(plane, shift, out=plane)
            np.right_shift(plane, shift, out=plane)  # arithmetic shift restores the sign
        elif mask is not None:
            np.bitwise_and(plane, mask, out=plane)  # drop overlay/garbage bits above BitsStored
        intercept = int(ref.rescale_intercept)
        if check:
            stored = plane if fmt.signed else plane.view(np.uint16)
            if int(stored.min()) + intercept < -32768 or int(stored.max()) + intercept > 32767:
                raise _DoesNotFitInt16
        if intercept:
            plane += np.int16(intercept)

    return convert


def _mask_unused_bits(stack: np.ndarray, fmt: PixelFormat) -> np.ndarray:
    """Bits above BitsStored may hold overlays or garbage; keep only the stored bits."""
    if fmt.bits_stored >= fmt.bits_allocated or fmt.bits_stored <= 0:
        return stack
    if fmt.signed:
        shift = fmt.bits_allocated - fmt.bits_stored
        np.left_shift(stack, shift, out=stack)
        np.right_shift(stack, shift, out=stack)  # arithmetic shift restores the sign
        return stack
    limit = (1 << fmt.bits_stored) - 1
    if stack.max() > limit:
        np.bitwise_and(stack, limit, out=stack)
    return stack


def _to_scanner_units(stack: np.ndarray, slices: tuple[SliceRef, ...]) -> np.ndarray:
    """Apply rescale slope/intercept (CT -> HU) in the smallest type that holds the result."""
    slopes = np.array([s.rescale_slope for s in slices])
    intercepts = np.array([s.rescale_intercept for s in slices])
    if np.all(slopes == 1) and np.all(intercepts == np.round(intercepts)):
        if np.all(intercepts == 0) and stack.dtype in (np.int16, np.uint8, np.int8):
            return stack
        low, high = int(stack.min()), int(stack.max())
        lo_out, hi_out = low + int(intercepts.min()), high + int(intercepts.max())
        fits_int16 = lo_out >= -32768 and hi_out <= 32767
        if fits_int16 and stack.dtype == np.int16 and np.all(intercepts == intercepts[0]):
            stack += np.int16(intercepts[0])  # in place: no second copy of the volume
            return stack
        if fits_int16:
            out = stack.astype(np.int16)
            out += intercepts.astype(np.int16)[:, None, None]
            return out
        out32 = stack.astype(np.int32)
        out32 += intercepts.astype(np.int32)[:, None, None]
        return out32
    scaled = stack.astype(np.float32)
    scaled *= slopes.astype(np.float32)[:, None, None]
    scaled += intercepts.astype(np.float32)[:, None, None]
    return scaled


def _decode(
    slices: tuple[SliceRef, ...], fmt: PixelFormat, progress: ProgressCallback | None
) -> np.ndarray:
    """Compressed slices: SimpleITK/GDCM decodes and applies the rescale itself."""
    planes = []
    for index, ref in enumerate(slices):
        try:
            image = sitk.ReadImage(str(ref.path))
        except RuntimeError as exc:
            raise ScanError(
                ref.path,
                "pixel data could not be decoded (damaged file or "
                f"unsupported compression {fmt.transfer_syntax})",
            ) from exc
        plane = sitk.GetArrayFromImage(image)
        if plane.ndim != 3 or plane.shape[1:] != (fmt.rows, fmt.columns):
            raise ScanError(
                ref.path,
                f"decoded to shape {plane.shape}, expected one "
                f"{fmt.rows}x{fmt.columns} greyscale slice",
            )
        planes.append(plane[0])
        if progress is not None and index % 8 == 0:
            progress(Progress(index / len(slices), "decoding slices", f"{index} of {len(slices)}"))
    return _compact(np.stack(planes))


def _compact(stack: np.ndarray) -> np.ndarray:
    """SimpleITK decodes to int32 or float64 where int16 or float32 hold the values: use those,
    so a compressed series takes the memory (and type) of the same series uncompressed."""
    if stack.dtype == np.float64:
        return stack.astype(np.float32)
    wide_int = stack.dtype.itemsize > 2 and stack.dtype.kind in "iu" and stack.size > 0
    if wide_int and int(stack.min()) >= -32768 and int(stack.max()) <= 32767:
        return stack.astype(np.int16)
    return stack


def _load_multiframe(series: SeriesInfo) -> Volume:
    values, plan, _ds = multiframe.load(series)
    volume = _assemble(
        series, values, list(plan.positions), plan.orientation, plan.pixel_spacing_xy
    )
    return Volume(
        array_zyx=volume.array_zyx,
        spacing_xyz_mm=volume.spacing_xyz_mm,
        origin_lps_mm=volume.origin_lps_mm,
        direction_lps=volume.direction_lps,
        metadata=volume.metadata,
        warnings=tuple(dict.fromkeys((*series.warnings, *plan.warnings, *volume.warnings))),
        source=volume.source,
    )


def _assemble(
    series: SeriesInfo,
    values: np.ndarray,
    positions: list[tuple[float, float, float]],
    orientation: tuple[float, ...],
    pixel_spacing_xy: tuple[float, float],
) -> Volume:
    """Geometry from positions; irregular stacks are resampled onto a regular grid."""
    geometry = analyse_stack(positions, orientation)
    origin = positions[0]
    if len(positions) == 1:
        spacing_z = series.spacing_xyz_mm[2] or 1.0
    elif geometry.regular:
        spacing_z = geometry.spacing_mm
    else:
        fill = float(values.min())
        values, origin = resample_to_regular_grid(
            values, positions, orientation, pixel_spacing_xy, geometry.spacing_mm, fill
        )
        spacing_z = geometry.spacing_mm
    spacing = (pixel_spacing_xy[0], pixel_spacing_xy[1], spacing_z)
    direction = direction_from_orientation(orientation)
    _check_geometry(series, spacing, origin, direction)
    return Volume(
        array_zyx=values,
        spacing_xyz_mm=spacing,
        origin_lps_mm=vector3(origin),
        direction_lps=matrix3(direction),
        metadata=series.metadata,
        warnings=series.warnings,
        source=str(series.files[0].parent if series.files else ""),
    )


def _check_geometry(
    series: SeriesInfo,
    spacing: tuple[float, ...],
    origin: tuple[float, ...],
    direction: tuple[float, ...],
) -> None:
    """Refuse a volume whose geometry is not finite: discovery leaves unusable slices out,
    and this is the last gate before a NaN spacing would reach a NIfTI file, the model's
    resampling or a NOT NULL column."""
    values = np.asarray([*spacing, *origin, *direction], dtype=float)
    if np.all(np.isfinite(values)) and min(spacing) > 0:
        return
    where = series.files[0] if series.files else Path(series.key)
    shown = "x".join(f"{v:g}" for v in spacing)
    raise ScanError(
        where,
        f"series geometry is not usable (spacing {shown} mm, origin {vector3(origin)}): "
        "a slice position or orientation is damaged",
    )
