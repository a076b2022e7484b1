"""`fiqa ray-score`: on a local Ray instance it writes the rows `fiqa score` writes."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from fiqa_cli.cli import main
from fiqa_cli.runtime.rows import COLUMNS, NO_FACE, OK, UNREADABLE, read_rows

ray = pytest.importorskip("ray")
pq = pytest.importorskip("pyarrow.parquet")

PHOTOS = 6
NOT_UTF8_NAME = b"caf\xe9.jpg"
ESCAPED_NAME = "caf\\xe9.jpg"
HEAD_START_TIMEOUT_S = 90
# `ray start --block` drains its node for up to 30 s on SIGTERM.
HEAD_STOP_TIMEOUT_S = 60
# A client run takes well under a minute; one whose server died under it can wait forever.
CLIENT_RUN_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def local_ray():
    # "local": a new instance even where a cluster runs on this machine.
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(lfw_images: Path, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """LFW photos (one under a name that is not UTF-8), an unreadable file, a photo without
    a face and a folder without images."""
    folder = tmp_path_factory.mktemp("ray_inputs")
    sources = sorted(lfw_images.glob("*/*_0001.jpg"))[:PHOTOS]
    for source in sources[1:]:
        shutil.copy(source, folder / source.name)
    shutil.copy(sources[0], os.path.join(os.fsencode(folder), NOT_UTF8_NAME))
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    gradient = np.tile(np.linspace(0, 255, 200, dtype=np.uint8), (200, 1))
    cv2.imwrite(str(folder / "no_face.png"), cv2.merge([gradient] * 3))
    empty = tmp_path_factory.mktemp("no_images")
    return [str(folder), str(empty)]


def fiqa(*args: object):
    result = CliRunner().invoke(main, list(map(str, args)))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def score_rows(inputs: list[str], out: Path, detector_args: list[str]) -> list[dict]:
    """`fiqa score`'s rows, with the bytes of names that are not UTF-8 as \\xNN escapes:
    Arrow strings, unlike `fiqa score`'s CSV, must be UTF-8."""
    result = fiqa("score", *inputs, "--out", out, *detector_args, "--quiet")
    assert result.exit_code == 0, result.output
    rows = read_rows(out)
    for row in rows:
        row["path"] = (
            row["path"].encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        )
    return sorted_rows(rows)


def sorted_rows(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda row: (row["path"], row["face"] or 0))


def ray_rows(out: Path, fmt: str) -> list[dict]:
    """The rows of all part files, checking that there are several (the rows were spread)."""
    parts = sorted(out.iterdir())
    assert len(parts) > 1 and all(part.suffix == f".{fmt}" for part in parts)
    if fmt == "csv":
        return sorted_rows([row for part in parts for row in read_rows(part, "csv")])
    table = pq.read_table(out)
    assert tuple(table.column_names) == COLUMNS
    return sorted_rows(table.to_pylist())


def check_statuses(rows: list[dict], inputs: list[str]) -> None:
    statuses = {Path(row["path"]).name: row["status"] for row in rows}
    assert statuses[ESCAPED_NAME] == OK
    assert statuses["broken.jpg"] == UNREADABLE and statuses["no_face.png"] == NO_FACE
    assert statuses[Path(inputs[1]).name] == UNREADABLE
    assert list(statuses.values()).count(OK) == PHOTOS


# What ray-project/ray issue 63202 (a client server dying as it starts) prints on the driver.
RAY_CLIENT_START_RACE = ("Starting Ray client server failed", "psutil.ZombieProcess")
# Two inputs per batch spreads the inputs over both actors and several part files.
SPREAD = ["--actors", 2, "--batch-size", 2]


@pytest.mark.parametrize(("fmt", "detector"), [("csv", "mtcnn"), ("parquet", "scrfd")])
def test_ray_rows_equal_fiqa_score_rows(
    local_ray, inputs: list[str], shared_dir: Path, tmp_path: Path, fmt: str, detector: str
) -> None:
    detector_args = ["--detector", detector]
    if detector == "scrfd":
        # Shipped to the actors as bytes: they never open this path.
        detector_args += ["--detector-model", shared_dir / "models" / "scrfd_500m_bnkps.onnx"]
    expected = score_rows(inputs, tmp_path / "score.csv", detector_args)
    out = tmp_path / "ray_out"
    result = fiqa("ray-score", *inputs, "--out", out, "--format", fmt, *SPREAD, *detector_args)
    assert result.exit_code == 0, result.output
    assert ray_rows(out, fmt) == expected
    check_statuses(expected, inputs)


