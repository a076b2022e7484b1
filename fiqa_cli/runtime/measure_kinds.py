"""The component measures fiqa reports, one record each, and the value each measure gives: what
`fiqa_cli.runtime.rows` writes and profiles judge, without loading OpenCV (`--help` does not
load it). The measures themselves are computed in `fiqa_cli.runtime.measures`.

A new measure is one record in MEASURES (its columns, its place in profiles and the reasons a
failing face is given follow from it) and its function in `measures.py`."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

NOT_ASSESSED = -1

# How a reason writes a measure's value.
PLAIN, PIXELS, DEGREES, PERCENT = "plain", "pixels", "degrees", "percent"


@dataclass(frozen=True)
class MeasureKind:
    name: str  # the column of its native value; its 0-100 score is name_100
    unit: str  # of the native value
    _: KW_ONLY
    # The reason for a score below a requirement.
    low_score: str
    # A requirement's reason for a value too low and one too high ({v} the value); a measure
    # that fails one way only has one.
    too_low: str = ""
    too_high: str = ""
    # Needs the face's place in the photo: not assessed with --detector none.
    geometric: bool = False
    # The native value is not OFIQ's (docs/measures.md says why for each).
    estimated: bool = False
    shown_as: str = PLAIN  # PIXELS, DEGREES (symmetric limits as "at most") or PERCENT
    # False where the reason alone says it all (no value and bound in brackets).
    reason_shows_value: bool = True
    # Where a score falls away on both sides of a native value (too dark and too bright both
    # score low): that value; a low score then gets the reason of its side, too_low or too_high.
    score_sides_at: float | None = None


# The order of the output columns.
MEASURES = (
    MeasureKind("inter_eye_distance", "px", geometric=True, shown_as=PIXELS,
        too_low="eyes {v} px apart", too_high="eyes {v} px apart", low_score="face too small"),
    MeasureKind("head_roll", "deg", geometric=True, shown_as=DEGREES,
        too_low="head tilted {v}°", too_high="head tilted {v}°", low_score="head tilted"),
    MeasureKind("head_yaw", "deg", geometric=True, estimated=True, shown_as=DEGREES,
        too_low="head turned {v}° sideways", too_high="head turned {v}° sideways",
        low_score="head turned sideways"),
    MeasureKind("head_pitch", "deg", geometric=True, estimated=True, shown_as=DEGREES,
        too_low="head tipped {v}° down", too_high="head tipped {v}° up",
        low_score="head tipped up or down"),
    MeasureKind("single_face", "ratio", geometric=True, reason_shows_value=False,
        too_high="second face in the photo", low_score="second face in the photo"),
    MeasureKind("leftward_crop", "IED", geometric=True,
        too_low="face too near the right edge", low_score="face too near the right edge"),
    MeasureKind("rightward_crop", "IED", geometric=True,
        too_low="face too near the left edge", low_score="face too near the left edge"),
    MeasureKind("margin_above", "T", geometric=True, estimated=True,
        too_low="too little room above the eyes", low_score="too little room above the eyes"),
    MeasureKind("margin_below", "T", geometric=True, estimated=True,
        too_low="too little room below the eyes", low_score="too little room below the eyes"),
    MeasureKind("head_size", "T/H", geometric=True, estimated=True,
        too_low="face too small in the photo", too_high="face too large in the photo",
        low_score="face the wrong size in the photo"),
    MeasureKind("face_centre", "W", geometric=True, estimated=True, shown_as=PERCENT,
        too_low="face left of centre", too_high="face right of centre",
        low_score="face off centre"),
    MeasureKind("luminance_mean", "0-1", estimated=True, score_sides_at=0.5,
        too_low="too dark", too_high="too bright", low_score="too dark or too bright"),
    MeasureKind("under_exposure", "fraction", estimated=True, shown_as=PERCENT,
        too_high="too dark ({v} of the face near black)", low_score="too dark"),
    MeasureKind("over_exposure", "fraction", estimated=True, shown_as=PERCENT,
        too_high="too bright ({v} of the face blown out)", low_score="too bright"),
    MeasureKind("dynamic_range", "bits", estimated=True,
        too_low="too little contrast on the face", low_score="too little contrast on the face"),
    MeasureKind("illumination_uniformity", "0-1",
        too_low="uneven light on the face", low_score="uneven light on the face"),
    MeasureKind("natural_colour", "Lab",
        too_high="unnatural face colour", low_score="unnatural face colour"),
    MeasureKind("sharpness", "ratio", estimated=True,
        too_low="photo blurred", low_score="photo blurred"),
    # From the face mesh (`fiqa_cli.runtime.mesh_measures`).
    MeasureKind("eyes_open", "T", too_low="eyes closed", low_score="eyes closed"),
    MeasureKind("mouth_closed", "T", too_high="mouth open", low_score="mouth open"),
    # The native value is the occluded share, as OFIQ's (fiqa_cli.runtime.occlusion).
    MeasureKind("eyes_visible", "fraction", estimated=True, shown_as=PERCENT,
        too_high="eyes covered ({v} of the eye openings)", low_score="eyes covered"),
    MeasureKind("mouth_occlusion", "fraction", estimated=True, shown_as=PERCENT,
        too_high="mouth covered ({v} of the lips)", low_score="mouth covered"),
    MeasureKind("background_uniformity", "gradient", geometric=True, estimated=True,
        too_high="busy background", low_score="busy background"),
    MeasureKind("compression_artifacts", "JPEG quality", estimated=True,
        too_low="photo compressed too much: JPEG quality {v}",
        low_score="photo compressed too much"),
    MeasureKind("luminance_variance", "0-1", estimated=True, score_sides_at=1 / 60,
        too_low="too little contrast on the face", too_high="too much contrast on the face",
        low_score="too little or too much contrast on the face"),
)  # fmt: skip
MEASURE_KINDS = {kind.name: kind for kind in MEASURES}
MEASURE_NAMES = tuple(MEASURE_KINDS)
GEOMETRIC = frozenset(kind.name for kind in MEASURES if kind.geometric)
ESTIMATED = frozenset(kind.name for kind in MEASURES if kind.estimated)


@dataclass(frozen=True)
class Measure:
    value: float | None  # native value; None when not assessed
    score: int  # 0..100, or NOT_ASSESSED
