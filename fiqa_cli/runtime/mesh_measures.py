"""The measures read from a face's MediaPipe mesh (`fiqa_cli.runtime.face_mesh`): one function,
`mesh_measures`, that `measure_face` calls with the face's mesh (None: not assessed).

Eyes open and mouth closed follow OFIQ's definitions (OFIQ v1.0.x EyesOpen.cpp,
MouthClosed.cpp; ISO/IEC 29794-5): a lid or lip gap over OFIQ's T, the distance from the
midpoint of the eye centres (each the midpoint of its two corners) to the chin. OFIQ reads
its 98 ADNet landmarks (WFLW's layout); the mesh's counterparts are below (docs/measures.md).
Eyes visible and mouth occlusion are estimates (`fiqa_cli.runtime.occlusion`).
"""

from __future__ import annotations

import math

import numpy as np

from fiqa_cli.runtime.face_mesh import Mesh
from fiqa_cli.runtime.measure_kinds import NOT_ASSESSED, Measure
from fiqa_cli.runtime.occlusion import occlusion_measures
from fiqa_cli.runtime.scores import ofiq_score

# The measures this module gives, in their column order.
MESH_MEASURES: tuple[str, ...] = ("eyes_open", "mouth_closed", "eyes_visible", "mouth_occlusion")

# Mesh counterparts of OFIQ's lid pairs (ADNet 61-67, 62-66, 63-65 and 69-75, 70-74, 71-73):
# upper and lower lid a quarter, half and three quarters of the way between the corners.
LEFT_EYE_LIDS = ((161, 163), (159, 145), (157, 154))  # image left (the subject's right)
RIGHT_EYE_LIDS = ((388, 390), (386, 374), (384, 381))
# OFIQ's inner-lip pairs (ADNet 89-95, 90-94, 91-93): inner upper and lower lip, likewise.
INNER_LIPS = ((81, 178), (13, 14), (311, 402))
# OFIQ's eye corners (ADNet 60, 64 and 68, 72) and chin (ADNet 16).
LEFT_EYE_CORNERS, RIGHT_EYE_CORNERS = (33, 133), (263, 362)
CHIN = 152

_UNASSESSED = Measure(None, NOT_ASSESSED)


def mesh_measures(image: np.ndarray, mesh: Mesh | None) -> dict[str, Measure]:
    """Every mesh measure of the face whose `mesh` was found in the BGR `image`; all not
    assessed without a mesh."""
    if mesh is None:
        return dict.fromkeys(MESH_MEASURES, _UNASSESSED)
    measures = _openness(mesh.points[:, :2].astype(np.float64))
    measures.update(occlusion_measures(image, mesh))
    return {name: measures[name] for name in MESH_MEASURES}


def _openness(points: np.ndarray) -> dict[str, Measure]:
    """`eyes_open` and `mouth_closed` from the mesh's x, y."""
    t = t_metric(points)
    if not t > 0:
        return dict.fromkeys(("eyes_open", "mouth_closed"), _UNASSESSED)
    eyes = min(_widest_gap(points, LEFT_EYE_LIDS), _widest_gap(points, RIGHT_EYE_LIDS)) / t
    mouth = _widest_gap(points, INNER_LIPS) / t
    return {
        # OFIQ's mappings: eyes 50 at a gap of 0.02 T; mouth 50 at 0.2 T, lower when wider.
        "eyes_open": Measure(eyes, ofiq_score(eyes, x0=0.02, w=0.01)),
        "mouth_closed": Measure(mouth, ofiq_score(mouth, a=1, s=-1, x0=0.2, w=0.06)),
    }


def t_metric(points: np.ndarray) -> float:
    """OFIQ's T: eye midpoint (from the eye corners) to chin, in the points' units."""
    eye_mid = points[list(LEFT_EYE_CORNERS + RIGHT_EYE_CORNERS)].mean(axis=0)
    return float(math.hypot(*(points[CHIN] - eye_mid)))


def _widest_gap(points: np.ndarray, pairs: tuple[tuple[int, int], ...]) -> float:
    """OFIQ's GetMaxPairDistance: the largest distance between the points of a pair."""
    return max(float(math.hypot(*(points[a] - points[b]))) for a, b in pairs)
