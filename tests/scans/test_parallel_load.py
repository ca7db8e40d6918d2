"""Uncompressed series are read by two threads (see loading._read_raw): the volume, the error
for a damaged slice and the progress reports must be what one thread gives."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pydicom
import pytest

from meddiag_desktop.domain import Progress
from meddiag_desktop.scans import ScanError, discover, load
from meddiag_desktop.scans import loading as loading_module

SLICES = 40
SHAPE = (256, 512)  # 40 slices of 256 KB: 10 MB, above the size read with threads


@pytest.fixture
def big_series(tmp_path: Path, write_series) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(3)
    values = rng.integers(-1024, 3072, size=(SLICES, *SHAPE), dtype=np.int16)
    positions = [(0.0, 0.0, float(z)) for z in range(SLICES)]
    write_series(tmp_path / "big", positions[::-1], slices=values[::-1], shape=SHAPE)
    assert values.nbytes >= loading_module._THREADED_FROM_BYTES
    return tmp_path / "big", values


def test_threads_are_used_and_values_are_exact(big_series, monkeypatch) -> None:
    folder, values = big_series
    started = []
    original = threading.Thread.start

    def counting_start(self: threading.Thread) -> None:
        started.append(self.name)
        original(self)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    volume = load(folder)
    if loading_module._threads_for(values.nbytes, SLICES) > 1:
        assert "meddiag-read" in started
    assert volume.array_zyx.dtype == np.int16
    assert np.array_equal(volume.array_zyx, values)


@pytest.mark.parametrize("block_rows", [None, 100], ids=["one-block-a-slice", "uneven-blocks"])
def test_rescale_in_place_with_threads(big_series, monkeypatch, block_rows: int | None) -> None:
    """Unsigned 12-bit with overlay bits and intercept -1024, converted block by block (also
    in blocks of 100 rows: two full ones and a short one per slice)."""
    folder, _values = big_series
    if block_rows:
        monkeypatch.setattr(loading_module, "_BLOCK_BYTES", block_rows * SHAPE[1] * 2)
    rng = np.random.default_rng(4)
    stored = rng.integers(0, 4096, size=(SLICES, *SHAPE), dtype=np.uint16)
    stored |= np.uint16(0xF000)  # garbage above BitsStored
    reads = []
    original = loading_module._read_at
    monkeypatch.setattr(
        loading_module, "_read_at", lambda *args: reads.append(len(args[1])) or original(*args)
    )
    for path in sorted(folder.iterdir()):
        ds = pydicom.dcmread(path)
        z = int(float(ds.ImagePositionPatient[2]))
        ds.PixelRepresentation, ds.BitsStored, ds.HighBit, ds.RescaleIntercept = 0, 12, 11, -1024
        ds.PixelData = stored[z].tobytes()
        ds.save_as(path, enforce_file_format=True)
    volume = load(folder)
    expected_reads = 3 * SLICES if block_rows else SLICES
    assert len(reads) == expected_reads
    expected = (stored & 0x0FFF).astype(np.int16) - 1024
    assert volume.array_zyx.dtype == np.int16
    assert np.array_equal(volume.array_zyx, expected)


def test_the_first_damaged_slice_is_named(big_series) -> None:
    """Two slices cut after discovery: the error names the first, as one thread would."""
    folder, _values = big_series
    series = next(s for s in discover(folder) if s.loadable)
    first, second = series.slices[7].path, series.slices[31].path
    for victim in (second, first):
        with open(victim, "r+b") as handle:
            handle.truncate(victim.stat().st_size - 1000)
    for _ in range(5):
        with pytest.raises(ScanError) as caught:
            load(series)
        assert caught.value.path == first
        assert "truncated" in caught.value.reason


def test_progress_is_reported_on_the_calling_thread(big_series) -> None:
    folder, _values = big_series
    series = next(s for s in discover(folder) if s.loadable)
    seen: list[tuple[int, Progress]] = []
    load(series, progress=lambda p: seen.append((threading.get_ident(), p)))
    assert seen
    assert {ident for ident, _ in seen} == {threading.get_ident()}
    assert all(0.0 <= p.fraction < 1.0 for _, p in seen)


def test_a_progress_callback_that_raises_stops_the_load(big_series) -> None:
    """A GUI cancels by raising from its progress callback: no reader thread stays behind."""
    folder, _values = big_series
    series = next(s for s in discover(folder) if s.loadable)

    class Cancelled(Exception):
        pass

    def cancel(_progress: Progress) -> None:
        raise Cancelled

    with pytest.raises(Cancelled):
        load(series, progress=cancel)
    assert not [t for t in threading.enumerate() if t.name == "meddiag-read"]


def test_small_series_forced_onto_threads_load_alike(tmp_path: Path, write_series, monkeypatch):
    """The threaded path on small series too (every slice a different value)."""
    positions = [(0.0, 0.0, float(z)) for z in range(9)]
    write_series(tmp_path / "s", positions, shape=(3, 5))
    single = load(tmp_path / "s").array_zyx
    monkeypatch.setattr(loading_module, "_THREADED_FROM_BYTES", 0)
    monkeypatch.setattr(loading_module, "_threads_for", lambda nbytes, count: 2)
    threaded = load(tmp_path / "s").array_zyx
    assert np.array_equal(single, threaded)
    assert threaded[:, 0, 0].tolist() == list(range(9))


@pytest.mark.parametrize("read_at", ["_pread_into", "_seek_read_into"])
def test_both_ways_of_reading_at_an_offset(tmp_path: Path, read_at: str) -> None:
    """os.preadv where it exists; seek + readinto elsewhere (Windows)."""
    path = tmp_path / "bytes"
    path.write_bytes(bytes(range(256)) * 4)
    function = getattr(loading_module, read_at)
    handle = os.open(path, os.O_RDONLY)
    try:
        target = bytearray(100)
        assert function(handle, memoryview(target), 10) == 100
        assert bytes(target) == (bytes(range(256)) * 4)[10:110]
        assert function(handle, memoryview(target), 1000) == 24  # the end of the file
        assert bytes(target[:24]) == (bytes(range(256)) * 4)[1000:]
    finally:
        os.close(handle)


def test_a_cancel_is_heard_even_when_helpers_take_every_slice(big_series, monkeypatch) -> None:
    """On a many-core machine the helpers may read every slice before the calling thread gets
    one (seen in CI): the load must still report progress, and so still be cancellable."""
    folder, _values = big_series
    series = next(s for s in discover(folder) if s.loadable)
    monkeypatch.setattr(loading_module, "_threads_for", lambda nbytes, count: 4)
    original = threading.Thread.start

    def start_and_finish(self: threading.Thread) -> None:
        original(self)
        self.join()  # each helper runs to the end before the calling thread goes on

    monkeypatch.setattr(threading.Thread, "start", start_and_finish)
    seen: list[Progress] = []
    load(series, progress=seen.append)
    assert seen, "no progress reported"

    class Cancelled(Exception):
        pass

    def cancel(_progress: Progress) -> None:
        raise Cancelled

    with pytest.raises(Cancelled):
        load(series, progress=cancel)
