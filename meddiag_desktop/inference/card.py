"""Model cards: ``card.toml`` beside an ONNX file says how to run the model and how good it is.

Every field is validated when the card is read, and all problems are reported together, so a
model author fixes a card in one go and a radiologist never meets a half-understood model.
The ONNX file's sha256 is checked before the model is used (:func:`verify_onnx`).
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

CARD_FILE = "card.toml"
SCHEMA_VERSION = 1


class CardError(Exception):
    """A model folder or card that cannot be used; lists every problem found."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = Path(path)
        self.problems = problems
        listed = "; ".join(problems)
        super().__init__(f"{self.path}: invalid model card: {listed}")


class InputMode(StrEnum):
    SLIDING_WINDOW = "sliding_window"
    WHOLE_VOLUME = "whole_volume"


class NormalizationMethod(StrEnum):
    CT_WINDOW = "ct_window"  # clip to [low, high] HU, scale to [0, 1]
    ZSCORE = "zscore"  # (x - mean) / std over the volume (or over voxels above 'mask_above')
    MINMAX = "minmax"  # scale min..max to [0, 1]
    PERCENTILE = "percentile"  # clip to percentiles [low, high], scale to [0, 1]
    NONE = "none"


class Precision(StrEnum):
    """Arithmetic a model may run in. float32 is the reference every card is validated in."""

    FLOAT32 = "float32"
    BFLOAT16 = "bfloat16"  # 8-bit mantissa; CPUs with AVX-512 BF16 / AMX run it ~2x faster


class Activation(StrEnum):
    SIGMOID = "sigmoid"  # one channel per label, independent probabilities
    SOFTMAX = "softmax"  # channel 0 background, channel i label i
    LOGITS = "logits"  # raw scores: softmax applied here, then as SOFTMAX


@dataclass(frozen=True)
class Normalization:
    method: NormalizationMethod
    window: tuple[float, float] = (0.0, 1.0)
    percentiles: tuple[float, float] = (0.5, 99.5)


@dataclass(frozen=True)
class InputSpec:
    name: str
    channels: int
    mode: InputMode
    shape_zyx: tuple[int, int, int]  # the patch (sliding window) or the fixed whole-volume shape
    target_spacing_xyz_mm: tuple[float, float, float] | None  # None: the scan's own spacing
    orientation: str | None  # e.g. "LPS", "RAS", "LIA" (axes point toward); None: as stored
    normalization: Normalization


@dataclass(frozen=True)
class LabelSpec:
    value: int
    name: str
    colour: str
    channel: int


@dataclass(frozen=True)
class OutputSpec:
    name: str
    activation: Activation
    labels: tuple[LabelSpec, ...]


@dataclass(frozen=True)
class Postprocessing:
    threshold: float = 0.5
    min_lesion_volume_mm3: float = 0.0
    findings: bool = True  # tissue models (e.g. grey/white matter) report no lesions


@dataclass(frozen=True)
class SlidingWindow:
    overlap: float = 0.5
    batch_size: int = 2
    gaussian_sigma_scale: float = 0.125
    # Fully convolutional models only (all three set together, see models/README.md): the model
    # gives the same output for a voxel whatever the input size, as long as every side is a
    # multiple of ``tile_multiple`` and the voxel is at least ``tile_margin`` voxels (its
    # receptive-field radius) inside the input. The pipeline then runs fewer, larger tiles, up
    # to ``max_tile_zyx`` and to a working-memory budget of ``tile_bytes_per_voxel`` per voxel.
    max_tile_zyx: tuple[int, int, int] | None = None
    tile_multiple: int = 1
    tile_margin: int = 0
    tile_bytes_per_voxel: float = 0.0  # the model's working memory per input voxel (0: unknown)

    @property
    def fully_convolutional(self) -> bool:
        return self.max_tile_zyx is not None


