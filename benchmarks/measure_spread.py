"""How some measures spread over real photos (issue 31): each measure's value and score at
the 5th, 25th, 50th, 75th and 95th percentiles, and how many faces it could not assess, as
`fiqa score --measures` computes them (the chosen face of each photo, decoded from its file).

    python benchmarks/measure_spread.py [--shared PATH] [--data lfw|celeba] [--images N]
        [--detector D] [--measures NAME,NAME]
"""

from __future__ import annotations

import argparse

import numpy as np
from common import add_shared_argument, lfw_photos, print_table, spread_sample

from fiqa_cli.runtime.detect import create_detector
from fiqa_cli.runtime.inputs import InputItem
from fiqa_cli.runtime.named_models import DEFAULT_MODEL, model_file
from fiqa_cli.runtime.pipeline import Scorer
from fiqa_cli.runtime.providers import CPU
from fiqa_cli.runtime.quality_model import QualityModel
from fiqa_cli.runtime.rows import OK

DEFAULT_MEASURES = "background_uniformity,compression_artifacts,luminance_variance"
PERCENTILES = (5, 25, 50, 75, 95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shared_argument(parser)
    parser.add_argument("--data", choices=("lfw", "celeba"), default="lfw")
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--detector", default="scrfd_2.5g_bnkps.onnx")
    parser.add_argument("--measures", default=DEFAULT_MEASURES)
    args = parser.parse_args()
    if args.data == "lfw":
        photos = lfw_photos(args.shared)
    else:
        photos = sorted((args.shared / "data" / "celeba-wild").glob("*/*.jpg"))
    paths = spread_sample(photos, args.images)
    detector = create_detector("scrfd", args.shared / "models" / args.detector)
    model = QualityModel(model_file(DEFAULT_MODEL), [CPU])
    scorer = Scorer(model, detector, measures=True)
    items = [InputItem(str(path)) for path in paths]
    rows = [row for each in scorer.score(items, answer_each=False) for row in each]
    faces = [row for row in rows if row.status == OK and row.measures]
    table = []
    for name in args.measures.split(","):
        assessed = [row.measures[name] for row in faces if row.measures[name].score >= 0]
        values = np.array([measure.value for measure in assessed])
        scores = np.array([measure.score for measure in assessed])
        table.append(
            [name, f"{len(faces) - len(assessed)}"]
            + [f"{v:.4g}" for v in np.percentile(values, PERCENTILES)]
            + [" ".join(f"{s:.0f}" for s in np.percentile(scores, PERCENTILES))]
        )
    header = ["measure", "not assessed"] + [f"p{p}" for p in PERCENTILES] + ["score p5..p95"]
    print_table(header, table)
    print(f"\n{len(faces)} faces of {len(paths)} {args.data} photos, SCRFD ({args.detector})")


if __name__ == "__main__":
    main()
