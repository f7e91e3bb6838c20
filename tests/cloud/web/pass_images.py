"""Reading entry pass QR codes back the way a scanner would: from pixels, with zxing-cpp."""

from __future__ import annotations

import io
import re
import time

import zxingcpp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from PIL import Image, ImageDraw

from agent.rules.passes import Claims, PassVerifier, Rejected

_SQUARE = re.compile(r"M(\d+),(\d+)H(\d+)V(\d+)H(\d+)z")
_VIEWBOX = re.compile(r'viewBox="0 0 (\d+) (\d+)"')


def decode_png(png: bytes) -> str:
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("L"))
    qr = [r.text for r in results if r.format == zxingcpp.BarcodeFormat.QRCode]
    assert len(qr) == 1, f"expected one QR code, found {[r.format for r in results]}"
    return qr[0]


def rasterize_svg(svg: str, scale: int = 6) -> bytes:
    """The page's inline QR as a PNG, drawn from its own path: one square per module."""
    m = _VIEWBOX.search(svg)
    assert m, "the SVG has no viewBox"
    width, height = int(m[1]), int(m[2])
    img = Image.new("L", (width * scale, height * scale), 255)
    draw = ImageDraw.Draw(img)
    squares = _SQUARE.findall(svg)
    assert squares, "the SVG draws no modules"
    for x0, y0, x1, y1, _ in squares:
        box = (int(x0) * scale, int(y0) * scale, int(x1) * scale - 1, int(y1) * scale - 1)
        draw.rectangle(box, fill=0)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def verify_entry_pass(
    token: str, public_key: Ed25519PublicKey, *, store: str, kid: str = "demo"
) -> Claims:
    """The pass as a door's agent reads it (agent/rules/passes.py), or an AssertionError."""
    result = PassVerifier({kid: public_key}, skew_seconds=60).verify(
        token, store=store, now=time.time()
    )
    assert not isinstance(result, Rejected), result
    return result
