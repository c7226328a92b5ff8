"""Bad-input cases of the zip-of-image-folders reader (sign_language_img/28x28
unless said otherwise)."""

from __future__ import annotations

import stat
import struct
import zipfile

from badinputs.images import (
    decompression_bomb_png, encode, image_modes, jpeg, jpeg_claiming, noise, png, png_claiming,
    text_bomb_png)
from badinputs.sources import MALARIA_ZIP, SIGN_ZIP
from badinputs.table import CaseList, counts, fails
from badinputs.zips import (
    FIXED_TIME, central_at, central_entries, folder_zip, local_header_offset, member_data_span,
    patch, small_zip, write_zip)

CASES = CaseList()
case = CASES.case


@case("zip_clean_control", "zip", "Train/ and Test/ with one good image per class",
      counts(train=(2, {}), test=(2, {})))
def _(folder):
    folder_zip(folder / SIGN_ZIP)


@case("zip_empty_file", "zip", "the zip is 0 bytes",
      fails("SourceError", rf"{SIGN_ZIP}: not a zip archive \(no end-of-directory record\)"))
def _(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SIGN_ZIP).write_bytes(b"")


@case("zip_empty_archive", "zip", "a valid zip with no members",
      fails("LayoutError", rf"{SIGN_ZIP}: no split folders found; the zip's top level holds \[\]"))
def _(folder):
    write_zip(folder / SIGN_ZIP, [])


@case("zip_truncated", "zip", "the zip cut at 60% (an interrupted download)",
      fails("SourceError", rf"{SIGN_ZIP}: not a zip archive \(no end-of-directory record\)"))
def _(folder):
    path = folder_zip(folder / SIGN_ZIP, [(f"Train/A/{i}.png", png(200 + i)) for i in range(10)])
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.6)])


@case("zip_hole_in_members", "zip",
      "a hole of zeros over two members' bytes while the directory is intact",
      counts(train=(2, {"corrupt_member": 2}), test=(2, {})))
def _(folder):
    path = folder_zip(folder / SIGN_ZIP, [("Train/A/2.png", png(210)), ("Train/B/2.png", png(211))])

    def hole(data):
        start, _ = member_data_span(bytes(data), "Train/A/2.png")
        _, end = member_data_span(bytes(data), "Train/B/2.png")
        data[start - 10:end] = bytes(end - start + 10)
    patch(path, hole)


@case("zip_directory_lies_about_name", "zip",
      "a central directory entry whose name differs from its local header's",
      counts(train=(2, {"corrupt_member": 1}), test=(2, {})))
def _(folder):
    path = folder_zip(folder / SIGN_ZIP, [("Train/A/2.png", png(220))])

    def rename(data):
        at = central_at(data, "Train/A/2.png")
        data[at + 46:at + 46 + 13] = b"Train/A/9.png"
    patch(path, rename)


@case("zip_directory_lies_about_crc", "zip", "a central directory entry with a wrong CRC-32",
      counts(train=(2, {"corrupt_member": 1}), test=(2, {})))
def _(folder):
    path = folder_zip(folder / SIGN_ZIP, [("Train/A/2.png", png(230))])
    patch(path, lambda d: d.__setitem__(slice(central_at(d, "Train/A/2.png") + 16,
                                              central_at(d, "Train/A/2.png") + 20), b"\1\2\3\4"))


@case("zip_directory_lies_about_offset", "zip",
      "a central directory entry pointing at another member's local header",
      counts(train=(2, {"corrupt_member": 1}), test=(2, {})))
def _(folder):
    path = folder_zip(folder / SIGN_ZIP, [("Train/A/2.png", png(240))])

    def misplace(data):
        target = central_at(data, "Train/A/2.png")
        other = central_at(data, "Train/A/good.png")
        data[target + 42:target + 46] = data[other + 42:other + 46]
    patch(path, misplace)


