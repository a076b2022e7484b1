"""The measures read from the face mesh (issue 31): the mesh reaches `measure_face` from the
pipeline's workers only with measures, on real LFW photos and controlled edits of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fiqa_cli.runtime import pipeline
from fiqa_cli.runtime.build import build_scoring
from fiqa_cli.runtime.face_mesh import Mesh, five_points
from fiqa_cli.runtime.inputs import InputItem
from fiqa_cli.runtime.pipeline import Scorer

PHOTO = "Aaron_Peirsol/Aaron_Peirsol_0001.jpg"


def _scoring(measures: bool):
    return build_scoring(
        model=None, detector="yunet", detector_model=None, device="cpu", workers=2,
        measures=measures,
    )  # fmt: skip


def test_a_mesh_session_is_opened_for_measures_only():
    assert _scoring(False).face_mesh is None
    assert _scoring(True).face_mesh is not None


def test_the_workers_pass_each_face_its_mesh(lfw_images: Path, monkeypatch):
    scoring = _scoring(True)
    given: list[tuple[np.ndarray, Mesh | None]] = []
    measure_face = pipeline.measure_face

    def recorded(image, face, faces, crop, *, mesh=None):
        given.append((face.landmarks, mesh))
        return measure_face(image, face, faces, crop, mesh=mesh)

    monkeypatch.setattr(pipeline, "measure_face", recorded)
    scorer = Scorer(
        scoring.sessions, scoring.detector, workers=2, measures=True,
        face_mesh=scoring.face_mesh,
    )  # fmt: skip
    items = [InputItem(str(lfw_images / PHOTO))] * 3
    rows = [row for rows in scorer.score(items, answer_each=False) for row in rows]
    assert len(rows) == 3 and len(given) == 3
    for landmarks, mesh in given:
        assert mesh is not None and mesh.presence > 0.9
        iod = np.linalg.norm(landmarks[1] - landmarks[0])
        assert np.abs(five_points(mesh.points) - landmarks).max() < 0.25 * iod
