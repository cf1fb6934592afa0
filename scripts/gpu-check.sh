#!/usr/bin/env bash
# The check of the PTX path on a real Nvidia GPU (issue 6), in one command.
#
#   scripts/gpu-check.sh bundle   # on a machine with Rust (no GPU needed): build the
#                                 # release binaries into target/gpu-bundle/
#   scripts/gpu-check.sh          # on the GPU machine: run every check (< 8 minutes)
#
# Needs on the GPU machine: the Nvidia driver (libcuda.so.1). Nothing else: no network,
# no CUDA toolkit (the driver JIT-compiles the PTX), no Rust when target/gpu-bundle/ (or
# TESSERA_GPU_BUNDLE) holds binaries built beforehand for x86-64 Linux; with `cargo` on
# PATH and no bundle, the binaries are built first (not counted in the 8 minutes).
# Optional: python3 with torch (CUDA) for the PyTorch column; the all-MiniLM-L6-v2 files
# (TESSERA_MINILM_DIR, target/gpu-bundle/minilm or .cache/minilm; `TESSERA_BUNDLE_MINILM=1
# scripts/gpu-check.sh bundle` copies .cache/minilm into the bundle) for the MiniLM check;
# without them that check is reported `missing` and the run INCOMPLETE (exit 3).
#
# Steps, each under a timeout within one overall budget (TESSERA_GPU_CHECK_BUDGET seconds,
# default 470, counted from the first step to the end of the table; every command runs
# under `timeout -k 10`, so one stuck in a driver call after SIGTERM is killed 10 s later,
# and the budget keeps those 10 s and 15 s for the table; a step the budget has no time
# left for is not run and fails), each writing one JSON result into $OUT/results/:
#   1. the CUDA device (fails at once, clearly, when there is none);
#   2. the conformance suite on the cuda device (tests/conformance.rs, conformance_cuda);
#   3. tests/cuda.rs (MLP forward, GPT training steps and checkpoint resume vs f64);
#   4. the small GPT trained 20 steps, per-step losses compared with the f64 interpreter;
#   5. MiniLM embeddings against models/tests/data/minilm-reference.json (1e-5);
#   6. matmul 4096^3 f32 and bf16, causal attention T = 4096: tessera timings (checked on
#      sampled outputs) and PyTorch's (TF32 off) when torch is there;
#   7. the same timings for the PTX record's tuning alternatives (other matmul tiles,
#      attention blocks: Target::tuning_variants), each checked the same way; skipped,
#      not failed, when the budget has no time left for it;
#   8. the table of everything, printed last.
# The whole log goes to $OUT/gpu-check.log (OUT defaults to target/gpu-check). Exit status:
# 0 every check passed; 1 a check failed; 2 no GPU / no binaries (nothing run); 3 nothing
# failed but a check could not run (MiniLM files missing).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUNDLE=${TESSERA_GPU_BUNDLE:-$ROOT/target/gpu-bundle}
OUT=${TESSERA_GPU_CHECK_OUT:-$ROOT/target/gpu-check}
BUDGET=${TESSERA_GPU_CHECK_BUDGET:-470}
# Seconds between SIGTERM and SIGKILL of a command that overruns its limit.
KILL=10
# Seconds kept for the table at the end (its own limit plus its kill grace).
TABLE=15
export RUST_BACKTRACE=0 RUST_LIB_BACKTRACE=0

die() {
    echo "gpu-check: FAIL: $*" >&2
    exit 2
}

