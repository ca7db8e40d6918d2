"""How close loading a CT series comes to the least work any loader must do.

Writes a synthetic 512x512xN int16 CT series (a chest-like phantom) with the project's DICOM
writer, then measures, in one run and as medians over repeats after a warm-up (so every file is
in the page cache):

- floor: reading the same files' bytes into a reused buffer (what any reader must at least do),
  with one thread; the same with two threads is shown beside it, since load() reads with two;
- discovery floor: listing the folder and reading the first 4 KB of each file (os.open, os.read,
  os.close), what any discovery must at least do;
- discover(folder), load(series), load(series) on one thread, and SimpleITK's
  ImageSeriesReader for reference.

Targets: load <= 1.5x the floor; discovery < 20% of discover + load. Not part of the test suite.

    .venv/bin/python bench/load_series.py [--slices 300] [--repeats 7] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import SimpleITK as sitk

from meddiag_desktop.domain import ScanMetadata, SeriesInfo, SeriesKind, Volume
from meddiag_desktop.scans import dicom_header, discover, load
from meddiag_desktop.scans import loading as loading_module
from meddiag_desktop.scans.dicom_series_writer import write_dicom_series

SIZE = 512
SPACING_XYZ_MM = (0.7, 0.7, 1.0)
LOAD_TARGET = 1.5
DISCOVERY_TARGET = 0.20


def phantom(slices: int, seed: int = 0) -> np.ndarray:
    """A chest-like int16 CT: air, a soft-tissue body with a fat rim, two lungs, a spine, noise.

    Built slice by slice so it never needs a float copy of the whole volume.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    cy, cx = SIZE / 2, SIZE / 2

    def ellipse(y0: float, x0: float, ry: float, rx: float) -> np.ndarray:
        return ((yy - y0) / ry) ** 2 + ((xx - x0) / rx) ** 2 <= 1.0

    body = ellipse(cy, cx, 170, 230)
    inner = ellipse(cy, cx, 160, 218)
    spine = ellipse(cy + 110, cx, 28, 24)
    table = (yy > cy + 185) & (yy < cy + 195) & (np.abs(xx - cx) < 240)
    volume = np.empty((slices, SIZE, SIZE), dtype=np.int16)
    for k in range(slices):
        t = k / max(slices - 1, 1)  # 0 at the feet end, 1 at the head end
        lung_scale = max(0.0, np.sin(np.pi * min(1.0, t * 1.3))) ** 0.5
        plane = np.full((SIZE, SIZE), -1000.0, dtype=np.float32)
        plane[table] = 200.0
        plane[body] = -100.0  # subcutaneous fat
        plane[inner] = 40.0  # soft tissue
        if lung_scale > 0.05:
            for side in (-1, 1):
                lung = ellipse(cy - 10, cx + side * 95, 115 * lung_scale, 70 * lung_scale)
                plane[lung] = -850.0
        plane[spine] = 700.0
        plane += rng.standard_normal((SIZE, SIZE), dtype=np.float32) * 15.0
        volume[k] = np.clip(np.rint(plane), -1024, 3071)
    return volume


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


def time_once(function: Callable[[], object]) -> tuple[float, object]:
    gc.collect()
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def read_floor(paths: list[Path], buffer: bytearray, offsets: list[int]) -> int:
    """Read every file whole into its own place in one buffer that is reused across repeats."""
    view = memoryview(buffer)
    total = 0
    for path, offset in zip(paths, offsets, strict=True):
        with open(path, "rb", buffering=0) as handle:
            total += handle.readinto(view[offset:])
    return total


def read_floor_threads(
    paths: list[Path], buffer: bytearray, offsets: list[int], threads: int = 2
) -> int:
    """read_floor shared by ``threads`` threads, each taking the next file when free."""
    view = memoryview(buffer)
    files = itertools.count()
    totals = [0] * threads

    def run(slot: int) -> None:
        while (index := next(files)) < len(paths):
            with open(paths[index], "rb", buffering=0) as handle:
                totals[slot] += handle.readinto(view[offsets[index] :])

    helpers = [threading.Thread(target=run, args=(slot,)) for slot in range(1, threads)]
    for helper in helpers:
        helper.start()
    run(0)
    for helper in helpers:
        helper.join()
    return sum(totals)


def discovery_floor(folder: Path) -> int:
    """List the folder and read the first 4 KB of every file: what any discovery must do."""
    total = 0
    for name in sorted(os.listdir(folder)):
        handle = os.open(os.path.join(folder, name), os.O_RDONLY)
        try:
            total += len(os.read(handle, 4096))
        finally:
            os.close(handle)
    return total


def first_discovery(folder: Path) -> list[SeriesInfo]:
    """discover() as on a folder never seen: without the parsed decimal texts (positions)
    that the header module keeps from earlier calls."""
    dicom_header._DECIMALS.clear()
    return discover(folder)


@contextlib.contextmanager
def one_reader_thread() -> Iterator[None]:
    """load() as it would be with a single thread (to show what the second one brings)."""
    saved = getattr(loading_module, "_MAX_THREADS", 1)  # older versions read on one thread
    loading_module._MAX_THREADS = 1
    try:
        yield
    finally:
        loading_module._MAX_THREADS = saved


