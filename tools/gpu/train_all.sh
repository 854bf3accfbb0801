#!/usr/bin/env bash
# Every run of config/train/tof/ concurrently on one GPU, inside one wall-clock budget.
# On the GPU machine, from the repository root, after tools/gpu/prepare.sh staged .gpu_data:
#   bash tools/gpu/train_all.sh                      # writes into $OUT
# Environment (defaults): OUT (required), TOTAL_S=470 (seconds for everything), DEVICE=cuda,
# DATA=.gpu_data, RUNS (default: config/train/tof/*_x*.yaml but the later stages), WORK=runs/gpu, PYTHON.
# Steps: (1) a self-check that fails fast (imports, device, data, one step of every config);
# (2) every run in the background with --stop-at END_S seconds before TOTAL_S (each run's time
# budget shrinks to end its training, and write its weights, by then, whatever its start-up
# took); a run still alive GRACE_S after that is killed, and its last periodic checkpoint (every
# 60 s) stays; (3) $OUT/<run>.tar per run (weights, card, config, state with the loss history,
# log) and $OUT/summary.txt (self-check, per-run result, GPU use).
set -uo pipefail
: "${OUT:?set OUT to the folder whose files come back}"
TOTAL_S=${TOTAL_S:-470}
DEVICE=${DEVICE:-cuda}
DATA=${DATA:-.gpu_data}
WORK=${WORK:-runs/gpu}
END_S=${END_S:-20}      # after the runs' stop-at: their exit, bundling
GRACE_S=${GRACE_S:-10}  # a run still alive this long after its stop-at is killed
PY=${PYTHON:-$(command -v python3 || command -v python)}
RUNS=${RUNS:-$(ls config/train/tof/*_x*.yaml | grep -v -e _stage -e _nearest)}  # later stages start from an earlier one's output
START=$(date +%s)
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$OUT" "$WORK"
SUMMARY=$OUT/summary.txt
: > "$SUMMARY"
elapsed() { echo $(( $(date +%s) - START )); }

echo "== self-check ($(date -u +%FT%TZ))" | tee -a "$SUMMARY"
timeout 120 "$PY" -m depth_sr_ros.train.preflight --device "$DEVICE" --data-root "$DATA" $RUNS 2>&1 \
    | grep -v Warning | tee -a "$SUMMARY"
if [ "${PIPESTATUS[0]}" -ne 0 ]; then echo "self-check failed after $(elapsed) s: no training" | tee -a "$SUMMARY"; exit 1; fi

STOP_AT=$(( START + TOTAL_S - END_S ))
LEFT=$(( STOP_AT - $(date +%s) ))
if [ "$LEFT" -lt 60 ]; then echo "only $LEFT s left: no training" | tee -a "$SUMMARY"; exit 1; fi
echo "== training: $(echo $RUNS | wc -w) runs, each to stop by $(date -u -d @$STOP_AT +%TZ 2>/dev/null || echo $STOP_AT) ($LEFT s from now, start-up included)" | tee -a "$SUMMARY"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader -l 20 > "$WORK/gpu_use.csv" 2>&1 &
    SMI=$!
fi
PIDS=()
for cfg in $RUNS; do
    name=$(basename "$cfg" .yaml)
    timeout -k 5 $(( LEFT + GRACE_S )) "$PY" -m depth_sr_ros.cli train --config "$cfg" --device "$DEVICE" \
        --data-root "$DATA" --time-budget-s "$LEFT" --stop-at "$STOP_AT" --no-progress --out "$WORK/$name" \
        > "$WORK/$name.log" 2>&1 &
    PIDS+=($!)
done
i=0
for cfg in $RUNS; do
    wait "${PIDS[$i]}"; code=$?
    name=$(basename "$cfg" .yaml)
    result=$(grep -o '"steps": [0-9]*\|"samples_per_s": [0-9.]*' "$WORK/$name.log" | tr '\n' ' ')
    echo "$name: exit $code after $(elapsed) s; $result" | tee -a "$SUMMARY"
    [ "$code" -eq 0 ] || tail -5 "$WORK/$name.log" | sed "s/^/  $name| /" >> "$SUMMARY"
    i=$(( i + 1 ))
done
[ -n "${SMI:-}" ] && kill "$SMI" 2>/dev/null && { echo "== GPU use (every 20 s)"; cat "$WORK/gpu_use.csv"; } >> "$SUMMARY"

echo "== bundle" >> "$SUMMARY"
for cfg in $RUNS; do
    name=$(basename "$cfg" .yaml)
    files=$(cd "$WORK" && ls "$name"/*_x*.safetensors "$name"/*_x*.card.json "$name"/config.yaml "$name"/progress.json \
        "$name.log" 2>/dev/null)
    if [ -n "$files" ]; then
        (cd "$WORK" && tar -cf "$OUT/$name.tar" $files) && echo "$name.tar: $(echo $files | wc -w) files" >> "$SUMMARY"
    else
        echo "$name: nothing to bundle" >> "$SUMMARY"
    fi
done
echo "done in $(elapsed) s" | tee -a "$SUMMARY"
