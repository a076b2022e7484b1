"""`fiqa report` (issue 17): the HTML page, parsed with html.parser."""

from __future__ import annotations

import base64
import csv
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from fiqa_cli.cli import main
from fiqa_cli.evaluation.report import (
    HISTOGRAM_BINS,
    MAX_REPORT_BYTES,
    MAX_THUMBNAILS,
    THUMBNAIL_MAX_BYTES,
)
from fiqa_cli.runtime.crop_files import crop_name
from fiqa_cli.runtime.rows import COLUMNS

JPEG_URI = "data:image/jpeg;base64,"


class Page(HTMLParser):
    """Per <h2> section: its text, its <img> sources, and its histogram bar titles."""

    def __init__(self, text: str):
        super().__init__()
        self.sections: dict[str, dict[str, list[str]]] = {}
        self._current: dict[str, list[str]] | None = None
        self._in: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in.append(tag)
        if self._current is not None and tag == "img":
            self._current["images"].append(dict(attrs)["src"])

    def handle_endtag(self, tag: str) -> None:
        if self._in:
            self._in.pop()

    def handle_data(self, data: str) -> None:
        if self._in and self._in[-1] == "h2":
            self._current = self.sections.setdefault(data, {"text": [], "images": [], "bars": []})
        elif self._current is not None:
            target = "bars" if self._in and self._in[-1] == "title" else "text"
            self._current[target].append(data)

    def text(self, section: str) -> str:
        return " ".join(" ".join(self.sections[section]["text"]).split())

    def thumbnails(self, section: str) -> list[str]:
        return [src for src in self.sections[section]["images"] if src.startswith(JPEG_URI)]


def write_scores(path: Path, rows: list[dict[str, object]], extra: tuple[str, ...] = ()) -> Path:
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=[*COLUMNS, *extra], restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


def ok_row(path: Path | str, quality: float, **other: object) -> dict[str, object]:
    box = {"x1": 70, "y1": 60, "x2": 180, "y2": 190}
    return {"path": path, "face": 0, "quality": quality, "status": "ok", **box, **other}


def run_report(*args: object):
    result = CliRunner().invoke(main, ["report", *map(str, args)])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


@pytest.fixture(scope="module")
def photos(lfw_images: Path) -> list[Path]:
    return sorted(lfw_images.glob("*/*_0001.jpg"))[:30]


def test_counts_histogram_thumbnails_and_missing_files(photos: list[Path], tmp_path: Path) -> None:
    qualities = np.linspace(0.1, 0.5, len(photos))
    rows = [ok_row(path, q) for path, q in zip(photos, qualities, strict=True)]
    missing = tmp_path / "gone" / "lowest.jpg"
    rows.append(ok_row(missing, 0.05))
    rows += [{"path": f"/x/{i}.jpg", "status": "no_face", "message": "no face"} for i in range(3)]
    rows.append({"path": "/x/bad.jpg", "status": "unreadable", "message": "truncated JPEG"})
    scores = write_scores(tmp_path / "scores.csv", rows)
    out = tmp_path / "report.html"
    result = run_report(scores, "--out", out, "--threshold", 0.3)
    assert result.exit_code == 0, result.output
    page = Page(out.read_text(encoding="utf-8"))

    counts = page.text("Rows per status").split()
    assert counts == ["file", "no_face", "ok", "unreadable", "total"] + [
        "scores.csv",
        "3",
        "31",
        "1",
        "35",
    ]
    bars = page.sections["Scores"]["bars"]
    assert len(bars) == HISTOGRAM_BINS
    assert sum(int(bar.rsplit(": ", 1)[1]) for bar in bars) == 31
    expected_rejected = int(np.sum(qualities < 0.3)) + 1  # and the missing file's 0.05
    assert f"rejects {expected_rejected} of 31" in page.text("Nearest the threshold")

    lowest = page.text("Lowest-scoring faces")
    assert lowest.startswith("no image 0.0500") and "lowest.jpg" in lowest
    # The missing file has a card without a picture; every other face has its thumbnail.
    assert len(page.thumbnails("Lowest-scoring faces")) == 23
    assert len(page.thumbnails("Highest-scoring faces")) == 24
    assert page.text("Highest-scoring faces").split()[0] == "0.5000"
    assert str(missing) in page.text("Missing images")
    thumbnail = base64.b64decode(page.thumbnails("Highest-scoring faces")[0][len(JPEG_URI) :])
    image = cv2.imdecode(np.frombuffer(thumbnail, np.uint8), cv2.IMREAD_COLOR)
    assert max(image.shape[:2]) <= 96
    band_text = page.text("Faces across the score range")
    assert band_text.count("% (quality") == 10


