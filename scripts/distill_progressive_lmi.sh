#!/usr/bin/env bash
# Progressive distillation (--teacher-steps 25): teach the lite student of t1-lmi to sample in
# 25 DDIM steps what the teacher does in 50, starting from the student's weights. Same data as
# scripts/distill_native_lmi.sh: eight skull-stripped IXI T1 (IXI049 and IXI051 held out),
# in-plane 2 mm, 64-px crops, batch 8.
#
#   bash scripts/distill_progressive_lmi.sh [OUT] [MAX_STEPS] [THREADS] [START_FROM] [EXTRA TRAIN OPTIONS...]
#
# OUT defaults to runs/t1-lmi-lite-25; a second call with the same OUT resumes from its state.
# START_FROM (default: the bundled t1-lmi-lite) is the student whose weights start a new run.
# Save progress with:  .venv/bin/python scripts/bundle_model.py OUT t1-lmi-lite [--note ...]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/t1-lmi-lite-25}
MAX_STEPS=${2:-10000}
THREADS=${3:-1}
START_FROM=${4:-src/zeroshot_core/model/bundled/t1-lmi-lite}
EXTRA=("${@:5}")
TEACHER=src/zeroshot_core/model/bundled/t1-lmi
DATA=${ZEROSHOT_SHARED_DATA:-../shared/data}/ixi_t1
[ -d runs/ixi_brain ] || .venv/bin/python scripts/prepare_ixi_brain.py "$DATA" runs/ixi_brain
mapfile -t FILES < <(ls runs/ixi_brain/*.nii.gz | sort | head -n -2)
START=(--init-from "$START_FROM"); [ -f "$OUT/training_state.json" ] && START=(--resume)
exec .venv/bin/zeroshot --threads "$THREADS" train "${FILES[@]}" --out "$OUT" \
  --guidance lmi --model-size lite --image-size 64 --spacing-mm 2.0 \
  --batch-size 8 --lr 1e-4 --max-steps "$MAX_STEPS" --checkpoint-every 250 --device cpu --mask-erosion 1 \
  --teacher "$TEACHER" --teacher-cfg-scale 1.25 --teacher-steps 25 \
  --notes "lite student of t1-lmi (8,000 steps, CFG 1.25 folded in), progressively distilled to 25 DDIM steps (two teacher steps per student step): skull-stripped IXI T1 of 8 subjects (IXI049 and IXI051 held out), in-plane 2 mm, 64-px crops" \
  "${START[@]}" "${EXTRA[@]}"
