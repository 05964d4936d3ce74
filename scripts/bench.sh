#!/usr/bin/env bash
# End-to-end forwarding benchmark in the namespace lab, side by side with the
# kernel's own path in the same run:
#   direct   : the data address on rge0 itself, no ipmpd (the kernel's path)
#   ipmpd-1  : ipmpd with rge0 as its only member (same wire path as direct)
#   ipmpd-3  : ipmpd with the tutorial's three members
# This machine is shared and noisy, so the paths alternate (direct, ipmpd-1,
# ipmpd-3, direct, ...) for ROUNDS rounds, and every ratio is taken between
# an ipmpd path and the direct path of the same round; the median and the
# spread (min-max) of those per-round ratios are printed.
#
# Per path and round: iperf3 TCP single stream (out = host->router, and -R),
# TCP 8 streams, and UDP 64-byte frames (18-byte payload) at full rate; then
# the CPU per frame at a fixed offered load far below saturation (CPU_PPS
# 64-byte UDP frames/s, one direction at a time), three figures per direction:
#   dp   ipmpd's data threads (ipmpd-out + ipmpd-in): the first field of
#        /proc/PID/task/TID/schedstat (ns on CPU), per frame received
#   all  everything the benchmark runs (the iperf3 sender and receiver, and
#        ipmpd, all threads) in a cpuacct cgroup of its own: ns per frame.
#        The kernel's forwarding work counts there when it runs in those
#        tasks' context (veth delivers in the sender's softirq on this kernel,
#        which has no IRQ_TIME_ACCOUNTING); softirq work done by ksoftirqd or
#        on another task's time is not in it. The like-for-like figure
#        between direct and ipmpd.
#   sys  the whole machine's busy time (/proc/stat, all CPUs) per frame: it
#        includes every other tenant of the machine; shown, not trusted.
# Frames = the UDP datagrams the receiving iperf3 counted (sent - lost).
#
# Usage: scripts/bench.sh [SECONDS] [ROUNDS]   (defaults 5 and 3; bounded:
#        each iperf3 run is killed SECONDS+20 s in)
#   IPMPD_BIN=PATH      run that ipmpd binary instead of building the tree's
#                       release build
#   IPMPD_BIN_OLD=PATH  compare two builds in one run: the ipmpd paths run
#                       with both, the old one first in every round
#                       (direct, old-1, ipmpd-1, old-3, ipmpd-3, direct, ...),
#                       ratios of each against the same round's direct
#   CPU_PPS=N           the offered load of the CPU figures (default 50000)
#   BENCH_PATHS="..."   the paths, in order (default "direct ipmpd-1 ipmpd-3",
#                       e.g. "direct ipmpd-1" for a quicker run)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-5}"
ROUNDS="${2:-3}"
# Rounds below 3 give no median worth the name; above 20 the run is hours.
MIN_ROUNDS=3
MAX_ROUNDS=20
MAX_SECS=60
if ! [[ "$SECS" =~ ^[0-9]+$ ]] || ((SECS < 1 || SECS > MAX_SECS)); then
    echo "SECONDS must be 1..$MAX_SECS" >&2
    exit 2
fi
if ! [[ "$ROUNDS" =~ ^[0-9]+$ ]] || ((ROUNDS < MIN_ROUNDS || ROUNDS > MAX_ROUNDS)); then
    echo "ROUNDS must be $MIN_ROUNDS..$MAX_ROUNDS" >&2
    exit 2
fi
# 64-byte frames/s for the CPU figures: far below the ~150-400 kpps this
# machine saturates at, so the daemon is not the bottleneck and the figure
# is the cost of a frame, not of a full queue.
CPU_PPS="${CPU_PPS:-50000}"
MAX_CPU_PPS=1000000
if ! [[ "$CPU_PPS" =~ ^[0-9]+$ ]] || ((CPU_PPS < 1 || CPU_PPS > MAX_CPU_PPS)); then
    echo "CPU_PPS must be 1..$MAX_CPU_PPS" >&2
    exit 2
