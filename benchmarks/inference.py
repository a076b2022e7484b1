"""The default quality model's inference on this CPU (issue 21): onnxruntime settings, batch
size, and the ceiling its own layers allow.

1. Settings: crops/s of the model (preprocessing included, as `fiqa score` runs it) for each
   graph optimisation level, intra-op thread count and thread spinning, at one batch size;
   then every batch size with `fiqa score`'s options and with the fastest setting found.
2. Ceiling: every Conv and Gemm node of the graph run alone, as a one-node ONNX model of the
   same shapes and weights, at that batch size. The sum of their times is a floor on the
   model's time (nothing else counted), so batch / sum is the most crops/s these operators
   allow at their standalone speeds; grouped per kind (depthwise, 1x1, other convolutions,
   fully connected) with the GFLOP/s each reaches, beside a large square matrix product.

The timed crops are real aligned LFW faces; every figure is one run, all in the same process.

    python benchmarks/inference.py [--shared PATH] [--batch 16] [--seconds 1.5]
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections import defaultdict
from collections.abc import Callable
from functools import partial

import numpy as np
import onnx
import onnxruntime as ort
from common import add_shared_argument, largest_face_crops, lfw_photos, print_table, spread_sample
from onnx import helper, numpy_helper, shape_inference

from fiqa_cli.paths import default_model_path
from fiqa_cli.runtime.detect import create_detector
from fiqa_cli.runtime.providers import CPU, shared_cpu_options, usable_cpus
from fiqa_cli.runtime.quality_model import QualityModel

BATCH_SIZES = (1, 4, 8, 16, 32, 64)
LEVELS = {
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
MATMUL_SIDE = 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_shared_argument(parser)
    parser.add_argument("--batch", type=int, default=16, help="batch size of parts 1 and 2")
    parser.add_argument("--seconds", type=float, default=1.5, help="time per measurement")
    args = parser.parse_args()
    photos = spread_sample(lfw_photos(args.shared), 64)
    crops = [crop for _, crop in largest_face_crops(photos, create_detector("mtcnn"))]
    path = default_model_path()

    settings = []
    for level, threads, spin in itertools.product(LEVELS, _thread_counts(), (False, True)):
        options = _options(level, threads, spin)
        rate = _crops_per_second(QualityModel(path, [CPU], options), crops, args.batch, args)
        settings.append(((level, threads, spin), rate))
    print(f"1. default model, batch {args.batch}, crops/s ({usable_cpus()} usable CPUs)")
    print_table(
        ["optimisation", "threads", "spinning", "crops/s"],
        [
            [level, str(t), "on" if spin else "off", f"{rate:.1f}"]
            for (level, t, spin), rate in settings
        ],
    )
    best = max(settings, key=lambda item: item[1])[0]
    candidates = {"fiqa score (all, every core, no spin)": shared_cpu_options()}
    candidates[f"fastest above ({best[0]}, {best[1]}, spin {best[2]})"] = _options(*best)
    rows = []
    for label, options in candidates.items():
        model = QualityModel(path, [CPU], options)
        rates = [_crops_per_second(model, crops, batch, args) for batch in BATCH_SIZES]
        rows.append([label, *(f"{rate:.1f}" for rate in rates)])
    print()
    print_table(["options", *(f"b{batch}" for batch in BATCH_SIZES)], rows)

    print()
    _print_ceiling(path, crops, args)


def _thread_counts() -> list[int]:
    return sorted({1, usable_cpus()})


def _options(level: str, threads: int, spin: bool) -> ort.SessionOptions:
    """`fiqa score`'s options (shared_cpu_options) with these three changed."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_mem_pattern = False
    options.graph_optimization_level = LEVELS[level]
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    return options


def _crops_per_second(
    model: QualityModel, crops: list[np.ndarray], batch: int, args: argparse.Namespace
) -> float:
    chunk = [crops[i % len(crops)] for i in range(batch)]
    return batch / _seconds_per_call(lambda: model.predict(chunk), args.seconds)


