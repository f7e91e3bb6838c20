"""shopgate-sim: the command line (CONTRACTS section 1)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import NoReturn

from shopgate_sim.app import run_sim
from shopgate_sim.config import ConfigError, load_config
from shopgate_sim.logs import setup_logging

log = logging.getLogger("shopgate_sim")


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments: one line naming the problem, exit 2 (argparse adds a usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT (PORT 0-65535; 0 = any free)")
    return host, int(port)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="shopgate-sim", description="The demo store's hardware, simulated on pseudo-terminals."
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    run = commands.add_parser(
        "run",
        help="start every device of the config and the HTTP control API",
        description="Start every device of the config, each on its own pseudo-terminal, "
        "link DIR/<device id> to it, write DIR/devices.json and DIR/control.json, and "
        "serve the control API until SIGTERM or SIGINT.",
    )
    run.add_argument("--dir", required=True, type=Path, help="run folder (created if missing)")
    run.add_argument(
        "--control",
        required=True,
        type=host_port,
        metavar="HOST:PORT",
        help="where the control API listens; port 0 picks a free one (see DIR/control.json)",
    )
    run.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="device config (default: the demo store's, shopgate_sim/store.yaml)",
    )
    run.add_argument("--log-format", choices=("text", "json"), default="text")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_format)
    try:
        specs = load_config(args.config)
        host, port = args.control
        asyncio.run(run_sim(args.dir, host, port, specs))
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    except OSError as exc:
        log.error("cannot start: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