fi
# UDP payload of a 64-byte Ethernet frame: 64 - FCS 4 - Ethernet 14 - IPv4 20 - UDP 8.
UDP_PAYLOAD=18
# How much longer than the measurement an iperf3 client may take.
IPERF_GRACE_SECS=20
[[ $EUID -eq 0 ]] || { echo "bench.sh: must run as root (network namespaces)" >&2; exit 1; }

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
scripts/deps.sh bench
if [[ -z "${IPMPD_BIN:-}" ]]; then
    cargo build --release --quiet --bin ipmpd
    IPMPD_BIN="$PWD/target/release/ipmpd"
fi
IPMPD_BIN=$(realpath "$IPMPD_BIN")
NEW_BIN=$IPMPD_BIN
OLD_BIN=""
[[ -z "${IPMPD_BIN_OLD:-}" ]] || OLD_BIN=$(realpath "$IPMPD_BIN_OLD")
for b in "$NEW_BIN" $OLD_BIN; do
    [[ -x "$b" ]] || { echo "bench.sh: $b is not an executable" >&2; exit 2; }
done

if [[ -n "${BENCH_PATHS:-}" ]]; then
    read -r -a PATHS <<<"$BENCH_PATHS"
elif [[ -n "$OLD_BIN" ]]; then
    PATHS=(direct old-1 ipmpd-1 old-3 ipmpd-3)
else
    PATHS=(direct ipmpd-1 ipmpd-3)
fi
[[ ${PATHS[0]} == direct ]] || { echo "bench.sh: the first path must be direct" >&2; exit 2; }
for p in "${PATHS[@]}"; do
    [[ $p =~ ^(direct|(old|ipmpd)-[13])$ ]] || { echo "bench.sh: unknown path '$p'" >&2; exit 2; }
    [[ $p != old-* || -n "$OLD_BIN" ]] || { echo "bench.sh: path $p needs IPMPD_BIN_OLD" >&2; exit 2; }
done

export LAB_PREFIX="ipmpbench$$"
RUN_DIR="$(mktemp -d)"
export IPMPD_RUN_DIR="$RUN_DIR"
IPMPD_LOG="$RUN_DIR/ipmpd.log"

# A cpuacct cgroup (v1) or a cgroup2 directory for the benchmark's processes.
CG=""
CG_KIND=""
if [[ -d /sys/fs/cgroup/cpuacct && -w /sys/fs/cgroup/cpuacct ]]; then
    CG=/sys/fs/cgroup/cpuacct/ipmpbench$$
    CG_KIND=v1
else
    cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
    if [[ -n "$cg2" && -w "$cg2" ]]; then
        CG=$cg2/ipmpbench$$
        CG_KIND=v2
    fi
fi
[[ -z "$CG" ]] || mkdir "$CG" || CG=""

