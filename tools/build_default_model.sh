#!/usr/bin/env bash
# Rebuild the embedded default model and its evaluation from ../shared, as recorded in
# models/README.md. Takes about 75 minutes on 2 CPU cores (training dominates).
#   bash tools/build_default_model.sh [WORK_DIR]
set -euo pipefail
shared=${FIQA_SHARED:-$(cd "$(dirname "$0")/../.." && pwd)/shared}
work=${1:-runs/default}
lfw=$shared/data/lfw-devtrain

# 1. Identity split: ~20% of identities held out by a fixed hash rule.
python tools/split_identities.py "$lfw/images" "$work/split"

# 2. Training on the train identities with at least 2 images (MTCNN alignment of each photo's
# central face, cached); degraded samples teach the quality head only.
fiqa train --data "$work/split/train" --faces central --arch mobilefacenet --out "$work/run" \
  --epochs 24 --batch-size 128 --lr 0.2 --warmup-epochs 1 \
  --augment-degradations 0.3 --no-classify-degraded \
  --min-images-per-id 2 --detector mtcnn --num-workers 1 --seed 0 \
  --val-pairs "$lfw/pairsDevTrain.txt" --val-root "$lfw/images" \
  --eval-every 250 --log-every 20 --save-every 100

# 3. Export, with parity checked on aligned crops of held-out faces.
find -L "$work/split/heldout" -name '*.jpg' | sort | sed -n 1,16p |
  fiqa score - --detector mtcnn --save-crops "$work/parity" --out /dev/null --quiet
fiqa export "$work/run/checkpoint.pt" --out "$work/fiqa_default.onnx" --parity-images "$work/parity"

# 4. Evaluation on the held-out identities with the independent FR model. LFW photos are cut
# around the labelled person: the central face is the sample (the largest is sometimes a
# bystander). The capped run keeps George W Bush's 530 photos from holding most mated pairs.
fiqa score "$work/split/heldout" --detector mtcnn --faces central --model "$work/fiqa_default.onnx" \
  --out "$work/heldout_scores.csv"
evaluate=(fiqa evaluate "$work/split/heldout" --scores "$work/heldout_scores.csv"
  --name fiqa-default --fr-model "$shared/models/mobilefacenet_eval.onnx" --detector mtcnn
  --faces central)
"${evaluate[@]}" --out "$work/edc.csv" --plot "$work/edc.png" --log-fnmr
"${evaluate[@]}" --max-images-per-id 10 --out "$work/edc-10-per-id.csv"
python tools/degradation_check.py "$work/split/heldout" --faces central \
  --model "$work/fiqa_default.onnx" --fr-model "$shared/models/mobilefacenet_eval.onnx"
python tools/certainty_ratio_check.py "$work/run/checkpoint.pt"

# 5. quality_100: the calibration shipped in the model's metadata (docs/calibration.md),
# fitted on the held-out identities, the first 10 photos of each, aligned as `fiqa score` aligns
# by default.
fiqa calibrate "$work/split/heldout" --model "$work/fiqa_default.onnx" \
  --out "$work/fiqa_default.onnx" --fr-model "$shared/models/mobilefacenet_eval.onnx" \
  --detector yunet --faces central --max-images-per-id 10