@case("zip_directory_lies_about_its_size", "zip",
      "the end record declares a central directory 100 bytes larger than it is",
      fails("SourceError", rf"{SIGN_ZIP}: cannot read the zip directory \(.*\); the download may "
                           "be incomplete"))
def _(folder):
    path = folder_zip(folder / SIGN_ZIP)

    def grow(data):
        eocd = bytes(data).rindex(b"PK\x05\x06")
        size = struct.unpack("<I", data[eocd + 12:eocd + 16])[0]
        data[eocd + 12:eocd + 16] = struct.pack("<I", size + 100)
    patch(path, grow)


@case("zip_damaged_zip64_record", "zip", "an end record pointing at a zip64 record that is not there",
      fails("SourceError", rf"{SIGN_ZIP}: damaged zip64 end-of-directory record"))
def _(folder):
    path = folder_zip(folder / SIGN_ZIP)
    data = path.read_bytes()
    eocd = data.rindex(b"PK\x05\x06")
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, len(data) + 10_000, 1)
    end = data[eocd:eocd + 8] + struct.pack("<HHII", 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF) \
        + data[eocd + 20:]
    path.write_bytes(data[:eocd] + locator + end)


@case("zip_path_traversal", "zip", "members named ../../evil.png, Train/A/../../../../x.png, ..\\..\\win.png",
      counts(train=(2, {}), test=(2, {}), junk={"archive": {"unsafe_path": 3}}))
def _(folder):
    folder_zip(folder / SIGN_ZIP, [("../../evil.png", png(250)), ("Train/A/../../../../x.png", png(251)),
                                   ("..\\..\\win.png", png(252))])


@case("zip_absolute_names", "zip",
      "members named /etc/cron.d/x.png, C:\\Windows\\x.png, C:/x.png, ./C:/y.png, "
      "//server/share/x.png",
      counts(train=(2, {}), test=(2, {}), junk={"archive": {"unsafe_path": 5}}))
def _(folder):
    folder_zip(folder / SIGN_ZIP, [("/etc/cron.d/x.png", png(260)), ("C:\\Windows\\x.png", png(261)),
                                   ("C:/x.png", png(262)), ("./C:/y.png", png(264)),
                                   ("//server/share/x.png", png(263))])


@case("zip_nul_in_member_name", "zip",
      "a member named Train/A/2.png<NUL>.txt (zipfile cuts names at NUL; nothing is written to disk)",
      counts(train=(3, {}), test=(2, {})))
def _(folder):
    path = folder_zip(folder / SIGN_ZIP, [("Train/A/2.pngX.txt", png(270))])

    def put_nul(data):
        for at in (central_at(data, "Train/A/2.pngX.txt"),):
            data[at + 46 + 13] = 0
        local = bytes(data).index(b"Train/A/2.pngX.txt")
        data[local + 13] = 0
    patch(path, put_nul)


@case("zip_empty_member_name", "zip", "a member whose name is empty",
      counts(train=(2, {}), test=(2, {}), junk={"archive": {"unsafe_path": 1}}))
def _(folder):
    folder_zip(folder / SIGN_ZIP, [("", png(275))])


@case("zip_name_flagged_utf8_but_not", "zip", "a member name flagged UTF-8 whose bytes are not UTF-8",
      fails("SourceError", rf"{SIGN_ZIP}: cannot read the zip directory \(.*utf-8"))
def _(folder):
    path = folder_zip(folder / SIGN_ZIP, [("Train/A/seXal.png", png(280))])

    def bad_utf8(data):
        at = central_at(data, "Train/A/seXal.png")
        flags = struct.unpack("<H", data[at + 8:at + 10])[0]
        data[at + 8:at + 10] = struct.pack("<H", flags | 0x800)
        data[at + 46 + 10] = 0xFF
    patch(path, bad_utf8)


@case("zip_cp437_name", "zip", "a legacy (cp437, unflagged) member name with a non-ASCII letter",
      counts(train=(3, {}), test=(2, {})))
