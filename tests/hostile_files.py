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
    strip_rows: int | None = None,
) -> bytes:
    """A deflated TIFF of zero samples: in strips of `strip_rows` (default: one strip), or in
    one `tile` (width, length) that may be far larger than the image. Zeros compress about
    1000:1 and every strip points at the same compressed data, so a file of a few MB can hold
    gigabytes of samples."""
    area = tile or (width, min(strip_rows or height, height))
    compressor = zlib.compressobj(9)
    row = bytes(area[0] * samples * bits // 8)
    body = b"".join(compressor.compress(row) for _ in range(area[1])) + compressor.flush()
    pieces = 1 if tile else -(-height // area[1])
    entries = {
        256: ("I", [width]),
        257: ("I", [height]),
        258: ("H", [bits] * samples),
        259: ("H", [_DEFLATE]),
        262: ("H", [2 if samples >= 3 else 1]),
        277: ("H", [samples]),
        284: ("H", [1]),
        339: ("H", [_FLOAT if floats else 1] * samples),
    }
    offsets, counts = (324, 325) if tile else (273, 279)
    if tile:
        entries |= {322: ("I", [tile[0]]), 323: ("I", [tile[1]])}
    else:
        entries[278] = ("I", [area[1]])
    entries |= {offsets: ("I", [0] * pieces), counts: ("I", [len(body)] * pieces)}
    extra_start = 8 + 2 + 12 * len(entries) + 4
    extra_size = sum(len(values) * 4 for _, values in entries.values())  # room for all
    entries[offsets] = ("I", [extra_start + extra_size] * pieces)
    ifd, extra = struct.pack("<H", len(entries)), b""
    for tag, (code, values) in sorted(entries.items()):
        packed = struct.pack(f"<{len(values)}{code}", *values)
        if len(packed) > 4:
            field, extra = struct.pack("<I", extra_start + len(extra)), extra + packed
        else:
            field = packed.ljust(4, b"\0")
        ifd += struct.pack("<HHI", tag, _TIFF_TYPES[code], len(values)) + field
    ifd += struct.pack("<I", 0)
    return b"II*\0" + struct.pack("<I", 8) + ifd + extra.ljust(extra_size, b"\0") + body


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
