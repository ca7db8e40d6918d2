"""Small real ONNX models built in the tests, so the pipeline runs end to end without torch."""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

import numpy as np
import onnx
from model_signing import sign_test_model
from onnx import TensorProto, helper, numpy_helper

from meddiag_desktop.inference.card import CardError

CARD_TEMPLATE = """
schema = 1
name = "{name}"
version = "0.0.1"
task = "segmentation"
modality = "CT"
intended_use = "Test model: marks voxels brighter than -300 HU. Not for clinical use."
licence = "Apache-2.0"
authors = ["tests"]

{anatomy}
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
{tiling}
"""


CHEST_ANATOMY = """[anatomy]
region = "chest"
body_parts = ["CHEST", "LUNG"]
words = ["chest", "thorax", "lung"]
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


def conv_model(path: Path, seed: int = 0) -> Path:
    """A tiny fully convolutional U-Net: conv, max-pool, conv, transposed conv, skip, sigmoid.

    Like the demo model it needs sides that are multiples of 2 (one pooling) and its output at
    a voxel depends on the input up to CONV_MODEL_RADIUS voxels away.
    """
    rng = np.random.default_rng(seed)

    def weights(name: str, *shape: int, scale: float = 1.0) -> onnx.TensorProto:
        return numpy_helper.from_array(
            (rng.standard_normal(shape) * scale).astype(np.float32), name
        )

    graph = helper.make_graph(
        [
            helper.make_node("Sub", ["input", "half"], ["centred"]),
            helper.make_node("Conv", ["centred", "w1", "b1"], ["c1"], pads=[1] * 6),
            helper.make_node("Relu", ["c1"], ["r1"]),
            helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2, 2], strides=[2, 2, 2]),
            helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], pads=[1] * 6),
            helper.make_node("Relu", ["c2"], ["r2"]),
            helper.make_node("ConvTranspose", ["r2", "w3"], ["u1"], strides=[2, 2, 2]),
            helper.make_node("Add", ["u1", "r1"], ["s1"]),
            helper.make_node("Conv", ["s1", "w4"], ["logits"]),
            helper.make_node("Sigmoid", ["logits"], ["output"]),
        ],
        "conv",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 1, "z", "y", "x"])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["n", 1, "z", "y", "x"])],
        [
            helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]),
            weights("w1", 4, 1, 3, 3, 3, scale=2.0),
            weights("b1", 4, scale=0.1),
            weights("w2", 4, 4, 3, 3, 3, scale=0.3),
            weights("b2", 4, scale=0.1),
            weights("w3", 4, 4, 2, 2, 2, scale=0.5),
            weights("w4", 1, 4, 1, 1, 1),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


# conv 3 (1) + pool + conv 3 at half resolution (2 + 1) + transposed conv (1): at most 5.
CONV_MODEL_RADIUS = 5


def make_model_folder(folder: Path, name: str = "threshold-test", patch: int = 16,
                      spacing: float | None = 1.0, min_volume: float = 0.0,
                      model: str = "threshold", tiling: str = "",
                      anatomy: str = CHEST_ANATOMY, signed: bool = True) -> Path:
    """A model folder with a card; ``model`` "conv" is the tiny U-Net, ``tiling`` extra lines
    for [sliding_window] (e.g. max_tile_zyx), ``anatomy`` the [anatomy] table ("" for none);
    ``signed`` with the test key (trusted for the session by tests/conftest.py), as a real
    package must be to run."""
    folder.mkdir(parents=True, exist_ok=True)
    build = conv_model if model == "conv" else threshold_model
    onnx_path = build(folder / "model.onnx")
    sha = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    spacing_line = (f"target_spacing_xyz_mm = [{spacing}, {spacing}, {spacing}]"
                    if spacing is not None else "")
    (folder / "card.toml").write_text(CARD_TEMPLATE.format(
        name=name, sha256=sha, patch=patch, spacing_line=spacing_line, min_volume=min_volume,
        tiling=tiling, anatomy=anatomy))
    if signed:
        # A deliberately broken card stays unsigned: `models sign` refuses it too.
        with contextlib.suppress(CardError):
            sign_test_model(folder)
    return folder
