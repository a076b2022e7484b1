"""The component measures fiqa reports, by name, and the value each measure gives: what
`fiqa_cli.runtime.rows` writes and profiles judge, without loading OpenCV (`--help` does not
load it). The measures themselves are computed in `fiqa_cli.runtime.measures`."""

from __future__ import annotations

from dataclasses import dataclass

NOT_ASSESSED = -1

# (name, unit of the native value); the order of the output columns.
MEASURES = (
    ("inter_eye_distance", "px"),
    ("head_roll", "deg"),
    ("head_yaw", "deg"),
    ("head_pitch", "deg"),
    ("single_face", "ratio"),
    ("leftward_crop", "IED"),
    ("rightward_crop", "IED"),
    ("margin_above", "T"),
    ("margin_below", "T"),
    ("head_size", "T/H"),
    ("face_centre", "W"),
    ("luminance_mean", "0-1"),
    ("under_exposure", "fraction"),
    ("over_exposure", "fraction"),
    ("dynamic_range", "bits"),
    ("illumination_uniformity", "0-1"),
    ("natural_colour", "Lab"),
    ("sharpness", "ratio"),
)
MEASURE_NAMES = tuple(name for name, _ in MEASURES)
# Measures that need the face's place in the photo: unknown with --detector none.
GEOMETRIC = frozenset(MEASURE_NAMES[:11])
# Native values that are not OFIQ's (see the README's measures table for why each).
ESTIMATED = frozenset(
    (
        "head_yaw",
        "head_pitch",
        "margin_above",
        "margin_below",
        "head_size",
        "face_centre",
        "luminance_mean",
        "under_exposure",
        "over_exposure",
        "dynamic_range",
        "sharpness",
    )
)


@dataclass(frozen=True)
class Measure:
    value: float | None  # native value; None when not assessed
    score: int  # 0..100, or NOT_ASSESSED
