"""The model registry and ``meddiag models``: find, list (broken cards too), add by copying."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny_models import make_model_folder

from meddiag_desktop.cli import main
from meddiag_desktop.inference.card import CardError
from meddiag_desktop.inference.registry import ModelRegistry


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    bundled = tmp_path / "bundled"
    make_model_folder(bundled / "threshold", name="threshold-test")
    broken = bundled / "broken"
    broken.mkdir()
    (broken / "card.toml").write_text('schema = 1\nname = "Bad Name"\n')
    return ModelRegistry([(bundled, "bundled"), (tmp_path / "user", "user")])


def test_lists_valid_and_broken(registry: ModelRegistry) -> None:
    entries = {e.folder.name: e for e in registry.entries()}
    assert entries["threshold"].card is not None
    assert entries["broken"].card is None and "'name'" in entries["broken"].error


def test_find_by_name_and_folder(registry: ModelRegistry, tmp_path: Path) -> None:
    assert registry.find("threshold-test").name == "threshold-test"
    assert registry.find(tmp_path / "bundled" / "threshold").name == "threshold-test"
    with pytest.raises(CardError, match="available: threshold-test"):
        registry.find("nope")


def test_add_copies_after_validation(registry: ModelRegistry, tmp_path: Path) -> None:
    source = make_model_folder(tmp_path / "new", name="new-model")
    card, signature = registry.add(source)
    assert signature.signed and signature.signer == "MedDiag test suite"
    assert card.folder == tmp_path / "user" / "new-model"
    assert (card.folder / "model.onnx").is_file()
    with pytest.raises(CardError, match="already installed"):
        registry.add(source)
    registry.add(source, replace=True)
    tampered = make_model_folder(tmp_path / "tampered", name="tampered")
    with open(tampered / "model.onnx", "ab") as handle:
        handle.write(b"x")
    with pytest.raises(CardError, match="sha256"):
        registry.add(tampered)
    assert not (tmp_path / "user" / "tampered").exists()


def test_models_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                    capsys: pytest.CaptureFixture[str]) -> None:
    bundled = tmp_path / "bundled"
    make_model_folder(bundled / "threshold", name="threshold-test")
    monkeypatch.setenv("MEDDIAG_BUNDLED_MODELS", str(bundled))
    monkeypatch.setattr("meddiag_desktop.inference.registry.user_models_dir",
                        lambda: tmp_path / "user")
    assert main(["models", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in listed] == ["threshold-test"]
    assert main(["models", "add", str(make_model_folder(tmp_path / "x", name="added"))]) == 0
    assert (tmp_path / "user" / "added" / "card.toml").is_file()
    capsys.readouterr()
    assert main(["models", "add", str(tmp_path / "missing")]) == 2
    assert "card.toml" in capsys.readouterr().err
