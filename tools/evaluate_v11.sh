#!/usr/bin/env bash
# Judge a default-model candidate against the shipped v5 on the held-out identities (issue 33),
# then, when it wins, calibrate it on both held-out roots. Run after tools/train_v11.sh:
#
#   bash tools/evaluate_v11.sh [RUN_DIR]          (default ~/fiqa-runs/v11)
#
# Export: RUN_DIR/v11-s0/checkpoint.pt -> RUN_DIR/eval/v11.onnx with its data terms. Held out:
# the default split's held-out identities of LFW devtrain and CelebA-wild (tools/split_identities.py,
# 1 in 5), scored with fiqa score's default path (central face). Evaluation: the paired identity
# bootstrap (fiqa evaluate --bootstrap, v5 first, so every row's difference is against v5) on
# each set, all pairs and 10 photos per identity; degradations; then fiqa calibrate on both
# held-out roots into RUN_DIR/eval/v11-calibrated.onnx. Nothing here replaces the shipped model.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${FIQA_SHARED:-$(cd .. && pwd)/shared}
run=${1:-$HOME/fiqa-runs/v11}
fiqa=${FIQA:-.venv/bin/fiqa}
python=${PYTHON:-.venv/bin/python}
fr=$shared/models/mobilefacenet_eval.onnx
eval=$run/eval
mkdir -p "$eval"

"$python" tools/split_identities.py "$shared/data/lfw-devtrain/images" "$run/raw5/lfw"
"$python" tools/split_identities.py "$shared/data/celeba-wild" "$run/raw5/celeba"
[[ -f $eval/v11.onnx ]] || "$fiqa" export "$run/v11-s0/checkpoint.pt" --out "$eval/v11.onnx" \
  --data-terms "LFW (research use) and CelebA (non-commercial research only): this model inherits CelebA's non-commercial terms"
[[ -f $eval/v5.onnx ]] || cp models/fiqa_v5.onnx "$eval/v5.onnx"

for set in lfw celeba; do
  held=$run/raw5/$set/heldout
  for model in v5 v11; do
    [[ -s $eval/$model-$set.csv ]] ||
      "$fiqa" score "$held" --faces central --model "$eval/$model.onnx" --out "$eval/$model-$set.csv" -q
  done
  for cap in all 10; do
    limit=()
    [[ $cap == 10 ]] && limit=(--max-images-per-id 10)
    "$fiqa" evaluate "$held" --faces central --fr-model "$fr" "${limit[@]}" \
      --scores "$eval/v5-$set.csv" --name v5 --scores "$eval/v11-$set.csv" --name v11 \
      --bootstrap 1000 --out "$eval/edc-$set-$cap.csv" | tee "$eval/edc-$set-$cap.txt"
  done
done
"$python" tools/degradation_check.py "$run/raw5/lfw/heldout" --faces central \
  --detector yunet --model "$eval/v11.onnx" --fr-model "$fr" | tee "$eval/degradations.txt"
"$fiqa" calibrate "$run/raw5/lfw/heldout" "$run/raw5/celeba/heldout" --model "$eval/v11.onnx" \
  --fr-model "$fr" --faces central --max-images-per-id 10 --out "$eval/v11-calibrated.onnx" \
  2>&1 | tee "$eval/calibration.txt"
