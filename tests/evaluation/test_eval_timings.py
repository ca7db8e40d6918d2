"""Run times from findings.json: read per case, averaged per stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meddiag_desktop.evaluation.timings import mean_timings, read_timings
from meddiag_desktop.scans import ScanError


def test_read_timings(tmp_path: Path) -> None:
    findings = tmp_path / "findings.json"
    assert read_timings(None) is None
    assert read_timings(findings) is None  # no file
    findings.write_text(json.dumps({"findings": []}))
    assert read_timings(findings) is None  # no timings
    findings.write_text(json.dumps({"timings_s": {"inference": 2, "total": 2.5}}))
    assert read_timings(findings) == {"inference": 2.0, "total": 2.5}


@pytest.mark.parametrize(
    ("text", "reason"),
    [("{not json", "cannot be read as JSON"), ('{"timings_s": {"total": "fast"}}', "seconds")],
)
def test_bad_findings_file_is_a_clear_error(tmp_path: Path, text: str, reason: str) -> None:
    findings = tmp_path / "findings.json"
    findings.write_text(text)
    with pytest.raises(ScanError, match=reason):
        read_timings(findings)


def test_mean_per_stage_over_the_cases_that_timed_it() -> None:
    means = mean_timings([{"load": 1.0, "total": 3.0}, None, {"total": 5.0}])
    assert means == {"load": 1.0, "total": 4.0}
    assert mean_timings([None, None]) is None
