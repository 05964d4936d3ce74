#!/usr/bin/env bash
# End-to-end forwarding benchmark in the namespace lab, side by side with the
# kernel's own path in the same run:
#   direct   : the data address on rge0 itself, no ipmpd (the kernel's path)
#   ipmpd-1  : ipmpd with rge0 as its only member (same wire path as direct)
#   ipmpd-3  : ipmpd with the tutorial's three members
# For each: iperf3 TCP single stream (out and in), TCP 8 streams, and UDP
# 64-byte frames (18-byte payload) at full rate; prints a table and ratios.
#
# Usage: scripts/bench.sh [SECONDS]   (default 5 per measurement; bounded)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-5}"
if ! [[ "$SECS" =~ ^[0-9]+$ ]] || ((SECS < 1 || SECS > 60)); then
    echo "SECONDS must be 1..60" >&2
    exit 2
fi
[[ $EUID -eq 0 ]] || { echo "bench.sh: must run as root (network namespaces)" >&2; exit 1; }

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
scripts/deps.sh bench
cargo build --release --quiet --bin ipmpd
IPMPD_BIN="$PWD/target/release/ipmpd"

export LAB_PREFIX="ipmpbench$$"
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

# iperf3 JSON -> one number (fails on an iperf3 error, like a missing field).
tcp_gbps() { jq -er '.end.sum_received.bits_per_second' | awk '{ printf "%.2f\n", $1 / 1e9 }'; }
udp_kpps() {
    jq -er '.end.sum | (.packets - .lost_packets) / .seconds / 1e3' | awk '{ printf "%.0f\n", $1 }'
}

iperf() {
    ip netns exec "$R" iperf3 -s -1 -B "$ROUTER" >/dev/null 2>&1 &
    local srv=$!
    for _ in $(seq 50); do ip netns exec "$R" ss -ltn | grep -q ':5201' && break; sleep 0.1; done
    ip netns exec "$H" timeout $((SECS + 20)) iperf3 -c "$ROUTER" -t "$SECS" -J "$@" || true
    wait "$srv" 2>/dev/null || true
}

# Per path: "tcp1 tcp1-R tcp8 udp64".
declare -A RESULT=()
measure() {
    local name=$1
    ip netns exec "$H" ping -c 3 -i 0.2 -q "$ROUTER" >/dev/null
    local s1 s1r s8 u
    s1=$(iperf | tcp_gbps)
    s1r=$(iperf -R | tcp_gbps)
    s8=$(iperf -P 8 | tcp_gbps)
    u=$(iperf -u -b 0 -l 18 | udp_kpps)
    printf '%-8s %10s %10s %10s %10s\n' "$name" "$s1" "$s1r" "$s8" "$u"
    RESULT[$name]="$s1 $s1r $s8 $u"
}

start_ipmpd() { ipmpd_start "$H" --group bench0 --data 192.0.2.200/24 "$@"; }
stop_ipmpd() { ipmpd_stop; }

echo "# kernel $(uname -r), $(nproc) CPUs, ${SECS}s per measurement, $(date -u +%FT%TZ)"
printf '%-8s %10s %10s %10s %10s\n' path "tcp1 Gb/s" "tcp1-R" "tcp8 Gb/s" "udp64 kpps"

ip -n "$H" addr add 192.0.2.200/24 dev rge0
measure direct
ip -n "$H" addr del 192.0.2.200/24 dev rge0
ip -n "$R" neigh flush dev r0

start_ipmpd --member rge0
measure ipmpd-1
stop_ipmpd
ip -n "$R" neigh flush dev r0

start_ipmpd --member e1000g0 --member e1000g1 --member rge0
measure ipmpd-3
stop_ipmpd

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.0f%%\n", 100 * a / b }'; }
echo
echo "ratio to direct (ipmpd-1 / direct, ipmpd-3 / direct):"
labels=("tcp1" "tcp1-R" "tcp8" "udp64")
read -r -a direct <<<"${RESULT[direct]}"
read -r -a one <<<"${RESULT[ipmpd-1]}"
read -r -a three <<<"${RESULT[ipmpd-3]}"
for i in 0 1 2 3; do
    printf '  %-7s %6s %6s\n' "${labels[$i]}" "$(ratio "${one[$i]}" "${direct[$i]}")" \
        "$(ratio "${three[$i]}" "${direct[$i]}")"
done
