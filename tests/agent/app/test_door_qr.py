"""`shopgate-agent door-qr`: the poster's QR decodes to the door's hub page."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from PIL import Image

from agent.config import load_config
from agent.door_poster import CAPTION_ZH, find_cjk_font, has_glyphs, make_poster
from tests.support.agent import DEMO_CONFIG, make_keys, write_config

EXE = str(Path(sys.executable).with_name("shopgate-agent"))


def door_qr(run_dir: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHOPGATE_RUN": str(run_dir)}
    env.pop("SHOPGATE_HUB_URL", None)
    return subprocess.run(
        [EXE, "door-qr", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def decoded(png: Path) -> list[str]:
    return [b.text for b in zxingcpp.read_barcodes(Image.open(png))]


def test_the_poster_decodes_to_exactly_the_doors_url(tmp_path: Path):
    make_keys(tmp_path)
    out = tmp_path / "posters" / "front.png"
    r = door_qr(tmp_path, DEMO_CONFIG, "--door", "front", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "http://127.0.0.1:8080/s/demo-001/front\n"
    assert decoded(out) == ["http://127.0.0.1:8080/s/demo-001/front"]
    img = Image.open(out)
    assert img.format == "PNG" and img.size[1] > img.size[0] >= 1000  # a printable portrait


def test_the_public_url_is_what_phones_open(tmp_path: Path):
    make_keys(tmp_path)

    def public(raw: dict[str, Any]) -> None:
        raw["hub"]["public_url"] = "https://hub.example.cn/"

    config = write_config(tmp_path, public)
    out = tmp_path / "front.png"
    r = door_qr(tmp_path, config, "--door", "front", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert decoded(out) == ["https://hub.example.cn/s/demo-001/front"]


def test_an_unknown_door_exits_2_naming_the_doors(tmp_path: Path):
    make_keys(tmp_path)
    out = tmp_path / "back.png"
    r = door_qr(tmp_path, DEMO_CONFIG, "--door", "back", "--out", str(out))
    assert r.returncode == 2
    [line] = r.stderr.strip().splitlines()
    assert "'back'" in line and "front" in line
    assert not out.exists()


@pytest.mark.parametrize(
    ("key", "value", "where", "says"),
    [
        ("hub", {"url": "http://h", "pubilc_url": "https://x"}, "hub.pubilc_url", "public_url"),
        (
            "lockers",
            [{"id": "l", "device": "lockbus-1", "board": 7, "slots": 2}],
            "lockers.0.board",
            "board 7",
        ),
    ],
)
def test_a_bad_config_exits_2_with_its_problem(
    tmp_path: Path, key: str, value: Any, where: str, says: str
):
    make_keys(tmp_path)

    def broken(raw: dict[str, Any]) -> None:
        raw[key] = value

    config = write_config(tmp_path, broken)
    out = tmp_path / "front.png"
    r = door_qr(tmp_path, config, "--door", "front", "--out", str(out))
    assert r.returncode == 2
    [line] = r.stderr.strip().splitlines()
    assert line.startswith(f"{config}:") and f" {where}: " in line and says in line
    assert not out.exists()


def test_without_a_chinese_font_the_poster_is_english_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    make_keys(tmp_path)
    monkeypatch.setenv("SHOPGATE_RUN", str(tmp_path))
    cfg = load_config(DEMO_CONFIG)
    poster = make_poster(cfg, "front", font_dirs=())
    assert poster.font is None
    [warning] = poster.warnings
    assert "no font with Chinese glyphs" in warning and "--font" in warning
    out = tmp_path / "en.png"
    poster.image.save(out)
    assert decoded(out) == [poster.url]


def test_a_font_without_chinese_is_refused_not_drawn_as_boxes(tmp_path: Path):
    latin = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    if not latin.exists():
        pytest.skip("no DejaVu font on this machine")
    assert has_glyphs(latin, "Door") and not has_glyphs(latin, CAPTION_ZH)
    assert not has_glyphs(tmp_path / "missing.ttf", "Door")


def test_a_chinese_font_found_on_the_machine_draws_the_caption():
    found = find_cjk_font()
    if found is None:
        pytest.skip("no font with Chinese glyphs installed (fonts-wqy-microhei)")
    assert has_glyphs(found, CAPTION_ZH + "门")
