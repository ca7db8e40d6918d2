"""CUDA and TensorRT provider options for 3-D segmentation, set as onnxruntime's docs advise.

:mod:`session` asks :func:`execution_providers` for the provider list of a session it is about
to create, and hands a session that really runs on a GPU to :func:`on_device`.

CUDA (onnxruntime docs, CUDA Execution Provider, and ``OrtCUDAProviderOptions``):

- ``cudnn_conv_algo_search=EXHAUSTIVE`` (also onnxruntime's default, stated here so nobody
  loses it): cuDNN times every convolution algorithm the first time it sees an input shape and
  keeps the fastest. A sliding window feeds the same patch shape hundreds of times, so the
  one-off search pays for itself; ``HEURISTIC`` is for inputs whose shape keeps changing (every
  new shape is searched again), ``DEFAULT`` only where memory is tight.
- ``cudnn_conv_use_max_workspace=1``: lets cuDNN use the workspace the fastest 3-D algorithms
  need ("convolution-heavy models" in the docs' tuning notes).
- ``gpu_mem_limit``: the CUDA arena's ceiling in bytes, so a radiology workstation keeps memory
  for its display and viewer (the default is all of it). cuDNN workspaces come on top.
- ``arena_extend_strategy=kSameAsRequested``: the arena grows by what is asked, not to the next
  power of two; with 3-D activations of hundreds of MB, doubling wastes most of the limit.
- ``do_copy_in_default_stream=1``: copies on the compute stream (the docs warn that 0 may race).
- ``use_tf32=0``: full float32 on Ampere and later; TF32 rounds convolution inputs to 10 bits of
  mantissa, a precision no card has been validated for.

TensorRT (onnxruntime docs, TensorRT Execution Provider, "TensorRT EP Caches"):

- ``trt_engine_cache_enable`` + ``trt_engine_cache_path``: a built engine is kept on disk; the
  first build takes minutes for a 3-D network. The folder is in the user's data folder, one per
  model ``sha256`` and onnxruntime version (the docs say a cache must be rebuilt when the model,
  onnxruntime, TensorRT or the GPU changes; TensorRT itself refuses an engine from another
  version or GPU and rebuilds).
- ``trt_timing_cache_enable`` + ``trt_timing_cache_path``: layer timings, reused by rebuilds.
- ``trt_fp16_enable``: off unless the model's card says fp16 was validated (the caller decides).
- ``trt_max_workspace_size``: the builder's scratch memory in bytes.
- CUDA stays behind TensorRT in the list (the docs' advice), for nodes TensorRT does not take.

I/O binding (docs, "I/O Binding"): without it every ``run`` copies the input window to the
device and the output back inside the call. :class:`DeviceBoundSession` copies each window into
a device buffer that is reused while the window shape stays the same, lets onnxruntime allocate
the outputs on the device, and copies them to the host once, where the Gaussian blend runs.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import re
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from meddiag_desktop.user_folders import user_data_dir

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
TENSORRT = "TensorrtExecutionProvider"
CPU = "CPUExecutionProvider"
GPU_PROVIDERS = (TENSORRT, CUDA)
TENSORRT_CACHE_FOLDER = "tensorrt-cache"
CONV_ALGO_SEARCHES = ("EXHAUSTIVE", "HEURISTIC", "DEFAULT")
_SHA256 = re.compile(r"[0-9a-f]{64}")

ProviderEntry = str | tuple[str, dict[str, str]]


@dataclass(frozen=True)
class GpuOptions:
    """What a site may change; the defaults suit a workstation with one GPU and a display."""

    device_id: int = 0
    memory_limit_mb: int = 6144  # CUDA arena ceiling; cuDNN workspaces come on top
    conv_algo_search: str = "EXHAUSTIVE"  # fixed sliding-window shapes; HEURISTIC for varied
    tensorrt_workspace_mb: int = 2048
    tensorrt_fp16: bool = False  # only for a card validated in fp16

    def __post_init__(self) -> None:
        if self.conv_algo_search not in CONV_ALGO_SEARCHES:
            raise ValueError(
                f"cudnn_conv_algo_search must be one of {', '.join(CONV_ALGO_SEARCHES)}, "
                f"not '{self.conv_algo_search}'"
            )
        if self.memory_limit_mb <= 0 or self.tensorrt_workspace_mb <= 0:
            raise ValueError("GPU memory sizes must be positive")


def cuda_provider_options(options: GpuOptions | None = None) -> dict[str, str]:
    """CUDA execution provider options (strings, as onnxruntime takes them)."""
    options = options or GpuOptions()
    return {
        "device_id": str(options.device_id),
        "cudnn_conv_algo_search": options.conv_algo_search,
        "cudnn_conv_use_max_workspace": "1",
        "gpu_mem_limit": str(options.memory_limit_mb * 2**20),
        "arena_extend_strategy": "kSameAsRequested",
        "do_copy_in_default_stream": "1",
        "use_tf32": "0",
    }


def tensorrt_cache_dir(model_sha256: str, root: Path | None = None) -> Path:
    """``<user data>/tensorrt-cache/<sha256>/onnxruntime-<version>``: one model, one runtime."""
    digest = model_sha256.strip().lower()
    if not _SHA256.fullmatch(digest):
        raise ValueError(f"not a sha256 digest: '{model_sha256}'")
    base = root if root is not None else user_data_dir() / TENSORRT_CACHE_FOLDER
    return base / digest / f"onnxruntime-{ort.__version__}"


def tensorrt_provider_options(
    model_sha256: str, options: GpuOptions | None = None, root: Path | None = None
) -> dict[str, str]:
    """TensorRT execution provider options with the engine and timing caches for this model."""
    options = options or GpuOptions()
    cache = str(tensorrt_cache_dir(model_sha256, root))
    return {
        "device_id": str(options.device_id),
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": cache,
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": cache,
        "trt_fp16_enable": "True" if options.tensorrt_fp16 else "False",
        "trt_max_workspace_size": str(options.tensorrt_workspace_mb * 2**20),
    }


def execution_providers(
    provider: str,
    onnx_path: Path,
    model_sha256: str | None = None,
    options: GpuOptions | None = None,
) -> list[ProviderEntry]:
    """The ``providers`` argument for a session meant to run on ``provider``, CPU last."""
    if provider == CPU:
        return [CPU]
    if provider == CUDA:
        return [(CUDA, cuda_provider_options(options)), CPU]
    if provider == TENSORRT:
        known = (model_sha256 or "").strip().lower()
        digest = known if _SHA256.fullmatch(known) else file_sha256(onnx_path)
        trt = tensorrt_provider_options(digest, options)
        _prepare_cache_folder(Path(trt["trt_engine_cache_path"]))
        return [(TENSORRT, trt), (CUDA, cuda_provider_options(options)), CPU]
    return [provider, CPU]


def on_device(session: Any, provider_used: str, device_id: int = 0) -> Any:
    """A session that really runs on a GPU, wrapped to run through I/O binding; else as is."""
    if provider_used in GPU_PROVIDERS:
        return DeviceBoundSession(session, "cuda", device_id)
    return session


class DeviceBoundSession:
    """An ``InferenceSession`` whose ``run`` goes through I/O binding on the GPU.

    Each input window is copied once into a device ``OrtValue`` that is reused (updated in
    place) while its shape and type stay the same, outputs are allocated on the device by
    onnxruntime and copied to the host once. Buffers are per thread, so two threads may share
    the session as they may share a plain one. Everything else is the wrapped session's.
    """

    def __init__(self, session: Any, device_type: str = "cuda", device_id: int = 0) -> None:
        self._session = session
        self._device_type = device_type
        self._device_id = device_id
        self._local = threading.local()

    @property
    def wrapped(self) -> Any:
        return self._session

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def run(
        self, output_names: Sequence[str] | None, feeds: dict[str, np.ndarray], run_options=None
    ) -> list[np.ndarray]:
        binding = self._session.io_binding()
        # name -> (device OrtValue, shape, dtype) of the last window seen in this thread
        buffers: dict[str, tuple[Any, tuple[int, ...], np.dtype]] = self._local.__dict__.setdefault(
            "buffers", {}
        )
        for name, array in feeds.items():
            host = np.ascontiguousarray(array)
            kept = buffers.get(name)
            # A CPU OrtValue wraps the array itself (no copy): never write into an old one.
            if (
                self._device_type != "cpu"
                and kept is not None
                and (kept[1], kept[2]) == (host.shape, host.dtype)
            ):
                value = kept[0]
                value.update_inplace(host)
            else:
                value = ort.OrtValue.ortvalue_from_numpy(host, self._device_type, self._device_id)
                buffers[name] = (value, host.shape, host.dtype)
            binding.bind_ortvalue_input(name, value)
        if not output_names:
            output_names = [output.name for output in self._session.get_outputs()]
        for name in output_names:
            binding.bind_output(name, self._device_type, self._device_id)
        self._session.run_with_iobinding(binding, run_options)
        outputs: list[np.ndarray] = binding.copy_outputs_to_cpu()
        return outputs


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _prepare_cache_folder(folder: Path) -> None:
    """TensorRT creates only the last folder of its cache path: make the ones above, owner-only.

    Only where TensorRT's own library loads (else the attempt fails before it looks at the
    cache), so a CPU-only machine gets no empty cache folders.
    """
    if not _tensorrt_runtime_loadable():
        return
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:  # TensorRT then says why it cannot cache; the run goes on
        log.warning("cannot create the TensorRT engine cache folder %s: %s", folder, exc)


@functools.cache
def _tensorrt_runtime_loadable() -> bool:
    names = (
        ("nvinfer_10.dll", "nvinfer.dll")
        if sys.platform == "win32"
        else ("libnvinfer.so.10", "libnvinfer.so")
    )
    for name in names:
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return True
    return False
