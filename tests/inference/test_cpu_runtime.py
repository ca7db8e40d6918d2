"""The CPU runtime and precision: chosen from the card and the machine, recorded, explained."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from model_signing import sign_test_model
from test_pipeline import phantom
from tiny_models import make_model_folder

from meddiag_desktop.inference import cpu_runtime
from meddiag_desktop.inference.card import CardError, Precision, read_card
from meddiag_desktop.inference.cpu_runtime import (
    ONNXRUNTIME,
    OPENVINO,
    CpuRequest,
    PrecisionError,
    choose,
)
from meddiag_desktop.inference.pipeline import (
    InferenceOptions,
    ModelMismatchError,
    run_inference,
    run_to_end,
)
from meddiag_desktop.inference.session import SessionCache

needs_openvino = pytest.mark.skipif(
    cpu_runtime._openvino() is None, reason="OpenVINO is not installed here"
)
TILING = """max_tile_zyx = [128, 128, 128]
tile_multiple = 2
tile_margin = 5
tile_bytes_per_voxel = 100
"""


def folder_with_precisions(folder: Path, validated: str) -> Path:
    make_model_folder(folder, model="conv", tiling=TILING)
    card = folder / "card.toml"
    card.write_text(card.read_text() + f"\n[precision]\nvalidated = {validated}\n")
    return sign_test_model(folder)


def test_cards_list_float32_unless_they_say_more(tmp_path: Path) -> None:
    plain = read_card(make_model_folder(tmp_path / "plain"))
    assert plain.precisions == (Precision.FLOAT32,)
    more = read_card(folder_with_precisions(tmp_path / "more", '["bfloat16"]'))
    assert more.precisions == (Precision.FLOAT32, Precision.BFLOAT16)
    with pytest.raises(CardError, match=r"'precision\.validated' names 'float8'"):
        read_card(folder_with_precisions(tmp_path / "bad", '["float8"]'))


def test_an_unvalidated_precision_is_refused_unless_validating(tmp_path: Path) -> None:
    card = read_card(make_model_folder(tmp_path / "m"))
    with pytest.raises(PrecisionError, match="not validated in bfloat16"):
        choose(card, CpuRequest(precision=Precision.BFLOAT16))
    with pytest.raises(ModelMismatchError, match="not validated in bfloat16"):
        run_to_end(run_inference(phantom(), card, InferenceOptions(precision="bfloat16")))
    forced = choose(card, CpuRequest(precision=Precision.BFLOAT16, allow_unvalidated=True))
    if forced.runtime == OPENVINO and "BF16" in cpu_runtime.cpu_capabilities():
        assert forced.precision is Precision.BFLOAT16 and not forced.validated
        assert "NOT validated" in forced.describe()


def test_the_fastest_validated_precision_this_cpu_has(tmp_path: Path) -> None:
    card = read_card(folder_with_precisions(tmp_path / "m", '["bfloat16"]'))
    choice = choose(card)
    if choice.runtime == ONNXRUNTIME:  # no OpenVINO here: float32, and the reason
        assert choice.precision is Precision.FLOAT32
        assert choice.notes
    elif "BF16" in cpu_runtime.cpu_capabilities():
        assert choice.precision is Precision.BFLOAT16 and choice.validated
    else:
        assert choice.precision is Precision.FLOAT32
        assert "no bfloat16 instructions" in " ".join(choice.notes)
    plain = choose(read_card(make_model_folder(tmp_path / "plain")))
    assert plain.precision is Precision.FLOAT32
    asked = choose(card, CpuRequest(runtime=ONNXRUNTIME))
    assert asked.runtime == ONNXRUNTIME and asked.precision is Precision.FLOAT32


@needs_openvino
def test_openvino_and_onnxruntime_give_the_same_findings(tmp_path: Path) -> None:
    card = read_card(make_model_folder(tmp_path / "m", model="conv", tiling=TILING))
    volume = phantom()
    runs = {
        runtime: run_to_end(run_inference(volume, card, InferenceOptions(runtime=runtime)))
        for runtime in (OPENVINO, ONNXRUNTIME)
    }
    openvino, onnxruntime = runs[OPENVINO], runs[ONNXRUNTIME]
    assert openvino.runtime is not None and openvino.runtime.runtime == OPENVINO
    assert onnxruntime.runtime is not None and onnxruntime.runtime.runtime == ONNXRUNTIME
    assert openvino.runtime.precision is Precision.FLOAT32
    assert np.array_equal(openvino.segmentation.labels_zyx, onnxruntime.segmentation.labels_zyx)
    a, b = openvino.segmentation.probability_zyx, onnxruntime.segmentation.probability_zyx
    assert a is not None and b is not None and np.abs(a - b).max() < 1e-4
    assert len(openvino.findings) == len(onnxruntime.findings) > 0


@needs_openvino
def test_openvino_failures_fall_back_to_onnxruntime_and_say_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = read_card(make_model_folder(tmp_path / "m"))  # marks the two spheres

    def cannot_compile(*args):
        raise RuntimeError("Unsupported operation Foo")

    monkeypatch.setattr(cpu_runtime, "_compile", cannot_compile)
    result = run_to_end(run_inference(phantom(), card, sessions=SessionCache()))
    assert result.runtime is not None and result.runtime.runtime == ONNXRUNTIME
    assert "OpenVINO could not compile the model: Unsupported operation Foo" in (
        result.runtime.describe()
    )
    assert len(result.findings) == 2

    class Broken:
        outputs = ()

        def create_infer_request(self):
            raise RuntimeError("out of memory")

    monkeypatch.setattr(cpu_runtime, "_compile", lambda *args: Broken())
    result = run_to_end(run_inference(phantom(), card, sessions=SessionCache()))
    assert result.runtime is not None and result.runtime.runtime == ONNXRUNTIME
    assert "OpenVINO failed during a model call: out of memory" in result.runtime.describe()
    assert len(result.findings) == 2


@needs_openvino
def test_importing_openvino_sends_no_telemetry(tmp_path: Path) -> None:
    """openvino's converter starts Intel's analytics client on import (offline.py)."""
    probe = (
        "import sys, meddiag_desktop, openvino\n"
        "assert sys.modules['openvino_telemetry'] is None\n"
        "openvino.Core().get_property('CPU', 'OPTIMIZATION_CAPABILITIES')\n"
    )
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", probe], env=env, check=True, timeout=120)
    assert not (tmp_path / "intel").exists()  # no consent file, no client id written
