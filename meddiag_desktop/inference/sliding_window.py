"""Sliding-window inference with Gaussian blending, batched, cancellable, memory-bounded.

Windows overlap so that every voxel is seen near some window's centre, where a CNN is most
reliable; the Gaussian weights favour those centre predictions. The blend is accumulated in
place into two float32 buffers (PITFALLS.md: the usual ``acc = acc + p * w`` costs 2.7x more),
and the loop is a generator that yields after every batch so a GUI can show progress and stop.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass

import numpy as np

from meddiag_desktop.domain import Progress

RunBatch = Callable[[np.ndarray], np.ndarray]  # (B, 1, z, y, x) float32 -> (B, C, z, y, x)


class InferenceCancelled(Exception):
    """The user stopped the run; nothing partial is kept."""


class CancelToken:
    """Set from any thread; checked by the pipeline between windows.

    Callbacks registered with :meth:`on_cancel` run (in the cancelling thread) when it is set,
    e.g. to stop a model call already running on a large tile.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []

    def cancel(self) -> None:
        with self._lock:
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once when cancelled (at once if it already is)."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return
        callback()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise InferenceCancelled("inference was cancelled")


@dataclass(frozen=True)
class WindowPlan:
    patch_zyx: tuple[int, int, int]
    overlap: float
    batch_size: int
    sigma_scale: float


def window_starts(size: int, patch: int, overlap: float) -> list[int]:
    """Evenly spread starts covering [0, size) with at least the requested overlap."""
    if size <= patch:
        return [0]
    step = max(1, int(patch * (1.0 - overlap)))
    count = int(np.ceil((size - patch) / step)) + 1
    return [round(v) for v in np.linspace(0, size - patch, count)]


def gaussian_weights(patch_zyx: tuple[int, int, int], sigma_scale: float) -> np.ndarray:
    """Separable Gaussian importance map, peak 1, never exactly 0 (edges still count a bit)."""
    weights = np.ones(patch_zyx, dtype=np.float32)
    for axis, size in enumerate(patch_zyx):
        centre = (size - 1) / 2.0
        sigma = max(size * sigma_scale, 1e-3)
        profile = np.exp(-0.5 * ((np.arange(size) - centre) / sigma) ** 2).astype(np.float32)
        shape = [1, 1, 1]
        shape[axis] = size
        weights *= profile.reshape(shape)
    np.maximum(weights, 1e-3, out=weights)
    return weights


def sliding_window(
    array_zyx: np.ndarray,
    run_batch: RunBatch,
    channels: int,
    plan: WindowPlan,
    cancel: CancelToken | None = None,
    progress_span: tuple[float, float] = (0.0, 1.0),
) -> Generator[Progress, None, np.ndarray]:
    """Blend window outputs into a (C, z, y, x) float32 map; yields Progress per batch."""
    padded, crop = _pad_to_patch(array_zyx, plan.patch_zyx)
    shape = padded.shape
    starts = list(
        itertools.product(
            *(window_starts(s, p, plan.overlap) for s, p in zip(shape, plan.patch_zyx, strict=True))
        )
    )
    weights = gaussian_weights(plan.patch_zyx, plan.sigma_scale)
    accumulated = np.zeros((channels, *shape), dtype=np.float32)
    weight_sum = np.zeros(shape, dtype=np.float32)
    pz, py, px = plan.patch_zyx
    batch = np.empty((plan.batch_size, 1, pz, py, px), dtype=np.float32)
    scratch = np.empty((channels, pz, py, px), dtype=np.float32)
    start_fraction, end_fraction = progress_span
    for first in range(0, len(starts), plan.batch_size):
        if cancel is not None:
            cancel.raise_if_cancelled()
        chunk = starts[first : first + plan.batch_size]
        for slot, (z, y, x) in enumerate(chunk):
            batch[slot, 0] = padded[z : z + pz, y : y + py, x : x + px]
        output = run_batch(batch[: len(chunk)])
        if output.shape[1] != channels or output.shape[2:] != plan.patch_zyx:
            raise ValueError(
                f"the model returned shape {output.shape[1:]}, expected "
                f"({channels}, {pz}, {py}, {px})"
            )
        for slot, (z, y, x) in enumerate(chunk):
            np.multiply(output[slot], weights, out=scratch)
            accumulated[:, z : z + pz, y : y + py, x : x + px] += scratch
            weight_sum[z : z + pz, y : y + py, x : x + px] += weights
        done = first + len(chunk)
        fraction = start_fraction + (end_fraction - start_fraction) * done / len(starts)
        yield Progress(fraction, "running model", f"window {done} of {len(starts)}")
    accumulated /= weight_sum
    return accumulated[(slice(None), *crop)]


def _pad_to_patch(
    array: np.ndarray, patch: tuple[int, int, int]
) -> tuple[np.ndarray, tuple[slice, slice, slice]]:
    """Pad small volumes up to one patch with the background value."""
    pads = [(0, max(0, p - s)) for s, p in zip(array.shape, patch, strict=True)]
    crop = tuple(slice(0, s) for s in array.shape)
    if not any(after for _, after in pads):
        return array, crop  # type: ignore[return-value]
    return np.pad(array, pads, mode="constant", constant_values=float(array.min())), crop  # type: ignore[return-value]
