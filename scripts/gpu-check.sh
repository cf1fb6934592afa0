#!/usr/bin/env bash
# The check of the PTX path on a real Nvidia GPU (issue 6), in one command.
#
#   scripts/gpu-check.sh bundle   # on a machine with Rust (no GPU needed): build the
#                                 # release binaries into target/gpu-bundle/
#   scripts/gpu-check.sh verify   # the same machine: try the bundle (no GPU needed)
#   scripts/gpu-check.sh          # on the GPU machine: run every check (< 8 minutes)
#
# The bundle is one file, target/gpu-bundle/gpu-bundle.tar.gz: the stripped binaries, the
# MiniLM reference and, when .cache/minilm is there (`cargo xtask setup`), a MiniLM folder
# whose word-embedding rows other than the reference sentences' tokens are zero (the same
# embeddings; ~40 MB gzipped instead of 87). `bundle` refuses to finish when the bundle
# and the tracked files would not fit the 64 MiB that can be carried to a borrowed GPU
# machine; `verify` unpacks it into a scratch folder and runs what needs no GPU (the
# loader, the test lists, dry runs on the PTX VM, MiniLM on the tile interpreter).
#
# Needs on the GPU machine: the Nvidia driver (libcuda.so.1), tar and gzip. Nothing else:
# no network, no CUDA toolkit (the driver JIT-compiles the PTX), no Rust when
# target/gpu-bundle/ (or TESSERA_GPU_BUNDLE) holds the bundle; with `cargo` on PATH and
# no bundle, it is built first (not counted in the 8 minutes).
# Optional: python3 with torch (CUDA) for the PyTorch column. The MiniLM check takes the
# first folder holding the model of: TESSERA_MINILM_DIR, the bundle's, .cache/minilm,
# the Hugging Face cache; without one it is reported `missing` and the run INCOMPLETE
# (exit 3).
#
# Steps, each under a timeout within one overall budget (TESSERA_GPU_CHECK_BUDGET seconds,
# default 420, counted from the first step to the end of the table; every command runs
# under `timeout -k 10`, so one stuck in a driver call after SIGTERM is killed 10 s later,
# and the budget keeps those 10 s and 15 s for the table; a step the budget has no time
# left for is not run and fails), each writing one JSON result:
#   1. the CUDA device (fails at once, clearly, when there is none; a bundled binary
#      that cannot run here is told apart from a missing GPU);
#   2. the small GPT trained 20 steps, per-step losses compared with the f64 interpreter;
#   3. MiniLM embeddings against models/tests/data/minilm-reference.json (1e-5);
#   4. matmul 4096^3 f32 and bf16, causal attention T = 4096: tessera timings (checked on
#      sampled outputs; a run cut short keeps the rows it has) and PyTorch's (TF32 off)
#      when torch is there (a PyTorch failure leaves the column out, it fails nothing);
#   5. the conformance suite on the cuda device (tests/conformance.rs, conformance_cuda;
#      each case's start and end logged as it runs; TESSERA_CONFORMANCE_THREADS=1 runs
#      one case at a time, so that a case that faults the GPU context is named last);
#   6. tests/cuda.rs (MLP forward, GPT training steps and checkpoint resume vs f64);
#   7. the same timings for the PTX record's tuning alternatives (other matmul tiles,
#      attention blocks: Target::tuning_variants), each checked the same way; skipped,
#      not failed, when the budget has no time left for it or cuts it short (the rows
#      timed by then are kept);
#   8. the table of everything, printed last.
# The short checks come first, so that a slow conformance run cannot starve them.
# Three files land in $OUT (TESSERA_GPU_CHECK_OUT, else OUT, else target/gpu-check): the
# whole log gpu-check.log, the table table.txt, and results.tar.gz with one JSON file per
# check (packed again after every step: a run killed from outside still returns the
# results so far). Exit status: 0 every check passed; 1 a check failed; 2 no GPU / no
# binaries (nothing run); 3 nothing failed but a check could not run (MiniLM files
# missing). Run it as `bash scripts/gpu-check.sh` where a copy may have lost the
# executable bit; give the command that runs it a limit of 10 minutes (the budget, the
# unpacking and the kill graces fit in it).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUNDLE=${TESSERA_GPU_BUNDLE:-$ROOT/target/gpu-bundle}
OUT=${TESSERA_GPU_CHECK_OUT:-${OUT:-$ROOT/target/gpu-check}}
BUDGET=${TESSERA_GPU_CHECK_BUDGET:-420}
# Seconds between SIGTERM and SIGKILL of a command that overruns its limit.
KILL=10
# Seconds kept for the table at the end (its own limit plus its kill grace).
TABLE=15
# What can be carried to a borrowed GPU machine: the tracked files and the bundle.
CARRY_LIMIT=$((64 * 1024 * 1024))
ARCHIVE=gpu-bundle.tar.gz
export RUST_BACKTRACE=0 RUST_LIB_BACKTRACE=0 PYTHONUNBUFFERED=1

