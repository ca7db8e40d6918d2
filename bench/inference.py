"""Benchmark: the full inference pipeline on a 512x512x300 CT phantom, against a naive loop.

Run: .venv/bin/python bench/inference.py [--repeats 3] [--model demo-lung-nodules] [--json]

Both runs share loading, preprocessing and the mapping back; the naive baseline differs in the
sliding window only: one window per model call, and the Gaussian blend written the usual way
(a fresh weight map and fresh temporaries per window). Memory is the peak resident size above
what the process held before the run (the phantom itself already in memory), sampled every 2 ms.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import threading
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from meddiag_desktop.demo.phantom import make_phantom
from meddiag_desktop.inference import pipeline as pipeline_module
from meddiag_desktop.inference.card import ModelCard
from meddiag_desktop.inference.pipeline import InferenceOptions, run_inference, run_to_end
from meddiag_desktop.inference.registry import ModelRegistry
from meddiag_desktop.inference.sliding_window import window_starts


def conv_flops(onnx_path: Path, patch_zyx: tuple[int, int, int]) -> int:
    """Multiply-adds x2 of every Conv/ConvTranspose for one patch (shape inference)."""
    model = onnx.load(str(onnx_path))
    graph = model.graph
    graph.input[0].type.tensor_type.shape.ClearField("dim")
    for size in (1, 1, *patch_zyx):
        graph.input[0].type.tensor_type.shape.dim.add().dim_value = size
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {}
    for value in (*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input):
        dims = [d.dim_value for d in value.type.tensor_type.shape.dim]
        shapes[value.name] = dims
    weights = {init.name: list(init.dims) for init in inferred.graph.initializer}
    total = 0
    for node in inferred.graph.node:
        if node.op_type not in ("Conv", "ConvTranspose"):
            continue
        kernel = weights.get(node.input[1])
        if kernel is None:
            continue
        if node.op_type == "Conv":
            out = shapes.get(node.output[0])
            if not out:
                continue
            c_in_per_group = kernel[1]
            total += 2 * int(np.prod(out)) * c_in_per_group * int(np.prod(kernel[2:]))
        else:
            inp = shapes.get(node.input[0])
            if not inp:
                continue
            c_out_per_group = kernel[1]  # weights are [C_in, C_out / group, k...]
            total += 2 * int(np.prod(inp)) * c_out_per_group * int(np.prod(kernel[2:]))
    return total


class PeakMemory:
    """Peak resident set size above the starting point, sampled in a thread."""

    def __init__(self) -> None:
        self.start = self._rss()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.002)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def increase(self) -> int:
        return self.peak - self.start


def naive_sliding_window(array, run_batch, channels, plan, cancel=None, progress_span=(0, 1)):
    """The textbook loop: batch of one, Gaussian rebuilt and blended with temporaries."""
    patch = plan.patch_zyx
    shape = array.shape
    accumulated = np.zeros((channels, *shape), np.float32)
    weight_sum = np.zeros(shape, np.float32)
    starts = list(itertools.product(*(window_starts(s, p, plan.overlap)
                                      for s, p in zip(shape, patch, strict=True))))
    for z, y, x in starts:
        window = array[z:z + patch[0], y:y + patch[1], x:x + patch[2]][None, None]
        output = run_batch(np.ascontiguousarray(window))[0]
        grids = np.meshgrid(*[np.arange(p) - (p - 1) / 2 for p in patch], indexing="ij")
        sigma = [p * plan.sigma_scale for p in patch]
        gauss = np.exp(-0.5 * sum((g / s) ** 2 for g, s in zip(grids, sigma, strict=True)))
        gauss = np.maximum(gauss, 1e-3)
        region = (slice(None), slice(z, z + patch[0]), slice(y, y + patch[1]),
                  slice(x, x + patch[2]))
        accumulated[region] = accumulated[region] + output * gauss
        weight_sum[region[1:]] = weight_sum[region[1:]] + gauss
        yield pipeline_module.Progress(0.5, "running model", "")
    return accumulated / weight_sum


def run_once(volume, card: ModelCard, naive: bool) -> tuple[dict, int, int]:
    original = pipeline_module.sliding_window
    if naive:
        pipeline_module.sliding_window = naive_sliding_window
    windows = 0
    try:
        with PeakMemory() as memory:
            def count(progress) -> None:
                nonlocal windows
                windows += progress.stage == "running model"
            result = run_to_end(run_inference(volume, card, InferenceOptions(provider="cpu")),
                                count)
    finally:
        pipeline_module.sliding_window = original
    return result.timings_s, memory.increase, len(result.findings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="demo-lung-nodules")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shape", type=int, nargs=3, default=(300, 512, 512), metavar=("Z", "Y",
                                                                                        "X"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    card = ModelRegistry().find(args.model)
    clock = time.perf_counter()
    phantom = make_phantom(seed=4242, shape_zyx=tuple(args.shape),
                           spacing_xyz_mm=(0.68, 0.68, 1.0))
    volume = phantom.volume
    make_s = time.perf_counter() - clock
    flops_per_patch = conv_flops(card.onnx_path, card.input.shape_zyx)

    fast, naive = [], []
    for _ in range(args.repeats):
        fast.append(run_once(volume, card, naive=False))
        naive.append(run_once(volume, card, naive=True))

    def median(runs, key):
        return statistics.median(r[0][key] for r in runs)

    model_space = [round(s * v / t) for s, v, t in zip(
        volume.shape_zyx, volume.spacing_xyz_mm[::-1], card.input.target_spacing_xyz_mm[::-1],
        strict=True)]
    windows = int(np.prod([len(window_starts(s, p, card.sliding_window.overlap))
                           for s, p in zip(model_space, card.input.shape_zyx, strict=True)]))
    model_s = median(fast, "model")
    input_f32 = volume.array_zyx.size * 4
    model_bytes = card.onnx_path.stat().st_size
    peak = statistics.median(r[1] for r in fast)
    figures = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "onnxruntime": ort.__version__, "numpy": np.__version__},
        "volume_zyx": list(volume.shape_zyx), "phantom_seconds": round(make_s, 1),
        "model": f"{card.name} {card.version}", "windows": windows,
        "gflop_per_window": round(flops_per_patch / 1e9, 3),
        "median_s": {k: round(median(fast, k), 2) for k in fast[0][0]},
        "naive_median_s": {k: round(median(naive, k), 2) for k in naive[0][0]},
        "speedup_vs_naive_total": round(median(naive, "total") / median(fast, "total"), 2),
        "speedup_vs_naive_model_stage": round(median(naive, "model") / model_s, 2),
        "achieved_gflops": round(windows * flops_per_patch / 1e9 / model_s, 1),
        "peak_memory_mb": round(peak / 2**20),
        "memory_budget_mb": round((3 * input_f32 + model_bytes) / 2**20),
        "naive_peak_memory_mb": round(statistics.median(r[1] for r in naive) / 2**20),
        "findings": fast[0][2],
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"phantom {figures['volume_zyx']} made in {make_s:.0f} s; model {figures['model']}; "
          f"{windows} windows of {card.input.shape_zyx} ({figures['gflop_per_window']} GFLOP "
          "each)")
    print("stage            optimised  naive   (median seconds, CPU)")
    for key in fast[0][0]:
        print(f"  {key:14} {median(fast, key):8.2f} {median(naive, key):8.2f}")
    print(f"speed-up vs naive: {figures['speedup_vs_naive_total']}x total, "
          f"{figures['speedup_vs_naive_model_stage']}x model stage (target > 1)")
    print(f"achieved {figures['achieved_gflops']} GFLOP/s in the model stage")
    print(f"peak memory above start: {figures['peak_memory_mb']} MB (budget 3 x input float32 "
          f"+ model = {figures['memory_budget_mb']} MB); naive {figures['naive_peak_memory_mb']}"
          " MB")
    print(f"machine: {figures['machine']}")


if __name__ == "__main__":
    main()
