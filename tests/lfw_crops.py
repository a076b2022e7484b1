"""Test material: near-aligned 112x112 crops of LFW photos, cut without a detector."""

from __future__ import annotations

from pathlib import Path

import cv2


def largest_identities(lfw_images: Path, count: int) -> list[Path]:
    folders = sorted(lfw_images.iterdir(), key=lambda d: (-len(list(d.iterdir())), d.name))
    return folders[:count]


def write_centre_crops(lfw_images: Path, root: Path, identities: int, per_identity: int) -> None:
    """ROOT/NAME/NAME_000i.jpg: 112x112 centre crops of the first photos of the LFW identities
    with the most photos."""
    for person in largest_identities(lfw_images, identities):
        (root / person.name).mkdir(parents=True)
        for photo in sorted(person.glob("*.jpg"))[:per_identity]:
            crop = cv2.resize(cv2.imread(str(photo))[69:181, 69:181], (112, 112))
            cv2.imwrite(str(root / person.name / photo.name), crop)
