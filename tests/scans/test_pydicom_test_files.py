"""Every DICOM test file pydicom (and pydicom-data) ships, and damaged copies of them, must
discover and load or fail with a ScanError: never another exception, a native crash or a hang.

The sweep runs in child processes, a few hundred files each, with a watchdog per file: a crash
(SIGSEGV/SIGABRT in a decoder) or a hang is caught and reported with the file's name, and the
sweep carries on after it.
"""

from __future__ import annotations

import json
import os
import queue
import random
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
import pytest

from meddiag_desktop.domain import SeriesKind
from meddiag_desktop.scans import discover, load

REPO_ROOT = Path(__file__).resolve().parents[2]
PER_FILE_TIMEOUT_S = 30.0  # a hang
SLOW_FILE_S = 10.0  # PITFALLS: SimpleITK spent 39 s on one corrupt file
CHUNK = 200
WORKERS = 2

# One child: for each path read from stdin (JSON list), print START, discover and load every
# loadable series, print END with the outcome. stdout carries only these lines.
SWEEP = r"""
import json, sys, time, traceback, warnings
warnings.simplefilter("ignore")
import logging
logging.disable(logging.CRITICAL)
from meddiag_desktop.scans import ScanError, discover, load

for path in json.load(sys.stdin):
    print("START", json.dumps(path), flush=True)
    started = time.perf_counter()
    outcome = {"path": path, "loaded": 0, "refused": 0}
    try:
        for series in discover(path):
            if not series.loadable:
                continue
            try:
                volume = load(series)
            except ScanError:
                outcome["refused"] += 1
            else:
                assert volume.array_zyx.ndim == 3
                outcome["loaded"] += 1
        outcome["status"] = "ok"
    except ScanError as exc:
        outcome["status"] = "scan_error"
        outcome["message"] = str(exc)[:300]
    except BaseException as exc:
        outcome["status"] = "unexpected"
        outcome["message"] = f"{type(exc).__name__}: {exc}"[:300]
        outcome["traceback"] = traceback.format_exc(limit=4)[-1500:]
    outcome["seconds"] = time.perf_counter() - started
    print("END", json.dumps(outcome), flush=True)
"""


@dataclass
class SweepReport:
    outcomes: list[dict] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)  # "path: how"
    hangs: list[str] = field(default_factory=list)

    @property
    def unexpected(self) -> list[str]:
        return [
            f"{o['path']}: {o['message']}\n{o.get('traceback', '')}"
            for o in self.outcomes
            if o["status"] == "unexpected"
        ]

    @property
    def slow(self) -> list[str]:
        return [
            f"{o['path']}: {o['seconds']:.1f} s"
            for o in self.outcomes
            if o["seconds"] > SLOW_FILE_S
        ]

    def problems(self) -> str:
        parts = []
        for title, items in (
            ("crashed", self.crashes),
            ("hung", self.hangs),
            ("raised something other than ScanError", self.unexpected),
            (f"took over {SLOW_FILE_S:.0f} s", self.slow),
        ):
            if items:
                parts.append(f"{len(items)} file(s) {title}:\n  " + "\n  ".join(items))
        return "\n".join(parts)


def _run_chunk(paths: list[str], report: SweepReport, lock: threading.Lock) -> None:
    """Sweep ``paths`` in a child; after a crash or hang, go on in a new child after that file."""
    remaining = list(paths)
    python_path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": python_path, "PYTHONFAULTHANDLER": "1"}
    while remaining:
        child = subprocess.Popen(
            [sys.executable, "-c", SWEEP],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
            env=env,
        )
        lines: queue.Queue[str | None] = queue.Queue()
        stderr_tail: list[str] = []

        def pump(child=child, lines=lines) -> None:
            for line in child.stdout:
                lines.put(line)
            lines.put(None)

        def drain(child=child, tail=stderr_tail) -> None:
            tail.extend(child.stderr.read().splitlines()[-20:])

        threads = [threading.Thread(target=f, daemon=True) for f in (pump, drain)]
        for thread in threads:
            thread.start()
        child.stdin.write(json.dumps(remaining))
        child.stdin.close()

        current: str | None = None  # started, not yet ended
        finished = 0
        hung = False
        while True:
            # The first file also waits for the child's imports.
            wait_s = PER_FILE_TIMEOUT_S + (60 if finished == 0 else 0)
            try:
                line = lines.get(timeout=wait_s)
            except queue.Empty:
                hung = True
                child.kill()
                break
            if line is None:
                break
            kind, _, payload = line.rstrip("\n").partition(" ")
            if kind == "START":
                current = json.loads(payload)
            elif kind == "END":
                outcome = json.loads(payload)
                with lock:
                    report.outcomes.append(outcome)
                finished += 1
                current = None
        code = child.wait()
        for thread in threads:
            thread.join(timeout=5)
        culprit = current or "(between files)"
        with lock:
            if hung:
                report.hangs.append(f"{culprit}: no answer in {PER_FILE_TIMEOUT_S:.0f} s")
                if current is None:
                    return  # not a file's fault: trying again would hang again
            elif current is not None:
                signal = f" (signal {-code})" if code < 0 else ""
                detail = " | ".join(stderr_tail[-3:])
                report.crashes.append(f"{culprit}: exit code {code}{signal}; {detail}")
            elif finished < len(remaining):
                detail = " | ".join(stderr_tail[-5:])
                report.crashes.append(f"(child) stopped with exit code {code}: {detail}")
                return
        remaining = remaining[finished + (1 if current is not None else 0) :]


