"""`fiqa samples`: print the paths of real photos that ship with installed packages."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import click

from fiqa_cli.commands.options import FiqaCommand


def sample_photos() -> list[Path]:
    """Photos bundled in insightface's wheel (found without importing insightface)."""
    spec = importlib.util.find_spec("insightface")
    if spec is None or not spec.submodule_search_locations:
        return []
    images = Path(next(iter(spec.submodule_search_locations))) / "data" / "images"
    return [
        images / name for name in ("t1.jpg", "Tom_Hanks_54745.png") if (images / name).is_file()
    ]


@click.command(cls=FiqaCommand)
def samples() -> None:
    """Print paths of sample photos, one per line (pipe them into `fiqa score -`)."""
    photos = sample_photos()
    if not photos:
        raise click.ClickException("no sample photos found: is insightface installed?")
    for photo in photos:
        click.echo(str(photo))