@dataclass(frozen=True)
class AnatomySpec:
    """The body region a model was made for, in the terms scans use to say what they show.

    ``body_parts`` are DICOM BodyPartExamined defined terms (CHEST, LUNG); ``words`` are the
    words that name the region in study, series and protocol descriptions (chest, thorax, thx);
    ``excluded_words`` add words naming anatomy the model must not be used on, beyond the
    regions :mod:`meddiag_desktop.inference.anatomy` knows. Checked by that module.
    """

    region: str
    body_parts: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    excluded_words: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelCard:
    name: str
    version: str
    task: str
    modality: str
    intended_use: str
    licence: str
    authors: tuple[str, ...]
    not_for_clinical_use: bool
    folder: Path
    onnx_file: str
    sha256: str
    input: InputSpec
    output: OutputSpec
    postprocessing: Postprocessing
    sliding_window: SlidingWindow
    training: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)
    anatomy: AnatomySpec | None = None  # None: the card makes no claim (any anatomy)
    # The precisions whose validation reproduced the float32 figures ([precision] validated);
    # float32 always. A card without the table: float32 only.
    precisions: tuple[Precision, ...] = (Precision.FLOAT32,)

    @property
    def onnx_path(self) -> Path:
        return self.folder / self.onnx_file

    @property
    def label_names(self) -> dict[int, str]:
        return {label.value: label.name for label in self.output.labels}

    @property
    def label_colours(self) -> dict[int, str]:
        return {label.value: label.colour for label in self.output.labels}


_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_ORIENTATION = re.compile(
    r"^[LR][AP][SI]$|^[LR][SI][AP]$|^[AP][LR][SI]$|^[AP][SI][LR]$"
    r"|^[SI][LR][AP]$|^[SI][AP][LR]$"
)


