"""The GPU fallback in plain words, from onnxruntime's own messages (recorded on this machine's
onnxruntime-gpu 1.31.1 without CUDA libraries, and the usual driver and device failures)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from meddiag_desktop.inference.provider_reason import (
    cause_in_words,
    fell_back,
    plain_reason,
    technical_details,
)
from meddiag_desktop.inference.session import ProviderReport, create_session, provider_preference

_LIB = "/opt/venv/lib/python3.11/site-packages/onnxruntime/capi"
NO_CUDA_LIBRARIES = ProviderReport(
    "CPUExecutionProvider",
    (
        (
            "TensorrtExecutionProvider",
            f"Failed to load library {_LIB}/libonnxruntime_providers_tensorrt.so with error: "
            "libcublas.so.13: cannot open shared object file: No such file or directory",
        ),
        (
            "CUDAExecutionProvider",
            f"Failed to load library {_LIB}/libonnxruntime_providers_cuda.so with error: "
            "libcublasLt.so.13: cannot open shared object file: No such file or directory",
        ),
    ),
)
MODEL = Path(__file__).resolve().parents[2] / "models" / "demo_lung_nodules" / "model.onnx"


def test_missing_cuda_libraries_in_words() -> None:
    reason = plain_reason(NO_CUDA_LIBRARIES)
    assert reason == (
        "No NVIDIA GPU driver/CUDA libraries found (libcublasLt.so.13 is missing); "
        "the model ran on the CPU."
    )
    assert fell_back(NO_CUDA_LIBRARIES)
    details = technical_details(NO_CUDA_LIBRARIES)
    for provider, raw in NO_CUDA_LIBRARIES.attempts:  # the raw text stays available
        assert f"{provider} not used: {raw}" in details


@pytest.mark.parametrize(
    ("provider", "raw", "words"),
    [
        (
            "CUDAExecutionProvider",
            "Failed to load library libonnxruntime_providers_cuda.so with error: libcuda.so.1: "
            "cannot open shared object file: No such file or directory",
            "No NVIDIA GPU driver found (libcuda.so.1 is missing)",
        ),
        (
            "CUDAExecutionProvider",
            "CUDA failure 100: no CUDA-capable device is detected ; GPU=0 ; hostname=x",
            "No NVIDIA GPU found in this computer",
        ),
        (
            "CUDAExecutionProvider",
            "Failed to create CUDAExecutionProvider. Require cuDNN 9.* and CUDA 13.*. Please "
            "install all dependencies as mentioned in the GPU requirements page",
            "No NVIDIA GPU driver/CUDA libraries found",
        ),
        (
            "TensorrtExecutionProvider",
            "EP Error onnxruntime_pybind_state.cc:729 RegisterTensorRTPluginsAsCustomOps Please "
            "install TensorRT libraries as mentioned in the GPU requirements page",
            "The NVIDIA TensorRT libraries are not installed",
        ),
        (
            "CUDAExecutionProvider",
            "CUDA failure 2: out of memory",
            "The GPU has too little free memory for this model",
        ),
        (
            "DmlExecutionProvider",
            "not included in this onnxruntime build",
            "This installation has no DirectML support",
        ),
        (
            "CUDAExecutionProvider",
            "not available on this machine (onnxruntime fell back silently)",
            "NVIDIA CUDA is not available on this computer",
        ),
        (
            "CUDAExecutionProvider",
            "*************** EP Error ***************",
            "NVIDIA CUDA could not be started",
        ),
    ],
)
def test_each_cause_in_words(provider: str, raw: str, words: str) -> None:
    assert cause_in_words(provider, raw) == words


def test_nothing_to_explain() -> None:
    on_gpu = ProviderReport("CUDAExecutionProvider", ())
    assert plain_reason(on_gpu) == "The model ran on the GPU (CUDA)."
    assert not fell_back(on_gpu)
    cpu_build = ProviderReport(
        "CPUExecutionProvider",
        (("CUDAExecutionProvider", "not included in this onnxruntime build"),),
    )
    assert not fell_back(cpu_build)  # a CPU-only install: nothing went wrong
    assert plain_reason(cpu_build) == (
        "This installation has no NVIDIA CUDA support; the model ran on the CPU."
    )


def test_the_session_here_is_explained_without_onnxruntime_jargon() -> None:
    """Whatever this machine has, the sentence names no provider class or library path."""
    _session, report = create_session(MODEL, provider_preference(None))
    reason = plain_reason(report)
    assert reason.endswith(".") and "ExecutionProvider" not in reason
    assert not re.search(r"/\w+/", reason), "a library path leaked into the sentence"
