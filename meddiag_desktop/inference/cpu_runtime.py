"""The CPU runtime and arithmetic precision, chosen by measurement, and said in words.

Measured side by side on the demo model (bench/cpu_runtimes.py; 2-core AMD EPYC with AVX-512
BF16, one 124x140x140 tile, medians of interleaved runs): OpenVINO's CPU plugin in float32 ran
the model stage 1.7-1.9x faster than onnxruntime's CPU provider (whatever its graph
optimisation level, arena and thread-spinning settings), bfloat16 another 1.7-1.9x; int8
(onnxruntime static quantisation, QDQ) was 3x slower than float32 in onnxruntime and no faster
than float32 in OpenVINO. So on a CPU, OpenVINO runs the model when it is installed, in the
fastest precision that the model's card lists as validated and this CPU runs natively; else
onnxruntime in float32. Every step down is explained in :attr:`RuntimeChoice.notes`, and a
failure of OpenVINO (a model it cannot compile, an error in a call) falls back to onnxruntime
automatically, with the reason.

:class:`CpuSession` has onnxruntime's ``get_inputs``/``get_outputs``/``run`` interface, so the
pipeline and :class:`~meddiag_desktop.inference.session.SessionCache` treat both runtimes alike;
``run`` honours the ``terminate`` flag of onnxruntime's run options (the Cancel button) by
polling it while OpenVINO works.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from meddiag_desktop.inference.card import ModelCard, Precision
from meddiag_desktop.inference.session import cpu_threads

log = logging.getLogger(__name__)

OPENVINO = "openvino"
ONNXRUNTIME = "onnxruntime"
RUNTIMES = (OPENVINO, ONNXRUNTIME)
_OPENVINO_PRECISION = {Precision.FLOAT32: "f32", Precision.BFLOAT16: "bf16"}
_CANCEL_POLL_MS = 50


class PrecisionError(Exception):
    """A precision was asked for that the model's card does not list as validated."""