def _(folder):
    path = folder_zip(folder / SIGN_ZIP, [("Train/A/seXal.png", png(290))])

    def cp437(data):
        at = central_at(data, "Train/A/seXal.png")
        data[at + 46 + 10] = 0xA4  # ñ in cp437
        local = bytes(data).index(b"Train/A/seXal.png")
        data[local + 10] = 0xA4
    patch(path, cp437)


@case("zip_bomb_by_ratio", "zip", "a 2 MB member of zeros that deflates to 2 KB (ratio ~1000:1)",
      fails("ZipBombError", rf"{SIGN_ZIP}: member 'Train/A/zeros.bmp' inflates [\d,]+ bytes into "
                            r"2,097,152 \(ratio [\d,]+:1, limit 200:1\)"))
def _(folder):
    folder_zip(folder / SIGN_ZIP, [("Train/A/zeros.bmp", bytes(2 << 20))])


@case("zip_bomb_by_member_count", "zip", "an end record declaring 3,000,000,000 members",
      fails("ZipBombError", rf"{SIGN_ZIP}: declares 3,000,000,000 members, over the limit of 500,000"))
def _(folder):
    path = folder_zip(folder / SIGN_ZIP)
    data = path.read_bytes()
    eocd = data.rindex(b"PK\x05\x06")
    directory_bytes, directory_at = struct.unpack("<II", data[eocd + 12:eocd + 20])
    body = data[:eocd]
    record = struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0,
                         3_000_000_000, 3_000_000_000, directory_bytes, directory_at)
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, len(body), 1)
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    path.write_bytes(body + record + locator + end)


@case("zip_bomb_overlapping_members", "zip",
      "200 directory entries sharing one kernel of 512 KB of zeros (a non-recursive zip bomb)",
      fails("ZipBombError", rf"{SIGN_ZIP}: its members claim [\d,]+ compressed bytes in a [\d,]+-byte "
                            "file, so they overlap"))
def _(folder):
    # Under 1 MB, so the ratio limit exempts each entry: only the overlap gives it away.
    path = folder_zip(folder / SIGN_ZIP, [("Train/A/k000.png", bytes(512 << 10))])
    data = path.read_bytes()
    eocd = data.rindex(b"PK\x05\x06")
    count, size, offset = struct.unpack("<HII", data[eocd + 10:eocd + 20])
    kernel = next(at for at, name in central_entries(data) if name == "Train/A/k000.png")
    entry = data[kernel:kernel + 46 + len("Train/A/k000.png")]
    copies = [entry[:46] + f"Train/A/k{i:03d}.png".encode() for i in range(1, 200)]
    directory = data[offset:offset + size] + b"".join(copies)
    end = data[eocd:eocd + 8] + struct.pack("<HHII", count + 199, count + 199, len(directory), offset) \
        + data[eocd + 20:]
    path.write_bytes(data[:offset] + directory + end)


@case("zip_nested_archives", "zip", "a zip inside the zip, and a zip named .png",
      counts(train=(2, {"not_an_image": 1}), test=(2, {}), junk={"train": {"nested_archive": 1}}))
def _(folder):
    folder_zip(folder / SIGN_ZIP, [("Train/A/inner.zip", small_zip()),
                                   ("Train/B/inner.png", small_zip())])


@case("zip_symlink_member", "zip", "a member stored as a symlink to /etc/passwd (never followed)",
      counts(train=(2, {"not_an_image": 1}), test=(2, {})))
def _(folder):
    link = zipfile.ZipInfo("Train/A/link.png", FIXED_TIME)
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    folder_zip(folder / SIGN_ZIP, [(link, b"../../../../../../etc/passwd")])


@case("zip_encrypted_member", "zip", "a member flagged as encrypted",
      counts(train=(2, {"unreadable_member": 1}), test=(2, {})))
