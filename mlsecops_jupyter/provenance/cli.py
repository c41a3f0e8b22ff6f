"""``mlsecops verify`` and ``mlsecops key public``: wired into the ``mlsecops`` command.

``mlsecops_jupyter.cli`` calls :func:`configure_cli` with its subparsers; each
command sets ``run`` to a function of the parsed arguments returning the exit
status. ``python -m mlsecops_jupyter.provenance.cli`` runs the same commands
on their own.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_UNUSABLE = 2


def _verification_key(path: Path | None) -> tuple[Any, str]:
    from mlsecops_jupyter.provenance.keys import load_public_key, signing_key

    if path is not None:
        return load_public_key(path), str(path)
    key = signing_key(create=False)
    return key.public_key, f"{key.origin}: {key.path}"


def verify(args: argparse.Namespace) -> int:
    from mlsecops_jupyter.provenance.keys import SigningKeyError
    from mlsecops_jupyter.provenance.verify import verify_envelope

    if not args.envelope.is_file():
        print(f"mlsecops verify: no envelope at {args.envelope}", file=sys.stderr)
        return EXIT_UNUSABLE
    try:
        public_key, source = _verification_key(args.key)
    except SigningKeyError as error:
        print(
            f"mlsecops verify: {error}\n(pass the signer's public key with --key PUBKEY.pem)",
            file=sys.stderr,
        )
        return EXIT_UNUSABLE
    result = verify_envelope(args.envelope, public_key, args.artifact or ())
    if args.json:
        print(
            json.dumps(
                {
                    "ok": result.ok,
                    "envelope": str(result.envelope),
                    "key": source,
                    "checks": [
                        {"check": c.name, "ok": c.ok, "checked": c.checked, "detail": c.detail}
                        for c in result.checks
                    ],
                },
                indent=2,
            )
        )
    else:
        print(f"verifying with {source}")
        print(result)
    if not result.ok:
        for check in result.failed:
            print(f"mlsecops verify: {check.name} check failed: {check.detail}", file=sys.stderr)
    return EXIT_OK if result.ok else EXIT_FAILED


def key_public(args: argparse.Namespace) -> int:
    from mlsecops_jupyter.provenance.keys import SigningKeyError, signing_key

    try:
        key = signing_key(create=True)
    except SigningKeyError as error:
        print(f"mlsecops key: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    if args.json:
        print(
            json.dumps(
                {
                    "key_id": key.key_id,
                    "algorithm": key.algorithm,
                    "origin": key.origin,
                    "path": str(key.path),
                    "public_key_pem": key.public_pem,
                },
                indent=2,
            )
        )
    else:
        print(f"# key id: {key.key_id}")
        print(f"# {key.algorithm}, {key.origin}: {key.path}")
        print(key.public_pem, end="")
    return EXIT_OK


def configure_cli(commands: Any) -> None:
    """Add ``verify`` and ``key`` to the ``mlsecops`` command's subparsers."""
    check = commands.add_parser(
        "verify",
        help="verify a signed provenance envelope (*.intoto.json) and the model files",
        description="Check the DSSE signature, the in-toto statement and SLSA predicate, the "
        "subject digests against the model files, and the companion files (*.cdx.json, ...) "
        "beside the envelope; print the record's summary.",
        epilog="Exit status: 0 verified; 1 a check failed (the message names it); "
        "2 the envelope or the key cannot be read.",
    )
    check.add_argument("envelope", type=Path, metavar="ENVELOPE", help="the *.intoto.json file")
    check.add_argument(
        "--artifact",
        type=Path,
        nargs="+",
        action="extend",
        metavar="MODEL",
        help="model files to check against the subjects (default: subjects found beside the "
        "envelope)",
    )
    check.add_argument(
        "--key",
        type=Path,
        metavar="PUBKEY",
        help="the signer's PEM public key (default: this user's or the configured signing key)",
    )
    check.add_argument("--json", action="store_true", help="print the checks as JSON")
    check.set_defaults(run=verify)

    key = commands.add_parser("key", help="the key that signs provenance records")
    key_commands = key.add_subparsers(dest="key_command", metavar="ACTION", required=True)
    public = key_commands.add_parser(
        "public",
        help="print the signing key's public key (PEM) and key id (creates your key if needed)",
    )
    public.add_argument("--json", action="store_true", help="print JSON")
    public.set_defaults(run=key_public)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlsecops", description="provenance commands")
    configure_cli(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