# Builds the release binaries into $BUNDLE (needs cargo; no GPU).
build_bundle() {
    command -v cargo >/dev/null || die "cargo is not on PATH: cannot build the bundle"
    mkdir -p "$BUNDLE" || die "cannot create $BUNDLE"
    echo "gpu-check: building release binaries (features cuda) into $BUNDLE"
    (cd "$ROOT" && cargo build --release --features cuda --example gpu_check) ||
        die "cargo build of the gpu_check example failed"
    local listing
    listing=$(cd "$ROOT" && cargo test --release --features cuda --no-run \
        --test conformance --test cuda 2>&1) || {
        echo "$listing" >&2
        die "cargo test --no-run failed"
    }
    local conf cuda
    conf=$(echo "$listing" | sed -n 's/.*Executable tests\/conformance\.rs (\(.*\))/\1/p' | tail -1)
    cuda=$(echo "$listing" | sed -n 's/.*Executable tests\/cuda\.rs (\(.*\))/\1/p' | tail -1)
    if [ -z "$conf" ] || [ -z "$cuda" ]; then
        die "could not find the test executables in: $listing"
    fi
    if ! cp -f "$ROOT/target/release/examples/gpu_check" "$BUNDLE/gpu_check" ||
        ! cp -f "$ROOT/$conf" "$BUNDLE/conformance" ||
        ! cp -f "$ROOT/$cuda" "$BUNDLE/cuda_tests" ||
        ! cp -f "$ROOT/models/tests/data/minilm-reference.json" "$BUNDLE/"; then
        die "copying into $BUNDLE failed"
    fi
    if command -v strip >/dev/null; then
        strip "$BUNDLE/gpu_check" "$BUNDLE/conformance" "$BUNDLE/cuda_tests" || true
    fi
    # The MiniLM files (88 MB) only on request: a bundle without them (~29 MB) fits the
    # 64 MiB that can be carried to a borrowed GPU machine.
    if [ "${TESSERA_BUNDLE_MINILM:-0}" = 1 ] && [ -f "$ROOT/.cache/minilm/model.safetensors" ]; then
        mkdir -p "$BUNDLE/minilm" && cp -r "$ROOT/.cache/minilm/." "$BUNDLE/minilm/"
    fi
    du -sh "$BUNDLE"/* 2>/dev/null
    echo "gpu-check: bundle ready: $BUNDLE"
}

case "${1:-run}" in
bundle)
    build_bundle
    exit 0
    ;;
run) ;;
-h | --help)
    sed -n '2,32p' "${BASH_SOURCE[0]}"
    exit 0
    ;;
*) die "unknown command '$1' (expected: bundle, run)" ;;
esac

case $BUDGET in
'' | *[!0-9]*) die "TESSERA_GPU_CHECK_BUDGET=$BUDGET is not a whole number of seconds" ;;
esac

mkdir -p "$OUT/results" || die "cannot create $OUT"
rm -f "$OUT"/results/*.json
LOG=$OUT/gpu-check.log
: >"$LOG"

# The checks (body not indented: it holds a Python heredoc).
checks() {
START=$(date +%s)
echo "gpu-check: $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(hostname), log: $LOG"

# The binaries: a bundle built beforehand, or a build here.
if [ ! -x "$BUNDLE/gpu_check" ]; then
    if command -v cargo >/dev/null; then
        build_bundle
        START=$(date +%s)
    else
        die "no binaries in $BUNDLE and no cargo to build them (run 'scripts/gpu-check.sh bundle' on a machine with Rust and copy target/gpu-bundle here)"
    fi
fi
GPU=$BUNDLE/gpu_check

# Seconds for the next step: at most $1 and what the budget has left after the kill
# grace and the table's share; 0 when it has nothing left.
left() {
    local max=$1 rest
    rest=$((BUDGET - ($(date +%s) - START) - KILL - TABLE))
    [ "$rest" -lt "$max" ] && max=$rest
    [ "$max" -lt 0 ] && max=0
    echo "$max"
}

# Runs a command (from $2 on) under `timeout -k $KILL` with at most $1 seconds of the
# budget. When the budget has less than a second left: not run, SPENT=1, status 124.
SPENT=0
bounded() {
    local secs
    secs=$(left "$1")
    shift
    if [ "$secs" -lt 1 ]; then
        SPENT=1
        echo "gpu-check: the budget of $BUDGET s is spent: not running $1" >&2
        return 124
    fi
    SPENT=0
    timeout -k "$KILL" "$secs" "$@"
}

# Why the last bounded command failed, in words, from its exit status $1.
why() {
    if [ "$SPENT" = 1 ]; then
        echo "not run: the budget of $BUDGET s was spent"
        return
    fi
    case $1 in
    124 | 137) echo "timed out (exit status $1; see the log)" ;;
    *) echo "exit status $1 (see the log)" ;;
    esac
}

# Writes a result file: name status detail. The detail is kept to printable ASCII (each
# control character, such as a newline or tab, and each byte of a non-ASCII character
# becomes a space; runs of spaces are squeezed), with its \ and " escaped, so the file is
# valid JSON whatever the detail held.
result() {
    local detail
    detail=$(printf '%s' "$3" | LC_ALL=C tr -c '[:print:]' ' ' | tr -s ' ')
    detail=${detail# }
    detail=${detail% }
    detail=${detail//\\/\\\\}
    detail=${detail//\"/\\\"}
    printf '{"check": "%s", "status": "%s", "detail": "%s"}\n' "$1" "$2" "$detail" \
        >"$OUT/results/$1.json"
}

echo "== 1. CUDA device"
command -v nvidia-smi >/dev/null &&
    bounded 20 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
if ! DEVICE=$(bounded 60 "$GPU" info 2>&1); then
    result device fail "$DEVICE"
    echo "$DEVICE"
    die "no usable CUDA device (see above); nothing else was run"
fi
echo "$DEVICE"
result device pass "$DEVICE"

# Runs a test binary with TESSERA_REQUIRE_CUDA=1 (a skip is a failure): name, limit, args.
run_tests() {
    local name=$1 limit=$2
    shift 2
    local t0 rc secs
    t0=$(date +%s)
    TESSERA_REQUIRE_CUDA=1 bounded "$limit" "$@"
    rc=$?
    secs=$(($(date +%s) - t0))
    case $rc in
    0) result "$name" pass "all tests passed (${secs} s)" ;;
    *)
        if [ "$SPENT" = 1 ]; then
            result "$name" fail "$(why "$rc")"
        else
            result "$name" fail "$(why "$rc") after ${secs} s (failures above in the log)"
        fi
        ;;
    esac
}

echo "== 2. conformance suite on cuda"
run_tests conformance 240 "$BUNDLE/conformance" conformance_cuda --exact --nocapture

echo "== 3. tests/cuda.rs"
run_tests cuda_tests 90 "$BUNDLE/cuda_tests" --nocapture --test-threads 1

echo "== 4. small GPT, 20 steps vs the f64 interpreter"
bounded 120 "$GPU" train --steps 20 --out "$OUT/results/train.json"
rc=$?
[ "$rc" = 0 ] || [ -f "$OUT/results/train.json" ] || result train fail "$(why "$rc")"

echo "== 5. MiniLM embeddings vs the reference"
MODEL=${TESSERA_MINILM_DIR:-}
for d in "$BUNDLE/minilm" "$ROOT/.cache/minilm"; do
    [ -z "$MODEL" ] && [ -f "$d/model.safetensors" ] && MODEL=$d
done
REF=$BUNDLE/minilm-reference.json
[ -f "$REF" ] || REF=$ROOT/models/tests/data/minilm-reference.json
if [ -z "$MODEL" ]; then
    result minilm missing "not run: the all-MiniLM-L6-v2 files are missing (set TESSERA_MINILM_DIR, or bundle .cache/minilm)"
else
    bounded 60 "$GPU" minilm --model "$MODEL" --reference "$REF" --out "$OUT/results/minilm.json"
    rc=$?
    [ "$rc" = 0 ] || [ -f "$OUT/results/minilm.json" ] || result minilm fail "$(why "$rc")"
fi

echo "== 6. timings"
bounded 120 "$GPU" bench --out "$OUT/results/bench.json"
rc=$?
[ "$rc" = 0 ] || [ -f "$OUT/results/bench.json" ] || result bench fail "$(why "$rc")"
if ! command -v python3 >/dev/null; then
    result torch skip "python3 not available: no PyTorch column"
elif bounded 60 python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    bounded 90 python3 - 4096 4096 10 "$OUT/results/torch.json" <<'PY'
import json, sys
import torch
import torch.nn.functional as F

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
n, t, reps, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]


def median_ms(fn):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        torch.cuda.synchronize()
        times.append(s.elapsed_time(e))
    times.sort()
    return times[len(times) // 2]


def uniform(*shape, dtype=torch.float32):
    return (torch.rand(*shape, device="cuda") * 2 - 1).to(dtype)


rows = []
for dtype, tag in [(torch.float32, "f32"), (torch.bfloat16, "bf16")]:
    a, b = uniform(n, n, dtype=dtype), uniform(n, n, dtype=dtype)
    rows.append({"name": f"matmul_{tag}_{n}", "ms": median_ms(lambda: a @ b)})
h, d = 8, 64
q, k, v = (uniform(1, h, t, d) for _ in range(3))
rows.append({
    "name": f"attention_causal_f32_T{t}_H{h}_D{d}",
    "ms": median_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True)),
})
with open(out, "w") as f:
    json.dump({
        "check": "torch",
        "status": "pass",
        "detail": f"PyTorch {torch.__version__} on {torch.cuda.get_device_name()}, TF32 off, "
        f"median of {reps} runs (CUDA events)",
        "rows": rows,
    }, f, indent=1)
for r in rows:
    print(f"torch {r['name']}: {r['ms']:.3f} ms")
PY
    rc=$?
    [ "$rc" = 0 ] || result torch fail "PyTorch timing: $(why "$rc")"
elif [ "$SPENT" = 1 ]; then
    result torch skip "no PyTorch column: $(why 124)"
else
    result torch skip "python3 with torch (CUDA) not available: no PyTorch column"
fi

echo "== 7. tuning sweep: the PTX record's alternatives (Target::tuning_variants)"
# Last, and optional: a sweep the budget has no time left for is skipped, not failed (one
# that ran and computed wrong numbers fails).
bounded 90 "$GPU" bench --sweep --out "$OUT/results/sweep.json"
rc=$?
if [ "$rc" != 0 ] && [ ! -f "$OUT/results/sweep.json" ]; then
    if [ "$SPENT" = 1 ]; then
        result sweep skip "$(why "$rc")"
    else
        result sweep fail "$(why "$rc")"
    fi
fi

echo "== 8. summary ($(($(date +%s) - START)) s)"
timeout -k 5 $((TABLE - 5)) "$GPU" table --results "$OUT/results" | tee "$OUT/table.txt"
echo "gpu-check: full log in $LOG, table in $OUT/table.txt"
if grep -q '^overall: PASS' "$OUT/table.txt"; then
    return 0
elif grep -q '^overall: INCOMPLETE' "$OUT/table.txt"; then
    return 3
fi
return 1
}

# Everything, stdout and stderr, to the terminal and to the log.
checks 2>&1 | tee -a "$LOG"
exit "${PIPESTATUS[0]}"
