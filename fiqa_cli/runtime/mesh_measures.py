"""The measures read from a face's MediaPipe mesh (`fiqa_cli.runtime.face_mesh`): one function,
`mesh_measures`, that `measure_face` calls with the face's mesh (None: not assessed)."""

from __future__ import annotations

import numpy as np

from fiqa_cli.runtime.face_mesh import Mesh
from fiqa_cli.runtime.measure_kinds import NOT_ASSESSED, Measure
from fiqa_cli.runtime.occlusion import occlusion_measures

# The measures this module gives, in their column order.
MESH_MEASURES: tuple[str, ...] = ("eyes_visible", "mouth_occlusion")

_UNASSESSED = Measure(None, NOT_ASSESSED)


def mesh_measures(image: np.ndarray, mesh: Mesh | None) -> dict[str, Measure]:
    """Every mesh measure of the face whose `mesh` was found in the BGR `image`; all not
    assessed without a mesh."""
    if mesh is None:
        return dict.fromkeys(MESH_MEASURES, _UNASSESSED)
    measures = occlusion_measures(image, mesh)
    return {name: measures[name] for name in MESH_MEASURES}
