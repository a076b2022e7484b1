"""The scoring runtime on a system without fcntl, os.O_NONBLOCK or os.O_CLOEXEC (Windows, where
many capture-station PCs run): checked here in child processes that hide those names before
fiqa is imported. Windows itself is not run in CI."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# Hides what Windows lacks, after the third-party libraries are in (they have Windows code of
# their own: what is checked is fiqa's), and stands in for msvcrt.locking with POSIX record
# locks of the same meaning: exclusive, byte-ranged from the current position, non-blocking,
# held until the process ends, EACCES when another process holds them.
WINDOWS_LIKE = textwrap.dedent(
    """
    import errno, os, sys
    import click, cv2, numpy, onnx, onnxruntime, insightface.model_zoo  # noqa: F401
    import insightface.utils.face_align  # noqa: F401
    import fcntl as posix_fcntl

    class msvcrt:
        LK_NBLCK = 2

        @staticmethod
        def locking(descriptor, mode, count):
            assert mode == msvcrt.LK_NBLCK
            try:
                posix_fcntl.lockf(
                    descriptor, posix_fcntl.LOCK_EX | posix_fcntl.LOCK_NB, count, 0, os.SEEK_CUR
                )
            except OSError:
                raise PermissionError(errno.EACCES, "Permission denied") from None

    sys.modules["fcntl"] = None  # import fcntl now raises ImportError
    sys.modules["msvcrt"] = msvcrt
    for name in ("O_NONBLOCK", "O_CLOEXEC", "O_NOCTTY"):
        delattr(os, name)
    assert not any(name.startswith("fiqa_cli") for name in sys.modules)
    """
)


def run_windows_like(code: str, *args: object, **options) -> subprocess.Popen:
    script = WINDOWS_LIKE + textwrap.dedent(code)
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **options,
    )


def test_scores_without_fcntl_or_nonblocking_open(lfw_images: Path, tmp_path: Path) -> None:
    photo = sorted(lfw_images.glob("*/*_0001.jpg"))[0]
    out = tmp_path / "scores.csv"
    child = run_windows_like(
        """
        from fiqa_cli.cli import main
        main(sys.argv[1:])
        """,
        *("score", photo, "--out", out, "--device", "cpu", "--quiet"),
    )
    stdout, stderr = child.communicate(timeout=300)
    assert child.returncode == 0, stderr
    lines = out.read_text().splitlines()
    assert lines[0].startswith("path,face,quality,status") and len(lines) == 2
    assert lines[1].startswith(f"{photo},0,") and ",ok," in lines[1]
    assert b"\r\n" not in out.read_bytes()


def test_a_second_run_is_refused_the_output_while_the_first_holds_it(tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    holder = run_windows_like(
        """
        from fiqa_cli.runtime.output_file import OutputFile
        with OutputFile(sys.argv[1], append=True) as output:
            output.write("held\\n")
            print("locked", flush=True)
            sys.stdin.readline()
        """,
        out,
    )
    try:
        assert holder.stdout.readline().strip() == "locked", holder.stderr.read()
        second = run_windows_like(
            """
            from fiqa_cli.runtime.output_file import OutputError, OutputFile
            try:
                OutputFile(sys.argv[1], append=True)
            except OutputError as error:
                print(error)
            """,
            out,
        )
        stdout, stderr = second.communicate(timeout=120)
        assert second.returncode == 0, stderr
        assert "is being written by another fiqa run" in stdout
    finally:
        holder.communicate("\n", timeout=60)
    # The lock ends with its holder, and the rows are whole and readable meanwhile.
    assert out.read_text() == "held\n"
    after = run_windows_like(
        """
        from fiqa_cli.runtime.output_file import OutputFile
        with OutputFile(sys.argv[1], append=True) as output:
            output.write("next\\n")
        """,
        out,
    )
    assert after.wait(timeout=120) == 0, after.stderr.read()
    assert out.read_text() == "held\nnext\n"


def test_every_runtime_module_imports_without_posix_only_names() -> None:
    """A module-level `import fcntl` or `os.O_NONBLOCK` anywhere in the runtime fails here."""
    child = run_windows_like(
        """
        import importlib, pkgutil
        import fiqa_cli.runtime
        for module in pkgutil.iter_modules(fiqa_cli.runtime.__path__):
            importlib.import_module("fiqa_cli.runtime." + module.name)
        print("ok")
        """
    )
    stdout, stderr = child.communicate(timeout=300)
    assert child.returncode == 0 and stdout.strip() == "ok", stderr
