"""The measures read from a face's MediaPipe mesh (`fiqa_cli.runtime.face_mesh`): one function,
`mesh_measures`, that `measure_face` calls with the face's mesh (None: not assessed)."""

from __future__ import annotations

import numpy as np

from fiqa_cli.runtime.face_mesh import Mesh
from fiqa_cli.runtime.measure_kinds import NOT_ASSESSED, Measure

# The measures this module gives, in their column order.
MESH_MEASURES: tuple[str, ...] = ()

_UNASSESSED = Measure(None, NOT_ASSESSED)


def mesh_measures(image: np.ndarray, mesh: Mesh | None) -> dict[str, Measure]:
    """Every mesh measure of the face whose `mesh` was found in the BGR `image`; all not
    assessed without a mesh."""
    if mesh is None:
        return dict.fromkeys(MESH_MEASURES, _UNASSESSED)
    return dict.fromkeys(MESH_MEASURES, _UNASSESSED)
