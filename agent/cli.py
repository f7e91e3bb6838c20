"""`shopgate-agent`: run the store agent, check a config, make a door poster QR."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from pathlib import Path

log = logging.getLogger("agent")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (CONTRACTS section 1)
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
    ha = sub.add_parser("hash-answer", help="hash an entry-question answer for the config")
    ha.add_argument("answer", nargs="?", help="the answer (asked for when left out)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check-config":
        from agent.config.loader import check_config_main

        return check_config_main(args.config)
    if args.command == "hash-answer":
        from agent.rules.answers import hash_answer

        answer = args.answer if args.answer is not None else getpass.getpass("answer: ")
        print(hash_answer(answer))
        return 0
    if args.command == "door-qr":
        return _door_qr(args.config, args.door, args.out, args.font)
    return _run(args.config, args.log_format, args.log_level)


def _load(path: Path):  # -> AgentConfig, or exits 2 with the problems
    from agent.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        raise SystemExit(2) from None


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


def _run(config: Path, log_format: str, level: str) -> int:
    from agent.runtime.logging import setup_logging

    setup_logging(log_format, level)  # type: ignore[arg-type]
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
