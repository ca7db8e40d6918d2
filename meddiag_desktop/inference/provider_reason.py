"""Why a model did not run on the GPU, in words a radiologist understands.

:class:`~meddiag_desktop.inference.session.ProviderReport` keeps onnxruntime's own text for
each provider it could not use ("Failed to load library .../libonnxruntime_providers_cuda.so
with error: libcublasLt.so.13: cannot open shared object file ..."). That is what a technician
needs, but the window showed it as it is. :func:`plain_reason` turns the report into one
sentence ("No NVIDIA GPU driver/CUDA libraries found (libcublasLt.so.13 is missing); the model
ran on the CPU."); :func:`technical_details` keeps the raw text for a Details button. Qt-free,
so the CLI can say the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from meddiag_desktop.inference.session import SHORT_NAMES_INV, ProviderReport

_GPU_PROVIDERS = {
    "TensorrtExecutionProvider": "NVIDIA TensorRT",
    "CUDAExecutionProvider": "NVIDIA CUDA",
    "DmlExecutionProvider": "DirectML",
    "CoreMLExecutionProvider": "Core ML",
}
_WHERE = {
    "CPUExecutionProvider": "the CPU",
    "TensorrtExecutionProvider": "the GPU (TensorRT)",
    "CUDAExecutionProvider": "the GPU (CUDA)",
    "DmlExecutionProvider": "the GPU (DirectML)",
    "CoreMLExecutionProvider": "Core ML",
}
_MISSING_LIBRARY = re.compile(r"(lib[\w.+-]+\.so[\w.]*)\S*: cannot open shared object")
_DLL_MISSING = re.compile(r"([\w.+-]+\.dll)", re.IGNORECASE)


@dataclass(frozen=True)
class Cause:
    """One kind of failure, recognised in onnxruntime's text."""

    pattern: re.Pattern[str]
    words: str  # {library} is filled in where the text names one


_CAUSES = (
    Cause(
        re.compile(r"libcuda\.so|nvcuda\.dll|CUDA driver version is insufficient|driver", re.I),
        "No NVIDIA GPU driver found{library}",
    ),
    Cause(
        re.compile(r"no CUDA-capable device|cudaErrorNoDevice|no device", re.I),
        "No NVIDIA GPU found in this computer",
    ),
    Cause(
        re.compile(r"libnvinfer|nvinfer|install TensorRT", re.I),
        "The NVIDIA TensorRT libraries are not installed{library}",
    ),
    Cause(
        re.compile(r"cannot open shared object|Failed to load library|LoadLibrary|Require cuDNN"),
        "No NVIDIA GPU driver/CUDA libraries found{library}",
    ),
    Cause(
        re.compile(r"out of memory|CUBLAS_STATUS_ALLOC_FAILED|cudaErrorMemoryAllocation", re.I),
        "The GPU has too little free memory for this model",
    ),
    Cause(
        re.compile(r"not included in this onnxruntime build"),
        "This installation has no {provider} support",
    ),
    Cause(
        re.compile(r"fell back silently|not available on this machine"),
        "{provider} is not available on this computer",
    ),
)


def cause_in_words(provider: str, raw: str) -> str:
    """One provider's failure as a short phrase, e.g. 'No NVIDIA GPU driver found'."""
    name = _GPU_PROVIDERS.get(provider, SHORT_NAMES_INV.get(provider, provider))
    library = _missing_library(raw)
    for cause in _CAUSES:
        if cause.pattern.search(raw):
            return cause.words.format(
                library=f" ({library} is missing)" if library else "", provider=name
            )
    return f"{name} could not be started"


def plain_reason(report: ProviderReport) -> str:
    """Where the model ran and, when a better choice was skipped, why, in one sentence.

    One cause is named, CUDA's when it was tried: TensorRT and CUDA almost always fail for
    the same reason (CUDA's libraries), and one clear cause reads better than a list.
    """
    where = _WHERE.get(report.used, SHORT_NAMES_INV.get(report.used, report.used))
    skipped = [(p, why) for p, why in report.attempts if p in _GPU_PROVIDERS]
    skipped.sort(key=lambda attempt: attempt[0] != "CUDAExecutionProvider")
    if not skipped:
        return f"The model ran on {where}."
    # the most telling cause: a missing library or driver beats "not in this build"
    causes = [cause_in_words(p, why) for p, why in skipped]
    telling = [c for c in causes if "installation has no" not in c] or causes
    return f"{telling[0]}; the model ran on {where}."


def technical_details(report: ProviderReport) -> str:
    """onnxruntime's own words for each provider that was tried, for a Details button."""
    lines = [f"Used: {report.used}"]
    lines += [f"{provider} not used: {why}" for provider, why in report.attempts]
    return "\n".join(lines)


def fell_back(report: ProviderReport) -> bool:
    """Whether a GPU provider was tried and not used (worth telling the reader)."""
    return any(
        p in _GPU_PROVIDERS and "not included in this onnxruntime build" not in why
        for p, why in report.attempts
    )


def _missing_library(raw: str) -> str:
    found = _MISSING_LIBRARY.search(raw)
    if found:
        return found.group(1)
    if "LoadLibrary" in raw or "error 126" in raw:
        dll = _DLL_MISSING.search(raw)
        return dll.group(1) if dll else ""
    return ""
