"""`shopgate-hub`: the hub's command line (CONTRACTS.md section 1).

User errors exit 2 with one line on stderr, never a traceback; key material is never
printed (keygen prints file names and the key id only).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from cloud import signing
from storerules.lifetimes import MAX_LIFETIME_S

PROG = "shopgate-hub"
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class _Parser(argparse.ArgumentParser):
    """argparse prints the usage and the error on two lines or more; the contract wants one."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
    return value


def _json_object(text: str) -> dict[str, object]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON ({e.msg} at char {e.pos})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, not {type(value).__name__}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="The shopgate hub and its signing tools.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run the hub service",
        description="Serves the hub API until SIGTERM. Logs go to stderr.",
    )
    run.add_argument("--config", required=True, type=Path, metavar="FILE", help="hub.yaml")
    run.add_argument(
        "--db",
        metavar="URL",
        help="database URL: postgresql://user@host/db or sqlite:///path "
        "(default: database.url in the config, else storage.dir/hub.db)",
    )
    run.add_argument("--log-format", choices=["text", "json"], default="text")
    run.add_argument(
        "--log-level", default="INFO", type=str.upper, choices=_LOG_LEVELS, metavar="LEVEL"
    )

    check = sub.add_parser(
        "check-config",
        help="validate a hub config file",
        description="Prints ok (exit 0), or one line per problem, FILE:LINE: key: message "
        "(exit 2).",
    )
    check.add_argument("--config", required=True, type=Path, metavar="FILE")

    keygen = sub.add_parser(
        "keygen",
        help="create a new Ed25519 signing key",
        description=(
            "Writes DIR/hub-signing.pem (private, mode 0600), DIR/hub-signing.pub.pem and "
            "DIR/hub-signing.kid. The default key id is the first 8 hex digits of the SHA-256 "
            "of the raw 32-byte public key."
        ),
    )
    keygen.add_argument("--out", required=True, type=Path, metavar="DIR")
    keygen.add_argument("--kid", metavar="ID", help="key id (default: derived from the key)")
    keygen.add_argument("--force", action="store_true", help="replace an existing key")

    enroll = sub.add_parser(
        "enroll-code",
        help="make a one-time enrollment code for a store (CONTRACTS section 9)",
        description="Prints the code on stdout (and writes its QR with --qr); the store's "
        "agent redeems it once with `shopgate-agent enroll CODE --hub URL`.",
    )
    enroll.add_argument("--store", required=True, metavar="S", help="the store's id in hub.yaml")
    enroll.add_argument(
        "--ttl-hours", type=float, metavar="H", help="how long it works (default 24)"
    )
    enroll.add_argument("--qr", type=Path, metavar="FILE.png", help="also write it as a QR code")
    enroll.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="hub.yaml (default: $SHOPGATE_HUB_CONFIG, else /etc/shopgate/hub.yaml, else "
        "./hub.yaml, else the checkout's demo hub.yaml)",
    )
    enroll.add_argument("--db", metavar="URL", help="database URL, as for `run`")
    enroll.add_argument(
        "--hub-url", metavar="URL", help="the hub's address in the QR (default http.public_url)"
    )

    def key_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--key", required=True, type=Path, metavar="FILE", help="private key PEM")
        p.add_argument("--kid", metavar="ID", help="key id (default: the .kid file beside --key)")
        p.add_argument("--store", required=True, metavar="S", help="store id (the aud claim)")

    mint = sub.add_parser("mint-pass", help="print a signed pass")
    key_args(mint)
    mint.add_argument("--scope", required=True, choices=signing.PASS_SCOPES)
    mint.add_argument("--sub", required=True, metavar="ID", help="customer, courier or staff id")
    mint.add_argument("--door", metavar="D", help="only this door (default: any door)")
    mint.add_argument(
        "--order",
        dest="orders",
        action="extend",
        nargs="+",
        metavar="O",
        help="order id(s), for scope pickup (repeatable)",
    )
    mint.add_argument(
        "--ttl",
        type=_positive_int,
        default=300,
        metavar="SECONDS",
        help="life of the pass (default 300; at most "
        + ", ".join(f"{s} {MAX_LIFETIME_S[s]}" for s in signing.PASS_SCOPES)
        + ": agents refuse longer ones)",
    )

    cmd = sub.add_parser("sign-command", help="print a signed remote command")
    key_args(cmd)
    cmd.add_argument("--cmd", required=True, metavar="NAME", help="command name, e.g. unlock")
    cmd.add_argument("--args", type=_json_object, default={}, metavar="JSON", help="JSON object")
    cmd.add_argument(
        "--ttl",
        type=_positive_int,
        default=60,
        metavar="SECONDS",
        help=f"life of the command (default 60, at most {MAX_LIFETIME_S['ops']})",
    )
    return parser


def _keygen(ns: argparse.Namespace) -> None:
    files = signing.write_keypair(ns.out, ns.kid, force=ns.force)
    print(f"private key: {files.private_key} (mode 0600; keep it secret)")
    print(f"public key:  {files.public_key}")
    print(f"key id:      {files.kid} (in {files.kid_file})")


def _mint_pass(ns: argparse.Namespace) -> None:
    if ns.scope == "pickup" and not ns.orders:
        raise signing.SigningError("--scope pickup needs at least one --order")
    if ns.scope != "pickup" and ns.orders:
        raise signing.SigningError(f"--order is only for --scope pickup, not {ns.scope}")
    key, kid = signing.load_private_key(ns.key, ns.kid)
    print(
        signing.mint_pass(
            key,
            kid,
            store=ns.store,
            scope=ns.scope,
            sub=ns.sub,
            door=ns.door,
            orders=ns.orders,
            ttl=ns.ttl,
        )
    )


def _sign_command(ns: argparse.Namespace) -> None:
    key, kid = signing.load_private_key(ns.key, ns.kid)
    print(signing.sign_command(key, kid, store=ns.store, cmd=ns.cmd, args=ns.args, ttl=ns.ttl))


def _run(ns: argparse.Namespace) -> int:
    from cloud.config import load_hub_config
    from cloud.db.engine import DatabaseError, driver_url
    from cloud.service import run_hub
    from runtime.config.errors import ConfigError
    from runtime.logging import setup_logging

    prog = f"{PROG} run"
    setup_logging(ns.log_format, ns.log_level)
    # aiosqlite logs each call to its thread at DEBUG: every statement, twice.
    logging.getLogger("aiosqlite").setLevel(max(logging.INFO, logging.getLogger().level))
    try:
        cfg = load_hub_config(ns.config)
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        return 2
    db_url = cfg.database_url(ns.db)
    try:
        driver_url(db_url)
    except DatabaseError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(run_hub(cfg, db_url))
    except DatabaseError as e:
        logging.getLogger("cloud").critical("%s", e)
        return 1
    except KeyboardInterrupt:
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    prog = f"{PROG} {ns.command}"
    if ns.command == "run":
        return _run(ns)
    if ns.command == "enroll-code":
        from cloud.enrollment.command import enroll_code_main

        return enroll_code_main(ns)
    if ns.command == "check-config":
        from cloud.config import check_config_main

        return check_config_main(ns.config)
    handlers = {"keygen": _keygen, "mint-pass": _mint_pass, "sign-command": _sign_command}
    try:
        handlers[ns.command](ns)
    except signing.SigningError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # e.g. --out in a read-only folder
        where = f"{e.filename}: " if e.filename else ""
        print(f"{prog}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
