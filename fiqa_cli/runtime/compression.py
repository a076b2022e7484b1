"""How much an image file's own compression may have cost its pixels, read from its bytes.

A JPEG's quantisation tables say how coarsely it was stored: the luminance table is compared
with the tables libjpeg (IJG) writes for each quality 1-100, and the closest one's quality is
the file's (exact for files written by libjpeg and most software built on it: OpenCV, Pillow,
ImageMagick; the equivalent quality for a camera's or an editor's own tables, with how far they
are from it). Lossless formats store the pixels as they were given. Formats whose loss cannot
be read from the header (WebP's lossy VP8, AVIF, JPEG 2000, GIF's palette, OpenEXR's lossy
modes, a JPEG-compressed TIFF) give None: not assessed. Standard library only; the work is
bounded by the header walk's limit on segments, whatever the file holds.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from fiqa_cli.runtime.image_header import (
    JPEG_START_OF_SCAN,
    HeaderError,
    image_format,
    jpeg_segments,
    tiff_values,
)

# A lossless file counts as the best quality.
LOSSLESS_QUALITY = 100
_LOSSLESS_FORMATS = frozenset({"png", "bmp", "pnm", "sun_raster", "radiance"})
_WEBP_LOSSLESS = b"VP8L"
_TIFF_COMPRESSION = 259
# TIFF compressions that keep every sample: none (the default), LZW, Adobe and old deflate,
# PackBits, LZMA, Zstandard.
_TIFF_LOSSLESS = frozenset({1, 5, 8, 32946, 32773, 34925, 50000})
_JPEG_DQT = 0xDB
_LUMINANCE_TABLE = 0  # the table id encoders give the luminance (Y) component
# The JPEG standard's example luminance table (ITU-T T.81 Annex K), which libjpeg scales by
# quality, in natural (row by row) order.
_BASE_LUMINANCE = (
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip
# libjpeg's largest entry of an 8-bit (baseline) table and of a 16-bit one.
_LARGEST_ENTRY = {0: 255, 1: 32767}


@dataclass(frozen=True)
class JpegQuality:
    quality: int  # 1..100: the IJG quality whose luminance table is closest to the file's
    # sum |file's entry - that table's| / sum of the file's entries: 0 for libjpeg's own tables
    misfit: float


def file_quality(data: bytes) -> float | None:
    """The quality, 1..100, at which the image file in `data` stores its pixels: a JPEG's
    IJG-equivalent quality, LOSSLESS_QUALITY for a lossless file, None when the file does not
    say (or says it in a malformed header)."""
    kind = image_format(data)
    if kind == "jpeg":
        found = jpeg_quality(data)
        return None if found is None else float(found.quality)
    if kind in _LOSSLESS_FORMATS:
        return LOSSLESS_QUALITY
    if kind == "webp" and data[12:16] == _WEBP_LOSSLESS:
        return LOSSLESS_QUALITY
    if kind == "tiff":
        try:
            compression = tiff_values(data, {_TIFF_COMPRESSION}).get(_TIFF_COMPRESSION, 1)
        except (HeaderError, struct.error, IndexError, KeyError, ValueError):
            return None
        return LOSSLESS_QUALITY if compression in _TIFF_LOSSLESS else None
    return None


def jpeg_quality(data: bytes) -> JpegQuality | None:
    """The IJG quality of the JPEG in `data` from its luminance quantisation table (the last
    one given id 0 before the first scan); None when it has none or a DQT segment is
    malformed."""
    table = _luminance_table(data)
    if table is None:
        return None
    precision, entries = table
    exact = _IJG_QUALITY[precision].get(entries)
    if exact is not None:
        return JpegQuality(exact, 0.0)
    total = sum(entries)
    misfits = [
        sum(abs(a - b) for a, b in zip(ijg, entries, strict=True)) for ijg in _IJG[precision]
    ]
    best = min(range(100), key=misfits.__getitem__)
    return JpegQuality(best + 1, misfits[best] / total)


def _luminance_table(data: bytes) -> tuple[int, tuple[int, ...]] | None:
    """The precision (0: 8-bit, 1: 16-bit) and the 64 entries, in zigzag order, of table 0."""
    found = None
    try:
        for marker, position in jpeg_segments(data):
            if marker == JPEG_START_OF_SCAN:
                break
            if marker == _JPEG_DQT:
                tables = _dqt_tables(data, position)
                if tables is None:
                    return None
                found = tables.get(_LUMINANCE_TABLE, found)
    except (HeaderError, struct.error, IndexError, ValueError):
        return None
    return found


def _dqt_tables(data: bytes, position: int) -> dict[int, tuple[int, tuple[int, ...]]] | None:
    """The tables of the DQT segment whose length field is at `position`, by id; None when the
    segment is cut short, holds a partial table, an unknown precision or id, or a 0 entry."""
    (length,) = struct.unpack(">H", data[position : position + 2])
    end = position + length
    if end > len(data):
        return None
    tables = {}
    position += 2
    while position < end:
        precision, table_id = divmod(data[position], 16)
        if precision not in _LARGEST_ENTRY or table_id > 3:
            return None
        size = 64 * (precision + 1)
        body = data[position + 1 : position + 1 + size]
        if position + 1 + size > end:
            return None
        entries = struct.unpack(">64H" if precision else "64B", body)
        if 0 in entries:
            return None
        tables[table_id] = (precision, entries)
        position += 1 + size
    return tables


def _zigzag_order() -> tuple[int, ...]:
    """The natural index of each zigzag position: along the anti-diagonals, alternately up
    and down, as a DQT segment lists a table's entries."""
    cells = sorted(
        ((row, column) for row in range(8) for column in range(8)),
        key=lambda cell: (sum(cell), cell[0] if sum(cell) % 2 else cell[1]),
    )
    return tuple(8 * row + column for row, column in cells)


_BASE_ZIGZAG = tuple(_BASE_LUMINANCE[index] for index in _zigzag_order())


def _ijg_table(quality: int, precision: int) -> tuple[int, ...]:
    """libjpeg's luminance table at `quality` (jpeg_set_quality), in zigzag order; 8-bit
    tables capped at 255 as baseline encoders write them."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    largest = _LARGEST_ENTRY[precision]
    return tuple(min(largest, max(1, (base * scale + 50) // 100)) for base in _BASE_ZIGZAG)


# Each precision's tables for the qualities 1..100, computed once.
_IJG = {
    precision: [_ijg_table(quality, precision) for quality in range(1, 101)]
    for precision in _LARGEST_ENTRY
}
# Each precision's table -> its quality, the lowest of equal tables as the search above picks:
# libjpeg's own tables, which nearly every file has, found without comparing all 100
# (the search is most of `fiqa score --measures`' cost of reading a file's quality).
_IJG_QUALITY = {
    precision: {table: index + 1 for index, table in reversed(list(enumerate(tables)))}
    for precision, tables in _IJG.items()
}
