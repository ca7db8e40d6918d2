"""Encryption at rest: SQLCipher database, sealed mask files, ``db encrypt|decrypt`` (also
killed half-way), and the operating system's disk-encryption check (docs/threat-model.md)."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import db_fakes
import numpy as np
import pytest

from meddiag_desktop.db import encryption_conversion, encryption_keys, errors
from meddiag_desktop.db.backup import backup_database
from meddiag_desktop.db.cases import get_case
from meddiag_desktop.db.disk_encryption import (
    DiskEncryptionState,
    linux_disk_encryption,
    parse_fdesetup,
    parse_manage_bde,
)
from meddiag_desktop.db.encryption_conversion import (
    ORIGINAL_SUFFIX,
    TEST_PAUSE_VARIABLE,
    WORK_SUFFIX,
    decrypt_database,
    encrypt_database,
)
from meddiag_desktop.db.encryption_keys import (
    PASSPHRASE_ENVIRONMENT_VARIABLE,
    KdfParameters,
    PassphraseRequiredError,
    WrongPassphraseError,
    keyinfo_path,
)
from meddiag_desktop.db.engine import Database, DatabaseSettings
from meddiag_desktop.db.importing import import_series
from meddiag_desktop.db.integrity import check_database
from meddiag_desktop.db.mask_encryption import MAGIC
from meddiag_desktop.db.masks import files_in
from meddiag_desktop.db.records import MaskEdit, UserRole
from meddiag_desktop.db.reviewed_masks import list_reviewed_masks, load_reviewed_mask
from meddiag_desktop.db.reviews import add_manual_finding
from meddiag_desktop.db.runs import load_mask, store_inference
from meddiag_desktop.db.users import ensure_user
from meddiag_desktop.domain import FindingSource

PASSPHRASE = "correct horse battery staple"
CHEAP_KDF = KdfParameters(time_cost=1, memory_cost_kib=64, parallelism=1)  # tests: behaviour
CASES = 3
PATIENT_NAME = b"DOE^PATIENT00001"


@pytest.fixture(autouse=True)
def no_passphrase_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PASSPHRASE_ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setattr(encryption_keys, "keyring_key", lambda _path: None)


def plain_database(folder: Path) -> tuple[Path, dict[str, str]]:
    """CASES analysed cases (one mask each) and one saved edit; the sha256 of every mask's
    voxels, by mask file name, as the plain database hands them out."""
    path = folder / "meddiag.sqlite3"
    with Database.open(DatabaseSettings(url=str(path), actor="tester")) as db:
        ensure_user(db, "tester", UserRole.RADIOLOGIST)
        for index in range(CASES):
            volume = db_fakes.volume(index)
            case_id = import_series(db, db_fakes.series(index)).case_id
            run_id = store_inference(db, case_id, volume, db_fakes.result(volume, seed=index))
        labels = np.zeros(db_fakes.SHAPE_ZYX, dtype=np.uint8)
        labels[1:3, 2:5, 2:6] = 1
        edit = MaskEdit(db_fakes.volume(CASES - 1), labels, {1: "nodule"}, run_id)
        add_manual_finding(db, case_id, db_fakes.finding(1, FindingSource.MANUAL), edit)
        return path, voxel_digests(db)


def voxel_digests(db: Database) -> dict[str, str]:
    """sha256 of the voxels of every stored mask (runs' and saved edits'), read through the API."""
    found: dict[str, str] = {}
    for case_id in range(1, CASES + 1):
        detail = get_case(db, case_id)
        for run in detail.runs:
            assert run.mask is not None
            found[run.mask.relative_path] = _digest(load_mask(db, run.run_id).array_zyx)
        for edit in list_reviewed_masks(db, case_id):
            reloaded = load_reviewed_mask(db, edit.reviewed_mask_id)
            found[edit.mask.relative_path] = _digest(reloaded.array_zyx)
    return found


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def open_encrypted(path: Path, passphrase: str | None = PASSPHRASE) -> Database:
    return Database.open(DatabaseSettings(url=str(path), actor="tester", passphrase=passphrase))


@pytest.fixture
def encrypted(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    path, digests = plain_database(tmp_path / "cases")
    report = encrypt_database(path, PASSPHRASE, kdf=CHEAP_KDF)
    assert report.database_converted and report.masks_rewritten == CASES + 1
    return path, digests


def test_an_encrypted_database_opens_only_with_its_key(
    encrypted: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, digests = encrypted
    with open_encrypted(path) as db:
        assert db.key is not None and db.mask_cipher is not None
        assert voxel_digests(db) == digests
        assert get_case(db, 2).summary.patient_name == PATIENT_NAME.decode()
    with pytest.raises(PassphraseRequiredError, match="is encrypted: give its passphrase"):
        open_encrypted(path, None)
    with pytest.raises(
        WrongPassphraseError, match="is encrypted and this passphrase does not open it"
    ):
        open_encrypted(path, "not the right passphrase")
    monkeypatch.setenv(PASSPHRASE_ENVIRONMENT_VARIABLE, PASSPHRASE)
    with open_encrypted(path, None) as db:
        assert len(voxel_digests(db)) == CASES + 1


def test_a_wrong_key_that_passes_no_check_is_still_a_clear_error(
    encrypted: tuple[Path, dict[str, str]],
) -> None:
    """A plain SQLite driver on the encrypted file says "file is not a database"; with the
    key file's check value the app says what is wrong instead, before SQLCipher reads a page."""
    path, _digests = encrypted
    info = encryption_keys.read_keyinfo(path)
    stranger = encryption_keys.derive_master_key("another passphrase", info.salt, info.kdf)
    with pytest.raises(WrongPassphraseError, match="does not open it"):
        encryption_keys.check_key(path, stranger)


