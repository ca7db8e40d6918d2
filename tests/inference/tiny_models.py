"""Small real ONNX models built in the tests, so the pipeline runs end to end without torch."""

from __future__ import annotations

import hashlib
from pathlib import Path

import onnx
from onnx import TensorProto, helper

CARD_TEMPLATE = """
schema = 1
name = "{name}"
version = "0.0.1"
task = "segmentation"
modality = "CT"
intended_use = "Test model: marks voxels brighter than -300 HU. Not for clinical use."
licence = "Apache-2.0"
authors = ["tests"]

[file]
onnx = "model.onnx"
sha256 = "{sha256}"

[input]
name = "input"
mode = "sliding_window"
shape_zyx = [{patch}, {patch}, {patch}]
{spacing_line}
orientation = "LPS"

[input.normalization]
method = "ct_window"
window = [-1000.0, 400.0]

[output]
name = "output"
activation = "sigmoid"

[[output.labels]]
value = 1
name = "lesion"
colour = "#ff5050"
channel = 0

[postprocessing]
threshold = 0.5
min_lesion_volume_mm3 = {min_volume}

[sliding_window]
overlap = 0.5
batch_size = 2
"""


def threshold_model(path: Path) -> Path:
    """output = sigmoid(40 * (input - 0.5)): with a [-1000, 400] HU window, > -300 HU is lesion."""
    graph = helper.make_graph(
        [
            helper.make_node("Sub", ["input", "half"], ["centred"]),
            helper.make_node("Mul", ["centred", "gain"], ["scaled"]),
            helper.make_node("Sigmoid", ["scaled"], ["output"]),
        ],
        "threshold",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 1, "z", "y", "x"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", 1, "z", "y", "x"])],
        [helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]),
         helper.make_tensor("gain", TensorProto.FLOAT, [], [40.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def make_model_folder(folder: Path, name: str = "threshold-test", patch: int = 16,
                      spacing: float | None = 1.0, min_volume: float = 0.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    onnx_path = threshold_model(folder / "model.onnx")
    sha = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    spacing_line = (f"target_spacing_xyz_mm = [{spacing}, {spacing}, {spacing}]"
                    if spacing is not None else "")
    (folder / "card.toml").write_text(CARD_TEMPLATE.format(
        name=name, sha256=sha, patch=patch, spacing_line=spacing_line, min_volume=min_volume))
    return folder