die() {
    echo "gpu-check: FAIL: $*" >&2
    exit 2
}

# Builds the release binaries and the slim MiniLM into $BUNDLE/$ARCHIVE (needs cargo; no
# GPU), and checks that it can be carried: `bundle` stops when it cannot (the size is only
# reported when the GPU machine builds it for itself, $1 = here).
build_bundle() {
    command -v cargo >/dev/null || die "cargo is not on PATH: cannot build the bundle"
    mkdir -p "$BUNDLE" || die "cannot create $BUNDLE"
    echo "gpu-check: building release binaries (features cuda) into $BUNDLE"
    (cd "$ROOT" && cargo build --release --features cuda --example gpu_check) ||
        die "cargo build failed"
    # The test executables: their paths are in cargo's "Executable" lines.
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
    local stage
    stage=$(mktemp -d) || die "mktemp failed"
    if ! cp -f "$ROOT/target/release/examples/gpu_check" "$stage/gpu_check" ||
        ! cp -f "$ROOT/$conf" "$stage/conformance" ||
        ! cp -f "$ROOT/$cuda" "$stage/cuda_tests" ||
        ! cp -f "$ROOT/models/tests/data/minilm-reference.json" "$stage/"; then
        rm -rf "$stage"
        die "copying the binaries failed"
    fi
    if command -v strip >/dev/null; then
        strip "$stage/gpu_check" "$stage/conformance" "$stage/cuda_tests" || true
    fi
    # MiniLM with only the reference sentences' word-embedding rows (the 87 MB model would
    # not fit the carry); checked against the reference here, on the tile interpreter.
    if [ -f "$ROOT/.cache/minilm/model.safetensors" ]; then
        if ! "$stage/gpu_check" slim-minilm --model "$ROOT/.cache/minilm" \
            --reference "$stage/minilm-reference.json" --out "$stage/minilm" ||
            ! "$stage/gpu_check" minilm --device tile --model "$stage/minilm" \
                --reference "$stage/minilm-reference.json" >/dev/null; then
            rm -rf "$stage"
            die "the slim MiniLM could not be made or does not match the reference"
        fi
    else
        echo "gpu-check: WARNING: no .cache/minilm (cargo xtask setup fetches it): the bundle has no MiniLM, so its check will be 'missing'" >&2
    fi
    rm -f "$BUNDLE/$ARCHIVE" "$BUNDLE/gpu_check" "$BUNDLE/conformance" "$BUNDLE/cuda_tests"
    if ! tar -czf "$BUNDLE/$ARCHIVE" -C "$stage" .; then
        rm -rf "$stage"
        die "tar failed"
    fi
    rm -rf "$stage"
    local bundle tracked
    bundle=$(stat -c %s "$BUNDLE/$ARCHIVE")
    # What travels with the working tree: tracked files and untracked ones git does not
    # ignore.
    tracked=$(cd "$ROOT" && git ls-files -co --exclude-standard -z |
        xargs -0 stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
    echo "gpu-check: bundle ready: $BUNDLE/$ARCHIVE ($((bundle / 1048576)) MiB; with the tracked files $(((bundle + tracked) / 1048576)) of $((CARRY_LIMIT / 1048576)) MiB that can be carried)"
    [ "${1:-}" = here ] || [ $((bundle + tracked)) -le "$CARRY_LIMIT" ] ||
        die "the bundle and the working tree ($((bundle + tracked)) bytes) exceed the $CARRY_LIMIT bytes that can be carried"
}

# Unpacks $BUNDLE/$ARCHIVE into the folder $1 (made executable: a copy may drop the bits).
unpack_bundle() {
    mkdir -p "$1" || return 1
    tar -xzf "$BUNDLE/$ARCHIVE" -C "$1" || return 1
    chmod +x "$1/gpu_check" "$1/conformance" "$1/cuda_tests" 2>/dev/null
    return 0
}

# Tries the bundle on this machine, without a GPU: the dynamic loader, the test lists,
# dry runs of the GPU checks' code on the PTX VM, MiniLM on the tile interpreter.
verify_bundle() {
    [ -f "$BUNDLE/$ARCHIVE" ] || die "no $BUNDLE/$ARCHIVE: run 'scripts/gpu-check.sh bundle' first"
    local dir fails=0
    dir=$(mktemp -d) || die "mktemp failed"
    unpack_bundle "$dir" || die "unpacking $BUNDLE/$ARCHIVE failed"
    ok() { echo "verify: ok    $*"; }
    bad() {
        echo "verify: FAIL  $*"
        fails=$((fails + 1))
    }
    local b
    for b in gpu_check conformance cuda_tests; do
        if [ ! -x "$dir/$b" ]; then
            bad "$b is missing"
        elif ldd "$dir/$b" 2>&1 | grep -q 'not found'; then
            bad "$b: $(ldd "$dir/$b" 2>&1 | grep 'not found' | tr '\n' ' ')"
        else
            ok "$b loads ($(objdump -T "$dir/$b" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sort -Vu | tail -1) at most)"
        fi
    done
    "$dir/gpu_check" --help >/dev/null 2>&1 && ok "gpu_check --help" || bad "gpu_check --help"
    "$dir/conformance" --list 2>/dev/null | grep -qx 'conformance_cuda: test' &&
        ok "conformance lists conformance_cuda" || bad "conformance does not list conformance_cuda"
    [ "$("$dir/cuda_tests" --list 2>/dev/null | grep -c ': test$')" -gt 0 ] &&
        ok "cuda_tests lists $("$dir/cuda_tests" --list 2>/dev/null | grep -c ': test$') tests" ||
        bad "cuda_tests lists no test"
    "$dir/gpu_check" train --device ptx-vm --steps 2 >/dev/null 2>&1 &&
        ok "train --device ptx-vm --steps 2" || bad "train --device ptx-vm --steps 2"
    "$dir/gpu_check" bench --device ptx-vm --size 96 --seq 80 --reps 1 >/dev/null 2>&1 &&
        ok "bench --device ptx-vm --size 96 --seq 80" || bad "bench --device ptx-vm"
    if [ -d "$dir/minilm" ]; then
        "$dir/gpu_check" minilm --device tile --model "$dir/minilm" \
            --reference "$dir/minilm-reference.json" >/dev/null 2>&1 &&
            ok "minilm --device tile (the slim model against the reference)" ||
            bad "minilm --device tile"
    else
        bad "the bundle has no MiniLM (its check would be 'missing')"
    fi
    rm -rf "$dir"
    [ "$fails" = 0 ] || die "$fails problem(s) with the bundle"
    echo "verify: the bundle is ready to carry (carry: [\"${BUNDLE#"$ROOT"/}\"])"
}

case "${1:-run}" in
bundle)
    build_bundle
    exit 0
    ;;
