"""De-identify one DICOM dataset in place: PS3.15 Basic Profile, options, markers.

In order:

1. the words that identify the patient are gathered from the original (names, IDs, accession
   number, birth date, institution...), for cleaning free text later;
2. private attributes are removed everywhere, nested ones included, and so are curve (50xx)
   and overlay (60xx) groups, whose data and comments Table E.1-1 removes (an overlay without
   its data is no overlay); the file meta keeps only what names the file's class, instance and
   encoding;
3. every attribute Table E.1-1 lists, at every nesting level, gets the action the profile (or a
   chosen option) gives it (:mod:`.profile_table`); sequences it does not list are entered and
   their items treated the same way. The patient's name and ID become the pseudonym; UIDs are
   mapped through the patient's key, so references between objects still resolve;
4. the outputs say what was done: Patient Identity Removed YES, De-identification Method and
   its Code Sequence (CID 7050), Longitudinal Temporal Information Modified.

Dummy values for ``D`` come from dicom-anonymizer's per-VR replacements (``replace_element``),
except dates and times (19000101: validators refuse its year 0001). The walking, the UID
mapping and the date shifting are done here, because that library does not enter nested
sequences, turns removed dates into ``00010101`` and maps UIDs at random per run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from meddiag_desktop import __version__
from meddiag_desktop.deid.options import BASIC_PROFILE_CODE, DeidOption, in_order
from meddiag_desktop.deid.patient_key import PatientKey
from meddiag_desktop.deid.profile_table import (
    TEMPORAL_VRS,
    basic_profile,
    option_action,
    resolve,
)

PATIENT_NAME = 0x00100010
PATIENT_ID = 0x00100020
# File meta attributes a de-identified file keeps: version, class, instance, transfer syntax,
# implementation. The rest (source, sending and receiving AE titles, private information) go.
_FILE_META_KEPT = frozenset({0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012,
                             0x00020013})
_TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "UC", "AE", "PN"})
_DATE = re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})")
# Dates written in free text: 2019-03-04, 04.03.2019, 03/04/2019, 20190304.
_DATE_IN_TEXT = re.compile(
    r"(?<!\d)(\d{4}[-./]?\d{1,2}[-./]?\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4})(?!\d)"
)
_DUMMY_SEQUENCE_ITEM = Dataset  # D on a sequence: one empty item (non-zero length)
# D on a date or time. Not dicom-anonymizer's 00010101: validators (dciodvfy) refuse year 1.
_DUMMY_TEMPORAL = {"DA": "19000101", "DT": "19000101000000", "TM": "000000"}


@dataclass(frozen=True)
class DeidSettings:
    """How one patient's objects are de-identified: the key and the options chosen."""

    key: PatientKey
    options: frozenset[DeidOption] = field(default_factory=frozenset)

    @property
    def retain_dates(self) -> bool:
        return DeidOption.RETAIN_DATES in self.options


def deidentify_dataset(dataset: Dataset, settings: DeidSettings) -> Dataset:
    """De-identify ``dataset`` in place (see the module docstring) and return it."""
    cleaner = TextCleaner.of(dataset)
    dataset.remove_private_tags()
    _strip_file_meta(dataset)
    _remove_repeating_groups(dataset)
    _Walker(settings, cleaner).dataset(dataset)
    mark_deidentified(dataset, settings)
    _map_file_meta_instance(dataset, settings.key)
    return dataset


def deidentify_dates(dataset: Dataset, settings: DeidSettings) -> Dataset:
    """Only the dates and times of ``dataset``, as :func:`deidentify_dataset` treats them.

    For objects MedDiag itself made from de-identified sources (its SEG and SR): their other
    content is already clean, and their own creation dates must not reveal the date offset.
    """
    _Walker(settings, TextCleaner(()), only=TEMPORAL_VRS).dataset(dataset)
    return dataset


def mark_deidentified(dataset: Dataset, settings: DeidSettings) -> None:
    """Patient Identity Removed, De-identification Method (+ codes), temporal information."""
    dataset.PatientIdentityRemoved = "YES"
    options = in_order(settings.options)
    dataset.DeidentificationMethod = [
        f"MedDiag Desktop {__version__}: PS3.15 E.1-1 Basic Profile"[:64],
        *(option.meaning[:64] for option in options),
    ]
    items = []
    for code in (BASIC_PROFILE_CODE, *(option.code for option in options)):
        item = Dataset()
        item.CodeValue = code.value
        item.CodingSchemeDesignator = code.scheme_designator
        item.CodeMeaning = code.meaning
        items.append(item)
    dataset.DeidentificationMethodCodeSequence = Sequence(items)
    dataset.LongitudinalTemporalInformationModified = (
        "MODIFIED" if settings.retain_dates else "REMOVED"
    )


