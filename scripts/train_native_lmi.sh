#!/usr/bin/env bash
# Train (or resume) the native-spacing T1 LMI model: in-plane 2 mm, 64-px crops, epsilon
# prediction, skull-stripped IXI T1 of eight subjects, fine-tuned from the 64-px t1-lmi model.
#
#   bash scripts/train_native_lmi.sh [OUT] [MAX_STEPS] [THREADS] [INIT] [EXTRA TRAIN OPTIONS...]
#
# OUT defaults to runs/t1-lmi-2mm; INIT (the model whose weights start a new run) to the
# 64-px t1-lmi training state in runs/t1-lmi if there is one, else the bundled t1-lmi. When
# OUT holds a training state the run resumes from it instead. The brains are made once with
# scripts/prepare_ixi_brain.py (DLMUSE > 0) into runs/ixi_brain; the last two subjects in
# sorted order (IXI049, IXI051) are held out for benchmarks/bench_wholehead.py. The bundled
# t1-lmi that INIT defaults to saw all ten subjects, so the held-out two are not unseen by
# its starting weights.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/t1-lmi-2mm}
MAX_STEPS=${2:-12000}
THREADS=${3:-1}
DEFAULT_INIT=src/zeroshot_core/model/bundled/t1-lmi
[ -f runs/t1-lmi/model.json ] && DEFAULT_INIT=runs/t1-lmi
INIT=${4:-$DEFAULT_INIT}
EXTRA=("${@:5}")
DATA=${ZEROSHOT_SHARED_DATA:-../shared/data}/ixi_t1
[ -d runs/ixi_brain ] || .venv/bin/python scripts/prepare_ixi_brain.py "$DATA" runs/ixi_brain
mapfile -t FILES < <(ls runs/ixi_brain/*.nii.gz | sort | head -n -2)
START="--init-from $INIT"; [ -f "$OUT/training_state.json" ] && START="--resume"
exec .venv/bin/zeroshot --threads "$THREADS" train "${FILES[@]}" --out "$OUT" \
  --guidance lmi --model-size small --image-size 64 --spacing-mm 2.0 \
  --batch-size 8 --lr 2e-4 --max-steps "$MAX_STEPS" --checkpoint-every 250 --device cpu --mask-erosion 1 \
  --notes "skull-stripped IXI T1 of 8 subjects (IXI049 and IXI051 held out), in-plane 2 mm, 64-px crops; fine-tuned from $(basename "$INIT")" \
  $START "${EXTRA[@]}"
