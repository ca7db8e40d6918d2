"""Earlier cases of a patient: same modality and body part first, then newest first."""

from __future__ import annotations

from pathlib import Path

from shared_fakes import metadata, series_info

from meddiag_desktop.db.engine import Database, DatabaseSettings
from meddiag_desktop.db.importing import import_series
from meddiag_desktop.db.priors import find_priors


def test_priors_are_the_patients_earlier_cases_best_candidates_first(tmp_path: Path) -> None:
    patient = {"patient_name": "DOE^JANE", "patient_id": "P1"}
    studies = {
        "current": ("20240601", "CT", "CHEST"),
        "chest_jan": ("20240101", "CT", "CHEST"),
        "chest_old": ("20230601", "CT", "CHEST"),
        "head_mr": ("20240201", "MR", "HEAD"),
        "abdomen": ("20240301", "CT", "ABDOMEN"),
        "later": ("20250101", "CT", "CHEST"),
        "undated": ("", "CT", "CHEST"),
    }
    cases: dict[str, int] = {}
    with Database.open(DatabaseSettings(url=str(tmp_path / "cases.sqlite3"))) as db:
        for index, (name, (day, modality, part)) in enumerate(studies.items(), start=1):
            meta = metadata(
                index, study_date=day, modality=modality, body_part_examined=part, **patient
            )
            cases[name] = import_series(db, series_info(meta)).case_id
        other = metadata(99, study_date="20240115", body_part_examined="CHEST")
        import_series(db, series_info(other))  # another patient
        priors = find_priors(db, cases["current"])
    order = [next(n for n, c in cases.items() if c == p.case_id) for p in priors]
    assert order == ["chest_jan", "chest_old", "undated", "abdomen", "head_mr"]
    assert priors[0].days_before == 152 and priors[0].same_body_part
    assert not priors[3].same_body_part and priors[3].same_modality
    assert not priors[4].same_modality
