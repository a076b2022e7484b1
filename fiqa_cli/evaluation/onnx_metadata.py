"""Setting metadata properties of an ONNX model file without the `onnx` package, which only
the training extra installs: `fiqa calibrate` runs on the scoring install.

An ONNX file is one serialised `ModelProto`. Its metadata properties are the repeated field 14,
each a `StringStringEntryProto` (key = field 1, value = field 2). Protocol buffers allow the
top-level fields in any order, so the file's other fields are copied byte for byte, the entries
with the keys being set are dropped, and the new entries are appended.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

_METADATA_PROPS = 14
_LENGTH_DELIMITED, _VARINT, _FIXED64, _FIXED32 = 2, 0, 1, 5


class OnnxFileError(ValueError):
    """The bytes are not a serialised ONNX model; the message says where they stop making sense."""


def with_metadata(model: bytes, properties: Mapping[str, str]) -> bytes:
    """`model` (a serialised ModelProto) with `properties` set, replacing any of the same key."""
    kept = bytearray()
    for number, wire_type, start, end, payload in _fields(model):
        if (
            number == _METADATA_PROPS
            and wire_type == _LENGTH_DELIMITED
            and _entry_key(payload) in properties
        ):
            continue
        kept += model[start:end]
    for key, value in properties.items():
        entry = _bytes_field(1, key.encode()) + _bytes_field(2, value.encode())
        kept += _bytes_field(_METADATA_PROPS, entry)
    return bytes(kept)


def _fields(data: bytes) -> Iterator[tuple[int, int, int, int, bytes]]:
    """(field number, wire type, start, end, payload) of each top-level field."""
    position = 0
    while position < len(data):
        start = position
        tag, position = _varint(data, position)
        number, wire_type = tag >> 3, tag & 7
        if number == 0:
            raise OnnxFileError(f"field number 0 at byte {start}")
        if wire_type == _VARINT:
            _, position = _varint(data, position)
            payload = b""
        elif wire_type == _LENGTH_DELIMITED:
            length, position = _varint(data, position)
            payload = data[position : position + length]
            position += length
        elif wire_type in (_FIXED64, _FIXED32):
            position += 8 if wire_type == _FIXED64 else 4
            payload = b""
        else:
            raise OnnxFileError(f"unknown wire type {wire_type} at byte {start}")
        if position > len(data):
            raise OnnxFileError(f"a field at byte {start} runs past the end of the file")
        yield number, wire_type, start, position, payload


def _entry_key(entry: bytes) -> str | None:
    for number, wire_type, _, _, payload in _fields(entry):
        if number == 1 and wire_type == _LENGTH_DELIMITED:
            return payload.decode("utf-8", errors="replace")
    return None


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise OnnxFileError(f"a number at byte {position} is cut off or too long")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, position


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _bytes_field(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | _LENGTH_DELIMITED) + _encode_varint(len(payload)) + payload
