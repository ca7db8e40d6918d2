"""The small parts: the patient key, the options, the generated option table, text cleaning."""

from __future__ import annotations

import importlib.util
from datetime import date
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import UID

from meddiag_desktop.deid import DeidError, DeidOption, PatientKey, parse_options
from meddiag_desktop.deid.dataset import TextCleaner
from meddiag_desktop.deid.profile_table import basic_profile

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_key_gives_stable_valid_uids_and_one_offset_per_patient() -> None:
    key = PatientKey("ANON-UNIT000001", "ab" * 32)
    same = PatientKey("ANON-UNIT000001", "ab" * 32)
    other = PatientKey("ANON-UNIT000002", "cd" * 32)
    original = "1.2.840.113619.2.55.3.604688119.969.1268071029.320"
    uid = key.uid(original)
    assert uid == same.uid(original) == key.uid(f" {original} ")
    assert uid != other.uid(original) and uid != key.uid(original + "1")
    assert UID(uid).is_valid and len(uid) <= 64 and uid.startswith("2.25.")
    number = int(uid.removeprefix("2.25."))
    assert (number >> 76) & 0xF == 8 and (number >> 62) & 0x3 == 2  # UUID version 8, RFC variant
    assert key.date_offset == same.date_offset
    assert -3653 <= key.date_offset.days <= -365
    assert key.shift_date(date(2020, 3, 17)) == date(2020, 3, 17) + key.date_offset
    with pytest.raises(ValueError):
        PatientKey("ANON-X", "00")


def test_options_are_parsed_by_their_names() -> None:
    assert parse_options("") == frozenset()
    assert parse_options(" retain-dates, CLEAN-DESCRIPTORS ") == {
        DeidOption.RETAIN_DATES, DeidOption.CLEAN_DESCRIPTORS
    }
    assert parse_options(["retain-patient-characteristics"]) == {
        DeidOption.RETAIN_PATIENT_CHARACTERISTICS
    }
    with pytest.raises(DeidError, match="unknown de-identification option 'retain-uids'"):
        parse_options("retain-uids")
    codes = {option: option.code.value for option in DeidOption}
    assert codes == {
        DeidOption.RETAIN_DATES: "113107",
        DeidOption.RETAIN_PATIENT_CHARACTERISTICS: "113108",
        DeidOption.CLEAN_DESCRIPTORS: "113105",
    }


def test_the_option_table_is_what_the_generator_writes() -> None:
    """meddiag_desktop/deid/option_table.py is generated, never edited by hand."""
    path = REPO_ROOT / "tools" / "generate_deid_option_table.py"
    spec = importlib.util.spec_from_file_location("generate_deid_option_table", path)
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    expected = generator.render(generator.table_rows())
    assert generator.TARGET.read_text(encoding="utf-8") == expected


def test_the_basic_profile_table_is_the_2026c_one() -> None:
    profile = basic_profile()
    assert len(profile.actions) == 652 and len(profile.masked) == 3
    assert profile.action(0x00100010) == "Z"  # Patient's Name
    assert profile.action(0x00080018) == "U"  # SOP Instance UID
    assert profile.action(0x60023000) == "X"  # Overlay Data, any 60xx group
    assert profile.action(0x00280010) is None  # Rows: not an identifying attribute


def test_free_text_loses_the_patients_words_and_dates() -> None:
    dataset = Dataset()
    dataset.PatientName = "Smith^John"
    dataset.PatientID = "P123"
    dataset.PatientBirthDate = "19700102"
    dataset.InstitutionName = "St Mary Clinic"
    dataset.SeriesDescription = "John's series"  # a descriptor: not itself a word to remove
    cleaner = TextCleaner.of(dataset)
    text = "/data/Smith_John/P123 scan 1970-01-02 at St Mary Clinic, Johnson axial 3mm 2021-05-06"
    assert cleaner.clean(text) == "/data/_/ scan at , Johnson axial 3mm"
    assert cleaner.clean("T1 MPRAGE series") == "T1 MPRAGE series"
