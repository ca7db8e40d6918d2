"""Train the demo lung-nodule model on synthetic phantoms, on the CPU, and write model + card.

    .venv/bin/python models/demo_lung_nodules/train.py --out models/demo_lung_nodules

Needs the ``train`` extra (``pip install -e .[train]``: torch, onnx). Steps:

1. Make training phantoms from seeds 0..N-1 (seeds >= 1000 are held out) at random realistic
   spacings, resample them like the app does before inference (SimpleITK linear to 1.5 mm
   isotropic, nearest neighbour for the mask), and cache them in a temporary folder.
2. Train a small 3-D U-Net (3 levels, 8-16-32 channels, sigmoid, Dice + BCE) on patches, most
   of them centred on nodules or on vessels (the hard negatives): first many 32^3 patches, then
   64^3 patches, the size the model runs at. A wall-clock budget stops training early if the
   machine is slow; the card records the steps actually done.
3. Export ``model.onnx`` (opset 17, dynamic batch and spatial axes, sigmoid probabilities).
4. Check it on held-out phantoms (seeds 1000-1009) with a sliding window (64^3, overlap 0.5,
   Gaussian blending) in onnxruntime, then write ``card.toml`` with the figures.

Everything is seeded; the same machine gives the same model (up to thread scheduling in the
CPU kernels).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from meddiag_desktop.demo import make_phantom  # noqa: E402

TARGET_SPACING_MM = 1.5
WINDOW_HU = (-1000.0, 400.0)
PATCH = 64
HELD_OUT_SEEDS = tuple(range(1000, 1010))
FIRST_HELD_OUT_SEED = 1000
CHANNELS = (8, 16, 32)
THRESHOLD = 0.5
MIN_LESION_MM3 = 15.0
OVERLAP = 0.5
SIGMA_SCALE = 0.125
FOV_MM = 345.0


# ----------------------------------------------------------------------------- data


@dataclass
class Case:
    seed: int
    hu: np.ndarray  # int16 (z, y, x) at 1.5 mm
    mask: np.ndarray  # uint8
    nodule_centres: np.ndarray  # (n, 3) z, y, x voxel indices on the resampled grid
    nodule_diameters: np.ndarray  # (n,) mm
    vessel_points: np.ndarray  # (m, 3) hard negatives: vessels inside the lungs
    border_points: np.ndarray  # (m, 3) hard negatives: pleura, mediastinum, diaphragm domes
    spacing_xyz_mm: tuple[float, float, float]  # of the original phantom


def acquisition(seed: int) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
    """A realistic random acquisition for a seed: in-plane 0.6-1.0 mm, slices 1.0-2.5 mm."""
    rng = np.random.default_rng([seed, 4242])
    in_plane = float(rng.uniform(0.6, 1.0))
    slice_mm = float(rng.uniform(1.0, 2.5))
    extent_z = float(rng.uniform(270.0, 320.0))
    n_xy = round(FOV_MM / in_plane)
    return (round(extent_z / slice_mm), n_xy, n_xy), (in_plane, in_plane, slice_mm)


def resample(array: np.ndarray, spacing: tuple[float, float, float], origin, linear: bool):
    """Resample to 1.5 mm isotropic on the same origin, as the inference pipeline does."""
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    size = [
        max(1, round(n * s / TARGET_SPACING_MM))
        for n, s in zip(image.GetSize(), spacing, strict=True)
    ]
    interpolator = sitk.sitkLinear if linear else sitk.sitkNearestNeighbor
    out_type = sitk.sitkFloat32 if linear else sitk.sitkUInt8
    resampled = sitk.Resample(
        image,
        size,
        sitk.Transform(),
        interpolator,
        origin,
        (TARGET_SPACING_MM,) * 3,
        image.GetDirection(),
        -1024.0 if linear else 0.0,
        out_type,
    )
    result = sitk.GetArrayFromImage(resampled)
    if linear:
        return np.rint(result).astype(np.int16)
    return result.astype(np.uint8)


def phantom_version() -> str:
    """Hash of the phantom generator's source: the cache is rebuilt when it changes."""
    digest = hashlib.sha256()
    for name in ("anatomy.py", "nodules.py", "phantom.py", "tubes.py"):
        path = REPO / "meddiag_desktop" / "demo" / name
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def prepare_case(seed: int, cache: Path) -> Case:
    folder = cache / f"seed{seed:04d}"
    if not (folder / "done").exists():
        folder.mkdir(parents=True, exist_ok=True)
        shape, spacing = acquisition(seed)
        phantom = make_phantom(seed, shape, spacing)
        volume = phantom.volume
        hu = resample(volume.array_zyx, spacing, volume.origin_lps_mm, linear=True)
        mask = resample(phantom.mask_zyx, spacing, volume.origin_lps_mm, linear=False)
        centres = []
        for nodule in phantom.nodules:
            offset = np.asarray(nodule.centre_lps_mm) - np.asarray(volume.origin_lps_mm)
            x, y, z = offset / TARGET_SPACING_MM
            centres.append((z, y, x))
        np.save(folder / "hu.npy", hu)
        np.save(folder / "mask.npy", mask)
        np.save(folder / "vessels.npy", vessel_points(hu, mask, seed))
        meta = {
            "centres": centres,
            "diameters": [n.diameter_mm for n in phantom.nodules],
            "spacing": spacing,
        }
        (folder / "meta.json").write_text(json.dumps(meta))
        (folder / "done").write_text("ok")
    meta = json.loads((folder / "meta.json").read_text())
    return Case(
        seed=seed,
        hu=np.load(folder / "hu.npy"),
        mask=np.load(folder / "mask.npy"),
        nodule_centres=np.asarray(meta["centres"], dtype=float).reshape(-1, 3),
        nodule_diameters=np.asarray(meta["diameters"], dtype=float),
        vessel_points=np.load(folder / "vessels.npy"),
        border_points=_border_points(folder, seed),
        spacing_xyz_mm=tuple(meta["spacing"]),
    )


