"""``meddiag models keygen|sign|trust|untrust|keys``: who this workstation accepts models from.

A maintainer makes a key pair once (``keygen``) and signs each model package (``sign``); a site
admin trusts the public half (``trust KEY.pub``); ``models add`` and every run then check the
signature (:mod:`meddiag_desktop.inference.model_signature`). Trusting and removing a key is
recorded in the case database's audit trail, with who did it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from meddiag_desktop.inference.model_keys import generate_key_pair
from meddiag_desktop.inference.model_signature import SIGNATURE_FILE, sign_package
from meddiag_desktop.inference.trusted_keys import SHIPPED, TrustedKey, TrustStore

DB_HELP = (
    "case database whose audit trail records this (default: $MEDDIAG_DB, else the user data "
    "folder)"
)


def add_parsers(model_commands: argparse._SubParsersAction) -> None:
    keygen = model_commands.add_parser(
        "keygen", help="make an Ed25519 key pair for signing model packages"
    )
    keygen.add_argument(
        "--out", type=Path, required=True, help="private key file (KEY.pub gets the public half)"
    )
    keygen.set_defaults(run=_keygen)

    sign = model_commands.add_parser("sign", help=f"sign a model folder (writes {SIGNATURE_FILE})")
    sign.add_argument("folder", type=Path)
    sign.add_argument("--key", type=Path, required=True, help="private key file from keygen")
    sign.add_argument("--signer", default="", help="who signs, in words (default: the key's name)")
    sign.set_defaults(run=_sign)

    trust = model_commands.add_parser(
        "trust", help="accept model packages signed with this public key (admins)"
    )
    trust.add_argument("public_key", type=Path, metavar="KEY.pub")
    trust.add_argument("--name", default="", help="who the key belongs to (default: file name)")
    trust.add_argument("--db", default="", metavar="URL", help=DB_HELP)
    trust.set_defaults(run=_trust)

    untrust = model_commands.add_parser("untrust", help="stop accepting a key (admins)")
    untrust.add_argument("key_id")
    untrust.add_argument("--db", default="", metavar="URL", help=DB_HELP)
    untrust.set_defaults(run=_untrust)

    keys = model_commands.add_parser("keys", help="the public keys model packages are trusted from")
    keys.add_argument("--json", action="store_true")
    keys.set_defaults(run=_keys)


def _keygen(args: argparse.Namespace) -> int:
    private, public, key = generate_key_pair(args.out)
    print(f"key {key}: private key {private} (readable by you only; keep it off the workstation, "
          f"never in a repository), public key {public}")
    return 0


def _sign(args: argparse.Namespace) -> int:
    document = sign_package(args.folder, args.key, args.signer)
    model = document["model"]
    print(
        f"signed {model['name']} {model['version']} with key {document['key_id']} "
        f"({document['signer']}): wrote {args.folder / SIGNATURE_FILE}"
    )
    return 0


def _trust(args: argparse.Namespace) -> int:
    from meddiag_desktop.cli.sign_in import open_as_user
    from meddiag_desktop.db.audit import log_event
    from meddiag_desktop.db.records import AuditAction
    from meddiag_desktop.db.roles import Permission

    name = args.name or args.public_key.stem
    # Opened first: a trust change that cannot be put on the record is not made.
    with open_as_user(args, args.db, Permission.MANAGE_MODELS) as db:
        store = TrustStore()
        key, added = store.trust(args.public_key, name, db.actor)
        if not added:
            print(f"key {key.key_id} ({key.name}) is already trusted")
            return 0
        log_event(db, AuditAction.MODEL_KEY_TRUSTED, None,
                  {"key_id": key.key_id, "name": key.name, "trust_store": str(store.path)})
    print(f"trusted key {key.key_id} ({key.name}) in {store.path}")
    return 0


def _untrust(args: argparse.Namespace) -> int:
    from meddiag_desktop.cli.sign_in import open_as_user
    from meddiag_desktop.db.audit import log_event
    from meddiag_desktop.db.records import AuditAction
    from meddiag_desktop.db.roles import Permission

    with open_as_user(args, args.db, Permission.MANAGE_MODELS) as db:
        store = TrustStore()
        key = store.untrust(args.key_id)
        log_event(db, AuditAction.MODEL_KEY_UNTRUSTED, None,
                  {"key_id": key.key_id, "name": key.name, "trust_store": str(store.path)})
    print(f"removed key {key.key_id} ({key.name}); models signed only with it are now refused")
    return 0


def _keys(args: argparse.Namespace) -> int:
    keys = TrustStore().keys()
    if args.json:
        print(json.dumps([key.to_dict() for key in keys], indent=2))
        return 0
    print(trusted_keys_text(keys))
    return 0


def trusted_keys_text(keys: list[TrustedKey]) -> str:
    """One line per trusted key, as ``models keys`` and ``models list`` print them."""
    if not keys:
        return "Trusted model keys: none (every model package will be refused)"
    lines = ["Trusted model keys:"]
    for key in keys:
        origin = (
            "ships with the app" if key.source == SHIPPED
            else f"trusted {key.trusted_at} by {key.trusted_by}"
        )
        lines.append(f"    {key.key_id}  {key.name} ({origin})")
    return "\n".join(lines)
