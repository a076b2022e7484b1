"""The component measures fiqa reports, one record each, and the value each measure gives: what
`fiqa_cli.runtime.rows` writes and profiles judge, without loading OpenCV (`--help` does not
load it). The measures themselves are computed in `fiqa_cli.runtime.measures`.

A new measure is one record in MEASURES (its columns, its place in profiles and the reasons a
failing face is given follow from it) and its function in `measures.py`."""

from __future__ import annotations

from dataclasses import dataclass

NOT_ASSESSED = -1

# How a reason writes a measure's value.
PLAIN, PIXELS, DEGREES, PERCENT = "plain", "pixels", "degrees", "percent"


@dataclass(frozen=True)
class MeasureKind:
    name: str  # the column of its native value; its 0-100 score is name_100
    unit: str  # of the native value
    # Needs the face's place in the photo: not assessed with --detector none.
    geometric: bool
    # The native value is not OFIQ's (docs/measures.md says why for each).
    estimated: bool
    # A requirement's reason for a value too low and one too high ({v} the value), either
    # empty where a measure fails one way only.
    too_low: str
    too_high: str
    # The reason for a score below a requirement.
    low_score: str
    shown_as: str = PLAIN  # PIXELS, DEGREES (symmetric limits as "at most") or PERCENT


# The order of the output columns.
MEASURES = (
    MeasureKind("inter_eye_distance", "px", True, False,
                "eyes {v} px apart", "eyes {v} px apart", "face too small", PIXELS),
    MeasureKind("head_roll", "deg", True, False,
                "head tilted {v}°", "head tilted {v}°", "head tilted", DEGREES),
    MeasureKind("head_yaw", "deg", True, True,
                "head turned {v}° sideways", "head turned {v}° sideways",
                "head turned sideways", DEGREES),
    MeasureKind("head_pitch", "deg", True, True,
                "head tipped {v}° down", "head tipped {v}° up", "head tipped up or down",
                DEGREES),
    MeasureKind("single_face", "ratio", True, False,
                "", "second face in the photo", "second face in the photo"),
    MeasureKind("leftward_crop", "IED", True, False,
                "face too near the right edge", "", "face too near the right edge"),
    MeasureKind("rightward_crop", "IED", True, False,
                "face too near the left edge", "", "face too near the left edge"),
    MeasureKind("margin_above", "T", True, True,
                "too little room above the eyes", "", "too little room above the eyes"),
    MeasureKind("margin_below", "T", True, True,
                "too little room below the eyes", "", "too little room below the eyes"),
    MeasureKind("head_size", "T/H", True, True,
                "face too small in the photo", "face too large in the photo",
                "face the wrong size in the photo"),
    MeasureKind("face_centre", "W", True, True,
                "face left of centre", "face right of centre", "face off centre", PERCENT),
    MeasureKind("luminance_mean", "0-1", False, True,
                "too dark", "too bright", "too dark or too bright"),
    MeasureKind("under_exposure", "fraction", False, True,
                "", "too dark ({v} of the face near black)", "too dark", PERCENT),
    MeasureKind("over_exposure", "fraction", False, True,
                "", "too bright ({v} of the face blown out)", "too bright", PERCENT),
    MeasureKind("dynamic_range", "bits", False, True,
                "too little contrast on the face", "", "too little contrast on the face"),
    MeasureKind("illumination_uniformity", "0-1", False, False,
                "uneven light on the face", "", "uneven light on the face"),
    MeasureKind("natural_colour", "Lab", False, False,
                "", "unnatural face colour", "unnatural face colour"),
    MeasureKind("sharpness", "ratio", False, True,
                "photo blurred", "", "photo blurred"),
)  # fmt: skip
MEASURE_KINDS = {kind.name: kind for kind in MEASURES}
MEASURE_NAMES = tuple(MEASURE_KINDS)
GEOMETRIC = frozenset(kind.name for kind in MEASURES if kind.geometric)
ESTIMATED = frozenset(kind.name for kind in MEASURES if kind.estimated)


@dataclass(frozen=True)
class Measure:
    value: float | None  # native value; None when not assessed
    score: int  # 0..100, or NOT_ASSESSED
