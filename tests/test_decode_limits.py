"""Issue 30, cases 1-3: what decoding one input costs is set by its header, read where the
decoder reads it: pixels, bytes a pixel (tiles and strips included) and a JPEG's scans. Each
file is scored by `fiqa score` in a child process under a memory limit and a timeout."""

from __future__ import annotations

import csv
import io
import struct
from pathlib import Path

import pytest
from hostile_files import hdr_decoy, jp2_decoy, pam_decoy, scan_bomb, tiff
from limited_run import run_fiqa

from fiqa_cli.runtime.decode import BUDGET_BYTES_PER_PIXEL, MAX_JPEG_SCANS
from fiqa_cli.runtime.image_header import read_header

CROP_ARGS = ("--detector", "none", "--device", "cpu", "--workers", "1")


def rows_of(model: Path, paths: list[Path], *args: object) -> dict[str, dict[str, str]]:
    done = run_fiqa(["score", "--model", model, *CROP_ARGS, *args, *paths], timeout=120)
    assert done.returncode in (0, 3), done.stderr.decode(errors="replace")
    rows = list(csv.DictReader(io.StringIO(done.stdout.decode(), newline="")))
    assert [row["path"] for row in rows] == [str(path) for path in paths]
    return {Path(row["path"]).name: row for row in rows}


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        ("decoy.hdr", hdr_decoy, "-Y HEIGHT +X WIDTH"),
        ("decoy.jp2", jp2_decoy, "300x200"),
        ("decoy.pam", pam_decoy, "300x200"),
        ("decoy_hdr.jpg", hdr_decoy, "-Y HEIGHT +X WIDTH"),  # decoded by signature, not name
    ],
    ids=["hdr", "jp2", "pam", "hdr-named-jpg"],
)
def test_a_decoy_size_in_the_header_is_not_the_one_budgeted(
    random_onnx_model, tmp_path, name, make, reason
) -> None:
    path = tmp_path / name
    path.write_bytes(make(300, 200))
    (row,) = rows_of(random_onnx_model, [path], "--max-pixels", 1000).values()
    assert row["status"] == "unreadable" and reason in row["message"], row


def test_a_pam_that_gives_its_width_twice_is_refused(random_onnx_model, tmp_path) -> None:
    path = tmp_path / "twice.pam"
    header = b"P7\nWIDTH 300\nHEIGHT 200\nWIDTH 1\nDEPTH 3\nMAXVAL 255\nENDHDR\n"
    path.write_bytes(header + bytes(300 * 200 * 3))
    (row,) = rows_of(random_onnx_model, [path]).values()
    assert row["status"] == "unreadable" and "WIDTH twice" in row["message"], row


@pytest.mark.parametrize(
    "spec",
    [
        {"width": 1000, "height": 1000, "bits": 64, "floats": True},
        {"width": 1000, "height": 1000, "bits": 32, "floats": True},
        {"width": 64, "height": 64, "samples": 4, "tile": (2048, 2048)},
    ],
    ids=["float64", "float32", "tiled"],
)
def test_bytes_a_pixel_and_tiles_count_in_the_budget(random_onnx_model, tmp_path, spec) -> None:
    path = tmp_path / "wide.tif"
    path.write_bytes(tiff(**spec))
    # a budget the pixels fit in but the decoder's buffers do not: image and strip or tile
    # buffer at their bytes a pixel (8 for 64-bit floats: 24 a pixel, twice)
    decoded_bytes = read_header(path.read_bytes()).decoded_bytes
    assert decoded_bytes >= 2 * spec["width"] * spec["height"] * BUDGET_BYTES_PER_PIXEL
    max_pixels = decoded_bytes // BUDGET_BYTES_PER_PIXEL - 1
    assert spec["width"] * spec["height"] < max_pixels
    (row,) = rows_of(random_onnx_model, [path], "--max-pixels", max_pixels).values()
    assert row["status"] == "unreadable", row
    assert f"{BUDGET_BYTES_PER_PIXEL} bytes for each pixel of --max-pixels" in row["message"]
    (row,) = rows_of(random_onnx_model, [path], "--max-pixels", 2 * max_pixels).values()
    assert row["status"] == "ok", row  # within twice that budget, it decodes


def test_a_jpeg_of_too_many_scans_is_refused_unread(random_onnx_model, tmp_path) -> None:
    bomb = tmp_path / "scans.jpg"
    bomb.write_bytes(scan_bomb(64, MAX_JPEG_SCANS))
    ordinary = tmp_path / "ordinary.jpg"
    ordinary.write_bytes(scan_bomb(64, 0))
    rows = rows_of(random_onnx_model, [bomb, ordinary])
    assert rows["scans.jpg"]["status"] == "unreadable"
    assert f"over the limit of {MAX_JPEG_SCANS}" in rows["scans.jpg"]["message"]
    assert rows["ordinary.jpg"]["status"] == "ok"


def test_headers_of_endless_segments_or_boxes_are_refused_at_once(tmp_path) -> None:
    from fiqa_cli.runtime.decode import DecodeError, read_image

    path = tmp_path / "segments.jpg"
    path.write_bytes(b"\xff\xd8" + b"\xff\xe0\x00\x02" * 1_000_000)  # 4 MB of empty APP0s
    with pytest.raises(DecodeError, match="more than 1000 segments"):
        read_image(path)
    path = tmp_path / "boxes.jp2"
    signature = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
    path.write_bytes(signature + b"\x00\x00\x00\x08free" * 1_000_000)  # 8 MB of empty boxes
    with pytest.raises(DecodeError, match="more than 1000 boxes"):
        read_image(path)


def test_an_exr_header_walking_backwards_ends(random_onnx_model, tmp_path) -> None:
    """Found with issue 30: an OpenEXR attribute of size -8 sent the header reader back to the
    same attribute for ever (a hang before any decoder ran)."""
    path = tmp_path / "loop.exr"
    attribute = b"a\0t\0" + struct.pack("<i", -8)
    path.write_bytes(b"\x76\x2f\x31\x01" + bytes(4) + attribute + bytes(10))
    (row,) = rows_of(random_onnx_model, [path]).values()  # run_fiqa's timeout ends a hang
    assert row["status"] == "unreadable" and "corrupt image header" in row["message"], row
