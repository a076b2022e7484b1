"""Read insightface's MXNet RecordIO packs (`train.rec`, `train.idx`, `property`) without MXNet.

Format, as dmlc-core writes it and insightface packs CASIA-WebFace / MS1MV2:
- `train.idx`: text lines "index<TAB>byte offset into train.rec".
- Each record in `train.rec`: uint32 magic 0xced7230a, uint32 lrecord (upper 3 bits: continuation
  flag, lower 29 bits: length), the payload, zero padding to a multiple of 4 bytes. A payload
  that contains the magic at a 4-byte-aligned position is split there into parts flagged 1 (first),
  2 (middle), 3 (last); the reader joins them back with the magic between them. Flag 0 is a
  whole record.
- Payload: IRHeader '<IfQQ' (flag, label, id, id2); when flag > 0, `flag` float32 labels follow
  (and the `label` field is unused); then the encoded image.
- Record 0 of an insightface pack is a header record with flag > 0: label[0] is the index one past
  the last image record (images are records 1 .. label[0]-1) and label[1] is one past the last
  identity record (records label[0] .. label[1]-1 hold each identity's image range). Packs without
  it (flag 0 in record 0) are read as image records only.
- An image record's class is its label, or label[0] when it carries several.
- `property`: "num_classes,height,width".
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fiqa_cli.errors import FiqaError

RECORD_MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", RECORD_MAGIC)
_RECORD_HEADER = struct.Struct("<II")
_IR_HEADER = struct.Struct("<IfQQ")
_LENGTH_MASK = (1 << 29) - 1
_WHOLE, _FIRST, _MIDDLE, _LAST = 0, 1, 2, 3


class RecordIOError(FiqaError):
    """A pack that cannot be read as RecordIO; the message names the file and the record."""


@dataclass(frozen=True)
class IRHeader:
    flag: int
    labels: tuple[float, ...]
    id: int
    id2: int


def unpack_payload(payload: bytes) -> tuple[IRHeader, bytes]:
    """Split a record payload into its IRHeader and the bytes that follow (the encoded image)."""
    flag, label, record_id, record_id2 = _IR_HEADER.unpack_from(payload)
    body_start = _IR_HEADER.size + 4 * flag
    if flag > 0:
        labels = tuple(
            np.frombuffer(payload, np.float32, count=flag, offset=_IR_HEADER.size).tolist()
        )
    else:
        labels = (label,)
    return IRHeader(flag, labels, record_id, record_id2), payload[body_start:]


def read_index(idx_path: Path) -> dict[int, int]:
    offsets: dict[int, int] = {}
    with open(idx_path) as lines:
        for line_number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                index, offset = line.split("\t")
                offsets[int(index)] = int(offset)
            except ValueError:
                raise RecordIOError(
                    f"{idx_path}:{line_number}: expected 'index<TAB>offset', got {line!r}"
                ) from None
    return offsets


class IndexedRecordFile:
    """Random access to the records of a .rec file through its .idx file."""

    def __init__(self, rec_path: Path, idx_path: Path) -> None:
        self.rec_path = Path(rec_path)
        self.offsets = read_index(Path(idx_path))
        self._file = None
        self._file_pid = -1

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers each open their own handle; a shared one would interleave seeks.
        return {**self.__dict__, "_file": None, "_file_pid": -1}

    def _handle(self):
        if self._file is None or self._file_pid != os.getpid():
            self._file = open(self.rec_path, "rb")  # noqa: SIM115 - lives as long as the reader
            self._file_pid = os.getpid()
        return self._file

    def read(self, index: int) -> bytes:
        """The payload of record `index`, its parts joined."""
        if index not in self.offsets:
            raise RecordIOError(f"record {index} is not in the index of {self.rec_path}")
        stream = self._handle()
        stream.seek(self.offsets[index])
        parts = []
        while True:
            position = stream.tell()
            head = stream.read(_RECORD_HEADER.size)
            if len(head) < _RECORD_HEADER.size:
                raise RecordIOError(
                    f"record {index} of {self.rec_path} is truncated: the file ends inside its "
                    f"header at byte {position}"
                )
            magic, lrecord = _RECORD_HEADER.unpack(head)
            if magic != RECORD_MAGIC:
                raise RecordIOError(
                    f"record {index} of {self.rec_path}: no RecordIO magic at byte {position} "
                    f"(found {magic:#010x}); is the .idx file from another pack?"
                )
            continuation, length = lrecord >> 29, lrecord & _LENGTH_MASK
            padded = (length + 3) & ~3
            data = stream.read(padded)
            if len(data) < padded:
                raise RecordIOError(
                    f"record {index} of {self.rec_path} is truncated: {padded} bytes expected "
                    f"at byte {position + _RECORD_HEADER.size}, {len(data)} found"
                )
            parts.append(data[:length])
            if continuation in (_WHOLE, _LAST):
                return _MAGIC_BYTES.join(parts)


class RecordIODataset:
    """The images and class labels of an insightface RecordIO pack, as a map-style dataset.

    Items are (transform(rgb_uint8_112x112x3), label); without a transform, the RGB array itself.
    """

    def __init__(self, root: Path, transform: Callable[[np.ndarray], Any] | None = None) -> None:
        self.root = Path(root)
        self.records = IndexedRecordFile(self.root / "train.rec", self.root / "train.idx")
        self.transform = transform
        first, _ = unpack_payload(self.records.read(0))
        if first.flag > 0:
            images_end, identities_end = int(first.labels[0]), int(first.labels[1])
            self.record_indices = list(range(1, images_end))
            identity_count = identities_end - images_end
        else:
            self.record_indices = sorted(self.records.offsets)
            identity_count = None
        self.num_classes = self._read_class_count() or identity_count or self._count_labels()
        self.fingerprint = self._fingerprint()

    def _read_class_count(self) -> int | None:
        property_path = self.root / "property"
        if not property_path.is_file():
            return None
        return int(property_path.read_text().split(",")[0])

    def _count_labels(self) -> int:
        return 1 + max(int(self.read_label(i)) for i in range(len(self)))

    def _fingerprint(self) -> str:
        digest = hashlib.sha256(b"recordio\0")
        digest.update((self.root / "train.idx").read_bytes())
        digest.update(str(self.num_classes).encode())
        return digest.hexdigest()

    def __len__(self) -> int:
        return len(self.record_indices)

    def read_label(self, item: int) -> int:
        header, _ = unpack_payload(self.records.read(self.record_indices[item]))
        return int(header.labels[0])

    def __getitem__(self, item: int) -> tuple[Any, int]:
        record_index = self.record_indices[item]
        header, encoded = unpack_payload(self.records.read(record_index))
        bgr = cv2.imdecode(np.frombuffer(encoded, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise RecordIOError(
                f"record {record_index} of {self.records.rec_path}: image does not decode"
            )
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        return (self.transform(rgb) if self.transform else rgb), int(header.labels[0])
