#!/usr/bin/env bash
# Run on the development machine, from the repository root, before the GPU call:
#   bash tools/gpu/prepare.sh [SHARED_DATA]        # default ../shared/data
# Stages the training frames of config/train/tof/*_x*.yaml (training splits only) in .gpu_data/,
# makes git ignore that folder (.git/info/exclude) so that it can travel as a carried path, and
# checks that the GPU command fits the device tool's 2000-character limit.
set -euo pipefail
SRC=${1:-../shared/data}
PY=${PYTHON:-$(command -v python3 || command -v python)}
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qxF '/.gpu_data/' "$exclude" 2>/dev/null || echo '/.gpu_data/' >> "$exclude"
PYTHONPATH=$PWD "$PY" -m depth_sr_ros.train.stage_data --src "$SRC" --dst .gpu_data config/train/tof/*_x*.yaml
git check-ignore -q .gpu_data/ || { echo "prepare: .gpu_data is not ignored by git" >&2; exit 1; }
size=$(du -sm .gpu_data | cut -f1)
[ "$size" -le 60 ] || { echo "prepare: .gpu_data is ${size} MiB, over the 64 MiB carry limit" >&2; exit 1; }
echo "prepare: ok (.gpu_data ${size} MiB). GPU call: command 'bash tools/gpu/train_all.sh', carry [\".gpu_data\"]"