def read_floor_small(paths: list[Path], buffer: bytearray) -> int:
    """The same bytes into one file-sized (cache-resident) buffer: no memory traffic at all."""
    total = 0
    for path in paths:
        with open(path, "rb", buffering=0) as handle:
            total += handle.readinto(buffer)
    return total


def first_touch(shape: tuple[int, int, int]) -> np.ndarray:
    """Allocate and write a fresh volume-sized array: the page-fault cost every load pays."""
    array = np.empty(shape, dtype=np.int16)
    array.fill(0)
    return array


def simpleitk_read(paths: list[Path]) -> tuple[sitk.Image, np.ndarray]:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(p) for p in paths])
    reader.SetOutputPixelType(sitk.sitkInt16)
    image = reader.Execute()
    return image, sitk.GetArrayViewFromImage(image)  # keep the image: the view reads its memory


def machine_facts() -> dict[str, object]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable,
        "cpu_model": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pydicom": pydicom.__version__,
        "SimpleITK": sitk.Version.VersionString(),
    }


def rescaled_copy(paths: list[Path], folder: Path, written: np.ndarray) -> np.ndarray:
    """The series as most CT scanners store it: unsigned 12-bit (BitsStored 12) with
    RescaleIntercept -1024, so load() converts every block in place. Returns its HU values."""
    folder.mkdir(parents=True)
    stored = (np.clip(written, -1024, 3071).astype(np.int32) + 1024).astype("<u2")
    for index, path in enumerate(paths):  # paths are in slice order, as written
        ds = pydicom.dcmread(path)
        ds.PixelRepresentation, ds.BitsStored, ds.HighBit = 0, 12, 11
        ds.RescaleIntercept = -1024
        ds.PixelData = stored[index].tobytes()
        ds.save_as(folder / path.name, enforce_file_format=True)
    return stored.astype(np.int16) - 1024


def run(slices: int, repeats: int, folder: Path, rescaled: bool = False) -> dict[str, Any]:
    written = phantom(slices)
    volume = Volume(
        written,
        SPACING_XYZ_MM,
        (-SIZE * SPACING_XYZ_MM[0] / 2, -SIZE * SPACING_XYZ_MM[1] / 2, -slices / 2),
        metadata=ScanMetadata(modality="CT", patient_name="Bench^Phantom", patient_id="BENCH"),
    )
    write_s, _ = time_once(
        lambda: write_dicom_series(volume, folder, series_description="Bench chest phantom")
    )
    os.sync()  # no writeback of dirty pages during the measurements

    found = discover(folder)
    series = next(s for s in found if s.kind is SeriesKind.VOLUME)
    paths = [ref.path for ref in series.slices]
    sizes = [p.stat().st_size for p in paths]
    offsets = [sum(sizes[:i]) for i in range(len(sizes))]
    big_buffer = bytearray(sum(sizes))
    small_buffer = bytearray(max(sizes))
    shape = written.shape

    def do_load(info: SeriesInfo = series) -> Volume:
        return load(info)

    def do_load_one_thread(info: SeriesInfo = series) -> Volume:
        with one_reader_thread():
            return load(info)

    rescaled_values = None
    if rescaled:
        rescaled_folder = folder.parent / "rescaled"
        rescaled_values = rescaled_copy(paths, rescaled_folder, written)
        os.sync()
        rescaled_series = next(s for s in discover(rescaled_folder) if s.kind is SeriesKind.VOLUME)

    measurements: dict[str, Callable[[], object]] = {
        "floor": lambda: read_floor(paths, big_buffer, offsets),
        "floor_2_threads": lambda: read_floor_threads(paths, big_buffer, offsets),
        "floor_small_buffer": lambda: read_floor_small(paths, small_buffer),
        "first_touch": lambda: first_touch(shape),
        "discovery_floor": lambda: discovery_floor(folder),
        "discover": lambda: first_discovery(folder),
        "load": do_load,
        "load_1_thread": do_load_one_thread,
        "simpleitk": lambda: simpleitk_read(paths),
    }
    if rescaled:
        measurements["load_rescaled"] = lambda: load(rescaled_series)
    samples: dict[str, list[float]] = {name: [] for name in measurements}
    results: dict[str, object] = {}
    for round_index in range(repeats + 1):  # round 0 warms the page cache and imports
        for name, function in measurements.items():
            seconds, result = time_once(function)
            if round_index > 0:
                samples[name].append(seconds)
            results[name] = result
            del result
    loaded = results["load"]
    assert isinstance(loaded, Volume)
    loaded_one_thread = results["load_1_thread"]
    assert isinstance(loaded_one_thread, Volume)
    rescaled_check: dict[str, bool] = {}
    if rescaled_values is not None:
        loaded_rescaled = results["load_rescaled"]
        assert isinstance(loaded_rescaled, Volume)
        rescaled_check["load_rescaled_equals_hu"] = bool(
            np.array_equal(loaded_rescaled.array_zyx, rescaled_values)
        )
    sitk_result = results["simpleitk"]
    assert isinstance(sitk_result, tuple)
    sitk_array: np.ndarray = sitk_result[1]
    exact = {name: median_ms(values) for name, values in samples.items()}
    figures = {name: round(value) for name, value in exact.items()}
    floor, disc, load_ms = exact["floor"], exact["discover"], exact["load"]
    return {
        "machine": machine_facts(),
        "series": {
            "slices": slices,
            "rows": SIZE,
            "columns": SIZE,
            "files": len(paths),
            "bytes": sum(sizes),
            "pixel_bytes": int(written.nbytes),
            "write_ms": round(write_s * 1000),
            "repeats": repeats,
        },
        "median_ms": figures,
        "min_ms": {name: round(min(values) * 1000) for name, values in samples.items()},
        "ratios": ratios(exact),
        # Minima are less disturbed by other processes on a shared machine; shown beside.
        "ratios_of_min": ratios({name: min(values) for name, values in samples.items()}),
        "checks": {
            "load_equals_written": bool(np.array_equal(loaded.array_zyx, written)),
            "load_1_thread_equals_written": bool(
                np.array_equal(loaded_one_thread.array_zyx, written)
            ),
            "load_dtype": str(loaded.array_zyx.dtype),
            "simpleitk_equals_written": bool(np.array_equal(sitk_array, written)),
            **rescaled_check,
            "discovered_series": len(found),
        },
        "targets": {
            "load/floor <= 1.5": load_ms / floor <= LOAD_TARGET,
            "discover/(discover+load) < 0.20": disc / (disc + load_ms) < DISCOVERY_TARGET,
        },
    }


