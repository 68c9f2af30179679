#!/usr/bin/env bash
# Distil the bundled 2 mm t1-lmi (the teacher, sampled with its card's classifier-free guidance
# 1.25) into a `lite` student that needs one network evaluation per step at a quarter of the
# cost: the same eight skull-stripped IXI T1 (IXI049 and IXI051 held out), in-plane 2 mm,
# 64-px crops, batch 8; the targets are the teacher's guided predictions (--teacher).
#
#   bash scripts/distill_native_lmi.sh [OUT] [MAX_STEPS] [THREADS] [EXTRA TRAIN OPTIONS...]
#
# OUT defaults to runs/t1-lmi-lite; a second call with the same OUT resumes from its state, and
# an OUT without one starts from the kept state in checkpoints/t1-lmi-lite when there is one.
# The brains are made once with scripts/prepare_ixi_brain.py into runs/ixi_brain.
# Save progress with:  .venv/bin/python scripts/bundle_model.py OUT t1-lmi-lite [--note ...]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/t1-lmi-lite}
MAX_STEPS=${2:-20000}
THREADS=${3:-1}
EXTRA=("${@:4}")
TEACHER=src/zeroshot_core/model/bundled/t1-lmi
DATA=${ZEROSHOT_SHARED_DATA:-../shared/data}/ixi_t1
[ -d runs/ixi_brain ] || .venv/bin/python scripts/prepare_ixi_brain.py "$DATA" runs/ixi_brain
mapfile -t FILES < <(ls runs/ixi_brain/*.nii.gz | sort | head -n -2)
mkdir -p "$OUT"
if [ ! -f "$OUT/training_state.json" ] && [ -f checkpoints/t1-lmi-lite/training_state.json ]; then
  cp checkpoints/t1-lmi-lite/* "$OUT/"  # the kept state (scripts/bundle_model.py) continues
  [ -f src/zeroshot_core/model/bundled/t1-lmi-lite/model.json ] && cp src/zeroshot_core/model/bundled/t1-lmi-lite/* "$OUT/"
fi
START=""; [ -f "$OUT/training_state.json" ] && START="--resume"
exec .venv/bin/zeroshot --threads "$THREADS" train "${FILES[@]}" --out "$OUT" \
  --guidance lmi --model-size lite --image-size 64 --spacing-mm 2.0 \
  --batch-size 8 --lr 2e-4 --max-steps "$MAX_STEPS" --checkpoint-every 250 --device cpu --mask-erosion 1 \
  --teacher "$TEACHER" --teacher-cfg-scale 1.25 \
  --notes "lite student of t1-lmi (8,000 steps, CFG 1.25 folded in): skull-stripped IXI T1 of 8 subjects (IXI049 and IXI051 held out), in-plane 2 mm, 64-px crops" \
  $START "${EXTRA[@]}"