verify)
    verify_bundle
    exit 0
    ;;
run) ;;
-h | --help)
    sed -n '2,48p' "${BASH_SOURCE[0]}"
    exit 0
    ;;
*) die "unknown command '$1' (expected: bundle, verify, run)" ;;
esac

case $BUDGET in
'' | *[!0-9]*) die "TESSERA_GPU_CHECK_BUDGET=$BUDGET is not a whole number of seconds" ;;
esac

mkdir -p "$OUT" || die "cannot create $OUT"
OUT=$(cd "$OUT" && pwd) || die "cannot enter $OUT"
cd "$ROOT" || die "cannot enter $ROOT"
rm -f "$OUT/results.tar.gz" "$OUT/table.txt"
LOG=$OUT/gpu-check.log
: >"$LOG"
# A scratch folder for the unpacked bundle and one JSON file per check; the results are
# packed into $OUT/results.tar.gz after every step and at the end (a borrowed machine
# returns at most 8 files).
SCRATCH=$(mktemp -d) || die "mktemp failed"
RESULTS=$SCRATCH/results
BIN=$SCRATCH/bundle
mkdir -p "$RESULTS" || die "cannot create $RESULTS"

# Packs the results so far into $OUT/results.tar.gz (replaced whole: never half written).
pack() {
    tar -czf "$OUT/results.tar.gz.part" -C "$RESULTS" . &&
        mv -f "$OUT/results.tar.gz.part" "$OUT/results.tar.gz"
}

