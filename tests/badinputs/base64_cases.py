"""Bad-input cases of the base64 JSON reader (sign_mnist_base64: one object of
label -> base64 image)."""

from __future__ import annotations

import struct

from PIL import Image

from badinputs.images import (
    decompression_bomb_png, encode, image_modes, jpeg, jpeg_claiming, noise, png_claiming,
    text_bomb_png)
from badinputs.sources import BASE64_SOURCE, GOOD_B64_ENTRY, b64, base64_source
from badinputs.table import CaseList, counts, fails
from badinputs.zips import small_zip

CASES = CaseList()
case = CASES.case


@case("base64_clean_control", "base64", "one good entry, as in the course's file",
      counts(train=(1, {})))
def _(folder):
    base64_source(folder, ("{\n  %s\n}\n" % GOOD_B64_ENTRY).encode())


@case("base64_of_a_zip", "base64", "an entry whose base64 decodes to a zip holding a JPEG",
      counts(train=(1, {"not_an_image": 1})))
def _(folder):
    base64_source(folder, ('{%s, "c": "%s"}' % (GOOD_B64_ENTRY, b64(small_zip()))).encode())


@case("base64_image_bombs", "base64",
      "a decompression-bomb PNG, PNG/JPEG/GIF headers declaring billions of pixels, a PNG text bomb",
      counts(train=(1, {"image_too_large": 4, "corrupt_image": 1})))
def _(folder):
    gif = bytearray(encode(Image.new("P", (2, 2)), "GIF"))
    gif[6:10] = struct.pack("<HH", 65535, 65535)
    bombs = [decompression_bomb_png(), png_claiming(100_000, 100_000), jpeg_claiming(65_000, 65_000),
             bytes(gif), text_bomb_png(6)]
    entries = [GOOD_B64_ENTRY] + ['"c": "%s"' % b64(data) for data in bombs]
    base64_source(folder, ("{" + ",\n".join(entries) + "}").encode())


@case("base64_image_modes", "base64",
      "CMYK JPEG, 16-bit PNG, palette PNG (with and without transparency), grey+alpha, 1-bit BMP",
      counts(train=(6, {})))
def _(folder):
    entries = ['"%s": "%s"' % (letter, b64(data))
               for letter, data in zip("abcdef", image_modes(7).values())]
    base64_source(folder, ("{" + ",\n".join(entries) + "}").encode())


@case("base64_nested_10000_deep", "base64", "a value nested 10,000 deep on line 2",
      fails("SourceError", rf"{BASE64_SOURCE}:2: JSON nested too deeply to parse"))
def _(folder):
    base64_source(folder, b'{"b":\n' + b"[" * 10_000 + b"]" * 10_000 + b"}")


@case("base64_5000_digit_number", "base64", "a label whose value is a 5,000-digit number",
      fails("SourceError", rf"{BASE64_SOURCE}:1: a JSON value that cannot be parsed"))
def _(folder):
    base64_source(folder, b'{"b": ' + b"7" * 5000 + b"}")


@case("base64_nul_bytes", "base64",
      "an escaped NUL inside the base64 text, and NULs decoded from the base64",
      counts(train=(1, {"bad_base64": 1, "not_an_image": 1})))
def _(folder):
    text = '{%s, "c": "%s\\u0000%s", "d": "%s"}' % (GOOD_B64_ENTRY, b64(jpeg(1))[:8],
                                                    b64(jpeg(1))[8:], b64(bytes(64)))
    base64_source(folder, text.encode())


@case("base64_raw_nul_byte", "base64", "a raw NUL byte inside the base64 string on line 3",
      fails("SourceError", rf"{BASE64_SOURCE}:3: not valid JSON at column \d+ \(Invalid control character"))
def _(folder):
    base64_source(folder, b'{\n  "a": "QUJD",\n  "b": "QU\x00JD"\n}')


@case("base64_latin1_byte", "base64", "a Latin-1 label on line 3 of a UTF-8 file",
      fails("SourceError", rf"{BASE64_SOURCE}:3: not UTF-8 text"))
def _(folder):
    base64_source(folder, ('{\n  %s,\n  "ñ": "QUJD"\n}' % GOOD_B64_ENTRY).encode("latin-1"))


@case("base64_non_ascii_payload", "base64", "base64 text with non-ASCII letters and a lone surrogate",
      counts(train=(1, {"bad_base64": 2})))
def _(folder):
    base64_source(folder, ('{%s, "c": "QUJDé", "d": "QU\\ud800JD"}' % GOOD_B64_ENTRY).encode())


@case("base64_other_formats", "base64", "TIFF and WebP images (formats outside JPEG/PNG/BMP/GIF)",
      counts(train=(1, {"not_an_image": 2})))
def _(folder):
    base64_source(folder, ('{%s, "c": "%s", "d": "%s"}' % (
        GOOD_B64_ENTRY, b64(encode(noise(8), "TIFF")), b64(encode(noise(9), "WEBP")))).encode())
