#!/usr/bin/env bash
# The ~100 ms outbound stalls (docs/BENCHMARKS.md, "The 100 ms stalls"):
# a steady UDP stream with sequence numbers (examples/udpgap.rs, STALL_PPS
# packets/s, kernel receive timestamps at the router) host -> router, on
# the kernel's own path and through ipmpd, alternating in the same run:
#   direct   the data address on rge0 itself, no ipmpd
#   ipmpd-1  ipmpd with rge0 as its only member (the same wire path)
# Every gap longer than GAP_MS between two packets arriving is listed with
# the sequence numbers missing across it (0: the stream paused whole, e.g.
# its sender not running; about rate x gap: frames lost on the way), and
# with what the threads involved did meanwhile, from their schedstat sampled
# every 5 ms (scripts/bench_stall.py): the sender (udpgap send) and, through
# ipmpd, the outbound data thread (ipmpd-out): "ran" = ns on CPU, "waited" =
# ns runnable on a run queue but not running (not scheduled), and the
# machine's steal time (the hypervisor not running this VM). A gap with
# frames lost while ipmpd-out waited as long as the gap is the thread not
# being scheduled; lost while it ran is the thread's own work; a pause
# while the sender waited is the sender. ipmp0's and rge0's tx_dropped are
# read around each stream.
#
# Usage: scripts/bench-stall.sh [SECONDS] [ROUNDS]   (defaults 10 and 3;
#        bounded: each stream SECONDS, its receiver SECONDS+5)
#   STALL_PPS=N (default 20000), GAP_MS=N (default 20), IPMPD_BIN=PATH
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-10}"
ROUNDS="${2:-3}"
MAX_SECS=120
MAX_ROUNDS=20
STALL_PPS="${STALL_PPS:-20000}"
GAP_MS="${GAP_MS:-20}"
MAX_PPS=200000
if ! [[ "$SECS" =~ ^[0-9]+$ ]] || ((SECS < 1 || SECS > MAX_SECS)); then
    echo "SECONDS must be 1..$MAX_SECS" >&2
    exit 2
fi
if ! [[ "$ROUNDS" =~ ^[0-9]+$ ]] || ((ROUNDS < 1 || ROUNDS > MAX_ROUNDS)); then
    echo "ROUNDS must be 1..$MAX_ROUNDS" >&2
    exit 2
fi
if ! [[ "$STALL_PPS" =~ ^[0-9]+$ ]] || ((STALL_PPS < 1 || STALL_PPS > MAX_PPS)); then
    echo "STALL_PPS must be 1..$MAX_PPS" >&2
    exit 2
fi
if ! [[ "$GAP_MS" =~ ^[0-9]+$ ]] || ((GAP_MS < 1)); then
    echo "GAP_MS must be a positive integer" >&2
    exit 2
fi
# The receiver waits this much longer than the stream lasts.
RECV_GRACE_SECS=5
# The sampler runs this much longer than the stream (it starts first).
SAMPLE_GRACE_SECS=2
PORT=9000
[[ $EUID -eq 0 ]] || { echo "bench-stall.sh: must run as root (network namespaces)" >&2; exit 1; }

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
scripts/deps.sh bench
if [[ -z "${IPMPD_BIN:-}" ]]; then
    cargo build --release --quiet --bin ipmpd --example udpgap
    IPMPD_BIN="$PWD/target/release/ipmpd"
else
    cargo build --release --quiet --example udpgap
fi
IPMPD_BIN=$(realpath "$IPMPD_BIN")
GAP="$PWD/target/release/examples/udpgap"
HELPER="$PWD/scripts/bench_stall.py"