# Starts a step: the results so far packed, then its heading.
step() {
    pack || echo "gpu-check: packing the results failed" >&2
    echo "== $*"
}

# The checks (body not indented: it holds a Python heredoc).
checks() {
START=$(date +%s)
echo "gpu-check: $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(hostname), log: $LOG"

# The binaries: a bundle built beforehand, or a build here; unpacked into a scratch
# folder before the budget starts.
if [ ! -f "$BUNDLE/$ARCHIVE" ]; then
    if command -v cargo >/dev/null; then
        build_bundle here
    else
        die "no $BUNDLE/$ARCHIVE and no cargo to build it (run 'scripts/gpu-check.sh bundle' on a machine with Rust and carry target/gpu-bundle here)"
    fi
fi
unpack_bundle "$BIN" || die "unpacking $BUNDLE/$ARCHIVE failed (are tar and gzip installed?)"
GPU=$BIN/gpu_check
START=$(date +%s)

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
        >"$RESULTS/$1.json"
}

step "1. CUDA device"
command -v nvidia-smi >/dev/null &&
    bounded 20 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
echo "C library: $(ldd --version 2>&1 | head -1)"
echo "libcuda in the loader cache: $(ldconfig -p 2>/dev/null | grep -m 2 'libcuda\.so' | tr -s ' \n' ' ')"
# The driver's own folder, where images mount it outside the loader's cache.
if ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1' && [ -d /usr/local/nvidia/lib64 ]; then
    export LD_LIBRARY_PATH=/usr/local/nvidia/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
fi
# A binary that cannot run here (a C library too old, a lost file) is not a missing GPU.
if ! HELP=$(timeout -k "$KILL" 20 "$GPU" --help 2>&1); then
    result device fail "the bundled gpu_check does not run on this machine: $HELP"
    echo "$HELP"
    die "the bundled gpu_check does not run here (see above); nothing else was run"
fi
if ! DEVICE=$(bounded 60 "$GPU" info 2>&1); then
    result device fail "$DEVICE"
    echo "$DEVICE"
    die "no usable CUDA device (see above); nothing else was run"
fi
echo "$DEVICE"
result device pass "$DEVICE"

