"""The delivery platforms the hub knows: one line each.

adapters = configured_adapters(cfg.platforms)    # only those with credentials in hub.yaml
"""

from __future__ import annotations

from cloud.config import PlatformsConfig
from cloud.platforms.base import PlatformAdapter
from cloud.platforms.douyin import DouyinAdapter
from cloud.platforms.eleme import ElemeAdapter
from cloud.platforms.jddj import JddjAdapter
from cloud.platforms.meituan import MeituanAdapter

PLATFORMS: dict[str, type[PlatformAdapter]] = {
    "meituan": MeituanAdapter,
    "eleme": ElemeAdapter,
    "jddj": JddjAdapter,
    "douyin": DouyinAdapter,
}


def configured_adapters(platforms: PlatformsConfig) -> dict[str, PlatformAdapter]:
    """An adapter for each platform that hub.yaml gives credentials for."""
    out: dict[str, PlatformAdapter] = {}
    for name, adapter_class in PLATFORMS.items():
        creds = getattr(platforms, name)
        if creds is not None:
            out[name] = adapter_class(creds)
    return out
