#!/usr/bin/env bash
# Train (or resume) the native-spacing T1 LMI model: in-plane 2 mm, 64-px crops, epsilon
# prediction, skull-stripped IXI T1 of eight subjects, fine-tuned from the 64-px t1-lmi model.
#
#   bash scripts/train_native_lmi.sh [OUT] [MAX_STEPS] [THREADS] [INIT] [EXTRA TRAIN OPTIONS...]
#
# OUT defaults to runs/t1-lmi-2mm. When OUT holds no training state yet, the bundled t1-lmi
# (this recipe's model) and its committed checkpoint (checkpoints/t1-lmi) are copied there
# and the run resumes from them; with OUT holding a state it resumes from that. Only when
# neither exists does a new run start from INIT's weights: the 64-px training run in
# runs/t1-lmi-64px if there is one (the bundled t1-lmi was started from its 6,741-step
# state), else the bundled t1-lmi-64px (5,201 steps). The brains are made once with
# scripts/prepare_ixi_brain.py (DLMUSE > 0) into runs/ixi_brain; the last two subjects in
# sorted order (IXI049, IXI051) are held out for benchmarks/bench_wholehead.py. The 64-px
# model saw all ten subjects, so the held-out two are not unseen by the starting weights.
# The bundled state's last 4,000 steps (4,000 -> 8,000) used --condition-dropout 0.1, so that
# it samples with classifier-free guidance (its card's default scale 1.25); pass it among the
# EXTRA options to continue that recipe.
# Save progress back with:  .venv/bin/python scripts/bundle_model.py OUT t1-lmi [--note ...]
#
# ANATOMY=head trains on the whole-head IXI T1 instead (skull, scalp and neck in the mask; the
# same eight subjects, the same two held out). A new whole-head run starts from INIT's weights,
# by default the bundled 2 mm t1-lmi (brains); nothing is copied into OUT:
#
#   ANATOMY=head bash scripts/train_native_lmi.sh runs/t1-lmi-head 8000 1 "" --condition-dropout 0.1
set -euo pipefail
cd "$(dirname "$0")/.."
ANATOMY=${ANATOMY:-brain}
OUT=${1:-runs/t1-lmi-2mm}
MAX_STEPS=${2:-12000}
THREADS=${3:-1}
DATA=${ZEROSHOT_SHARED_DATA:-../shared/data}/ixi_t1
if [ "$ANATOMY" = head ]; then
  DEFAULT_INIT=src/zeroshot_core/model/bundled/t1-lmi
  mapfile -t FILES < <(ls "$DATA"/nifti/*T1_ds.nii.gz | sort | head -n -2)
  WHAT="whole-head IXI T1 of 8 subjects"
else
  DEFAULT_INIT=src/zeroshot_core/model/bundled/t1-lmi-64px
  [ -f runs/t1-lmi-64px/model.json ] && DEFAULT_INIT=runs/t1-lmi-64px
  [ -d runs/ixi_brain ] || .venv/bin/python scripts/prepare_ixi_brain.py "$DATA" runs/ixi_brain
  mapfile -t FILES < <(ls runs/ixi_brain/*.nii.gz | sort | head -n -2)
  WHAT="skull-stripped IXI T1 of 8 subjects"
fi
INIT=${4:-$DEFAULT_INIT}
EXTRA=("${@:5}")
mkdir -p "$OUT"
if [ "$ANATOMY" = brain ] && [ ! -f "$OUT/training_state.json" ] && [ -f checkpoints/t1-lmi/training_state.json ]; then
  cp src/zeroshot_core/model/bundled/t1-lmi/* checkpoints/t1-lmi/* "$OUT/"
fi
START="--init-from $INIT"; [ -f "$OUT/training_state.json" ] && START="--resume"
exec .venv/bin/zeroshot --threads "$THREADS" train "${FILES[@]}" --out "$OUT" \
  --guidance lmi --model-size small --image-size 64 --spacing-mm 2.0 \
  --batch-size 8 --lr 2e-4 --max-steps "$MAX_STEPS" --checkpoint-every 250 --device cpu --mask-erosion 1 \
  --notes "$WHAT (IXI049 and IXI051 held out), in-plane 2 mm, 64-px crops; fine-tuned from $(basename "$INIT")" \
  $START "${EXTRA[@]}"