SERVER_PID=""
cleanup() {
    trap - EXIT INT TERM
    [[ -z "$SERVER_PID" ]] || kill "$SERVER_PID" 2>/dev/null || true
    ipmpd_stop
    scripts/lab.sh down >/dev/null 2>&1 || true
    rm -rf "$RUN_DIR"
    # A cgroup can go once its tasks have ended (lab.sh down killed them).
    if [[ -n "$CG" && -d "$CG" ]]; then
        rmdir "$CG" 2>/dev/null || { sleep 1; rmdir "$CG" 2>/dev/null || true; }
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
scripts/lab.sh up >/dev/null
H="${LAB_PREFIX}-host"
R="${LAB_PREFIX}-router"
ROUTER=192.0.2.1
DATA=192.0.2.200/24

# Runs "$@" inside the benchmark's cgroup (when there is one).
cg_exec() {
    [[ -z "$CG" ]] || echo "$BASHPID" >"$CG/cgroup.procs"
    exec "$@"
}
# Total CPU of the cgroup's tasks so far, ns (empty without a cgroup).
cg_ns() {
    case $CG_KIND in
    v1) cat "$CG/cpuacct.usage" ;;
    v2) awk '$1 == "usage_usec" { print $2 * 1000 }' "$CG/cpu.stat" ;;
    *) echo "" ;;
    esac
}
# The whole machine's busy time so far, ns (user nice system irq softirq).
sys_ns() {
    local hz
    hz=$(getconf CLK_TCK)
    awk -v hz="$hz" '$1 == "cpu" { printf "%.0f\n", ($2 + $3 + $4 + $7 + $8) * 1e9 / hz; exit }' /proc/stat
}
# ns on CPU of ipmpd's data threads, summed (0 without a daemon): the first
# field of schedstat; a kernel without scheduler info prints "0 0 0" there,
# then utime + stime of the thread's stat (clock ticks) stand in.
dp_ns() {
    local total=0 t comm run stat fields hz
    hz=$(getconf CLK_TCK)
    [[ -n "$IPMPD_PID" ]] || { echo 0; return; }
    for t in /proc/"$IPMPD_PID"/task/*; do
        # The main thread is named after the binary, which may be "ipmpd-out".
        [[ ${t##*/} == "$IPMPD_PID" ]] && continue
        comm=$(cat "$t/comm" 2>/dev/null) || continue
        [[ $comm == ipmpd-out || $comm == ipmpd-in ]] || continue
        read -r run _ <"$t/schedstat" || continue
        if ((run == 0)); then
            stat=$(cat "$t/stat") || continue
            # After "pid (comm) ": field 3 is [0], utime (14) [11], stime (15) [12].
            read -r -a fields <<<"${stat##*) }"
            run=$(((fields[11] + fields[12]) * 1000000000 / hz))
        fi
        total=$((total + run))
    done
    echo "$total"
}

# iperf3 JSON -> one number (fails on an iperf3 error, like a missing field).
tcp_gbps() { jq -er '.end.sum_received.bits_per_second' | awk '{ printf "%.2f\n", $1 / 1e9 }'; }
udp_kpps() {
    jq -er '.end.sum | (.packets - .lost_packets) / .seconds / 1e3' | awk '{ printf "%.0f\n", $1 }'
}
udp_frames() { jq -er '.end.sum.packets - .end.sum.lost_packets'; }

