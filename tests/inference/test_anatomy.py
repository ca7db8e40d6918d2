"""The anatomy check: a model runs where its card's [anatomy] says, is refused on another known
region, and warns when the scan does not say what it shows. Real headers where they exist."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from test_pipeline import phantom
from tiny_models import make_model_folder

from meddiag_desktop.demo.case import write_demo_case
from meddiag_desktop.domain import ScanMetadata, SeriesInfo, SeriesKind
from meddiag_desktop.inference.anatomy import (
    AnatomyVerdict,
    assess,
    check_series,
    check_volume,
    words_of,
)
from meddiag_desktop.inference.card import ModelCard, read_card
from meddiag_desktop.inference.pipeline import ModelMismatchError, check_anatomy
from meddiag_desktop.inference.registry import ModelRegistry, bundled_models_dir
from meddiag_desktop.scans import discover, load, write_volume

DEMO = "demo-lung-nodules"


@pytest.fixture(scope="module")
def demo_card() -> ModelCard:
    return ModelRegistry([(bundled_models_dir(), "bundled")]).find(DEMO)


def _volume_series(folder: Path) -> SeriesInfo:
    [series] = [s for s in discover(folder) if s.loadable and s.kind is SeriesKind.VOLUME]
    return series


def test_bundled_card_names_the_chest(demo_card: ModelCard) -> None:
    assert demo_card.anatomy is not None
    assert demo_card.anatomy.region == "chest"
    assert "CHEST" in demo_card.anatomy.body_parts and "thorax" in demo_card.anatomy.words


def test_real_head_ct_is_another_region(sample_data: Path, demo_card: ModelCard) -> None:
    series = _volume_series(sample_data / "dicom" / "ct_philips_mixed_folder")
    assert series.metadata.body_part_examined == "BRAIN"  # read by discovery, no pixels
    assert "HEAD" in series.metadata.protocol_name
    check = check_series(series, demo_card)
    assert check.verdict is AnatomyVerdict.OTHER_REGION and check.refused
    assert check.scan_regions == ("head",)
    assert "\n" not in check.message
    assert "is for the chest, but this scan is of the head" in check.message
    assert "BodyPartExamined 'BRAIN'" in check.message


def test_the_pipeline_refuses_it_unless_overridden(
    sample_data: Path, demo_card: ModelCard
) -> None:
    volume = load(_volume_series(sample_data / "dicom" / "ct_philips_mixed_folder"))
    assert check_volume(volume, demo_card).refused
    with pytest.raises(ModelMismatchError, match="is of the head"):
        check_anatomy(volume, demo_card, allow_mismatch=False)
    [warning] = check_anatomy(volume, demo_card, allow_mismatch=True)
    assert "is of the head" in warning and "Run anyway on request" in warning


def test_gantry_tilted_head_ct_by_body_part_alone(sample_data: Path, demo_card: ModelCard) -> None:
    series = _volume_series(sample_data / "dicom" / "ct_ge_gantry_tilt")
    assert series.metadata.body_part_examined == "HEAD"
    assert check_series(series, demo_card).refused


def test_real_ct_that_names_no_region_runs_with_a_warning(
    sample_data: Path, demo_card: ModelCard
) -> None:
    series = _volume_series(sample_data / "dicom" / "ct_siemens_j2k")  # PARTIALBODY, "CT Body"
    check = check_series(series, demo_card)
    assert check.verdict is AnatomyVerdict.UNKNOWN and not check.refused
    assert "anatomy is unknown" in check.message and "chest" in check.message


def test_demo_phantom_matches(tmp_path: Path, demo_card: ModelCard) -> None:
    case = write_demo_case(tmp_path / "demo", seed=3, shape_zyx=(24, 64, 64))
    series = _volume_series(case.dicom_folder)
    assert series.metadata.body_part_examined == "CHEST"
    check = check_series(series, demo_card)
    assert check.verdict is AnatomyVerdict.MATCH and check.message == ""
    assert check.evidence[0].field == "BodyPartExamined"


def test_nifti_says_its_anatomy_is_unknown_or_taken_from_its_name(
    tmp_path: Path, demo_card: ModelCard
) -> None:
    plain = write_volume(phantom(), tmp_path / "scan.nii.gz")
    check = check_volume(load(plain), demo_card)
    assert check.verdict is AnatomyVerdict.UNKNOWN
    assert "NIfTI, MHA and NRRD files do not record it" in check.message
    assert "'scan.nii.gz'" in check.message

    head = write_volume(phantom(), tmp_path / "head_ct.nii.gz")
    assert check_series(discover(head)[0], demo_card).refused
    named = check_volume(load(write_volume(phantom(), tmp_path / "lungCT.nii.gz")), demo_card)
    assert named.verdict is AnatomyVerdict.MATCH
    assert "file name 'lungCT.nii.gz' only" in named.message


@pytest.mark.parametrize(
    ("metadata", "verdict"),
    [
        (ScanMetadata(body_part_examined="CAP"), AnatomyVerdict.MATCH),
        (ScanMetadata(body_part_examined="CHEST_ABDOMEN"), AnatomyVerdict.MATCH),
        (ScanMetadata(body_part_examined="HEAD_NECK"), AnatomyVerdict.OTHER_REGION),
        (ScanMetadata(study_description="CT CHEST ABDOMEN PELVIS"), AnatomyVerdict.MATCH),
        (ScanMetadata(series_description="Thorax^1_HRCT"), AnatomyVerdict.MATCH),
        (ScanMetadata(protocol_name="CTHead routine"), AnatomyVerdict.OTHER_REGION),
        (ScanMetadata(study_description="6.9 Colonoscopy"), AnatomyVerdict.OTHER_REGION),
        (ScanMetadata(series_description="Pharmacy trial, arm B"), AnatomyVerdict.OTHER_REGION),
        (ScanMetadata(series_description="Pharmacy trial"), AnatomyVerdict.UNKNOWN),
        (ScanMetadata(), AnatomyVerdict.UNKNOWN),
    ],
)
def test_verdicts(metadata: ScanMetadata, verdict: AnatomyVerdict, demo_card: ModelCard) -> None:
    assert assess(metadata, demo_card).verdict is verdict


def test_words_split_at_case_changes_and_punctuation() -> None:
    assert words_of("CTHead_routine^Brain5mm") == ["ct", "head", "routine", "brain", "mm"]


def test_card_words_and_excluded_words(tmp_path: Path) -> None:
    anatomy = (
        '[anatomy]\nregion = "knee"\nbody_parts = ["KNEE"]\nwords = ["knee", "genou"]\n'
        'excluded_words = ["hand"]\n'
    )
    card = read_card(make_model_folder(tmp_path / "m", anatomy=anatomy))
    # "knee" belongs to the built-in lower limb: none of its words counts as another region ...
    assert assess(ScanMetadata(series_description="Genou G"), card).verdict is AnatomyVerdict.MATCH
    # ... but only its own words name it: an ankle is not said to be a knee (warned, not refused).
    assert assess(ScanMetadata(series_description="Ankle"), card).verdict is AnatomyVerdict.UNKNOWN
    refused = assess(ScanMetadata(series_description="HAND PA"), card)
    assert refused.refused and "anatomy the card excludes" in refused.message
    assert assess(ScanMetadata(body_part_examined="CHEST"), card).refused


def test_a_card_without_anatomy_makes_no_claim(tmp_path: Path) -> None:
    card = read_card(make_model_folder(tmp_path / "m", anatomy=""))
    assert card.anatomy is None
    head = replace(phantom(), metadata=ScanMetadata(modality="CT", body_part_examined="HEAD"))
    check = check_volume(head, card)
    assert check.verdict is AnatomyVerdict.NOT_STATED and not check.refused
    assert check_anatomy(head, card, allow_mismatch=False) == []
