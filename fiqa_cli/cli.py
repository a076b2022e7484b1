"""The `fiqa` command group.

Subcommands are imported only when they run, so `fiqa score` never pays for torch and
`fiqa --help` stays instant.
"""

from __future__ import annotations

import importlib

import click

from fiqa_cli import __version__

# name -> "module:attribute" of the click command
COMMANDS = {
    "score": "fiqa_cli.commands.score:score",
    "best": "fiqa_cli.commands.best:best",
    "report": "fiqa_cli.commands.report:report",
    "export": "fiqa_cli.export.export_cli:export_command",
    "train": "fiqa_cli.export.train_cli:train_command",
    "doctor": "fiqa_cli.commands.doctor:doctor",
    "evaluate": "fiqa_cli.commands.evaluate:evaluate",
    "calibrate": "fiqa_cli.commands.calibrate:calibrate",
    "samples": "fiqa_cli.commands.samples:samples",
    "ray-score": "fiqa_cli.commands.ray_score:ray_score",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        return getattr(importlib.import_module(module_name), attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fiqa")
def main() -> None:
    """Face image quality assessment with CR-FIQA.

    Score photos with `fiqa score`, turn checkpoints into ONNX models with `fiqa export`,
    train with `fiqa train`, and check an installation with `fiqa doctor`.
    """
