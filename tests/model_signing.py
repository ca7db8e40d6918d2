"""The test suite's own model-signing key, so tests that build toy models can sign them.

Deterministic (a fixed 32-byte seed) and public on purpose: it signs only models made inside
the tests, and ``tests/conftest.py`` trusts it through a throwaway trust store
(``$MEDDIAG_MODEL_TRUST``) for the whole session, never in a user's real trust store. Imported
as ``model_signing``: ``tests/`` is on ``sys.path``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from meddiag_desktop.inference.model_keys import key_id
from meddiag_desktop.inference.model_signature import sign_package

TEST_SIGNER = "MedDiag test suite"
_TEST_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
TEST_KEY_ID = key_id(_TEST_KEY.public_key())
_KEY_DIR = Path(tempfile.mkdtemp(prefix="meddiag-test-key-"))


def signing_key_files() -> tuple[Path, Path]:
    """The test key as the two PEM files ``models keygen`` writes: (private, public)."""
    private = _KEY_DIR / "meddiag-test-key"
    public = _KEY_DIR / "meddiag-test-key.pub"
    if not private.is_file():
        private.write_bytes(_TEST_KEY.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        public.write_bytes(_TEST_KEY.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def sign_test_model(folder: Path) -> Path:
    """Sign a model folder with the test key (as ``meddiag models sign`` does)."""
    sign_package(folder, signing_key_files()[0], TEST_SIGNER)
    return folder