# Runs a test binary with TESSERA_REQUIRE_CUDA=1 (a skip is a failure): name, limit, the
# number of tests that must pass (a filter that matches nothing passes 0), args.
run_tests() {
    local name=$1 limit=$2 want=$3
    shift 3
    local t0 rc secs passed
    t0=$(date +%s)
    # Not `bounded` (SPENT would be set in the pipeline's subshell): the same, inline.
    secs=$(left "$limit")
    if [ "$secs" -lt 1 ]; then
        SPENT=1
        result "$name" fail "$(why 124)"
        return
    fi
    SPENT=0
    TESSERA_REQUIRE_CUDA=1 TESSERA_CONFORMANCE_PROGRESS=1 timeout -k "$KILL" "$secs" "$@" 2>&1 |
        tee "$RESULTS/$name.out"
    rc=${PIPESTATUS[0]}
    secs=$(($(date +%s) - t0))
    passed=$(sed -n 's/^test result: ok\. \([0-9]*\) passed.*/\1/p' "$RESULTS/$name.out" | tail -1)
    rm -f "$RESULTS/$name.out"
    if [ "$rc" = 0 ] && [ "${passed:-0}" -lt "$want" ]; then
        result "$name" fail "${passed:-no} test(s) passed, $want expected: the test filter matched nothing?"
        return
    fi
    case $rc in
    0) result "$name" pass "$passed test(s) passed (${secs} s)" ;;
    *)
        if [ "$SPENT" = 1 ]; then
            result "$name" fail "$(why "$rc")"
        else
            result "$name" fail "$(why "$rc") after ${secs} s (failures above in the log)"
        fi
        ;;
    esac
}

step "2. small GPT, 20 steps vs the f64 interpreter"
bounded 120 "$GPU" train --steps 20 --out "$RESULTS/train.json"
rc=$?
[ "$rc" = 0 ] || [ -f "$RESULTS/train.json" ] || result train fail "$(why "$rc")"

