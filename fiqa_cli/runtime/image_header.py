"""What decoding an image will cost, read from its header before anything is decoded.

A 3 MB PNG can decode to 32000x32000 pixels (6 GB): the pixel budget has to be checked on the
header. Every format OpenCV's `imdecode` recognises by its signature is covered, so a file
whose size cannot be read here is one OpenCV would not decode either. The size is read where
the decoder reads it (a JPEG 2000 codestream's SIZ marker, not a box that only looks like the
header; a Radiance line after the header's blank line; a PAM header up to ENDHDR), and a header
that gives a size twice, or in a form the decoder might read otherwise, is refused: a decoy
size must never be the one the budget sees. Besides the size: the bytes a pixel takes in the
decoder's buffers, the largest tile or strip it holds besides the image, and a JPEG's scans.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class ImageHeader:
    """What the decoder will hold for an image: `width` x `height` pixels of `pixel_bytes`
    bytes each (16-bit RGBA, 8 bytes, unless the header says more), and a tile or strip
    buffer of `tile_bytes` besides; `scans`, a JPEG's count of scans (each one a full pass of
    the decoder over the image)."""

    width: int
    height: int
    pixel_bytes: int = 8
    tile_bytes: int = 0
    scans: int = 1

    @property
    def decoded_bytes(self) -> int:
        return self.width * self.height * self.pixel_bytes + self.tile_bytes


_Reader = Callable[[bytes], ImageHeader | tuple[int, int]]

_JPEG_STANDALONE = {0x01, *range(0xD0, 0xDA)}
_JPEG_FRAME_HEADERS = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
JPEG_START_OF_SCAN = 0xDA
_JPEG_FILL = re.compile(rb"\xff*")
_JPEG_SCAN_MARKER = b"\xff\xda"
# Ordinary JPEGs have a dozen segments before the frame header; walking millions of tiny ones
# (a 256 MB file of them) would take a minute of Python.
_JPEG_MAX_HEADER_SEGMENTS = 1000
_TIFF_WIDTH, _TIFF_HEIGHT, _TIFF_BITS, _TIFF_SAMPLES = 256, 257, 258, 277
_TIFF_ROWS_PER_STRIP, _TIFF_TILE_WIDTH, _TIFF_TILE_LENGTH = 278, 322, 323
_TIFF_TAGS = {_TIFF_WIDTH, _TIFF_HEIGHT, _TIFF_BITS, _TIFF_SAMPLES, _TIFF_ROWS_PER_STRIP}
_TIFF_TAGS |= {_TIFF_TILE_WIDTH, _TIFF_TILE_LENGTH}
_TIFF_TYPES = {3: "H", 4: "I"}  # SHORT, LONG
# OpenCV reads some TIFFs (YCbCr, palettes, odd bit depths) through libtiff's RGBA interface,
# whose tile buffer holds 4 bytes a pixel whatever the samples are.
_TIFF_RGBA_BYTES = 4
_PNM_TOKEN = re.compile(rb"(?:\s|#[^\n]*\n?)*(\S+)")
_PAM_FIELDS = (b"WIDTH", b"HEIGHT", b"DEPTH", b"MAXVAL")
_PNM_HEADER_BYTES = 4096
# OpenCV reads a Radiance header with fgets into 128 bytes: a longer line would be read as two,
# so a file with one is refused rather than read differently from the decoder.
_HDR_LINE_BYTES = 127
_HDR_HEADER_LINES = 64
_HDR_RESOLUTION = re.compile(rb"-Y ([1-9]\d{0,8}) \+X ([1-9]\d{0,8})")
_HDR_PIXEL_BYTES = 12  # three float32 samples
_PFM_PIXEL_BYTES = {b"PF": 12, b"Pf": 4}
_J2K_SIZ = b"\xff\x4f\xff\x51"
_JP2_MAX_BOXES = 1000  # before the codestream; ordinary files have 3 to 10
_EXR_MAX_ATTRIBUTES = 1000  # ordinary files have about 10
_J2K_SAMPLE_BYTES = 4  # OpenJPEG decodes every sample to an int32


class HeaderError(ValueError):
    """The file has an image signature but its header is cut short or malformed."""


def read_header(data: bytes) -> ImageHeader | None:
    """The header of the image in `data`; None when `data` has no image signature OpenCV
    knows. HeaderError when the signature is there but the header is broken, or gives its
    size twice."""
    reader = _reader_for(data)
    if reader is None:
        return None
    try:
        header = reader(data)
    except HeaderError:
        raise
    except (struct.error, IndexError, KeyError, ValueError):
        raise HeaderError("corrupt image header") from None
    if not isinstance(header, ImageHeader):
        header = ImageHeader(*header)
    if header.width <= 0 or header.height <= 0:
        raise HeaderError(f"image header gives no size ({header.width}x{header.height})")
    return header


def image_format(data: bytes) -> str | None:
    """The name of the format whose signature starts `data` (its reader's: "jpeg", "png",
    "webp", "tiff", "jp2", "avif", ...); None when OpenCV knows no such signature."""
    reader = _reader_for(data)
    return None if reader is None else reader.__name__.removeprefix("_")


def _reader_for(data: bytes) -> _Reader | None:
    if data[4:8] == b"ftyp":  # ISO media (AVIF): the signature is the box type, not byte 0
        return _avif
    return next((reader for signature, reader in _READERS if data.startswith(signature)), None)


def _png(data: bytes) -> tuple[int, int]:
    if data[12:16] != b"IHDR":
        raise ValueError
    return struct.unpack(">II", data[16:24])


def jpeg_segments(data: bytes) -> Iterator[tuple[int, int]]:
    """The marker of each segment of the JPEG in `data` and where its length field starts, up
    to and including the first start of scan (standalone markers skipped). HeaderError after
    _JPEG_MAX_HEADER_SEGMENTS; ValueError, IndexError or struct.error where the bytes break off
    or are no marker."""
    position = 2
    for _ in range(_JPEG_MAX_HEADER_SEGMENTS):
        if data[position] != 0xFF:
            raise ValueError
        position = _JPEG_FILL.match(data, position).end()  # fill bytes may pad any marker
        marker = data[position]
        position += 1
        if marker in _JPEG_STANDALONE:
            continue
        yield marker, position
        if marker == JPEG_START_OF_SCAN:
            return
        (length,) = struct.unpack(">H", data[position : position + 2])
        position += length
    raise HeaderError(f"JPEG header of more than {_JPEG_MAX_HEADER_SEGMENTS} segments")


def _jpeg(data: bytes) -> ImageHeader:
    marker, position = next(
        (marker, position)
        for marker, position in jpeg_segments(data)
        if marker in _JPEG_FRAME_HEADERS or marker == JPEG_START_OF_SCAN
    )
    if marker == JPEG_START_OF_SCAN:
        raise ValueError  # image data before any frame header
    (length,) = struct.unpack(">H", data[position : position + 2])
    height, width = struct.unpack(">HH", data[position + 3 : position + 7])
    # Every scan starts with the bytes FF DA, which entropy-coded data never holds (a 0xFF
    # there is followed by 0x00 or a restart marker): their count after the frame header
    # bounds the scans from above, at the speed of bytes.count.
    scans = data.count(_JPEG_SCAN_MARKER, position + length)
    return ImageHeader(width, height, scans=scans)


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


def tiff_values(data: bytes, tags: Collection[int]) -> dict[int, int]:
    """The first value of each of `tags` (SHORT or LONG) found in the first directory of the
    TIFF in `data`. HeaderError for a tag given twice with two values; KeyError, IndexError or
    struct.error where the directory is malformed."""
    order = "<" if data[:2] == b"II" else ">"
    (offset,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[offset : offset + 2])
    found: dict[int, int] = {}
    for index in range(count):
        entry = data[offset + 2 + 12 * index : offset + 14 + 12 * index]
        tag, kind, values = struct.unpack(order + "HHI", entry[:8])
        if tag not in tags:
            continue
        code = _TIFF_TYPES[kind]
        size = struct.calcsize(code)
        # the first value: in the entry when all of them fit in its 4 bytes, else at an offset
        start = offset + 10 + 12 * index
        if values * size > 4:
            (start,) = struct.unpack(order + "I", entry[8:12])
        (value,) = struct.unpack(order + code, data[start : start + size])
        if found.setdefault(tag, value) != value:
            raise HeaderError(f"TIFF header gives tag {tag} twice, as {found[tag]} and {value}")
    return found


def _tiff(data: bytes) -> ImageHeader:
    found = tiff_values(data, _TIFF_TAGS)
    width, height = found[_TIFF_WIDTH], found[_TIFF_HEIGHT]
    sample_bytes = max(1, found.get(_TIFF_BITS, 1) // 8)
    pixel_bytes = found.get(_TIFF_SAMPLES, 1) * sample_bytes
    if _TIFF_TILE_WIDTH in found or _TIFF_TILE_LENGTH in found:
        tile = found.get(_TIFF_TILE_WIDTH, width) * found.get(_TIFF_TILE_LENGTH, height)
    else:
        tile = width * min(found.get(_TIFF_ROWS_PER_STRIP, height), height)
    tile_bytes = tile * max(pixel_bytes, _TIFF_RGBA_BYTES)
    return ImageHeader(width, height, pixel_bytes, tile_bytes)


def _pnm(data: bytes) -> ImageHeader:
    header = data[:_PNM_HEADER_BYTES]
    if header[:2] == b"P7":
        return _pam(header)
    tokens = _PNM_TOKEN.findall(header[2:], 0)[:2]
    if header[:2] in _PFM_PIXEL_BYTES:
        return ImageHeader(int(tokens[0]), int(tokens[1]), _PFM_PIXEL_BYTES[header[:2]])
    return ImageHeader(int(tokens[0]), int(tokens[1]))


def _pam(header: bytes) -> ImageHeader:
    """PAM: lines of FIELD VALUE up to ENDHDR; what follows is pixels, however it reads."""
    fields: dict[bytes, int] = {}
    for line in header.split(b"\n")[1:]:
        words = line.split()
        if words == [b"ENDHDR"]:
            depth = fields.get(b"DEPTH", 1) * (2 if fields.get(b"MAXVAL", 255) > 255 else 1)
            return ImageHeader(fields[b"WIDTH"], fields[b"HEIGHT"], max(depth, 1))
        if len(words) >= 2 and words[0].upper() in _PAM_FIELDS:
            if words[0].upper() in fields:
                raise HeaderError(f"PAM header gives {words[0].decode()} twice")
            fields[words[0].upper()] = int(words[1])
    raise ValueError  # no ENDHDR within the header bytes


def _jp2(data: bytes) -> ImageHeader:
    """The size of a JP2 file is its codestream's, the first `jp2c` box among the top-level
    boxes; an `ihdr` elsewhere (in an `xml ` box, say) may say anything."""
    position = 0
    for _ in range(_JP2_MAX_BOXES):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        start = position + 8
        if length == 1:  # a 64-bit length follows the type
            (length,) = struct.unpack(">Q", data[start : start + 8])
            start += 8
        elif length == 0:  # the box runs to the end of the file
            length = len(data) - position
        if kind == b"jp2c":
            return _j2k(data, start)
        if length < start - position:
            raise ValueError
        position += length
    raise HeaderError(f"JPEG 2000 file of more than {_JP2_MAX_BOXES} boxes before its codestream")


def _j2k(data: bytes, start: int = 0) -> ImageHeader:
    if data[start : start + 4] != _J2K_SIZ:
        raise ValueError
    fields = struct.unpack(">IIII16xH", data[start + 8 : start + 42])
    width, height, x_offset, y_offset, components = fields
    return ImageHeader(width - x_offset, height - y_offset, components * _J2K_SAMPLE_BYTES)


def _sun_raster(data: bytes) -> tuple[int, int]:
    return struct.unpack(">II", data[4:12])


def _radiance(data: bytes) -> ImageHeader:
    """The size is the line after the header's first blank line, read as OpenCV reads it
    (`-Y H +X W`); any other spelling of it is refused, never looked for further on."""
    lines = data[: (_HDR_LINE_BYTES + 1) * _HDR_HEADER_LINES].split(b"\n")[:_HDR_HEADER_LINES]
    blank = lines.index(b"")  # ValueError: no blank line in the header
    if any(len(line) >= _HDR_LINE_BYTES or b"\0" in line for line in lines[: blank + 2]):
        raise HeaderError("Radiance header line too long or holding a NUL byte")
    match = _HDR_RESOLUTION.fullmatch(lines[blank + 1])
    if match is None:
        raise HeaderError("Radiance header has no '-Y HEIGHT +X WIDTH' line after its blank line")
    return ImageHeader(int(match[2]), int(match[1]), _HDR_PIXEL_BYTES)


def _exr(data: bytes) -> tuple[int, int]:
    position = 8
    # attributes: name\0 type\0 size value, up to an empty name; a negative size would walk
    # back and loop for ever, and their number is bounded as a JPEG's segments are
    for _ in range(_EXR_MAX_ATTRIBUTES):
        if data[position] == 0:
            break
        name_end = data.index(b"\0", position)
        type_end = data.index(b"\0", name_end + 1)
        (size,) = struct.unpack("<I", data[type_end + 1 : type_end + 5])
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