def ratios(ms: dict[str, float]) -> dict[str, float]:
    floor, disc, load_ms = ms["floor"], ms["discover"], ms["load"]
    return {
        "load/floor": round(load_ms / floor, 2),
        "load/floor_2_threads": round(load_ms / ms["floor_2_threads"], 2),
        "load_1_thread/floor": round(ms["load_1_thread"] / floor, 2),
        "discover/discovery_floor": round(disc / ms["discovery_floor"], 2),
        "discover/load": round(disc / load_ms, 2),
        "discover/(discover+load)": round(disc / (disc + load_ms), 2),
        "(discover+load)/floor": round((disc + load_ms) / floor, 2),
        "simpleitk/floor": round(ms["simpleitk"] / floor, 2),
        **(
            {"load_rescaled/floor": round(ms["load_rescaled"] / floor, 2)}
            if "load_rescaled" in ms
            else {}
        ),
    }


def print_report(report: dict[str, Any]) -> None:
    machine, series, ms = report["machine"], report["series"], report["median_ms"]
    print(
        f"machine: {machine['cpu_count']} CPUs ({machine['usable_cpus']} usable) "
        f"{machine['cpu_model']}; {machine['platform']}"
    )
    print(
        f"python {machine['python']}, numpy {machine['numpy']}, pydicom {machine['pydicom']}, "
        f"SimpleITK {machine['SimpleITK']}"
    )
    print(
        f"series: {series['files']} files of {series['rows']}x{series['columns']} int16, "
        f"{series['bytes'] / 1e6:.1f} MB ({series['pixel_bytes'] / 1e6:.1f} MB pixels); "
        f"written in {series['write_ms']} ms; medians of {series['repeats']} repeats after a "
        "warm-up"
    )
    labels = {
        "floor": "floor (file bytes -> reused volume-sized buffer)",
        "floor_2_threads": "floor, two threads",
        "floor_small_buffer": "floor, one file-sized buffer (no memory traffic)",
        "first_touch": "first touch of a fresh volume-sized array",
        "discovery_floor": "discovery floor (list, open+read 4 KB+close each)",
        "discover": "discover(folder)",
        "load": "load(series)",
        "load_1_thread": "load(series) on one thread",
        "simpleitk": "SimpleITK ImageSeriesReader (int16)",
        "load_rescaled": "load(series), 12-bit unsigned + intercept -1024 copy",
    }
    for name, label in labels.items():
        if name not in ms:
            continue
        print(f"  {label:<52} {ms[name]:>6} ms   (min {report['min_ms'][name]} ms)")
    print(f"  {'ratio':<52} {'median':>6}  {'(of minima)':>11}")
    for name, value in report["ratios"].items():
        print(f"  {name:<52} {value:>6.2f}  {report['ratios_of_min'][name]:>11.2f}")
    for name, ok in report["targets"].items():
        print(f"  target {name:<45} {'met' if ok else 'MISSED'}")
    for name, value in report["checks"].items():
        print(f"  check {name:<46} {value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the temporary series")
    parser.add_argument(
        "--rescaled",
        action="store_true",
        help="also load a copy stored as most CT is (12-bit unsigned, intercept -1024)",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="meddiag-bench-", dir=args.dir) as folder:
        report = run(args.slices, max(1, args.repeats), Path(folder) / "series", args.rescaled)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    checks = report["checks"]
    loads = ("load_equals_written", "load_1_thread_equals_written", "load_rescaled_equals_hu")
    return 0 if all(checks.get(name, True) for name in loads) else 1


if __name__ == "__main__":
    sys.exit(main())