def sweep(paths: list[str]) -> SweepReport:
    report = SweepReport()
    lock = threading.Lock()
    chunks = [paths[i : i + CHUNK] for i in range(0, len(paths), CHUNK)]
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for future in [pool.submit(_run_chunk, chunk, report, lock) for chunk in chunks]:
            future.result()
    return report


def bundled_test_files() -> list[Path]:
    """pydicom's test files, plus pydicom-data's when installed (get_testdata_files finds both)."""
    found = {Path(p) for p in pydicom.data.get_testdata_files()}
    package_folder = Path(pydicom.__file__).parent / "data" / "test_files"
    found |= {p for p in package_folder.rglob("*") if p.is_file() and p.suffix != ".py"}
    return sorted(found)


@pytest.mark.slow
def test_sweep_harness_reports_crashes_and_hangs(tmp_path: Path, monkeypatch) -> None:
    """The harness itself: a file that kills the child, and one that hangs it, are named."""
    monkeypatch.setattr(sys.modules[__name__], "PER_FILE_TIMEOUT_S", 3.0)
    good = tmp_path / "notes.txt"
    good.write_text("not a scan")
    crash, hang = tmp_path / "crash.dcm", tmp_path / "hang.dcm"
    crash.write_bytes(b"x")
    hang.write_bytes(b"x")
    saboteur = (
        "import os, time, meddiag_desktop.scans as s\n"
        "real = s.discover\n"
        "def discover(path, *a, **k):\n"
        "    if path.endswith('crash.dcm'): os.abort()\n"
        "    if path.endswith('hang.dcm'): time.sleep(60)\n"
        "    return real(path, *a, **k)\n"
    )
    monkeypatch.setattr(
        sys.modules[__name__],
        "SWEEP",
        SWEEP.replace(
            "from meddiag_desktop.scans import ScanError, discover, load\n",
            "from meddiag_desktop.scans import ScanError, load\n" + saboteur,
        ),
    )
    report = sweep([str(good), str(crash), str(good), str(hang), str(good)])
    assert [c.split(":")[0] for c in report.crashes] == [str(crash)]
    assert "signal 6" in report.crashes[0]
    assert [h.split(":")[0] for h in report.hangs] == [str(hang)]
    assert [o["path"] for o in report.outcomes] == [str(good)] * 3
    assert all(o["status"] == "scan_error" for o in report.outcomes)


@pytest.mark.slow
def test_every_bundled_test_file_loads_or_gives_a_scan_error() -> None:
    paths = [str(p) for p in bundled_test_files()]
    assert len(paths) >= 150, "pydicom's test files are missing"
    report = sweep(paths)
    assert not report.problems(), report.problems()
    assert len(report.outcomes) == len(paths)
    loaded = sum(o["loaded"] for o in report.outcomes)
    assert loaded >= 20, "the sweep loaded almost nothing: is the scan layer refusing everything?"


def _damaged_copies(sources: list[Path], folder: Path) -> list[str]:
    """Truncated copies (4 lengths) and copies with 8 random bytes overwritten (3 seeds)."""
    written = []
    rng = random.Random(20261129)
    for source in sources:
        data = source.read_bytes()
        stem = f"{source.parent.name}_{source.stem}"
        for kept in (0.1, 0.5, 0.9, 0.99):
            target = folder / f"{stem}_cut{int(kept * 100)}.dcm"
            target.write_bytes(data[: int(len(data) * kept)])
            written.append(str(target))
        for copy in range(3):
            mutated = bytearray(data)
            for _ in range(8):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            target = folder / f"{stem}_flip{copy}.dcm"
            target.write_bytes(bytes(mutated))
            written.append(str(target))
    return written


@pytest.mark.slow
def test_damaged_copies_of_bundled_files_load_or_give_a_scan_error(tmp_path: Path) -> None:
    """Truncated and byte-flipped copies: this found a zlib.error escaping from truncated
    deflated files and decoders taking up to 10 s on truncated compressed pixel data."""
    sources = [p for p in bundled_test_files() if p.suffix == ".dcm" and p.stat().st_size > 256]
    started = time.perf_counter()
    report = sweep(_damaged_copies(sources, tmp_path))
    assert not report.problems(), report.problems()
    assert time.perf_counter() - started < 90


def test_raw_big_endian_file_without_preamble_is_recognised() -> None:
    """Old files start straight with a group 0008 element; big-endian ones were called 'not
    DICOM'. This one is an RT plan: a non-image object, said so."""
    path = Path(pydicom.data.get_testdata_file("ExplVR_BigEndNoMeta.dcm"))
    (series,) = discover(path)
    assert series.kind is SeriesKind.NON_IMAGE
    assert "radiotherapy" in series.reason


@pytest.mark.parametrize(
    ("compressed", "uncompressed"),
    [("693_J2KR.dcm", "693_UNCR.dcm"), ("MR2_J2KR.dcm", "MR2_UNCR.dcm")],
)
def test_lossless_jpeg2000_loads_like_its_uncompressed_twin(
    compressed: str, uncompressed: str
) -> None:
    """Decoded slices came back as int32/float64 (SimpleITK's types) where the same image
    uncompressed gives int16/float32: twice the memory, and a different type per encoding."""
    paths = [pydicom.data.get_testdata_file(name) for name in (compressed, uncompressed)]
    if None in paths:
        pytest.skip("pydicom-data is not installed")
    from_j2k, from_raw = (load(discover(p)[0]) for p in paths)
    assert from_j2k.array_zyx.dtype == from_raw.array_zyx.dtype
    assert from_j2k.array_zyx.dtype in (np.int16, np.float32)
    np.testing.assert_allclose(from_j2k.array_zyx, from_raw.array_zyx, rtol=1e-6)
