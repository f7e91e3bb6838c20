"""Can the store reach its broker and its hub, and are its credentials accepted?

The broker is not logged into as the store: it gives a store's username one session
(use_username_as_clientid), so a second login would throw the running agent off, or,
with the agent stopped, take the commands queued for it. The doctor opens the
connection as far as TLS (the broker's certificate verified) and leaves the login to the
agent, whose result it reads from health.json when the agent runs. The hub is asked
for the store's orders with its token: a read, harmless to repeat."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp

from agent.config.schema import AgentConfig
from agent.doctor.report import Check, failed, passed
from agent.hub_client import HubClient
from runtime.mqtt.settings import parse_mqtt_url
from runtime.mqtt.tls import MqttSetupError, tls_context

TIMEOUT_S = 5.0


async def broker(cfg: AgentConfig, health: dict[str, Any] | None) -> Check:
    host, port, tls = parse_mqtt_url(cfg.mqtt.url)
    where = f"{cfg.mqtt.url}"
    try:
        context = await asyncio.to_thread(tls_context, cfg.mqtt.tls) if tls else None
    except MqttSetupError as e:
        return failed("broker", str(e), "check the files under mqtt.tls in the config")
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context), TIMEOUT_S
        )
    except TimeoutError:
        return failed(
            "broker",
            f"{where}: no answer within {TIMEOUT_S:.0f} s",
            "check the network and that the broker runs (systemctl status mosquitto)",
        )
    except OSError as e:
        fix = (
            "the broker's certificate is not trusted: check mqtt.tls.ca_file"
            if "CERTIFICATE" in str(e).upper()
            else "check the address, the network and that the broker runs"
        )
        return failed("broker", f"{where}: {e}", fix)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    reached = f"{where} reachable{' (TLS verified)' if tls else ''}"
    if health is None:
        return passed("broker", f"{reached}; login not tried while the agent is stopped")
    if (health.get("mqtt") or {}).get("connected"):
        return passed("broker", f"{reached}; the agent is logged in")
    return failed(
        "broker",
        f"{reached}, but the running agent is not logged in",
        "check mqtt.username and mqtt.password_file against the hub's credentials for "
        "this store; the agent's log says why: journalctl -u shopgate-agent -n 50",
    )


async def hub(cfg: AgentConfig) -> Check:
    client = HubClient(cfg.hub.url, cfg.store.id, cfg.hub.token, timeout_s=TIMEOUT_S)
    try:
        async with client.session().get(client.store_url("orders")) as resp:
            status = resp.status
    except TimeoutError:
        return failed(
            "hub",
            f"{cfg.hub.url}: no answer within {TIMEOUT_S:.0f} s",
            "check the network and hub.url in the config",
        )
    except aiohttp.ClientError as e:
        where = f"{cfg.hub.url}: {client.redact(str(e))}"
        return failed("hub", where, "check the network and hub.url in the config")
    finally:
        await client.close()
    if status == 200:
        return passed("hub", f"{cfg.hub.url} reachable; the store's token is accepted")
    if status in (401, 403):
        return failed(
            "hub",
            f"{cfg.hub.url} refused the store's token ({status})",
            "set hub.token to this store's token from the hub (or enroll again)",
        )
    if status == 404:
        return failed(
            "hub",
            f"{cfg.hub.url} does not know store {cfg.store.id} (404)",
            "check store.id and hub.url in the config",
        )
    return failed("hub", f"{cfg.hub.url} answered {status}", "see the hub's log")
