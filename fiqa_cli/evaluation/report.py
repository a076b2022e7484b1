"""`fiqa report`: one self-contained HTML page about score files, to look at before choosing a
threshold: counts per status, score histograms, the lowest- and highest-scoring faces, the
faces nearest a threshold, faces sampled across the score range, and an EDC plot.

Images are embedded as small JPEG thumbnails (no network, no JavaScript). Whatever the number
of rows, the page holds at most MAX_THUMBNAILS thumbnails of at most THUMBNAIL_MAX_BYTES each,
so it stays under MAX_REPORT_BYTES (20 MB) for any number of rows; only the status table grows,
by one line per score file.
"""

from __future__ import annotations

import base64
import html
import json
import math
import random
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fiqa_cli.errors import FiqaError
from fiqa_cli.evaluation.edc import EdcCurve
from fiqa_cli.evaluation.plot import plot_edc
from fiqa_cli.evaluation.results import MethodResult
from fiqa_cli.runtime.crop_files import crop_name
from fiqa_cli.runtime.decode import DecodeError, read_image
from fiqa_cli.runtime.input_file import InputFileError, read_input_bytes
from fiqa_cli.runtime.profiles import SCORE_SUFFIX
from fiqa_cli.runtime.rows import COLUMNS, OK, QUALITY_100, read_rows

MAX_REPORT_BYTES = 20 * 2**20
THUMBNAIL_SIDE = 96
THUMBNAIL_MAX_BYTES = 6_000  # a 96-pixel face is about 3 KB at JPEG quality 80; noise 7 KB
FACES_PER_SECTION = 24  # lowest, highest, and nearest the threshold
SCORE_BANDS = 10
FACES_PER_BAND = 8
MAX_THUMBNAILS = 3 * FACES_PER_SECTION + SCORE_BANDS * FACES_PER_BAND
MAX_LISTED_MISSING = 100
MAX_TEXT = 300  # characters of a message, reasons or measures shown under a face
HISTOGRAM_BINS = 40
REASONS = "reasons"
# Columns that place a `fiqa best` row; not measures of the face.
_PLACE_COLUMNS = ("group", "rank", "frame", "timestamp_ms")
# A face more than this far out of the crop box is still shown with some context.
_BOX_MARGIN = 0.3


class ReportError(FiqaError):
    """A report input (an EDC file) is unusable; the message says why."""


@dataclass
class _Face:
    file: str  # the score file's name
    row: dict[str, object]

    @property
    def quality(self) -> float:
        return float(self.row["quality"])


@dataclass
class _Thumbnails:
    """JPEG thumbnails as data URIs, each image read once; files that cannot be read are
    remembered for the list of missing files."""

    crops_dir: Path | None
    made: dict[tuple[str, object], str | None] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    def of(self, row: dict[str, object]) -> str | None:
        key = (str(row["path"]), row["face"])
        if key not in self.made:
            self.made[key] = self._make(row) if len(self.made) < MAX_THUMBNAILS else None
        return self.made[key]

    def _make(self, row: dict[str, object]) -> str | None:
        path = str(row["path"])
        try:
            image = self._face_image(row)
        except DecodeError as error:
            self.missing[path] = str(error)
            return None
        return "data:image/jpeg;base64," + base64.b64encode(_small_jpeg(image)).decode("ascii")

    def _face_image(self, row: dict[str, object]) -> np.ndarray:
        path = str(row["path"])
        if self.crops_dir is not None and row["face"] is not None:
            crop = self.crops_dir / crop_name(path, int(row["face"]))
            if crop.is_file():
                return read_image(crop)
        image = read_image(path)
        box = [row[name] for name in ("x1", "y1", "x2", "y2")]
        return image if None in box else _around_box(image, [float(v) for v in box])