# iperf3 in the lab, server in the router, client in the host; the client's
# JSON on stdout. Both in the benchmark's cgroup. IPERF_HOOK_BEFORE/AFTER
# run around the client (for the CPU samples).
iperf_start_server() {
    (cg_exec ip netns exec "$R" iperf3 -s -1 -B "$ROUTER" >/dev/null 2>&1) &
    SERVER_PID=$!
    for _ in $(seq 50); do ip netns exec "$R" ss -ltn | grep -q ':5201' && break; sleep 0.1; done
}
iperf() {
    iperf_start_server
    (cg_exec ip netns exec "$H" timeout $((SECS + IPERF_GRACE_SECS)) iperf3 -c "$ROUTER" -t "$SECS" -J "$@") ||
        true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

# ns/frame from a CPU delta (ns) and a frame count; "n/a" without either.
per_frame() {
    awk -v ns="$1" -v f="$2" 'BEGIN { if (ns == "" || f + 0 <= 0) print "n/a"; else printf "%.0f\n", ns / f }'
}

# One direction of the CPU measurement: "dp all sys" ns per frame.
cpu_per_frame() {
    local dir=$1 bits=$((CPU_PPS * UDP_PAYLOAD * 8)) json frames
    local dp0 cg0 sy0 dp1 cg1 sy1 extra=()
    [[ $dir == in ]] && extra=(-R)
    iperf_start_server
    dp0=$(dp_ns) cg0=$(cg_ns) sy0=$(sys_ns)
    json=$( (cg_exec ip netns exec "$H" timeout $((SECS + IPERF_GRACE_SECS)) \
        iperf3 -c "$ROUTER" -t "$SECS" -J -u -l "$UDP_PAYLOAD" -b "$bits" "${extra[@]}") || true)
    dp1=$(dp_ns) cg1=$(cg_ns) sy1=$(sys_ns)
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    frames=$(udp_frames <<<"$json" 2>/dev/null) || frames=0
    local dp="n/a"
    [[ -z "$IPMPD_PID" ]] || dp=$(per_frame $((dp1 - dp0)) "$frames")
    local cg=""
    [[ -z "$cg0" ]] || cg=$((cg1 - cg0))
    echo "$dp $(per_frame "$cg" "$frames") $(per_frame $((sy1 - sy0)) "$frames") $frames"
}

# RESULT[path,round] = "tcp1 tcp1-R tcp8 udp64 out-dp out-all out-sys out-frames in-dp in-all in-sys in-frames"
declare -A RESULT=()
measure() {
    local name=$1 round=$2
    ip netns exec "$H" ping -c 3 -i 0.2 -q "$ROUTER" >/dev/null
    local s1 s1r s8 u co ci
    s1=$(iperf | tcp_gbps) || s1="n/a"
    s1r=$(iperf -R | tcp_gbps) || s1r="n/a"
    s8=$(iperf -P 8 | tcp_gbps) || s8="n/a"
    u=$(iperf -u -b 0 -l "$UDP_PAYLOAD" | udp_kpps) || u="n/a"
    co=$(cpu_per_frame out)
    ci=$(cpu_per_frame in)
    RESULT[$name,$round]="$s1 $s1r $s8 $u $co $ci"
    echo "  round $round $name: $s1 $s1r $s8 $u | out $co | in $ci" >&2
}

start_ipmpd() {
    local bin=$1 members=$2
    shift 2
    if [[ $members == 1 ]]; then
        IPMPD_BIN=$bin ipmpd_start "$H" --group bench0 --data "$DATA" --member rge0
    else
        IPMPD_BIN=$bin ipmpd_start "$H" --group bench0 --data "$DATA" \
            --member e1000g0 --member e1000g1 --member rge0
    fi
    [[ -z "$CG" ]] || echo "$IPMPD_PID" >"$CG/cgroup.procs"
}

run_path() {
    local p=$1 round=$2
    case $p in
    direct)
        ip -n "$H" addr add "$DATA" dev rge0
        measure "$p" "$round"
        ip -n "$H" addr del "$DATA" dev rge0
        ;;
    old-*) start_ipmpd "$OLD_BIN" "${p#old-}"; measure "$p" "$round"; ipmpd_stop ;;
    ipmpd-*) start_ipmpd "$NEW_BIN" "${p#ipmpd-}"; measure "$p" "$round"; ipmpd_stop ;;
    esac
    # The next path answers from another MAC (ipmp0's, or rge0's).
    ip -n "$R" neigh flush dev r0
}

LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
echo "# kernel $(uname -r), $(nproc) CPUs, ${SECS}s per measurement, $ROUNDS rounds, $(date -u +%FT%TZ)"
echo "# load average at start: $LOAD (a shared machine: figures move with its load)"
echo "# ipmpd: $NEW_BIN${OLD_BIN:+ (old: $OLD_BIN)}; CPU figures at $CPU_PPS 64-byte frames/s, cgroup: ${CG_KIND:-none}"
echo "# paths in each round: ${PATHS[*]}"
for ((r = 1; r <= ROUNDS; r++)); do
    for p in "${PATHS[@]}"; do run_path "$p" "$r"; done
done
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

# field N (0-based) of RESULT[path,round]
field() {
    local a
    read -r -a a <<<"${RESULT[$1,$2]}"
    echo "${a[$3]}"
}

echo
for p in "${PATHS[@]}"; do
    echo "## $p"
    printf '%-6s %10s %10s %10s %10s\n' round "tcp1 Gb/s" "tcp1-R" "tcp8 Gb/s" "udp64 kpps"
    for ((r = 1; r <= ROUNDS; r++)); do
        printf '%-6s %10s %10s %10s %10s\n' "$r" "$(field "$p" "$r" 0)" "$(field "$p" "$r" 1)" \
            "$(field "$p" "$r" 2)" "$(field "$p" "$r" 3)"
    done
