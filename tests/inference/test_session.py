"""Execution providers: preference order, honest fallback with the reason, clear errors."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort
import pytest
from tiny_models import threshold_model

from meddiag_desktop.inference.session import (
    ModelLoadError,
    SessionCache,
    create_session,
    provider_preference,
)


def test_preference_orders() -> None:
    assert provider_preference(None)[-1] == "CPUExecutionProvider"
    assert provider_preference("cuda") == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert provider_preference("cpu") == ["CPUExecutionProvider"]
    with pytest.raises(ValueError, match="unknown execution provider"):
        provider_preference("quantum")


def test_gpu_request_falls_back_to_cpu_with_reason(tmp_path: Path) -> None:
    model = threshold_model(tmp_path / "m.onnx")
    session, report = create_session(model, provider_preference("cuda"))
    assert report.used == session.get_providers()[0]
    if report.used == "CPUExecutionProvider":
        reasons = dict(report.attempts)
        assert "CUDAExecutionProvider" in reasons
        assert reasons["CUDAExecutionProvider"].strip()
        assert "CUDA" in report.describe() or "cuda" in report.describe()


def test_cpu_only(tmp_path: Path) -> None:
    session, report = create_session(threshold_model(tmp_path / "m.onnx"), ["CPUExecutionProvider"])
    assert report.used == "CPUExecutionProvider" and report.attempts == ()
    assert session.get_inputs()[0].name == "input"


def test_damaged_model_is_a_clear_error(tmp_path: Path) -> None:
    damaged = tmp_path / "bad.onnx"
    damaged.write_bytes(b"\x08\x01garbage that is not a protobuf model")
    with pytest.raises(ModelLoadError, match="cannot be loaded"):
        create_session(damaged, ["CPUExecutionProvider"])


def test_cache_reuses_sessions(tmp_path: Path) -> None:
    model = threshold_model(tmp_path / "m.onnx")
    cache = SessionCache()
    first = cache.get(model, "x", ["CPUExecutionProvider"])
    assert cache.get(model, "x", ["CPUExecutionProvider"]) is first
    assert "CPUExecutionProvider" in ort.get_available_providers()