def build_report(
    score_files: Sequence[Path],
    *,
    threshold: float | None = None,
    crops_dir: Path | None = None,
    edc: Path | None = None,
    seed: int = 0,
) -> str:
    """The HTML page. Score files are read with `read_rows` (other columns kept)."""
    tables = {path: read_rows(path, other_columns=True) for path in score_files}
    faces = [
        _Face(path.name, row)
        for path, rows in tables.items()
        for row in rows
        if row["status"] == OK and row["quality"] is not None
    ]
    faces.sort(key=lambda face: face.quality)
    thumbnails = _Thumbnails(crops_dir)
    sections = [
        _status_section(tables),
        _histogram_section(faces, threshold),
    ]
    if threshold is not None:
        sections.append(_threshold_section(faces, threshold, thumbnails))
    sections += [
        _gallery("Lowest-scoring faces", faces[:FACES_PER_SECTION], thumbnails),
        _gallery("Highest-scoring faces", faces[::-1][:FACES_PER_SECTION], thumbnails),
        _bands_section(faces, thumbnails, random.Random(seed)),
    ]
    if edc is not None:
        sections.append(_edc_section(edc))
    sections.append(_missing_section(thumbnails.missing))
    names = ", ".join(html.escape(str(path)) for path in score_files)
    return _PAGE.format(
        title=html.escape(f"fiqa report: {', '.join(path.name for path in score_files)}"),
        files=names,
        rows=sum(map(len, tables.values())),
        faces=len(faces),
        body="\n".join(sections),
    )


def _status_section(tables: dict[Path, list[dict[str, object]]]) -> str:
    counts = {path: Counter(str(row["status"]) for row in rows) for path, rows in tables.items()}
    statuses = sorted({status for count in counts.values() for status in count})
    header = "".join(f"<th>{html.escape(s)}</th>" for s in ["file", *statuses, "total"])
    lines = [
        "<tr><td>{}</td>{}<td>{}</td></tr>".format(
            html.escape(path.name),
            "".join(f"<td>{count[status]}</td>" for status in statuses),
            sum(count.values()),
        )
        for path, count in counts.items()
    ]
    table = f"<table class='counts'><tr>{header}</tr>{''.join(lines)}</table>"
    return f"<section><h2>Rows per status</h2>{table}</section>"


def _histogram_section(faces: list[_Face], threshold: float | None) -> str:
    if not faces:
        return "<section><h2>Scores</h2><p>No scored faces.</p></section>"
    parts = [
        "<h3>quality</h3>",
        _histogram_svg(np.array([face.quality for face in faces]), threshold),
    ]
    quality_100 = np.array([_quality_100(face.row) for face in faces])
    if not np.all(np.isnan(quality_100)):
        parts += ["<h3>quality_100</h3>", _histogram_svg(quality_100[~np.isnan(quality_100)])]
    summary = (
        f"<p>{len(faces)} scored faces; quality from {faces[0].quality:.4f} to "
        f"{faces[-1].quality:.4f}, median {np.median([f.quality for f in faces]):.4f}.</p>"
    )
    return f"<section><h2>Scores</h2>{summary}{''.join(parts)}</section>"


def _histogram_svg(values: np.ndarray, threshold: float | None = None) -> str:
    low, high = float(values.min()), float(values.max())
    if high <= low:
        high = low + 1e-6
    # The span of two extreme scores can overflow (1e308 - -1e308): such scores are binned
    # halved, and their edges doubled back (to inf where they must).
    halved = 1.0 if math.isfinite(high - low) else 0.5
    counts, edges = np.histogram(
        values * halved, bins=HISTOGRAM_BINS, range=(low * halved, high * halved)
    )
    with np.errstate(over="ignore"):
        edges = edges / halved
    width, height, left, bottom = 640, 180, 40, 20
    bar = (width - left) / HISTOGRAM_BINS
    tallest = max(int(counts.max()), 1)
    bars = "".join(
        f"<rect x='{left + i * bar:.1f}' y='{height - bottom - h:.1f}' width='{bar - 1:.1f}' "
        f"height='{h:.1f}'><title>{edges[i]:.4f} to {edges[i + 1]:.4f}: {count}</title></rect>"
        for i, count in enumerate(counts)
        for h in [count / tallest * (height - bottom - 10)]
    )
    line = ""
    if threshold is not None and low <= threshold <= high:
        x = left + (threshold - low) / (high - low) * (width - left)
        line = (
            f"<line class='threshold' x1='{x:.1f}' x2='{x:.1f}' y1='0' "
            f"y2='{height - bottom}'/><text x='{x + 3:.1f}' y='12'>threshold {threshold:g}</text>"
        )
    labels = (
        f"<text x='{left}' y='{height - 4}'>{low:.4f}</text>"
        f"<text x='{width}' y='{height - 4}' text-anchor='end'>{high:.4f}</text>"
        f"<text x='{left - 4}' y='12' text-anchor='end'>{tallest}</text>"
        f"<text x='{left - 4}' y='{height - bottom}' text-anchor='end'>0</text>"
    )
    return (
        f"<svg class='histogram' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}'>{bars}{line}{labels}</svg>"
    )


