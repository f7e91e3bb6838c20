"""An entry pass as a QR code: inline SVG for the page, PNG for saving to the phone."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import qrcode
import qrcode.image.svg
from qrcode.constants import ERROR_CORRECT_M

SVG_NS = "http://www.w3.org/2000/svg"


def _qr(text: str, **kw: object) -> qrcode.QRCode:
    # M: a phone screen under shop lighting has glare; 4 modules of quiet zone, as the
    # standard asks, so door scanners find the code at once.
    qr = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=4, **kw)
    qr.add_data(text)
    qr.make(fit=True)
    return qr


def pass_svg(text: str, *, label: str) -> str:
    """`<svg>` markup, white background, sized by CSS (no width/height of its own)."""
    img = _qr(text, box_size=10).make_image(image_factory=qrcode.image.svg.SvgPathFillImage)
    root = ET.fromstring(img.to_string(encoding="unicode"))
    for attribute in ("width", "height"):
        root.attrib.pop(attribute, None)
    root.set("role", "img")
    root.set("aria-label", label)
    root.set("shape-rendering", "crispEdges")
    ET.register_namespace("", SVG_NS)
    return ET.tostring(root, encoding="unicode")


def pass_png(text: str, *, box_size: int = 8) -> bytes:
    img = _qr(text, box_size=box_size).make_image()
    out = io.BytesIO()
    img.save(out)
    return out.getvalue()
