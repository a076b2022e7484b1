"""Files made to lie to a decoder or to make it work without bound: headers with a decoy size,
tiled and float TIFFs, progressive JPEGs of many scans. Shared by the hostile-input tests and
the fuzz test; each is a real file OpenCV decodes (or tries to)."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
from PIL import Image

_TIFF_TYPES = {"H": 3, "I": 4}
_DEFLATE = 8
_FLOAT = 3


def hdr_decoy(width: int, height: int) -> bytes:
    """A flat Radiance HDR of width x height black pixels whose size line is spaced as OpenCV
    reads it but no strict reader would, followed by a decoy `-Y 10 +X 10` after a blank line."""
    header = b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y  %d  +X %d\n" % (height, width)
    decoy = b"\n\n-Y 10 +X 10\n"
    return header + decoy + bytes(width * height * 4 - len(decoy))


def jp2_decoy(width: int, height: int) -> bytes:
    """A real JP2 of width x height with an `xml ` box holding a 10x10 `ihdr` before `jp2h`."""
    data = cv2.imencode(".jp2", np.full((height, width, 3), 128, np.uint8))[1].tobytes()
    after_ftyp = 12 + 20  # the signature box and the file-type box
    fake_header = b"ihdr" + struct.pack(">IIHBBBB", 10, 10, 3, 7, 7, 0, 0)
    box = struct.pack(">I", 8 + len(fake_header)) + b"xml " + fake_header
    return data[:after_ftyp] + box + data[after_ftyp:]


def pam_decoy(width: int, height: int) -> bytes:
    """A PAM of width x height whose pixel data starts with `WIDTH 1` and `HEIGHT 1` lines."""
    header = b"P7\nWIDTH %d\nHEIGHT %d\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n" % (
        width,
        height,
    )
    decoy = b"WIDTH 1\nHEIGHT 1\n"
    return header + decoy + bytes(width * height * 3 - len(decoy))


def tiff(
    width: int,
    height: int,
    *,
    samples: int = 3,
    bits: int = 8,
    floats: bool = False,
    tile: tuple[int, int] | None = None,
) -> bytes:
    """A deflated TIFF of zero samples in one strip, or in one `tile` (width, length) that may
    be far larger than the image; zeros compress about 1000:1, so a file of a few MB can hold
    gigabytes of samples."""
    area = tile or (width, height)
    compressor = zlib.compressobj(9)
    row = bytes(area[0] * samples * bits // 8)
    body = b"".join(compressor.compress(row) for _ in range(area[1])) + compressor.flush()
    per_sample = struct.pack("<" + "H" * samples, *[bits] * samples)
    formats = struct.pack("<" + "H" * samples, *[_FLOAT if floats else 1] * samples)
    entries: list[tuple[int, str, list[int] | bytes]] = [
        (256, "I", [width]),
        (257, "I", [height]),
        (258, "H", per_sample),
        (259, "H", [_DEFLATE]),
        (262, "H", [2 if samples >= 3 else 1]),
        (277, "H", [samples]),
        (284, "H", [1]),
        (339, "H", formats),
    ]
    if tile:
        entries += [
            (322, "I", [tile[0]]),
            (323, "I", [tile[1]]),
            (324, "I", [0]),
            (325, "I", [len(body)]),
        ]
    else:
        entries += [(273, "I", [0]), (278, "I", [height]), (279, "I", [len(body)])]
    entries.sort()
    ifd_size = 2 + 12 * len(entries) + 4
    extra = bytearray()
    ifd = struct.pack("<H", len(entries))
    extra_start = 8 + ifd_size
    data_offset = extra_start + 2 * len(per_sample) + 16
    for tag, code, value in entries:
        if isinstance(value, bytes):
            count = len(value) // 2
            if len(value) <= 4:
                field = value.ljust(4, b"\0")
            else:
                field = struct.pack("<I", extra_start + len(extra))
                extra += value
        else:
            count = 1
            number = data_offset if tag in (273, 324) else value[0]
            field = struct.pack("<" + code, number).ljust(4, b"\0")
        ifd += struct.pack("<HHI", tag, _TIFF_TYPES[code], count) + field
    ifd += struct.pack("<I", 0)
    extra = bytes(extra).ljust(data_offset - extra_start, b"\0")
    return b"II*\0" + struct.pack("<I", 8) + ifd + extra + body


def scan_bomb(side: int, extra_scans: int) -> bytes:
    """A progressive JPEG of side x side flat grey whose last scan (a refinement) is repeated
    `extra_scans` more times: each copy, a few bytes, is another full pass of the decoder over
    the image."""
    pixels = np.full((side, side), 128, np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", progressive=True, quality=90)
    data = buffer.getvalue()
    last_scan = data.rfind(b"\xff\xda")
    end = data.rfind(b"\xff\xd9")
    return data[:end] + data[last_scan:end] * extra_scans + data[end:]
