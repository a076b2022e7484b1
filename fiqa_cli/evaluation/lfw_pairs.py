"""LFW `pairs.txt` files: which two images each comparison of a verification protocol uses."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from fiqa_cli.errors import FiqaError


class LfwPair(NamedTuple):
    first: Path
    second: Path
    same_person: bool


class PairsFileError(FiqaError):
    """A line of the pairs file is neither `NAME i j` nor `NAME1 i NAME2 j`."""


def read_lfw_pairs(pairs_path: Path, image_root: Path) -> list[LfwPair]:
    """The pairs of an LFW pairs file, in file order.

    After the header line (the counts), `NAME i j` is a genuine pair and `NAME1 i NAME2 j` an
    impostor pair; image i of NAME is IMAGE_ROOT/NAME/NAME_000i.jpg. Blank lines are skipped.
    """

    def image(name: str, number: str) -> Path:
        return Path(image_root) / name / f"{name}_{int(number):04d}.jpg"

    pairs = []
    try:
        lines = Path(pairs_path).read_text(encoding="utf-8").splitlines()[1:]
    except UnicodeDecodeError as error:
        raise PairsFileError(f"{pairs_path}: not UTF-8 text ({error.reason})") from None
    for number, line in enumerate(lines, start=2):
        fields = line.split()
        try:
            if len(fields) == 3:
                name, first, second = fields
                pairs.append(LfwPair(image(name, first), image(name, second), True))
            elif len(fields) == 4:
                name, first, other, second = fields
                pairs.append(LfwPair(image(name, first), image(other, second), False))
            elif fields:
                raise ValueError
        except ValueError:
            raise PairsFileError(
                f"{pairs_path}:{number}: expected `NAME i j` or `NAME1 i NAME2 j`"
            ) from None
    return pairs