export LAB_PREFIX="ipmpstall$$"
RUN_DIR="$(mktemp -d)"
export IPMPD_RUN_DIR="$RUN_DIR"
IPMPD_LOG="$RUN_DIR/ipmpd.log"
BG_PIDS=()
cleanup() {
    local p
    trap - EXIT INT TERM
    for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    ipmpd_stop
    scripts/lab.sh down >/dev/null 2>&1 || true
    rm -rf "$RUN_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
scripts/lab.sh up >/dev/null
H="${LAB_PREFIX}-host"
R="${LAB_PREFIX}-router"
ROUTER=192.0.2.1
SRC=192.0.2.200
DATA="$SRC/24"

# tx_dropped of the host's interface IF (0 when it does not exist).
tx_dropped() { ip netns exec "$H" cat "/sys/class/net/$1/statistics/tx_dropped" 2>/dev/null || echo 0; }

# The thread id of ipmpd's thread NAME.

# One stream on the current path; prints the per-gap lines and a summary.
stream() {
    local name=$1 round=$2 recv_out="$RUN_DIR/recv.$1.$2" samples="$RUN_DIR/samples.$1.$2"
    local rx tx sampler specs=() d_tap0 d_rge0 d_tap1 d_rge1 out_tid
    ip netns exec "$H" ping -c 2 -i 0.2 -q "$ROUTER" >/dev/null
    ip netns exec "$R" "$GAP" recv --bind "$ROUTER:$PORT" --seconds $((SECS + RECV_GRACE_SECS)) \
        --gap-ms "$GAP_MS" >"$recv_out" &
    rx=$!
    BG_PIDS+=("$rx")
    sleep 0.3
    d_tap0=$(tx_dropped ipmp0)
    d_rge0=$(tx_dropped rge0)
    ip netns exec "$H" "$GAP" send --dst "$ROUTER:$PORT" --rate "$STALL_PPS" --seconds "$SECS" \
        --bind "$SRC" >"$RUN_DIR/send.$name.$round" &
    tx=$!
    BG_PIDS+=("$tx")
    specs=("sender=$tx")
    if [[ $name != direct ]]; then
        out_tid=$(ipmpd_tid ipmpd-out)
        [[ -z "$out_tid" ]] || specs+=("ipmpd-out=$out_tid")
    fi
    python3 "$HELPER" sample "$samples" $((SECS + SAMPLE_GRACE_SECS)) "${specs[@]}" &
    sampler=$!
    BG_PIDS+=("$sampler")
    wait "$tx" || true
    wait "$rx" || true
    wait "$sampler" || true
    d_tap1=$(tx_dropped ipmp0)
    d_rge1=$(tx_dropped rge0)
    echo "## round $round, $name: $(cat "$RUN_DIR/send.$name.$round")"
    echo "  ipmp0 tx_dropped +$((d_tap1 - d_tap0)), rge0 tx_dropped +$((d_rge1 - d_rge0))"
    python3 "$HELPER" analyse "$recv_out" "$samples" "$GAP_MS" "$STALL_PPS" | tee "$RUN_DIR/analysis.$name.$round"
    BG_PIDS=()
}

echo "# bench-stall: kernel $(uname -r), $(nproc) CPUs, ${SECS}s streams at $STALL_PPS pps, gaps > ${GAP_MS} ms, $ROUNDS rounds, $(date -u +%FT%TZ)"
echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg); ipmpd: $IPMPD_BIN"
for ((r = 1; r <= ROUNDS; r++)); do
    ip -n "$H" addr add "$DATA" dev rge0
    stream direct "$r"
    ip -n "$H" addr del "$DATA" dev rge0
    ip -n "$R" neigh flush dev r0

    ipmpd_start "$H" --group stall0 --data "$DATA" --member rge0
    stream ipmpd-1 "$r"
    ipmpd_stop
    ip -n "$R" neigh flush dev r0
done
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "per path over $ROUNDS rounds: gaps > ${GAP_MS} ms (with frames lost / stream paused)"
for p in direct ipmpd-1; do
    awk -v p="$p" '/^SUMMARY/ {
            for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] += kv[2] }
            if (v["max_gap_ms"] > worst) worst = v["max_gap_ms"]; v["max_gap_ms"] = 0 }
        END { printf "  %-8s gaps %d (lost %d, paused %d), frames lost in the streams %d, worst gap %.1f ms\n",
              p, v["gaps"], v["lost"], v["paused"], v["stream_lost"], worst }' "$RUN_DIR"/analysis."$p".*
done
