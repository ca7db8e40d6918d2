"""Where models live: the bundled ``models/`` folder and the user's models folder.

Models are only ever added from a local folder, after validation; nothing is downloaded.
A folder with a broken card is still listed, with what is wrong, so the user can fix it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from meddiag_desktop.inference.card import CARD_FILE, CardError, ModelCard, read_card
from meddiag_desktop.inference.model_signature import PackageSignature, check_package
from meddiag_desktop.inference.trusted_keys import TrustStore
from meddiag_desktop.resource_files import ShippedFileError, candidate_roots, shipped_dir
from meddiag_desktop.user_folders import user_models_dir


def bundled_models_dir() -> Path:
    """``models/`` of the source tree, a frozen app or an installed wheel (see resource_files).

    An installation without one lists no bundled models (``meddiag models list`` says so)
    rather than failing at start-up.
    """
    configured = os.environ.get("MEDDIAG_BUNDLED_MODELS")
    if configured:
        return Path(configured)
    try:
        return shipped_dir("models")
    except ShippedFileError:
        return candidate_roots()[0] / "models"


@dataclass(frozen=True)
class ModelEntry:
    folder: Path
    origin: str  # "bundled" or "user"
    card: ModelCard | None
    error: str = ""


class ModelRegistry:
    def __init__(self, folders: list[tuple[Path, str]] | None = None) -> None:
        self.folders = (
            folders
            if folders is not None
            else [(bundled_models_dir(), "bundled"), (user_models_dir(), "user")]
        )

    @property
    def user_folder(self) -> Path:
        return next((f for f, origin in self.folders if origin == "user"), user_models_dir())

    def entries(self) -> list[ModelEntry]:
        found = []
        for root, origin in self.folders:
            if not root.is_dir():
                continue
            for folder in sorted(p for p in root.iterdir() if (p / CARD_FILE).is_file()):
                try:
                    found.append(ModelEntry(folder, origin, read_card(folder)))
                except CardError as exc:
                    found.append(ModelEntry(folder, origin, None, "; ".join(exc.problems)))
        return found

    def cards(self) -> list[ModelCard]:
        return [entry.card for entry in self.entries() if entry.card is not None]

    def find(self, name_or_folder: str | Path) -> ModelCard:
        """A model by card name, or by folder path; raises CardError naming the choices."""
        path = Path(name_or_folder)
        if path.is_dir():
            return read_card(path)
        cards = [c for c in self.cards() if c.name == str(name_or_folder)]
        if cards:
            return cards[-1]  # user models come after bundled ones and take precedence
        names = ", ".join(sorted({c.name for c in self.cards()})) or "none installed"
        raise CardError(path, [f"no model named '{name_or_folder}' (available: {names})"])

    def add(
        self,
        folder: Path,
        replace: bool = False,
        trust: TrustStore | None = None,
        allow_unsigned: bool = False,
    ) -> tuple[ModelCard, PackageSignature]:
        """Validate a model folder (card, sha256, signature) and copy it into the user folder.

        The copy is verified again before it replaces anything, so a stick pulled out half-way
        or a file changed during the copy never leaves an installed model that differs from
        the one checked. Returns the installed card and who signed it.
        """
        trust = trust or TrustStore()
        card = read_card(folder)
        check_package(card, trust, allow_unsigned)
        target = self.user_folder / card.name
        if target.exists() and not replace:
            raise CardError(
                folder,
                [f"a model named '{card.name}' is already installed in {target} (use --replace)"],
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = target.with_name(f".{card.name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(folder, staging)
        try:
            signature = check_package(read_card(staging), trust, allow_unsigned)
        except CardError:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if target.exists():  # --replace: the old copy goes only once the new one is verified
            shutil.rmtree(target)
        os.replace(staging, target)
        return read_card(target), signature
