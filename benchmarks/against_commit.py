"""`fiqa score` end to end here against an earlier commit of the project, on the same photos
(issue 31: what `--measures` costs over the commit before the face mesh).

The earlier commit is checked out as a git worktree under a scratch folder, with a virtual
environment that borrows this environment's packages (a `.pth` file) and installs only that
commit's fiqa (`pip install --no-deps -e`). Each configuration runs `fiqa score DIR -q` as a
fresh process on a folder of links to LFW devtrain photos (every `--every`-th from the second);
the configurations alternate, round after round, so that a machine's changing load falls on all
of them alike. The table gives each one's best wall time, its ratio to the earlier commit's run
of the same options and to the earlier commit's default run, and its best user CPU time.

    python benchmarks/against_commit.py [--base 26a4723] [--options="--measures"] \\
        [--options="--measures --inference-sessions 1"] [--images 1200] [--rounds 4]

(`--options=...` with the equals sign: the value starts with a dash.)

Pause other work first (a training run: `kill -STOP`); on this project's 2-core CPU one round
of two configurations on 1,200 photos takes about half a minute.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO_ROOT, add_shared_argument, lfw_photos, print_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shared_argument(parser)
    parser.add_argument("--base", default="26a4723", help="the earlier commit")
    parser.add_argument("--options", action="append", help="fiqa score options (repeatable)")
    parser.add_argument("--images", type=int, default=1200)
    parser.add_argument("--every", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    option_sets = args.options or ["--measures"]
    with tempfile.TemporaryDirectory(prefix="fiqa-against-") as scratch:
        folder = Path(scratch)
        photos = _linked_photos(lfw_photos(args.shared), folder / "photos", args)
        count = len(list(photos.iterdir()))
        here_fiqa = Path(sys.executable).with_name("fiqa")
        try:
            base_fiqa = _worktree_fiqa(args.base, folder / "base")
            runs = [
                (version, fiqa, options)
                for options in option_sets
                for version, fiqa in (("base", base_fiqa), ("here", here_fiqa))
            ]
            best = _best_times(runs, photos, folder / "out.csv", args.rounds)
        finally:
            worktree = str(folder / "base")
            subprocess.run(
                ["git", "-C", str(REPO_ROOT), "worktree", "remove", "--force", worktree],
                capture_output=True,
            )
    base_default = best[("base", option_sets[0])][0]
    rows = []
    for version, _, options in runs:
        wall, user = best[(version, options)]
        same_options = wall / best[("base", options)][0]
        label = args.base if version == "base" else "this checkout"
        rows.append(
            [label, options or "(none)", f"{wall:.2f}", f"{same_options:.3f}",
             f"{wall / base_default:.3f}", f"{user:.1f}"]
        )  # fmt: skip
    print(f"{count} photos, best of {args.rounds} alternated rounds")
    print_table(
        ["version", "options", "wall s", "x base, same options", "x base, first options",
         "user CPU s"],
        rows,
    )  # fmt: skip


def _best_times(
    runs: list[tuple[str, Path, str]], photos: Path, out: Path, rounds: int
) -> dict[tuple[str, str], tuple[float, float]]:
    """Best wall and best user CPU seconds of each (version, options) over alternated rounds."""
    best: dict[tuple[str, str], tuple[float, float]] = {}
    for round_number in range(rounds):
        shift = round_number % len(runs)  # none always runs first
        for version, fiqa, options in runs[shift:] + runs[:shift]:
            wall, user = _timed(fiqa, photos, options, out)
            previous = best.get((version, options), (float("inf"), float("inf")))
            best[(version, options)] = (min(previous[0], wall), min(previous[1], user))
    return best


def _linked_photos(photos: list[Path], folder: Path, args: argparse.Namespace) -> Path:
    folder.mkdir()
    for photo in photos[1 :: args.every][: args.images]:
        (folder / photo.name).symlink_to(photo)
    return folder


def _worktree_fiqa(commit: str, folder: Path) -> Path:
    """`fiqa` of `commit`, installed without dependencies over this environment's packages."""
    subprocess.run(
        ["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach", str(folder), commit],
        check=True, capture_output=True,
    )  # fmt: skip
    environment = folder / ".venv"
    subprocess.run([sys.executable, "-m", "venv", str(environment)], check=True)
    site = next((environment / "lib").glob("python*/site-packages"))
    here_site = next(path for path in map(Path, sys.path) if path.name == "site-packages")
    (site / "borrowed.pth").write_text(f"{here_site}\n")
    subprocess.run(
        [str(environment / "bin" / "pip"), "install", "-q", "--no-deps", "-e", str(folder)],
        check=True, capture_output=True,
    )  # fmt: skip
    return environment / "bin" / "fiqa"


def _timed(fiqa: Path, photos: Path, options: str, out: Path) -> tuple[float, float]:
    """Wall and user CPU seconds of one `fiqa score` run (its child's CPU, as `time` gives)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    start = time.perf_counter()
    subprocess.run(
        [str(fiqa), "score", str(photos), "-q", "--out", str(out), *shlex.split(options)],
        check=True, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )  # fmt: skip
    wall = time.perf_counter() - start
    return wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - before


if __name__ == "__main__":
    main()