def _border_points(folder: Path, seed: int) -> np.ndarray:
    path = folder / "borders.npy"
    if not path.exists():
        np.save(path, border_points(np.load(folder / "hu.npy"), np.load(folder / "mask.npy"), seed))
    return np.load(path)


def border_points(hu: np.ndarray, mask: np.ndarray, seed: int, count: int = 4000) -> np.ndarray:
    """Soft-tissue voxels touching the lungs: chest wall, mediastinum, the diaphragm domes
    (whose tops look like large nodules in a single axial slice)."""
    near_lung = ndimage.maximum_filter(hu < -700, size=5)
    candidates = np.argwhere(
        (hu > -300) & near_lung & ~ndimage.binary_dilation(mask.astype(bool), iterations=3)
    )
    rng = np.random.default_rng([seed, 78])
    if len(candidates) > count:
        candidates = candidates[rng.choice(len(candidates), count, replace=False)]
    return candidates.astype(np.int32)


def vessel_points(hu: np.ndarray, mask: np.ndarray, seed: int, count: int = 4000) -> np.ndarray:
    """Voxels of vessels inside the lungs: dense tissue with air-filled surroundings."""
    dense = hu > -400
    surroundings = ndimage.uniform_filter(hu.astype(np.float32), 7)
    candidates = np.argwhere(
        dense & (surroundings < -450) & ~ndimage.binary_dilation(mask.astype(bool), iterations=3)
    )
    rng = np.random.default_rng([seed, 77])
    if len(candidates) > count:
        candidates = candidates[rng.choice(len(candidates), count, replace=False)]
    return candidates.astype(np.int32)


def normalise(hu: np.ndarray) -> np.ndarray:
    low, high = WINDOW_HU
    return np.clip((hu.astype(np.float32) - low) / (high - low), 0.0, 1.0)


def crop(array: np.ndarray, centre: np.ndarray, size: int, fill: float) -> np.ndarray:
    """A size^3 block around ``centre`` (z, y, x), padded with ``fill`` outside the array."""
    start = np.round(centre).astype(int) - size // 2
    out = np.full((size, size, size), fill, dtype=array.dtype)
    src_lo = np.maximum(start, 0)
    src_hi = np.minimum(start + size, array.shape)
    if np.any(src_hi <= src_lo):
        return out
    dst_lo = src_lo - start
    dst_hi = dst_lo + (src_hi - src_lo)
    out[dst_lo[0] : dst_hi[0], dst_lo[1] : dst_hi[1], dst_lo[2] : dst_hi[2]] = array[
        src_lo[0] : src_hi[0], src_lo[1] : src_hi[1], src_lo[2] : src_hi[2]
    ]
    return out