def _seconds_per_call(run: Callable[[], object], budget: float) -> float:
    """Median time of one call over about `budget` seconds (after two warm-up calls)."""
    run()
    run()
    times = []
    deadline = time.perf_counter() + budget
    while time.perf_counter() < deadline or len(times) < 5:
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _print_ceiling(path, crops: list[np.ndarray], args: argparse.Namespace) -> None:
    batch = args.batch
    model = onnx.load(str(path))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = batch
    inferred = shape_inference.infer_shapes(model)
    shapes = {
        info.name: [dim.dim_value for dim in info.type.tensor_type.shape.dim]
        for info in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
    }
    weights = {init.name: init for init in model.graph.initializer}
    options = shared_cpu_options()
    per_kind: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])  # nodes, flop, s
    for node in model.graph.node:
        if node.op_type not in ("Conv", "Gemm"):
            continue
        kind, flop = _kind_and_flop(node, shapes, weights)
        session = _single_node_session(node, shapes, weights, model, options)
        data = np.random.default_rng(0).standard_normal(shapes[node.input[0]]).astype(np.float32)
        feed = {node.input[0]: data}
        seconds = _seconds_per_call(partial(session.run, None, feed), args.seconds / 20)
        totals = per_kind[kind]
        totals[0] += 1
        totals[1] += flop
        totals[2] += seconds
    whole = QualityModel(path, [CPU], options)
    model_seconds = batch / _crops_per_second(whole, crops, batch, args)
    op_seconds = sum(totals[2] for totals in per_kind.values())
    op_flop = sum(totals[1] for totals in per_kind.values())
    print(f"2. ceiling: Conv and Gemm nodes alone, batch {batch}, every core")
    rows = [
        [
            kind,
            str(int(nodes)),
            f"{flop / batch / 1e9:.3f}",
            f"{1000 * seconds:.2f}",
            f"{flop / seconds / 1e9:.1f}",
        ]
        for kind, (nodes, flop, seconds) in sorted(per_kind.items())
    ]
    rows.append(
        [
            "all Conv + Gemm",
            str(sum(int(t[0]) for t in per_kind.values())),
            f"{op_flop / batch / 1e9:.3f}",
            f"{1000 * op_seconds:.2f}",
            f"{op_flop / op_seconds / 1e9:.1f}",
        ]
    )
    print_table(["operators", "nodes", "GFLOP/crop", "ms/batch", "GFLOP/s"], rows)
    print(
        f"\noperators alone: {batch / op_seconds:.0f} crops/s (ceiling); whole model (fiqa "
        f"score options): {batch / model_seconds:.0f} crops/s = {op_seconds / model_seconds:.2f} "
        f"of the ceiling; arithmetic at matrix-product speed: "
        f"{_matmul_gflops(options, args) * 1e9 * batch / op_flop:.0f} crops/s"
    )


def _kind_and_flop(node, shapes, weights) -> tuple[str, float]:
    """The operator's kind and its floating-point operations (2 per multiply-add)."""
    output = shapes[node.output[0]]
    weight = numpy_helper.to_array(weights[node.input[1]])
    if node.op_type == "Gemm":
        return "fully connected", 2.0 * output[0] * weight.size
    group = next((attr.i for attr in node.attribute if attr.name == "group"), 1)
    flop = 2.0 * np.prod(output) * np.prod(weight.shape[1:])
    if group > 1 and group == shapes[node.input[0]][1]:
        return "conv depthwise", flop
    if weight.shape[2:] == (1, 1):
        return "conv 1x1", flop
    return "conv other", flop


def _single_node_session(node, shapes, weights, model, options) -> ort.InferenceSession:
    def info(name: str):
        return helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, shapes[name])

    initializers = [weights[name] for name in node.input[1:] if name in weights]
    graph = helper.make_graph(
        [node],
        node.name or node.op_type,
        [info(node.input[0])],
        [info(node.output[0])],
        initializers,
    )
    single = helper.make_model(graph, opset_imports=model.opset_import)
    single.ir_version = model.ir_version
    return ort.InferenceSession(single.SerializeToString(), options, providers=[CPU])


def _matmul_gflops(options: ort.SessionOptions, args: argparse.Namespace) -> float:
    side = MATMUL_SIDE
    inputs = [
        helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, [side, side]) for name in "ab"
    ]
    output = helper.make_tensor_value_info("c", onnx.TensorProto.FLOAT, [side, side])
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "mm", inputs, [output]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    session = ort.InferenceSession(model.SerializeToString(), options, providers=[CPU])
    rng = np.random.default_rng(0)
    feed = {name: rng.standard_normal((side, side)).astype(np.float32) for name in "ab"}
    return 2.0 * side**3 / _seconds_per_call(lambda: session.run(None, feed), args.seconds) / 1e9


if __name__ == "__main__":
    main()
