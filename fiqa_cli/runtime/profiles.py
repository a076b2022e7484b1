"""Requirement profiles and the verdict of a scored face against one.

A profile is a set of requirements, each a range (inclusive `min` and/or `max`) on one
measure's native value (`head_roll`) or its 0-100 score (`head_roll_100`), or on the model's
calibrated `quality_100` (`fiqa_cli.runtime.calibration`). The built-in
profiles are TOML files shipped beside this module (`profile_files/`); a user's profile is a
TOML file of the same form, and `--require KEY=VALUE` adds to or replaces one requirement.
A face fails when any requirement is not met or cannot be checked; the reasons are short
sentences a booth can show as they are.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from fiqa_cli.errors import FiqaError
from fiqa_cli.runtime.calibration import Calibration, fnmr_of_score
from fiqa_cli.runtime.measure_kinds import (
    DEGREES,
    MEASURE_KINDS,
    MEASURE_NAMES,
    PERCENT,
    PIXELS,
    Measure,
)
from fiqa_cli.runtime.rows import FAIL, NO_FACE, OK, PASS, QUALITY_100, Row

if sys.version_info >= (3, 11):
    import tomllib
else:  # tomllib is in the standard library from 3.11; setup.cfg installs tomli before
    import tomli as tomllib

BUILT_IN_FOLDER = Path(__file__).with_name("profile_files")
BUILT_IN = tuple(sorted(path.stem for path in BUILT_IN_FOLDER.glob("*.toml")))
SCORE_SUFFIX = "_100"
KEYS = (*MEASURE_NAMES, *(name + SCORE_SUFFIX for name in MEASURE_NAMES), QUALITY_100)
REMOVE = "off"  # --require KEY=off drops a profile's requirement

# How a reason writes a value's unit after it, by how the measure is shown.
_UNITS = {DEGREES: "°", PIXELS: " px"}


class ProfileError(FiqaError):
    """A profile or requirement that cannot be used; the message says what is wrong."""


@dataclass(frozen=True)
class Requirement:
    key: str  # a measure's name (native value) or name + "_100" (score)
    min: float | None = None
    max: float | None = None

    def met_by(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    requirements: Mapping[str, Requirement]

    def with_overrides(self, overrides: Iterable[str]) -> Profile:
        """This profile with each `KEY=VALUE` (`parse_requirement`) added or replacing the
        profile's own; `KEY=off` removes it."""
        requirements = dict(self.requirements)
        for text in overrides:
            key, requirement = parse_requirement(text)
            if requirement is None:
                requirements.pop(key, None)
            else:
                requirements[key] = requirement
        return replace(self, requirements=requirements)


