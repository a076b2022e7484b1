"""How INPUT arguments expand: folders recursively in sorted order, links followed once."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from fiqa_cli.runtime.inputs import expand_inputs, in_shard, parse_shard


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_folders_expand_recursively_sorted_with_any_suffix_case(tmp_path: Path) -> None:
    _touch(tmp_path / "b" / "2.JPG")
    _touch(tmp_path / "a" / "z.png")
    _touch(tmp_path / "b" / "1.jpeg")
    _touch(tmp_path / "notes.txt")
    paths = [item.path for item in expand_inputs([str(tmp_path)], io.BytesIO())]
    assert paths == [str(tmp_path / "a" / "z.png"), str(tmp_path / "b" / "1.jpeg"),
                     str(tmp_path / "b" / "2.JPG")]  # fmt: skip


def test_symlinked_folders_are_followed_and_cycles_end(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _touch(data / "alice" / "1.jpg")
    root = tmp_path / "split"
    root.mkdir()
    (root / "alice").symlink_to(data / "alice", target_is_directory=True)
    (data / "alice" / "loop").symlink_to(data, target_is_directory=True)
    paths = [item.path for item in expand_inputs([str(root)], io.BytesIO())]
    assert paths == [str(root / "alice" / "1.jpg")]


def test_folder_without_images_is_one_problem_item(tmp_path: Path) -> None:
    _touch(tmp_path / "readme.txt")
    (item,) = expand_inputs([str(tmp_path)], io.BytesIO())
    assert item.path == str(tmp_path) and "no image files" in item.problem


def test_shards_partition_inputs_whatever_their_order() -> None:
    paths = [f"/photos/{n:05d}, odd name é.jpg" for n in range(2000)]
    shards = [{p for p in paths if in_shard(p, k, 4)} for k in (1, 2, 3, 4)]
    assert set().union(*shards) == set(paths)
    assert sum(len(shard) for shard in shards) == len(paths)
    assert all(350 < len(shard) < 650 for shard in shards)
    reordered = {p for p in reversed(paths) if in_shard(p, 2, 4)}
    assert reordered == shards[1]


@pytest.mark.parametrize(
    ("text", "message"),
    [("0/4", "between 1 and N"), ("5/4", "between 1 and N"), ("1", "expected K/N"),
     ("a/b", "expected K/N"), ("1/0", "between 1 and N")],
)  # fmt: skip
def test_bad_shard_specs_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_shard(text)


def test_a_folder_takes_every_image_type_fiqa_decodes(tmp_path: Path) -> None:
    """One list of suffixes (IMAGE_SUFFIXES) for folders, each a type read_image decodes: a
    GIF in a folder is scored as a GIF named on the command line is."""
    import cv2
    import numpy as np

    from fiqa_cli.runtime.decode import read_image
    from fiqa_cli.runtime.image_files import IMAGE_SUFFIXES

    colour = np.random.default_rng(0).integers(0, 255, (64, 48, 3), dtype=np.uint8)
    grey = cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY)
    written = []
    for suffix in sorted(IMAGE_SUFFIXES):
        path = tmp_path / f"image{suffix}"
        image = grey if suffix in (".pbm", ".pgm") else colour
        assert cv2.imwrite(str(path), image), f"OpenCV cannot write {suffix} to test it"
        written.append(str(path))
    (tmp_path / "notes.txt").write_text("not an image")
    listed = [item.path for item in expand_inputs([str(tmp_path)], io.BytesIO())]
    assert listed == sorted(written)
    for path in listed:
        assert read_image(path).shape[:2] == (64, 48), path
