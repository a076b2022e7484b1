#!/usr/bin/env bash
# GPU throughput benchmark (issue 6): installs fiqa and onnxruntime-gpu offline from the wheels
# it is given into a scratch target, then prints crops/s and images/s of the default model and
# of iresnet100 at several batch sizes (benchmarks/gpu_throughput.py). About 3-5 minutes on one
# modern GPU. Needs torch (with CUDA or not) in the Python it runs, for the iresnet100 export.
#
#   benchmarks/gpu.sh WHEEL_DIR [SHARED_DIR]
#
# WHEEL_DIR holds onnxruntime-gpu and any of fiqa's dependencies the machine lacks (made where
# pip works: pip download --only-binary=:all: -d WHEEL_DIR onnxruntime-gpu insightface ...).
# SHARED_DIR defaults to ../shared (LFW photos and the SCRFD models).
set -euo pipefail
cd "$(dirname "$0")/.."
wheels=${1:?usage: benchmarks/gpu.sh WHEEL_DIR [SHARED_DIR]}
shared=${2:-../shared}
python=${PYTHON:-python3}
site=$(mktemp -d)
trap 'rm -rf "$site"' EXIT

"$python" -m pip install -q --no-index --find-links "$wheels" --no-compile --target "$site" \
  "$wheels"/*.whl
# fiqa itself from this checkout, without its pinned dependencies (the wheels above are them).
"$python" -m pip install -q --no-index --no-deps --no-build-isolation --target "$site" .
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
"$python" -m fiqa_cli doctor --device cuda
"$python" benchmarks/gpu_throughput.py --shared "$shared"
