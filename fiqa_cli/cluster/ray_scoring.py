"""Scoring on Ray Data: the inputs become a dataset of paths, a pool of actors each holding one
`Scorer` turns batches of paths into `fiqa score` rows, and the rows are written as partitioned
files (one per block) in a format of `rows.RAY_FORMATS`.

Each actor takes one CPU and runs its onnxruntime sessions on one thread: Ray spreads the
work over the cores by running one actor per core, and single-threaded sessions in each keep
the node from being oversubscribed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import pyarrow as pa
import ray
from ray.util.client import ray as ray_client

from fiqa_cli.choices import NO_DETECTOR
from fiqa_cli.runtime.build import build_detector, build_quality_model
from fiqa_cli.runtime.detect import DETECTOR_KINDS, Detector
from fiqa_cli.runtime.inputs import InputItem
from fiqa_cli.runtime.parquet_rows import arrow_schema, arrow_table
from fiqa_cli.runtime.pipeline import Scorer
from fiqa_cli.runtime.providers import CPU
from fiqa_cli.runtime.quality_model import QualityModel
from fiqa_cli.runtime.rows import COLUMNS, RAY_FORMATS, ROW_FORMATS

# Every block gets the same schema, so that a block whose numeric columns are all empty (a
# batch of unreadable files) still writes typed columns and the part files read back as one.
ROW_SCHEMA = arrow_schema(COLUMNS)

_CPUS_PER_ACTOR = 1


@dataclass(frozen=True)
class ScorerRecipe:
    """What an actor needs to build the driver's Scorer. The model files travel as bytes, so
    that no node needs them at the driver's paths (the embedded model's path, for one, is
    wherever that node installed fiqa)."""

    model: bytes
    detector: str  # a name in DETECTOR_KINDS, or none
    detector_model: bytes | None
    faces: str  # largest, central or all
    batch_size: int


def scorer_recipe(
    model: QualityModel, detector: Detector | None, *, faces: str, batch_size: int
) -> ScorerRecipe:
    """The recipe for the model and detector built (and so checked) on the driver; an `auto`
    detector is pinned to what it resolved to here, so that every node runs the same one."""
    name = NO_DETECTOR if detector is None else detector.name
    # A detector whose model file the user named sends it along; the others' files come with
    # fiqa or its packages on every node.
    sends_file = detector is not None and DETECTOR_KINDS[name].takes_model_file
    return ScorerRecipe(
        model=model.path.read_bytes(),
        detector=name,
        detector_model=detector.source.read_bytes() if sends_file else None,
        faces=faces,
        batch_size=batch_size,
    )


def score_on_ray(
    items: Iterable[InputItem],
    recipe: ScorerRecipe,
    out: str,
    *,
    fmt: str,
    actors: int | None = None,
) -> None:
    """Score `items` on the connected Ray cluster and write the rows under the folder (or
    pyarrow filesystem URI) `out`, in no particular order. `actors` fixes the pool size;
    None lets it grow to one actor per CPU of the cluster."""
    if fmt not in RAY_FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(RAY_FORMATS)}")
    records = [{"path": item.path, "problem": item.problem} for item in items]
    if ray_client.is_connected():
        # Ray Data cannot execute in a Ray Client (ray://) driver, which has no core worker:
        # the pipeline is driven from a task on the cluster instead.
        driver = ray.remote(num_cpus=0)(_score_records)
        ray.get(driver.remote(records, recipe, out, fmt, actors))
    else:
        _score_records(records, recipe, out, fmt, actors)


def _score_records(
    records: list[dict[str, str | None]],
    recipe: ScorerRecipe,
    out: str,
    fmt: str,
    actors: int | None,
) -> None:
    if actors is None:
        pool = ray.data.ActorPoolStrategy(min_size=1, max_size=_cluster_cpus())
    else:
        pool = ray.data.ActorPoolStrategy(size=actors)
    rows = ray.data.from_items(records).map_batches(
        _ScoringActor,
        # One shared copy of the model bytes in the object store, however many actors.
        fn_constructor_args=(ray.put(recipe),),
        compute=pool,
        num_cpus=_CPUS_PER_ACTOR,
        batch_size=recipe.batch_size,
        batch_format="pyarrow",
    )
    getattr(rows, ROW_FORMATS[fmt].ray_write)(out)


def _cluster_cpus() -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


class _ScoringActor:
    """One Scorer per actor, built once: creating the sessions costs far more than a batch."""

    def __init__(self, recipe_ref: ray.ObjectRef):
        cv2.setNumThreads(_CPUS_PER_ACTOR)
        self._scorer = _build_scorer(ray.get(recipe_ref))

    def __call__(self, batch: pa.Table) -> pa.Table:
        items = [InputItem(**record) for record in batch.to_pylist()]
        records = [
            row.values() for rows in self._scorer.score(items, answer_each=False) for row in rows
        ]
        return arrow_table(records, ROW_SCHEMA)


def _build_scorer(recipe: ScorerRecipe) -> Scorer:
    # onnxruntime reads the files when it creates the sessions; they are not needed after.
    with tempfile.TemporaryDirectory(prefix="fiqa-ray-") as folder:
        model_path = Path(folder) / "model.onnx"
        model_path.write_bytes(recipe.model)
        detector_path = None
        if recipe.detector_model is not None:
            detector_path = Path(folder) / "detector.onnx"
            detector_path.write_bytes(recipe.detector_model)
        model = build_quality_model(model_path, [CPU], shared=True, threads=_CPUS_PER_ACTOR)
        detector = build_detector(recipe.detector, detector_path, threads=_CPUS_PER_ACTOR)
    return Scorer(model, detector, faces=recipe.faces, batch_size=recipe.batch_size)
