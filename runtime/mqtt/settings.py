"""Broker settings both programs read the same way: the broker URL, and TLS."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from runtime.config.paths import ConfigPath


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_MQTT_URL = re.compile(r"^(mqtts?)://(?:\[([0-9A-Fa-f:.]+)\]|([^:/\[\]@\s]+))(?::(\d{1,5}))?/?$")


def parse_mqtt_url(url: str) -> tuple[str, int, bool]:
    """ "mqtts://broker.example.com" -> ("broker.example.com", 8883, True)."""
    m = _MQTT_URL.match(url.strip())
    if not m:
        shown = re.sub(r"//[^/\s]*@", "//[redacted]@", url)  # a password is not repeated
        raise ValueError(
            f"{shown!r} is not a broker URL like mqtt://host:1883 or mqtts://host:8883 "
            "(credentials go in username and password_file, not in the URL)"
        )
    scheme, v6, host, port = m.groups()
    tls = scheme == "mqtts"
    number = int(port) if port else (8883 if tls else 1883)
    if not 0 < number < 65536:
        raise ValueError(f"{url!r}: port {number} is out of range")
    return v6 or host, number, tls


class MqttTlsConfig(_Strict):
    ca_file: ConfigPath | None = Field(
        None,
        description=(
            "PEM file of the CA that signed the broker's certificate; none: the system's CAs."
        ),
    )
    cert_file: ConfigPath | None = Field(
        None,
        description=(
            "Client certificate (PEM), when the broker authenticates clients by certificate."
        ),
    )
    key_file: ConfigPath | None = Field(None, description="Private key (PEM) of `cert_file`.")
    insecure: bool = Field(
        False,
        description=(
            "Skip checking the broker's certificate and host name. Only for a test broker: anyone "
            "on the path can then impersonate it."
        ),
    )
