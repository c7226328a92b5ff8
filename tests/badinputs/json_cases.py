"""Bad-input cases of the JSON-lines URL reader (sign_mnist_json: data.json in
the zip; images under img_mnist/)."""

from __future__ import annotations

import json

from badinputs.images import (
    decompression_bomb_png, encode, image_modes, jpeg_claiming, noise, png_claiming, text_bomb_png)
from badinputs.sources import JSON_SOURCE, good_json_images, image_url, json_source, url_line
from badinputs.table import CaseList, counts, fails
from badinputs.zips import small_zip

CASES = CaseList()
case = CASES.case


@case("json_clean_control", "json", "three good lines whose images exist",
      counts(train=(3, {})))
def _(folder):
    lines, files = good_json_images()
    json_source(folder, lines, files)


@case("json_million_lines", "json",
      "1,000,000 lines: 10 good ones spread through 999,990 with the unknown label J",
      counts(train=(10, {"unknown_label": 999_990}), max_rss_growth_mb=100),
      env={"SIGN_DATASETS_MAX_FAILED_SHARE": "1.0"}, isolated=True)
def _(folder):
    good_lines, files = good_json_images(10)
    good = good_lines.splitlines(keepends=True)
    filler = [b'{"content": "%s", "label": "j"}\n' % image_url(f"{n}_J.jpg").encode()
              for n in range(1000)]

    def write(stream):
        for block in range(1000):
            lines = list(filler)
            if block % 100 == 0:
                lines[500] = good[block // 100]
            stream.write(b"".join(lines))
    json_source(folder, write, files)


@case("json_nested_10000_deep", "json", "line 2 is an array nested 10,000 deep",
      fails("SourceError", rf"{JSON_SOURCE}:2: JSON nested too deeply to parse"))
def _(folder):
    lines, files = good_json_images(1)
    json_source(folder, lines + b"[" * 10_000 + b"]" * 10_000 + b"\n", files)


@case("json_nested_10000_deep_array", "json",
      "a JSON array whose second element is an object nested 10,000 deep",
      fails("SourceError", rf"{JSON_SOURCE}:3: JSON nested too deeply to parse"))
def _(folder):
    _, files = good_json_images(1)
    first = json.dumps({"content": image_url("1_A.jpg"), "label": "a"}).encode()
    deep = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
    json_source(folder, b"[\n" + first + b",\n" + deep + b"\n]\n", files)


@case("json_5000_digit_number", "json", "a record with a 5,000-digit number in an extra field",
      fails("SourceError", rf"{JSON_SOURCE}:2: a JSON value that cannot be parsed \(Exceeds the limit"))
def _(folder):
    lines, files = good_json_images(1)
    extra = b'{"content": "%s", "label": "a", "size": %s}\n' % (image_url("1_A.jpg").encode(), b"9" * 5000)
    json_source(folder, lines + extra, files)


@case("json_raw_nul_byte", "json", "a raw NUL byte inside a URL string on line 3",
      fails("SourceError", rf"{JSON_SOURCE}:3: not a JSON record \(Invalid control character"))
def _(folder):
    lines, files = good_json_images(2)
    json_source(folder, lines + b'{"content": "http://x/\x00.jpg", "label": "a"}\n', files)


@case("json_escaped_nul_in_url", "json", "an escaped NUL (\\u0000) inside a URL",
      counts(train=(2, {"refused_url": 1})), env={"SIGN_DATASETS_MAX_FAILED_SHARE": "1.0"})
def _(folder):
    lines, files = good_json_images(2)
    json_source(folder, lines + b'{"content": "%s\\u0000.jpg", "label": "a"}\n'
                % image_url("1_A.jpg").encode(), files)


@case("json_latin1_line", "json", "line 3 is Latin-1, the others UTF-8",
      fails("SourceError", rf"{JSON_SOURCE}:3: not UTF-8 text"))
def _(folder):
    lines, files = good_json_images(2)
    json_source(folder, lines + '{"content": "http://x/señal.jpg", "label": "a"}\n'.encode("latin-1"),
                files)


@case("json_utf16_file", "json", "the whole file saved as UTF-16",
      fails("SourceError", rf"{JSON_SOURCE}:1: not UTF-8 text"))
def _(folder):
    lines, files = good_json_images(2)
    json_source(folder, lines.decode().encode("utf-16"), files)


@case("json_hostile_urls", "json",
      "URLs to local files outside the source, metadata services, other schemes, credentials, "
      "a 5,000-character URL and a path escaping the source folder",
      counts(train=(2, {"refused_url": 8})), env={"SIGN_DATASETS_MAX_FAILED_SHARE": "1.0"})
def _(folder):
    lines, files = good_json_images(2)
    hostile = [
        "file:///etc/passwd",
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "ftp://example.com/a.jpg",
        "javascript:alert(1)",
        "http://user:secret@127.0.0.1:1/a.jpg",
        "http://example.com/" + "a" * 5000 + ".jpg",
        folder.resolve().as_uri() + "/img_mnist/../../../../etc/passwd",
    ]
    body = b"".join(json.dumps({"content": url, "label": "a"}).encode() + b"\n" for url in hostile)
    json_source(folder, lines + body, files)


@case("json_urls_to_bad_images", "json",
      "URLs to a decompression-bomb PNG, huge declared sizes, a zip, an empty file, a PNG text "
      "bomb, a TIFF, a missing file; and to CMYK, 16-bit and palette images (kept, resized)",
      counts(train=(8, {"image_too_large": 3, "not_an_image": 3, "corrupt_image": 1,
                        "not_found": 1})),
      env={"SIGN_DATASETS_MAX_FAILED_SHARE": "1.0"})
def _(folder):
    lines, files = good_json_images(2)
    bad = {
        "bomb.png": decompression_bomb_png(),
        "huge_png.png": png_claiming(100_000, 100_000),
        "huge_jpeg.jpg": jpeg_claiming(65_000, 65_000),
        "archive.jpg": small_zip(),
        "empty.jpg": b"",
        "text_bomb.png": text_bomb_png(3),
        "tiff.jpg": encode(noise(4), "TIFF"),
    }
    files.update(bad)
    files.update(image_modes(5))
    names = list(bad) + ["missing.jpg"] + list(image_modes(5))
    body = b"".join(url_line(name, "b") for name in names)
    json_source(folder, lines + body, files)


@case("json_all_urls_missing", "json", "every image URL answers 'not found'",
      fails("TooManyFailures", rf"{JSON_SOURCE}: 3 of 3 records failed \(100.0%\), more than the "
                               rf"10% allowed.*not_found: 3 \(first: {JSON_SOURCE}:1 "))
def _(folder):
    lines, _ = good_json_images(3)
    json_source(folder, lines, {})


@case("json_all_urls_missing_no_limit", "json",
      "every image URL answers 'not found', with the failure limit lifted (share 1.0)",
      fails("SourceError", r"sign_mnist_json/default/2.0.0: all 3 records of the train split were "
                           rf"dropped.*not_found=3 \(first: {JSON_SOURCE}:1 "),
      env={"SIGN_DATASETS_MAX_FAILED_SHARE": "1.0"})
def _(folder):
    lines, _ = good_json_images(3)
    json_source(folder, lines, {})