def _threshold_section(faces: list[_Face], threshold: float, thumbnails: _Thumbnails) -> str:
    qualities = [face.quality for face in faces]
    below = int(np.searchsorted(qualities, threshold, side="left"))
    share = below / len(faces) if faces else 0.0
    half = FACES_PER_SECTION // 2
    text = (
        f"<p>A threshold of {threshold:g} rejects <b>{below}</b> of {len(faces)} scored faces "
        f"({share:.1%}): those below it.</p>"
    )
    rejected = _cards(faces[max(0, below - half) : below][::-1], thumbnails)
    kept = _cards(faces[below : below + half], thumbnails)
    return (
        f"<section><h2>Nearest the threshold</h2>{text}"
        f"<h3>Just below (rejected)</h3>{rejected}<h3>At or just above (kept)</h3>{kept}"
        "</section>"
    )


def _bands_section(faces: list[_Face], thumbnails: _Thumbnails, rng: random.Random) -> str:
    """Faces sampled from each tenth of the ranking, lowest band first."""
    if not faces:
        return ""
    parts = []
    for band in range(SCORE_BANDS):
        members = faces[band * len(faces) // SCORE_BANDS : (band + 1) * len(faces) // SCORE_BANDS]
        if not members:
            continue
        sample = sorted(rng.sample(members, min(FACES_PER_BAND, len(members))), key=_quality)
        title = (
            f"{band * 100 // SCORE_BANDS}-{(band + 1) * 100 // SCORE_BANDS}% "
            f"(quality {members[0].quality:.4f} to {members[-1].quality:.4f})"
        )
        parts.append(f"<h3>{title}</h3>{_cards(sample, thumbnails)}")
    return f"<section><h2>Faces across the score range</h2>{''.join(parts)}</section>"


def _gallery(title: str, faces: list[_Face], thumbnails: _Thumbnails) -> str:
    return f"<section><h2>{title}</h2>{_cards(faces, thumbnails)}</section>"


def _cards(faces: list[_Face], thumbnails: _Thumbnails) -> str:
    return "<div class='faces'>" + "".join(_card(face, thumbnails) for face in faces) + "</div>"


def _card(face: _Face, thumbnails: _Thumbnails) -> str:
    row = face.row
    uri = thumbnails.of(row)
    picture = f"<img src='{uri}' alt='face'>" if uri else "<div class='noimage'>no image</div>"
    lines = [f"<b>{face.quality:.4f}</b>"]
    quality_100 = _quality_100(row)
    if not math.isnan(quality_100):
        lines.append(f"quality_100 {quality_100:.0f}")
    measures = _measures(row)
    lowest = _lowest_scores(measures)
    for text in (lowest, row.get(REASONS), row.get("message")):
        if text:
            lines.append(html.escape(_clipped(str(text))))
    path = html.escape(str(row["path"]))
    name = html.escape(Path(str(row["path"])).name)
    lines.append(f"<span class='path' title='{path}'>{name}</span>")
    caption = "<br>".join(lines)
    if measures:
        # Every column under a fold a reader opens (no script needed): with --measures a card
        # would otherwise be a wall of 40 numbers cut off mid-name.
        every = "<br>".join(html.escape(f"{k} {v}") for k, v in measures.items())
        caption += f"<details><summary>all columns</summary>{every}</details>"
    return f"<figure>{picture}<figcaption>{caption}</figcaption></figure>"


def _lowest_scores(measures: dict[str, object], count: int = 3) -> str:
    """The `count` lowest 0-100 measure scores of a row (those not assessed, -1, left out):
    where a face falls short, in a line."""
    scores = {}
    for column, value in measures.items():
        score = _number(value) if column.endswith(SCORE_SUFFIX) else math.nan
        if score >= 0:
            scores[column.removesuffix(SCORE_SUFFIX)] = score
    lowest = sorted(scores.items(), key=lambda item: item[1])[:count]
    return "lowest: " + ", ".join(f"{name} {score:.0f}" for name, score in lowest) if lowest else ""


def _quality_100(row: dict[str, object]) -> float:
    """The row's quality_100, NaN when it has none (-1: the model carries no calibration)."""
    value = _number(row.get(QUALITY_100))
    return value if value >= 0 else math.nan


def _measures(row: dict[str, object]) -> dict[str, object]:
    """The columns a score file has beyond the usual ones, as written."""
    skip = {*COLUMNS, QUALITY_100, REASONS, *_PLACE_COLUMNS}
    return {k: v for k, v in row.items() if k not in skip and v not in (None, "")}


def _edc_section(edc: Path) -> str:
    """The plot of `fiqa evaluate --plot` as it is, or drawn from its `--out` JSON; either
    read as an input is, a regular file within the page's size bound."""
    try:
        data = read_input_bytes(edc, MAX_REPORT_BYTES)
    except InputFileError as error:
        raise ReportError(f"--edc {edc}: {error}") from None
    png = data if edc.suffix.lower() == ".png" else _edc_png(edc, data)
    uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return f"<section><h2>EDC ({html.escape(edc.name)})</h2><img class='edc' src='{uri}'></section>"


def _edc_png(path: Path, data: bytes) -> bytes:
    try:
        table = json.loads(data.decode("utf-8"))
        results = [
            MethodResult(
                str(entry["method"]),
                float(entry["fmr"]),
                float(entry["threshold"]),
                EdcCurve(*_curve(entry["curve"])),
            )
            for entry in table
        ]
        max_discard = float(next(k for k in table[0] if k.startswith("pauc@"))[len("pauc@") :])
    except (ValueError, KeyError, TypeError, IndexError, StopIteration, RecursionError):
        message = f"{path}: not the JSON that `fiqa evaluate --out FILE.json` writes"
        raise ReportError(message) from None
    with tempfile.TemporaryDirectory() as folder:
        png = Path(folder) / "edc.png"
        plot_edc(png, results, max_discard, plot_max_discard=0.8, log_fnmr=False)
        return png.read_bytes()


_CURVE_KEYS = ("discard_fraction", "fnmr", "remaining_mated")


def _curve(curve: dict[str, object]) -> list[np.ndarray]:
    """A curve's points, one finite value of each kind per point (ValueError otherwise)."""
    points = [np.asarray(curve[key], dtype=float) for key in _CURVE_KEYS]
    if any(p.ndim != 1 or p.shape != points[0].shape or not np.isfinite(p).all() for p in points):
        raise ValueError("curves of different lengths, or not finite")
    return points


def _missing_section(missing: dict[str, str]) -> str:
    if not missing:
        return "<section><h2>Missing images</h2><p>Every face shown was found.</p></section>"
    items = "".join(
        f"<li>{html.escape(path)}: {html.escape(reason)}</li>"
        for path, reason in list(missing.items())[:MAX_LISTED_MISSING]
    )
    more = len(missing) - MAX_LISTED_MISSING
    tail = f"<p>and {more} more.</p>" if more > 0 else ""
    return (
        f"<section><h2>Missing images</h2><p>{len(missing)} image(s) to show could not be "
        f"read:</p><ul class='missing'>{items}</ul>{tail}</section>"
    )


def _around_box(image: np.ndarray, box: list[float]) -> np.ndarray:
    """A square around the face box with some margin, clipped to the image."""
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1) * (1 + 2 * _BOX_MARGIN)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    height, width = image.shape[:2]
    half = side / 2
    left, top = max(0, int(cx - half)), max(0, int(cy - half))
    right, lower = min(width, math.ceil(cx + half)), min(height, math.ceil(cy + half))
    if right <= left or lower <= top:
        return image
    return image[top:lower, left:right]


