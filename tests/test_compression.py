"""A file's compression quality read from its bytes (issue 31): JPEG quantisation tables on a
real LFW photo re-encoded, lossless and unreadable formats, and malformed or hostile tables."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from fiqa_cli.runtime.compression import LOSSLESS_QUALITY, file_quality, jpeg_quality
from fiqa_cli.runtime.detect import create_detector
from fiqa_cli.runtime.inputs import InputItem
from fiqa_cli.runtime.measure_kinds import Measure
from fiqa_cli.runtime.pipeline import Scorer
from fiqa_cli.runtime.profiles import judged, load_profile
from fiqa_cli.runtime.providers import CPU
from fiqa_cli.runtime.quality_model import QualityModel
from fiqa_cli.runtime.rows import OK, Row

PHOTO = "Aaron_Peirsol/Aaron_Peirsol_0001.jpg"
DQT = b"\xff\xdb"


@pytest.fixture(scope="module")
def image(lfw_images: Path) -> np.ndarray:
    return cv2.imread(str(lfw_images / PHOTO))


def encoded(image: np.ndarray, suffix: str, *flags: int) -> bytes:
    ok, buffer = cv2.imencode(suffix, image, list(flags))
    assert ok
    return buffer.tobytes()


def jpeg(image: np.ndarray, quality: int, *flags: int) -> bytes:
    return encoded(image, ".jpg", cv2.IMWRITE_JPEG_QUALITY, quality, *flags)


def first_dqt(data: bytes) -> tuple[int, int]:
    """Where the first DQT segment's marker starts and the length it gives."""
    start = data.index(DQT)
    (length,) = struct.unpack(">H", data[start + 2 : start + 4])
    return start, length


def with_segments(data: bytes, segments: bytes) -> bytes:
    """`data` with `segments` in place of its first DQT segment."""
    start, length = first_dqt(data)
    return data[:start] + segments + data[start + 2 + length :]


def dqt(*tables: tuple[int, int, list[int]]) -> bytes:
    """A DQT segment of (precision, id, 64 entries) tables."""
    body = b""
    for precision, table_id, entries in tables:
        body += bytes([16 * precision + table_id])
        body += struct.pack(">64H" if precision else "64B", *entries)
    return DQT + struct.pack(">H", 2 + len(body)) + body


def luminance_entries(data: bytes) -> list[int]:
    start, _ = first_dqt(data)
    assert data[start + 4] == 0  # 8-bit table 0 first, as libjpeg writes it
    return list(data[start + 5 : start + 69])


@pytest.mark.parametrize("progressive", [0, 1])
def test_reencoded_photo_gives_its_quality(image, progressive):
    """OpenCV writes libjpeg's own tables: the quality comes back exactly, and in order."""
    found = [
        jpeg_quality(jpeg(image, q, cv2.IMWRITE_JPEG_PROGRESSIVE, progressive))
        for q in (20, 50, 95)
    ]
    assert [each.quality for each in found] == [20, 50, 95]
    assert [each.misfit for each in found] == [0, 0, 0]


def test_a_table_of_another_encoder_gets_the_nearest_quality(image):
    """A table 10% coarser than libjpeg's quality 50 (its scale 110%, quality 45's) is no
    libjpeg table: quality 45 within 1, with its misfit said."""
    data = jpeg(image, 50)
    coarser = [min(255, round(entry * 1.1)) for entry in luminance_entries(data)]
    found = jpeg_quality(with_segments(data, dqt((0, 0, coarser))))
    assert found.quality == pytest.approx(45, abs=1)
    assert 0 < found.misfit < 0.05


def test_sixteen_bit_table_is_read(image):
    data = jpeg(image, 30)
    entries = luminance_entries(data)
    assert jpeg_quality(with_segments(data, dqt((1, 0, entries)))).quality == 30


def test_last_table_zero_before_the_scan_counts(image):
    data = jpeg(image, 80)
    coarse = luminance_entries(jpeg(image, 10))
    chroma = [99] * 64
    # one segment holding a chroma table and a first table 0, then a second table 0
    segments = dqt((0, 1, chroma), (0, 0, coarse)) + dqt((0, 0, luminance_entries(data)))
    assert jpeg_quality(with_segments(data, segments)).quality == 80
    assert jpeg_quality(with_segments(data, dqt((0, 1, chroma), (0, 0, coarse)))).quality == 10


@pytest.mark.parametrize(
    ("suffix", "flags", "expected"),
    [
        (".png", (), LOSSLESS_QUALITY),
        (".bmp", (), LOSSLESS_QUALITY),
        (".tif", (cv2.IMWRITE_TIFF_COMPRESSION, 1), LOSSLESS_QUALITY),
        (".tif", (cv2.IMWRITE_TIFF_COMPRESSION, 5), LOSSLESS_QUALITY),
        (".webp", (cv2.IMWRITE_WEBP_QUALITY, 101), LOSSLESS_QUALITY),
        (".webp", (cv2.IMWRITE_WEBP_QUALITY, 80), None),
        (".jp2", (), None),
    ],
)
def test_other_formats(image, suffix, flags, expected):
    assert file_quality(encoded(image, suffix, *flags)) == expected


