"""The scorer's worker pool: the same rows as one thread, in input order, with a bounded
number of inputs prepared ahead of inference."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from fiqa_cli.runtime.inputs import InputItem
from fiqa_cli.runtime.pipeline import Scorer
from fiqa_cli.runtime.providers import CPU, shared_cpu_options
from fiqa_cli.runtime.quality_model import QualityModel
from fiqa_cli.runtime.rows import OK, UNREADABLE


@pytest.fixture(scope="module")
def crop_items(tmp_path_factory: pytest.TempPathFactory) -> list[InputItem]:
    """Forty aligned-size crops of different content, with a broken file and a problem item."""
    folder = tmp_path_factory.mktemp("crops")
    rng = np.random.default_rng(0)
    items = []
    for index in range(40):
        path = folder / f"crop{index:02d}.png"
        cv2.imwrite(str(path), rng.integers(0, 256, (112, 112, 3), dtype=np.uint8))
        items.append(InputItem(str(path)))
    broken = folder / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    items.insert(7, InputItem(str(broken)))
    items.insert(20, InputItem(str(folder / "empty"), problem="no image files in folder"))
    return items


def _scorer(model_path: Path, workers: int, batch_size: int) -> Scorer:
    options = shared_cpu_options() if workers > 1 else None
    return Scorer(
        QualityModel(model_path, [CPU], options),
        None,
        batch_size=batch_size,
        workers=workers,
    )


def test_workers_give_the_rows_of_one_thread_in_input_order(
    random_onnx_model: Path, crop_items: list[InputItem]
) -> None:
    alone = list(_scorer(random_onnx_model, 1, 8).score(crop_items, answer_each=False))
    pooled = list(_scorer(random_onnx_model, 3, 4).score(crop_items, answer_each=False))
    assert [rows[0].path for rows in pooled] == [item.path for item in crop_items]
    assert [row.status for rows in pooled for row in rows].count(UNREADABLE) == 2
    for first, second in zip(alone, pooled, strict=True):
        assert [row.status for row in first] == [row.status for row in second]
        assert [row.message for row in first] == [row.message for row in second]
        if first[0].status == OK:
            assert second[0].quality == pytest.approx(first[0].quality, rel=1e-4, abs=1e-4)


def test_workers_read_a_bounded_number_of_inputs_ahead(
    random_onnx_model: Path, crop_items: list[InputItem]
) -> None:
    pulled = 0
    lock = threading.Lock()

    def counted() -> Iterator[InputItem]:
        nonlocal pulled
        for item in crop_items:
            with lock:
                pulled += 1
            yield item

    batch_size, workers = 2, 2
    rows = _scorer(random_onnx_model, workers, batch_size).score(counted(), answer_each=False)
    first = next(rows)
    assert first[0].path == crop_items[0].path
    # Read ahead: two batches plus one input per worker, and the one that triggered the yield.
    assert pulled <= 2 * batch_size + workers + 1 < len(crop_items)
    rows.close()  # a consumer that stops early shuts the pool down instead of hanging
    assert pulled < len(crop_items)


class CountingModel(QualityModel):
    """A real session that counts the crops it scored and the threads that ran it."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.crops = 0
        self.threads: set[str] = set()

    def predict_batched(self, crops_bgr: list[np.ndarray], batch_size: int) -> np.ndarray:
        self.crops += len(crops_bgr)
        self.threads.add(threading.current_thread().name)
        return super().predict_batched(crops_bgr, batch_size)


@pytest.mark.parametrize("workers", [1, 3])
def test_sessions_side_by_side_give_the_rows_of_one_session(
    random_onnx_model: Path, crop_items: list[InputItem], workers: int
) -> None:
    alone = list(_scorer(random_onnx_model, 1, 4).score(crop_items, answer_each=False))
    sessions = [CountingModel(random_onnx_model, [CPU], shared_cpu_options(1)) for _ in range(3)]
    scorer = Scorer(sessions, None, batch_size=4, workers=workers)
    side_by_side = list(scorer.score(crop_items, answer_each=False))
    assert [[row.path for row in rows] for rows in side_by_side] == [
        [row.path for row in rows] for rows in alone
    ]
    for first, second in zip(alone, side_by_side, strict=True):
        assert [(row.status, row.message) for row in first] == [
            (row.status, row.message) for row in second
        ]
        if first[0].status == OK:
            assert second[0].quality == pytest.approx(first[0].quality, rel=1e-4, abs=1e-4)
    # Every session took batches, in the pool's threads; together they scored every crop once.
    assert all(session.crops > 0 for session in sessions)
    assert sum(session.crops for session in sessions) == 40
    assert all(name.startswith("fiqa-infer") for s in sessions for name in s.threads)


def test_a_cpu_of_two_cores_scores_on_two_sessions_by_default(
    random_onnx_model: Path, monkeypatch
) -> None:
    """Two one-thread sessions where none are asked for on a CPU of two or more cores with two
    or more workers; one on one core, with one worker and wherever a GPU is asked for; a number
    given is kept."""
    from fiqa_cli.runtime import build
    from fiqa_cli.runtime.providers import CUDA

    assert build.default_inference_sessions([CPU], 2, 2) == 2
    assert build.default_inference_sessions([CPU], 16, 16) == 2
    assert build.default_inference_sessions([CPU], 1, 2) == 1
    assert build.default_inference_sessions([CPU], 2, 1) == 1
    assert build.default_inference_sessions([(CUDA, {}), CPU], 16, 16) == 1
    for cpus, asked, expected in ((2, None, 2), (1, None, 1), (2, 1, 1), (2, 3, 3)):
        monkeypatch.setattr(build, "usable_cpus", lambda cpus=cpus: cpus)
        scoring = build.build_scoring(
            model=random_onnx_model, detector="none", detector_model=None, device="cpu",
            workers=2, inference_sessions=asked,
        )  # fmt: skip
        assert len(scoring.sessions) == expected
