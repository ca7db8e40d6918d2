"""onnxruntime sessions on the best hardware present, with the truth about what was used.

onnxruntime silently runs on the CPU when a GPU provider cannot load (PITFALLS.md): no
exception, ``get_device()`` still says GPU. So each provider is tried on its own, the provider
that the session actually reports is checked, onnxruntime's native log for the attempt is
captured (it explains why, e.g. a missing libcublasLt), and the next provider is tried.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import onnxruntime as ort

from meddiag_desktop.inference import gpu_options
from meddiag_desktop.offline import remove_telemetry_leftovers

log = logging.getLogger(__name__)

# Beside ORT_DISABLE_TELEMETRY, which the package's __init__ set before this import and which is
# what really stops the native telemetry client (offline.py): the API switch alone does not, but
# it costs nothing and covers a build that honours only it.
ort.disable_telemetry_events()

# Best first. CPU is always the last resort.
PROVIDER_ORDER = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "DmlExecutionProvider",
    "CoreMLExecutionProvider",
    "CPUExecutionProvider",
)
SHORT_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "directml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "cpu": "CPUExecutionProvider",
}


class ModelLoadError(Exception):
    """The ONNX file cannot be run at all (damaged, wrong format, unsupported operators)."""


@dataclass(frozen=True)
class ProviderReport:
    """Which execution provider runs the model, and why the better ones did not."""

    used: str
    attempts: tuple[tuple[str, str], ...]  # (provider, why it was not used)

    @property
    def short_name(self) -> str:
        return next((k for k, v in SHORT_NAMES.items() if v == self.used), self.used)

    def describe(self) -> str:
        text = f"running on {self.short_name.upper()}"
        if self.attempts:
            skipped = "; ".join(f"{SHORT_NAMES_INV.get(p, p)}: {why}" for p, why in self.attempts)
            text += f" (not used: {skipped})"
        return text


SHORT_NAMES_INV = {v: k for k, v in SHORT_NAMES.items()}


def provider_preference(choice: str | Sequence[str] | None) -> list[str]:
    """Providers to try, best first: 'cuda' means CUDA then CPU; None means all present."""
    if choice is None or choice == "auto":
        wanted = list(PROVIDER_ORDER)
    else:
        names = [choice] if isinstance(choice, str) else list(choice)
        wanted = []
        for name in names:
            full = SHORT_NAMES.get(name.lower(), name)
            if full not in PROVIDER_ORDER:
                allowed = ", ".join(SHORT_NAMES)
                raise ValueError(f"unknown execution provider '{name}' (choose from {allowed})")
            wanted.append(full)
        if "CPUExecutionProvider" not in wanted:
            wanted.append("CPUExecutionProvider")
    return wanted


@contextlib.contextmanager
def _captured_native_stderr() -> Iterator[list[str]]:
    """Collect what native code writes to fd 2 (onnxruntime's provider errors) meanwhile."""
    lines: list[str] = []
    # Native code writes to file descriptor 2 itself, whatever Python's sys.stderr is (pytest
    # and some launchers replace it with an object whose fileno() is another descriptor).
    stderr_fd = 2
    try:
        os.fstat(stderr_fd)
    except OSError:  # no stderr at all (some GUI launches)
        yield lines
        return
    python_level = io.StringIO()  # onnxruntime's Python layer print()s its fallback notice
    with tempfile.TemporaryFile(mode="w+b") as sink:
        sys.stderr.flush()
        saved = os.dup(stderr_fd)
        os.dup2(sink.fileno(), stderr_fd)
        try:
            with contextlib.redirect_stdout(python_level), contextlib.redirect_stderr(python_level):
                yield lines
        finally:
            sys.stderr.flush()
            os.dup2(saved, stderr_fd)
            os.close(saved)
            sink.seek(0)
            lines.extend(sink.read().decode("utf-8", "replace").splitlines())
            lines.extend(python_level.getvalue().splitlines())


def _reason_from_log(lines: list[str]) -> str:
    interesting = [line for line in lines if "Fail" in line or "rror" in line or "Require" in line]
    if not interesting:
        return "not available on this machine (onnxruntime fell back silently)"
    text = interesting[0]
    # Keep the message, not onnxruntime's source location and status prefixes.
    text = text.split("] ")[-1].strip()
    return re.sub(r"^[:\s\d]*FAIL\s*:\s*", "", text)[:300]


def cpu_threads() -> int:
    """The cores this process may run on (a container or taskset may allow fewer than exist)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def _session_options(threads: int | None) -> ort.SessionOptions:
    options = ort.SessionOptions()
    # All cores for one big operator at a time; parallel operators only fight for them.
    options.intra_op_num_threads = threads or cpu_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # No CPU arena: with large tiles it would keep the largest tile's working memory (hundreds
    # of MB) for as long as the session is cached, and it needs more per tile voxel (demo
    # model: 235 B against 128-184 B). Freed buffers go back to the system after each call.
    # The price, measured on 2 cores: a 124x140x140 tile runs ~20% slower (fresh pages are
    # touched again each call); the larger tiles the same memory budget allows about make up
    # for it.
    # Thread spinning, graph optimisation levels and the execution mode made no measurable
    # difference; all cores (as allowed by the affinity mask) for one operator at a time.
    options.enable_cpu_mem_arena = False
    options.log_severity_level = 3
    return options


class RunStopper:
    """onnxruntime run options whose ``terminate`` flag stops a call already running."""

    def __init__(self) -> None:
        self.options = ort.RunOptions()

    def cancel(self) -> None:
        self.options.terminate = True  # safe from another thread: checked between operators


def run_options() -> RunStopper:
    return RunStopper()


def create_session(
    onnx_path: Path,
    preference: Sequence[str],
    threads: int | None = None,
    sha256: str | None = None,
) -> tuple[ort.InferenceSession, ProviderReport]:
    """Open the model on the first provider in ``preference`` that really works."""
    _remove_telemetry_leftovers_once()
    available = set(ort.get_available_providers())
    attempts: list[tuple[str, str]] = []
    for provider in preference:
        if provider not in available:
            if provider != "CPUExecutionProvider":
                attempts.append((provider, "not included in this onnxruntime build"))
            continue
        # CUDA/TensorRT with the options their docs advise (gpu_options), CPU behind them.
        providers = gpu_options.execution_providers(provider, onnx_path, sha256)
        with _captured_native_stderr() as native_log:
            try:
                session = ort.InferenceSession(
                    str(onnx_path), _session_options(threads), providers=providers
                )
            except Exception as exc:  # onnxruntime raises its own exception types
                if provider == "CPUExecutionProvider":
                    raise ModelLoadError(
                        f"{onnx_path}: the model cannot be loaded ({str(exc).strip()[:300]})"
                    ) from exc
                attempts.append((provider, str(exc).strip()[:300]))
                continue
        for line in native_log:
            log.info("onnxruntime: %s", line)
        actual = session.get_providers()[0]
        if actual == provider:  # on a GPU, windows go through I/O binding (gpu_options)
            return gpu_options.on_device(session, actual), ProviderReport(actual, tuple(attempts))
        attempts.append((provider, _reason_from_log(native_log)))
        better_left = [
            p
            for p in preference[preference.index(provider) + 1 :]
            if p in available and p != "CPUExecutionProvider"
        ]
        if actual == "CPUExecutionProvider" and not better_left:
            # The fallback session already runs on the CPU: keep it instead of loading twice.
            return session, ProviderReport(actual, tuple(attempts))
    raise ModelLoadError(f"{onnx_path}: no execution provider could run the model")


@functools.cache
def _remove_telemetry_leftovers_once() -> None:
    """Events an earlier unprotected onnxruntime process queued must not wait to be sent."""
    for path in remove_telemetry_leftovers():
        log.info("removed onnxruntime telemetry leftovers: %s", path)


class CpuOpener(Protocol):
    """Opens the model in the chosen CPU runtime, with onnxruntime's session as the fallback."""

    def open(self, onnx_path: Path, fallback: ort.InferenceSession) -> Any: ...


class SessionCache:
    """One session per (model file, provider choice); building one can take seconds."""

    def __init__(self) -> None:
        self._sessions: dict[tuple, tuple] = {}
        self._lock = threading.Lock()

    def get(
        self,
        onnx_path: Path,
        sha256: str,
        preference: Sequence[str],
        cpu: CpuOpener | None = None,
    ) -> tuple[ort.InferenceSession, ProviderReport]:
        """``cpu`` (cpu_runtime.RuntimeChoice) opens the CPU runtime when the CPU runs it."""
        key = (str(onnx_path), sha256, tuple(preference), cpu)
        with self._lock:
            if key not in self._sessions:
                session, report = create_session(onnx_path, preference, sha256=sha256)
                if cpu is not None and report.used == "CPUExecutionProvider":
                    session = cpu.open(onnx_path, session)
                self._sessions[key] = (session, report)
            return self._sessions[key]

    def clear(self) -> None:
        with self._lock:
            self._sessions.clear()