class PatchSampler:
    """Patches near nodules (50%, drawn with weight 1/diameter), on lung vessels (25%) and on
    the lungs' borders (15%), the hard negatives, and anywhere (10%)."""

    def __init__(self, cases: list[Case], seed: int) -> None:
        self.cases = cases
        self.rng = np.random.default_rng(seed)
        self.nodules = [(i, c) for i, case in enumerate(cases) for c in case.nodule_centres]
        diameters = np.concatenate([case.nodule_diameters for case in cases])
        weights = 1.0 / diameters if diameters.size else np.zeros(0)
        self.nodule_weights = weights / weights.sum() if weights.size else weights

    def batch(self, size: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        images = np.empty((count, 1, size, size, size), dtype=np.float32)
        labels = np.empty((count, 1, size, size, size), dtype=np.float32)
        for k in range(count):
            draw = self.rng.uniform()
            if draw < 0.5 and self.nodules:
                pick = self.rng.choice(len(self.nodules), p=self.nodule_weights)
                index, centre = self.nodules[pick]
                centre = centre + self.rng.uniform(-size / 3, size / 3, 3)
            else:
                index = int(self.rng.integers(len(self.cases)))
                case = self.cases[index]
                if draw < 0.75 and len(case.vessel_points):
                    centre = case.vessel_points[self.rng.integers(len(case.vessel_points))]
                    centre = centre + self.rng.uniform(-4, 4, 3)
                elif draw < 0.9 and len(case.border_points):
                    centre = case.border_points[self.rng.integers(len(case.border_points))]
                    centre = centre + self.rng.uniform(-6, 6, 3)
                else:
                    centre = self.rng.uniform(0, 1, 3) * np.asarray(case.hu.shape)
            case = self.cases[index]
            hu = crop(case.hu, centre, size, -1024).astype(np.float32)
            mask = crop(case.mask, centre, size, 0)
            hu = hu * self.rng.uniform(0.97, 1.03) + self.rng.uniform(-15, 15)
            if self.rng.uniform() < 0.5:  # left-right mirror
                hu, mask = hu[:, :, ::-1], mask[:, :, ::-1]
            images[k, 0] = normalise(hu)
            labels[k, 0] = mask
        return images, labels


# ----------------------------------------------------------------------------- model


def build_model():
    import torch
    from torch import nn

    def conv(i: int, o: int) -> list:
        return [
            nn.Conv3d(i, o, 3, padding=1, bias=False),
            nn.BatchNorm3d(o),
            nn.LeakyReLU(0.01, inplace=True),
        ]

    class UNet3D(nn.Module):
        """3 levels (8-16-32 channels), additive skips; light at full resolution for the CPU."""

        def __init__(self, c: tuple[int, int, int] = CHANNELS) -> None:
            super().__init__()
            self.enc1 = nn.Sequential(*conv(1, c[0]), *conv(c[0], c[0]))
            self.enc2 = nn.Sequential(*conv(c[0], c[1]), *conv(c[1], c[1]))
            self.bottom = nn.Sequential(*conv(c[1], c[2]), *conv(c[2], c[2]))
            self.pool = nn.MaxPool3d(2)
            self.up2 = nn.ConvTranspose3d(c[2], c[1], 2, stride=2)
            self.dec2 = nn.Sequential(*conv(c[1], c[1]), *conv(c[1], c[1]))
            self.up1 = nn.ConvTranspose3d(c[1], c[0], 2, stride=2)
            self.dec1 = nn.Sequential(*conv(c[0], c[0]))
            self.head = nn.Conv3d(c[0], 1, 1)

        def forward(self, x):
            e1 = self.enc1(x)
            e2 = self.enc2(self.pool(e1))
            bottom = self.bottom(self.pool(e2))
            d2 = self.dec2(self.up2(bottom) + e2)
            d1 = self.dec1(self.up1(d2) + e1)
            return self.head(d1)  # logits

    torch.manual_seed(0)
    return UNet3D()


def count_macs(model, size: int = PATCH) -> int:
    """Multiply-accumulates of one forward pass on a size^3 patch (convolutions only)."""
    import torch
    from torch import nn

    total = 0

    def hook(module, inputs, output) -> None:
        nonlocal total
        kernel = int(np.prod(module.kernel_size))
        if isinstance(module, nn.ConvTranspose3d):
            # every input voxel scatters into kernel taps for each output channel
            total += inputs[0][0].numel() * module.out_channels * kernel
        else:
            total += output[0].numel() * module.in_channels // module.groups * kernel

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, nn.Conv3d | nn.ConvTranspose3d)
    ]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 1, size, size, size))
    for handle in handles:
        handle.remove()
    return total


