"""Benchmark: the full inference pipeline on a 512x512x300 CT phantom, against a naive loop.

Run: .venv/bin/python bench/inference.py [--repeats 3] [--model demo-lung-nodules] [--json]
     [--provider cpu|cuda|tensorrt] [--runtime openvino|onnxruntime] [--precision bfloat16]

Both runs share loading, preprocessing and the mapping back; the naive baseline differs in the
model stage only: the textbook sliding window over the card's patch (64^3, its 50% overlap), one
window per model call, and the Gaussian blend written the usual way (a fresh weight map and
fresh temporaries per window). The optimised run uses what the card allows (large tiles for a
fully convolutional model). GFLOP/s are the convolution FLOPs of the model calls actually made
(every input shape counted, by ONNX shape inference) over the model stage's time; the naive
baseline's FLOPs are printed too. Memory is the peak resident size above what the process held
before the run (the phantom itself already in memory), sampled every 2 ms. The last runs'
outputs are compared voxel by voxel (probability difference, Dice of the masks, findings).

A third run is the optimised one on onnxruntime's CPU provider (the runtime before
inference/cpu_runtime.py chose OpenVINO), for the end-to-end speed-up over it. The paired SGEMM
is numpy's float32 matmul, timed between the runs (so under the same load): 8192 x 864 @ 864 x
864, the model's widest convolution as an im2col GEMM (864 = 32 channels x 27 taps) with as
many output columns as it is deep, a shape BLAS runs near its peak; the rate of the model's own
skinny GEMM shapes (N = its 8-32 output channels, where BLAS is far slower) is printed beside
it. The bench ends with three lines a script can read: the model stage's FLOP rate as a share
of the paired SGEMM rate, the end-to-end speed-up over the naive loop, and postprocessing's
share of the total.
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
from meddiag_desktop.inference.pipeline import (
    InferenceOptions,
    InferenceResult,
    run_inference,
    run_to_end,
)
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


def run_once(
    volume, card: ModelCard, naive: bool, provider: str = "cpu", runtime: str | None = None,
    precision: str | None = None,
) -> tuple[dict, int, InferenceResult]:
    original = pipeline_module.sliding_window
    if naive:
        pipeline_module.sliding_window = naive_sliding_window
    options = InferenceOptions(provider=provider, large_tiles=not naive, runtime=runtime,
                               precision=precision, allow_unvalidated_precision=True)
    try:
        with PeakMemory() as memory:
            result = run_to_end(run_inference(volume, card, options))
    finally:
        pipeline_module.sliding_window = original
    return result.timings_s, memory.increase, result


def sgemm_rate(m: int, k: int, n: int, repeats: int = 5) -> float:
    """numpy float32 matmul (m x k) @ (k x n), median GFLOP/s (buffers made once)."""
    rng = np.random.default_rng(0)
    a, b = rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32)
    out = np.empty((m, n), dtype=np.float32)
    np.matmul(a, b, out=out)  # warm-up
    times = []
    for _ in range(repeats):
        clock = time.perf_counter()
        np.matmul(a, b, out=out)
        times.append(time.perf_counter() - clock)
    return 2 * m * k * n / statistics.median(times) / 1e9


def conv_gemm_shapes(onnx_path: Path) -> list[tuple[int, int]]:
    """(K, N) of each convolution as an im2col GEMM: K = C_in x taps, N = C_out."""
    model = onnx.load(str(onnx_path))
    weights = {init.name: list(init.dims) for init in model.graph.initializer}
    shapes = []
    for node in model.graph.node:
        kernel = weights.get(node.input[1]) if len(node.input) > 1 else None
        if node.op_type == "Conv" and kernel:
            shapes.append((int(np.prod(kernel[1:])), kernel[0]))
        elif node.op_type == "ConvTranspose" and kernel:
            shapes.append((kernel[0], int(np.prod(kernel[1:]))))
    return shapes


def paired_sgemm(onnx_path: Path) -> tuple[float, float]:
    """(paired SGEMM GFLOP/s, GFLOP/s on the model's own GEMM shapes, equal FLOPs each)."""
    shapes = conv_gemm_shapes(onnx_path)
    depth = max(k for k, _ in shapes)
    paired = sgemm_rate(8192, depth, depth)
    own = len(shapes) / sum(1.0 / sgemm_rate(32768, k, n, 3) for k, n in shapes)
    return paired, own


class FlopCounter:
    """Convolution FLOPs of a list of model inputs (N, 1, z, y, x), one shape inference each."""

    def __init__(self, onnx_path: Path) -> None:
        self.onnx_path = onnx_path
        self._per_shape: dict[tuple[int, int, int], int] = {}

    def __call__(self, inputs) -> int:
        total = 0
        for shape in inputs:
            spatial = tuple(int(v) for v in shape[2:])
            if spatial not in self._per_shape:
                self._per_shape[spatial] = conv_flops(self.onnx_path, spatial)
            total += int(shape[0]) * self._per_shape[spatial]
        return total


def compare(fast: InferenceResult, naive: InferenceResult) -> dict:
    """Voxel-wise agreement of the two runs' outputs on the scan's grid."""
    a, b = fast.segmentation, naive.segmentation
    assert a.probability_zyx is not None and b.probability_zyx is not None
    difference = 0.0
    for first in range(0, a.labels_zyx.shape[0], 16):  # slab by slab: no full-size temporaries
        pa, pb = a.probability_zyx[first:first + 16], b.probability_zyx[first:first + 16]
        difference = max(difference, float(np.abs(pa - pb).max()))
    mask_a, mask_b = a.labels_zyx > 0, b.labels_zyx > 0
    both, total = int(np.logical_and(mask_a, mask_b).sum()), int(mask_a.sum() + mask_b.sum())
    return {
        "max_abs_probability_difference": round(difference, 4),
        "mask_dice": round(2 * both / total, 4) if total else 1.0,
        "voxels_differing": int(np.logical_xor(mask_a, mask_b).sum()),
        "mask_voxels": [int(mask_a.sum()), int(mask_b.sum())],
        "findings": [len(fast.findings), len(naive.findings)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="demo-lung-nodules")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shape", type=int, nargs=3, default=(300, 512, 512), metavar=("Z", "Y",
                                                                                        "X"))
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--provider", choices=("cpu", "cuda", "tensorrt"), default="cpu",
                        help="execution provider for both runs (GPU: gpu_options.py settings)")
    parser.add_argument("--runtime", choices=("openvino", "onnxruntime"),
                        help="CPU runtime of the optimised run (default: as the app chooses)")
    parser.add_argument("--precision", choices=("float32", "bfloat16"),
                        help="precision of the optimised run, validated or not (default: as "
                        "the app chooses from the card)")
    args = parser.parse_args()

    card = ModelRegistry().find(args.model)
    clock = time.perf_counter()
    phantom = make_phantom(seed=4242, shape_zyx=tuple(args.shape),
                           spacing_xyz_mm=(0.68, 0.68, 1.0))
    volume = phantom.volume
    make_s = time.perf_counter() - clock
    flops = FlopCounter(card.onnx_path)
    flops_per_patch = flops([(1, 1, *card.input.shape_zyx)])

    fast, naive, before = [], [], []
    sgemm, own_sgemm = [], []
    last_fast = last_naive = last_before = None  # only the last results are kept
    for _ in range(args.repeats):  # interleaved, so all see the same machine load
        last_fast = None
        timings, memory, last_fast = run_once(volume, card, naive=False, provider=args.provider,
                                              runtime=args.runtime, precision=args.precision)
        fast.append((timings, memory))
        paired, own = paired_sgemm(card.onnx_path)
        sgemm.append(paired)
        own_sgemm.append(own)
        if args.provider == "cpu":
            last_before = None
            timings, memory, last_before = run_once(volume, card, naive=False,
                                                    runtime="onnxruntime")
            before.append((timings, memory))
        last_naive = None
        timings, memory, last_naive = run_once(volume, card, naive=True, provider=args.provider,
                                               runtime="onnxruntime")
        naive.append((timings, memory))
    assert last_fast is not None and last_naive is not None
    agreement = compare(last_fast, last_naive)
    same_as_onnxruntime = compare(last_fast, last_before) if last_before is not None else None

    def median(runs, key):
        return statistics.median(r[0][key] for r in runs)

    model_s, naive_model_s = median(fast, "model"), median(naive, "model")
    fast_flops, naive_flops = flops(last_fast.model_inputs), flops(last_naive.model_inputs)
    input_f32 = volume.array_zyx.size * 4
    model_bytes = card.onnx_path.stat().st_size
    peak = statistics.median(r[1] for r in fast)
    paired_rate, own_rate = statistics.median(sgemm), statistics.median(own_sgemm)
    achieved = fast_flops / 1e9 / model_s
    postprocess_share = median(fast, "postprocess") / median(fast, "total")
    runtime = last_fast.runtime.describe() if last_fast.runtime is not None else "onnxruntime"
    figures = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "onnxruntime": ort.__version__, "numpy": np.__version__},
        "provider": last_fast.provider.describe(),
        "volume_zyx": list(volume.shape_zyx), "phantom_seconds": round(make_s, 1),
        "model": f"{card.name} {card.version}",
        "plan": last_fast.plan, "naive_plan": last_naive.plan,
        "model_calls": len(last_fast.model_inputs),
        "naive_model_calls": len(last_naive.model_inputs),
        "gflop_per_patch": round(flops_per_patch / 1e9, 3),
        "gflop_executed": round(fast_flops / 1e9, 1),
        "naive_gflop_executed": round(naive_flops / 1e9, 1),
        "median_s": {k: round(median(fast, k), 2) for k in fast[0][0]},
        "naive_median_s": {k: round(median(naive, k), 2) for k in naive[0][0]},
        "speedup_vs_naive_total": round(median(naive, "total") / median(fast, "total"), 2),
        "speedup_vs_naive_model_stage": round(naive_model_s / model_s, 2),
        "achieved_gflops": round(fast_flops / 1e9 / model_s, 1),
        "naive_achieved_gflops": round(naive_flops / 1e9 / naive_model_s, 1),
        "runtime": runtime,
        "paired_sgemm_gflops": round(paired_rate, 1),
        "model_gemm_shapes_sgemm_gflops": round(own_rate, 1),
        "model_stage_share_of_paired_sgemm": round(achieved / paired_rate, 3),
        "postprocess_share_of_total": round(postprocess_share, 4),
        "onnxruntime_median_s": (
            {k: round(median(before, k), 2) for k in before[0][0]} if before else None
        ),
        "speedup_vs_onnxruntime_total": (
            round(median(before, "total") / median(fast, "total"), 2) if before else None
        ),
        "onnxruntime_peak_memory_mb": (
            round(statistics.median(r[1] for r in before) / 2**20) if before else None
        ),
        "agreement_with_onnxruntime": same_as_onnxruntime,
        "peak_memory_mb": round(peak / 2**20),
        "memory_budget_mb": round((3 * input_f32 + model_bytes) / 2**20),
        "naive_peak_memory_mb": round(statistics.median(r[1] for r in naive) / 2**20),
        "findings": len(last_fast.findings),
        "agreement_with_naive": agreement,
    }
    closing = [
        f"model stage: {100 * achieved / paired_rate:.0f}% of paired SGEMM",
        f"speed-up vs naive: {median(naive, 'total') / median(fast, 'total'):.1f}x",
        f"postprocess: {100 * postprocess_share:.0f}% of total",
    ]
    if args.json:
        print(json.dumps(figures, indent=2))
        print("\n".join(closing))
        return
    print(f"phantom {figures['volume_zyx']} made in {make_s:.0f} s; model {figures['model']}")
    print(f"optimised: {figures['plan']}: {figures['model_calls']} model calls, "
          f"{figures['gflop_executed']} GFLOP")
    print(f"naive:     {figures['naive_plan']}: {figures['naive_model_calls']} model calls of "
          f"{card.input.shape_zyx} ({figures['gflop_per_patch']} GFLOP each), "
          f"{figures['naive_gflop_executed']} GFLOP")
    print(f"runtime: {runtime}")
    print("stage            optimised  onnxruntime  naive   (median seconds)")
    for key in fast[0][0]:
        today = f"{median(before, key):8.2f}" if before else "       -"
        print(f"  {key:14} {median(fast, key):8.2f}     {today} {median(naive, key):8.2f}")
    if before:
        print(f"speed-up vs onnxruntime (same tiles): {figures['speedup_vs_onnxruntime_total']}x "
              f"total; peak memory {figures['onnxruntime_peak_memory_mb']} MB; agreement "
              f"{json.dumps(same_as_onnxruntime)}")
    print(f"paired SGEMM (numpy float32, 8192x864 @ 864x864): {paired_rate:.1f} GFLOP/s; on the "
          f"model's own GEMM shapes {own_rate:.1f} GFLOP/s (model stage {achieved:.1f} = "
          f"{100 * achieved / own_rate:.0f}% of that)")
    print(f"speed-up vs naive: {figures['speedup_vs_naive_total']}x total, "
          f"{figures['speedup_vs_naive_model_stage']}x model stage (target > 1)")
    print(f"achieved {figures['achieved_gflops']} GFLOP/s in the model stage "
          f"(naive {figures['naive_achieved_gflops']} GFLOP/s)")
    print(f"peak memory above start: {figures['peak_memory_mb']} MB (budget 3 x input float32 "
          f"+ model = {figures['memory_budget_mb']} MB); naive {figures['naive_peak_memory_mb']}"
          " MB")
    print(f"agreement with the naive 64^3 result: {json.dumps(agreement)}")
    print(f"provider: {last_fast.provider.describe()}")
    print(f"machine: {figures['machine']}")
    print("\n".join(closing))


if __name__ == "__main__":
    main()
