"""The test oracle: PS3.15 Table E.1-1 as another party generated it, and what each code allows.

The oracle is Innolitics' JSON of the standard's tables (``dicom-standard`` package, a dev
dependency), independent of dicom-anonymizer's ``dicomfields_2026c`` lists that drive the
implementation. Its edition is older: attributes added to the table since are checked against
the implementation's own table (:data:`NEWER_ONLY`), and the few whose code changed between the
editions are named in :data:`EDITION_CHANGES` and judged by the newer code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib.metadata import distribution
from pathlib import Path

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import UID

from meddiag_desktop.deid import DeidOption, PatientKey
from meddiag_desktop.deid.profile_table import basic_profile

# (tag, the oracle's code) -> 2026c's code, where the Basic Profile column of the two editions
# differs; the newer code is what the standard says now. (The oracle lists Source Serial
# Number twice, once X/Z and once X.)
EDITION_CHANGES = {
    (0x00100020, "Z"): "Z/D",  # Patient ID
    (0x30080105, "X"): "X/Z",  # Source Serial Number
    (0x300A00B2, "X"): "X/Z",  # Treatment Machine Name
    (0x30100077, "D"): "X/D",  # Treatment Site
}
SEED_NAME = "Seeded^Person"  # every seeded PN: its words must not survive in cleaned text
SEED_DATE = "20200317"
NESTED_IN = 0x00089215  # Derivation Code Sequence: not in Table E.1-1, so it is entered


@dataclass(frozen=True)
class Row:
    tag: int
    name: str
    basic: str
    options: dict[str, str]  # JSON column -> code

    def expected(self, chosen: Collection[DeidOption]) -> str:
        """The code the standard gives under ``chosen`` (a K beats a C beats the basic)."""
        columns = {
            DeidOption.RETAIN_PATIENT_CHARACTERISTICS: "rtnPatCharsOpt",
            DeidOption.CLEAN_DESCRIPTORS: "cleanDescOpt",
            DeidOption.RETAIN_DATES: "rtnLongModifDatesOpt",
        }
        codes = [self.options[columns[o]] for o in chosen if columns[o] in self.options]
        if "K" in codes:
            return "K"
        if "C" in codes:
            return "C"
        return self.basic


@cache
def oracle_rows() -> tuple[Row, ...]:
    dist = distribution("dicom-standard")
    (path,) = [f for f in dist.files or () if f.name == "confidentiality_profile_attributes.json"]
    rows = json.loads(Path(str(dist.locate_file(path))).read_text(encoding="utf-8"))
    out = []
    for row in rows:
        digits = row["tag"].strip().strip("()").replace(",", "")
        if len(digits) != 8 or not re.fullmatch(r"[0-9A-Fa-f]{8}", digits):
            continue  # 50xx, 60xx and the private-attributes row: checked on their own
        tag = int(digits, 16)
        basic = row["basicProfile"].replace(" ", "")
        basic = EDITION_CHANGES.get((tag, basic), basic)
        options = {k: v.strip() for k, v in row.items() if k.endswith("Opt")}
        out.append(Row(tag, row["name"].strip(), basic, options))
    return tuple(out)


def edition_changes() -> dict[tuple[int, str], str]:
    """Where the oracle's Basic Profile column and 2026c disagree, as found now."""
    dist = distribution("dicom-standard")
    (path,) = [f for f in dist.files or () if f.name == "confidentiality_profile_attributes.json"]
    rows = json.loads(Path(str(dist.locate_file(path))).read_text(encoding="utf-8"))
    profile = basic_profile()
    found = {}
    for row in rows:
        digits = row["tag"].strip().strip("()").replace(",", "")
        if len(digits) != 8 or not re.fullmatch(r"[0-9A-Fa-f]{8}", digits):
            continue
        tag = int(digits, 16)
        newer = profile.action(tag)
        older = row["basicProfile"].replace(" ", "")
        if newer is not None and newer != older:
            found[(tag, older)] = newer
    return found


