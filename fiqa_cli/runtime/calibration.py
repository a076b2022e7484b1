"""`quality_100`: a model's raw quality mapped to a 0-100 scale whose meaning does not depend
on the model, by the calibration that `fiqa calibrate` writes into the model's metadata.

The meaning: a face scored Q is expected to fail FNMR(Q) = 10^(-Q/25) of its mated
comparisons at the calibration's FMR (1e-3 unless chosen otherwise), against a photo of the
same person drawn like the calibration set's. So 25 points are ten times fewer false
non-matches: 0 is every comparison failing, 25 one in ten, 50 one in 100, 75 one in 1,000 and
100 one in 10,000 or better. The calibration stores the expected FNMR at a few raw quality
values (a monotone fit, non-increasing in quality); between them it is interpolated on a log
scale, and outside them it holds the end values.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from fiqa_cli.model_contract import META_CALIBRATION
from fiqa_cli.runtime.measure_kinds import NOT_ASSESSED

POINTS_PER_DECADE = 25.0
# The scale ends where 100 points are four decades: FNMR 1e-4.
FNMR_AT_100 = 10 ** (-100 / POINTS_PER_DECADE)
CALIBRATION_FORMAT = "fiqa-quality-100"
CALIBRATION_VERSION = 1


class CalibrationError(ValueError):
    """A calibration record that cannot be used; the message says what is wrong."""


def score_of_fnmr(fnmr: float | np.ndarray) -> np.ndarray:
    """The 0-100 score of an expected FNMR (`POINTS_PER_DECADE` points per decade)."""
    fnmr = np.clip(np.asarray(fnmr, dtype=np.float64), FNMR_AT_100, 1.0)
    return np.clip(np.rint(-POINTS_PER_DECADE * np.log10(fnmr)), 0, 100).astype(np.int64)


@dataclass(frozen=True)
class Calibration:
    """Expected FNMR at raw quality knots (ascending qualities, non-increasing FNMR)."""

    qualities: Sequence[float]
    fnmr: Sequence[float]
    fmr: float
    recognition_model: str = ""
    samples: int = 0
    mated_comparisons: int = 0
    fit: Mapping[str, object] = field(default_factory=dict)  # how well it held out of sample

    def __post_init__(self) -> None:
        qualities = np.asarray(self.qualities, dtype=np.float64)
        fnmr = np.asarray(self.fnmr, dtype=np.float64)
        if qualities.ndim != 1 or len(qualities) == 0 or qualities.shape != fnmr.shape:
            raise CalibrationError("needs one expected FNMR per quality knot, and a knot or more")
        if not (np.all(np.isfinite(qualities)) and np.all(np.isfinite(fnmr))):
            raise CalibrationError("knots and FNMRs must be finite numbers")
        if np.any(np.diff(qualities) <= 0):
            raise CalibrationError("quality knots must be strictly ascending")
        if np.any(fnmr <= 0) or np.any(fnmr > 1) or np.any(np.diff(fnmr) > 0):
            raise CalibrationError("FNMRs must lie in (0, 1] and not rise with quality")
        if not 0 < self.fmr < 1:
            raise CalibrationError(f"FMR must lie in (0, 1), not {self.fmr}")

    def expected_fnmr(self, qualities: float | np.ndarray) -> np.ndarray:
        """The expected FNMR at raw qualities: interpolated on a log scale between the knots,
        the end values outside them."""
        raw = np.atleast_1d(np.asarray(qualities, dtype=np.float64))
        return 10 ** np.interp(raw, self.qualities, np.log10(np.asarray(self.fnmr)))

    def scores(self, qualities: float | np.ndarray) -> np.ndarray:
        """quality_100 of raw qualities (NOT_ASSESSED for a non-finite one)."""
        raw = np.atleast_1d(np.asarray(qualities, dtype=np.float64))
        finite = np.isfinite(raw)
        fnmr = self.expected_fnmr(np.where(finite, raw, 0.0))
        return np.where(finite, score_of_fnmr(fnmr), NOT_ASSESSED)

    def score(self, quality: float) -> int:
        return int(self.scores(quality)[0])

    def to_json(self) -> str:
        record = {"format": CALIBRATION_FORMAT, "version": CALIBRATION_VERSION, **asdict(self)}
        record["qualities"] = [float(q) for q in self.qualities]
        record["fnmr"] = [float(f) for f in self.fnmr]
        record["fit"] = dict(self.fit)
        return json.dumps(record, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        try:
            record = json.loads(text)
        except (ValueError, RecursionError):
            raise CalibrationError("not JSON") from None
        if not isinstance(record, dict) or record.get("format") != CALIBRATION_FORMAT:
            raise CalibrationError(f"not a {CALIBRATION_FORMAT} record")
        if record.get("version") != CALIBRATION_VERSION:
            raise CalibrationError(
                f"version {record.get('version')!r}; this fiqa reads version {CALIBRATION_VERSION}"
            )
        try:
            return cls(
                qualities=[float(q) for q in record["qualities"]],
                fnmr=[float(f) for f in record["fnmr"]],
                fmr=float(record["fmr"]),
                recognition_model=str(record.get("recognition_model", "")),
                samples=int(record.get("samples", 0)),
                mated_comparisons=int(record.get("mated_comparisons", 0)),
                fit=dict(record.get("fit") or {}),
            )
        except CalibrationError:  # the record's values break a rule of the scale
            raise
        except (KeyError, TypeError, ValueError, OverflowError) as error:
            # OverflowError: int() of an infinite count (1e999 reads as inf)
            raise CalibrationError(f"a field is missing or not a number ({error})") from None

    def describe(self) -> str:
        """One line for people: what the scale was fitted on."""
        model = self.recognition_model or "an unnamed recognition model"
        return (
            f"quality_100 calibrated at FMR {self.fmr:g} with {model} on {self.samples} photos "
            f"({self.mated_comparisons} mated comparisons)"
        )


def calibration_of(metadata: Mapping[str, str]) -> Calibration | None:
    """The calibration a model's metadata carries, None when it has none."""
    text = metadata.get(META_CALIBRATION)
    return None if text is None else Calibration.from_json(text)


def fnmr_of_score(score: float) -> float:
    """The expected FNMR a quality_100 score stands for (the scale's definition)."""
    return math.pow(10.0, -float(score) / POINTS_PER_DECADE)