class _Reader:
    """Pulls typed fields out of the TOML tables, collecting problems instead of stopping."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def get(
        self, table: dict, key: str, kind: type | tuple[type, ...], where: str, default: Any = ...
    ) -> Any:
        if key not in table:
            if default is ...:
                self.problems.append(f"'{where}{key}' is missing")
                return None
            return default
        value = table[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            expected = (
                kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            )
            self.problems.append(f"'{where}{key}' must be {expected}, got {value!r}")
            return None if default is ... else default
        return value

    def numbers(
        self,
        table: dict,
        key: str,
        count: int,
        where: str,
        default: Any = ...,
        integer: bool = False,
    ) -> tuple | None:
        value = self.get(table, key, list, where, default)
        if value is None or value is default:
            return value
        wanted = int if integer else (int, float)
        if len(value) != count or not all(
            isinstance(v, wanted) and not isinstance(v, bool) for v in value
        ):
            kind = "integers" if integer else "numbers"
            self.problems.append(f"'{where}{key}' must be a list of {count} {kind}, got {value!r}")
            return None
        return tuple(int(v) if integer else float(v) for v in value)

    def choice(
        self, table: dict, key: str, enum: type[StrEnum], where: str, default: Any = ...
    ) -> Any:
        value = self.get(table, key, str, where, default)
        if value is None or isinstance(value, enum):
            return value
        try:
            return enum(value)
        except ValueError:
            allowed = ", ".join(e.value for e in enum)
            self.problems.append(f"'{where}{key}' must be one of {allowed}, got {value!r}")
            return None


def read_card(folder: Path | str) -> ModelCard:
    """Read and validate ``folder/card.toml``; raises :class:`CardError` listing all problems."""
    folder = Path(folder)
    path = folder / CARD_FILE
    if not path.is_file():
        raise CardError(folder, [f"no {CARD_FILE} in the folder"])
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CardError(path, [f"not valid TOML ({exc})"]) from exc
    return parse_card(data, folder)


def parse_card(data: dict, folder: Path) -> ModelCard:
    r = _Reader()
    schema = r.get(data, "schema", int, "", SCHEMA_VERSION)
    if schema != SCHEMA_VERSION:
        r.problems.append(
            f"'schema' {schema} is not supported (this version reads {SCHEMA_VERSION})"
        )
    name = r.get(data, "name", str, "")
    if name is not None and not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", name):
        r.problems.append(
            f"'name' must be lower-case letters, digits, '-', '_' or '.', got {name!r}"
        )
    task = r.get(data, "task", str, "")
    if task is not None and task != "segmentation":
        r.problems.append(f"'task' must be 'segmentation' (the only task supported), got {task!r}")
    authors = r.get(data, "authors", list, "")
    if authors is not None and not all(isinstance(a, str) for a in authors):
        r.problems.append("'authors' must be a list of names")
    file_table = r.get(data, "file", dict, "") or {}
    onnx_file = r.get(file_table, "onnx", str, "file.")
    sha256 = r.get(file_table, "sha256", str, "file.")
    if sha256 is not None and not _SHA256.match(sha256):
        r.problems.append("'file.sha256' must be 64 lower-case hex digits")
    if onnx_file is not None and not (folder / onnx_file).is_file():
        r.problems.append(f"'file.onnx' names {onnx_file}, which is not in {folder}")
    card_input = _parse_input(r, r.get(data, "input", dict, "") or {})
    output = _parse_output(r, r.get(data, "output", dict, "") or {}, card_input)
    post_table = r.get(data, "postprocessing", dict, "", {})
    post = Postprocessing(
        threshold=r.get(post_table, "threshold", float, "postprocessing.", 0.5),
        min_lesion_volume_mm3=r.get(
            post_table, "min_lesion_volume_mm3", float, "postprocessing.", 0.0
        ),
        findings=r.get(post_table, "findings", bool, "postprocessing.", True),
    )
    if post.threshold is not None and not 0.0 < post.threshold < 1.0:
        r.problems.append("'postprocessing.threshold' must be between 0 and 1")
    window_table = r.get(data, "sliding_window", dict, "", {})
    window = SlidingWindow(
        overlap=r.get(window_table, "overlap", float, "sliding_window.", 0.5),
        batch_size=r.get(window_table, "batch_size", int, "sliding_window.", 2),
        gaussian_sigma_scale=r.get(
            window_table, "gaussian_sigma_scale", float, "sliding_window.", 0.125
        ),
        **_parse_tiling(r, window_table, card_input),
    )
    if window.overlap is not None and not 0.0 <= window.overlap < 1.0:
        r.problems.append("'sliding_window.overlap' must be at least 0 and below 1")
    if window.batch_size is not None and window.batch_size < 1:
        r.problems.append("'sliding_window.batch_size' must be at least 1")
    card = ModelCard(
        name=name,
        version=r.get(data, "version", str, ""),
        task=task,
        modality=r.get(data, "modality", str, ""),
        intended_use=r.get(data, "intended_use", str, ""),
        licence=r.get(data, "licence", str, ""),
        authors=tuple(authors or ()),
        not_for_clinical_use=r.get(data, "not_for_clinical_use", bool, "", True),
        folder=folder,
        onnx_file=onnx_file,
        sha256=sha256,
        input=card_input,
        output=output,
        postprocessing=post,
        sliding_window=window,
        training=r.get(data, "training", dict, "", {}),
        validation=r.get(data, "validation", dict, "", {}),
        anatomy=_parse_anatomy(r, r.get(data, "anatomy", dict, "", None)),
        precisions=_parse_precisions(r, r.get(data, "precision", dict, "", {})),
    )
    if r.problems:
        raise CardError(folder / CARD_FILE, r.problems)
    return card


def _parse_precisions(r: _Reader, table: dict) -> tuple[Precision, ...]:
    """[precision] validated = ["float32", "bfloat16"]: the precisions a model may run in."""
    values = r.get(table, "validated", list, "precision.", [])
    found = [Precision.FLOAT32]
    for value in values or []:
        try:
            precision = Precision(value)
        except ValueError:
            allowed = ", ".join(p.value for p in Precision)
            r.problems.append(f"'precision.validated' names {value!r} (known: {allowed})")
            continue
        if precision not in found:
            found.append(precision)
    return tuple(found)


_ANATOMY_KEYS = ("region", "body_parts", "words", "excluded_words")
# DICOM CS value: upper-case letters, digits, space and underscore, at most 16 characters.
_BODY_PART = re.compile(r"^[A-Z0-9_ ]{1,16}$")
_WORD = re.compile(r"^[a-z0-9]+$")


def _parse_anatomy(r: _Reader, table: dict | None) -> AnatomySpec | None:
    """The optional [anatomy] table; words are single lower-case words, as they are matched."""
    if table is None:
        return None
    where = "anatomy."
    unknown = sorted(set(table) - set(_ANATOMY_KEYS))
    if unknown:
        r.problems.append(
            f"'{where}' has unknown field(s) {', '.join(unknown)} "
            f"(known: {', '.join(_ANATOMY_KEYS)})"
        )
    region = r.get(table, "region", str, where)
    if region is not None and not region.strip():
        r.problems.append(f"'{where}region' must name the region, e.g. \"chest\"")
    body_parts = _string_list(r, table, "body_parts", _BODY_PART, "DICOM defined terms such as "
                              "CHEST (upper-case letters, digits, '_', at most 16)")
    words = _string_list(r, table, "words", _WORD, "single lower-case words such as \"thorax\"")
    excluded = _string_list(r, table, "excluded_words", _WORD, "single lower-case words")
    if region is not None and not body_parts and not words:
        r.problems.append(f"'{where}' needs 'body_parts' or 'words' to recognise the region")
    both = sorted(set(words) & set(excluded))
    if both:
        r.problems.append(f"'{where}excluded_words' repeats word(s) of 'words': {', '.join(both)}")
    return AnatomySpec(
        region=(region or "").strip(),
        body_parts=body_parts,
        words=words,
        excluded_words=excluded,
    )


def _string_list(
    r: _Reader, table: dict, key: str, pattern: re.Pattern[str], expected: str
) -> tuple[str, ...]:
    values = r.get(table, key, list, "anatomy.", [])
    if values is None:
        return ()
    bad = [v for v in values if not isinstance(v, str) or not pattern.match(v)]
    if bad:
        r.problems.append(f"'anatomy.{key}' must be {expected}, got {bad!r}")
    return tuple(v for v in values if isinstance(v, str) and pattern.match(v))


_TILING_KEYS = ("max_tile_zyx", "tile_multiple", "tile_margin", "tile_bytes_per_voxel")


def _parse_tiling(r: _Reader, table: dict, card_input: InputSpec) -> dict[str, Any]:
    """The optional fully-convolutional fields of [sliding_window]; all or none of them."""
    where = "sliding_window."
    given = [key for key in _TILING_KEYS if key in table]
    if not given:
        return {}
    missing = [key for key in _TILING_KEYS[:3] if key not in table]
    if missing:
        r.problems.append(
            "a fully convolutional model needs 'sliding_window.max_tile_zyx', 'tile_multiple' "
            f"and 'tile_margin' together ({', '.join(missing)} missing)"
        )
        return {}
    max_tile = r.numbers(table, "max_tile_zyx", 3, where, integer=True)
    multiple = r.get(table, "tile_multiple", int, where)
    margin = r.get(table, "tile_margin", int, where)
    bytes_per_voxel = r.get(table, "tile_bytes_per_voxel", float, where, 0.0)
    if card_input.mode is not InputMode.SLIDING_WINDOW:
        r.problems.append(f"'{where}max_tile_zyx' is only for input.mode = 'sliding_window'")
    if multiple is not None and multiple < 1:
        r.problems.append(f"'{where}tile_multiple' must be at least 1")
        multiple = None
    if margin is not None and margin < 0:
        r.problems.append(f"'{where}tile_margin' (the receptive-field radius) must be >= 0")
        margin = None
    if bytes_per_voxel is not None and bytes_per_voxel < 0:
        r.problems.append(f"'{where}tile_bytes_per_voxel' must be >= 0")
    if max_tile is not None and multiple is not None:
        if any(size % multiple for size in max_tile):
            r.problems.append(
                f"'{where}max_tile_zyx' {list(max_tile)} must be multiples of tile_multiple "
                f"({multiple})"
            )
        if any(size < p for size, p in zip(max_tile, card_input.shape_zyx, strict=True)):
            r.problems.append(
                f"'{where}max_tile_zyx' {list(max_tile)} must be at least the patch "
                f"input.shape_zyx {list(card_input.shape_zyx)}"
            )
        if margin is not None and any(size < 2 * margin + multiple for size in max_tile):
            r.problems.append(
                f"'{where}max_tile_zyx' {list(max_tile)} must exceed twice tile_margin "
                f"({margin}) by at least tile_multiple, or tiles would not advance"
            )
    if multiple is not None and any(p % multiple for p in card_input.shape_zyx):
        r.problems.append(
            f"'input.shape_zyx' must be multiples of '{where}tile_multiple' ({multiple})"
        )
    return {
        "max_tile_zyx": max_tile,
        "tile_multiple": multiple or 1,
        "tile_margin": margin or 0,
        "tile_bytes_per_voxel": bytes_per_voxel or 0.0,
    }


def _parse_input(r: _Reader, table: dict) -> InputSpec:
    mode = r.choice(table, "mode", InputMode, "input.", InputMode.SLIDING_WINDOW)
    layout = r.get(table, "layout", str, "input.", "NCDHW")
    if layout not in ("NCDHW", "NCZYX"):
        r.problems.append(f"'input.layout' must be NCDHW (batch, channel, z, y, x), got {layout!r}")
    shape = r.numbers(table, "shape_zyx", 3, "input.", integer=True)
    if shape is not None and min(shape) < 1:
        r.problems.append("'input.shape_zyx' must be positive")
    spacing = r.numbers(table, "target_spacing_xyz_mm", 3, "input.", None)
    if spacing is not None and min(spacing) <= 0:
        r.problems.append("'input.target_spacing_xyz_mm' must be positive")
    orientation = r.get(table, "orientation", str, "input.", None)
    if orientation is not None and not _ORIENTATION.match(orientation):
        r.problems.append(
            f"'input.orientation' must be a code such as LPS, RAS or LIA, got {orientation!r}"
        )
    channels = r.get(table, "channels", int, "input.", 1)
    if channels != 1:
        r.problems.append("'input.channels' must be 1 (single-sequence models only for now)")
    norm_table = r.get(table, "normalization", dict, "input.", {})
    method = r.choice(norm_table, "method", NormalizationMethod, "input.normalization.")
    window = r.numbers(norm_table, "window", 2, "input.normalization.", (0.0, 1.0))
    percentiles = r.numbers(norm_table, "percentiles", 2, "input.normalization.", (0.5, 99.5))
    if method is NormalizationMethod.CT_WINDOW and "window" not in norm_table:
        r.problems.append("'input.normalization.window' = [low, high] HU is needed for ct_window")
    if window is not None and window[0] >= window[1]:
        r.problems.append("'input.normalization.window' must be [low, high] with low < high")
    if percentiles is not None and not 0 <= percentiles[0] < percentiles[1] <= 100:
        r.problems.append("'input.normalization.percentiles' must be 0 <= low < high <= 100")
    return InputSpec(
        name=r.get(table, "name", str, "input.", ""),
        channels=channels,
        mode=mode,
        shape_zyx=shape or (1, 1, 1),  # a missing shape is already a listed problem
        target_spacing_xyz_mm=spacing,
        orientation=orientation,
        normalization=Normalization(method, window or (0.0, 1.0), percentiles or (0.5, 99.5)),
    )


def _parse_output(r: _Reader, table: dict, card_input: InputSpec) -> OutputSpec:
    activation = r.choice(table, "activation", Activation, "output.")
    labels = []
    for index, item in enumerate(r.get(table, "labels", list, "output.") or []):
        where = f"output.labels[{index}]."
        if not isinstance(item, dict):
            r.problems.append(f"'{where[:-1]}' must be a table")
            continue
        value = r.get(item, "value", int, where)
        colour = r.get(item, "colour", str, where, "#ff0000")
        if colour is not None and not _COLOUR.match(colour):
            r.problems.append(f"'{where}colour' must look like #rrggbb, got {colour!r}")
        if value is not None and not 1 <= value <= 255:
            r.problems.append(f"'{where}value' must be 1..255 (0 is background)")
        default_channel = value if activation is not Activation.SIGMOID else index
        labels.append(
            LabelSpec(
                value=value,
                name=r.get(item, "name", str, where),
                colour=colour,
                channel=r.get(item, "channel", int, where, default_channel),
            )
        )
    if not labels:
        r.problems.append("'output.labels' must list at least one label")
    values = [label.value for label in labels]
    if len(set(values)) != len(values):
        r.problems.append("'output.labels' values must be unique")
    return OutputSpec(
        name=r.get(table, "name", str, "output.", ""), activation=activation, labels=tuple(labels)
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_onnx(card: ModelCard) -> None:
    """Refuse a model file that is not the one the card describes (damaged or swapped)."""
    actual = sha256_of(card.onnx_path)
    if actual != card.sha256:
        raise CardError(
            card.folder / CARD_FILE,
            [
                f"{card.onnx_file} has sha256 {actual}, but the card says {card.sha256}: the model "
                "file is damaged or is not the model this card describes"
            ],
        )