def newer_only() -> tuple[Row, ...]:
    """Attributes 2026c lists and the oracle's edition does not: checked by the 2026c code."""
    known = {row.tag for row in oracle_rows()}
    return tuple(
        Row(tag, f"({tag >> 16:04X},{tag & 0xFFFF:04X})", code, {})
        for tag, code in sorted(basic_profile().actions.items())
        if tag not in known
    )


def vr_of(tag: int) -> str | None:
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return None
    return vr.split(" ")[0]  # "US or SS" -> US, "OB or OW" -> OB


def seed_value(vr: str, index: int) -> object:
    if vr == "SQ":
        item = Dataset()
        item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        item.ReferencedSOPInstanceUID = f"1.2.826.0.1.3680043.9.7777.{index}"
        item.PersonName = SEED_NAME
        return Sequence([item])
    return {
        "DA": SEED_DATE, "DT": f"{SEED_DATE}101112", "TM": "101112", "PN": SEED_NAME,
        "UI": f"1.2.826.0.1.3680043.9.7777.1{index}", "AS": "045Y", "CS": "SEEDED",
        "AE": "SEEDED", "DS": "12.5", "IS": "7", "US": 7, "SS": 7, "UL": 7, "SL": 7, "UV": 7,
        "SV": 7, "FL": 1.5, "FD": 1.5, "AT": 0x00100010, "OB": b"seed", "OW": b"seed",
        "OF": b"seed", "OD": b"seed", "OL": b"seed", "OV": b"seed", "UN": b"seed",
        "UR": "http://seed.example", "SH": "Seeded Person", "LO": "Seeded Person 2020-03-17",
        "ST": "Seeded Person 2020-03-17", "LT": "Seeded Person 2020-03-17",
        "UT": "Seeded Person 2020-03-17", "UC": "Seeded Person 2020-03-17",
    }[vr]


def seed(dataset: Dataset, rows: Collection[Row]) -> list[int]:
    """Add every row's attribute the dataset lacks (and a nested copy); the tags seeded."""
    added = []
    nested = Dataset()
    for index, row in enumerate(rows):
        group = row.tag >> 16
        vr = vr_of(row.tag)
        if vr is None or group in (0x0000, 0x0002) or group >= 0xFFFA:
            continue
        if row.tag not in dataset:
            dataset.add_new(row.tag, vr, seed_value(vr, index))
            added.append(row.tag)
        if vr != "SQ":
            nested.add_new(row.tag, vr, seed_value(vr, index))
    if NESTED_IN not in dataset:
        dataset.add_new(NESTED_IN, "SQ", Sequence([nested]))
    return added


def words_of(dataset: Dataset) -> set[str]:
    """The person-name words of ``dataset``: none may remain in cleaned text."""
    words: set[str] = set()

    def gather(_ds: Dataset, element: DataElement) -> None:
        if element.VR == "PN" and element.value:
            values = element.value if isinstance(element.value, MultiValue) else [element.value]
            for value in values:
                words.update(w for w in re.split(r"[\^=\s,]+", str(value)) if len(w) >= 2)

    dataset.walk(gather)
    return words


@dataclass(frozen=True)
class Verdict:
    tag: int
    name: str
    code: str
    problem: str  # empty: as the code says


