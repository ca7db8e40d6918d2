"""Does the scan show the anatomy the model was made for? Read from what the scan says of itself.

A chest model run on a head CT still finds "nodules": it has no way to know it is looking at a
skull. So before a run the scan's own words are read — DICOM BodyPartExamined, the study,
series and protocol descriptions; for a NIfTI, MHA or NRRD file, which record none of these,
only its file name — and compared with the card's ``[anatomy]`` table:

* a field names the card's region: the model fits (:attr:`AnatomyVerdict.MATCH`);
* no field names it, but one names another region this module knows (head for a chest
  model): the model does not fit (:attr:`AnatomyVerdict.OTHER_REGION`, refused unless the user
  overrides it);
* nothing names any region: :attr:`AnatomyVerdict.UNKNOWN`, run with a warning.

A scan that names several regions ("CT CHEST ABDOMEN PELVIS") fits a model for any of them.
Words are matched whole (``arm`` is not found in ``pharmacy``), case-insensitively, after
splitting at punctuation, digits and lower-to-upper case changes (``CTHead`` is CT, Head).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from meddiag_desktop.domain import ScanMetadata, SeriesInfo, SeriesKind, Volume
from meddiag_desktop.inference.card import AnatomySpec, ModelCard
from meddiag_desktop.scans.file_formats import is_volume_file


@dataclass(frozen=True)
class Region:
    """A body region as scans name it: BodyPartExamined terms and description words."""

    name: str
    body_parts: frozenset[str]
    words: frozenset[str]


def _region(name: str, body_parts: str, words: str) -> Region:
    return Region(name, frozenset(body_parts.split()), frozenset(words.split()))


# Regions told apart well enough to refuse a model made for another. The heart, breast and
# "body" are left out on purpose: a cardiac or "CT Body" scan may well show the lungs, so it
# is unknown (warned) rather than another region (refused).
REGIONS: tuple[Region, ...] = (
    _region(
        "head",
        "HEAD BRAIN SKULL IAC ORBIT SELLA SINUS FACE JAW TMJ",
        "head brain skull cranial cranium cerebral cerebrum cerebellum neuro neurocranium "
        "orbit orbits sinus sinuses sella pituitary iac stroke intracranial",
    ),
    _region("neck", "NECK LARYNX THYROID", "neck larynx pharynx thyroid carotid carotids"),
    _region(
        "chest", "CHEST LUNG THORAX", "chest thorax thoracic lung lungs pulmonary thx hrct"
    ),
    _region(
        "abdomen",
        "ABDOMEN LIVER KIDNEY PANCREAS COLON",
        "abdomen abdominal abd liver hepatic kidney kidneys renal pancreas pancreatic colon "
        "colonoscopy colonography bowel",
    ),
    _region("pelvis", "PELVIS PROSTATE BLADDER", "pelvis pelvic prostate bladder"),
    _region(
        "spine",
        "SPINE CSPINE TSPINE LSPINE SSPINE COCCYX",
        "spine spinal lumbar sacrum sacral vertebra vertebrae vertebral",
    ),
    _region(
        "upper limb",
        "SHOULDER ARM ELBOW FOREARM WRIST HAND FINGER CLAVICLE UPRLIMB",
        "shoulder arm humerus elbow forearm wrist hand finger fingers",
    ),
    _region(
        "lower limb",
        "HIP LEG THIGH KNEE ANKLE FOOT TOE FEMUR LOWLIMB",
        "hip leg legs thigh femur knee ankle foot feet toe tibia",
    ),
)

# BodyPartExamined terms that cover several regions (after dropping spaces and underscores).
COMBINED_BODY_PARTS: dict[str, frozenset[str]] = {
    "HEADNECK": frozenset({"head", "neck"}),
    "NECKCHEST": frozenset({"neck", "chest"}),
    "CHESTABDOMEN": frozenset({"chest", "abdomen"}),
    "CAP": frozenset({"chest", "abdomen", "pelvis"}),
    "CHESTABDPELVIS": frozenset({"chest", "abdomen", "pelvis"}),
    "CHESTTOPELVIS": frozenset({"chest", "abdomen", "pelvis"}),
    "ABDOMENPELVIS": frozenset({"abdomen", "pelvis"}),
    "ABDPELVIS": frozenset({"abdomen", "pelvis"}),
    "TSPINE": frozenset({"spine", "chest"}),  # a thoracic-spine scan shows the thorax
    "WHOLEBODY": frozenset(region.name for region in REGIONS),
}

FILE_FORMATS_TEXT = "NIfTI, MHA and NRRD files do not record it"


class AnatomyVerdict(StrEnum):
    MATCH = "match"
    OTHER_REGION = "other region"
    UNKNOWN = "unknown"
    NOT_STATED = "not stated"  # the card has no [anatomy]: it makes no claim


@dataclass(frozen=True)
class Evidence:
    """One field of the scan that names a region."""

    field: str  # "BodyPartExamined", "study description", "file name", ...
    value: str
    regions: tuple[str, ...]  # the card's region, or the other regions it names

    def describe(self) -> str:
        return f"{self.field} '{self.value}'"


@dataclass(frozen=True)
class AnatomyCheck:
    """The verdict, what it rests on, and the sentence a user reads."""

    verdict: AnatomyVerdict
    model_region: str
    scan_regions: tuple[str, ...] = ()  # the other regions the scan names (OTHER_REGION)
    evidence: tuple[Evidence, ...] = ()
    message: str = ""  # one line; empty for a plain match or a card without [anatomy]

    @property
    def refused(self) -> bool:
        return self.verdict is AnatomyVerdict.OTHER_REGION

    def to_dict(self) -> dict:
        """The form stored in ``findings.json`` and shown by ``--json`` tools."""
        return {
            "verdict": self.verdict.value,
            "model_region": self.model_region,
            "scan_regions": list(self.scan_regions),
            "evidence": [
                {"field": e.field, "value": e.value, "regions": list(e.regions)}
                for e in self.evidence
            ],
            "message": self.message,
        }


def check_volume(volume: Volume, card: ModelCard) -> AnatomyCheck:
    """The check for a loaded scan (what the pipeline runs on)."""
    source = Path(volume.source) if volume.source else None
    file_name = source.name if source is not None and is_volume_file(source) else None
    return assess(volume.metadata, card, file_name)


def check_series(series: SeriesInfo, card: ModelCard) -> AnatomyCheck:
    """The check from headers only, before any pixel is read (``meddiag infer`` refuses early)."""
    file_name = series.files[0].name if series.kind is SeriesKind.FILE and series.files else None
    return assess(series.metadata, card, file_name)


def assess(metadata: ScanMetadata, card: ModelCard, file_name: str | None = None) -> AnatomyCheck:
    """Compare what the scan says it shows with the card; ``file_name`` for single-file formats,
    whose only word on the matter is their name."""
    spec = card.anatomy
    if spec is None:
        return AnatomyCheck(AnatomyVerdict.NOT_STATED, "")
    fields = _fields(metadata, file_name)
    own, other = _own_terms(spec), _other_terms(spec)
    matched: list[Evidence] = []
    elsewhere: list[Evidence] = []
    for name, value in fields:
        named_own, named_other = _named(name, value, spec, own, other)
        if named_own:
            matched.append(Evidence(name, value, (spec.region,)))
        elif named_other:
            elsewhere.append(Evidence(name, value, named_other))
    model = f"the model '{card.name}'"
    if matched:
        message = ""
        if file_name is not None:
            message = (
                f"The scan's anatomy is taken from its file name '{file_name}' only "
                f"({FILE_FORMATS_TEXT}); {model} is for the {spec.region}."
            )
        return AnatomyCheck(AnatomyVerdict.MATCH, spec.region, (), tuple(matched), message)
    if elsewhere:
        regions = tuple(dict.fromkeys(r for e in elsewhere for r in e.regions))
        where = ", ".join(e.describe() for e in elsewhere)
        message = (
            f"The model '{card.name}' is for the {spec.region}, but this scan is of the "
            f"{' and '.join(regions)} ({where}): its findings would be meaningless."
        )
        return AnatomyCheck(
            AnatomyVerdict.OTHER_REGION, spec.region, regions, tuple(elsewhere), message
        )
    if file_name is not None:
        said = f"{FILE_FORMATS_TEXT}, and the file name '{file_name}' names no body region"
    elif any(value for _, value in fields):
        said = "its body part and descriptions name no region known here"
    else:
        said = "it records no body part and no description"
    message = (
        f"The scan's anatomy is unknown ({said}); {model} is for the {spec.region}: check "
        f"that the scan shows the {spec.region} before trusting its findings."
    )
    return AnatomyCheck(AnatomyVerdict.UNKNOWN, spec.region, message=message)


def words_of(text: str) -> list[str]:
    """Whole words, lower case: split at anything not a letter, at digits and at 'aB'."""
    return [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+", text)]


def _fields(metadata: ScanMetadata, file_name: str | None) -> list[tuple[str, str]]:
    if file_name is not None:
        return [("file name", file_name)]
    return [
        ("BodyPartExamined", metadata.body_part_examined),
        ("study description", metadata.study_description),
        ("series description", metadata.series_description),
        ("protocol", metadata.protocol_name),
    ]


def _own_terms(spec: AnatomySpec) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """(body parts, words, known region names) that mean the card's region."""
    parts = frozenset(spec.body_parts)
    words = frozenset(spec.words)
    regions = frozenset(
        region.name
        for region in REGIONS
        if region.body_parts & parts or region.words & words or region.name == spec.region
    )
    return parts, words, regions