@dataclass(frozen=True)
class TextCleaner:
    """Removes a patient's identifying words and any date from free text (option ``C``)."""

    patterns: tuple[re.Pattern[str], ...]

    @classmethod
    def of(cls, dataset: Dataset) -> TextCleaner:
        """The identifying words of ``dataset``: every person name's parts, and the whole
        value of every text attribute Table E.1-1 removes or replaces that is not itself a
        descriptor (IDs, accession number, institution, addresses, dates of birth...)."""
        from meddiag_desktop.deid import option_table

        profile = basic_profile()
        descriptors = set(option_table.CLEAN_DESCRIPTORS) | set(
            option_table.RETAIN_PATIENT_CHARACTERISTICS
        )
        words: set[str] = set()

        def gather(_dataset: Dataset, element: DataElement) -> None:
            if element.VR == "PN":
                for value in _values(element):
                    words.update(p for p in re.split(r"[\^=\s,]+", value) if len(p) >= 2)
                return
            if element.VR not in _TEXT_VRS and element.VR not in ("DA", "DT"):
                return
            code = profile.action(int(element.tag))
            if code is None or code in ("K", "U") or element.tag in descriptors:
                return
            if element.VR in _TEXT_VRS:
                words.update(v.strip() for v in _values(element) if len(v.strip()) >= 2)
            else:
                for value in _values(element):
                    words.update(_date_spellings(value))

        dataset.walk(gather)
        # Longest first ("Anna Maria" before "Anna"); a word ends at anything but a letter or a
        # digit, so "Smith_John" in a path loses both names.
        ordered = sorted(words, key=len, reverse=True)
        return cls(tuple(_word_pattern(w) for w in ordered))

    def clean(self, text: str) -> str:
        for pattern in self.patterns:
            text = pattern.sub("", text)
        text = _DATE_IN_TEXT.sub("", text)
        return re.sub(r"\s{2,}", " ", text).strip(" ,;:-^")


