"""The entry page's settings in hub.yaml, as `shopgate-hub check-config` reports them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cloud.config import load_hub_config
from cloud.signing import write_keypair
from runtime.config.errors import ConfigError
from tests.support.hub import write_hub_config


def load(tmp_path: Path, entry: dict[str, Any]) -> Any:
    write_keypair(tmp_path / "keys", "demo")

    def edit(cfg: dict[str, Any]) -> None:
        cfg["stores"][0]["entry"] = entry

    path = write_hub_config(tmp_path, edit)
    return load_hub_config(path, {"SHOPGATE_RUN": str(tmp_path)})


def test_the_demo_hub_asks_at_the_front_door(tmp_path: Path) -> None:
    write_keypair(tmp_path / "keys", "demo")
    cfg = load_hub_config(Path("hub.yaml"), {"SHOPGATE_RUN": str(tmp_path)})
    entry = cfg.stores[0].entry
    assert entry is not None and entry.doors == ["front"] and len(entry.questions) == 2


@pytest.mark.parametrize(
    ("entry", "key", "words"),
    [
        (
            {"doors": ["front"], "questions": [{"question": "门牌号？", "answers": ["secret-8"]}]},
            "stores.0.entry.questions.0.answers",
            "shopgate-agent hash-answer",
        ),
        ({"doors": []}, "stores.0.entry.doors", "at least 1"),
        ({"doors": ["front door"]}, "stores.0.entry.doors.0", "pattern"),
        ({"doors": ["front"], "pass_ttl_seconds": 5}, "stores.0.entry.pass_ttl_seconds", "30"),
        ({"doors": ["front"], "questoins": []}, "stores.0.entry.questoins", "'questions'"),
    ],
)
def test_a_bad_entry_setting_is_named(
    tmp_path: Path, entry: dict[str, Any], key: str, words: str
) -> None:
    with pytest.raises(ConfigError) as e:
        load(tmp_path, entry)
    [problem] = e.value.problems
    line = str(problem)
    assert f": {key}: " in line and words in line, line
    assert "secret-8" not in line  # a clear answer is never echoed