def _other_terms(spec: AnatomySpec) -> dict[str, str]:
    """Every word or body part naming a region other than the card's -> that region's name."""
    _, own_words, own_regions = _own_terms(spec)
    terms: dict[str, str] = {}
    for region in REGIONS:
        if region.name in own_regions:
            continue
        for term in (*region.body_parts, *region.words):
            terms.setdefault(term, region.name)
    for word in spec.excluded_words:
        terms[word] = "anatomy the card excludes"
    for word in own_words:
        terms.pop(word, None)
    for part in spec.body_parts:
        terms.pop(part, None)
    return terms


def _named(
    field: str,
    value: str,
    spec: AnatomySpec,
    own: tuple[frozenset[str], frozenset[str], frozenset[str]],
    other: dict[str, str],
) -> tuple[bool, tuple[str, ...]]:
    """Whether ``value`` names the card's region, else the other regions it names."""
    own_parts, own_words, own_regions = own
    if not value.strip():
        return False, ()
    if field == "BodyPartExamined":
        code = re.sub(r"[\s_\-]+", "", value.upper())
        if code in own_parts:
            return True, ()
        combined = COMBINED_BODY_PARTS.get(code)
        if combined is not None:
            if combined & own_regions:
                return True, ()
            return False, tuple(sorted(combined))
        if code in other:
            return False, (other[code],)
    words = words_of(value)
    if any(w in own_words or w.upper() in own_parts for w in words):
        return True, ()
    named = [other.get(w, other.get(w.upper(), "")) for w in words]
    return False, tuple(dict.fromkeys(n for n in named if n))
