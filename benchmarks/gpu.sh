#!/usr/bin/env bash
# The GPU script, in two modes.
#
#   benchmarks/gpu.sh WHEEL_DIR [SHARED_DIR]
#     The prepared GPU check (issues 6, 34): installs fiqa and onnxruntime-gpu offline from the
#     wheels it is given into a scratch target, then prints one table
#     (benchmarks/gpu_throughput.py): CPU/GPU parity, the cost of a start, photos/s end to end
#     with the default detector and SCRFD, crops/s at batch 1-1024 of the default model and of
#     iresnet100 in fp32 and fp16, training images/s, the NCCL check, and photos/s at 1-16 CPU
#     workers. Planned for under 8 minutes on one H200 (not yet run there). Needs torch in the
#     Python it runs, for the iresnet100 exports and training. Dry run on a CPU:
#     python benchmarks/gpu_throughput.py --device cpu --quick
#     WHEEL_DIR holds onnxruntime-gpu and any of fiqa's dependencies the machine lacks (made where
#     pip works: pip download --only-binary=:all: -d WHEEL_DIR onnxruntime-gpu insightface ...).
#     SHARED_DIR defaults to ../shared (LFW photos and the SCRFD models).
#
#   benchmarks/gpu.sh train CROPS_DIR PLAN OUT_DIR
#     Training (issue 33): every run of PLAN at once, from aligned crops made beforehand by
#     tools/aligned_crop_folder.py (CROPS_DIR/DATASET/IDENTITY/*.jpg), then each run exported to
#     OUT_DIR/NAME.onnx with its log beside it. Each dataset is split by the fixed hash rule of
#     tools/split_identities.py twice: into $SPLIT5/DATASET/{train,heldout} (1 identity in 5 held
#     out: the default model's split) and $SPLIT2/DATASET/{train,heldout} (halves, for
#     cross-fitting). PLAN lines (benchmarks/plans/*.txt) are `recipe OPTIONS...`, the fiqa
#     train options every run shares, and `run NAME OPTIONS...`, one run each; $CROPS, $SPLIT5
#     and $SPLIT2 are expanded in them. Loader workers are shared out over the CPUs. Needs torch,
#     numpy, OpenCV, click, onnx and onnxruntime in the Python it runs (the workplace's CUDA image
#     has them all); fiqa is installed from this checkout without its dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
site=$(mktemp -d)
trap 'rm -rf "$site"' EXIT

if [[ ${1:-} == train ]]; then
  crops=$(realpath "${2:?usage: benchmarks/gpu.sh train CROPS_DIR PLAN OUT_DIR}")
  plan=${3:?usage: benchmarks/gpu.sh train CROPS_DIR PLAN OUT_DIR}
  out=$(realpath -m "${4:?usage: benchmarks/gpu.sh train CROPS_DIR PLAN OUT_DIR}")
  "$python" -m pip install -q --no-index --no-deps --no-build-isolation --target "$site" .
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
  # Run from the checkout, "python -m" would put its fiqa_cli/ (without export/) first.
  export PYTHONSAFEPATH=1
  mkdir -p "$out"
  export CROPS=$crops SPLIT5=$out/split5 SPLIT2=$out/split2
  for dataset in "$crops"/*/; do
    name=$(basename "$dataset")
    "$python" tools/split_identities.py "$dataset" "$SPLIT5/$name" --every 5
    "$python" tools/split_identities.py "$dataset" "$SPLIT2/$name" --every 2
  done
  recipe=()
  names=()
  runs=()
  while read -r kind rest; do
    case $kind in
      recipe) eval "recipe=($rest)" ;;
      run) names+=("${rest%% *}"); runs+=("${rest#* }") ;;
      '' | '#'*) ;;
      *) echo "$plan: unknown line kind '$kind'" >&2; exit 2 ;;
    esac
  done <"$plan"
  workers=$(( ($(nproc) - ${#runs[@]}) / ${#runs[@]} ))
  (( workers >= 1 )) || workers=1
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
  echo "${#runs[@]} runs at once, $workers loader workers each, $(nproc) CPUs"
  pids=()
  for i in "${!runs[@]}"; do
    eval "options=(${runs[$i]})"
    "$python" -m fiqa_cli train "${recipe[@]}" "${options[@]}" --num-workers "$workers" \
      --out "$out/${names[$i]}" >"$out/${names[$i]}.train.log" 2>&1 &
    pids+=($!)
  done
  failed=0
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { echo "run ${names[$i]} failed:" >&2; tail -5 "$out/${names[$i]}.train.log" >&2; failed=1; }
  done
  echo "training: ${SECONDS} s"
  # Parity on real faces: the first 16 held-out crops of the default split.
  mkdir -p "$out/parity"
  find -L "$SPLIT5" -path '*/heldout/*' -name '*.jpg' | sort | head -16 |
    while read -r crop; do cp "$crop" "$out/parity/$(echo "$crop" | md5sum | cut -c1-12).jpg"; done
  pids=()
  for name in "${names[@]}"; do
    [[ -f $out/$name/checkpoint.pt ]] || continue
    cp "$out/$name/log.jsonl" "$out/$name.log.jsonl"
    "$python" -m fiqa_cli export "$out/$name/checkpoint.pt" --out "$out/$name.onnx" \
      --parity-images "$out/parity" >"$out/$name.export.log" 2>&1 &
    pids+=("$!:$name")
  done
  for entry in "${pids[@]}"; do
    wait "${entry%%:*}" || { echo "export of ${entry#*:} failed" >&2; failed=1; }
  done
  echo "training and export: ${SECONDS} s"
  exit $failed
fi

wheels=${1:?usage: benchmarks/gpu.sh WHEEL_DIR [SHARED_DIR] | train CROPS_DIR PLAN OUT_DIR}
shared=${2:-../shared}
"$python" -m pip install -q --no-index --find-links "$wheels" --no-compile --target "$site" \
  "$wheels"/*.whl
# fiqa itself from this checkout, without its pinned dependencies (the wheels above are them).
"$python" -m pip install -q --no-index --no-deps --no-build-isolation --target "$site" .
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
"$python" -m fiqa_cli doctor --device cuda
"$python" benchmarks/gpu_throughput.py --shared "$shared"
