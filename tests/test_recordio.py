"""The RecordIO reader against packs written by a minimal writer of the test's own."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from fiqa_cli.export.recordio import (
    IndexedRecordFile,
    RecordIODataset,
    RecordIOError,
    unpack_payload,
)

MAGIC = struct.pack("<I", 0xCED7230A)


class PackWriter:
    """Writes .rec/.idx the way dmlc-core does, splitting a payload at aligned magic numbers."""

    def __init__(self, root: Path) -> None:
        self.rec = open(root / "train.rec", "wb")  # noqa: SIM115 - closed in close()
        self.idx = open(root / "train.idx", "w")  # noqa: SIM115

    def _part(self, flag: int, data: bytes) -> None:
        self.rec.write(MAGIC + struct.pack("<I", flag << 29 | len(data)) + data)
        self.rec.write(b"\0" * (-len(data) % 4))

    def write(self, index: int, payload: bytes) -> None:
        self.idx.write(f"{index}\t{self.rec.tell()}\n")
        splits = [i for i in range(0, len(payload) - 3, 4) if payload[i : i + 4] == MAGIC]
        start = 0
        for number, split in enumerate(splits):
            self._part(1 if number == 0 else 2, payload[start:split])
            start = split + 4
        self._part(3 if splits else 0, payload[start:])

    def close(self) -> None:
        self.rec.close()
        self.idx.close()


def pack_header(labels: list[float], record_id: int = 0, body: bytes = b"") -> bytes:
    if len(labels) == 1:
        return struct.pack("<IfQQ", 0, labels[0], record_id, 0) + body
    head = struct.pack("<IfQQ", len(labels), 0.0, record_id, 0)
    return head + np.asarray(labels, np.float32).tobytes() + body


@pytest.fixture(scope="module")
def face_jpegs(lfw_images: Path) -> list[tuple[bytes, int]]:
    """Nine real 112x112 face crops of three people, JPEG-encoded, with their class."""
    people = [d for d in sorted(lfw_images.iterdir()) if len(list(d.glob("*.jpg"))) >= 3][:3]
    encoded = []
    for label, person in enumerate(people):
        for path in sorted(person.glob("*.jpg"))[:3]:
            crop = cv2.resize(cv2.imread(str(path))[60:190, 60:190], (112, 112))
            encoded.append((cv2.imencode(".jpg", crop)[1].tobytes(), label))
    return encoded


def write_insightface_pack(root: Path, images: list[tuple[bytes, int]], classes: int) -> None:
    """Header record 0, image records 1..N, one record per identity, then `property`."""
    writer = PackWriter(root)
    images_end = len(images) + 1
    writer.write(0, pack_header([images_end, images_end + classes]))
    for index, (jpeg, label) in enumerate(images, start=1):
        # Alternate single labels and label vectors (whose first entry is the class).
        labels = [float(label)] if index % 2 else [float(label), 7.0]
        writer.write(index, pack_header(labels, index, jpeg))
    for label in range(classes):
        first = 1 + [lab for _, lab in images].index(label)
        writer.write(images_end + label, pack_header([first, first + 3]))
    writer.close()
    (root / "property").write_text(f"{classes},112,112")


def test_round_trip_of_images_and_labels(tmp_path: Path, face_jpegs) -> None:
    write_insightface_pack(tmp_path, face_jpegs, classes=3)
    dataset = RecordIODataset(tmp_path)

    assert len(dataset) == len(face_jpegs) and dataset.num_classes == 3
    for item, (jpeg, label) in enumerate(face_jpegs):
        rgb, read_label = dataset[item]
        expected = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), 1), cv2.COLOR_BGR2RGB)
        assert read_label == label
        assert np.array_equal(rgb, expected)
    # DataLoader workers receive pickled copies that open their own file handle.
    assert np.array_equal(pickle.loads(pickle.dumps(dataset))[4][0], dataset[4][0])


def test_a_pack_without_header_or_property_counts_its_labels(tmp_path: Path, face_jpegs) -> None:
    writer = PackWriter(tmp_path)
    for index, (jpeg, label) in enumerate(face_jpegs[:5]):
        writer.write(index, pack_header([float(label)], index, jpeg))
    writer.close()
    dataset = RecordIODataset(tmp_path, transform=lambda rgb: rgb.shape)
    assert len(dataset) == 5 and dataset.num_classes == 2
    assert dataset[0] == ((112, 112, 3), 0)


def test_payload_split_at_magic_numbers_is_joined(tmp_path: Path) -> None:
    payload = pack_header([3.0], 1, b"abcd" + MAGIC + b"efgh" + MAGIC + MAGIC + b"xyz")
    writer = PackWriter(tmp_path)
    writer.write(0, payload)
    writer.write(1, pack_header([4.0], 2, b"tail"))
    writer.close()
    records = IndexedRecordFile(tmp_path / "train.rec", tmp_path / "train.idx")
    assert records.read(0) == payload
    header, body = unpack_payload(records.read(1))
    assert (header.labels, header.id, body) == ((4.0,), 2, b"tail")


def test_truncated_pack_names_the_record(tmp_path: Path, face_jpegs) -> None:
    write_insightface_pack(tmp_path, face_jpegs, classes=3)
    offsets = IndexedRecordFile(tmp_path / "train.rec", tmp_path / "train.idx").offsets
    rec = tmp_path / "train.rec"
    # Cut the file inside the last image record (record 9), 50 bytes after its start.
    rec.write_bytes(rec.read_bytes()[: offsets[9] + 50])
    dataset = RecordIODataset(tmp_path)
    assert dataset[7][1] == 2
    with pytest.raises(RecordIOError, match=r"record 9 of .*train\.rec is truncated"):
        dataset[8]


def test_index_pointing_off_a_record_is_reported(tmp_path: Path) -> None:
    writer = PackWriter(tmp_path)
    writer.write(0, pack_header([0.0], 0, b"data"))
    writer.close()
    (tmp_path / "train.idx").write_text("0\t4\n")
    with pytest.raises(RecordIOError, match="record 0 .* no RecordIO magic at byte 4"):
        IndexedRecordFile(tmp_path / "train.rec", tmp_path / "train.idx").read(0)
