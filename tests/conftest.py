"""Shared test fixtures: where the real sample scans are, and an offscreen Qt."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# GUI tests run without a screen; set before any Qt import.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO_ROOT / "test-artifacts"


def sample_data_root() -> Path | None:
    """``$MEDDIAG_SAMPLE_DATA`` or ``../shared/data`` beside the checkout, if present."""
    configured = os.environ.get("MEDDIAG_SAMPLE_DATA")
    candidates = [Path(configured)] if configured else []
    candidates.append(REPO_ROOT.parent / "shared" / "data")
    for candidate in candidates:
        if (candidate / "dicom").is_dir():
            return candidate
    return None


@pytest.fixture(scope="session")
def sample_data() -> Path:
    root = sample_data_root()
    if root is None:
        pytest.skip("real sample scans not found: set MEDDIAG_SAMPLE_DATA or place ../shared/data")
    return root


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Screenshots and other outputs worth looking at after a run."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(autouse=True, scope="session")
def trusted_test_signing_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A session trust store holding the test key (``tests/model_signing.py``) beside the
    shipped project key, so toy models signed with it run and the user's own store is never
    read or written. Tests about trust itself point ``$MEDDIAG_MODEL_TRUST`` elsewhere."""
    from model_signing import TEST_SIGNER, signing_key_files

    from meddiag_desktop.inference.trusted_keys import TRUST_ENV, TrustStore

    store = tmp_path_factory.mktemp("model-trust") / "trusted_model_keys.json"
    TrustStore(store).trust(signing_key_files()[1], TEST_SIGNER, "tests")
    previous = os.environ.get(TRUST_ENV)
    os.environ[TRUST_ENV] = str(store)
    yield store
    if previous is None:
        os.environ.pop(TRUST_ENV, None)
    else:
        os.environ[TRUST_ENV] = previous