def test_quality_100_measures_and_reasons_are_shown(photos: list[Path], tmp_path: Path) -> None:
    rows = [
        ok_row(path, 0.1 + i / 100, quality_100=10 + i, sharpness=f"{i * 3}", reasons="blur")
        for i, path in enumerate(photos[:12])
    ]
    extra = ("quality_100", "sharpness", "reasons")
    scores = write_scores(tmp_path / "scores.csv", rows, extra)
    out = tmp_path / "report.html"
    assert run_report(scores, "--out", out).exit_code == 0
    text = out.read_text(encoding="utf-8")
    page = Page(text)
    assert "quality_100" in page.text("Scores")
    assert text.count("<svg class='histogram'") == 2
    lowest = page.text("Lowest-scoring faces")
    assert "quality_100 10" in lowest and "sharpness 0" in lowest and "blur" in lowest
    assert "quality_100" not in Page(_plain_report(photos, tmp_path)).text("Scores")


def _plain_report(photos: list[Path], tmp_path: Path) -> str:
    scores = write_scores(tmp_path / "plain.csv", [ok_row(photos[0], 0.2)])
    out = tmp_path / "plain.html"
    run_report(scores, "--out", out)
    return out.read_text(encoding="utf-8")


def test_thumbnails_come_from_saved_crops(tmp_path: Path) -> None:
    crops = tmp_path / "crops"
    crops.mkdir()
    original = "/photos/elsewhere/a.jpg"  # not on this machine; its crop is
    crop = np.full((112, 112, 3), 90, np.uint8)
    cv2.imwrite(str(crops / crop_name(original, 0)), crop)
    scores = write_scores(tmp_path / "scores.csv", [ok_row(original, 0.3)])
    out = tmp_path / "report.html"
    assert run_report(scores, "--out", out, "--crops", crops).exit_code == 0
    page = Page(out.read_text(encoding="utf-8"))
    assert len(page.thumbnails("Lowest-scoring faces")) == 1
    assert "Every face shown was found" in page.text("Missing images")
    run_report(scores, "--out", out)
    assert original in Page(out.read_text(encoding="utf-8")).text("Missing images")


def test_a_large_score_file_is_sampled_under_the_size_bound(tmp_path: Path) -> None:
    # Noise at thumbnail size (no smoothing resize) is the worst case for JPEG size; every row
    # has its own face index, so no thumbnail is shared; messages are longer than cards show.
    rng = np.random.default_rng(0)
    sources = []
    for index in range(4):
        source = tmp_path / f"noise_{index}.png"
        cv2.imwrite(str(source), rng.integers(0, 256, (96, 96, 3), dtype=np.uint8))
        sources.append(source)
    rows = [
        {"path": sources[index % 4], "face": index, "quality": quality, "status": "ok",
         "message": "m" * 400}
        for index, quality in enumerate(rng.random(100_000))
    ]  # fmt: skip
    scores = write_scores(tmp_path / "big.csv", rows)
    out = tmp_path / "report.html"
    assert run_report(scores, "--out", out, "--threshold", 0.5).exit_code == 0
    size = out.stat().st_size
    assert size < MAX_REPORT_BYTES
    images = re.findall(r"data:image/jpeg;base64,([A-Za-z0-9+/=]+)", out.read_text())
    assert 0 < len(set(images)) <= MAX_THUMBNAILS
    assert max(len(base64.b64decode(image)) for image in images) <= THUMBNAIL_MAX_BYTES
    assert "100000 rows, 100000 scored faces" in out.read_text()


def test_the_edc_plot_is_embedded(tmp_path: Path, photos: list[Path]) -> None:
    scores = write_scores(tmp_path / "scores.csv", [ok_row(photos[0], 0.2)])
    curve = {"discard_fraction": [0.0, 0.5], "fnmr": [0.2, 0.1], "remaining_mated": [10, 5]}
    table = [
        {"method": "fiqa", "fmr": 0.001, "threshold": 0.4, "fnmr@0": 0.2, "pauc@0.2": 0.04,
         "auc": 0.1, "curve": curve}
    ]  # fmt: skip
    edc = tmp_path / "edc.json"
    edc.write_text(json.dumps(table))
    out = tmp_path / "report.html"
    assert run_report(scores, "--out", out, "--edc", edc).exit_code == 0
    (png,) = Page(out.read_text(encoding="utf-8")).sections["EDC (edc.json)"]["images"]
    assert base64.b64decode(png.split(",", 1)[1]).startswith(b"\x89PNG")
    edc.write_text("{}")
    result = run_report(scores, "--out", out, "--edc", edc)
    assert result.exit_code == 1 and "not the JSON" in result.output