class _Walker:
    """Applies the profile to every element of a dataset and of its sequences' items."""

    def __init__(
        self, settings: DeidSettings, cleaner: TextCleaner, only: frozenset[str] | None = None
    ) -> None:
        self.settings = settings
        self.cleaner = cleaner
        self.only = only  # VRs to treat (sequences are still entered); None: all
        self.profile = basic_profile()

    def dataset(self, dataset: Dataset) -> None:
        for tag in list(dataset.keys()):
            element = dataset[tag]
            self.element(dataset, element)

    def items(self, element: DataElement) -> None:
        for item in element.value or ():
            self.dataset(item)

    def element(self, dataset: Dataset, element: DataElement) -> None:
        tag, vr = int(element.tag), element.VR
        if self.only is not None and vr not in self.only:
            if vr == "SQ":  # only some VRs: sequences are entered, never acted on themselves
                self.items(element)
            return
        if tag == PATIENT_NAME:  # one component on purpose: a trailing caret (PS3.5 6.2.1.2)
            element.value = f"{self.settings.key.pseudonym}^"
            return
        if tag == PATIENT_ID:
            element.value = self.settings.key.pseudonym
            return
        basic = self.profile.action(tag)
        if basic is None:  # not in Table E.1-1: kept, but its dates move with the others
            if vr == "SQ":
                self.items(element)
            elif vr in ("DA", "DT") and self.settings.retain_dates:
                self.shift(dataset, element)
            return
        code = option_action(tag, vr, self.settings.options) or resolve(basic, vr)
        self.apply(code, dataset, element)

    def apply(self, code: str, dataset: Dataset, element: DataElement) -> None:
        vr = element.VR
        if code == "X":
            del dataset[element.tag]
        elif code == "Z":
            element.value = element.empty_value
        elif code == "D":
            self.dummy(dataset, element)
        elif code == "U":
            if vr == "SQ":
                self.items(element)  # X/Z/U*: keep the references, map the UIDs inside
            elif vr == "UI":
                element.value = _map(element.value, self.settings.key.uid)
            else:
                element.value = element.empty_value
        elif code == "K":
            if vr == "SQ":
                self.items(element)
        elif code == "C":
            self.clean(dataset, element)
        else:  # a code this module does not know: the safe side
            del dataset[element.tag]

    def dummy(self, dataset: Dataset, element: DataElement) -> None:
        from dicomanonymizer.simpledicomanonymizer import replace_element

        vr = element.VR
        if vr == "SQ":
            element.value = Sequence([_DUMMY_SEQUENCE_ITEM()])
        elif vr == "UI":
            element.value = _map(element.value, self.settings.key.uid)
        elif vr in _DUMMY_TEMPORAL:
            element.value = _DUMMY_TEMPORAL[vr]
        else:
            try:
                replace_element(element)
            except NotImplementedError:  # a VR without a dummy (AT, OF, OL...): empty it
                element.value = element.empty_value

    def clean(self, dataset: Dataset, element: DataElement) -> None:
        vr = element.VR
        if vr == "SQ":
            self.items(element)
        elif vr in ("DA", "DT"):
            self.shift(dataset, element)
        elif vr == "TM":
            return  # whole-day offsets leave the time of day as it was
        elif vr in _TEXT_VRS:
            element.value = _map(element.value, self.cleaner.clean)

    def shift(self, dataset: Dataset, element: DataElement) -> None:
        """Move a date (DA) or the date of a date-time (DT) by the patient's offset; a value
        that is not a full date cannot be moved consistently, so it is removed."""
        key = self.settings.key
        moved: list[str] = []
        for value in _values(element):
            match = _DATE.match(value.strip())
            try:
                day = date(int(match[1]), int(match[2]), int(match[3])) if match else None
            except ValueError:
                day = None
            if day is None:
                del dataset[element.tag]
                return
            moved.append(key.shift_date(day).strftime("%Y%m%d") + value.strip()[8:])
        element.value = moved if element.VM > 1 else (moved[0] if moved else "")


def _values(element: DataElement) -> list[str]:
    value = element.value
    if value is None or value == "":
        return []
    if isinstance(value, MultiValue | list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def _map(value: object, change: Callable[[str], str]) -> object:
    if value is None or value == "":
        return value
    if isinstance(value, MultiValue | list | tuple):
        return [change(str(v)) for v in value]
    return change(str(value))


def _word_pattern(word: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![^\W_]){re.escape(word)}(?![^\W_])", re.IGNORECASE)


def _date_spellings(value: str) -> Iterable[str]:
    match = _DATE.match(value.strip())
    if not match:
        return ()
    y, m, d = match[1], match[2], match[3]
    return (
        f"{y}{m}{d}", f"{y}-{m}-{d}", f"{y}.{m}.{d}", f"{y}/{m}/{d}",
        f"{d}.{m}.{y}", f"{d}/{m}/{y}", f"{m}/{d}/{y}", f"{d}-{m}-{y}",
    )


def _strip_file_meta(dataset: Dataset) -> None:
    meta = getattr(dataset, "file_meta", None)
    if meta is None:
        return
    for tag in list(meta.keys()):
        if int(tag) not in _FILE_META_KEPT and int(tag) != 0x00020000:
            del meta[tag]


def _map_file_meta_instance(dataset: Dataset, key: PatientKey) -> None:
    """The file meta's instance UID: the dataset's new one, or (a file whose dataset leaves
    it empty) the patient's UID for the one the file meta had."""
    meta = getattr(dataset, "file_meta", None)
    if meta is None:
        return
    instance = str(dataset.get("SOPInstanceUID", "") or "")
    if instance:
        meta.MediaStorageSOPInstanceUID = instance
    elif str(meta.get("MediaStorageSOPInstanceUID", "") or ""):
        meta.MediaStorageSOPInstanceUID = key.uid(str(meta.MediaStorageSOPInstanceUID))


def _remove_repeating_groups(dataset: Dataset) -> None:
    """Curves (50xx) and overlays (60xx), at the top level where they live."""
    for tag in list(dataset.keys()):
        group = int(tag) >> 16
        if group & 0xFF00 in (0x5000, 0x6000) and group % 2 == 0:
            del dataset[tag]
