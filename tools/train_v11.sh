#!/usr/bin/env bash
# Default model v11 (issue 33) on this project's 2-core CPU, resumable: run it again after an
# interruption and it continues from the last checkpoint (saved every 40 steps, about 3 minutes
# on two idle cores). About 100 minutes of both cores in all; pause it with kill -STOP for
# benchmarks and test runs, kill -CONT to go on.
#
#   bash tools/train_v11.sh [RUN_DIR] [--crops-only | --teacher]     (default ~/fiqa-runs/v11)
#
# The recipe of benchmarks/plans/v11.txt's v11-s0 line: crops of fiqa's default face path
# (central face, tools/aligned_crop_folder.py), the default split's training identities of LFW
# devtrain and CelebA-wild (tools/split_identities.py, 1 identity in 5 held out), 16 epochs.
# --teacher trains issue 33's item 5 instead, into RUN_DIR/v11-teacher: the same data and
# schedule with v8's teacher (dlib's descriptors give the certainty-ratio targets, 2 degraded
# variants a photo, the quality head at a tenth of the lr), about 4 hours of both cores; the
# teacher's descriptors are cached a file per photo, so an interruption loses little there too.
source "$(dirname "$0")/v11_common.sh"
mkdir -p "$run"

for dataset in lfw celeba; do
  # A crop already written is kept: an interrupted crop run continues.
  "$python" tools/aligned_crop_folder.py "${photos[$dataset]}" "$run/crops/$dataset" \
    2>>"$run/crops.log"
  "$python" tools/split_identities.py "$run/crops/$dataset" "$run/split5/$dataset" --every 5
done
cp "$shared/data/lfw-devtrain/pairsDevTrain.txt" "$run/crops/lfw-pairs.txt"
[[ ${2:-} == --crops-only ]] && exit 0  # tools/crossfit_v11.sh splits the crops its own way

name=v11-s0
recipe=()
if [[ ${2:-} == --teacher ]]; then
  name=v11-teacher
  recipe=(--cr-teacher dlib --teacher-variants 2 --quality-head-lr 0.1)
fi
resume=()
[[ -f $run/$name/checkpoint.pt ]] && resume=(--resume)
"$fiqa" train --arch mobilefacenet --epochs 16 --batch-size 128 --lr 0.2 \
  --warmup-epochs 1 --augment-degradations 0.3 --no-classify-degraded --min-images-per-id 2 \
  --faces central --seed 0 --num-workers 1 \
  --val-pairs "$run/crops/lfw-pairs.txt" --val-root "$run/crops/lfw" --eval-every 656 \
  --log-every 20 --save-every 40 \
  --data "$run/split5/lfw/train" --data "$run/split5/celeba/train" --out "$run/$name" \
  "${recipe[@]}" "${resume[@]}" 2>&1 | tee -a "$run/$name.log"
