"""`shopgate-hub run`: open the database, serve the API, stop cleanly on SIGTERM/SIGINT.

Start-up order: database (schema migrated), callers from the config (tokens hashed), then
the listening socket, so the hub answers nothing before it can answer everything. The
log line `listening on http://HOST:PORT` gives the real port when the config says port 0.
On SIGTERM the socket closes, requests in flight get up to SHUTDOWN_GRACE_S to finish,
then the database closes: well inside the 5 s the contract allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from aiohttp import web

from cloud import exposure
from cloud.access_log import AccessLogger
from cloud.app import create_app
from cloud.bus import HubBus
from cloud.config import HubConfig, parse_listen, weak_settings
from cloud.db.engine import Database
from cloud.db.principals import sync_principals
from cloud.root import attach_alerts, attach_bus
from runtime.mqtt.tls import MqttSetupError

log = logging.getLogger("cloud.service")

SHUTDOWN_GRACE_S = 3.0
# Shorter tokens are guessable; on loopback (the demo's "demo-token") a warning, not a
# refusal: a hub other machines reach refuses them (cloud/config.py weak_settings).
MIN_TOKEN_LENGTH = exposure.MIN_TOKEN_CHARS


async def run_hub(cfg: HubConfig, db_url: str) -> int:
    """Serve until SIGTERM or SIGINT; returns the exit status."""
    from runtime.systemd import Notifier

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    notifier = Notifier.from_env()
    db = await _open_unless_stopped(db_url, stop)
    if db is None:
        log.info("stopped before the database was open")
        return 0
    try:
        await sync_principals(db, cfg.stores, cfg.merchants)
        _warn_weak_tokens(cfg)
        log.info(
            "callers loaded",
            extra={"stores": len(cfg.stores), "merchants": len(cfg.merchants)},
        )
        app = create_app(cfg, db)
        try:
            bus = await asyncio.to_thread(HubBus.from_config, cfg)
        except OSError as e:
            where = cfg.mqtt.password_file
            log.error("cannot read the MQTT password file %s: %s", where, e.strerror or e)
            return 2
        except MqttSetupError as e:  # mqtt.tls files missing or not certificates
            log.error("%s", e)
            return 2
        attach_bus(app, bus)
        attach_alerts(app)
        runner = web.AppRunner(
            app,
            shutdown_timeout=SHUTDOWN_GRACE_S,
            handle_signals=False,
            access_log_class=AccessLogger,
        )
        await runner.setup()
        try:
            host, port = parse_listen(cfg.http.listen)
            site = web.TCPSite(runner, host, port)
            try:
                await site.start()
            except OSError as e:
                log.critical("cannot listen on %s: %s", cfg.http.listen, e.strerror or e)
                return 1
            # Before anything is served (no await since the bind): what was really bound.
            if _demo_settings_reachable(cfg, [str(a[0]) for a in runner.addresses]):
                return 2
            for address in runner.addresses:
                host_text = f"[{address[0]}]" if ":" in address[0] else address[0]
                log.info("listening on http://%s:%d", host_text, address[1])
            notifier.ready(f"listening on {cfg.http.listen}")
            await stop.wait()
            log.info("stopping")
            notifier.stopping()
        finally:
            await runner.cleanup()
    finally:
        await db.close()
        notifier.close()
    log.info("stopped")
    return 0


async def _open_unless_stopped(db_url: str, stop: asyncio.Event) -> Database | None:
    """The open database, or None when a signal came first (an unreachable PostgreSQL
    can take a minute to time out; SIGTERM must not wait for it)."""
    opening = asyncio.create_task(Database.open(db_url))
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({opening, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if opening.done():
        return opening.result()
    opening.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        late = await opening  # it finished just as it was cancelled
        await late.close()
    return None


def _demo_settings_reachable(cfg: HubConfig, bound: list[str]) -> bool:
    """Log each setting fit only for the loopback demo, if other machines can reach the
    sockets just bound (or come through public_url); whether there were any. The config
    check said the same from the listen address; this holds for the addresses themselves."""
    where = (
        exposure.bound_reach(bound)
        or exposure.public_url_reach(cfg.http.public_url)
        or exposure.proxy_reach(cfg.limits.trusted_proxies)
    )
    weak = weak_settings(cfg) if where else []
    for loc, message in weak:
        key = ".".join(str(part) for part in loc)
        log.critical("%s: %s; not on a hub other machines reach (%s)", key, message, where)
    return bool(weak)


def _warn_weak_tokens(cfg: HubConfig) -> None:
    callers = [("store", s.id, s.token) for s in cfg.stores]
    callers += [("merchant", m.id, m.token) for m in cfg.merchants]
    for kind, ident, token in callers:
        if len(token) < MIN_TOKEN_LENGTH:
            log.warning(
                "%s %s has a short token (%d characters); give it at least %d random "
                "characters, e.g. from `openssl rand -hex 24`",
                kind,
                ident,
                len(token),
                MIN_TOKEN_LENGTH,
            )