step "3. MiniLM embeddings vs the reference"
MODEL=${TESSERA_MINILM_DIR:-}
HUB=${HF_HOME:-${HOME:-/root}/.cache/huggingface}/hub/models--sentence-transformers--all-MiniLM-L6-v2/snapshots
for d in "$BIN/minilm" "$ROOT/.cache/minilm" "$HUB"/*; do
    [ -z "$MODEL" ] && [ -f "$d/model.safetensors" ] && [ -f "$d/tokenizer.json" ] && MODEL=$d
done
REF=$BIN/minilm-reference.json
[ -f "$REF" ] || REF=$ROOT/models/tests/data/minilm-reference.json
if [ -z "$MODEL" ]; then
    result minilm missing "not run: the all-MiniLM-L6-v2 files are missing (set TESSERA_MINILM_DIR, or build the bundle where .cache/minilm is)"
else
    bounded 60 "$GPU" minilm --model "$MODEL" --reference "$REF" --out "$RESULTS/minilm.json"
    rc=$?
    [ "$rc" = 0 ] || [ -f "$RESULTS/minilm.json" ] || result minilm fail "$(why "$rc")"
fi

step "4. timings"
bounded 120 "$GPU" bench --out "$RESULTS/bench.json"
rc=$?
[ "$rc" = 0 ] || [ -f "$RESULTS/bench.json" ] || result bench fail "$(why "$rc")"
if ! command -v python3 >/dev/null; then
    result torch skip "python3 not available: no PyTorch column"
elif bounded 60 python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' \
    2>"$SCRATCH/torch-probe.err"; then
    bounded 90 python3 - 4096 4096 10 "$RESULTS/torch.json" <<'PY'
import json, sys
import torch
import torch.nn.functional as F

# TF32 off: the precision API of PyTorch 2.9 and later where it exists (the older flags
# are deprecated there), else those flags; the value read back goes into the detail.
mm = torch.backends.cuda.matmul
try:
    mm.fp32_precision = "ieee"
    tf32 = f"torch.backends.cuda.matmul.fp32_precision = {mm.fp32_precision!r}"
except Exception:
    mm.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    tf32 = f"torch.backends.cuda.matmul.allow_tf32 = {mm.allow_tf32}"
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
    if dtype == torch.float32:
        # That TF32 is really off: TF32's 10-bit mantissa would leave errors near 1e-3 of
        # a row's magnitude against f64; f32 leaves about 1e-6.
        a4 = a[:4].double()
        want = a4 @ b.double()
        rel = ((a[:4] @ b).double() - want).abs().max() / (a4.abs() @ b.double().abs()).max()
        tf32 += f", f32 matmul error vs f64 {rel.item():.1e} of the row scale"
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
        "detail": f"PyTorch {torch.__version__} on {torch.cuda.get_device_name()}, TF32 off "
        f"({tf32}), median of {reps} runs (CUDA events; Tessera's column is wall-clock "
        f"time of a run, launches and synchronisation included); attention by "
        f"F.scaled_dot_product_attention (PyTorch's own kernel choice, which the TF32 "
        f"setting does not govern)",
        "rows": rows,
    }, f, indent=1)
for r in rows:
    print(f"torch {r['name']}: {r['ms']:.3f} ms")
PY
    rc=$?
    # PyTorch is the yardstick, not under test: its failure leaves the column out.
    [ "$rc" = 0 ] || result torch skip "no PyTorch column: the PyTorch timing failed, $(why "$rc")"
elif [ "$SPENT" = 1 ]; then
    result torch skip "no PyTorch column: $(why 124)"
else
    # Why not: the import's error (to the log, and its last line to the result).
    head -c 4000 "$SCRATCH/torch-probe.err"
    WHY=$(tail -n 1 "$SCRATCH/torch-probe.err")
    result torch skip "python3 with torch (CUDA) not available (${WHY:-torch.cuda.is_available() is False}): no PyTorch column"
fi

step "5. conformance suite on cuda"
run_tests conformance 240 1 "$BIN/conformance" conformance_cuda --exact --nocapture

step "6. tests/cuda.rs"
run_tests cuda_tests 90 1 "$BIN/cuda_tests" --nocapture --test-threads 1

step "7. tuning sweep: the PTX record's alternatives (Target::tuning_variants)"
# Last, and optional: a sweep the budget has too little time left for is skipped, not
# failed; one cut short by its limit leaves the rows it timed (sweep.json is written after
# each timing) and is skipped too; one that computed wrong numbers fails.
SWEEP_MIN=60
if [ "$(left 90)" -lt "$SWEEP_MIN" ]; then
    result sweep skip "not run: under $SWEEP_MIN s of the budget of $BUDGET s left"
else
    bounded 90 "$GPU" bench --sweep --out "$RESULTS/sweep.json"
    rc=$?
    if [ "$rc" != 0 ] && [ ! -f "$RESULTS/sweep.json" ]; then
        case $rc in
        124 | 137) result sweep skip "cut short before its first timing: $(why "$rc")" ;;
        *) result sweep fail "$(why "$rc")" ;;
        esac
    fi
fi

step "8. summary ($(($(date +%s) - START)) s)"
timeout -k 5 $((TABLE - 5)) "$GPU" table --results "$RESULTS" | tee "$OUT/table.txt"
echo "gpu-check: full log in $LOG, table in $OUT/table.txt, results in $OUT/results.tar.gz"
if grep -q '^overall: PASS' "$OUT/table.txt"; then
    return 0
elif grep -q '^overall: INCOMPLETE' "$OUT/table.txt"; then
    return 3
fi
return 1
}

# Everything, stdout and stderr, to the terminal and to the log; then the results packed.
checks 2>&1 | tee -a "$LOG"
STATUS=${PIPESTATUS[0]}
pack || echo "gpu-check: packing the results failed" >&2
# A borrowed machine returns no file over 16 MiB: a longer log keeps its first 4 and last
# 10 MiB.
LOG_MAX=$((15 * 1024 * 1024))
if [ "$(stat -c %s "$LOG")" -gt "$LOG_MAX" ]; then
    {
        head -c $((4 * 1024 * 1024)) "$LOG"
        printf '\n[gpu-check: %s bytes of log cut here, to fit what is returned]\n' \
            "$(($(stat -c %s "$LOG") - 14 * 1024 * 1024))"
        tail -c $((10 * 1024 * 1024)) "$LOG"
    } >"$LOG.cut" && mv -f "$LOG.cut" "$LOG"
fi
rm -rf "$SCRATCH"
exit "$STATUS"
