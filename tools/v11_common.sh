# What tools/train_v11.sh, tools/evaluate_v11.sh and tools/crossfit_v11.sh share; sourced by
# them, not run: the repository as the working folder, the shared data ($FIQA_SHARED, else
# ../shared), the run folder (their first argument, else ~/fiqa-runs/v11), this checkout's
# python and fiqa, the evaluation recogniser, and each dataset's photos by name.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
shared=${FIQA_SHARED:-$(cd .. && pwd)/shared}
run=${1:-$HOME/fiqa-runs/v11}
python=${PYTHON:-.venv/bin/python}
fiqa=${FIQA:-.venv/bin/fiqa}
fr=$shared/models/mobilefacenet_eval.onnx
declare -A photos=([lfw]=$shared/data/lfw-devtrain/images [celeba]=$shared/data/celeba-wild)
