#!/usr/bin/env bash
# CPU and syscalls per forwarded frame of ipmpd's data threads at a fixed
# offered load, comparing two ipmpd binaries in the same lab, alternated
# (A, B, A, B, ...) so the machine's noise hits both alike.
#
# For each round and binary: ipmpd with rge0 as its only member, then
# 64-byte UDP frames (18-byte payload) at a fixed rate, one direction at a
# time (out: host -> router through ipmpd-out; in: router -> host through
# ipmpd-in). Per direction it reads the forwarding thread's CPU time from
# /proc/PID/task/TID/schedstat before and after, counts its syscalls with
# `perf stat -e raw_syscalls:sys_enter -t TID` over the same time, and
# divides by the frames that arrived (iperf3's packets - lost_packets).
#
# Usage: scripts/bench-batch.sh ROUNDS SECONDS PPS BIN_A BIN_B [ARGS_B...]
#   ARGS_B: extra ipmpd arguments for BIN_B only (e.g. --qdisc-bypass)
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $# -ge 5 ]] || { sed -n 2,16p "$0" >&2; exit 2; }
ROUNDS=$1 SECS=$2 PPS=$3 BIN_A=$4 BIN_B=$5
shift 5
ARGS_B=("$@")
# Bounds: the load is a fixed rate for a fixed time inside the lab.
((ROUNDS >= 1 && ROUNDS <= 10)) || { echo "ROUNDS must be 1..10" >&2; exit 2; }
((SECS >= 1 && SECS <= 30)) || { echo "SECONDS must be 1..30" >&2; exit 2; }
((PPS >= 1000 && PPS <= 200000)) || { echo "PPS must be 1000..200000" >&2; exit 2; }
[[ -x "$BIN_A" && -x "$BIN_B" ]] || { echo "BIN_A and BIN_B must be executables" >&2; exit 2; }
[[ $EUID -eq 0 ]] || { echo "bench-batch.sh: must run as root" >&2; exit 1; }
# UDP payload bytes: an 18-byte payload makes a 64-byte Ethernet frame.
PAYLOAD=18
# iperf3's -b counts payload bits.
RATE=$((PPS * PAYLOAD * 8))

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
# ipmpstat of this tree reads the counters of either binary (same protocol).
cargo build --release --quiet --bin ipmpstat
IPMPSTAT="$PWD/target/release/ipmpstat"
scripts/deps.sh bench perf >/dev/null

export LAB_PREFIX="ipmpbatch$$"
RUN_DIR="$(mktemp -d)"
export IPMPD_RUN_DIR="$RUN_DIR"
IPMPD_LOG="$RUN_DIR/ipmpd.log"
cleanup() {
    ipmpd_stop
    scripts/lab.sh down >/dev/null 2>&1 || true
    rm -rf "$RUN_DIR"
}
trap cleanup EXIT
scripts/lab.sh up >/dev/null
H="${LAB_PREFIX}-host"
R="${LAB_PREFIX}-router"
ROUTER=192.0.2.1

cpu_ns() { awk '{ print $1 }' /proc/"$IPMPD_PID"/task/"$1"/schedstat; }

# A counter of rge0 from ipmpd's metrics: $1 = rx or tx.
frames_of() {
    IPMPD_RUN_DIR="$RUN_DIR" "$IPMPSTAT" --metrics |
        awk -v m="ipmpd_member_$1_frames_total" '$1 ~ "^" m "\\{" && /interface="rge0"/ { print $2 }'
}

# One measurement: prints "frames cpu_ns syscalls delivered" for thread $1
# (frames: what it forwarded, from ipmpd's counter $2 of rge0; delivered:
# what iperf3 received).
udp_run() {
    local thread=$1 counter=$2 tid before after f0 f1 delivered sys
    shift 2
    tid=$(ipmpd_tid "$thread")
    f0=$(frames_of "$counter")
    ip netns exec "$R" iperf3 -s -1 -B "$ROUTER" >/dev/null 2>&1 &
    local srv=$!
    for _ in $(seq 50); do ip netns exec "$R" ss -ltn | grep -q ':5201' && break; sleep 0.1; done
    before=$(cpu_ns "$tid")
    perf stat -e raw_syscalls:sys_enter -x, -t "$tid" -o "$RUN_DIR/perf" -- sleep $((SECS + 1)) &
    local perfpid=$!
    delivered=$(ip netns exec "$H" timeout $((SECS + 20)) iperf3 -c "$ROUTER" -t "$SECS" -u \
        -l "$PAYLOAD" -b "$RATE" -J "$@" | jq -er '.end.sum | .packets - .lost_packets')
    wait "$perfpid" || true
    after=$(cpu_ns "$tid")
    f1=$(frames_of "$counter")
    wait "$srv" 2>/dev/null || true
    sys=$(awk -F, '/raw_syscalls/ { print ($1 ~ /^[0-9]+$/) ? $1 : 0 }' "$RUN_DIR/perf")
    echo "$((f1 - f0)) $((after - before)) $sys $delivered"
}

echo "# kernel $(uname -r), $(nproc) CPUs, $(date -u +%FT%TZ), ${SECS}s at $PPS pkt/s offered, 64-byte frames"
echo "# A = $BIN_A; B = $BIN_B ${ARGS_B[*]}"
printf '%-5s %-3s %-4s %10s %10s %10s %10s\n' round bin dir frames "ns/frame" "sys/frame" delivered
for round in $(seq "$ROUNDS"); do
    for which in A B; do
        if [[ $which == A ]]; then IPMPD_BIN=$BIN_A extra=(); else IPMPD_BIN=$BIN_B extra=("${ARGS_B[@]}"); fi
        export IPMPD_BIN
        ipmpd_start "$H" --group batch0 --data 192.0.2.200/24 --member rge0 "${extra[@]}"
        ip netns exec "$H" ping -c 3 -i 0.2 -q "$ROUTER" >/dev/null
        for dir in out in; do
            if [[ $dir == out ]]; then r=$(udp_run ipmpd-out tx); else r=$(udp_run ipmpd-in rx -R); fi
            read -r frames ns sys delivered <<<"$r"
            awk -v r="$round" -v w="$which" -v d="$dir" -v f="$frames" -v n="$ns" -v s="$sys" -v g="$delivered" \
                'BEGIN { printf "%-5s %-3s %-4s %10d %10.0f %10.2f %10d\n", r, w, d, f, (f ? n / f : 0), (f ? s / f : 0), g }'
        done
        ipmpd_stop
        ip -n "$R" neigh flush dev r0
    done
done