def dice_bce(logits, target):
    """BCE plus the soft Dice of each patch that holds nodule voxels, averaged over patches.

    Per-patch Dice gives a 6 mm nodule as much weight as a 30 mm one (a Dice over the whole batch
    would be dominated by the large nodules' voxels).
    """
    import torch

    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    prob = torch.sigmoid(logits)
    dims = tuple(range(1, prob.dim()))
    intersection = (prob * target).sum(dims)
    sizes = prob.sum(dims) + target.sum(dims)
    dice = (2 * intersection + 1.0) / (sizes + 1.0)
    positive = target.sum(dims) > 0
    if not bool(positive.any()):
        return bce
    return bce + (1.0 - dice[positive]).mean()


def train(
    model, sampler: PatchSampler, phases: list[tuple[int, int, int]], budget_s: float, log
) -> dict:
    """Run (patch size, batch, steps) phases; stop early when the wall-clock budget is spent."""
    import torch

    total_steps = sum(steps for _, _, steps in phases)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    warmup = 50

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.05 + 0.95 * 0.5 * (
            1 + math.cos(math.pi * (step - warmup) / max(1, total_steps - warmup))
        )

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    model.train()
    started = time.monotonic()
    done: list[int] = []
    step = 0
    stopped_early = False
    for size, batch, steps in phases:
        done.append(0)
        # The phase's share of the budget (by voxels): a slow machine shortens every phase.
        for _ in range(steps):
            if time.monotonic() - started > budget_s * _phase_end_fraction(phases, len(done)):
                stopped_early = True
                break
            images, labels = sampler.batch(size, batch)
            logits = model(torch.from_numpy(images).to(memory_format=torch.channels_last_3d))
            loss = dice_bce(logits, torch.from_numpy(labels))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            done[-1] += 1
            if step % 50 == 0:
                log(
                    f"step {step}/{total_steps} patch {size} loss {loss.item():.4f} "
                    f"{time.monotonic() - started:.0f} s"
                )
    return {"steps": done, "seconds": time.monotonic() - started, "stopped_early": stopped_early}


def _phase_end_fraction(phases: list[tuple[int, int, int]], upto: int) -> float:
    work = [size**3 * batch * steps for size, batch, steps in phases]
    return sum(work[:upto]) / sum(work)


