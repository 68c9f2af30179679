#!/usr/bin/env bash
# Train (or resume) the whole-head T1 LMI model: native 2 mm, 96-px crops, v-prediction,
# Min-SNR-5, condition dropout 0.1 (for classifier-free guidance), contrast-randomised guides.
#
#   bash scripts/train_wholehead.sh [OUT] [MAX_STEPS] [THREADS]
#
# OUT defaults to runs/t1-lmi-wholehead. When OUT holds no training state yet, the committed
# checkpoint in checkpoints/t1-lmi-wholehead (if any) is copied there first, so a new clone
# continues where the last run stopped. The last two IXI subjects in sorted order (IXI049,
# IXI051) are held out for the validation of benchmarks/bench_wholehead.py. Save progress
# back with:  .venv/bin/python scripts/bundle_model.py OUT t1-lmi-wholehead --checkpoint-only
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/t1-lmi-wholehead}
MAX_STEPS=${2:-20000}
THREADS=${3:-1}
DATA=${ZEROSHOT_SHARED_DATA:-../shared/data}/ixi_t1/nifti
mkdir -p "$OUT"
if [ ! -f "$OUT/training_state.json" ] && [ -f checkpoints/t1-lmi-wholehead/training_state.json ]; then
  cp checkpoints/t1-lmi-wholehead/* "$OUT/"
fi
RESUME=""; [ -f "$OUT/training_state.json" ] && RESUME="--resume"
mapfile -t FILES < <(ls "$DATA"/*T1_ds.nii.gz | sort | head -n -2)
exec .venv/bin/zeroshot --threads "$THREADS" train "${FILES[@]}" --out "$OUT" \
  --guidance lmi --model-size small --image-size 96 --spacing-mm 2.0 \
  --batch-size 8 --lr 3e-4 --max-steps "$MAX_STEPS" --checkpoint-every 100 --device cpu \
  --prediction v_prediction --min-snr-gamma 5 --condition-dropout 0.1 --contrast-randomisation 0.8 \
  --notes "whole-head IXI T1 at 2 mm, 96-px crops; held out for validation: IXI049-HH-1358, IXI051-HH-1328" \
  $RESUME
