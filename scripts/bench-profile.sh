#!/usr/bin/env bash
# Where the data threads' CPU goes: `perf record -g` of ipmpd-out and of
# ipmpd-in, each while a fixed load of 64-byte UDP frames crosses the group
# in its direction (iperf3 -u, host -> router for out, -R for in), in the
# namespace lab with rge0 as the only member. Prints, per thread, the share of
# its samples under each part of the path (perf's "children" percentages):
#   softirq     handle_softirqs: the receiving side's work (veth peer,
#               bridges, the router's or the host's IP/UDP receive) that the
#               kernel runs in the sending thread's context on bh-enable
#   tap-read    tun_chr_read_iter    (out: the frame from ipmp0)
#   pkt-send    packet_sendmsg        (out: the frame to the member; includes
#                                      the softirq above when it runs there)
#   pkt-recv    packet_recvmsg        (in: the frame from the member)
#   tap-write   tun_chr_write_iter    (in: into ipmp0; includes the host's
#                                      receive, which runs in the writer)
#   epoll       do_epoll_wait
#   ipmpd       samples in the ipmpd binary's own code (user space)
#
# Usage: scripts/bench-profile.sh [SECONDS [PPS [IPMPD ARGS...]]]
#        (defaults 4 s, 50000 frames/s; IPMPD_BIN=PATH picks the binary,
#        default the tree's release build; bounded: iperf3 stops itself)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-4}"
PPS="${2:-50000}"
shift $(($# < 2 ? $# : 2))
ARGS=("$@")
((SECS >= 1 && SECS <= 30)) || { echo "SECONDS must be 1..30" >&2; exit 2; }
((PPS >= 1000 && PPS <= 200000)) || { echo "PPS must be 1000..200000" >&2; exit 2; }
[[ $EUID -eq 0 ]] || { echo "bench-profile.sh: must run as root" >&2; exit 1; }
# iperf3 -l 18: 18-byte payload + 8 UDP + 20 IPv4 + 14 Ethernet = 60 bytes,
# padded to the 64-byte minimum frame on the wire.
PAYLOAD=18
RATE=$((PPS * PAYLOAD * 8))
# The load starts before the recording and ends after it.
LEAD_SECS=1
TAIL_SECS=1

scripts/deps.sh bench perf >/dev/null
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
if [[ -z "${IPMPD_BIN:-}" ]]; then
    cargo build --release --quiet --bin ipmpd
    IPMPD_BIN="$PWD/target/release/ipmpd"
fi
export IPMPD_BIN

export LAB_PREFIX="ipmpprof$$"
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

ipmpd_start "$H" --group prof0 --data 192.0.2.200/24 --member rge0 "${ARGS[@]}"
ip netns exec "$H" ping -c 3 -i 0.2 -q "$ROUTER" >/dev/null


# "children" share of the first symbol matching each pattern.
share() {
    local report=$1 sym=$2
    awk -v s="$sym" '$4 == s || $3 == s { gsub("%", "", $1); print $1; found = 1; exit }
        END { if (!found) print "0.00" }' "$report"
}

echo "# kernel $(uname -r), $(nproc) CPUs, $(date -u +%FT%TZ), ${SECS}s recorded at $PPS 64-byte frames/s"
echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg); ipmpd: $IPMPD_BIN ${ARGS[*]}"
printf '%-10s %8s %9s %9s %9s %9s %9s %7s %7s\n' thread samples softirq tap-read pkt-send pkt-recv tap-write epoll ipmpd
for dir in out in; do
    tid=$(ipmpd_tid "ipmpd-$dir")
    ip netns exec "$R" timeout $((SECS + 30)) iperf3 -s -1 -B "$ROUTER" >/dev/null 2>&1 &
    srv=$!
    for _ in $(seq 50); do ip netns exec "$R" ss -ltn | grep -q ':5201' && break; sleep 0.1; done
    extra=()
    [[ $dir == in ]] && extra=(-R)
    ip netns exec "$H" timeout $((SECS + 30)) iperf3 -c "$ROUTER" -u -l "$PAYLOAD" -b "$RATE" \
        -t $((SECS + LEAD_SECS + TAIL_SECS)) "${extra[@]}" >/dev/null 2>&1 &
    cl=$!
    sleep "$LEAD_SECS"
    perf record -q -g -t "$tid" -o "$RUN_DIR/$dir.data" -- sleep "$SECS" 2>/dev/null
    wait "$cl" || true
    wait "$srv" 2>/dev/null || true
    # A thread that never ran while recording (the inbound thread when the
    # kernel delivers every frame itself) leaves no samples: a row of zeros.
    samples=$(perf report -i "$RUN_DIR/$dir.data" --stdio 2>/dev/null |
        awk '/^# Samples:/ && !n { print $3; n = 1 }' || true)
    if [[ -z $samples || $samples == 0 ]]; then
        printf '%-10s %8s %8s%% %8s%% %8s%% %8s%% %8s%% %6s%% %6s%%\n' "ipmpd-$dir" 0 0 0 0 0 0 0 0
        continue
    fi
    perf report -i "$RUN_DIR/$dir.data" --children --sort sym --stdio -g none 2>/dev/null |
        grep -v '^#' >"$RUN_DIR/$dir.txt"
    own=$(perf report -i "$RUN_DIR/$dir.data" --no-children --sort dso --stdio 2>/dev/null |
        awk -v b="$(basename "$IPMPD_BIN")" '$2 == b { gsub("%", "", $1); print $1; found = 1 }
            END { if (!found) print "0.00" }')
    printf '%-10s %8s %8s%% %8s%% %8s%% %8s%% %8s%% %6s%% %6s%%\n' "ipmpd-$dir" "$samples" \
        "$(share "$RUN_DIR/$dir.txt" handle_softirqs)" \
        "$(share "$RUN_DIR/$dir.txt" tun_chr_read_iter)" \
        "$(share "$RUN_DIR/$dir.txt" packet_sendmsg)" \
        "$(share "$RUN_DIR/$dir.txt" packet_recvmsg)" \
        "$(share "$RUN_DIR/$dir.txt" tun_chr_write_iter)" \
        "$(share "$RUN_DIR/$dir.txt" do_epoll_wait)" "$own"
done
