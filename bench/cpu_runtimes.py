"""Benchmark: the CPU runtimes and precisions tried for the model stage, side by side.

Run: .venv/bin/python bench/cpu_runtimes.py [--tile 124 140 140] [--repeats 3] [--int8]
     [--model PATH.onnx]

One tile of the demo model (the size the pipeline runs on the 300x512x512 phantom) through
each runtime/setting, interleaved so all see the same machine load; medians. onnxruntime's CPU
provider with each graph optimisation level (ENABLE_ALL includes the NCHWc layout transform),
with and without its memory arena and thread spinning; OpenVINO's CPU plugin in float32 and
bfloat16 (where the CPU has it); with --int8, onnxruntime static quantisation (QDQ, per
channel, calibrated on tiles of training-seed phantoms) in both runtimes. Speed only: a reduced
precision is adopted only after the model's own validation (validate.py --precision ...
--against ...), see models/README.md. This picked inference/cpu_runtime.py's choice.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from meddiag_desktop.inference.cpu_runtime import _openvino, cpu_capabilities
from meddiag_desktop.inference.registry import ModelRegistry
from meddiag_desktop.inference.session import cpu_threads

Run = Callable[[np.ndarray], np.ndarray]


def onnxruntime_run(path: Path, level: str = "all", arena: bool = False,
                    spinning: bool = True) -> Run:
    import onnxruntime as ort  # after meddiag_desktop, which switches its telemetry off

    levels = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    }
    options = ort.SessionOptions()
    options.intra_op_num_threads = cpu_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = levels[level]
    options.enable_cpu_mem_arena = arena
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda batch: session.run(None, {name: batch})[0]


def openvino_run(path: Path, precision: str) -> Run:
    core = _openvino().Core()
    compiled = core.compile_model(core.read_model(str(path)), "CPU", {
        "INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1, "INFERENCE_NUM_THREADS": cpu_threads()})
    return lambda batch: np.array(compiled.create_infer_request().infer({0: batch})[0])


def quantised(path: Path, folder: Path) -> Path:
    """int8 QDQ copy of the demo model, calibrated on training-seed phantom tiles."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from meddiag_desktop.demo.phantom import make_phantom
    from meddiag_desktop.inference.plan import InferencePlan

    card = ModelRegistry().find("demo-lung-nodules")
    tiles = []
    for seed in (10, 20):  # training seeds: calibration must not see held-out phantoms
        volume = make_phantom(seed=seed, shape_zyx=(160, 256, 256),
                              spacing_xyz_mm=(0.9, 0.9, 1.5)).volume
        array = InferencePlan.make(volume, card).apply(volume)
        for z in range(0, array.shape[0] - 63, 40):
            for y in range(0, array.shape[1] - 63, 48):
                tiles.append(np.ascontiguousarray(array[z:z + 64, y:y + 64, 40:104])[None, None])

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.tiles = iter(tiles)

        def get_next(self):
            tile = next(self.tiles, None)
            return None if tile is None else {"input": tile}

    prepared, out = folder / "prepared.onnx", folder / "int8.onnx"
    quant_pre_process(str(path), str(prepared), skip_symbolic_shape=True)
    quantize_static(str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, help="ONNX file (default: the demo model)")
    parser.add_argument("--tile", type=int, nargs=3, default=(124, 140, 140))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--int8", action="store_true", help="also int8 (static quantisation)")
    args = parser.parse_args()
    path = args.model or ModelRegistry().find("demo-lung-nodules").onnx_path
    candidates: dict[str, Callable[[], Run]] = {
        "onnxruntime all (NCHWc), no arena": lambda: onnxruntime_run(path),
        "onnxruntime all, arena": lambda: onnxruntime_run(path, arena=True),
        "onnxruntime all, no spinning": lambda: onnxruntime_run(path, spinning=False),
        "onnxruntime extended": lambda: onnxruntime_run(path, "extended"),
        "onnxruntime basic": lambda: onnxruntime_run(path, "basic"),
    }
    if _openvino() is not None:
        candidates["OpenVINO float32"] = lambda: openvino_run(path, "f32")
        if "BF16" in cpu_capabilities():
            candidates["OpenVINO bfloat16"] = lambda: openvino_run(path, "bf16")
    folder = Path(tempfile.mkdtemp(prefix="meddiag-int8-"))
    if args.int8:
        int8 = quantised(path, folder)
        candidates["onnxruntime int8 (QDQ)"] = lambda: onnxruntime_run(int8)
        if _openvino() is not None:
            candidates["OpenVINO int8 (QDQ)"] = lambda: openvino_run(int8, "f32")
    batch = np.random.default_rng(0).random((1, 1, *args.tile), dtype=np.float32)
    runs = {name: make() for name, make in candidates.items()}
    reference = runs["onnxruntime all (NCHWc), no arena"](batch)
    differences = {name: float(np.abs(run(batch) - reference).max()) for name, run in runs.items()}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.repeats):
        for name, run in runs.items():
            clock = time.perf_counter()
            run(batch)
            times[name].append(time.perf_counter() - clock)
    baseline = statistics.median(times["onnxruntime all (NCHWc), no arena"])
    print(f"tile {tuple(args.tile)}, {cpu_threads()} threads, medians of {args.repeats}")
    for name in runs:
        median = statistics.median(times[name])
        print(f"  {name:36} {median:6.2f} s  {baseline / median:4.2f}x  "
              f"max |diff| {differences[name]:.1e}")


if __name__ == "__main__":
    main()
