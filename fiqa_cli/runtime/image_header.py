"""An image's width and height from its header, read before anything is decoded.

A 3 MB PNG can decode to 32000x32000 pixels (6 GB): the pixel budget has to be checked on the
header. Every format OpenCV's `imdecode` recognises by its signature is covered, so a file
whose size cannot be read here is one OpenCV would not decode either.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable

_Reader = Callable[[bytes], tuple[int, int]]

_JPEG_STANDALONE = {0x01, *range(0xD0, 0xDA)}
_JPEG_FRAME_HEADERS = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_START_OF_SCAN = 0xDA
_TIFF_WIDTH, _TIFF_HEIGHT = 256, 257
_TIFF_TYPES = {3: "H", 4: "I"}  # SHORT, LONG
_PNM_TOKEN = re.compile(rb"(?:\s|#[^\n]*\n?)*(\S+)")
_HDR_RESOLUTION = re.compile(rb"\n\n([-+][YX]) (\d+) ([-+][YX]) (\d+)")


class HeaderError(ValueError):
    """The file has an image signature but its header is cut short or malformed."""


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header of an image in `data`; None when `data` has no
    image signature OpenCV knows. HeaderError when the signature is there but the header is
    broken."""
    reader = _reader_for(data)
    if reader is None:
        return None
    try:
        width, height = reader(data)
    except (struct.error, IndexError, KeyError, ValueError):
        raise HeaderError("corrupt image header") from None
    if width <= 0 or height <= 0:
        raise HeaderError(f"image header gives no size ({width}x{height})")
    return width, height


def _reader_for(data: bytes) -> _Reader | None:
    if data[4:8] == b"ftyp":  # ISO media (AVIF): the signature is the box type, not byte 0
        return _avif
    return next((reader for signature, reader in _READERS if data.startswith(signature)), None)


def _png(data: bytes) -> tuple[int, int]:
    if data[12:16] != b"IHDR":
        raise ValueError
    return struct.unpack(">II", data[16:24])


def _jpeg(data: bytes) -> tuple[int, int]:
    position = 2
    while True:
        if data[position] != 0xFF:
            raise ValueError
        while data[position] == 0xFF:  # fill bytes may pad any marker
            position += 1
        marker = data[position]
        position += 1
        if marker in _JPEG_STANDALONE:
            continue
        if marker == _JPEG_START_OF_SCAN:
            raise ValueError  # image data before any frame header
        (length,) = struct.unpack(">H", data[position : position + 2])
        if marker in _JPEG_FRAME_HEADERS:
            height, width = struct.unpack(">HH", data[position + 3 : position + 7])
            return width, height
        position += length


def _bmp(data: bytes) -> tuple[int, int]:
    (header_size,) = struct.unpack("<I", data[14:18])
    if header_size == 12:  # OS/2 BITMAPCOREHEADER
        return struct.unpack("<HH", data[18:22])
    width, height = struct.unpack("<ii", data[18:26])
    return width, abs(height)  # a negative height means rows stored top-down


def _webp(data: bytes) -> tuple[int, int]:
    if data[8:12] != b"WEBP":
        raise ValueError
    chunk = data[12:16]
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    raise ValueError


def _gif(data: bytes) -> tuple[int, int]:
    return struct.unpack("<HH", data[6:10])


def _tiff(data: bytes) -> tuple[int, int]:
    order = "<" if data[:2] == b"II" else ">"
    (offset,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[offset : offset + 2])
    found: dict[int, int] = {}
    for index in range(count):
        entry = data[offset + 2 + 12 * index : offset + 14 + 12 * index]
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag in (_TIFF_WIDTH, _TIFF_HEIGHT):
            code = _TIFF_TYPES[kind]
            found[tag] = struct.unpack(order + code, entry[8 : 8 + struct.calcsize(code)])[0]
    return found[_TIFF_WIDTH], found[_TIFF_HEIGHT]


def _pnm(data: bytes) -> tuple[int, int]:
    header = data[:4096]
    if header[:2] == b"P7":  # PAM: WIDTH and HEIGHT lines
        fields = dict(re.findall(rb"^(WIDTH|HEIGHT)\s+(\d+)", header, re.MULTILINE))
        return int(fields[b"WIDTH"]), int(fields[b"HEIGHT"])
    tokens = _PNM_TOKEN.findall(header[2:], 0)[:2]
    return int(tokens[0]), int(tokens[1])


def _jp2(data: bytes) -> tuple[int, int]:
    box = data.find(b"ihdr")
    if box < 0:
        raise ValueError
    height, width = struct.unpack(">II", data[box + 4 : box + 12])
    return width, height


def _j2k(data: bytes) -> tuple[int, int]:
    width, height, x_offset, y_offset = struct.unpack(">IIII", data[8:24])
    return width - x_offset, height - y_offset


def _sun_raster(data: bytes) -> tuple[int, int]:
    return struct.unpack(">II", data[4:12])


def _radiance(data: bytes) -> tuple[int, int]:
    match = _HDR_RESOLUTION.search(data[:65536])
    if match is None:
        raise ValueError
    sizes = {match[1][1:]: int(match[2]), match[3][1:]: int(match[4])}
    return sizes[b"X"], sizes[b"Y"]


def _exr(data: bytes) -> tuple[int, int]:
    position = 8
    while data[position] != 0:  # attributes: name\0 type\0 size value, up to an empty name
        name_end = data.index(b"\0", position)
        type_end = data.index(b"\0", name_end + 1)
        (size,) = struct.unpack("<i", data[type_end + 1 : type_end + 5])
        value = type_end + 5
        if data[position:name_end] == b"dataWindow":
            x_min, y_min, x_max, y_max = struct.unpack("<iiii", data[value : value + 16])
            return x_max - x_min + 1, y_max - y_min + 1
        position = value + size
    raise ValueError


def _avif(data: bytes) -> tuple[int, int]:
    box = data.find(b"ispe")  # image spatial extents: version/flags, width, height
    if box < 0:
        raise ValueError
    return struct.unpack(">II", data[box + 8 : box + 16])


_READERS = (
    (b"\x89PNG\r\n\x1a\n", _png),
    (b"\xff\xd8", _jpeg),
    (b"BM", _bmp),
    (b"RIFF", _webp),
    (b"GIF87a", _gif),
    (b"GIF89a", _gif),
    (b"II*\x00", _tiff),
    (b"MM\x00*", _tiff),
    *((b"P" + bytes([kind]), _pnm) for kind in b"1234567Ff"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", _jp2),
    (b"\xff\x4f\xff\x51", _j2k),
    (b"\x59\xa6\x6a\x95", _sun_raster),
    (b"#?RADIANCE", _radiance),
    (b"#?RGBE", _radiance),
    (b"\x76\x2f\x31\x01", _exr),
)