def test_no_plaintext_on_disk(encrypted: tuple[Path, dict[str, str]]) -> None:
    path, _digests = encrypted
    with open_encrypted(path) as db:  # a write, so the -wal holds new pages too
        volume = db_fakes.volume(CASES)
        case_id = import_series(db, db_fakes.series(CASES)).case_id
        store_inference(db, case_id, volume, db_fakes.result(volume, seed=9))
        wal = path.with_name(path.name + "-wal")
        assert wal.stat().st_size > 0
        for file in (path, wal):
            data = file.read_bytes()
            assert not data.startswith(b"SQLite format 3")
            assert PATIENT_NAME not in data and b"PATIENT0000" not in data
    mask_files, _ = files_in(path.parent / "masks")
    assert len(mask_files) == CASES + 2
    for name in mask_files:
        data = (path.parent / "masks" / name).read_bytes()
        assert data.startswith(MAGIC)
        assert not data.startswith(b"\x1f\x8b")  # no gzip (NIfTI) stream in the clear
    info = keyinfo_path(path).read_text()
    assert "argon2id" in info and PASSPHRASE not in info


def test_masks_saved_in_an_encrypted_database_are_sealed_and_read_back_identical(
    encrypted: tuple[Path, dict[str, str]],
) -> None:
    path, _digests = encrypted
    with open_encrypted(path) as db:
        volume = db_fakes.volume(7)
        result = db_fakes.result(volume, seed=7)
        case_id = import_series(db, db_fakes.series(7)).case_id
        run_id = store_inference(db, case_id, volume, result)
        run = get_case(db, case_id).runs[0]
        assert run.mask is not None
        assert (db.masks_dir / run.mask.relative_path).read_bytes().startswith(MAGIC)
        loaded = load_mask(db, run_id)
        assert np.array_equal(loaded.array_zyx, result.segmentation.labels_zyx)
        assert np.allclose(loaded.origin_lps_mm, volume.origin_lps_mm)
        assert np.allclose(loaded.spacing_xyz_mm, volume.spacing_xyz_mm)
        assert check_database(db).ok


def test_a_changed_sealed_mask_is_refused_and_reported(
    encrypted: tuple[Path, dict[str, str]],
) -> None:
    path, _digests = encrypted
    with open_encrypted(path) as db:
        run = get_case(db, 1).runs[0]
        assert run.mask is not None
        file = db.masks_dir / run.mask.relative_path
        data = bytearray(file.read_bytes())
        data[-5] ^= 0x01
        file.write_bytes(bytes(data))
        with pytest.raises(errors.MaskIntegrityError, match="changed since it was saved"):
            load_mask(db, run.run_id)
        report = check_database(db)
        assert not report.ok and [p.relative_path for p in report.mask_problems] == [
            run.mask.relative_path
        ]