def test_a_file_that_is_not_a_score_file_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    result = run_report(bad, "--out", tmp_path / "r.html")
    assert result.exit_code == 1 and "not the fiqa CSV header" in result.output


# Issue 30: odd score files and --edc files are one line (or a page), never a traceback; each
# in a child process under a memory limit (a link to /dev/zero read whole took 3.4 GB).


def _report_child(*args: object):
    from limited_run import run_fiqa

    return run_fiqa(["report", *args], timeout=120)


@pytest.mark.parametrize("quality", ["nan", "inf", "-inf"], ids=["nan", "inf", "minus-inf"])
def test_a_non_finite_quality_is_one_error_line(tmp_path: Path, quality: str) -> None:
    scores = write_scores(tmp_path / "scores.csv", [ok_row("a.jpg", 0.5), ok_row("b.jpg", quality)])
    done = _report_child(scores, "--out", tmp_path / "r.html")
    assert done.returncode == 1 and done.stderr.startswith(b"Error: "), done.stderr
    assert b"scores.csv:3: not a fiqa score row" in done.stderr and done.stderr.count(b"\n") == 1


def test_extreme_scores_and_a_lone_surrogate_still_make_a_page(tmp_path: Path) -> None:
    rows = [ok_row("a.jpg", 1e308), ok_row("b.jpg", -1e308)]
    out = tmp_path / "r.html"
    done = _report_child(write_scores(tmp_path / "scores.csv", rows), "--out", out)
    assert done.returncode == 0, done.stderr
    bars = Page(out.read_text(encoding="utf-8")).sections["Scores"]["bars"]
    assert len(bars) == HISTOGRAM_BINS and sum(int(bar.rsplit(": ", 1)[1]) for bar in bars) == 2
    lone = tmp_path / "lone.jsonl"
    lone.write_text('{"path": "\\ud800.jpg", "face": 0, "quality": 0.5, "status": "ok"}\n')
    done = _report_child(lone, "--out", out)
    assert done.returncode == 0, done.stderr
    assert "\\ud800.jpg" in out.read_text(encoding="utf-8")


def test_odd_edc_files_are_one_error_line(tmp_path: Path) -> None:
    scores = write_scores(tmp_path / "scores.csv", [ok_row("a.jpg", 0.5)])
    curve = {"discard_fraction": [0.0, 0.5, 0.8], "fnmr": [0.2, 0.1], "remaining_mated": [9, 5]}
    table = [{"method": "fiqa", "fmr": 0.001, "threshold": 0.4, "pauc@0.2": 0.04, "curve": curve}]
    uneven = tmp_path / "edc.json"
    uneven.write_text(json.dumps(table))
    zero = tmp_path / "edc.png"
    zero.symlink_to("/dev/zero")
    for edc, reason in ((uneven, b"not the JSON"), (zero, b"not a regular file")):
        done = _report_child(scores, "--out", tmp_path / "r.html", "--edc", edc)
        assert done.returncode == 1 and reason in done.stderr, done.stderr
        assert done.stderr.startswith(b"Error: ") and done.stderr.count(b"\n") == 1


def test_a_card_with_measures_shows_the_lowest_scores_and_folds_the_rest(
    photos: list[Path], tmp_path: Path
) -> None:
    """`fiqa score --measures` rows carry about 40 columns: a card shows the three lowest
    scores in a line and folds every column under a <details> a reader opens."""
    from fiqa_cli.runtime.measure_kinds import MEASURE_NAMES

    extra = tuple(column for name in MEASURE_NAMES for column in (name, f"{name}_100"))
    scores_of = {name: 90 - 5 * index for index, name in enumerate(MEASURE_NAMES)}
    scores_of[MEASURE_NAMES[0]] = -1  # not assessed: never among the lowest
    row = ok_row(photos[0], 0.3)
    for name in MEASURE_NAMES:
        row[name] = "1.5"
        row[f"{name}_100"] = str(scores_of[name])
    scores = write_scores(tmp_path / "scores.csv", [row], extra)
    out = tmp_path / "report.html"
    assert run_report(scores, "--out", out).exit_code == 0
    text = out.read_text(encoding="utf-8")
    caption = text[text.index("<figcaption>") : text.index("</figcaption>")]
    visible, folded = caption.split("<details>")
    lowest = sorted((s, n) for n, s in scores_of.items() if s >= 0)[:3]
    assert "lowest: " + ", ".join(f"{name} {score}" for score, name in lowest) in visible
    assert len(visible) < 400 and "_100" not in visible
    assert all(f"{name}_100 {scores_of[name]}" in folded for name in MEASURE_NAMES)
