"""Split an identity folder (ROOT/IDENTITY/*.jpg) into train and held-out folders of symlinks.

The rule is fixed and needs no seed: an identity is held out when the first 8 hex digits of the
SHA-256 of its folder name, read as an integer, are divisible by `--every` (5 -> about 20%).
The same name always lands on the same side, whatever else the folder holds.

    python tools/split_identities.py ../shared/data/lfw-devtrain/images runs/lfw-split
    python tools/split_identities.py ../shared/data/celeba-wild runs/celeba-split

CelebA's identity folders are its identity numbers: the same rule holds out 42 of its 299
identities (885 of 6,276 photos), LFW DevTrain's 853 of 4,038 (2,166 of 9,525 photos).
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path


def is_held_out(identity: str, every: int) -> bool:
    return int(hashlib.sha256(identity.encode()).hexdigest()[:8], 16) % every == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("out", type=Path, help="gets train/ and heldout/ folders of symlinks")
    parser.add_argument("--every", type=int, default=5, help="hold out 1 identity in EVERY")
    args = parser.parse_args()

    counts = {"train": [0, 0], "heldout": [0, 0]}
    for identity_dir in sorted(p for p in args.root.resolve().iterdir() if p.is_dir()):
        side = "heldout" if is_held_out(identity_dir.name, args.every) else "train"
        link = args.out / side / identity_dir.name
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink():
            link.symlink_to(identity_dir, target_is_directory=True)
        counts[side][0] += 1
        counts[side][1] += sum(1 for _ in identity_dir.iterdir())
    for side, (identities, images) in counts.items():
        print(f"{side}: {identities} identities, {images} images")


if __name__ == "__main__":
    main()