def load_profile(name_or_path: str | None) -> Profile:
    """A built-in profile by name, a TOML file by path, or (None) an empty profile that
    `--require` fills."""
    if name_or_path is None:
        return Profile("require", "the --require options only", {})
    if name_or_path in BUILT_IN:
        path = BUILT_IN_FOLDER / f"{name_or_path}.toml"
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise ProfileError(
                f"no profile {name_or_path!r}: not a built-in one ({', '.join(BUILT_IN)}) "
                "nor a TOML file"
            )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ProfileError(f"cannot read profile {path}: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ProfileError(f"{path}: not valid TOML: {error}") from None
    except RecursionError:  # tables or arrays nested thousands deep
        raise ProfileError(f"{path}: not a profile: nested too deep") from None
    table = data.get("require", {})
    if not isinstance(table, dict) or not table:
        raise ProfileError(
            f"{path}: expected a [require] table of KEY = {{ min = ..., max = ... }}"
        )
    requirements = {key: _requirement(key, bounds, str(path)) for key, bounds in table.items()}
    return Profile(path.stem, str(data.get("description", "")), requirements)


def _requirement(key: str, bounds: object, where: str) -> Requirement:
    _check_key(key, where)
    if not isinstance(bounds, dict) or not bounds or set(bounds) - {"min", "max"}:
        raise ProfileError(f"{where}: {key} must be {{ min = ..., max = ... }} (either or both)")
    values = {}
    for bound, value in bounds.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ProfileError(f"{where}: {key}.{bound} must be a finite number, not {value!r}")
        values[bound] = float(value)
    return _ordered(Requirement(key, values.get("min"), values.get("max")), where)


def parse_requirement(text: str) -> tuple[str, Requirement | None]:
    """`KEY=MIN..MAX`, `KEY=MIN..`, `KEY=..MAX`, `KEY=MIN` (at least MIN) or `KEY=off`."""
    key, equals, value = (part.strip() for part in text.partition("="))
    where = f"--require {text}"
    if not equals or not value:
        raise ProfileError(f"{where}: expected KEY=MIN..MAX, KEY=MIN.., KEY=..MAX or KEY=off")
    _check_key(key, where)
    if value == REMOVE:
        return key, None
    low, dots, high = value.partition("..")
    try:
        bounds = [float(part) if part.strip() else None for part in (low, high if dots else "")]
    except ValueError:
        raise ProfileError(f"{where}: {value!r} is not a number or range MIN..MAX") from None
    if all(bound is None for bound in bounds):
        raise ProfileError(f"{where}: give MIN, MAX or both")
    if any(b is not None and not math.isfinite(b) for b in bounds):
        raise ProfileError(f"{where}: MIN and MAX must be finite numbers")
    return key, _ordered(Requirement(key, *bounds), where)


def _check_key(key: str, where: str) -> None:
    if key not in KEYS:
        raise ProfileError(
            f"{where}: unknown requirement {key!r}; expected {QUALITY_100}, a measure "
            f"({', '.join(MEASURE_NAMES)}) or its score (NAME{SCORE_SUFFIX})"
        )


def check_calibration(profile: Profile, calibration: Calibration | None, model: object) -> None:
    """Refuse, before any input is read, a profile on quality_100 with a model that has no
    calibration: every face would fail with the same reason."""
    if QUALITY_100 in profile.requirements and calibration is None:
        raise ProfileError(
            f"profile {profile.name} requires {QUALITY_100}, but model {model} carries no "
            "calibration: calibrate it with `fiqa calibrate`, or drop the requirement with "
            f"--require {QUALITY_100}={REMOVE}"
        )


def _ordered(requirement: Requirement, where: str) -> Requirement:
    low, high = requirement.min, requirement.max
    if low is not None and high is not None and low > high:
        raise ProfileError(
            f"{where}: {requirement.key} minimum {low:g} is above its maximum {high:g}"
        )
    return requirement


def judged(row: Row, profile: Profile) -> Row:
    """`row` with its verdict and reasons: empty for an input without a face (or unreadable),
    fail for a face cut off by the border, else pass or fail by the profile."""
    if row.status not in (OK, NO_FACE) or row.face is None:
        return row
    if row.status == NO_FACE:  # a face the pipeline refused: the row's message says why
        return replace(row, verdict=FAIL, reasons=row.message)
    reasons = [
        reason
        for requirement in profile.requirements.values()
        if (reason := _unmet(requirement, row)) is not None
    ]
    return replace(row, verdict=FAIL if reasons else PASS, reasons="; ".join(reasons))


def _unmet(requirement: Requirement, row: Row) -> str | None:
    """Why `requirement` is not met, or None when it is."""
    if requirement.key == QUALITY_100:
        return _unmet_quality(requirement, row.quality_100)
    measures: Mapping[str, Measure] = row.measures or {}
    name = requirement.key.removesuffix(SCORE_SUFFIX)
    is_score = requirement.key != name
    measure = measures.get(name)
    value = None if measure is None else (measure.score if is_score else measure.value)
    if value is None or (is_score and value < 0):
        return f"{name.replace('_', ' ')} cannot be assessed"
    if requirement.met_by(value):
        return None
    kind = MEASURE_KINDS[name]
    if is_score:
        saying = kind.low_score
        if kind.score_sides_at is not None and measure.value is not None:
            saying = kind.too_low if measure.value < kind.score_sides_at else kind.too_high
        return f"{saying}: score {value} ({_bound_text(requirement, '')})"
    too_low = requirement.min is not None and value < requirement.min
    symmetric = requirement.min is not None and requirement.min == -(requirement.max or 0) != 0
    shown = abs(value) if symmetric and kind.shown_as == DEGREES else value
    saying = (kind.too_low if too_low else kind.too_high) or kind.too_high or kind.too_low
    bound = _bound_text(requirement, _UNITS.get(kind.shown_as, ""), kind.shown_as)
    if not kind.reason_shows_value:
        return saying
    # Shown as failing: 5.3° against at most 5° reads "5.3", never "5".
    limit = Requirement(requirement.key, None, requirement.max) if symmetric else requirement
    text = _shown_failing(kind.shown_as, shown, limit)
    if "{v}" not in saying:  # the value goes in the brackets
        bound = f"{text}; {bound}"
    return f"{saying.format(v=text)} ({bound})"


def _unmet_quality(requirement: Requirement, score: int | None) -> str | None:
    if score is None or score < 0:
        return "recognition quality cannot be assessed"
    if requirement.met_by(score):
        return None
    failing = 100 * fnmr_of_score(score)
    return (
        f"face hard to recognise: quality {score} ({_bound_text(requirement, '')}; about "
        f"{failing:.2g}% of its comparisons would fail)"
    )


def _bound_text(requirement: Requirement, unit: str, shown_as: str = "") -> str:
    # A bound is written as given (0.0333 stays 0.0333): rounded, it could read as the value.
    low, high = (
        None if b is None else _shown_bound(shown_as, b) for b in (requirement.min, requirement.max)
    )
    if low is not None and high is not None:
        if requirement.min == -requirement.max and shown_as == DEGREES:
            return f"at most {high}{unit}"
        return f"{low} to {high}{unit}"
    return f"at least {low}{unit}" if low is not None else f"at most {high}{unit}"


def _shown(shown_as: str, value: float, extra_decimals: int = 0) -> str:
    if shown_as == PERCENT:
        return f"{100 * value:.{extra_decimals}f}%"
    if shown_as in (DEGREES, PIXELS):
        return f"{value:.{extra_decimals}f}"
    if extra_decimals == 0 and (isinstance(value, int) or float(value).is_integer()):
        return f"{value:g}"
    return f"{value:.{2 + extra_decimals}f}"


def _shown_bound(shown_as: str, bound: float) -> str:
    return f"{100 * bound:g}%" if shown_as == PERCENT else f"{bound:g}"


def _shown_failing(shown_as: str, value: float, requirement: Requirement) -> str:
    """`value` as `_shown` writes it, with as many more decimals (up to 4) as it takes for the
    number written to fail `requirement` too, as the value does."""
    for extra in range(5):
        text = _shown(shown_as, value, extra)
        written = float(text.rstrip("%")) / (100 if shown_as == PERCENT else 1)
        if not requirement.met_by(written):
            return text
    return text
