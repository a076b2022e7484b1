"""`fiqa evaluate` end to end on a small real LFW subset, checked against direct computations.

The independent reference below detects and aligns with the project's detector, but embeds,
compares and thresholds on its own (brute force, no fiqa_cli.evaluation.edc /
fiqa_cli.evaluation.recognition).
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from fiqa_cli.commands.evaluate import evaluate
from fiqa_cli.evaluation.baselines import BASELINE_NAMES
from fiqa_cli.evaluation.recognition import FaceRecognizer
from fiqa_cli.evaluation.samples import EvaluationSet, Sample
from fiqa_cli.evaluation.score_join import ScoredFace, joined_qualities

IDENTITIES = 20
FMRS = (1e-2, 1e-3)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def fr_model(shared_dir: Path) -> Path:
    return shared_dir / "models" / "mobilefacenet_eval.onnx"


@pytest.fixture(scope="module")
def detector_args(shared_dir: Path) -> list[str]:
    return [
        "--detector",
        "scrfd",
        "--detector-model",
        str(shared_dir / "models" / "scrfd_500m_bnkps.onnx"),
    ]


@pytest.fixture(scope="module")
def subset_root(lfw_images: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first identities (name order) with at least 3 images, copied to ROOT/IDENTITY/."""
    root = tmp_path_factory.mktemp("lfw_subset")
    chosen = [
        folder for folder in sorted(lfw_images.iterdir()) if len(list(folder.glob("*.jpg"))) >= 3
    ][:IDENTITIES]
    for folder in chosen:
        shutil.copytree(folder, root / folder.name)
    return root


@pytest.fixture(scope="module")
def reference(subset_root: Path, fr_model: Path, shared_dir: Path) -> dict:
    """Paths, identities, crops and embeddings computed here, without fiqa's EDC modules."""
    import onnxruntime as ort

    from fiqa_cli.runtime.align import align_face
    from fiqa_cli.runtime.decode import read_image
    from fiqa_cli.runtime.detect import create_detector

    detector = create_detector("scrfd", shared_dir / "models" / "scrfd_500m_bnkps.onnx")
    session = ort.InferenceSession(str(fr_model), providers=["CPUExecutionProvider"])
    paths, identities, crops, embeddings = [], [], [], []
    for path in sorted(subset_root.glob("*/*.jpg")):
        image = read_image(path)
        faces = detector.detect(image)
        if not faces:
            continue
        crop = align_face(image, faces[0].landmarks)
        tensor = ((crop[:, :, ::-1].astype(np.float32) - 127.5) / 128.0).transpose(2, 0, 1)
        embedding = session.run(None, {"input": tensor[None]})[0][0].astype(np.float64)
        paths.append(path)
        identities.append(path.parent.name)
        crops.append(crop)
        embeddings.append(embedding / np.linalg.norm(embedding))
    embeddings = np.array(embeddings)
    identities = np.array(identities)
    similarity = embeddings @ embeddings.T
    mated_mask = identities[:, None] == identities[None, :]
    np.fill_diagonal(mated_mask, False)
    oracle = np.array([similarity[i][mated_mask[i]].mean() for i in range(len(paths))])
    return {
        "paths": paths,
        "identities": identities,
        "crops": crops,
        "similarity": similarity,
        "oracle": oracle,
    }


def direct_fnmr(genuine: np.ndarray, impostor: np.ndarray, fmr: float) -> float:
    """FNMR at the threshold that lets at most floor(fmr * N) impostors score above it."""
    allowed = math.floor(fmr * len(impostor) + 1e-9)
    threshold = np.sort(impostor)[::-1][allowed]
    return float(np.mean(genuine <= threshold))


