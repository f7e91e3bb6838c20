"""hub.yaml for orders: each store's shop ids on the platforms, auto_accept, shelves,
the public URL; and what check-config says about them."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.config import load_hub_config
from cloud.signing import write_keypair
from runtime.config.errors import ConfigError
from tests.support.hub import DEMO_HUB_CONFIG

HEAD = """\
http:
  listen: 127.0.0.1:0
storage:
  dir: hub
signing:
  key_file: keys/hub-signing.pem
  kid: demo
mqtt:
  url: mqtt://127.0.0.1:1883
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_keypair(tmp_path / "keys", "demo")
    return tmp_path


def write(folder: Path, stores: str) -> Path:
    path = folder / "hub.yaml"
    path.write_text(HEAD + stores, encoding="utf-8")
    return path


def test_the_demo_store_sells_on_every_platform_as_demo_001(folder: Path) -> None:
    cfg = load_hub_config(DEMO_HUB_CONFIG, {"SHOPGATE_RUN": str(folder)})
    store = cfg.stores[0]
    assert store.platforms.model_dump() == {
        "meituan": "demo-001",
        "eleme": "demo-001",
        "jddj": "demo-001",
        "douyin": "demo-001",
    }
    assert store.auto_accept is True
    assert cfg.http.public_url == ""
    # A public address makes the demo's published secrets a way in: refused, named.
    with pytest.raises(ConfigError) as refused:
        load_hub_config(
            DEMO_HUB_CONFIG,
            {"SHOPGATE_RUN": str(folder), "SHOPGATE_HUB_PUBLIC_URL": "https://hub.example.com"},
        )
    assert "platforms.meituan.secret" in str(refused.value)


def test_defaults_numeric_shop_ids_and_shelves(folder: Path) -> None:
    cfg = load_hub_config(
        write(
            folder,
            "stores:\n"
            "  - id: s1\n    token: t1\n"
            "    platforms: {jddj: 11223344}\n"
            "    shelves: {'6901234567892': A3}\n"
            "  - id: s2\n    token: t2\n",
        ),
        {},
    )
    assert cfg.stores[0].platforms.jddj == "11223344"
    assert cfg.stores[0].platforms.meituan is None
    assert cfg.stores[0].shelves == {"6901234567892": "A3"}
    assert cfg.stores[1].auto_accept is True
    assert cfg.stores[1].platforms.model_dump() == dict.fromkeys(
        ("meituan", "eleme", "jddj", "douyin")
    )


def test_one_shop_for_two_stores_is_a_problem_with_its_line(folder: Path) -> None:
    path = write(
        folder,
        "stores:\n"  # 10
        "  - id: s1\n"  # 11
        "    token: t1\n"  # 12
        "    platforms: {meituan: shop-9}\n"  # 13
        "  - id: s2\n"  # 14
        "    token: t2\n"  # 15
        "    platforms:\n"  # 16
        "      meituan: shop-9\n",  # 17
    )
    with pytest.raises(ConfigError) as e:
        load_hub_config(path, {})
    assert [str(p) for p in e.value.problems] == [
        f"{path}:17: stores.1.platforms.meituan: store 's1' already has meituan shop 'shop-9'"
    ]


def test_a_shop_id_with_a_space_is_a_problem(folder: Path) -> None:
    path = write(folder, "stores:\n  - id: s1\n    token: t1\n    platforms: {eleme: 'a b'}\n")
    with pytest.raises(ConfigError) as e:
        load_hub_config(path, {})
    assert [str(p) for p in e.value.problems] == [
        f"{path}:13: stores.0.platforms.eleme: 'a b' is not a shop id (1-64 printable ASCII "
        "characters, no spaces)"
    ]
