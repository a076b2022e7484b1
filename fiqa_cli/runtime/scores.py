"""OFIQ's mapping of a native value to a 0-100 score, shared by the measure modules."""

from __future__ import annotations

import math


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x > -700 else 0.0


def ofiq_score(x: float, *, h=100.0, a=0.0, s=1.0, x0=0.0, w=1.0) -> int:
    """OFIQ's mapping Q = h(a + s*sigmoid((x - x0) / w)), rounded, clamped to 0..100."""
    return clamped(h * (a + s * sigmoid((x - x0) / w)))


def clamped(q: float) -> int:
    return int(min(100, max(0, round(q))))
