"""What a training run taught its quality head about degraded faces.

For a sample of the run's own training faces, clean and degraded at fixed strengths, prints the
median cosine to the own class centre (CCS), to the nearest other centre (NNCCS), the certainty
ratio CR the loss would have used as the target, and the quality the head predicts. A degradation
whose CR barely differs from the clean one gives the head nothing to learn; a head whose
prediction moves much less than the CR has not learnt what there was.

Reads the data, crop cache, face choice and CR formula from the checkpoint's config, so the run
folder must still hold its aligned-crops cache (or a link to it).
For a run trained with --cr-teacher, CR is still that of the run's own ArcFace centres, not the
teacher's target the head was trained on.

    python tools/certainty_ratio_check.py runs/default-v5/checkpoint.pt --samples 300
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from fiqa_cli.choices import LARGEST_FACE
from fiqa_cli.export.augment import to_input_tensor
from fiqa_cli.export.checkpoint import load_backbone
from fiqa_cli.export.image_folder import AlignedCropCache
from fiqa_cli.export.loss import ArcFaceHead, certainty_ratio
from fiqa_cli.export.multi_root import image_folders
from fiqa_cli.model_contract import COLOR_ORDER
from fiqa_cli.runtime.degrade import DEGRADATIONS, degrade

STRENGTHS = (0.25, 0.5, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="a fiqa train checkpoint.pt")
    parser.add_argument("--samples", type=int, default=300, help="training faces, drawn at random")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    checkpoint = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    config = checkpoint["config"]
    backbone = load_backbone(args.checkpoint).model
    head = ArcFaceHead(config["embedding_size"], config["num_classes"])
    head.load_state_dict(checkpoint["head"])
    cache = AlignedCropCache(
        Path(config["out"]) / "aligned-crops",
        config["detector"],
        Path(config["detector_model"]) if config["detector_model"] else None,
        # Runs from before --faces existed took the largest face.
        config.get("faces", LARGEST_FACE),
    )
    # Runs from before several --data roots existed saved one path.
    roots = config["data"] if isinstance(config["data"], list) else [config["data"]]
    dataset = image_folders(
        [Path(root) for root in roots], cache, min_images_per_id=config["min_images_per_id"]
    )
    if dataset.fingerprint != config["dataset_fingerprint"]:
        raise SystemExit(f"{', '.join(roots)} no longer hold the data this run trained on")
    rng = np.random.default_rng(args.seed)
    chosen = rng.choice(len(dataset), min(args.samples, len(dataset)), replace=False)
    faces, identities = zip(*(dataset[int(i)] for i in chosen), strict=True)
    labels = torch.tensor(identities)

    @torch.no_grad()
    def medians(images: list[np.ndarray]) -> str:
        embeddings, quality = backbone(torch.stack([to_input_tensor(rgb) for rgb in images]))
        ratio = certainty_ratio(head(embeddings), labels, config["cr_formula"])
        columns = (ratio.ccs, ratio.nnccs, ratio.ratio, quality)
        return " ".join(f"{column.median().item():8.3f}" for column in columns)

    print(f"{len(faces)} training faces of {', '.join(roots)}; medians")
    print(f"{'degradation':<14} {'strength':>8} {'CCS':>8} {'NNCCS':>8} {'CR':>8} {'quality':>8}")
    print(f"{'none':<14} {0:8g} {medians(faces)}")
    for kind in DEGRADATIONS:
        noise = np.random.default_rng(args.seed)
        for strength in STRENGTHS:
            degraded = [
                degrade(f, kind, strength, color_order=COLOR_ORDER, rng=noise) for f in faces
            ]
            print(f"{kind:<14} {strength:8g} {medians(degraded)}")


if __name__ == "__main__":
    main()
