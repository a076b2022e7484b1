"""Fuzz `fiqa score` with hostile files and check issue 14's guarantees: the run completes,
every input gets exactly one row, in input order, and no input takes the process past a
memory limit or a timeout (the child runs under `tests/limited_run.py`). Issue 30 added
headers with decoy sizes, tiled and float TIFFs, a scan bomb and a link planted among the
crops."""

from __future__ import annotations

import csv
import io
import json
import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from hostile_files import hdr_decoy, jp2_decoy, pam_decoy, scan_bomb, tiff
from limited_run import run_fiqa

from fiqa_cli.runtime.crop_files import crop_name
from fiqa_cli.runtime.rows import ERROR, NO_FACE, OK, UNREADABLE

SEED = 14
CORRUPTIONS_PER_PHOTO = 6
STATUSES = {OK, NO_FACE, UNREADABLE, ERROR}


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bomb(path: Path, side: int) -> Path:
    """A real grey PNG of side x side zero pixels: a few MB that decode to side² bytes."""
    compressor = zlib.compressobj(1)
    rows = bytes(side + 1) * 100  # filter byte + pixels, a hundred rows at a time
    data = b"".join(compressor.compress(rows) for _ in range(side // 100)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", data)
        + _png_chunk(b"IEND", b"")
    )
    return path


def jpeg_claiming(jpeg: bytes, width: int, height: int) -> bytes:
    """`jpeg` with its frame header patched to claim width x height."""
    frame = jpeg.find(b"\xff\xc0")
    patched = bytearray(jpeg)
    patched[frame + 5 : frame + 9] = struct.pack(">HH", height, width)
    return bytes(patched)


def corrupted(data: bytes, rng: np.random.Generator) -> bytes:
    """One random corruption: bytes overwritten, a cut, an insertion or a shuffled block."""
    data = bytearray(data)
    kind = rng.integers(4)
    if kind == 0:
        for position in rng.integers(0, len(data), rng.integers(1, 40)):
            data[position] = int(rng.integers(256))
    elif kind == 1:
        data = data[: rng.integers(1, len(data))]
    elif kind == 2:
        position = int(rng.integers(len(data)))
        data[position:position] = (
            rng.integers(0, 256, rng.integers(1, 5000)).astype(np.uint8).tobytes()
        )
    else:
        start = int(rng.integers(len(data) - 64))
        block = np.frombuffer(bytes(data[start : start + 64]), np.uint8).copy()
        rng.shuffle(block)
        data[start : start + 64] = block.tobytes()
    return bytes(data)


@pytest.fixture(scope="module")
def hostile_inputs(lfw_images: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(SEED)
    made: list[Path] = []

    def add(name: str, data: bytes | None = None) -> Path:
        path = folder / name
        if data is not None:
            path.write_bytes(data)
        made.append(path)
        return path

    photos = sorted(lfw_images.glob("*/*_0001.jpg"))[:4]
    for index, photo in enumerate(photos):
        jpeg = photo.read_bytes()
        png = cv2.imencode(".png", cv2.imread(str(photo)))[1].tobytes()
        add(f"photo{index}.jpg", jpeg)
        for copy in range(CORRUPTIONS_PER_PHOTO):
            add(f"photo{index}_broken{copy}.jpg", corrupted(jpeg, rng))
            add(f"photo{index}_broken{copy}.png", corrupted(png, rng))
    jpeg = photos[0].read_bytes()
    add("jpeg_claims_30000.jpg", jpeg_claiming(jpeg, 30000, 30000))
    add("jpeg_claims_65535.jpg", jpeg_claiming(jpeg, 65535, 65535))
    made.append(png_bomb(folder / "png_bomb_30000.png", 30000))
    huge = struct.pack(">IIBBBBB", 2**31 - 1, 2**31 - 1, 8, 2, 0, 0, 0)
    add("png_header_2e9.png", b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", huge))
    bmp_header = struct.pack("<Iii", 40, 50000, -50000)
    add("bmp_claims_huge.bmp", b"BM" + bytes(12) + bmp_header + bytes(200))
    add("gif_claims_huge.gif", b"GIF89a" + struct.pack("<HH", 65535, 65535) + bytes(100))
    tags = struct.pack("<HHHIIHHII", 2, 256, 4, 1, 200000, 257, 4, 1, 200000)
    add("tiff_claims_huge.tif", b"II*\x00\x08\x00\x00\x00" + tags + bytes(64))
    # issue 30: each of these cost 1-4 GB or minutes before the budget read what the
    # decoder reads (the decoys are small: they must only get their rows)
    add("decoy.hdr", hdr_decoy(300, 200))
    add("decoy.jp2", jp2_decoy(300, 200))
    add("decoy.pam", pam_decoy(300, 200))
    add("tiles_16384x16000.tif", tiff(64, 64, samples=4, tile=(16384, 16000)))
    add("float32_100mp.tif", tiff(10000, 10000, bits=32, floats=True, strip_rows=64))
    add("scans_1000.jpg", scan_bomb(10000, 1000))
    add("empty.jpg", b"")
    add("random.jpg", rng.integers(0, 256, 5000).astype(np.uint8).tobytes())
    add("magic_only.png", b"\x89PNG\r\n\x1a\n")
    add("jpeg_magic_only.jpg", b"\xff\xd8")
    add("zero.jpg").symlink_to("/dev/zero")
    add("urandom.jpg").symlink_to("/dev/urandom")
    add("broken_link.jpg").symlink_to(folder / "nowhere.jpg")
    os.mkfifo(add("fifo.jpg"))
    add("folder.jpg").mkdir()
    order = rng.permutation(len(made))
    return [made[index] for index in order]


@pytest.mark.parametrize("detector", ["none", "mtcnn"])
def test_hostile_inputs_each_get_one_row_within_memory_and_time(
    random_onnx_model: Path, hostile_inputs: list[Path], detector: str, tmp_path: Path
) -> None:
    crops = tmp_path / "crops"
    crops.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    photo = next(path for path in hostile_inputs if path.name == "photo0.jpg")
    (crops / crop_name(str(photo), 0)).symlink_to(victim)
    done = run_fiqa(
        ["score", "--model", random_onnx_model, "--detector", detector, "--device", "cpu"]
        + ["--workers", "2", "--format", "jsonl", "-q", "--save-crops", crops, *hostile_inputs]
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    rows = [
        json.loads(line, parse_constant=pytest.fail) for line in done.stdout.decode().splitlines()
    ]
    assert [row["path"] for row in rows] == [str(path) for path in hostile_inputs]
    assert all(row["status"] in STATUSES for row in rows)
    by_name = {Path(row["path"]).name: row for row in rows}
    unreadable = ("zero.jpg", "urandom.jpg", "fifo.jpg", "folder.jpg", "png_bomb_30000.png")
    unreadable += ("tiles_16384x16000.tif", "float32_100mp.tif", "scans_1000.jpg")
    for name in unreadable:
        assert by_name[name]["status"] == UNREADABLE, by_name[name]
    assert by_name["photo0.jpg"]["status"] == OK
    assert "crop not saved" in by_name["photo0.jpg"]["message"]
    assert victim.read_bytes() == b"precious"
    assert not [row for row in rows if row["status"] == ERROR], "raw exceptions leaked"


def test_hostile_stdin_lines_each_get_one_row(random_onnx_model: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(SEED)
    lines = [bytes(rng.integers(1, 256, rng.integers(1, 300)).astype(np.uint8)) for _ in range(40)]
    lines = [line.replace(b"\n", b"_").replace(b"\r", b"_") for line in lines]
    lines += [b"/dev/zero", b"/dev/stdin", b"a\0b.jpg", b"x" * 5000, b"\xff\xfe.jpg"]
    lines = [line for line in lines if line.decode("utf-8", "surrogateescape").strip()]
    done = run_fiqa(
        ["score", "--model", random_onnx_model, "--detector", "none", "--device", "cpu", "-q"]
        + ["--out", tmp_path / "rows.csv", "-"],
        stdin=b"\n".join(lines) + b"\n",
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]
    text = (tmp_path / "rows.csv").read_text(encoding="utf-8", errors="surrogateescape")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    expected = [line.decode("utf-8", "surrogateescape") for line in lines]
    assert [row["path"] for row in rows] == expected
    assert all(row["status"] == UNREADABLE for row in rows)