def export(model, path: Path) -> None:
    import torch

    class WithSigmoid(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return torch.sigmoid(self.inner(x))

    wrapped = WithSigmoid(model).eval()
    axes = {0: "batch", 2: "depth", 3: "height", 4: "width"}
    torch.onnx.export(
        wrapped,
        (torch.zeros(1, 1, PATCH, PATCH, PATCH),),
        str(path),
        opset_version=17,
        input_names=["input"],
        output_names=["output"],
        dynamic_axes={"input": axes, "output": axes},
        dynamo=False,
    )


# ----------------------------------------------------------------------------- checking


def gaussian_weights(size: int) -> np.ndarray:
    axis = np.arange(size) - (size - 1) / 2
    g = np.exp(-0.5 * (axis / (SIGMA_SCALE * size)) ** 2)
    w = g[:, None, None] * g[None, :, None] * g[None, None, :]
    return np.maximum(w / w.max(), 1e-3).astype(np.float32)


def window_starts(length: int, size: int, overlap: float) -> list[int]:
    if length <= size:
        return [0]
    stride = max(1, int(size * (1 - overlap)))
    count = math.ceil((length - size) / stride) + 1
    return sorted({round(v) for v in np.linspace(0, length - size, count)})


def sliding_window(session, image: np.ndarray, batch: int = 2) -> np.ndarray:
    """Probability map of a normalised (z, y, x) image, Gaussian-blended 64^3 windows."""
    pad = [max(0, PATCH - n) for n in image.shape]
    padded = np.pad(image, [(0, p) for p in pad]) if any(pad) else image
    accumulated = np.zeros(padded.shape, dtype=np.float32)
    weights = np.zeros(padded.shape, dtype=np.float32)
    weight = gaussian_weights(PATCH)
    corners = [
        (z, y, x)
        for z in window_starts(padded.shape[0], PATCH, OVERLAP)
        for y in window_starts(padded.shape[1], PATCH, OVERLAP)
        for x in window_starts(padded.shape[2], PATCH, OVERLAP)
    ]
    for i in range(0, len(corners), batch):
        group = corners[i : i + batch]
        blocks = np.stack(
            [padded[z : z + PATCH, y : y + PATCH, x : x + PATCH] for z, y, x in group]
        )
        probs = session.run(["output"], {"input": blocks[:, None]})[0][:, 0]
        for (z, y, x), prob in zip(group, probs, strict=True):
            accumulated[z : z + PATCH, y : y + PATCH, x : x + PATCH] += prob * weight
            weights[z : z + PATCH, y : y + PATCH, x : x + PATCH] += weight
    result = accumulated / weights
    return result[: image.shape[0], : image.shape[1], : image.shape[2]]


def evaluate(model_path: Path, cases: list[Case], log) -> dict:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    voxel_mm3 = TARGET_SPACING_MM**3
    min_voxels = math.ceil(MIN_LESION_MM3 / voxel_mm3)
    structure = np.ones((3, 3, 3), dtype=bool)
    dices, hits_big, total_big, hits_all, total_all, false_positives = [], 0, 0, 0, 0, 0
    intersection_sum = size_sum = 0
    seconds = []
    for case in cases:
        started = time.monotonic()
        prob = sliding_window(session, normalise(case.hu))
        seconds.append(time.monotonic() - started)
        predicted, count = ndimage.label(prob >= THRESHOLD, structure)
        sizes = np.bincount(predicted.ravel(), minlength=count + 1)
        keep = sizes >= min_voxels
        keep[0] = False
        kept = keep[predicted]
        truth = case.mask.astype(bool)
        intersection = int((kept & truth).sum())
        dice = 2 * intersection / max(1, int(kept.sum()) + int(truth.sum()))
        dices.append(dice)
        intersection_sum += intersection
        size_sum += int(kept.sum()) + int(truth.sum())
        true_labels, _ = ndimage.label(truth, structure)
        matched_predictions: set[int] = set()
        case_hits = []
        for centre, diameter in zip(case.nodule_centres, case.nodule_diameters, strict=True):
            label = _truth_label(true_labels, centre)
            hit = False
            if label:
                overlapping = np.unique(predicted[(true_labels == label) & kept])
                hit = overlapping.size > 0
                matched_predictions.update(int(v) for v in overlapping)
            case_hits.append(hit)
            total_all += 1
            hits_all += hit
            if diameter >= 6.0:
                total_big += 1
                hits_big += hit
        kept_labels = set(np.flatnonzero(keep).tolist())
        # a prediction touching any true nodule voxel is not a false positive
        touching = set(np.unique(predicted[truth & kept]).tolist())
        fps = len(kept_labels - touching - matched_predictions)
        false_positives += fps
        log(
            f"held-out seed {case.seed}: dice {dice:.3f}, nodules "
            f"{list(np.round(case.nodule_diameters, 1))} hit {case_hits}, false positives {fps}, "
            f"{seconds[-1]:.0f} s"
        )
    return {
        "cases": len(cases),
        "dice": round(float(np.mean(dices)), 3),
        "dice_global": round(2 * intersection_sum / max(1, size_sum), 3),
        "sensitivity_6mm_and_larger": round(hits_big / max(1, total_big), 3),
        "nodules_6mm_and_larger": total_big,
        "sensitivity_all": round(hits_all / max(1, total_all), 3),
        "nodules_all": total_all,
        "false_positives_per_scan": round(false_positives / max(1, len(cases)), 2),
        "seconds_per_scan": round(float(np.mean(seconds)), 1),
    }


def _truth_label(labels: np.ndarray, centre: np.ndarray) -> int:
    """The ground-truth component of a nodule: the one at its centre, else the nearest nearby."""
    index = tuple(np.clip(np.round(centre).astype(int), 0, np.array(labels.shape) - 1))
    if labels[index]:
        return int(labels[index])
    region = crop(labels, centre, 9, 0)
    values = region[region > 0]
    return int(np.bincount(values).argmax()) if values.size else 0


# ----------------------------------------------------------------------------- card


def write_card(out: Path, training: dict, validation: dict) -> Path:
    sha = hashlib.sha256((out / "model.onnx").read_bytes()).hexdigest()

    def q(text: str) -> str:
        return json.dumps(text)  # a TOML basic string

    def table(values: dict) -> str:
        lines = []
        for key, value in values.items():
            if isinstance(value, str):
                lines.append(f"{key} = {q(value)}")
            elif isinstance(value, bool):
                lines.append(f"{key} = {str(value).lower()}")
            elif isinstance(value, list | tuple):
                lines.append(
                    f"{key} = [{', '.join(q(v) if isinstance(v, str) else str(v) for v in value)}]"
                )
            else:
                lines.append(f"{key} = {value}")
        return "\n".join(lines)

    card = f"""schema = 1
name = "demo-lung-nodules"
version = "1.0.0"
task = "segmentation"
modality = "CT"
intended_use = {
        q(
            "Demonstration of the MedDiag Desktop workflow only. Trained only on synthetic "
            "chest CT phantoms generated by meddiag_desktop.demo, never on patient scans; it "
            "finds lung nodules in those phantoms. Not for clinical use: its output says "
            "nothing about a real patient."
        )
    }
licence = "Apache-2.0"
authors = ["MedDiag Desktop team"]
not_for_clinical_use = true

[anatomy]
region = "chest"
body_parts = ["CHEST", "LUNG", "THORAX"]
words = ["chest", "thorax", "thoracic", "lung", "lungs", "pulmonary", "thx", "hrct"]

[file]
onnx = "model.onnx"
sha256 = "{sha}"

[input]
name = "input"
channels = 1
layout = "NCDHW"
mode = "sliding_window"
shape_zyx = [{PATCH}, {PATCH}, {PATCH}]
target_spacing_xyz_mm = [{TARGET_SPACING_MM}, {TARGET_SPACING_MM}, {TARGET_SPACING_MM}]
orientation = "LPS"

[input.normalization]
method = "ct_window"
window = [{WINDOW_HU[0]}, {WINDOW_HU[1]}]

[output]
name = "output"
activation = "sigmoid"

[[output.labels]]
value = 1
name = "nodule"
colour = "#ff5050"
channel = 0

[postprocessing]
threshold = {THRESHOLD}
min_lesion_volume_mm3 = {MIN_LESION_MM3}
findings = true

[sliding_window]
overlap = {OVERLAP}
batch_size = 2
gaussian_sigma_scale = {SIGMA_SCALE}

[training]
{table(training)}

# Seeds 1000-1009 are looked at while the model is developed: not a held-out measure.
[training.tuning_check]
{table(validation)}

[validation]
# Run: .venv/bin/python models/demo_lung_nodules/validate.py --seeds 2000-2019 --write-card
"""
    path = out / "card.toml"
    path.write_text(card, encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--cases", type=int, default=56, help="training phantoms (seeds 0..N-1)")
    parser.add_argument("--small-steps", type=int, default=1400, help="steps on 32^3 patches")
    parser.add_argument("--large-steps", type=int, default=450, help="steps on 64^3 patches")
    parser.add_argument(
        "--budget-min",
        type=float,
        default=16.0,
        help="wall-clock limit for the training steps (minutes)",
    )
    parser.add_argument("--held-out", type=int, default=len(HELD_OUT_SEEDS))
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="folder for preprocessed phantoms (default: the temp folder)",
    )
    args = parser.parse_args(argv)
    if args.cases > FIRST_HELD_OUT_SEED:
        parser.error(f"training seeds must stay below {FIRST_HELD_OUT_SEED} (held out)")

    import torch

    torch.set_num_threads(2)
    torch.manual_seed(0)
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:7.1f} s] {message}", flush=True)

    cache = args.cache or Path(tempfile.gettempdir()) / f"meddiag-demo-nodules-{phantom_version()}"
    cache.mkdir(parents=True, exist_ok=True)
    log(f"preparing {args.cases} training phantoms in {cache}")
    cases = [prepare_case(seed, cache) for seed in range(args.cases)]
    nodule_count = sum(len(c.nodule_diameters) for c in cases)
    log(f"{nodule_count} training nodules")
    prepared_s = time.monotonic() - started

    model = build_model().to(memory_format=torch.channels_last_3d)
    parameters = sum(p.numel() for p in model.parameters())
    phases = [(32, 8, args.small_steps), (PATCH, 2, args.large_steps)]
    result = train(model, PatchSampler(cases, seed=1), phases, args.budget_min * 60, log)
    log(f"trained {result['steps']} steps in {result['seconds']:.0f} s")
    model.eval()
    macs = count_macs(build_model_like(model))
    args.out.mkdir(parents=True, exist_ok=True)
    export(model, args.out / "model.onnx")
    size_kb = (args.out / "model.onnx").stat().st_size / 1024
    log(f"exported model.onnx ({size_kb:.0f} KiB)")

    checking = time.monotonic()
    held_out = [prepare_case(seed, cache) for seed in HELD_OUT_SEEDS[: args.held_out]]
    validation = evaluate(args.out / "model.onnx", held_out, log)
    log(f"held-out check: {validation}")
    training = {
        "data": (
            "Synthetic chest CT phantoms from meddiag_desktop.demo.make_phantom, seeds "
            f"0-{args.cases - 1}, at random spacings (in-plane 0.6-1.0 mm, slices 1.0-2.5 "
            "mm), resampled with SimpleITK (linear; nearest for the mask) to 1.5 mm."
        ),
        "seeds": [0, args.cases - 1],
        "phantoms": args.cases,
        "nodules": nodule_count,
        "patches": (
            "50% near nodules (weighted 1/diameter), hard negatives: 25% on lung "
            "vessels, 15% on the lungs' borders (pleura, mediastinum, diaphragm), 10% anywhere; "
            "left-right mirroring, +-3% contrast, +-15 HU offset"
        ),
        "architecture": (
            "3-D U-Net, 3 levels, 8-16-32 channels, batch norm, additive skips, sigmoid output"
        ),
        "loss": "binary cross-entropy + soft Dice per patch (patches holding nodule voxels)",
        "optimizer": "AdamW, lr 3e-3, warm-up then cosine decay",
        "phases": [
            f"{size}^3 x {batch}: {steps} steps"
            for (size, batch, _), steps in zip(phases, result["steps"], strict=False)
        ],
        "epochs": round(
            0.5
            * sum(b * s for (_, b, _), s in zip(phases, result["steps"], strict=False))
            / max(1, nodule_count),
            1,
        ),
        "epochs_note": (
            "patches are drawn at random, not in epochs: this is nodule-centred "
            "patches seen per training nodule"
        ),
        "patches_seen": sum(b * s for (_, b, _), s in zip(phases, result["steps"], strict=False)),
        "stopped_early_by_time_budget": bool(result["stopped_early"]),
        "training_wall_time_min": round(result["seconds"] / 60, 1),
        "preparation_wall_time_min": round(prepared_s / 60, 1),
        "device": "CPU, 2 threads",
        "parameters": parameters,
        "macs_per_64_patch": macs,
        "flops_per_64_patch": 2 * macs,
        "torch": torch.__version__,
        "script": "models/demo_lung_nodules/train.py",
    }
    validation = {
        "data": (
            f"Held-out phantoms, seeds {HELD_OUT_SEEDS[0]}-"
            f"{HELD_OUT_SEEDS[args.held_out - 1]}, same generator and spacing ranges; "
            "sliding window on the 1.5 mm grid, threshold 0.5, components under 15 mm3 "
            "dropped; a predicted component overlapping a true nodule is a hit"
        ),
        **validation,
        "check_wall_time_min": round((time.monotonic() - checking) / 60, 1),
    }
    card = write_card(args.out, training, validation)
    log(f"wrote {card}; total {(time.monotonic() - started) / 60:.1f} min")
    return 0


def build_model_like(model):
    """A fresh copy with the same weights (MAC counting must not touch batch-norm statistics)."""
    import copy

    return copy.deepcopy(model)


if __name__ == "__main__":
    raise SystemExit(main())
