"""The doctor's order: the config first (nothing else can be checked without it), then
this machine, the devices, the links; every check runs even when an earlier one failed,
so one visit shows everything that is wrong."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from agent.config import ConfigError, load_config
from agent.config.schema import AgentConfig
from agent.doctor import devices, links, local
from agent.doctor.report import Check, as_json, as_text, exit_status, failed, passed
from agent.runtime import health_file

DEFAULT_CONFIG = Path("/etc/shopgate/config.yaml")


def _config(path: Path) -> tuple[Check, AgentConfig | None]:
    if not path.exists():
        return failed(
            "config",
            f"{path} does not exist",
            "enroll this store (shopgate-agent enroll CODE --hub URL) or write the config "
            "(docs/install.md)",
        ), None
    try:
        cfg = load_config(path)
    except ConfigError as e:
        return failed(
            "config",
            str(e).replace("\n", "; "),
            f"correct the lines named; shopgate-agent check-config --config {path}",
        ), None
    return passed("config", f"{path} valid (store {cfg.store.id})"), cfg


async def diagnose(path: Path) -> list[Check]:
    first, cfg = await asyncio.to_thread(_config, path)
    checks = [first]
    if cfg is None:
        checks.append(await asyncio.to_thread(local.service))
        return checks
    health = health_file.read_fresh(cfg.storage.dir / health_file.NAME)
    checks.append(await asyncio.to_thread(local.keys, cfg))
    checks.append(await asyncio.to_thread(local.clock))
    checks += await asyncio.to_thread(local.storage, cfg)
    checks += await asyncio.to_thread(local.ports, cfg)
    checks += await asyncio.to_thread(local.gpio, cfg)
    if health is not None:
        checks += devices.from_health(cfg, health)
    else:
        checks += await devices.probe(cfg)
    broker, hub = await asyncio.gather(links.broker(cfg, health), links.hub(cfg))
    checks += [broker, hub]
    checks.append(await asyncio.to_thread(local.service))
    return checks


def main(path: Path | None, as_json_output: bool) -> int:
    checks = asyncio.run(diagnose(path or DEFAULT_CONFIG))
    print(as_json(checks) if as_json_output else as_text(checks))
    sys.stdout.flush()
    return exit_status(checks)
