"""What the agent and the hub both run on: config loading with FILE:LINE errors, logging
and redaction, systemd notify, MQTT supervision and TLS. Neither program is imported here;
both build on it."""
