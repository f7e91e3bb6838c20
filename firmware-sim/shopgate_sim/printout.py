"""What the simulated printer puts on paper for a QR code or a barcode, as a PNG.

A printer computes the QR symbol from the stored data with the model, module size and
error level it was given (here: the `qrcode` library, model 2), and draws an EAN-13
from its digits with the module width and height set by GS w / GS h (here: the bar
pattern tables of ISO/IEC 15420, drawn with Pillow). Tests read these images back with
a real decoder, so what we print is known to scan.
"""

from __future__ import annotations

import io

import qrcode
import qrcode.constants
from PIL import Image, ImageDraw

_QR_LEVEL = {
    "L": qrcode.constants.ERROR_CORRECT_L,
    "M": qrcode.constants.ERROR_CORRECT_M,
    "Q": qrcode.constants.ERROR_CORRECT_Q,
    "H": qrcode.constants.ERROR_CORRECT_H,
}

# EAN-13 digit patterns (1 = bar), left half odd parity (L), even parity (G), right (R).
_L = ["0001101", "0011001", "0010011", "0111101", "0100011",
      "0110001", "0101111", "0111011", "0110111", "0001011"]  # fmt: skip
_G = ["0100111", "0110011", "0011011", "0100001", "0011101",
      "0111001", "0000101", "0010001", "0001001", "0010111"]  # fmt: skip
_R = ["1110010", "1100110", "1101100", "1000010", "1011100",
      "1001110", "1010000", "1000100", "1001000", "1110100"]  # fmt: skip
# Which of the six left digits use G, chosen by the first (implicit) digit.
_PARITY = ["LLLLLL", "LLGLGG", "LLGGLG", "LLGGGL", "LGLLGG",
           "LGGLLG", "LGGGLL", "LGLGLG", "LGLGGL", "LGGLGL"]  # fmt: skip


def ean13_modules(digits: str) -> str:
    """The 95 modules of an EAN-13 symbol (guards included), '1' for a bar."""
    if len(digits) != 13 or not digits.isdigit():
        raise ValueError(f"an EAN-13 has 13 digits, not {digits!r}")
    parity = _PARITY[int(digits[0])]
    pairs = zip(parity, digits[1:7], strict=True)
    left = "".join((_L if p == "L" else _G)[int(d)] for p, d in pairs)
    right = "".join(_R[int(d)] for d in digits[7:])
    return "101" + left + "01010" + right + "101"


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def ean13_png(digits: str, *, module: int, height: int) -> bytes:
    """The barcode as printed: `module` dots per module, `height` dots tall, with the
    quiet zones (11 modules left, 7 right) the paper gives it."""
    modules = ean13_modules(digits)
    quiet_left, quiet_right = 11, 7
    width = (quiet_left + len(modules) + quiet_right) * module
    image = Image.new("L", (width, height + 2 * module * 4), 255)
    draw = ImageDraw.Draw(image)
    top = module * 4
    for k, bit in enumerate(modules):
        if bit == "1":
            x = (quiet_left + k) * module
            draw.rectangle((x, top, x + module - 1, top + height - 1), fill=0)
    return _png(image)


def qr_png(data: bytes, *, module: int, level: str) -> bytes:
    """The QR symbol for `data` (byte mode), `module` dots per module, with the 4-module
    quiet zone."""
    code = qrcode.QRCode(
        version=None, error_correction=_QR_LEVEL.get(level, _QR_LEVEL["L"]), box_size=module
    )
    code.add_data(data, optimize=0)
    code.make(fit=True)
    matrix = code.get_matrix()  # includes the border
    size = len(matrix) * module
    image = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(image)
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            if dark:
                draw.rectangle(
                    (x * module, y * module, (x + 1) * module - 1, (y + 1) * module - 1), fill=0
                )
    return _png(image)
