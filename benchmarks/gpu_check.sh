#!/usr/bin/env bash
# The GPU check: one script, under 8 minutes on one GPU, ending with one Markdown table.
#
#   bash benchmarks/gpu_check.sh              # on a machine with a CUDA GPU
#   bash benchmarks/gpu_check.sh --dry-run    # the same steps on the CPU with tiny sizes (also: DEVICE=cpu)
#
# Parts, each under its own time limit (a failed or timed-out part is a FAILED row, the
# others still run): the environment; the tests marked cuda; 200 training steps of the
# small model with and without bf16 autocast, and `zeroshot train`; CPU-vs-GPU agreement of
# LMI maps and of a translation, and host-to-device copies plain vs pinned; a 1-GPU torchrun
# job; last, with the rest of the budget, a whole-volume translation of the bundled PD
# phantom per bundled model (lmi, contour, none): plain vs channels-last vs bf16 autocast vs
# torch.compile.
#
# Needs python3 with torch (CUDA build). Other packages: what the python has, else wheels in
# .whl/ (installed offline into /tmp/site). Environment: PYTHON (default python3), OUT (logs
# and the table; default gpu_check_out), DEVICE (cuda; cpu = --dry-run), BUDGET_S (total
# seconds, default 470).
set -u
cd "$(dirname "$0")/.."

DEVICE=${DEVICE:-cuda}
for arg in "$@"; do
    case "$arg" in
        --dry-run) DEVICE=cpu ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument $arg (use --dry-run)" >&2; exit 2 ;;
    esac
done
PYTHON=${PYTHON:-python3}
OUT=${OUT:-gpu_check_out}
BUDGET_S=${BUDGET_S:-470}
START=$(date +%s)
mkdir -p "$OUT/logs"
ROWS="$OUT/rows.md"
: > "$ROWS"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

row() {  # part, case, result, status
    local cells=()
    for cell in "$@"; do cells+=("${cell//|//}"); done
    printf '| %s | %s | %s | %s |\n' "${cells[@]}" >> "$ROWS"
}

# part NAME LIMIT_S AFTER COMMAND...: run COMMAND under the smaller of LIMIT_S and what is left of
# the budget, then AFTER (a function, or -) with its exit code and seconds, to write its rows; a
# failure without a FAILED row of its own, or a timeout, adds one with the reason.
part() {
    local name=$1 limit=$2 after=$3; shift 3
    local left=$(( BUDGET_S - ($(date +%s) - START) ))
    (( limit > left )) && limit=$left
    if (( limit < 10 )); then
        row "$name" "-" "-" "FAILED: not started, the ${BUDGET_S} s budget is spent"
        return
    fi
    local before t0 rc took reason
    before=$(wc -l < "$ROWS")
    t0=$(date +%s)
    echo "== $name (limit ${limit} s): $*" >&2
    timeout -k 5 "$limit" "$@" > "$OUT/logs/$name.log" 2>&1
    rc=$?
    took=$(( $(date +%s) - t0 ))
    echo "   exit $rc after ${took} s" >&2
    [[ $after != - ]] && "$after" "$rc" "$took"
    reason=$(grep -v '^[[:space:]]*$' "$OUT/logs/$name.log" | tail -n 1 | cut -c1-160)
    if (( rc == 124 || rc == 137 )); then
        row "$name" "-" "stopped after ${took} s (rows above of this part finished)" \
            "FAILED: timeout (${limit} s limit); log: logs/$name.log"
    elif (( rc != 0 )) && ! tail -n +"$((before + 1))" "$ROWS" | grep -q 'FAILED'; then
        row "$name" "-" "exit $rc" "FAILED: ${reason:-no output}; log: logs/$name.log"
    fi
}

if [[ -d .whl ]] && compgen -G ".whl/*.whl" > /dev/null; then
    if timeout 90 "$PYTHON" -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl \
            > "$OUT/logs/wheels.log" 2>&1; then
        row wheels ".whl/ installed into /tmp/site" "$(ls .whl/*.whl | wc -l) wheels" ok
    else
        row wheels ".whl/ into /tmp/site" "-" "FAILED: $(tail -n 1 "$OUT/logs/wheels.log" | cut -c1-160)"
    fi
    export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi

