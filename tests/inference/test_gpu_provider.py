"""CUDA and TensorRT: the options their docs advise, the engine cache keyed by the model, the
I/O-bound runner; and, where a GPU really works, the demo model on it against the CPU.

Unit tests need no GPU. The GPU tests skip with the reason when CUDA is not in this onnxruntime
build, or when it is listed but a session still falls back to the CPU (PITFALLS.md: the listed
providers say nothing about whether the CUDA libraries and a device are there).
"""

from __future__ import annotations

import hashlib
import mmap
from pathlib import Path

import numpy as np
import pytest
from tiny_models import conv_model, threshold_model

from meddiag_desktop.inference import gpu_options, session
from meddiag_desktop.inference.gpu_options import (
    CPU,
    CUDA,
    TENSORRT,
    DeviceBoundSession,
    GpuOptions,
    cuda_provider_options,
    execution_providers,
    tensorrt_cache_dir,
    tensorrt_provider_options,
)
from meddiag_desktop.inference.session import create_session, provider_preference
from meddiag_desktop.user_folders import user_data_dir

# onnxruntime as the package imported it (telemetry switched off first: offline.py)
ort = session.ort
SHA = "ab" * 32


@pytest.fixture
def user_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user data folder, redirected so no test writes into the real one."""
    folder = tmp_path / "user-data"
    monkeypatch.setattr(gpu_options, "user_data_dir", lambda: folder)
    return folder


def test_cuda_options_are_the_documented_ones() -> None:
    assert cuda_provider_options() == {
        "device_id": "0",
        "cudnn_conv_algo_search": "EXHAUSTIVE",
        "cudnn_conv_use_max_workspace": "1",
        "gpu_mem_limit": str(6144 * 2**20),
        "arena_extend_strategy": "kSameAsRequested",
        "do_copy_in_default_stream": "1",
        "use_tf32": "0",
    }
    chosen = cuda_provider_options(
        GpuOptions(device_id=1, memory_limit_mb=2048, conv_algo_search="HEURISTIC")
    )
    assert chosen["device_id"] == "1" and chosen["gpu_mem_limit"] == str(2 * 2**30)
    assert chosen["cudnn_conv_algo_search"] == "HEURISTIC"
    with pytest.raises(ValueError, match="cudnn_conv_algo_search"):
        GpuOptions(conv_algo_search="FASTEST")


def test_tensorrt_options_cache_per_model_and_no_fp16_unless_asked(user_folder: Path) -> None:
    options = tensorrt_provider_options(SHA)
    cache = Path(options["trt_engine_cache_path"])
    assert cache.is_relative_to(user_folder / "tensorrt-cache")
    assert SHA in cache.parts and cache.name == f"onnxruntime-{ort.__version__}"
    assert options["trt_timing_cache_path"] == str(cache)
    assert options["trt_engine_cache_enable"] == options["trt_timing_cache_enable"] == "True"
    assert options["trt_fp16_enable"] == "False"
    assert options["trt_max_workspace_size"] == str(2048 * 2**20)
    assert tensorrt_provider_options(SHA, GpuOptions(tensorrt_fp16=True))["trt_fp16_enable"] == (
        "True"
    )
    other = tensorrt_cache_dir("cd" * 32)
    assert other != cache and other.parent.parent == cache.parent.parent
    with pytest.raises(ValueError, match="sha256"):
        tensorrt_cache_dir("../../elsewhere")


def test_tensorrt_cache_defaults_to_the_real_user_folder() -> None:
    assert tensorrt_cache_dir(SHA).is_relative_to(user_data_dir())


def test_option_names_are_known_to_the_installed_providers() -> None:
    """Each key (and named value) is a string in the provider library onnxruntime loads."""
    capi = Path(ort.__file__).parent / "capi"
    checks = {
        "cuda": [*cuda_provider_options(), "kSameAsRequested", "EXHAUSTIVE"],
        "tensorrt": list(tensorrt_provider_options(SHA)),
    }
    for name, keys in checks.items():
        candidates = list(capi.glob(f"*onnxruntime_providers_{name}.*"))
        if not candidates:
            pytest.skip(f"this onnxruntime has no {name} provider library to check against")
        with (
            open(candidates[0], "rb") as handle,
            mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as library,
        ):
            unknown = [key for key in keys if library.find(b"\0" + key.encode() + b"\0") < 0]
        assert unknown == [], f"{candidates[0].name} does not know {unknown}"


def test_provider_lists_put_cpu_last_and_cuda_behind_tensorrt(
    tmp_path: Path, user_folder: Path
) -> None:
    model = threshold_model(tmp_path / "m.onnx")
    assert execution_providers(CPU, model) == [CPU]
    assert execution_providers(CUDA, model) == [(CUDA, cuda_provider_options()), CPU]
    trt = execution_providers(TENSORRT, model, SHA)
    assert [entry[0] for entry in trt[:2]] == [TENSORRT, CUDA] and trt[2] == CPU
    # Without a usable digest the file's own sha256 keys the cache.
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    unkeyed = execution_providers(TENSORRT, model, "x")[0]
    assert isinstance(unkeyed, tuple) and digest in unkeyed[1]["trt_engine_cache_path"]
    assert execution_providers("CoreMLExecutionProvider", model) == [
        "CoreMLExecutionProvider",
        CPU,
    ]


def test_sessions_are_created_with_the_gpu_options(
    tmp_path: Path, user_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = threshold_model(tmp_path / "m.onnx")
    asked: list[list] = []
    real = ort.InferenceSession

    def spy(path, options=None, providers=None, **kwargs):
        asked.append(list(providers or []))
        return real(path, options, providers=providers, **kwargs)

    monkeypatch.setattr(session.ort, "InferenceSession", spy)
    built, report = create_session(model, provider_preference("cuda"), sha256=SHA)
    if CUDA in ort.get_available_providers():
        assert asked[0] == [(CUDA, cuda_provider_options()), CPU]
    assert report.used == built.get_providers()[0]
    if report.used == CPU:  # no GPU here: a plain session, no device binding
        assert not isinstance(built, DeviceBoundSession)
    else:
        assert isinstance(built, DeviceBoundSession)


def test_bound_runner_gives_the_plain_answer(tmp_path: Path) -> None:
    """The I/O-binding path, exercised on the CPU device (the same calls as on CUDA)."""
    plain = ort.InferenceSession(str(conv_model(tmp_path / "c.onnx")), providers=[CPU])
    bound = DeviceBoundSession(plain, "cpu")
    rng = np.random.default_rng(1)
    for shape in [(1, 1, 8, 8, 8), (1, 1, 8, 8, 8), (2, 1, 8, 12, 16)]:
        batch = rng.random(shape, dtype=np.float32)
        expected = plain.run(["output"], {"input": batch})[0]
        got = bound.run(["output"], {"input": batch})[0]
        np.testing.assert_array_equal(got, expected)
    assert bound.get_providers() == plain.get_providers() and bound.wrapped is plain
    assert bound.run(None, {"input": batch})[0].shape == (2, 1, 8, 12, 16)


def usable_gpu_provider(provider: str, tmp_path: Path) -> None:
    """Skip with the reason unless a session on ``provider`` really runs there."""
    if provider not in ort.get_available_providers():
        pytest.skip(f"{provider} is not in this onnxruntime build")
    model = threshold_model(tmp_path / "probe.onnx")
    probe, report = create_session(model, [provider, CPU])
    if probe.get_providers()[0] != provider:
        why = dict(report.attempts).get(provider, "fell back to the CPU")
        pytest.skip(f"no usable {provider} here: {why}")


def _demo_run(provider: str):
    from meddiag_desktop.demo.phantom import make_phantom
    from meddiag_desktop.inference.pipeline import InferenceOptions, run_inference, run_to_end
    from meddiag_desktop.inference.registry import ModelRegistry
    from meddiag_desktop.inference.session import SessionCache

    card = ModelRegistry().find("demo-lung-nodules")
    volume = make_phantom(seed=7, shape_zyx=(56, 160, 160), spacing_xyz_mm=(1.6, 1.6, 2.5)).volume
    options = InferenceOptions(provider=provider)
    return run_to_end(run_inference(volume, card, options, sessions=SessionCache()))


def _agreement(gpu, cpu) -> float:
    a, b = gpu.segmentation.labels_zyx > 0, cpu.segmentation.labels_zyx > 0
    total = int(a.sum() + b.sum())
    return 2 * int(np.logical_and(a, b).sum()) / total if total else 1.0


@pytest.mark.parametrize("provider", [CUDA, TENSORRT])
def test_demo_model_on_the_gpu_matches_the_cpu(
    provider: str, tmp_path: Path, user_folder: Path
) -> None:
    usable_gpu_provider(provider, tmp_path)
    gpu = _demo_run("cuda" if provider == CUDA else "tensorrt")
    cpu = _demo_run("cpu")
    assert gpu.provider.used == provider, gpu.provider.describe()
    assert _agreement(gpu, cpu) >= 0.99
    assert gpu.segmentation.probability_zyx is not None
    assert cpu.segmentation.probability_zyx is not None
    difference = np.abs(gpu.segmentation.probability_zyx - cpu.segmentation.probability_zyx)
    assert float(difference.max()) < 1e-3  # float32 on both (no TF32, no fp16)
    assert len(gpu.findings) == len(cpu.findings)
    if provider == TENSORRT:
        engines = list((user_folder / "tensorrt-cache" / gpu.card.sha256).rglob("*"))
        assert engines, "TensorRT kept no engine in the per-model cache folder"
