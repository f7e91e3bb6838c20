"""The poster by a door: a QR code of the hub page a phone opens to enter (`door-qr`).

The QR holds `{hub.public_url or hub.url}/s/{store}/{door}` (cloud/web/entry.py serves
it). Around it go the store's name, the door and a caption in Chinese and English. A
Raspberry Pi often has no font with Chinese glyphs: then the text is drawn in English
only with a font that has Latin letters, and `Poster.warnings` says so, rather than
printing boxes where the characters should be. `--font FILE` (or fonts-noto-cjk /
fonts-wqy-microhei from Debian) gives the Chinese text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import qrcode
from PIL import Image, ImageDraw, ImageFont

from agent.config.schema import AgentConfig

# Portrait A5 at 300 dpi: prints sharp on A5, and on A4 alike.
WIDTH, HEIGHT = 874 * 2, 1240 * 2
MARGIN = 120
CAPTION_ZH = "扫码进店"
CAPTION_EN = "Scan to enter"
# Where Debian, Raspberry Pi OS and others put fonts that cover Chinese, best first.
CJK_FONT_GLOBS = (
    "opentype/noto/NotoSansCJK*-Bold.ttc",
    "opentype/noto/NotoSansCJK*-Regular.ttc",
    "opentype/noto/NotoSansCJK*.ttc",
    "truetype/wqy/wqy-microhei.ttc",
    "truetype/wqy/wqy-zenhei.ttc",
    "truetype/droid/DroidSansFallbackFull.ttf",
    "truetype/arphic/uming.ttc",
    "**/SourceHanSans*.otf",
    "**/NotoSansSC*.otf",
)
FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))
LATIN_FONTS = ("truetype/dejavu/DejaVuSans-Bold.ttf", "truetype/liberation/LiberationSans-Bold.ttf")
FontType = ImageFont.FreeTypeFont | ImageFont.ImageFont


def door_url(cfg: AgentConfig, door: str) -> str:
    return f"{cfg.hub.poster_base}/s/{cfg.store.id}/{door}"


def has_glyphs(font_file: Path, text: str) -> bool:
    """Does the font draw every character of `text`? A missing one renders as the
    font's .notdef box, the same picture as a private-use character that no font has."""
    try:
        font = ImageFont.truetype(str(font_file), 48)
    except OSError:
        return False

    def picture(ch: str) -> bytes:
        img = Image.new("L", (64, 64))
        ImageDraw.Draw(img).text((0, 0), ch, font=font, fill=255)
        return img.tobytes()

    missing = picture("\ue000")
    return all(ch.isspace() or picture(ch) != missing for ch in text)


def find_cjk_font(dirs: tuple[Path, ...] = FONT_DIRS) -> Path | None:
    for base in dirs:
        for pattern in CJK_FONT_GLOBS:
            for path in sorted(base.glob(pattern)):
                if has_glyphs(path, CAPTION_ZH):
                    return path
    return None


def _latin_font(size: int) -> FontType:
    for base in FONT_DIRS:
        for name in LATIN_FONTS:
            if (base / name).exists():
                return ImageFont.truetype(str(base / name), size)
    return ImageFont.load_default(size)  # Pillow's own, always there


@dataclass
class Poster:
    url: str
    image: Image.Image
    font: Path | None  # the font with Chinese glyphs used, None: English only
    warnings: list[str] = field(default_factory=list)


def make_poster(
    cfg: AgentConfig,
    door: str,
    *,
    font_file: Path | None = None,
    font_dirs: tuple[Path, ...] = FONT_DIRS,
) -> Poster:
    url = door_url(cfg, door)
    warnings: list[str] = []
    if font_file is not None and not has_glyphs(font_file, CAPTION_ZH):
        warnings.append(f"{font_file} has no Chinese glyphs (or is no font); not used")
        font_file = None
    cjk = font_file or find_cjk_font(font_dirs)
    if cjk is None:
        warnings.append(
            "no font with Chinese glyphs found (install fonts-noto-cjk or fonts-wqy-microhei, "
            "or pass --font FILE): the poster's text is in English only"
        )

    def font(size: int) -> FontType:
        return ImageFont.truetype(str(cjk), size) if cjk else _latin_font(size)

    def printable(text: str) -> str:
        return text if cjk else "".join(c for c in text if c.isascii()).strip()

    img = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(img)
    y = MARGIN
    store_name = printable(cfg.store.name) or cfg.store.id
    y = _centred(draw, y, store_name, font(110)) + 50
    if cjk:
        y = _centred(draw, y, CAPTION_ZH, font(170)) + 20
    y = _centred(draw, y, CAPTION_EN, font(90 if cjk else 150)) + 60

    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    qr.add_data(url)
    qr.make(fit=True)
    code = qr.make_image(fill_color="black", back_color="white").get_image().convert("RGB")
    side = min(WIDTH - 2 * MARGIN, HEIGHT - y - 420)
    # Whole pixels per module, so every module prints the same size.
    side -= side % code.width
    code = code.resize((side, side), Image.Resampling.NEAREST)
    img.paste(code, ((WIDTH - side) // 2, y))
    y += side + 50

    door_line = f"门 Door: {door}" if cjk else f"Door: {door}"
    y = _centred(draw, y, door_line, font(90)) + 30
    _centred(draw, y, url, font(44), fill="#555555")
    return Poster(url, img, cjk, warnings)


def _centred(
    draw: ImageDraw.ImageDraw, y: int, text: str, font: FontType, fill: str = "black"
) -> int:
    """Draw one line centred at height y; returns the y below it."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    draw.text(((WIDTH - (right - left)) // 2 - left, y - top), text, font=font, fill=fill)
    return int(y + (bottom - top))
