"""Model cards: every field validated, all problems reported at once, sha256 enforced."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_models import make_model_folder

from meddiag_desktop.inference.card import CardError, read_card, verify_onnx


def test_valid_card_reads(tmp_path: Path) -> None:
    card = read_card(make_model_folder(tmp_path / "m"))
    assert card.name == "threshold-test"
    assert card.input.shape_zyx == (16, 16, 16)
    assert card.label_names == {1: "lesion"}
    verify_onnx(card)


def test_all_problems_reported_together(tmp_path: Path) -> None:
    folder = make_model_folder(tmp_path / "m")
    text = (folder / "card.toml").read_text()
    text = text.replace('task = "segmentation"', 'task = "classification"')
    text = text.replace('colour = "#ff5050"', 'colour = "red"')
    text = text.replace('method = "ct_window"', 'method = "magic"')
    text = text.replace('threshold = 0.5', 'threshold = 1.5')
    (folder / "card.toml").write_text(text)
    with pytest.raises(CardError) as raised:
        read_card(folder)
    message = str(raised.value)
    for expected in ("'task'", "colour", "ct_window, zscore", "threshold"):
        assert expected in message
    assert len(raised.value.problems) >= 4


def test_missing_fields_and_missing_onnx(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "card.toml").write_text('schema = 1\n[file]\nonnx = "nope.onnx"\n')
    with pytest.raises(CardError) as raised:
        read_card(folder)
    message = str(raised.value)
    assert "'name' is missing" in message and "nope.onnx" in message


def test_not_toml(tmp_path: Path) -> None:
    (tmp_path / "card.toml").write_text("this is = = not toml")
    with pytest.raises(CardError, match="not valid TOML"):
        read_card(tmp_path)


def test_sha256_mismatch_is_refused(tmp_path: Path) -> None:
    folder = make_model_folder(tmp_path / "m")
    with open(folder / "model.onnx", "ab") as handle:
        handle.write(b"tampered")
    card = read_card(folder)
    with pytest.raises(CardError, match="damaged or is not the model"):
        verify_onnx(card)


TILING = """max_tile_zyx = [128, 128, 96]
tile_multiple = 4
tile_margin = 8
tile_bytes_per_voxel = 190
"""


def test_fully_convolutional_fields_read(tmp_path: Path) -> None:
    card = read_card(make_model_folder(tmp_path / "m", tiling=TILING))
    window = card.sliding_window
    assert window.fully_convolutional
    assert (window.max_tile_zyx, window.tile_multiple, window.tile_margin) == ((128, 128, 96), 4, 8)
    assert window.tile_bytes_per_voxel == 190.0
    assert not read_card(make_model_folder(tmp_path / "plain")).sliding_window.fully_convolutional


@pytest.mark.parametrize(
    ("tiling", "expected"),
    [
        ("max_tile_zyx = [128, 128, 128]\n", "together"),
        (TILING.replace("[128, 128, 96]", "[128, 126, 96]"), "multiples of tile_multiple"),
        (TILING.replace("[128, 128, 96]", "[128, 128, 8]"), "at least the patch"),
        (TILING.replace("tile_margin = 8", "tile_margin = 60"), "twice tile_margin"),
        (TILING.replace("tile_margin = 8", "tile_margin = -1"), "receptive-field radius"),
        (TILING.replace("tile_multiple = 4", "tile_multiple = 0"), "tile_multiple' must be"),
        (TILING.replace("tile_multiple = 4", "tile_multiple = 3"), "'input.shape_zyx' must be"),
        (TILING.replace("190", "-5"), "tile_bytes_per_voxel"),
    ],
)
def test_fully_convolutional_fields_are_checked(tmp_path: Path, tiling: str, expected: str) -> None:
    with pytest.raises(CardError, match=expected):
        read_card(make_model_folder(tmp_path / "m", tiling=tiling))


def test_tiles_only_for_sliding_window_models(tmp_path: Path) -> None:
    folder = make_model_folder(tmp_path / "m", tiling=TILING)
    text = (folder / "card.toml").read_text().replace('mode = "sliding_window"',
                                                      'mode = "whole_volume"')
    (folder / "card.toml").write_text(text)
    with pytest.raises(CardError, match=r"only for input\.mode"):
        read_card(folder)


def test_anatomy_fields_are_read(tmp_path: Path) -> None:
    card = read_card(make_model_folder(tmp_path / "m"))
    assert card.anatomy is not None and card.anatomy.region == "chest"
    assert card.anatomy.body_parts == ("CHEST", "LUNG")
    assert "thorax" in card.anatomy.words and card.anatomy.excluded_words == ()


def test_anatomy_problems_reported_together_with_the_rest(tmp_path: Path) -> None:
    anatomy = (
        '[anatomy]\nregion = ""\nbody_parts = ["chest", "A VERY LONG BODY PART"]\n'
        'words = ["Thorax", "lung", 3]\nexcluded_words = ["lung", "two words"]\n'
        'bodypart = "CHEST"\n'
    )
    folder = make_model_folder(tmp_path / "m", anatomy=anatomy)
    text = (folder / "card.toml").read_text().replace('colour = "#ff5050"', 'colour = "red"')
    (folder / "card.toml").write_text(text)
    with pytest.raises(CardError) as raised:
        read_card(folder)
    problems = raised.value.problems
    message = " ".join(problems)
    assert "'anatomy.region' must name the region" in message
    assert "'anatomy.body_parts' must be DICOM defined terms" in message
    assert "'chest'" in message and "'A VERY LONG BODY PART'" in message
    assert "'anatomy.words' must be single lower-case words" in message
    assert "'anatomy.excluded_words' must be single lower-case words" in message
    assert "'anatomy.excluded_words' repeats word(s) of 'words': lung" in message
    assert "unknown field(s) bodypart" in message
    assert "colour" in message  # the rest of the card is still checked in the same pass
    assert len(problems) >= 7


def test_anatomy_needs_something_to_recognise(tmp_path: Path) -> None:
    folder = make_model_folder(tmp_path / "m", anatomy='[anatomy]\nregion = "chest"\n')
    with pytest.raises(CardError, match="needs 'body_parts' or 'words'"):
        read_card(folder)
    folder = make_model_folder(tmp_path / "n", anatomy='anatomy = "chest"\n')
    with pytest.raises(CardError, match="'anatomy' must be dict"):
        read_card(folder)