CHECK=(benchmarks/gpu_check.py --device "$DEVICE" --rows "$ROWS" --out "$OUT")
PD=src/zeroshot_core/samples/data/brain_phantom_pd.nii.gz
T2=src/zeroshot_core/samples/data/brain_phantom_t2.nii.gz
if [[ $DEVICE == cpu ]]; then  # dry run: the same steps, tiny sizes, one thread
    THREADS=(--threads 1)
    TESTS=(-m pytest -q -p no:cacheprovider -m cuda --collect-only tests/test_acceleration_cuda.py)
    TRAIN=(--steps 5 --model-size tiny --image-size 32 --batch-size 4)
    BENCH=(--slices 2 --steps 2 --repeats 1 --compile-backend eager)
    AGREE=(--slices 2 --steps 2)
    SAMPLING=(--slices 38,40 --steps 2)
else
    THREADS=()
    TESTS=(-m pytest -q -p no:cacheprovider -m cuda tests/test_acceleration_cuda.py)
    TRAIN=(--steps 200)
    BENCH=(--slices all --steps 50 --repeats 1)
    AGREE=(--slices 8 --steps 10)
    SAMPLING=()
fi

part environment 30 - "$PYTHON" "${CHECK[@]}" environment

tests_row() {  # exit code, seconds
    local summary
    summary=$(grep -E '(passed|failed|error|collected|deselected)' "$OUT/logs/tests.log" | tail -n 1)
    if [[ $DEVICE == cpu ]]; then
        summary="${summary:-no summary} (dry run: collected only, they need a GPU)"
    fi
    row tests "pytest -m cuda tests/test_acceleration_cuda.py" "${summary:-no summary}, ${2} s" \
        "$([[ $1 == 0 ]] && echo ok || echo "FAILED: exit $1; log: logs/tests.log")"
}
part tests 75 tests_row "$PYTHON" "${TESTS[@]}"

part train 80 - "$PYTHON" "${CHECK[@]}" train "${THREADS[@]}" "${TRAIN[@]}"

part agreement 45 - "$PYTHON" "${CHECK[@]}" agree "${THREADS[@]}" "${AGREE[@]}"

torchrun_row() {  # exit code, seconds
    local done_line
    done_line=$(grep -E '[0-9]+ done' "$OUT/logs/torchrun.log" | tail -n 1)
    row torchrun "\`torchrun --standalone --nproc_per_node 1 -m zeroshot_core.cli translate\` of the PD and T2 phantoms (a folder), --device $DEVICE ${SAMPLING[*]}" \
        "exit $1, ${2} s wall; ${done_line:-no summary line}" \
        "$([[ $1 == 0 ]] && echo ok || echo "FAILED: exit $1; log: logs/torchrun.log")"
}
rm -rf "$OUT/torchrun_in" "$OUT/torchrun_out"
mkdir -p "$OUT/torchrun_in"
cp "$PD" "$T2" "$OUT/torchrun_in/"
part torchrun 50 torchrun_row "$PYTHON" -m torch.distributed.run --standalone --nproc_per_node 1 \
    -m zeroshot_core.cli -q "${THREADS[@]}" translate "$OUT/torchrun_in" --out "$OUT/torchrun_out" \
    --device "$DEVICE" "${SAMPLING[@]}" --summary-json "$OUT/torchrun_summary.json"

# Last, with the rest of the budget: compile variants start only while a minute is left for them.
LEFT=$(( BUDGET_S - ($(date +%s) - START) ))
part translate 300 - "$PYTHON" benchmarks/bench_acceleration.py --device "$DEVICE" --guidance lmi,contour,none \
    --compile --deadline-s $(( LEFT > 70 ? LEFT - 70 : 1 )) --rows "$ROWS" "${THREADS[@]}" "${BENCH[@]}"

TOTAL=$(( $(date +%s) - START ))
{
    echo "## gpu_check ($DEVICE$([[ $DEVICE == cpu ]] && echo ', dry run'), $(date -u +%Y-%m-%d), ${TOTAL} s)"
    echo
    echo "| part | case | result | status |"
    echo "|---|---|---|---|"
    cat "$ROWS"
} > "$OUT/summary.md"
cat "$OUT/summary.md"
! grep -q 'FAILED' "$ROWS"