def run_evaluate(args: list[str]) -> str:
    result = CliRunner().invoke(evaluate, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.stdout


@pytest.fixture(scope="module")
def oracle_score_file(reference: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A `fiqa score`-style CSV whose qualities are the reference's oracle values."""
    path = tmp_path_factory.mktemp("scores") / "reference-oracle.csv"
    _write_scores(path, reference["paths"], reference["oracle"])
    return path


@pytest.fixture(scope="module")
def evaluated(
    subset_root: Path,
    fr_model: Path,
    detector_args: list[str],
    oracle_score_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict:
    out_dir = tmp_path_factory.mktemp("evaluate")
    args = [
        str(subset_root),
        "--fr-model",
        str(fr_model),
        *detector_args,
        "--scores",
        str(oracle_score_file),
    ]
    args += [option for fmr in FMRS for option in ("--fmr", str(fmr))]
    stdout = run_evaluate(
        [
            *args,
            "--out",
            str(out_dir / "table.json"),
            "--plot",
            str(out_dir / "edc.png"),
            "--log-fnmr",
        ]
    )
    rows = json.loads((out_dir / "table.json").read_text())
    return {"stdout": stdout, "rows": rows, "plot": out_dir / "edc.png", "by": _by_method_fmr(rows)}


def _by_method_fmr(rows: list[dict]) -> dict[tuple[str, float], dict]:
    return {(row["method"], row["fmr"]): row for row in rows}


def test_baselines_and_score_file_are_in_the_table(evaluated: dict) -> None:
    methods = {row["method"] for row in evaluated["rows"]}
    assert methods == {"reference-oracle", *BASELINE_NAMES}
    for method in methods:
        assert method in evaluated["stdout"]
    assert {row["fmr"] for row in evaluated["rows"]} == set(FMRS)


def test_oracle_beats_random(evaluated: dict) -> None:
    for fmr in FMRS:
        oracle, random = evaluated["by"][("oracle", fmr)], evaluated["by"][("random", fmr)]
        assert oracle["pauc@0.2"] < random["pauc@0.2"]
        assert oracle["auc"] < random["auc"]


def test_fnmr_without_discard_equals_direct_computation(evaluated: dict, reference: dict) -> None:
    identities, similarity = reference["identities"], reference["similarity"]
    a, b = np.triu_indices(len(identities), k=1)
    mated = identities[a] == identities[b]
    genuine, impostor = similarity[a[mated], b[mated]], similarity[a[~mated], b[~mated]]
    assert len(genuine) > 100 and len(impostor) >= 1 / min(FMRS)
    for fmr in FMRS:
        row = evaluated["by"][("random", fmr)]
        expected = direct_fnmr(genuine, impostor, fmr)
        assert row["fnmr@0"] == pytest.approx(expected, abs=1e-12)
        # every method starts from the same operating point
        for method in BASELINE_NAMES:
            assert evaluated["by"][(method, fmr)]["fnmr@0"] == row["fnmr@0"]


def test_score_file_joined_by_path_reproduces_the_oracle(evaluated: dict) -> None:
    for fmr in FMRS:
        from_file = evaluated["by"][("reference-oracle", fmr)]
        built_in = evaluated["by"][("oracle", fmr)]
        assert from_file["curve"] == built_in["curve"]


def test_plot_is_a_png(evaluated: dict) -> None:
    data = evaluated["plot"].read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    # One 6.5 x 5 inch panel per FMR at 120 dpi, with coloured curves drawn on white.
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (600, 780 * len(FMRS), 3)
    pixels = image.reshape(-1, 3)
    coloured = (pixels.max(axis=1).astype(int) - pixels.min(axis=1)) > 60
    assert coloured.mean() > 0.001 and len(np.unique(pixels[coloured], axis=0)) > 8


def test_pairs_file_mode_matches_direct_computation(
    subset_root: Path, fr_model: Path, detector_args: list[str], reference: dict, tmp_path: Path
) -> None:
    paths, similarity = reference["paths"], reference["similarity"]
    # LFW numbering: NAME_000i.jpg is image i of NAME.
    entries = [(path.parent.name, int(path.stem.rsplit("_", 1)[1])) for path in paths]
    by_identity: dict[str, list[int]] = {}
    for index, (name, _) in enumerate(entries):
        by_identity.setdefault(name, []).append(index)
    # Every mated pair; non-mated pairs among the first two images of each identity.
    genuine_pairs = [
        (members[i], members[j])
        for members in by_identity.values()
        for i in range(len(members))
        for j in range(i + 1, len(members))
    ]
    heads = [(name, index) for name, members in by_identity.items() for index in members[:2]]
    impostor_pairs = [
        (first, second)
        for k, (name, first) in enumerate(heads)
        for other, second in heads[k + 1 :]
        if other != name
    ]
    lines = [str(len(genuine_pairs))]
    lines += [f"{entries[i][0]}\t{entries[i][1]}\t{entries[j][1]}" for i, j in genuine_pairs]
    lines += [
        f"{entries[i][0]}\t{entries[i][1]}\t{entries[j][0]}\t{entries[j][1]}"
        for i, j in impostor_pairs
    ]
    pairs_file = tmp_path / "pairs.txt"
    pairs_file.write_text("\n".join(lines) + "\n")

    fmr = 0.01
    run_evaluate(
        [str(subset_root), "--fr-model", str(fr_model), *detector_args, "--pairs", str(pairs_file)]
        + ["--fmr", str(fmr), "--out", str(tmp_path / "table.csv")]
    )
    with (tmp_path / "table.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    genuine = np.array([similarity[i, j] for i, j in genuine_pairs])
    impostor = np.array([similarity[i, j] for i, j in impostor_pairs])
    expected = direct_fnmr(genuine, impostor, fmr)
    assert expected > 0  # the check would be vacuous at FNMR 0
    for row in rows:
        assert float(row["fnmr@0"]) == pytest.approx(expected, abs=1e-12)


@pytest.fixture(scope="module")
def crop_root(reference: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference's aligned crops as ROOT/IDENTITY/NAME.png (for --detector none)."""
    root = tmp_path_factory.mktemp("crops")
    for path, crop in zip(reference["paths"], reference["crops"], strict=True):
        (root / path.parent.name).mkdir(exist_ok=True)
        cv2.imwrite(str(root / path.parent.name / f"{path.stem}.png"), crop)
    return root


def test_aligned_crops_give_the_same_comparisons(
    evaluated: dict, fr_model: Path, crop_root: Path, tmp_path: Path
) -> None:
    stdout = run_evaluate(
        [str(crop_root), "--fr-model", str(fr_model), "--detector", "none", "--fmr", "1e-2"]
        + ["--out", str(tmp_path / "table.json")]
    )
    rows = _by_method_fmr(json.loads((tmp_path / "table.json").read_text()))
    assert "box-size" not in stdout and "detector-confidence" not in stdout
    for method in ("oracle", "sharpness", "exposure", "contrast"):
        assert rows[(method, 1e-2)]["curve"] == evaluated["by"][(method, 1e-2)]["curve"]


def test_rows_written_by_fiqa_score_join_every_face(
    subset_root: Path,
    fr_model: Path,
    detector_args: list[str],
    random_onnx_model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A random model's qualities mean nothing: this checks only that its rows, as `fiqa score`
    # writes them (JSONL, relative paths, boxes), reach every evaluated face.
    from fiqa_cli.commands.score import score

    scores = tmp_path / "random-model.jsonl"
    monkeypatch.chdir(subset_root.parent)
    scored = CliRunner().invoke(
        score,
        [subset_root.name, "--model", str(random_onnx_model), *detector_args]
        + ["--device", "cpu", "--out", str(scores)],
    )
    assert scored.exit_code == 0, scored.output
    result = CliRunner().invoke(
        evaluate,
        [str(subset_root), "--fr-model", str(fr_model), *detector_args, "--fmr", "1e-2"]
        + ["--scores", str(scores), "--name", "random-model"],
    )
    assert result.exit_code == 0, result.output
    assert "random-model" in result.stdout
    assert "have no quality" not in result.stderr


def test_score_rows_join_by_box_overlap_and_failures_rank_lowest(tmp_path: Path) -> None:
    samples = [Sample(tmp_path / f"{name}.jpg", "id") for name in "abc"]
    evaluation_set = EvaluationSet(
        samples,
        np.zeros((3, 112, 112, 3), np.uint8),
        np.array([[0, 0, 100, 100], [50, 50, 150, 150], [0, 0, 100, 100]], dtype=float),
        np.ones(3),
    )
    scored = {
        str(samples[0].path.resolve()): [
            ScoredFace(0, 0.9, np.array([200.0, 200, 400, 400])),
            ScoredFace(1, 0.4, np.array([5.0, 5, 100, 100])),
        ],
        # a face elsewhere in the image: not the evaluated face
        str(samples[1].path.resolve()): [ScoredFace(0, 0.7, np.array([300.0, 0, 400, 100]))],
    }
    qualities = joined_qualities(scored, evaluation_set)
    np.testing.assert_array_equal(qualities, [0.4, -np.inf, -np.inf])


def _linear_model(path: Path, input_shape: list, weights: np.ndarray) -> Path:
    """An ONNX model that flattens its input and multiplies by `weights`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["data"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "weights"], ["features"]),
        ],
        "linear",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, input_shape)],
        [
            helper.make_tensor_value_info(
                "features", TensorProto.FLOAT, [input_shape[0], weights.shape[1]]
            )
        ],
        [numpy_helper.from_array(weights, "weights")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.mark.parametrize(
    ("input_shape", "channels_first"),
    [([1, 3, 16, 16], True), (["batch", 16, 16, 3], False), ([4, 3, 16, 16], True)],
    ids=["nchw-batch-1", "nhwc-dynamic", "nchw-batch-4"],
)
def test_recognizer_reads_layout_size_and_batch(
    tmp_path: Path, input_shape: list, channels_first: bool
) -> None:
    rng = np.random.default_rng(1)
    weights = rng.normal(size=(16 * 16 * 3, 5)).astype(np.float32)
    recognizer = FaceRecognizer(
        _linear_model(tmp_path / "m.onnx", input_shape, weights), mean=100.0, std=50.0
    )
    crops = rng.integers(0, 256, size=(7, 32, 32, 3), dtype=np.uint8)  # resized to 16x16

    embeddings = recognizer.embed(crops)

    resized = np.stack([cv2.resize(crop, (16, 16)) for crop in crops])
    tensor = (resized[..., ::-1].astype(np.float32) - 100.0) / 50.0
    if channels_first:
        tensor = tensor.transpose(0, 3, 1, 2)
    expected = tensor.reshape(7, -1) @ weights
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert embeddings.shape == (7, 5)
    np.testing.assert_allclose(embeddings, expected, atol=1e-5)


def test_max_images_per_id_keeps_the_first_in_name_order(tmp_path: Path) -> None:
    from fiqa_cli.evaluation.samples import identity_samples

    for identity, count in (("Alice", 5), ("Bob", 2), ("Carol", 1)):
        (tmp_path / identity).mkdir()
        for index in range(count):
            (tmp_path / identity / f"{identity}_{index:04d}.jpg").write_bytes(b"")
    capped = identity_samples(tmp_path, min_images=2, limit_ids=None, max_images=3)
    assert [sample.path.name for sample in capped] == [
        "Alice_0000.jpg", "Alice_0001.jpg", "Alice_0002.jpg", "Bob_0000.jpg", "Bob_0001.jpg",
    ]  # fmt: skip
    assert len(identity_samples(tmp_path, min_images=2, limit_ids=None)) == 7


def test_scores_that_match_no_evaluated_face_are_refused(
    subset_root: Path, fr_model: Path, detector_args: list[str], tmp_path: Path
) -> None:
    scores = tmp_path / "elsewhere.jsonl"
    scores.write_text(json.dumps({"path": "/elsewhere/a.jpg", "status": "ok", "quality": 1}))
    result = CliRunner().invoke(
        evaluate,
        [str(subset_root), "--fr-model", str(fr_model), *detector_args, "--fmr", "1e-2"]
        + ["--scores", str(scores)],
    )
    assert result.exit_code == 1
    assert "elsewhere: no row of its scores file is a photo under" in result.output


def test_bootstrap_gives_intervals_and_paired_differences_against_the_first_scores(
    fr_model: Path, crop_root: Path, reference: dict, tmp_path: Path
) -> None:
    crops = [crop_root / path.parent.name / f"{path.stem}.png" for path in reference["paths"]]
    noise = np.random.default_rng(0).normal(scale=0.1, size=len(crops))
    qualities = {
        "oracle-scores": reference["oracle"],
        "same-scores": reference["oracle"],  # the reference's values under another name
        "noisy-scores": reference["oracle"] + noise,
    }
    args = [str(crop_root), "--fr-model", str(fr_model), "--detector", "none"]
    for name, values in qualities.items():
        path = tmp_path / f"{name}.csv"
        _write_scores(path, crops, values)
        args += ["--scores", str(path)]
    stdout = run_evaluate([*args, "--bootstrap", "200", "--out", str(tmp_path / "table.csv")])
    with (tmp_path / "table.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    by = {(row["method"], float(row["fmr"])): row for row in rows}
    assert {float(row["fmr"]) for row in rows} == {1e-2, 1e-3, 1e-4}  # the default FMRs
    assert "paired differences, method - oracle-scores" in stdout
    for (method, fmr), row in by.items():
        low, high = float(row["pauc@0.2_low"]), float(row["pauc@0.2_high"])
        assert low <= float(row["pauc@0.2"]) <= high
        assert float(row["gap_removed_low"]) <= float(row["gap_removed_high"])
        if method == "oracle-scores":
            assert row["versus"] == row["pauc_diff"] == row["pauc_diff_low"] == ""
            continue
        assert row["versus"] == "oracle-scores"
        own, first = float(row["pauc@0.2"]), float(by[("oracle-scores", fmr)]["pauc@0.2"])
        assert float(row["pauc_diff"]) == pytest.approx(own - first, abs=1e-15)
        assert float(row["pauc_diff_low"]) <= float(row["pauc_diff_high"])
    for fmr in (1e-2, 1e-3, 1e-4):
        # Paired: the same draws for both, so equal scores differ by exactly 0 in every draw.
        same = by[("same-scores", fmr)]
        assert float(same["pauc_diff_low"]) == float(same["pauc_diff_high"]) == 0.0
        noisy = by[("noisy-scores", fmr)]
        assert float(noisy["pauc_diff_high"]) > float(noisy["pauc_diff_low"])
    # 20 identities leave few false non-matches: only at FMR 1e-4 are there enough for the
    # random baseline's loss to the oracle-valued scores to exclude 0.
    assert float(by[("random", 1e-4)]["pauc_diff_low"]) > 0


def _write_scores(path: Path, images: list[Path], qualities: np.ndarray) -> None:
    """A `fiqa score`-style CSV giving each image one `ok` face of the given quality."""
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(
            ["path", "face", "quality", "status", "det_score", "x1", "y1", "x2", "y2", "message"]
        )
        for image, quality in zip(images, qualities, strict=True):
            writer.writerow([image, 0, repr(float(quality)), "ok", "", "", "", "", "", ""])


def test_a_pairs_file_takes_a_single_root(tmp_path: Path) -> None:
    roots = [tmp_path / "a", tmp_path / "b"]
    for root in roots:
        root.mkdir()
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("1\n")
    result = CliRunner().invoke(
        evaluate, [*map(str, roots), "--pairs", str(pairs), "--fr-model", str(pairs)]
    )
    assert result.exit_code == 2 and "--pairs names the photos of a single ROOT" in result.output


def test_a_pairs_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    from fiqa_cli.evaluation.lfw_pairs import PairsFileError, read_lfw_pairs

    pairs = tmp_path / "pairs.txt"
    pairs.write_bytes(b"1\nAlice\t1\t2\nB\xe9atrice\t1\t2\n")  # Latin-1, as old tools write
    with pytest.raises(PairsFileError, match="pairs.txt: not UTF-8 text"):
        read_lfw_pairs(pairs, tmp_path)


def test_a_face_with_two_different_rows_is_refused(tmp_path: Path) -> None:
    """Issue 30: `evaluate` took the first of two conflicting rows without a word."""
    from fiqa_cli.evaluation.score_join import read_scored_faces
    from fiqa_cli.runtime.rows import ScoreFileError

    header = "path,face,quality,status,det_score,x1,y1,x2,y2,message\n"
    row = "{}/a.jpg,0,{},ok,0.9,1,2,3,4,\n"
    scores = tmp_path / "scores.csv"
    scores.write_text(header + row.format(tmp_path, 0.5) + row.format(tmp_path, 0.5))
    assert len(read_scored_faces(scores)[str(tmp_path / "a.jpg")]) == 1  # a repeat counts once
    scores.write_text(header + row.format(tmp_path, 0.5) + row.format(tmp_path, 0.9))
    with pytest.raises(ScoreFileError, match="face 0 of .*a.jpg has two different rows"):
        read_scored_faces(scores)


def test_scores_that_name_no_photo_are_refused_before_any_alignment(tmp_path: Path) -> None:
    """The join is checked first: the recognition model (not loadable here) is never reached."""
    root = tmp_path / "people"
    for person in ("ann", "bob"):
        (root / person).mkdir(parents=True)
        for index in range(2):
            (root / person / f"{index}.jpg").write_bytes(b"never decoded")
    scores = tmp_path / "elsewhere.csv"
    scores.write_text(
        "path,face,quality,status,det_score,x1,y1,x2,y2,message\n"
        "/other/folder/0.jpg,0,0.5,ok,0.9,1,2,3,4,\n"
    )
    fr_model = tmp_path / "fr.onnx"
    fr_model.write_bytes(b"not a model")
    result = CliRunner().invoke(
        evaluate, [str(root), "--scores", str(scores), "--fr-model", str(fr_model)]
    )
    assert result.exit_code == 1
    assert "elsewhere: no row of its scores file is a photo under" in result.output
    assert "4 photos" in result.output and "fr.onnx" not in result.output