@dataclass(frozen=True)
class RuntimeChoice:
    """Which library runs the model, in which precision, and why nothing faster."""

    runtime: str  # "openvino" | "onnxruntime"
    version: str
    precision: Precision
    notes: tuple[str, ...] = ()  # each step down from the fastest option, in words
    validated: bool = True  # False: a precision the card does not list (asked for explicitly)

    def describe(self) -> str:
        name = "OpenVINO" if self.runtime == OPENVINO else "onnxruntime"
        text = f"{name} {self.version}, {self.precision.value}"
        if not self.validated:
            text += " (NOT validated for this model)"
        return text + (f" ({'; '.join(self.notes)})" if self.notes else "")

    @property
    def label(self) -> str:
        """Short, for a status bar: 'OpenVINO, float32'."""
        return runtime_label(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {
            "runtime": self.runtime,
            "version": self.version,
            "precision": self.precision.value,
            "precision_validated": self.validated,
            "notes": list(self.notes),
        }

    def open(self, onnx_path: Path, fallback: Any) -> Any:
        """The session to cache for this choice (SessionCache calls it for CPU sessions)."""
        return CpuSession(fallback, onnx_path, self)


@dataclass(frozen=True)
class CpuRequest:
    """What the caller asked for; None = the fastest choice the card and this machine allow."""

    runtime: str | None = None  # "openvino" | "onnxruntime"
    precision: Precision | None = None
    allow_unvalidated: bool = False  # validating a model at a new precision


def runtime_label(stored: object) -> str:
    """'OpenVINO, bfloat16' from a run's stored ``runtime`` provenance ('' if it has none)."""
    if not isinstance(stored, dict) or not stored.get("runtime"):
        return ""
    name = "OpenVINO" if stored["runtime"] == OPENVINO else "onnxruntime"
    text = f"{name}, {stored.get('precision', '?')}"
    return text if stored.get("precision_validated", True) else text + " (not validated)"


def onnxruntime_choice(notes: tuple[str, ...] = ()) -> RuntimeChoice:
    return RuntimeChoice(ONNXRUNTIME, ort.__version__, Precision.FLOAT32, notes)


@functools.cache
def _openvino() -> Any:
    """The openvino module, or None when it is not installed (or cannot load)."""
    try:
        import openvino
    except Exception as exc:  # ImportError, or a native library that fails to load
        log.info("OpenVINO not available: %s", exc)
        return None
    return openvino


@functools.cache
def _core() -> Any:
    return _openvino().Core()


@functools.cache
def cpu_capabilities() -> frozenset[str]:
    """OpenVINO's view of this CPU ('FP32', 'BF16', 'INT8', ...); empty without OpenVINO."""
    if _openvino() is None:
        return frozenset()
    try:
        return frozenset(str(c) for c in _core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    except Exception as exc:  # a CPU plugin that cannot start
        log.info("OpenVINO CPU plugin not usable: %s", exc)
        return frozenset()


def choose(card: ModelCard, request: CpuRequest | None = None) -> RuntimeChoice:
    """The CPU runtime and precision for ``card`` (raises PrecisionError on a refused ask)."""
    request = request or CpuRequest()
    validated = set(card.precisions)
    if (
        request.precision is not None
        and request.precision not in validated
        and not request.allow_unvalidated
    ):
        listed = ", ".join(p.value for p in card.precisions)
        raise PrecisionError(
            f"The model '{card.name}' was not validated in {request.precision.value} (its card "
            f"lists {listed}); run it in a validated precision."
        )
    notes: list[str] = []
    use_openvino = request.runtime in (None, OPENVINO) and _openvino() is not None
    if request.runtime == ONNXRUNTIME:
        notes.append("onnxruntime asked for")
    elif _openvino() is None:
        notes.append("OpenVINO is not installed")
    elif "FP32" not in cpu_capabilities():
        notes.append("OpenVINO's CPU plugin cannot run on this CPU")
        use_openvino = False
    if not use_openvino:
        if request.precision not in (None, Precision.FLOAT32):
            notes.append(f"{request.precision.value} needs OpenVINO: float32")
        return onnxruntime_choice(tuple(notes))
    version = str(_openvino().__version__).split("-")[0]
    if request.precision is not None:
        precision = request.precision
    elif Precision.BFLOAT16 not in validated:
        precision = Precision.FLOAT32
        notes.append("bfloat16 not validated for this model")
    else:
        precision = Precision.BFLOAT16
    if precision is Precision.BFLOAT16 and "BF16" not in cpu_capabilities():
        notes.append("this CPU has no bfloat16 instructions")
        precision = Precision.FLOAT32
    return RuntimeChoice(OPENVINO, version, precision, tuple(notes), precision in validated)


class CpuSession:
    """OpenVINO behind onnxruntime's session interface, onnxruntime behind it as the fallback.

    One call at a time per model (a lock): on a CPU, parallel calls only fight for the cores.
    :meth:`release` gives the compiled model's working memory back (OpenVINO keeps it, about
    the size of the largest tile's activations, until told).
    """

    def __init__(self, fallback: Any, onnx_path: Path, choice: RuntimeChoice) -> None:
        self._fallback = fallback
        self.runtime = choice
        self._lock = threading.Lock()
        self._compiled: Any = None
        if choice.runtime == OPENVINO:
            try:
                self._compiled = _compile(onnx_path, choice.precision)
            except Exception as exc:  # OpenVINO's own exception types
                self._fall_back(f"OpenVINO could not compile the model: {_short(exc)}")

    def _fall_back(self, reason: str) -> None:
        log.warning("%s; onnxruntime runs it", reason)
        self._compiled = None
        self.runtime = onnxruntime_choice((*self.runtime.notes, reason))

    def get_inputs(self) -> Any:
        return self._fallback.get_inputs()

    def get_outputs(self) -> Any:
        return self._fallback.get_outputs()

    def get_providers(self) -> list[str]:
        return ["CPUExecutionProvider"]

    def run(
        self,
        output_names: list[str] | None,
        feeds: dict[str, np.ndarray],
        run_options: ort.RunOptions | None = None,
    ) -> list[np.ndarray]:
        if self._compiled is None:
            return self._fallback.run(output_names, feeds, run_options)
        with self._lock:
            try:
                return self._run_openvino(output_names, feeds, run_options)
            except _Terminated:
                raise RuntimeError("the model call was terminated (cancelled)") from None
            except Exception as exc:
                self._fall_back(f"OpenVINO failed during a model call: {_short(exc)}")
        return self._fallback.run(output_names, feeds, run_options)

    def _run_openvino(
        self, output_names: list[str] | None, feeds: dict[str, np.ndarray], run_options: Any
    ) -> list[np.ndarray]:
        if run_options is not None and run_options.terminate:
            raise _Terminated
        request = self._compiled.create_infer_request()
        request.start_async(
            {name: np.ascontiguousarray(a) for name, a in feeds.items()}, share_inputs=True
        )
        while not request.wait_for(_CANCEL_POLL_MS):
            if run_options is not None and run_options.terminate:
                request.cancel()
                raise _Terminated
        by_name = {output.any_name: output for output in self._compiled.outputs}
        names = output_names or [output.any_name for output in self._compiled.outputs]
        return [np.array(request.get_tensor(by_name[name]).data) for name in names]

    def release(self) -> None:
        """Free the working memory OpenVINO keeps after a call (none kept by onnxruntime)."""
        if self._compiled is not None:
            with self._lock:
                self._compiled.release_memory()


class _Terminated(Exception):
    pass


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def _compile(onnx_path: Path, precision: Precision) -> Any:
    """One OpenVINO CPU compilation: latency mode, one stream, all allowed cores."""
    core = _core()
    model = core.read_model(str(onnx_path))
    config = {
        # Explicit: on CPUs with bfloat16, OpenVINO would otherwise choose bf16 by itself.
        "INFERENCE_PRECISION_HINT": _OPENVINO_PRECISION[precision],
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1,
        "INFERENCE_NUM_THREADS": cpu_threads(),
    }
    return core.compile_model(model, "CPU", config)


def release_memory(session: Any) -> None:
    """After the model stage: let a runtime that keeps working memory give it back."""
    release = getattr(session, "release", None)
    if callable(release):
        release()


def runtime_of(session: Any) -> RuntimeChoice:
    """The runtime a session from the cache really uses (onnxruntime unless it says)."""
    choice = getattr(session, "runtime", None)
    return choice if isinstance(choice, RuntimeChoice) else onnxruntime_choice()
