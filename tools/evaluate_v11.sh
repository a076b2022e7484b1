#!/usr/bin/env bash
# Judge a default-model candidate against a reference (the shipped v5 by default) on the held-out
# identities (issue 33), then calibrate it on both held-out roots. Run after tools/train_v11.sh:
#
#   bash tools/evaluate_v11.sh [RUN_DIR [CANDIDATE [REFERENCE]]]   (~/fiqa-runs/v11 v11 v5)
#
# CANDIDATE v11 is RUN_DIR/v11-s0, any other name RUN_DIR/NAME (v11-teacher: tools/train_v11.sh
# --teacher); REFERENCE is v5 (the shipped file) or an earlier candidate already exported here.
# A pair other than v11 against v5 writes its files under the prefix CANDIDATE-vs-REFERENCE-.
#
# Export: the candidate's checkpoint.pt -> RUN_DIR/eval/CANDIDATE.onnx with its data terms. Held
# out: the default split's held-out identities of LFW devtrain and CelebA-wild
# (tools/split_identities.py, 1 in 5), scored with fiqa score's default path (central face).
# Evaluation: the paired identity bootstrap (fiqa evaluate --bootstrap, the reference first, so
# every row's difference is against it) on each set and on both pooled (one evaluate over both
# roots), all pairs and 10 photos per identity; degradations; then fiqa calibrate on both held-out
# roots into RUN_DIR/eval/CANDIDATE-calibrated.onnx. Nothing here replaces the shipped model.
source "$(dirname "$0")/v11_common.sh"
candidate=${2:-v11}
reference=${3:-v5}
checkpoint=$run/$candidate/checkpoint.pt
[[ $candidate == v11 ]] && checkpoint=$run/v11-s0/checkpoint.pt
tag=
[[ $candidate == v11 && $reference == v5 ]] || tag=$candidate-vs-$reference-
eval=$run/eval
mkdir -p "$eval"

for dataset in lfw celeba; do
  "$python" tools/split_identities.py "${photos[$dataset]}" "$run/raw5/$dataset"
done
[[ -f $eval/$candidate.onnx ]] || "$fiqa" export "$checkpoint" --out "$eval/$candidate.onnx" \
  --data-terms "LFW (research use) and CelebA (non-commercial research only): this model inherits CelebA's non-commercial terms"
[[ -f $eval/v5.onnx ]] || cp models/fiqa_v5.onnx "$eval/v5.onnx"
[[ -f $eval/$reference.onnx ]] || { echo "no $eval/$reference.onnx: evaluate it first" >&2; exit 1; }

for set in lfw celeba pooled; do
  for model in "$reference" "$candidate"; do
    scores=$eval/$model-$set.csv
    if [[ $set == pooled ]]; then
      [[ -s $scores ]] || { cat "$eval/$model-lfw.csv"; tail -n +2 "$eval/$model-celeba.csv"; } >"$scores"
    else
      [[ -s $scores ]] || "$fiqa" score "$run/raw5/$set/heldout" --faces central \
        --model "$eval/$model.onnx" --out "$scores" -q
    fi
  done
  held=("$run/raw5/$set/heldout")
  [[ $set == pooled ]] && held=("$run/raw5/lfw/heldout" "$run/raw5/celeba/heldout")
  for cap in all 10; do
    limit=()
    [[ $cap == 10 ]] && limit=(--max-images-per-id 10)
    "$fiqa" evaluate "${held[@]}" --faces central --fr-model "$fr" "${limit[@]}" \
      --scores "$eval/$reference-$set.csv" --name "$reference" \
      --scores "$eval/$candidate-$set.csv" --name "$candidate" \
      --bootstrap 1000 --out "$eval/${tag}edc-$set-$cap.csv" | tee "$eval/${tag}edc-$set-$cap.txt"
  done
done
"$python" tools/degradation_check.py "$run/raw5/lfw/heldout" --faces central \
  --detector yunet --model "$eval/$candidate.onnx" --fr-model "$fr" | tee "$eval/${tag}degradations.txt"
"$fiqa" calibrate "$run/raw5/lfw/heldout" "$run/raw5/celeba/heldout" \
  --model "$eval/$candidate.onnx" --fr-model "$fr" --faces central --max-images-per-id 10 \
  --out "$eval/$candidate-calibrated.onnx" 2>&1 | tee "$eval/${tag}calibration.txt"