def _(folder):
    path = folder_zip(folder / SIGN_ZIP, [("Train/A/2.png", png(300))])

    def encrypt_flag(data):
        at = central_at(data, "Train/A/2.png")
        local = local_header_offset(bytes(data), at)
        for flags_at in (at + 8, local + 6):
            flags = struct.unpack("<H", data[flags_at:flags_at + 2])[0]
            data[flags_at:flags_at + 2] = struct.pack("<H", flags | 0x1)
    patch(path, encrypt_flag)


@case("zip_unknown_compression", "zip", "a member compressed with method 98 (PPMd), unknown to Python",
      counts(train=(2, {"unreadable_member": 1}), test=(2, {})))
def _(folder):
    path = folder_zip(folder / SIGN_ZIP, [("Train/A/2.png", png(310))])

    def method(data):
        at = central_at(data, "Train/A/2.png")
        local = local_header_offset(bytes(data), at)
        data[at + 10:at + 12] = struct.pack("<H", 98)
        data[local + 8:local + 10] = struct.pack("<H", 98)
    patch(path, method)


@case("zip_lzma_member_damaged", "zip", "an LZMA-compressed member whose stream is corrupt",
      counts(train=(2, {"corrupt_member": 1}), test=(2, {})))
def _(folder):
    path = folder_zip(folder / SIGN_ZIP, [("Train/A/2.png", png(320))], compression=zipfile.ZIP_LZMA)

    def corrupt(data):
        start, _ = member_data_span(bytes(data), "Train/A/2.png")
        data[start + 20:start + 60] = b"\xff" * 40
    patch(path, corrupt)


@case("zip_self_extracting_stub", "zip", "64 KB of executable stub before the zip (as in a .exe archive)",
      counts(train=(3, {}), test=(2, {})))
def _(folder):
    path = folder_zip(folder / SIGN_ZIP, [("Train/A/2.png", png(330))])
    path.write_bytes(b"MZ" + bytes(64 * 1024 - 2) + path.read_bytes())


@case("zip_image_bombs", "zip",
      "a real 8000x6000 PNG of zeros (46 KB), PNG/JPEG headers declaring 10^10 and 4*10^9 pixels, "
      "a PNG whose text chunk inflates to 100 MB",
      counts(train=(2, {"image_too_large": 3, "corrupt_image": 1}), test=(2, {})))
def _(folder):
    folder_zip(folder / SIGN_ZIP, [("Train/A/bomb.png", decompression_bomb_png()),
                                   ("Train/A/huge.png", png_claiming(100_000, 100_000)),
                                   ("Train/B/huge.jpg", jpeg_claiming(65_000, 65_000)),
                                   ("Train/B/text.png", text_bomb_png(340))])


@case("zip_odd_members", "zip",
      "a 0-byte image, an HTML page named .jpg, a TIFF named .png, a truncated JPEG",
      counts(train=(2, {"not_an_image": 3, "corrupt_image": 1}), test=(2, {})))
def _(folder):
    folder_zip(folder / SIGN_ZIP, [("Train/A/empty.jpg", b""),
                                   ("Train/A/page.jpg", b"<html>404 Not Found</html>"),
                                   ("Train/B/tiff.png", encode(noise(350), "TIFF")),
                                   ("Train/B/cut.jpg", jpeg(351)[:300])])


@case("zip_image_modes_rgb", "zip",
      "CMYK JPEG, 16-bit PNG, palette PNGs, grey+alpha, 1-bit BMP in an RGB dataset (all kept)",
      counts(train=(8, {}), test=(2, {})), dataset="malaria_cells/native")
def _(folder):
    modes = [(f"Train/Parasitized/{name}", data) for name, data in image_modes(360).items()]
    folder_zip(folder / MALARIA_ZIP, modes, classes=("Parasitized", "Uninfected"),
               maker=lambda seed: png(seed, (20, 20, 3)))


@case("zip_duplicate_names", "zip", "two entries with the same name (a zip appended to twice)",
      counts(train=(2, {"duplicate_member_name": 1}), test=(2, {})))
def _(folder):
    folder_zip(folder / SIGN_ZIP, [("Train/A/good.png", png(370))])