done

# median and min-max of the numbers on stdin ("n/a" lines skipped).
stats() {
    grep -E '^[0-9.]+$' | sort -g | awk '
        { v[NR] = $1 }
        END {
            if (NR == 0) { print "n/a"; exit }
            m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "%.0f%% (%.0f-%.0f%%)\n", m, v[1], v[NR]
        }'
}
# ratio in percent of two figures, or n/a
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (a !~ /^[0-9.]+$/ || b + 0 == 0) print "n/a"; else printf "%.1f\n", 100 * a / b }'; }

labels=("tcp1" "tcp1-R" "tcp8" "udp64")
echo
echo "ratio to the same round's direct: median (min-max over $ROUNDS rounds)"
printf '  %-7s' ""
for p in "${PATHS[@]:1}"; do printf ' %22s' "$p"; done
echo
for i in 0 1 2 3; do
    printf '  %-7s' "${labels[$i]}"
    for p in "${PATHS[@]:1}"; do
        s=$(for ((r = 1; r <= ROUNDS; r++)); do pct "$(field "$p" "$r" "$i")" "$(field direct "$r" "$i")"; done | stats)
        printf ' %22s' "$s"
    done
    echo
done

echo
echo "## CPU per forwarded frame (ns), $CPU_PPS 64-byte UDP frames/s for ${SECS}s, one direction at a time"
echo "# out = host->router through the path, in = router->host; frames = received by iperf3"
echo "# (of $((CPU_PPS * SECS)) offered: a path losing frames at this rate pays its CPU over fewer)"
echo "# dp = ipmpd's data threads (schedstat); all = iperf3 both ends + ipmpd (cgroup); sys = whole machine"
printf '%-8s %-5s %7s %7s %8s %9s | %7s %7s %8s %9s\n' path round out-dp out-all out-sys out-frames \
    in-dp in-all in-sys in-frames
for p in "${PATHS[@]}"; do
    for ((r = 1; r <= ROUNDS; r++)); do
        printf '%-8s %-5s %7s %7s %8s %9s | %7s %7s %8s %9s\n' "$p" "$r" \
            "$(field "$p" "$r" 4)" "$(field "$p" "$r" 5)" "$(field "$p" "$r" 6)" "$(field "$p" "$r" 7)" \
            "$(field "$p" "$r" 8)" "$(field "$p" "$r" 9)" "$(field "$p" "$r" 10)" "$(field "$p" "$r" 11)"
    done
done
# median of the numbers on stdin
median() {
    grep -E '^[0-9.]+$' | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) print "n/a"; else printf "%.0f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
echo
echo "median over the rounds (ns per frame):"
printf '  %-8s %7s %7s %8s | %7s %7s %8s\n' path out-dp out-all out-sys in-dp in-all in-sys
for p in "${PATHS[@]}"; do
    printf '  %-8s' "$p"
    for i in 4 5 6; do
        printf ' %7s' "$(for ((r = 1; r <= ROUNDS; r++)); do field "$p" "$r" "$i"; echo; done | median)"
    done
    printf ' |'
    for i in 8 9 10; do
        printf ' %7s' "$(for ((r = 1; r <= ROUNDS; r++)); do field "$p" "$r" "$i"; echo; done | median)"
    done
    echo
done
echo
echo "'all' of each path against the same round's direct: median (min-max)"
for p in "${PATHS[@]:1}"; do
    o=$(for ((r = 1; r <= ROUNDS; r++)); do pct "$(field "$p" "$r" 5)" "$(field direct "$r" 5)"; done | stats)
    n=$(for ((r = 1; r <= ROUNDS; r++)); do pct "$(field "$p" "$r" 9)" "$(field direct "$r" 9)"; done | stats)
    printf '  %-8s out %-18s in %s\n' "$p" "$o" "$n"
done
