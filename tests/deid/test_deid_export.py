"""``meddiag export --deidentify`` end to end: a real model run on a demo CT stored in a real
database, exported de-identified with images, read back.

The demo's files are first given a real-looking identity (name, ID, birth date, accession
number, referring physician, institution, a description naming the patient, a private tag), so
the test can look for every piece of it in every output. A second patient's images say Burned
In Annotation YES.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from meddiag_desktop.db.audit import list_events
from meddiag_desktop.db.cases import get_case
from meddiag_desktop.db.engine import Database, DatabaseSettings
from meddiag_desktop.db.importing import import_series
from meddiag_desktop.db.pseudonyms import lookup_pseudonym
from meddiag_desktop.db.records import AuditAction, ReviewStatus, UserRole
from meddiag_desktop.db.reviews import review_finding, sign_case
from meddiag_desktop.db.runs import store_inference
from meddiag_desktop.db.users import ensure_user
from meddiag_desktop.deid import DeidOption, PatientKey
from meddiag_desktop.demo.case import write_demo_case
from meddiag_desktop.export.deidentified import BurnedInRefused, DeidRequest
from meddiag_desktop.export.write_outputs import export_case
from meddiag_desktop.inference.pipeline import InferenceOptions, run_inference, run_to_end
from meddiag_desktop.inference.registry import ModelRegistry
from meddiag_desktop.scans import discover, load

pytestmark = pytest.mark.slow

ACTOR = "dr_reader"
IDENTITY = {
    "PatientName": "Doe^Jane^Q",
    "PatientID": "MRN-4412-77",
    "PatientBirthDate": "19711203",
    "AccessionNumber": "ACC-99871",
    "ReferringPhysicianName": "Welby^Marcus",
    "InstitutionName": "St Elsewhere Hospital",
    "StudyDescription": "CT chest Doe Jane 2025-01-01",
}
# What must not appear in any output, as regular expressions over bytes and text.
SECRETS = (r"\bDoe\b", r"\bJane\b", "MRN-4412-77", "19711203", "1971-12-03", "ACC-99871",
           "Welby", "Elsewhere")
DCIODVFY = "/usr/bin/dciodvfy"
OPTIONS = frozenset({DeidOption.RETAIN_DATES, DeidOption.CLEAN_DESCRIPTORS})


def _give_identity(folder: Path, burned_in: bool = False) -> None:
    for path in sorted(folder.glob("*.dcm")):
        dataset = pydicom.dcmread(path)
        for keyword, value in IDENTITY.items():
            setattr(dataset, keyword, value)
        block = dataset.private_block(0x0029, "ACME PRIVATE", create=True)
        block.add_new(0x10, "LO", "Doe^Jane private copy")
        other = Dataset()
        other.PatientID = "OLD-MRN-1"
        dataset.OtherPatientIDsSequence = [other]
        if burned_in:
            dataset.PatientID = "BURNED-0008"
            dataset.BurnedInAnnotation = "YES"
        dataset.save_as(path, enforce_file_format=True)


def _analysed(db: Database, folder: Path, seed: int, burned_in: bool = False) -> int:
    demo = write_demo_case(folder, seed=seed, shape_zyx=(32, 96, 96),
                           spacing_xyz_mm=(1.6, 1.6, 2.5))
    _give_identity(demo.dicom_folder, burned_in)
    [series] = discover(demo.dicom_folder)
    volume = load(series)
    case_id = import_series(db, series).case_id
    card = ModelRegistry().find("demo-lung-nodules")
    store_inference(db, case_id, volume,
                    run_to_end(run_inference(volume, card, InferenceOptions(provider="cpu"))))
    return case_id


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory):
    """A signed case (all findings accepted) and a draft one whose images have burned-in text."""
    root = tmp_path_factory.mktemp("deid-export")
    url = f"sqlite:///{root / 'cases.sqlite3'}"
    db = Database.open(DatabaseSettings(url=url, actor=ACTOR))
    ensure_user(db, ACTOR, UserRole.RADIOLOGIST)
    signed = _analysed(db, root / "patient1", seed=7)
    findings = get_case(db, signed).current_run.findings
    assert findings, "the demo model found nothing on the demo case"
    for stored in findings:
        review_finding(db, stored.finding_pk, ReviewStatus.ACCEPTED)
    sign_case(db, signed)
    burned = _analysed(db, root / "patient2", seed=8, burned_in=True)
    yield db, url, signed, burned, root
    db.close()


@pytest.fixture(scope="module")
def exported(cases):
    """The signed case exported de-identified twice, with images, retain dates + clean."""
    db, _url, signed, _burned, root = cases
    request = DeidRequest(options=OPTIONS, images=True)
    first = export_case(db, signed, root / "first", deidentify=request)
    second = export_case(db, signed, root / "second", deidentify=request)
    return first, second


def _meddiag(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meddiag_desktop.cli", *args],
        capture_output=True, text=True, timeout=600, env=dict(os.environ),
    )


def _secrets_in(data: bytes) -> list[str]:
    return [s for s in SECRETS if re.search(s.encode(), data)]


def test_no_output_holds_the_patients_identity(exported, cases) -> None:
    from pypdf import PdfReader

    result = exported[0]
    assert result.pseudonym and result.pseudonym.startswith("ANON-")
    assert result.images is not None
    files = [*result.files, *sorted(result.images.iterdir())]
    assert {p.name for p in result.files} == {
        "report.pdf", "seg.dcm", "sr.dcm", "labels.nii.gz", "findings.csv", "findings.json"
    }
    def contents(path: Path) -> bytes:  # the NIfTI header is inside the gzip stream
        data = path.read_bytes()
        return gzip.decompress(data) if path.name.endswith(".gz") else data

    leaks = {p.name: found for p in files if (found := _secrets_in(contents(p)))}
    assert not leaks, leaks
    reader = PdfReader(result.out_dir / "report.pdf")
    text = "\n".join(page.extract_text() for page in reader.pages)
    text += "\n" + "\n".join(str(value) for value in (reader.metadata or {}).values())
    assert result.pseudonym in text
    assert not [s for s in SECRETS if re.search(s, text)], text[:2000]
    document = json.loads((result.out_dir / "findings.json").read_text())
    assert document["scan"]["patient_name"] == result.pseudonym
    assert document["scan"]["patient_id"] == result.pseudonym
    csv_text = (result.out_dir / "findings.csv").read_text()
    assert not [s for s in SECRETS if re.search(s, csv_text)]
    # Not even a file name of the original series leaves.
    originals = {p.name for p in (cases[4] / "patient1" / "dicom").glob("*.dcm")}
    assert not originals & {p.name for p in result.images.iterdir()}
    # Owner-only, like every output: the copies hold pixels of a real patient.
    assert stat.S_IMODE(result.images.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o600}


def test_seg_and_sr_reference_the_deidentified_copies(exported, cases) -> None:
    result = exported[0]
    images = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(result.images.iterdir())]
    sop_uids = {str(ds.SOPInstanceUID) for ds in images}
    (series_uid,) = {str(ds.SeriesInstanceUID) for ds in images}
    (study_uid,) = {str(ds.StudyInstanceUID) for ds in images}
    originals = [pydicom.dcmread(p, stop_before_pixels=True)
                 for p in sorted((cases[4] / "patient1" / "dicom").glob("*.dcm"))]
    assert not sop_uids & {str(ds.SOPInstanceUID) for ds in originals}
    seg = pydicom.dcmread(result.out_dir / "seg.dcm")
    assert seg.StudyInstanceUID == study_uid
    assert seg.FrameOfReferenceUID == images[0].FrameOfReferenceUID
    (referenced,) = seg.ReferencedSeriesSequence
    assert referenced.SeriesInstanceUID == series_uid
    assert {str(i.ReferencedSOPInstanceUID) for i in referenced.ReferencedInstanceSequence} <= (
        sop_uids
    )
    frame_sources = {
        str(source.ReferencedSOPInstanceUID)
        for frame in seg.PerFrameFunctionalGroupsSequence
        for derivation in frame.DerivationImageSequence
        for source in derivation.SourceImageSequence
    }
    assert frame_sources and frame_sources <= sop_uids
    sr = pydicom.dcmread(result.out_dir / "sr.dcm")
    assert sr.StudyInstanceUID == study_uid
    cited = {str(e.value) for e in sr.iterall() if e.keyword == "ReferencedSOPInstanceUID"}
    assert str(seg.SOPInstanceUID) in cited
    assert cited <= sop_uids | {str(seg.SOPInstanceUID)}
    evidence = {
        str(series.SeriesInstanceUID)
        for study in sr.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
    }
    assert evidence == {series_uid, str(seg.SeriesInstanceUID)}
    for ds in (seg, sr, images[0]):
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.PatientName == f"{result.pseudonym}^" and ds.PatientID == result.pseudonym
        assert ds.LongitudinalTemporalInformationModified == "MODIFIED"
        codes = {item.CodeValue for item in ds.DeidentificationMethodCodeSequence}
        assert codes == {"113100", "113107", "113105"}
    assert not [e for e in sr.iterall() if e.keyword == "PersonName" and ACTOR in str(e.value)]


def test_a_later_export_of_the_patient_matches_the_first(exported, cases) -> None:
    first, second = exported
    assert first.pseudonym == second.pseudonym
    db = cases[0]
    record = lookup_pseudonym(db, first.pseudonym).pseudonym
    key = PatientKey(record.pseudonym, record.secret)
    pairs = zip(sorted(first.images.iterdir()), sorted(second.images.iterdir()), strict=True)
    for a, b in pairs:
        one, two = (pydicom.dcmread(p, stop_before_pixels=True) for p in (a, b))
        for keyword in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID",
                        "FrameOfReferenceUID", "StudyDate", "SeriesDate", "ContentDate"):
            assert one.get(keyword) == two.get(keyword), keyword
    original = next((cases[4] / "patient1" / "dicom").glob("*.dcm"))
    source = pydicom.dcmread(original, stop_before_pixels=True)
    from datetime import date

    study = str(source.StudyDate)
    moved = key.shift_date(date(int(study[:4]), int(study[4:6]), int(study[6:])))
    assert one.StudyDate == moved.strftime("%Y%m%d") != study
    seg1 = pydicom.dcmread(first.out_dir / "seg.dcm")
    seg2 = pydicom.dcmread(second.out_dir / "seg.dcm")
    assert seg1.ReferencedSeriesSequence[0].SeriesInstanceUID == (
        seg2.ReferencedSeriesSequence[0].SeriesInstanceUID
    )


def test_the_lookup_and_the_export_are_audited_without_the_name(exported, cases) -> None:
    db, url, signed, _burned, _root = cases
    pseudonym = exported[0].pseudonym
    done = _meddiag("deid", "lookup", pseudonym, "--db", url)
    assert done.returncode == 0, done.stderr
    assert re.search(r"patient: +Doe.Jane.Q", done.stdout) and "MRN-4412-77" in done.stdout
    assert f"cases:       {signed}" in done.stdout
    missing = _meddiag("deid", "lookup", "ANON-NOSUCHONE0", "--db", url)
    assert missing.returncode == 2 and "no patient has the pseudonym" in missing.stderr
    events = list_events(db)
    lookups = [e for e in events if e.action is AuditAction.PSEUDONYM_LOOKED_UP]
    assert [e.details["pseudonym"] for e in lookups][-2:] == [pseudonym, "ANON-NOSUCHONE0"]
    exports = [e for e in events if e.action is AuditAction.REPORT_EXPORTED
               and "deidentified" in e.details]
    assert exports
    details = exports[-1].details["deidentified"]
    assert details["pseudonym"] == pseudonym
    assert details["options"] == ["retain-dates", "clean-descriptors"]
    assert details["images"] == len(list(exported[0].images.iterdir()))
    for event in (*lookups, *exports):
        assert not _secrets_in(json.dumps(event.details).encode()), event.details


def test_burned_in_annotation_is_refused_with_the_reason(cases, tmp_path: Path) -> None:
    db, url, _signed, burned, _root = cases
    with pytest.raises(BurnedInRefused, match="Burned In Annotation is YES"):
        export_case(db, burned, tmp_path / "api", deidentify=DeidRequest(images=True))
    assert not (tmp_path / "api").exists() or not any((tmp_path / "api").iterdir())
    refused = _meddiag("export", str(burned), "--out", str(tmp_path / "cli"), "--deidentify",
                       "--db", url)
    assert refused.returncode == 2
    assert "Burned In Annotation is YES" in refused.stderr and "--allow-burned-in" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    allowed = _meddiag("export", str(burned), "--out", str(tmp_path / "cli"), "--deidentify",
                       "--images", "--allow-burned-in", "--db", url)
    assert allowed.returncode == 0, allowed.stderr
    assert (tmp_path / "cli" / "images").is_dir()
    last = [e for e in list_events(db) if e.action is AuditAction.REPORT_EXPORTED][-1]
    assert last.details["deidentified"]["burned_in_confirmed"]


def test_deidentification_flags_need_deidentify(cases, tmp_path: Path) -> None:
    _db, url, signed, _burned, _root = cases
    done = _meddiag("export", str(signed), "--out", str(tmp_path), "--images", "--db", url)
    assert done.returncode == 2 and "only go with --deidentify" in done.stderr
    done = _meddiag("export", str(signed), "--out", str(tmp_path), "--deidentify",
                    "--options", "retain-everything", "--db", url)
    assert done.returncode == 2 and "unknown de-identification option" in done.stderr


def test_dciodvfy_finds_no_error_in_the_deidentified_objects(exported, artifacts_dir) -> None:
    validator = DCIODVFY if Path(DCIODVFY).exists() else shutil.which("dciodvfy")
    if validator is None:
        if os.environ.get("MEDDIAG_REQUIRE_DCIODVFY") == "1":
            pytest.fail("dciodvfy (dicom3tools) not found")
        pytest.skip("dciodvfy (dicom3tools) not found: the IODs are not validated")
    result = exported[0]
    report = []
    for path in (result.out_dir / "seg.dcm", result.out_dir / "sr.dcm",
                 sorted(result.images.iterdir())[0]):
        run = subprocess.run([validator, str(path)], capture_output=True, text=True,
                             timeout=120, check=False)
        report.append(f"# dciodvfy {path.name}, exit {run.returncode}\n{run.stdout}{run.stderr}")
    text = "\n".join(report)
    (artifacts_dir / "dciodvfy_deidentified.txt").write_text(text, encoding="utf-8")
    errors = [line for line in text.splitlines() if line.startswith("Error")]
    assert not errors, "\n".join(errors)