def _small_jpeg(image: np.ndarray) -> bytes:
    scale = THUMBNAIL_SIDE / max(image.shape[:2])
    if scale < 1:
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    for quality in (80, 60, 40, 20):
        data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()
        if len(data) <= THUMBNAIL_MAX_BYTES:
            break
    return data


def _number(value: object) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _quality(face: _Face) -> float:
    return face.quality


def _clipped(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; }}
table.counts td, table.counts th {{ border: 1px solid #ccc; padding: 2px 8px; text-align: right; }}
table.counts td:first-child {{ text-align: left; }}
table.counts {{ border-collapse: collapse; }}
svg.histogram rect {{ fill: #4a78b5; }}
svg.histogram text {{ font-size: 11px; }}
svg.histogram line.threshold {{ stroke: #c33; stroke-width: 2; }}
div.faces {{ display: flex; flex-wrap: wrap; gap: 8px; }}
figure {{ margin: 0; width: 120px; font-size: 11px; }}
figure img, div.noimage {{ width: 96px; height: 96px; object-fit: contain; background: #eee; }}
div.noimage {{ display: flex; align-items: center; justify-content: center; color: #999; }}
span.path {{ color: #777; word-break: break-all; }}
img.edc {{ max-width: 100%; }}
</style></head>
<body>
<h1>{title}</h1>
<p>Score files: {files}. {rows} rows, {faces} scored faces.</p>
{body}
</body></html>
"""