def judge(
    row: Row, code: str, before: Dataset, after: Dataset, key: PatientKey, words: set[str]
) -> Verdict:
    """Whether ``after`` holds ``row``'s attribute as ``code`` says, given ``before``."""
    tag = row.tag
    old = before[tag]
    new = after.get(tag)
    problem = ""
    changed = new is None or _value(new) != _value(old) or _empty(new)
    if code == "X":
        problem = "" if new is None else "still present"
    elif code == "Z":
        problem = "" if new is not None and (_empty(new) or _value(new) != _value(old)) else (
            "removed" if new is None else "kept its value"
        )
    elif code == "D":
        if new is None:
            problem = "removed (a dummy was due)"
        elif _value(new) == _value(old) and not _empty(old):
            problem = "kept its value"
    elif code in ("X/Z", "X/D", "X/Z/D", "Z/D"):
        problem = "" if changed else "kept its value"
    elif code == "U" or code == "X/Z/U*":
        problem = _judge_uids(old, new, key, allow_absent=code != "U")
    elif code == "K":
        problem = "" if new is not None and _value(new) == _value(old) else "not kept"
    elif code == "C":
        problem = _judge_clean(old, new, key, words)
    else:
        problem = f"code {code!r} unknown to the oracle"
    return Verdict(tag, row.name, code, problem)


def _value(element: DataElement) -> object:
    value = element.value
    if isinstance(value, MultiValue | list):
        return [str(v) for v in value] if element.VR != "SQ" else value
    if isinstance(value, bytes):
        return value.rstrip(b"\0 ")
    return value if element.VR == "SQ" else str(value) if value is not None else None


def _empty(element: DataElement) -> bool:
    value = element.value
    return value is None or value == "" or value == b"" or (
        isinstance(value, list | Sequence | MultiValue) and len(value) == 0
    )


def _uids(element: DataElement) -> Iterator[str]:
    if element.VR == "UI":
        values = element.value if isinstance(element.value, MultiValue) else [element.value]
        yield from (str(v) for v in values if v)
    elif element.VR == "SQ":
        for item in element.value:
            for inner in item:
                if inner.keyword in ("ReferencedSOPInstanceUID", "ReferencedFrameOfReferenceUID"):
                    yield str(inner.value)


def _judge_uids(
    old: DataElement, new: DataElement | None, key: PatientKey, allow_absent: bool
) -> str:
    if new is None:
        return "" if allow_absent else "removed (a new UID was due)"
    before, after = list(_uids(old)), list(_uids(new))
    if len(before) != len(after):
        return f"{len(before)} UIDs became {len(after)}"
    for was, now in zip(before, after, strict=True):
        if now == was:
            return f"UID {was} kept"
        if now != key.uid(was) or not UID(now).is_valid:
            return f"{was} became {now}, not the patient's consistent UID"
    return ""


def _judge_clean(
    old: DataElement, new: DataElement | None, key: PatientKey, words: set[str]
) -> str:
    if new is None:
        return ""  # nothing left to identify (a date that could not be moved is removed)
    vr = old.VR
    if _empty(old):
        return "" if _empty(new) else "an empty value was filled in"
    if vr in ("DA", "DT") and not re.match(r"\d{8}", str(old.value).strip()):
        return "a date that cannot be moved was kept"
    if vr == "DA":
        was = date(int(str(old.value)[:4]), int(str(old.value)[4:6]), int(str(old.value)[6:8]))
        due = key.shift_date(was).strftime("%Y%m%d")
        return "" if str(new.value) == due else f"{old.value} became {new.value}, not {due}"
    if vr == "DT":
        text = str(old.value)
        was = date(int(text[:4]), int(text[4:6]), int(text[6:8]))
        due = key.shift_date(was).strftime("%Y%m%d") + text[8:]
        return "" if str(new.value) == due else f"{old.value} became {new.value}, not {due}"
    if vr == "TM":
        return "" if str(new.value) == str(old.value) else "the time of day changed"
    if vr in ("LO", "SH", "ST", "LT", "UT", "UC", "PN", "AE"):
        text = str(new.value or "")
        left = [w for w in words if re.search(rf"(?<![^\W_]){re.escape(w)}(?![^\W_])", text, re.I)]
        if left:
            return f"cleaned text {text!r} still holds {left}"
        if re.search(r"\d{4}-\d{2}-\d{2}|\d{8}", text):
            return f"cleaned text {text!r} still holds a date"
    return ""
