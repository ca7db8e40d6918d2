"""Follow-up fixtures: the demo pair in memory and on disk, and a case database holding it.

The database fixture imports both studies as cases and stores each one's ground-truth nodule
mask as its model run (findings measured from the mask as the pipeline measures them), so the
comparison is checked on exact lesions without running a model; ``test_compare_model.py``
runs the real demo model instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from shared_fakes import store_ground_truth

from meddiag_desktop.db.engine import Database, DatabaseSettings
from meddiag_desktop.db.importing import import_path
from meddiag_desktop.demo.follow_up import FollowUpPair, make_follow_up_pair
from meddiag_desktop.demo.follow_up_case import FollowUpCase, write_follow_up_case

SEED = 7


@pytest.fixture(scope="session")
def pair() -> FollowUpPair:
    """The baseline and follow-up phantoms (about 7 s)."""
    return make_follow_up_pair(SEED)


@pytest.fixture(scope="session")
def pair_on_disk(tmp_path_factory: pytest.TempPathFactory) -> FollowUpCase:
    """``meddiag demo make DIR --follow-up`` as files (about 8 s)."""
    return write_follow_up_case(tmp_path_factory.mktemp("follow_up") / "pair", seed=SEED)


@dataclass(frozen=True)
class PairInDatabase:
    url: str
    folder: Path
    baseline_case: int
    follow_up_case: int
    truth: dict[str, Any]

    def open(self, actor: str | None = None) -> Database:
        return Database.open(DatabaseSettings(url=self.url, actor=actor))




@pytest.fixture(scope="module")
def truth_db(
    pair_on_disk: FollowUpCase, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PairInDatabase]:
    """Both studies imported, each with its ground truth stored as its run."""
    folder = tmp_path_factory.mktemp("truth_db")
    url = str(folder / "cases.sqlite3")
    with Database.open(DatabaseSettings(url=url)) as db:
        cases = []
        for case in (pair_on_disk.baseline, pair_on_disk.follow_up):
            [imported] = import_path(db, case.dicom_folder)
            assert imported.result is not None
            store_ground_truth(db, imported.result.case_id, case.dicom_folder, case.ground_truth)
            cases.append(imported.result.case_id)
    truth = json.loads(pair_on_disk.truth_json.read_text(encoding="utf-8"))
    yield PairInDatabase(url, folder, cases[0], cases[1], truth)


@pytest.fixture
def fresh_truth_db(truth_db: PairInDatabase, tmp_path: Path) -> PairInDatabase:
    """A copy of :func:`truth_db` of the test's own (database file and masks folder)."""
    import shutil

    copy = tmp_path / "db"
    shutil.copytree(truth_db.folder, copy)
    return PairInDatabase(
        str(copy / "cases.sqlite3"),
        copy,
        truth_db.baseline_case,
        truth_db.follow_up_case,
        truth_db.truth,
    )
