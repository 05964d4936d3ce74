#!/usr/bin/env bash
# Coverage-guided fuzzing of every input-reading function with cargo-fuzz
# (libFuzzer, nightly toolchain). The same target bodies run on stable as
# bounded randomized tests in tests/fuzz_bounded.rs (part of scripts/test.sh).
#
#   scripts/fuzz.sh install            # cargo-fuzz and the nightly toolchain
#   scripts/fuzz.sh list               # the targets
#   scripts/fuzz.sh run TARGET [RUNS]  # one target, RUNS inputs (default 10 M)
#   scripts/fuzz.sh all [RUNS]         # every target in turn
#
# Runs are niced and one at a time, so they share a small machine politely.
set -euo pipefail
cd "$(dirname "$0")/.."
DEFAULT_RUNS=10000000
# Bytes per input: large enough for a jumbo frame with a vnet header, small
# enough that libFuzzer's mutations stay dense.
MAX_LEN=${FUZZ_MAX_LEN:-9100}
# Wall-clock cap per target (seconds); a run stopped by it says how far it got.
MAX_TIME=${FUZZ_MAX_TIME:-0}

# cargo-fuzz and the nightly toolchain.
install() { scripts/deps.sh fuzz; }

# The valid inputs of ipmpd::fuzzing::seeds start each corpus.
seed_corpus() {
    cargo test --quiet --test fuzz_bounded -- --ignored write_seed_corpus >/dev/null
}

run() {
    local target=$1 runs=${2:-$DEFAULT_RUNS}
    [[ -d fuzz/corpus/$target ]] || seed_corpus
    local start end
    start=$(date +%s)
    nice -n 10 cargo +nightly fuzz run "$target" "fuzz/corpus/$target" -- \
        -runs="$runs" -max_len="$MAX_LEN" -max_total_time="$MAX_TIME" \
        -print_final_stats=1
    end=$(date +%s)
    echo "fuzz: $target: $runs runs requested, $((end - start)) s"
}

case ${1:-} in
install) install ;;
list) install; cargo +nightly fuzz list ;;
run) install; run "${2:?target}" "${3:-$DEFAULT_RUNS}" ;;
all)
    install
    for t in $(cargo +nightly fuzz list); do run "$t" "${2:-$DEFAULT_RUNS}"; done
    ;;
*)
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
