"""The TLS context for an mqtts:// broker, and the socket options both programs use."""

from __future__ import annotations

import socket
import ssl

from runtime.mqtt.settings import MqttTlsConfig

# Nagle's algorithm holds a small reply back until the previous segment is acknowledged:
# measured 88 ms per command round trip with it, 0.66 ms without.
NODELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class MqttSetupError(Exception):
    """The MQTT settings cannot be used (unreadable password file, bad TLS files)."""


def tls_context(t: MqttTlsConfig) -> ssl.SSLContext:
    """The TLS context for an mqtts:// broker (blocking: it reads the files). The agent
    and the hub both use it, with the same `tls` settings."""
    try:
        context = ssl.create_default_context(cafile=str(t.ca_file) if t.ca_file else None)
        if t.cert_file is not None and t.key_file is not None:
            context.load_cert_chain(str(t.cert_file), str(t.key_file))
    except (OSError, ssl.SSLError) as e:
        raise MqttSetupError(f"mqtt.tls: cannot load the certificates: {e}") from None
    if t.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