def test_jpeg_qualities_in_order(image):
    qualities = [file_quality(jpeg(image, q)) for q in (20, 50, 95)]
    assert qualities == [20, 50, 95]


def _malformed(data: bytes) -> dict[str, bytes]:
    start, length = first_dqt(data)
    end = start + 2 + length
    entries = luminance_entries(data)
    return {
        "cut inside the table": data[: start + 30],
        "length past the file's end": data[: start + 2] + b"\xff\xf0" + data[start + 4 : end],
        "length shorter than its table": data[: start + 2] + b"\x00\x20" + data[start + 4 :],
        "precision 2": data[: start + 4] + b"\x20" + data[start + 5 :],
        "table id 5": data[: start + 4] + b"\x05" + data[start + 5 :],
        "a zero entry": with_segments(data, dqt((0, 0, [0] + entries[1:]))),
        "no table 0": with_segments(data, dqt((0, 1, entries))),
        "no DQT at all": with_segments(data, b""),
        "empty DQT": with_segments(data, DQT + b"\x00\x02"),
        "DQT bomb": with_segments(data, dqt((0, 0, entries)) * 5000),
        # 60 entries in the segment, the table's last 4 read from the next one (an APP1 of
        # nonzero bytes) unless the segment's end is kept to
        "table running past its segment": with_segments(
            data,
            DQT
            + struct.pack(">H", 63)
            + b"\x00"
            + bytes(entries[:60])
            + b"\xff\xe1\x01\x01"
            + b"\x01" * 255,
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "cut inside the table",
        "length past the file's end",
        "length shorter than its table",
        "precision 2",
        "table id 5",
        "a zero entry",
        "no table 0",
        "no DQT at all",
        "empty DQT",
        "DQT bomb",
        "table running past its segment",
    ],
)
def test_malformed_tables_are_not_assessed_quickly(image, case):
    data = _malformed(jpeg(image, 60))[case]
    started = time.perf_counter()
    assert jpeg_quality(data) is None
    assert file_quality(data) is None
    assert time.perf_counter() - started < 0.5


def test_the_pipeline_passes_the_files_quality(image, random_onnx_model: Path, tmp_path: Path):
    """--detector none on crop files: the crop's JPEG quality or 100 for a PNG, -1 for an
    image given decoded (a video frame)."""
    crop = cv2.resize(image[60:190, 60:190], (112, 112))
    paths = [tmp_path / "crop.jpg", tmp_path / "crop.png"]
    paths[0].write_bytes(jpeg(crop, 35))
    cv2.imwrite(str(paths[1]), crop)
    model = QualityModel(random_onnx_model, [CPU])
    items = [InputItem(str(path)) for path in paths]
    rows = [
        row
        for each in Scorer(model, None, measures=True).score(items, answer_each=False)
        for row in each
    ]
    assert [row.measures["compression_artifacts"].value for row in rows] == [35, LOSSLESS_QUALITY]
    assert [row.measures["compression_artifacts"].score for row in rows] == [35, 100]
    frames = Scorer(model, None, measures=True).score_images([("frame", crop)])
    assert next(frames)[0].measures["compression_artifacts"].score == -1


def test_a_detected_face_gets_its_files_quality(
    lfw_images: Path, shared_dir: Path, random_onnx_model: Path
):
    """Every LFW photo is stored at libjpeg's quality 75."""
    detector = create_detector("scrfd", shared_dir / "models" / "scrfd_2.5g_bnkps.onnx")
    scorer = Scorer(QualityModel(random_onnx_model, [CPU]), detector, measures=True)
    rows = next(scorer.score([InputItem(str(lfw_images / PHOTO))], answer_each=True))
    assert rows[0].measures["compression_artifacts"] == Measure(75, 75)


def test_a_requirement_on_the_quality_says_the_files_quality():
    profile = load_profile(None).with_overrides(["compression_artifacts=80.."])
    row = Row("a.jpg", OK, face=0, measures={"compression_artifacts": Measure(75.0, 75)})
    assert (
        judged(row, profile).reasons == "photo compressed too much: JPEG quality 75 (at least 80)"
    )


def test_mutated_headers_never_raise(image):
    """Bytes changed at random in the first 600 bytes of files of each kind, some cut short:
    a value or None, never an exception (one would lose the input's row)."""
    seeds = [encoded(image, suffix) for suffix in (".jpg", ".png", ".tif", ".webp", ".bmp")]
    seeds.append(jpeg(image, 70, cv2.IMWRITE_JPEG_PROGRESSIVE, 1))
    rng = np.random.default_rng(31)
    for index in range(3000):
        data = bytearray(seeds[index % len(seeds)][:600])
        for _ in range(rng.integers(1, 8)):
            data[rng.integers(0, len(data))] = rng.integers(0, 256)
        if rng.random() < 0.3:
            data = data[: rng.integers(2, len(data))]
        quality = file_quality(bytes(data))
        assert quality is None or 1 <= quality <= 100