@pytest.mark.slow
def test_ray_client_address_runs_on_the_cluster(inputs: list[str], tmp_path: Path) -> None:
    """`--address ray://`: Ray Data cannot run in a Ray Client driver, so the pipeline is
    driven from a task on the cluster; the rows must not change."""
    detector_args = ["--detector", "mtcnn"]
    expected = score_rows(inputs, tmp_path / "score.csv", detector_args)
    gcs_port, client_port = free_ports(2)
    # A throwaway head on loopback: no authentication token to hand to the client.
    # The head starts a client server per driver and gives it 30 s by default; on two busy
    # cores (the whole suite, CI) that is not always enough.
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "disabled",
        "RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S": "180",
    }
    # Its own temp folder keeps the head out of /tmp/ray/ray_current_cluster, which other
    # processes' ray.init() would follow; short, because Ray puts Unix sockets below it.
    ray_temp = tempfile.mkdtemp(prefix="fiqa-ray-")
    head = subprocess.Popen(
        [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
         "--num-cpus", "2", "--include-dashboard", "false", "--port", str(gcs_port),
         "--ray-client-server-port", str(client_port), "--temp-dir", ray_temp],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(client_port, HEAD_START_TIMEOUT_S)
        out = tmp_path / "ray_out"
        command = [sys.executable, "-m", "fiqa_cli", "ray-score", *inputs, "--out", out,
                   "--format", "parquet", "--address", f"ray://127.0.0.1:{client_port}",
                   *SPREAD, *detector_args]  # fmt: skip
        # The head's per-driver client server sometimes dies as it is forked (ray-project/ray
        # issue 63202, open: a gRPC poller race in the proxier; seen here in about 1 of 3 full
        # suite runs on two busy cores, never alone). It shows as one of these two errors; only
        # they are retried, at most twice, and the rows are still compared in full.
        # A client left waiting on such a dead server (seen once in a full suite, 13 minutes
        # without output) counts as the same race.
        for _ in range(3):
            try:
                finished = subprocess.run(
                    list(map(str, command)), env=env, capture_output=True, text=True,
                    timeout=CLIENT_RUN_TIMEOUT_S,
                )  # fmt: skip
            except subprocess.TimeoutExpired as expired:
                stderr = expired.stderr or b""
                finished = subprocess.CompletedProcess(
                    expired.cmd, -1, "", f"timed out after {CLIENT_RUN_TIMEOUT_S} s\n"
                    + (stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr)
                )  # fmt: skip
                continue
            if not any(sign in finished.stderr for sign in RAY_CLIENT_START_RACE):
                break
        assert finished.returncode == 0, finished.stderr
        assert finished.stdout == ""
    finally:
        head.terminate()
        head.wait(timeout=HEAD_STOP_TIMEOUT_S)
        shutil.rmtree(ray_temp, ignore_errors=True)
    assert ray_rows(out, "parquet") == expected


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def wait_for_port(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise TimeoutError(f"no Ray client server on port {port} after {timeout_s} s")


def test_output_folder_must_be_new_or_empty(inputs: list[str], tmp_path: Path) -> None:
    (tmp_path / "earlier.csv").write_text("rows of an earlier run\n")
    result = fiqa("ray-score", *inputs, "--out", tmp_path)
    assert result.exit_code == 2 and "new or empty folder" in result.output


def test_missing_ray_names_the_extra(inputs: list[str], tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees without the extra
    result = fiqa("ray-score", *inputs, "--out", tmp_path / "out")
    assert result.exit_code == 1 and "pip install 'fiqa[ray]'" in result.output


def test_help_does_not_import_ray() -> None:
    program = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from fiqa_cli.cli import main\n"
        "for args in (['--help'], ['ray-score', '--help']):\n"
        "    result = CliRunner().invoke(main, args)\n"
        "    assert result.exit_code == 0 and 'ray-score' in result.output, result.output\n"
        "assert 'ray' not in sys.modules, 'help imported ray'\n"
    )
    subprocess.run([sys.executable, "-c", program], check=True)


def test_quiet_ray_run_writes_rows_and_nothing_on_stderr(inputs: list[str], tmp_path: Path) -> None:
    """-q keeps Ray's own log lines and progress bars off stderr (a fresh local Ray here)."""
    out = tmp_path / "quiet_out"
    done = subprocess.run(
        [sys.executable, "-m", "fiqa_cli", "ray-score", *inputs, "--out", str(out)]
        + ["--actors", "1", "--detector", "mtcnn", "-q"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONSAFEPATH": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert sorted(out.iterdir())