def test_db_check_passes_on_an_encrypted_database_and_needs_its_key(
    encrypted: tuple[Path, dict[str, str]],
) -> None:
    path, _digests = encrypted
    base = [sys.executable, "-m", "meddiag_desktop.cli", "db", "check", "--db", str(path)]
    environment = {k: v for k, v in os.environ.items() if k != PASSPHRASE_ENVIRONMENT_VARIABLE}
    keyed = subprocess.run(
        base,
        capture_output=True,
        text=True,
        env={**environment, PASSPHRASE_ENVIRONMENT_VARIABLE: PASSPHRASE},
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert keyed.returncode == 0, keyed.stdout + keyed.stderr
    assert "integrity check   ok" in keyed.stdout and "masks checked     4" in keyed.stdout
    assert keyed.stdout.rstrip().endswith("OK")
    bare = subprocess.run(
        base,
        capture_output=True,
        text=True,
        env=environment,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert bare.returncode == 2
    assert "is encrypted: give its passphrase" in bare.stderr
    assert "Traceback" not in bare.stderr and "not a database" not in bare.stderr


def test_a_backup_of_an_encrypted_database_is_encrypted_and_restorable(
    encrypted: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    path, digests = encrypted
    with open_encrypted(path) as db:
        folder = backup_database(db, tmp_path / "backup")
    copy = folder / "meddiag.sqlite3"
    assert keyinfo_path(copy).is_file() and not copy.read_bytes().startswith(b"SQLite format 3")
    assert all((folder / "masks" / name).read_bytes().startswith(MAGIC) for name in digests)
    with open_encrypted(copy) as restored:
        assert voxel_digests(restored) == digests and check_database(restored).ok


def test_encrypt_then_decrypt_round_trip_loses_nothing(tmp_path: Path) -> None:
    path, digests = plain_database(tmp_path / "cases")
    with Database.open(DatabaseSettings(url=str(path))) as db:
        before = get_case(db, 2)
    encrypt_database(path, PASSPHRASE, kdf=CHEAP_KDF)
    again = encrypt_database(path, PASSPHRASE)  # a second run: nothing left to do
    assert not again.database_converted and again.masks_rewritten == 0
    assert again.masks_already_done == CASES + 1
    with open_encrypted(path) as db:
        assert get_case(db, 2) == before and voxel_digests(db) == digests
    report = decrypt_database(path, PASSPHRASE)
    assert report.database_converted and report.masks_rewritten == CASES + 1
    assert path.read_bytes().startswith(b"SQLite format 3")
    assert not keyinfo_path(path).exists()
    with Database.open(DatabaseSettings(url=str(path))) as db:
        assert db.key is None
        assert get_case(db, 2) == before and voxel_digests(db) == digests
        assert check_database(db).ok
    leftovers = [p.name for p in path.parent.iterdir() if p.name.endswith((ORIGINAL_SUFFIX,))]
    assert leftovers == []


HOLDER = """
import sys, time
from meddiag_desktop.db.engine import Database, DatabaseSettings
from meddiag_desktop.db.worklist import counts_by_status
db = Database.open(DatabaseSettings(url=sys.argv[1]))
counts_by_status(db)  # the pool keeps its connection open, as the app's does
print("open", flush=True)
time.sleep(60)
"""


def test_encrypt_refuses_while_another_program_has_the_database_open(tmp_path: Path) -> None:
    """Another process (the app) holding it open: refused, nothing changed. (Within one
    process SQLite's POSIX locks cannot tell two connections apart, so it must be another.)"""
    path, _digests = plain_database(tmp_path / "cases")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        with pytest.raises(errors.DatabaseLockedError, match="open in another program"):
            encrypt_database(path, PASSPHRASE, kdf=CHEAP_KDF)
    finally:
        holder.kill()
        holder.wait()
    assert path.read_bytes().startswith(b"SQLite format 3")
    assert not path.with_name(path.name + WORK_SUFFIX).exists()


def test_a_short_passphrase_is_refused(tmp_path: Path) -> None:
    path, _digests = plain_database(tmp_path / "cases")
    with pytest.raises(errors.CaseDatabaseError, match="too short"):
        encrypt_database(path, "short")
    assert not keyinfo_path(path).exists()


KILL_STEPS = ("keyinfo", "exported", "original kept", "renamed", "mask 2", "original removed")


@pytest.fixture(scope="module")
def source_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("encrypt-source")
    _path, digests = plain_database(folder)
    return folder, digests


@pytest.mark.parametrize("step", KILL_STEPS)
def test_db_encrypt_killed_half_way_loses_nothing_and_finishes_when_run_again(
    step: str, source_folder: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """SIGKILL ``meddiag db encrypt`` at each step: the database still opens (plain before the
    rename, encrypted after), every row and mask is there, and a second run completes."""
    source, digests = source_folder
    folder = tmp_path / "cases"
    shutil.copytree(source, folder)
    path = folder / "meddiag.sqlite3"
    with Database.open(DatabaseSettings(url=str(path))) as db:
        cases_before = [get_case(db, n) for n in range(1, CASES + 1)]
    environment = {
        **os.environ,
        PASSPHRASE_ENVIRONMENT_VARIABLE: PASSPHRASE,
        TEST_PAUSE_VARIABLE: step,
    }
    command = [sys.executable, "-m", "meddiag_desktop.cli", "db", "encrypt", "--db", str(path)]
    process = subprocess.Popen(
        command, env=environment, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            assert line, f"the command ended before step {step!r}"
            if line.strip() == f"conversion step {step}":
                break
        process.send_signal(signal.SIGKILL)  # kill -9, in the pause right after the step
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL

    encrypted_now = encryption_keys.is_encrypted(path)
    assert encrypted_now == (step not in ("keyinfo", "exported", "original kept"))
    assert encryption_conversion.conversion_in_progress(path) == "encrypt"
    with open_encrypted(path, PASSPHRASE if encrypted_now else None) as db:
        assert (db.key is not None) == encrypted_now
        assert voxel_digests(db) == digests  # every mask reads whole, sealed or not yet
        assert [get_case(db, n) for n in range(1, CASES + 1)] == cases_before

    finished = subprocess.run(
        command,
        env={k: v for k, v in environment.items() if k != TEST_PAUSE_VARIABLE},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert encryption_keys.is_encrypted(path)
    assert encryption_conversion.conversion_in_progress(path) is None
    names = {p.name for p in folder.iterdir()}
    assert not any(n.endswith((ORIGINAL_SUFFIX, WORK_SUFFIX)) for n in names), names
    with open_encrypted(path) as db:
        assert voxel_digests(db) == digests
        assert [get_case(db, n) for n in range(1, CASES + 1)] == cases_before
        report = check_database(db)
        assert report.ok, report  # the audit chain included
        from meddiag_desktop.db.audit import recent_events

        done = [e for e in recent_events(db, limit=5) if e.action.value == "database.encrypted"]
        assert len(done) == 1, "the conversion is audited once, by the run that made it"
    masks, temporaries = files_in(folder / "masks")
    assert temporaries == [] and len(masks) == CASES + 1
    assert all((folder / "masks" / n).read_bytes().startswith(MAGIC) for n in masks)


class _MemoryKeyring:
    """A stand-in OS keyring (a real backend is absent on headless Linux)."""

    priority = 1

    def __init__(self) -> None:
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, user: str) -> str | None:
        return self.store.get((service, user))

    def set_password(self, service: str, user: str, secret: str) -> None:
        self.store[(service, user)] = secret


def test_the_key_can_come_from_the_os_keyring(
    encrypted: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, digests = encrypted
    keyring = _MemoryKeyring()
    monkeypatch.setattr(encryption_keys, "_keyring", lambda: keyring)
    monkeypatch.undo()  # the autouse fixture's keyring_key stub goes too
    monkeypatch.delenv(PASSPHRASE_ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setattr(encryption_keys, "_keyring", lambda: keyring)
    encryption_keys.store_in_keyring(path, encryption_keys.unlock(path, PASSPHRASE))
    assert not encryption_keys.passphrase_needed(path)
    with open_encrypted(path, None) as db:
        assert voxel_digests(db) == digests


def test_without_a_keyring_backend_it_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    import keyring
    from keyring.backends import fail

    monkeypatch.setattr(keyring, "get_keyring", lambda: fail.Keyring())
    status = encryption_keys.keyring_status()
    assert status.startswith("unavailable") and "no keyring backend" in status
    with pytest.raises(encryption_keys.KeyringUnavailableError, match="no keyring backend"):
        encryption_keys.store_in_keyring(Path("x.sqlite3"), encryption_keys.DatabaseKey(b"k" * 32))


def test_the_disk_encryption_check_answers_here(tmp_path: Path) -> None:
    found = linux_disk_encryption(tmp_path)
    assert found.state in DiskEncryptionState and found.detail
    if Path("/proc/self/mountinfo").exists():
        assert " on " in found.detail  # it found the mount and its device


def _fake_system(root: Path, uuids: dict[str, str], slaves: dict[str, list[str]]) -> Path:
    """A /sys with device-mapper devices ``dm-N`` (their dm/uuid) and slave links."""
    devices = root / "devices" / "virtual" / "block"
    for name in {*uuids, *slaves, *(s for ss in slaves.values() for s in ss)}:
        device = devices / name
        (device / "slaves").mkdir(parents=True, exist_ok=True)
        if name in uuids:
            (device / "dm").mkdir(exist_ok=True)
            (device / "dm" / "uuid").write_text(uuids[name] + "\n")
    for name, below in slaves.items():
        for slave in below:
            (devices / name / "slaves" / slave).symlink_to(devices / slave)
    (root / "dev" / "block").mkdir(parents=True)
    (root / "dev" / "block" / "253:1").symlink_to(devices / "dm-1")
    return root


@pytest.mark.parametrize(
    ("uuids", "slaves", "state"),
    [
        (  # LVM on LUKS: the usual encrypted laptop install
            {"dm-1": "LVM-abc", "dm-0": "CRYPT-LUKS2-0123-luks-root"},
            {"dm-1": ["dm-0"], "dm-0": ["vda2"]},
            DiskEncryptionState.ENCRYPTED,
        ),
        (  # LVM straight on a partition
            {"dm-1": "LVM-abc"},
            {"dm-1": ["vda2"]},
            DiskEncryptionState.NOT_ENCRYPTED,
        ),
        (  # a volume group over one encrypted and one plain disk is not encrypted
            {"dm-1": "LVM-abc", "dm-0": "CRYPT-LUKS2-0123-luks"},
            {"dm-1": ["dm-0", "sdb1"], "dm-0": ["sda2"]},
            DiskEncryptionState.NOT_ENCRYPTED,
        ),
    ],
)
def test_the_linux_check_walks_device_mapper_down_to_dm_crypt(
    tmp_path: Path, uuids: dict[str, str], slaves: dict[str, list[str]], state: DiskEncryptionState
) -> None:
    sysfs = _fake_system(tmp_path / "sys", uuids, slaves)
    in_ram = (tmp_path / "My Data").resolve()
    in_ram.mkdir()
    escaped = str(in_ram).replace(" ", "\\040")
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "22 27 0:21 / /proc rw - proc proc rw\n"
        "27 1 253:1 / / rw,relatime - ext4 /dev/mapper/vg-root rw\n"
        f"40 27 0:40 / {escaped} rw - tmpfs tmpfs rw\n"
    )
    found = linux_disk_encryption(tmp_path / "not yet made", mountinfo, sysfs)
    assert found.state is state, found
    assert "/ on /dev/mapper/vg-root (ext4)" in found.detail
    in_memory = linux_disk_encryption(in_ram / "meddiag", mountinfo, sysfs)
    assert in_memory.state is DiskEncryptionState.UNKNOWN and "in memory" in in_memory.detail


def test_bitlocker_and_filevault_outputs_are_read() -> None:
    bitlocker = """
Volume C: [OS]
    Size:                 475.69 GB
    Conversion Status:    Fully Encrypted
    Percentage Encrypted: 100.0%
    Encryption Method:    XTS-AES 128
    Protection Status:    Protection On
"""
    assert parse_manage_bde(bitlocker).state is DiskEncryptionState.ENCRYPTED
    off = bitlocker.replace("Protection On", "Protection Off").replace(
        "Fully Encrypted", "Fully Decrypted"
    )
    assert parse_manage_bde(off).state is DiskEncryptionState.NOT_ENCRYPTED
    assert parse_fdesetup("FileVault is On.\n").state is DiskEncryptionState.ENCRYPTED
    assert parse_fdesetup("FileVault is Off.\n").state is DiskEncryptionState.NOT_ENCRYPTED
