"""Signed model packages: a signed model runs and says who signed it; an unsigned, tampered or
untrusted one is refused with the reason, unless an admin allows unsigned models (audited)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
from model_signing import TEST_KEY_ID, TEST_SIGNER
from test_pipeline import phantom
from tiny_models import make_model_folder

from meddiag_desktop.cli import main
from meddiag_desktop.db.audit import recent_events
from meddiag_desktop.db.engine import Database, DatabaseSettings
from meddiag_desktop.db.records import AuditAction
from meddiag_desktop.db.runs import get_run
from meddiag_desktop.inference.card import CARD_FILE, CardError, read_card
from meddiag_desktop.inference.model_keys import ModelKeyError, key_id, read_public_key
from meddiag_desktop.inference.model_signature import (
    SIGNATURE_FILE,
    ModelSignatureError,
    SignatureProblem,
    verify_package,
)
from meddiag_desktop.inference.pipeline import (
    InferenceOptions,
    InferenceResult,
    run_inference,
    run_to_end,
)
from meddiag_desktop.inference.registry import bundled_models_dir
from meddiag_desktop.inference.trusted_keys import (
    PROJECT_KEY_NAME,
    TRUST_ENV,
    TrustStore,
    project_key,
)
from meddiag_desktop.scans import write_volume

REPO = Path(__file__).resolve().parents[2]
SHIPPED_KEY = REPO / "resources" / "keys" / "meddiag-project-model-key.pub"


def _run(model: Path, **options: bool) -> InferenceResult:
    return run_to_end(run_inference(phantom(), read_card(model), InferenceOptions(**options)))


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_signed_model_runs_and_names_its_signer(tmp_path: Path) -> None:
    result = _run(make_model_folder(tmp_path / "model"))
    assert result.signature is not None and result.signature.signed
    assert result.signature.key_id == TEST_KEY_ID
    assert result.signature.describe().startswith(f"signed by {TEST_SIGNER} (key {TEST_KEY_ID}")


def test_unsigned_model_is_refused_with_the_reason(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    model = make_model_folder(tmp_path / "model", signed=False)
    unsigned = r"unsigned \(it has no signature\.json\)"
    with pytest.raises(ModelSignatureError, match=unsigned) as caught:
        _run(model)
    assert caught.value.problem is SignatureProblem.UNSIGNED
    assert main(["models", "add", str(model)]) == 2
    err = capsys.readouterr().err
    assert "model refused: the package is unsigned" in err and "--allow-unsigned" in err
    assert len(err.strip().splitlines()) == 1


def test_one_byte_of_the_onnx_changed_is_refused_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = make_model_folder(tmp_path / "model")
    _flip_one_byte(model / "model.onnx")
    with pytest.raises(CardError, match=r"model\.onnx has sha256"):
        _run(model)
    assert main(["models", "add", str(model)]) == 2
    assert "model.onnx has sha256" in capsys.readouterr().err
    # Updating the card's sha256 to match does not help: the card is signed too.
    card = model / CARD_FILE
    text = card.read_text()
    old = read_card(model).sha256
    new = hashlib.sha256((model / "model.onnx").read_bytes()).hexdigest()
    card.write_text(text.replace(old, new))
    with pytest.raises(ModelSignatureError, match=r"card\.toml has changed since the package"):
        _run(model)


def test_edited_card_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = make_model_folder(tmp_path / "model")
    card = model / CARD_FILE
    card.write_text(card.read_text().replace("threshold = 0.5", "threshold = 0.1"))
    with pytest.raises(ModelSignatureError, match=r"card\.toml has changed") as caught:
        _run(model)
    assert caught.value.problem is SignatureProblem.INVALID
    assert main(["models", "add", str(model)]) == 2
    assert "card.toml has changed since the package was signed" in capsys.readouterr().err


def test_edited_signature_is_refused(tmp_path: Path) -> None:
    model = make_model_folder(tmp_path / "model")
    document = json.loads((model / SIGNATURE_FILE).read_text())
    document["signer"] = "Someone else"
    (model / SIGNATURE_FILE).write_text(json.dumps(document))
    with pytest.raises(ModelSignatureError, match="signature does not match"):
        _run(model)
    document["files"][0]["name"] = "../card.toml"
    (model / SIGNATURE_FILE).write_text(json.dumps(document))
    with pytest.raises(ModelSignatureError, match="not a file of the folder"):
        _run(model)


def test_untrusted_key_is_refused_naming_the_key_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TRUST_ENV, str(tmp_path / "trust.json"))  # only the shipped key
    model = make_model_folder(tmp_path / "model", signed=False)
    key = tmp_path / "keys" / "hospital-key"
    assert main(["models", "keygen", "--out", str(key)]) == 0
    new_id = key_id(read_public_key(key.with_name("hospital-key.pub")))
    assert main(["models", "sign", str(model), "--key", str(key),
                 "--signer", "Hospital physics"]) == 0
    capsys.readouterr()
    with pytest.raises(ModelSignatureError, match=f"signed with key {new_id} .'Hospital physics'"):
        _run(model)
    assert main(["models", "add", str(model)]) == 2
    err = capsys.readouterr().err
    assert f"key {new_id}" in err and "does not trust" in err
    # Trusting the public half (audited) makes the same package acceptable.
    db_url = str(tmp_path / "cases.sqlite3")
    assert main(["models", "trust", str(key.with_name("hospital-key.pub")),
                 "--name", "Hospital physics", "--db", db_url]) == 0
    assert _run(model).signature.signer == "Hospital physics"
    assert main(["models", "keys"]) == 0
    listed = capsys.readouterr().out
    assert new_id in listed and PROJECT_KEY_NAME in listed
    assert main(["models", "untrust", new_id, "--db", db_url]) == 0
    with pytest.raises(ModelSignatureError, match="does not trust"):
        _run(model)
    with Database.open(DatabaseSettings(url=db_url)) as db:
        actions = [e.action for e in recent_events(db)]
    assert actions[:2] == [AuditAction.MODEL_KEY_UNTRUSTED, AuditAction.MODEL_KEY_TRUSTED]


def test_allow_unsigned_works_and_is_audited(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("meddiag_desktop.inference.registry.user_models_dir",
                        lambda: tmp_path / "user")
    model = make_model_folder(tmp_path / "model", name="unsigned-test", signed=False)
    db_url = str(tmp_path / "cases.sqlite3")
    assert main(["models", "add", str(model), "--allow-unsigned", "--db", db_url]) == 0
    assert "UNSIGNED model" in capsys.readouterr().out
    assert (tmp_path / "user" / "unsigned-test" / CARD_FILE).is_file()

    scan = write_volume(phantom(), tmp_path / "scan.nii.gz")
    out = tmp_path / "out"
    args = ["infer", str(scan), "--model", str(model), "--out", str(out), "--db", db_url]
    assert main(args) == 2
    assert "unsigned" in capsys.readouterr().err
    assert main([*args, "--allow-unsigned"]) == 0
    captured = capsys.readouterr()
    assert "UNSIGNED model" in captured.out and "could not be verified" in captured.err
    report = json.loads((out / "findings.json").read_text())
    assert report["model"]["signature"]["status"] == "unsigned"
    with Database.open(DatabaseSettings(url=db_url)) as db:
        events = recent_events(db)
        run = get_run(db, report["database"]["run_id"])
    [added] = [e for e in events if e.action is AuditAction.MODEL_ADDED]
    assert added.details["allow_unsigned"] is True and added.details["model"] == "unsigned-test"
    assert added.details["signature"]["status"] == "unsigned" and added.actor
    # The refused attempt is on file as a failed run with the reason, like a damaged model.
    refused, saved = sorted((e for e in events if e.action is AuditAction.RUN_SAVED),
                            key=lambda e: e.event_id)
    assert refused.details["outcome"] == "failed" and "unsigned" in refused.details["error"]
    assert saved.details["outcome"] == "succeeded"
    assert saved.details["overrides"] == ["allow_unsigned"]
    assert run.parameters["signature"]["status"] == "unsigned"

    # Allowing unsigned models never lets a package whose signature fails through.
    tampered = make_model_folder(tmp_path / "tampered", name="tampered")
    (tampered / CARD_FILE).write_text((tampered / CARD_FILE).read_text() + "\n# edited\n")
    with pytest.raises(ModelSignatureError, match=r"card\.toml has changed"):
        _run(tampered, allow_unsigned=True)
    assert main(["models", "add", str(tampered), "--allow-unsigned", "--db", db_url]) == 2


def test_signer_is_printed_and_stored_with_the_run(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    scan = write_volume(phantom(), tmp_path / "scan.nii.gz")
    model = make_model_folder(tmp_path / "model")
    out, db_url = tmp_path / "out", str(tmp_path / "cases.sqlite3")
    assert main(["infer", str(scan), "--model", str(model), "--out", str(out),
                 "--db", db_url]) == 0
    assert f"signed by {TEST_SIGNER} (key {TEST_KEY_ID}" in capsys.readouterr().out
    report = json.loads((out / "findings.json").read_text())
    assert report["model"]["signature"]["key_id"] == TEST_KEY_ID
    with Database.open(DatabaseSettings(url=db_url)) as db:
        run = get_run(db, report["database"]["run_id"])
        [saved] = [e for e in recent_events(db) if e.action is AuditAction.RUN_SAVED]
    assert run.parameters["signature"] == report["model"]["signature"]
    assert saved.details["signature"]["signer"] == TEST_SIGNER


def test_keygen_writes_an_owner_only_private_key_and_never_overwrites(tmp_path: Path) -> None:
    key = tmp_path / "k"
    assert main(["models", "keygen", "--out", str(key)]) == 0
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert "PRIVATE KEY" in key.read_text() and "PUBLIC KEY" in (tmp_path / "k.pub").read_text()
    before = key.read_bytes()
    assert main(["models", "keygen", "--out", str(key)]) == 2
    assert key.read_bytes() == before
    with pytest.raises(ModelKeyError, match="this is a private key"):
        TrustStore(tmp_path / "t.json").trust(key, "oops", "tests")


def test_every_bundled_model_verifies_against_the_shipped_public_key(tmp_path: Path) -> None:
    shipped = project_key()
    assert shipped is not None, f"{SHIPPED_KEY} is missing"
    assert shipped.key_id == key_id(read_public_key(SHIPPED_KEY))
    only_shipped = TrustStore(tmp_path / "empty.json", shipped=(shipped,))
    folders = [p for p in sorted(bundled_models_dir().iterdir()) if (p / CARD_FILE).is_file()]
    assert folders, f"no bundled models in {bundled_models_dir()}"
    for folder in folders:
        signature = verify_package(read_card(folder), only_shipped)
        assert signature.signer == PROJECT_KEY_NAME and signature.key_id == shipped.key_id


def test_no_private_key_is_in_the_repository() -> None:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout.splitlines()
    pem_private = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----")
    offending = [
        name
        for name in listed
        if (REPO / name).is_file()
        and (REPO / name).stat().st_size < 1_000_000
        and pem_private.search((REPO / name).read_bytes())
    ]
    assert offending == []
