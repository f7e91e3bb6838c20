"""`shopgate-agent`: run the store agent, check a config, make a door poster QR, list or
reset the hub keys it trusts, relock the GPIO doors after the agent (systemd's ExecStopPost),
check the whole setup (doctor)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from pathlib import Path
from typing import NoReturn

log = logging.getLogger("agent")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2 (CONTRACTS section 1)
        print(f"{self.prog}: {message}", file=sys.stderr)
        raise SystemExit(2)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="shopgate-agent", description="The shopgate store agent.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="run the agent in the foreground (systemd Type=notify)")
    run.add_argument("--config", required=True, type=Path)
    run.add_argument("--log-format", choices=["text", "json"], default="text")
    run.add_argument("--log-level", default="INFO")
    check = sub.add_parser("check-config", help="validate a config file")
    check.add_argument("--config", required=True, type=Path)
    qr = sub.add_parser("door-qr", help="make a door's poster QR (PNG)")
    qr.add_argument("--config", required=True, type=Path)
    qr.add_argument("--door", required=True)
    qr.add_argument("--out", required=True, type=Path)
    qr.add_argument("--font", type=Path, help="a font file with Chinese glyphs (default: found)")
    keys = sub.add_parser("keys", help="the hub keys this store trusts (docs/remote-ops.md)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, parser_class=_Parser)
    kl = keys_sub.add_parser("list", help="the config's keys and those keys.set installed")
    kl.add_argument("--config", required=True, type=Path)
    kl.add_argument("--json", action="store_true", help="one JSON object on stdout")
    kr = keys_sub.add_parser(
        "reset", help="drop every key keys.set installed; only the config's keys stay"
    )
    kr.add_argument("--config", required=True, type=Path)
    relock = sub.add_parser(
        "relock", help="switch off every GPIO door relay (after the agent: ExecStopPost)"
    )
    relock.add_argument("--config", required=True, type=Path)
    enroll = sub.add_parser("enroll", help="turn this install into a store with a hub's code")
    enroll.add_argument("code", help="the one-time code from the hub (shopgate-hub enroll-code)")
    enroll.add_argument("--hub", required=True, help="the hub's URL (https://...)")
    enroll.add_argument(
        "--config-dir", type=Path, help="where config.yaml and keys go (default /etc/shopgate)"
    )
    enroll.add_argument(
        "--state-dir",
        type=Path,
        help="the journal's folder (default /var/lib/shopgate; CONFIG_DIR/state elsewhere)",
    )
    enroll.add_argument("--force", action="store_true", help="replace an existing config")
    doctor = sub.add_parser("doctor", help="check this store's setup; each problem with its fix")
    doctor.add_argument(
        "--config", type=Path, help="the config file (default /etc/shopgate/config.yaml)"
    )
    doctor.add_argument("--json", action="store_true", help='{"checks": [...]} on stdout')
    ha = sub.add_parser("hash-answer", help="hash an entry-question answer for the config")
    ha.add_argument("answer", nargs="?", help="the answer (asked for when left out)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check-config":
        from agent.config.loader import check_config_main

        return check_config_main(args.config)
    if args.command == "hash-answer":
        from storerules.answers import hash_answer

        answer = args.answer if args.answer is not None else getpass.getpass("answer: ")
        print(hash_answer(answer))
        return 0
    if args.command == "keys":
        return _keys(args.keys_command, args.config, getattr(args, "json", False))
    if args.command == "door-qr":
        return _door_qr(args.config, args.door, args.out, args.font)
    if args.command == "enroll":
        from agent.enrollment import enroll_main

        return enroll_main(args.code, args.hub, args.config_dir, args.state_dir, args.force)
    if args.command == "doctor":
        from agent.doctor.run import main as doctor_main

        return doctor_main(args.config, args.json)
    if args.command == "relock":
        return _relock(args.config)
    return _run(args.config, args.log_format, args.log_level)


def _load(path: Path):  # -> AgentConfig, or exits 2 with the problems
    from agent.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        raise SystemExit(2) from None


def _keys(command: str, config: Path, as_json: bool) -> int:
    import json

    from agent.journal.view import JournalView
    from agent.services.hub_keys import inspect, reset_journal

    cfg = _load(config)
    if command == "reset":
        dropped = asyncio.run(reset_journal(cfg, by="shopgate-agent keys reset"))
        print(f"dropped {len(dropped)} installed key(s): {', '.join(dropped) or 'none'}")
        print("a running agent takes this at its next reload: systemctl reload shopgate-agent")
        return 0
    trust = inspect(cfg, JournalView(cfg.storage.dir / "journal.db").settings())
    report = trust.describe() | {
        "dropped_at_next_start": [d.to_json() for d in trust.dropped],
        "adopted_at_next_start": list(trust.adopted),
    }
    if as_json:
        print(json.dumps(report, ensure_ascii=False))
        return 0
    print(f"config (anchors): {', '.join(report['anchors'])}")
    for k in report["installed"]:
        print(f"installed: {k['kid']} via {' -> '.join(k['via'])} by {k['by'] or '?'} at {k['at']}")
    for d in report["dropped_at_next_start"]:
        print(f"dropped at the next start: {d['kid']} ({d['reason']})")
    if report["revoked"]:
        print(f"revoked: {', '.join(report['revoked'])}")
    return 0


def _door_qr(config: Path, door: str, out: Path, font: Path | None) -> int:
    from agent.door_poster import make_poster

    cfg = _load(config)
    if door not in {d.id for d in cfg.doors}:
        print(
            f"shopgate-agent: no door {door!r} in {config}"
            f" (doors: {', '.join(d.id for d in cfg.doors)})",
            file=sys.stderr,
        )
        return 2
    poster = make_poster(cfg, door, font_file=font)
    for warning in poster.warnings:
        print(f"shopgate-agent: warning: {warning}", file=sys.stderr)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        poster.image.save(out, format="PNG", dpi=(300, 300))
    except (OSError, ValueError) as e:
        print(f"shopgate-agent: cannot write {out}: {e}", file=sys.stderr)
        return 2
    print(poster.url)
    return 0


def _relock(config: Path) -> int:
    from agent.runtime.relock import relock

    # systemd tells ExecStopPost how the agent ended; put it next to what was switched.
    result = os.environ.get("SERVICE_RESULT")
    if result and result != "success":
        how = f"{os.environ.get('EXIT_CODE', '?')} {os.environ.get('EXIT_STATUS', '?')}"
        print(f"shopgate-agent relock: the agent ended badly: {result} ({how})", flush=True)
    report = relock(_load(config))
    for item in report:
        print(f"shopgate-agent relock: door {item.door}: {item.line}", flush=True)
    return 0 if all(item.ok for item in report) else 1


def _run(config: Path, log_format: str, level: str) -> int:
    from runtime.logging import setup_logging

    setup_logging(log_format, level)  # type: ignore[arg-type]  # argparse choices: text|json
    cfg = _load(config)
    from agent.app import Agent

    try:
        return asyncio.run(Agent(config.resolve(), cfg).run())
    except KeyboardInterrupt:
        return 0
    except Exception as e:
        log.critical("agent failed: %s", e, exc_info=True)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
