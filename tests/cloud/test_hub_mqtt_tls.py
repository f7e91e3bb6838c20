"""The hub's `mqtt.tls` settings in hub.yaml, up to a TLS connection to the shipped broker."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from cloud.bus import HubBus
from cloud.config import load_hub_config
from cloud.signing import write_keypair
from runtime.config.errors import ConfigError
from runtime.mqtt.tls import MqttSetupError
from tests.support.shipped_broker import start_shipped_broker


def hub_yaml(folder: Path, mqtt: str) -> Path:
    write_keypair(folder / "keys", "k1")
    (folder / "mqtt.pw").write_text("hub-pw\n")
    config = folder / "hub.yaml"
    config.write_text(
        "http: {listen: '127.0.0.1:0'}\n"
        "storage: {dir: data}\n"
        "signing: {key_file: keys/hub-signing.pem, kid: k1}\n"
        f"mqtt: {mqtt}\n"
    )
    return config


async def test_the_hub_connects_over_tls_with_the_ca_its_config_names(tmp_path: Path) -> None:
    broker = start_shipped_broker(tmp_path, users={"shopgate-hub": "hub-pw"})
    try:
        folder = tmp_path / "etc"
        (folder / "certs").mkdir(parents=True)
        (folder / "certs" / "ca.crt").write_bytes(broker.ca_file.read_bytes())
        config = hub_yaml(
            folder,
            f"{{url: '{broker.url(broker.store)}', password_file: mqtt.pw, "
            "tls: {ca_file: certs/ca.crt}}",
        )
        cfg = load_hub_config(config, {})
        assert cfg.mqtt.tls.ca_file == folder / "certs" / "ca.crt"  # relative to hub.yaml
        bus = HubBus.from_config(cfg)
        await bus.start()
        try:
            async with asyncio.timeout(10):
                await bus.until_connected()
        finally:
            await bus.stop()
    finally:
        broker.stop()
    assert "as shopgate-hub (p5" in broker.log  # over TLS the client id is the user name


def test_a_client_certificate_needs_its_key(tmp_path: Path) -> None:
    config = hub_yaml(tmp_path, "{url: 'mqtts://broker', tls: {cert_file: hub.crt}}")
    with pytest.raises(ConfigError, match=r"tls\.cert_file and tls\.key_file go together"):
        load_hub_config(config, {})


def test_a_ca_file_that_is_no_certificate_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_text("not a certificate\n")
    config = hub_yaml(tmp_path, "{url: 'mqtts://broker', tls: {ca_file: ca.crt}}")
    cfg = load_hub_config(config, {})
    with pytest.raises(MqttSetupError, match=r"mqtt\.tls: cannot load the certificates"):
        HubBus.from_config(cfg)


def test_a_password_in_the_hubs_broker_url_is_refused_without_being_repeated(
    tmp_path: Path,
) -> None:
    config = hub_yaml(tmp_path, "{url: 'mqtts://shopgate-hub:S3cretPw@broker'}")
    with pytest.raises(ConfigError, match="password_file") as caught:
        load_hub_config(config, {})
    assert "S3cretPw" not in str(caught.value)
