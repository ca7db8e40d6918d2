"""``meddiag models list|add`` and ``meddiag infer``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from meddiag_desktop.cli import model_signing_commands
from meddiag_desktop.cli.output import ProgressBar
from meddiag_desktop.domain import Finding, SeriesInfo, Volume
from meddiag_desktop.inference.anatomy import AnatomyCheck, check_series, check_volume
from meddiag_desktop.inference.card import ModelCard, Precision
from meddiag_desktop.inference.cpu_runtime import RUNTIMES
from meddiag_desktop.inference.model_signature import PackageSignature, signature_summary
from meddiag_desktop.inference.pipeline import (
    InferenceOptions,
    InferenceResult,
    ModelMismatchError,
    run_inference,
    run_to_end,
)
from meddiag_desktop.inference.registry import ModelRegistry
from meddiag_desktop.inference.session import SHORT_NAMES
from meddiag_desktop.inference.sliding_window import InferenceCancelled
from meddiag_desktop.inference.trusted_keys import TrustStore
from meddiag_desktop.scans import choose_series, discover, load, write_label_map, write_volume

if TYPE_CHECKING:
    from meddiag_desktop.db.engine import Database
    from meddiag_desktop.db.roles import Permission


def add_parsers(commands: argparse._SubParsersAction) -> None:
    models = commands.add_parser(
        "models", help="list, add, sign and trust models (never downloads)"
    )
    model_commands = models.add_subparsers(title="models commands")
    listing = model_commands.add_parser("list", help="models found and whether they are usable")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=_list)
    add = model_commands.add_parser("add", help="validate a model folder and install a copy")
    add.add_argument("folder", type=Path)
    add.add_argument("--replace", action="store_true", help="replace an installed namesake")
    add.add_argument(
        "--allow-unsigned",
        action="store_true",
        help="admins: install a package that is unsigned or signed with an untrusted key "
        "(recorded in the audit trail; a package whose signature fails is refused even so)",
    )
    add.add_argument("--db", default="", metavar="URL", help=model_signing_commands.DB_HELP)
    add.set_defaults(run=_add)
    model_signing_commands.add_parsers(model_commands)

    infer = commands.add_parser("infer", help="run a model on a scan")
    infer.add_argument("input", type=Path, help="DICOM folder/file, NIfTI, MHA or NRRD")
    infer.add_argument("--model", required=True, help="model name or model folder")
    infer.add_argument("--out", type=Path, required=True, help="output folder")
    infer.add_argument("--series", help="series key or UID when the folder holds several")
    infer.add_argument(
        "--provider",
        choices=["auto", *SHORT_NAMES],
        default="auto",
        help="execution provider to prefer (falls back to the CPU)",
    )
    infer.add_argument(
        "--runtime",
        choices=["auto", *RUNTIMES],
        default="auto",
        help="CPU runtime (auto: OpenVINO when installed, else onnxruntime)",
    )
    infer.add_argument(
        "--precision",
        choices=["auto", *(p.value for p in Precision)],
        default="auto",
        help="arithmetic precision (auto: the fastest this CPU runs among those the model's "
        "card lists as validated)",
    )
    infer.add_argument(
        "--allow-unvalidated-precision",
        action="store_true",
        help="validating a model: run a --precision its card does not list (recorded)",
    )
    infer.add_argument(
        "--probabilities",
        action="store_true",
        help="also write probabilities.nii.gz (lesion probability, float32)",
    )
    infer.add_argument("--overlap", type=float, help="sliding-window overlap (card default)")
    infer.add_argument("--batch-size", type=int, help="windows per model call (card default)")
    infer.add_argument(
        "--force-modality",
        action="store_true",
        help="run even when the scan's modality differs from the model's",
    )
    infer.add_argument(
        "--force-anatomy",
        action="store_true",
        help="run even when the scan shows another body region than the model's card names "
        "(recorded with the run)",
    )
    infer.add_argument(
        "--allow-unsigned",
        action="store_true",
        help="admins: run a model whose signature cannot be checked here (recorded with the run)",
    )
    infer.add_argument(
        "--db",
        nargs="?",
        const="",
        metavar="URL",
        help="also store the run, findings and mask in the case database (importing the scan "
        "as a case if new); without URL: $MEDDIAG_DB, else the user data folder",
    )
    infer.set_defaults(run=_infer)


def card_summary(card: ModelCard) -> dict:
    return {
        "name": card.name,
        "version": card.version,
        "modality": card.modality,
        "anatomy": asdict(card.anatomy) if card.anatomy else None,
        "task": card.task,
        "intended_use": card.intended_use,
        "licence": card.licence,
        "not_for_clinical_use": card.not_for_clinical_use,
        "folder": str(card.folder),
        "sha256": card.sha256,
        "labels": [asdict(label) for label in card.output.labels],
        "validation": card.validation,
    }


def _list(args: argparse.Namespace) -> int:
    entries = ModelRegistry().entries()
    trust = TrustStore()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "origin": e.origin,
                        "folder": str(e.folder),
                        "valid": e.card is not None,
                        "error": e.error,
                        **(card_summary(e.card) if e.card else {}),
                        "signature": signature_summary(e.folder, trust),
                    }
                    for e in entries
                ],
                indent=2,
            )
        )
        return 0
    if not entries:
        print("No models found.")
    for entry in entries:
        if entry.card is None:
            print(f"[{entry.origin}] {entry.folder.name}: INVALID: {entry.error}")
            continue
        card = entry.card
        region = card.anatomy.region if card.anatomy else "any anatomy"
        print(
            f"[{entry.origin}] {card.name} {card.version} "
            f"({card.modality or 'any modality'}, {region}, {card.task})"
        )
        print(f"    {card.intended_use}")
        print(f"    {signature_summary(entry.folder, trust)}")
    print(model_signing_commands.trusted_keys_text(trust.keys()))
    return 0


def _add(args: argparse.Namespace) -> int:
    from meddiag_desktop.cli.sign_in import check_permission
    from meddiag_desktop.db.roles import Permission

    if not args.allow_unsigned:
        check_permission(args, args.db, Permission.MANAGE_MODELS)
        card, signature = ModelRegistry().add(args.folder, replace=args.replace)
        print(f"installed {card.name} {card.version} in {card.folder}; {signature.describe()}")
        return 0
    from meddiag_desktop.db.audit import log_event
    from meddiag_desktop.db.records import AuditAction

    # Opened first: accepting an unverified model that cannot be put on the record is refused.
    with _case_database(args.db, args, Permission.MANAGE_MODELS) as db:
        assert db is not None
        card, signature = ModelRegistry().add(
            args.folder, replace=args.replace, allow_unsigned=True
        )
        log_event(
            db,
            AuditAction.MODEL_ADDED,
            None,
            {
                "model": card.name,
                "version": card.version,
                "sha256": card.sha256,
                "source": str(args.folder),
                "folder": str(card.folder),
                "signature": signature.to_dict(),
                "allow_unsigned": True,
            },
        )
    print(f"installed {card.name} {card.version} in {card.folder}; {signature.describe()}")
    return 0


def _infer(args: argparse.Namespace) -> int:
    card = ModelRegistry().find(args.model)
    series = choose_series(discover(args.input), args.series, args.input)
    refusal = check_series(series, card)  # from the headers: refused before any pixel is read
    if refusal.refused and not args.force_anatomy:
        raise ModelMismatchError(
            f"{refusal.message} Choose a model made for this anatomy, or pass --force-anatomy "
            "to run it anyway."
        )
    volume = load(series)
    options = InferenceOptions(
        provider=None if args.provider == "auto" else args.provider,
        overlap=args.overlap,
        batch_size=args.batch_size,
        allow_modality_mismatch=args.force_modality,
        allow_anatomy_mismatch=args.force_anatomy,
        allow_unsigned=args.allow_unsigned,
        runtime=None if args.runtime == "auto" else args.runtime,
        precision=None if args.precision == "auto" else args.precision,
        allow_unvalidated_precision=args.allow_unvalidated_precision,
    )
    if args.allow_unsigned and args.db is None:
        print(
            "warning: --allow-unsigned without --db: the run is not stored, so nothing records "
            "that an unverified model was used",
            file=sys.stderr,
        )
    with _case_database(args.db, args) as db:
        result = _run_recorded(db, series, card, volume, options)
        args.out.mkdir(parents=True, exist_ok=True)
        write_label_map(volume, result.segmentation.labels_zyx, args.out / "mask.nii.gz")
        if args.probabilities and result.segmentation.probability_zyx is not None:
            write_volume(
                volume.with_array(result.segmentation.probability_zyx),
                args.out / "probabilities.nii.gz",
            )
        report = findings_report(result, str(args.input), list(volume.warnings))
        report["scan"] = scan_report(volume, check_volume(volume, card))
        report["parameters"] = _run_options(options)
        stored = ""
        if db is not None:
            from meddiag_desktop.db.runs import get_run, store_inference

            run_id = store_inference(db, series, volume, result, parameters=_run_options(options))
            report["database"] = {
                "url": db.display_url,
                "run_id": run_id,
                "case_id": get_run(db, run_id).case_id,
            }
            stored = f" Stored as run {run_id} of case {report['database']['case_id']}."
    (args.out / "findings.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    for warning in (*volume.warnings, *result.warnings):
        print(f"warning: {warning}", file=sys.stderr)
    if result.signature is not None:
        print(f"Model {card.name} {card.version}: {result.signature.describe()}")
    if result.runtime is not None:
        print(f"Runtime: {result.runtime.describe()}")
    print(
        f"{len(result.findings)} finding(s); {result.provider.describe()}; "
        f"{result.timings_s['total']:.1f} s. Wrote {args.out}/mask.nii.gz and findings.json."
        + stored
    )
    for finding in result.findings:
        print(
            f"  #{finding.finding_id} {finding.label_name}: {finding.volume_ml:.2f} mL, "
            f"{finding.long_axis_mm:.1f} x {finding.short_axis_mm:.1f} mm, "
            f"p={finding.max_probability:.2f}"
        )
    return 0


@contextmanager
def _case_database(
    url: str | None, args: argparse.Namespace, permission: Permission | None = None
) -> Iterator[Database | None]:
    """The database ``--db`` names (opened before the run, so a bad URL fails fast), or None;
    acting as the user signed in when login is on (:mod:`meddiag_desktop.cli.sign_in`)."""
    if url is None:
        yield None
        return
    from meddiag_desktop.cli.sign_in import open_as_user

    with open_as_user(args, url, permission) as db:
        yield db


def _run_recorded(
    db: Database | None,
    series: SeriesInfo,
    card: ModelCard,
    volume: Volume,
    options: InferenceOptions,
) -> InferenceResult:
    """Run the model; with a database, an interrupted or failed run is recorded as such."""
    bar = ProgressBar()
    started = time.perf_counter()
    try:
        return run_to_end(run_inference(volume, card, options), bar)
    except ModelMismatchError:
        raise  # refused before anything ran: not a run
    except BaseException as exc:
        if db is not None:
            from meddiag_desktop.db.records import RunOutcome
            from meddiag_desktop.db.runs import store_failed_run

            interrupted = isinstance(exc, KeyboardInterrupt | InferenceCancelled)
            store_failed_run(
                db,
                series,
                card,
                RunOutcome.CANCELLED if interrupted else RunOutcome.FAILED,
                "cancelled by the user" if interrupted else str(exc) or type(exc).__name__,
                timings_s={"total": time.perf_counter() - started},
                parameters=_run_options(options),
            )
        raise
    finally:
        bar.close()


def _run_options(options: InferenceOptions) -> dict:
    return {
        "provider": options.provider or "auto",
        "overlap": options.overlap,
        "batch_size": options.batch_size,
        "allow_modality_mismatch": options.allow_modality_mismatch,
        "allow_anatomy_mismatch": options.allow_anatomy_mismatch,
        "allow_unsigned": options.allow_unsigned,
        "runtime": options.runtime or "auto",
        "precision": options.precision or "auto",
        "allow_unvalidated_precision": options.allow_unvalidated_precision,
    }


def scan_report(volume: Volume, anatomy: AnatomyCheck) -> dict:
    """What ``findings.json`` says of the scan the model judged: its modality (and whether that
    was only guessed) and whether it shows the anatomy the card names."""
    metadata = volume.metadata
    return {
        "modality": metadata.modality,
        "modality_guessed": bool(metadata.modality_guessed_from),
        "modality_guessed_from": metadata.modality_guessed_from,
        "body_part_examined": metadata.body_part_examined,
        "study_description": metadata.study_description,
        "series_description": metadata.series_description,
        "protocol_name": metadata.protocol_name,
        "anatomy": anatomy.to_dict(),
    }


def finding_dict(finding: Finding) -> dict:
    data = asdict(finding)
    data["source"] = finding.source.value
    return data


def findings_report(result: InferenceResult, source: str, scan_warnings: list[str]) -> dict:
    """The content of ``findings.json``: enough to know what ran, where, and how long."""
    card = result.card
    return {
        "disclaimer": "Not for clinical use. MedDiag Desktop is not a medical device.",
        "input": source,
        "model": {
            "name": card.name,
            "version": card.version,
            "sha256": card.sha256,
            "modality": card.modality,
            "signature": _signature_dict(result.signature),
        },
        "provider": result.provider.short_name,
        "provider_fallbacks": [
            {"provider": p, "reason": why} for p, why in result.provider.attempts
        ],
        "runtime": result.runtime.to_dict() if result.runtime is not None else None,
        "timings_s": {k: round(v, 4) for k, v in result.timings_s.items()},
        "labels": {str(k): v for k, v in card.label_names.items()},
        "findings": [finding_dict(f) for f in result.findings],
        "warnings": [*scan_warnings, *result.warnings],
    }


def _signature_dict(signature: PackageSignature | None) -> dict | None:
    return signature.to_dict() if signature is not None else None
