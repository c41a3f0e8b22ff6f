"""``%mlsecops provenance export MODEL... [--out-dir DIR]`` and ``%mlsecops provenance key``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError

from mlsecops_jupyter.display import JsonText, Table
from mlsecops_jupyter.magics import MagicArgumentParser, subcommand
from mlsecops_jupyter.session import Session


def _configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(
        dest="provenance_command", metavar="ACTION", parser_class=MagicArgumentParser
    )
    export = actions.add_parser(
        "export",
        help="write the signed in-toto/SLSA envelope and the CycloneDX ML-BOM of model files",
    )
    export.add_argument("models", nargs="+", metavar="MODEL_PATH", help="model files (subjects)")
    export.add_argument(
        "--out-dir", type=Path, help="where to write (default: provenance.out_dir or beside)"
    )
    export.add_argument("--prov", action="store_true", help="also write W3C PROV-JSON")
    export.add_argument(
        "--openlineage", action="store_true", help="also write an OpenLineage run event"
    )
    export.add_argument("--json", action="store_true", help="print the signed statement as JSON")
    actions.add_parser("key", help="the signing key: key id, public key (PEM), where it is")


@subcommand(
    "provenance",
    "signed provenance of a model: export MODEL_PATH... | key",
    _configure,
)
def provenance(session: Session, args: argparse.Namespace) -> Any:
    from mlsecops_jupyter.provenance.export import export_provenance
    from mlsecops_jupyter.provenance.keys import SigningKeyError, signing_key

    if args.provenance_command == "key":
        try:
            key = signing_key(session.policy)
        except SigningKeyError as error:
            raise UsageError(f"%mlsecops provenance key: {error}") from None
        return Table(
            "Signing key",
            ["", ""],
            [
                ("key id", key.key_id),
                ("algorithm", key.algorithm),
                ("from", key.origin),
                ("file", str(key.path)),
                ("public key", key.public_pem.strip()),
            ],
        )
    if args.provenance_command != "export":
        raise UsageError("%mlsecops provenance: choose an action: export MODEL_PATH... | key")
    formats = [name for name in ("prov", "openlineage") if getattr(args, name)]
    try:
        result = export_provenance(args.models, args.out_dir, session=session, formats=formats)
    except (FileNotFoundError, ValueError, SigningKeyError) as error:
        raise UsageError(f"%mlsecops provenance export: {error}") from None
    if args.json:
        return JsonText(result.statement)
    return result
