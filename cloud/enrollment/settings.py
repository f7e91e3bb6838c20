"""The `enrollment` section of hub.yaml."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from runtime.config.paths import ConfigPath


class EnrollmentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code_ttl_hours: float = Field(
        24, gt=0, le=14 * 24, description="How long a new enrollment code works (hours)."
    )
    mqtt_url: str | None = Field(
        None,
        description="The broker as stores reach it (mqtts://broker.example.com:8883); none: "
        "mqtt.url.",
    )
    config_template: ConfigPath | None = Field(
        None,
        description="A YAML file with the store config a new store receives (devices, doors, "
        "hours...); a store's own `agent_config` wins. None: deploy/agent/store-template.yaml.",
    )
