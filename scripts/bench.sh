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
[[ "$SECS" =~ ^[0-9]+$ ]] && ((SECS >= 1 && SECS <= 60)) || { echo "SECONDS must be 1..60" >&2; exit 2; }
[[ $EUID -eq 0 ]] || { echo "bench.sh: must run as root (network namespaces)" >&2; exit 1; }

need=()
for t in iperf3 python3 ip ethtool; do command -v "$t" >/dev/null || need+=("$t"); done
if ((${#need[@]})); then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3 python3 iproute2 ethtool >/dev/null
fi
cargo build --release --quiet --bin ipmpd
BIN="$PWD/target/release/ipmpd"

export LAB_PREFIX="ipmpbench$$"
RUN_DIR="$(mktemp -d)"
DAEMON_PID=""
cleanup() {
    [[ -n "$DAEMON_PID" ]] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null || true
    scripts/lab.sh down >/dev/null 2>&1 || true
    rm -rf "$RUN_DIR"
}
trap cleanup EXIT
scripts/lab.sh up >/dev/null
H="${LAB_PREFIX}-host"
R="${LAB_PREFIX}-router"
ROUTER=192.0.2.1

# iperf3 JSON -> one number.
tcp_gbps() { python3 -c 'import json,sys; j=json.load(sys.stdin); print("%.2f" % (j["end"]["sum_received"]["bits_per_second"]/1e9))'; }
udp_kpps() { python3 -c '
import json,sys
j=json.load(sys.stdin); s=j["end"]["sum"]
print("%.0f" % ((s["packets"]-s["lost_packets"])/s["seconds"]/1e3))'; }

iperf() {
    ip netns exec "$R" iperf3 -s -1 -B "$ROUTER" >/dev/null 2>&1 &
    local srv=$!
    for _ in $(seq 50); do ip netns exec "$R" ss -ltn | grep -q ':5201' && break; sleep 0.1; done
    ip netns exec "$H" timeout $((SECS + 20)) iperf3 -c "$ROUTER" -t "$SECS" -J "$@" || true
    wait "$srv" 2>/dev/null || true
}

measure() {
    local name=$1
    ip netns exec "$H" ping -c 3 -i 0.2 -q "$ROUTER" >/dev/null
    local s1 s1r s8 u
    s1=$(iperf | tcp_gbps)
    s1r=$(iperf -R | tcp_gbps)
    s8=$(iperf -P 8 | tcp_gbps)
    u=$(iperf -u -b 0 -l 18 | udp_kpps)
    printf '%-8s %10s %10s %10s %10s\n' "$name" "$s1" "$s1r" "$s8" "$u"
    eval "R_${name//-/_}=(\"$s1\" \"$s1r\" \"$s8\" \"$u\")"
}

start_ipmpd() {
    IPMPD_RUN_DIR="$RUN_DIR" ip netns exec "$H" "$BIN" --group bench0 --data 192.0.2.200/24 "$@" \
        2>"$RUN_DIR/ipmpd.log" &
    DAEMON_PID=$!
    for _ in $(seq 100); do
        ip -n "$H" -4 -o addr show dev ipmp0 2>/dev/null | grep -q 192.0.2.200 && return 0
        sleep 0.1
    done
    cat "$RUN_DIR/ipmpd.log" >&2
    return 1
}
stop_ipmpd() { kill "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true; DAEMON_PID=""; }

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

ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print('%.0f%%' % (100*a/b) if b else 'n/a')" "$1" "$2"; }
echo
echo "ratio to direct (ipmpd-1 / direct, ipmpd-3 / direct):"
labels=("tcp1" "tcp1-R" "tcp8" "udp64")
for i in 0 1 2 3; do
    printf '  %-7s %6s %6s\n' "${labels[$i]}" "$(ratio "${R_ipmpd_1[$i]}" "${R_direct[$i]}")" \
        "$(ratio "${R_ipmpd_3[$i]}" "${R_direct[$i]}")"
done
