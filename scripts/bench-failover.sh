#!/usr/bin/env bash
# Failover benchmark in the namespace lab: the longest gap of one UDP flow at
# 20,000 packets/s, host (192.0.2.200, through ipmp0) -> router (192.0.2.1),
# measured by examples/udpgap.rs (kernel receive timestamps at the router).
#
#   baseline     the stream with no event
#   (a) carrier  `lab.sh cut M` of the member M seen carrying the stream
#   (c) failback the stream across `lab.sh restore M` (M repaired)
#   (a), (c) again with hostile clients held on the control socket all along
#                (examples/ctlhostile.rs: idle, dribbling, endless-line)
#   (b) cable4   silent cut between the switches, probe-based detection
#                (--probe arp, then --probe icmp with test addresses;
#                --fdt 100ms); the flow's source port is chosen so that the
#                stream leaves through e1000g0 or e1000g1 (switch A)
#   (c) failback the stream across `lab.sh restore cable4` (repair)
#   (d) TCP      100 connections host->router, 50 carrier cut/restore
#                cycles of the busiest member (--link-flap-limit 0); one
#                message echoed on every connection after each cut and each
#                restore; how many connections still work at the end
#   (e) neighbour IPv4 and IPv6 side by side, one daemon with a data address
#                of each family (192.0.2.200/24, 2001:db8::200/64), trials
#                alternating: the router pings the address every 2 ms; the
#                member its neighbour entry names loses carrier (`lab.sh
#                cut`); ping loss and longest gap, and the time from the cut
#                until the router's neighbour entry (ARP; NDP) names another
#                member (gratuitous ARP; unsolicited NA), stamped as their
#                netlink events arrive (`ip -ts monitor`; scripts/bench_failover.py
#                neigh-trial)
#
# Each stream lasts 2.5 s; the event comes ~1 s in, right after the member
# carrying the stream was found from the rx_packets counters of the
# switch-side ports (swa: sw-e1000g0, sw-e1000g1; swb: sw-rge0). The member
# it moved to is read the same way ~0.6 s after the event.
# baseline-kernel is the same stream on the kernel's own path (the data
# address on e1000g0 itself, through switch A and cable4, no ipmpd), measured
# in the same run: the lab's own noise floor.
#
# Usage: scripts/bench-failover.sh [TRIALS [ROWS]]   (TRIALS: default 10, at
# most 50; ROWS: all, the default, or neigh: only (e), or plot: the three
# streams of scripts/failover-plot.sh)
#
# ROWS=plot (TRIALS must be 1; PLOT_DIR=DIR, an existing directory): one
# stream each of baseline-kernel, (a) carrier cut and (b) cable4 with ARP
# probing, each receiver writing every packet's arrival (`udpgap recv
# --arrivals`) to DIR/{kernel,carrier,silent}.arrivals, and DIR/events.tsv:
# per stream the event's instant (`date +%s%N` just before `lab.sh cut`;
# for baseline-kernel the same point of its stream, no event), on the
# clock of the kernel receive timestamps (CLOCK_REALTIME), and the switch
# port the cut changes; DIR/NAME.{swa,swb}.monitor: `ip -ts -o monitor link`
# in each switch across the stream, which stamps the port's change as it
# happens (the same clock). About 20 s.
# About 6 minutes for TRIALS=10 on a 2-vCPU VM (all rows); (e) alone about 1.
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS="${1:-10}"
ROWS="${2:-all}"
if ! [[ "$TRIALS" =~ ^[0-9]+$ ]] || ((TRIALS < 1 || TRIALS > 50)); then
    echo "TRIALS must be 1..50" >&2
    exit 2
fi
[[ $ROWS == all || $ROWS == neigh || $ROWS == plot ]] || { echo "ROWS must be all, neigh or plot" >&2; exit 2; }
if [[ $ROWS == plot ]]; then
    ((TRIALS == 1)) || { echo "ROWS=plot takes TRIALS=1" >&2; exit 2; }
    [[ -n ${PLOT_DIR:-} && -d $PLOT_DIR ]] || { echo "ROWS=plot needs PLOT_DIR=DIR (an existing directory)" >&2; exit 2; }
    PLOT_DIR=$(realpath "$PLOT_DIR")
fi
[[ $EUID -eq 0 ]] || { echo "bench-failover.sh: must run as root (network namespaces)" >&2; exit 1; }

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
scripts/deps.sh bench
cargo build --release --quiet --bin ipmpd --example udpgap --example ctlhostile
IPMPD_BIN="$PWD/target/release/ipmpd"
GAP="$PWD/target/release/examples/udpgap"
HOSTILE="$PWD/target/release/examples/ctlhostile"
LAB="$PWD/scripts/lab.sh"
HELPER="$PWD/scripts/bench_failover.py"

export LAB_PREFIX="ipmpfo$$"
RUN_DIR="$(mktemp -d)"
RESULTS="$RUN_DIR/results.tsv"
NEIGH_RESULTS="$RUN_DIR/neigh.jsonl"
export IPMPD_RUN_DIR="$RUN_DIR"
BG_PIDS=()
MON_PIDS=() # ROWS=plot: `ip monitor` in the switches
cleanup() {
    local p
    for p in "${BG_PIDS[@]}" "${MON_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    ipmpd_stop
    "$LAB" down >/dev/null 2>&1 || true
    rm -rf "$RUN_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
"$LAB" up >/dev/null
H="${LAB_PREFIX}-host"
SA="${LAB_PREFIX}-swa"
SB="${LAB_PREFIX}-swb"
R="${LAB_PREFIX}-router"
ROUTER=192.0.2.1
DATA=192.0.2.200
DATA6=2001:db8::200
ROUTER6=2001:db8::1
RATE=20000
UPORT=9000
STREAM=2.5    # seconds per stream
RECV_SECS=5.0 # upper bound: the receiver stops at the sender's end marker
MEMBERS=(e1000g0 e1000g1 rge0)
PLAIN=(--member e1000g0 --member e1000g1 --member rge0)
# Link-based detection, flap damping off, so that repeated cuts of the same
# member measure failover and failback, not damping.
LINK_ARGS=("${PLAIN[@]}" --link-flap-limit 0)
PROBE_COMMON=(--target "$ROUTER" --fdt 100ms)
# ROWS=plot: the receiver's --arrivals file for the next run_trial (empty: none).
GAP_ARRIVALS=""
CMDS=()

lab() { "$LAB" "$@" >/dev/null; }
restore_all() { local c; for c in e1000g0 e1000g1 rge0 cable4; do lab restore "$c"; done; }

start_ipmpd() {
    local tag=$1
    shift
    CMDS+=("$tag: ipmpd --group bench0 --data $DATA/24 $*")
    IPMPD_LOG="$RUN_DIR/ipmpd-$tag.log" ipmpd_start "$H" --group bench0 --data "$DATA/24" "$@"
    ip netns exec "$H" ping -c 3 -i 0.2 -W 1 -q "$ROUTER" >/dev/null || true
}
stop_ipmpd() {
    ipmpd_stop
    restore_all
    ip -n "$R" neigh flush dev r0
    ip -n "$H" neigh flush all 2>/dev/null || true
}

# rx_packets of the switch-side ports, in MEMBERS order.
counters() {
    local a b
    a=$(ip netns exec "$SA" cat /sys/class/net/sw-e1000g0/statistics/rx_packets \
        /sys/class/net/sw-e1000g1/statistics/rx_packets)
    b=$(ip netns exec "$SB" cat /sys/class/net/sw-rge0/statistics/rx_packets)
    # shellcheck disable=SC2086 # one line of numbers
    echo $a $b
}
# busiest "BEFORE" "AFTER": the member whose port received the most frames in
# between (at least 1500, a quarter of the stream over 0.3 s), else "none".
busiest() {
    local -a x y
    read -r -a x <<<"$1"
    read -r -a y <<<"$2"
    local best=none bestd=1500 i d
    for i in 0 1 2; do
        d=$((y[i] - x[i]))
        if ((d > bestd)); then best=${MEMBERS[i]} bestd=$d; fi
    done
    echo "$best"
}

# Frames the kernel dropped at ipmp0 (TAP queue full: the daemon fell behind).
tap_drops() { ip netns exec "$H" cat /sys/class/net/ipmp0/statistics/tx_dropped 2>/dev/null || echo 0; }

jget() {
    local re="\"$1\": *(-?[0-9.]+)"
    if [[ $2 =~ $re ]]; then echo "${BASH_REMATCH[1]}"; else echo NA; fi
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# run_trial SPORT EVENT: one stream of $STREAM s from source port SPORT.
# About 1 s in, EVENT (a function name, or "") runs with the member carrying
# the stream as its argument; if it declines (status 1) the stream is stopped
# and run_trial returns 1. Sets T_BEFORE, T_AFTER, T_EVENT_AT, T_RECV, T_SEND,
# and T_EVENT_NS: `date +%s%N` just before EVENT (or that point of the
# stream when there is none).
run_trial() {
    local sport=$1 event=$2 c1 c2 rpid spid i t0 d0 arrivals=()
    d0=$(tap_drops)
    : >"$RUN_DIR/recv.json"
    : >"$RUN_DIR/send.json"
    [[ -z $GAP_ARRIVALS ]] || arrivals=(--arrivals "$GAP_ARRIVALS")
    ip netns exec "$R" timeout 30 "$GAP" recv --bind "$ROUTER:$UPORT" --seconds "$RECV_SECS" \
        "${arrivals[@]}" >"$RUN_DIR/recv.json" &
    rpid=$!
    BG_PIDS+=("$rpid")
    for ((i = 0; i < 50; i++)); do
        ip netns exec "$R" ss -Hlun | grep -q "$ROUTER:$UPORT " && break
        sleep 0.05
    done
    t0=$(now_ms)
    ip netns exec "$H" timeout 30 "$GAP" send --dst "$ROUTER:$UPORT" --rate "$RATE" \
        --seconds "$STREAM" --bind "$DATA" --sport "$sport" >"$RUN_DIR/send.json" &
    spid=$!
    BG_PIDS+=("$spid")
    sleep 0.4
    c1=$(counters)
    sleep 0.3
    c2=$(counters)
    T_BEFORE=$(busiest "$c1" "$c2")
    sleep 0.25
    T_EVENT_AT=NA
    T_EVENT_NS=$(date +%s%N)
    if [[ -n "$event" ]]; then
        i=$(($(now_ms) - t0))
        T_EVENT_AT=$((i / 1000)).$(printf '%02d' $((i % 1000 / 10)))
        if ! "$event" "$T_BEFORE"; then
            kill "$spid" "$rpid" 2>/dev/null || true
            wait "$spid" "$rpid" 2>/dev/null || true
            BG_PIDS=()
            return 1
        fi
    fi
    sleep 0.6
    c1=$(counters)
    sleep 0.3
    c2=$(counters)
    T_AFTER=$(busiest "$c1" "$c2")
    wait "$spid" || true
    wait "$rpid" || true
    BG_PIDS=()
    T_SEND=$(<"$RUN_DIR/send.json")
    T_TAPDROP=$(($(tap_drops) - d0))
    T_RECV=$(<"$RUN_DIR/recv.json")
}

# record SCENARIO TRIAL SPORT NOTE: one result row from the last run_trial.
record() {
    local r=$T_RECV
    local extra="" st
    st=$(jget late_resets "$T_SEND")
    [[ $st =~ ^[0-9]+$ ]] && ((st > 0)) && extra+=" sender-stalls=$st"
    ((T_TAPDROP > 0)) && extra+=" ipmp0-tx-dropped=$T_TAPDROP"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" \
        "$(jget max_gap_ms "$r")" "$(jget max_gap_at_s "$r")" "$T_EVENT_AT" \
        "$(jget received "$r")" "$(jget lost "$r")" "$(jget reordered "$r")" \
        "$(jget sent "$T_SEND")" "$(jget late_resets "$T_SEND")" "$T_TAPDROP" \
        "$T_BEFORE" "$T_AFTER" "$4$extra" >>"$RESULTS"
    printf '  %-16s #%-2s sport %-5s gap %8s ms at %5s s (event %4s s)  lost %6s  %s -> %s %s\n' \
        "$1" "$2" "$3" "$(jget max_gap_ms "$r")" "$(jget max_gap_at_s "$r")" "$T_EVENT_AT" \
        "$(jget lost "$r")" "$T_BEFORE" "$T_AFTER" "$4$extra"
}
record_fail() {
    printf '%s\t%s\t%s\tNA\tNA\tNA\tNA\tNA\tNA\tNA\tNA\tNA\t%s\tNA\t%s\n' "$1" "$2" "$3" "${T_BEFORE:-none}" "$4" >>"$RESULTS"
    echo "  $1 #$2: $4"
}

CUT_MEMBER=""
ev_cut_carrier() { [[ $1 != none ]] || return 1; CUT_MEMBER=$1; lab cut "$1"; }
ev_restore_member() { lab restore "$CUT_MEMBER"; }
ev_cut_cable4() { [[ $1 == e1000g0 || $1 == e1000g1 ]] || return 1; lab cut cable4; }
ev_restore_cable4() { lab restore cable4; }

# Carrier loss (a) and failback (c), link-based detection; optional
# scenario names (the hostile-client run records under its own).
link_trials() {
    local cut_name=${1:-a-carrier-cut} back_name=${2:-c-failback-link}
    local t sport tries ok
    for ((t = 1; t <= TRIALS; t++)); do
        sport=$((41000 + t * 10))
        ok=0
        for ((tries = 0; tries < 3; tries++)); do
            if run_trial "$sport" ev_cut_carrier; then ok=1; break; fi
            sport=$((sport + 1)) # stream not seen on any port: another flow
        done
        if ((!ok)); then record_fail "$cut_name" "$t" "$sport" "stream not seen on any member"; continue; fi
        record "$cut_name" "$t" "$sport" "cut $CUT_MEMBER"
        run_trial "$sport" ev_restore_member || true
        local back=no
        [[ $T_AFTER == "$CUT_MEMBER" ]] && back=yes
        record "$back_name" "$t" "$sport" "restore $CUT_MEMBER (flow back: $back)"
        sleep 1
    done
}

# Silent cable4 cut (b) and its repair (c), probe-based detection.
probe_trials() {
    local tag=$1 t tries ok sport=$((43000 + RANDOM % 1000)) back
    for ((t = 1; t <= TRIALS; t++)); do
        ok=0
        # The flow must leave through switch A: try source ports (bounded).
        for ((tries = 0; tries < 10; tries++)); do
            if run_trial "$sport" ev_cut_cable4; then ok=1; break; fi
            sport=$((sport + 1))
        done
        if ((!ok)); then
            record_fail "b-cable4-$tag" "$t" "$sport" "no source port put the stream on switch A (last: $T_BEFORE)"
            continue
        fi
        record "b-cable4-$tag" "$t" "$sport" "cut cable4"
        run_trial "$sport" ev_restore_cable4 || true
        back=no
        [[ $T_AFTER == e1000g0 || $T_AFTER == e1000g1 ]] && back=yes
        record "c-failback-$tag" "$t" "$sport" "restore cable4 (flow back on swa: $back)"
        sleep 1.5
    done
}

baseline_trials() {
    local name=$1 t
    for ((t = 1; t <= TRIALS; t++)); do
        run_trial $((40000 + t)) "" || true
        record "$name" "$t" $((40000 + t)) ""
    done
}

# (d) TCP survival: echo server in the router, client (which also drives the
# cut/restore cycles through lab.sh) in the host; both in scripts/bench_failover.py.
TCP_RESULT=""
tcp_trial() {
    local spid i
    ip netns exec "$R" timeout 300 python3 "$HELPER" echo-server "$ROUTER" 7000 &
    spid=$!
    BG_PIDS+=("$spid")
    for ((i = 0; i < 50; i++)); do
        ip netns exec "$R" ss -Hltn | grep -q "$ROUTER:7000 " && break
        sleep 0.1
    done
    TCP_RESULT=$(ip netns exec "$H" timeout 400 python3 "$HELPER" tcp-cycles "$ROUTER" 7000 100 50 \
        "$LAB" "$LAB_PREFIX" 2>"$RUN_DIR/tcp.err") || TCP_RESULT="client failed: $(tail -3 "$RUN_DIR/tcp.err")"
    kill "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    BG_PIDS=()
    echo "  $TCP_RESULT"
}

# (e): the two families side by side, trials alternating, one daemon.
neigh_trials() {
    local t a line
    for ((t = 1; t <= TRIALS; t++)); do
        for a in "$DATA" "$DATA6"; do
            line=$(timeout 60 python3 "$HELPER" neigh-trial "$LAB" "$LAB_PREFIX" "$a") ||
                line="{\"addr\": \"$a\", \"error\": \"neigh-trial failed\"}"
            echo "$line" >>"$NEIGH_RESULTS"
            echo "  #$t $line"
        done
    done
}

START=$(date +%s)
echo "# ipmpd failover benchmark: kernel $(uname -r), $(nproc) CPUs, $TRIALS trials, rows: $ROWS, $(date -u +%FT%TZ)"
: >"$NEIGH_RESULTS"
printf 'scenario\ttrial\tsport\tgap_ms\tgap_at_s\tevent_at_s\treceived\tlost\treordered\tsent\tsender_stalls\ttap_drops\tbefore\tafter\tnote\n' >"$RESULTS"

# plot_stream NAME EVENT SPORT TRIES: one stream for ROWS=plot, its arrivals
# in $PLOT_DIR/NAME.arrivals and its event in $PLOT_DIR/events.tsv; another
# source port while EVENT declines (the flow not where the event cuts),
# at most TRIES streams.
plot_stream() {
    local name=$1 event=$2 sport=$3 tries=$4 k port ok sw
    GAP_ARRIVALS="$PLOT_DIR/$name.arrivals"
    for ((k = 0; k < tries; k++)); do
        for sw in swa swb; do
            ip -n "${LAB_PREFIX}-$sw" -ts -o monitor link >"$PLOT_DIR/$name.$sw.monitor" &
            MON_PIDS+=($!)
        done
        ok=0
        run_trial "$sport" "$event" && ok=1
        kill "${MON_PIDS[@]}" 2>/dev/null || true
        wait "${MON_PIDS[@]}" 2>/dev/null || true
        MON_PIDS=()
        if ((ok)); then
            GAP_ARRIVALS=""
            record "$name" 1 "$sport" "${event:-no event}"
            case $event in
            ev_cut_carrier) port=sw-$CUT_MEMBER ;;
            ev_cut_cable4) port=cable4 ;;
            *) port=- ;;
            esac
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$T_EVENT_NS" "$port" "$T_BEFORE" "$T_AFTER" "$sport" \
                >>"$PLOT_DIR/events.tsv"
            return 0
        fi
        sport=$((sport + 1))
    done
    GAP_ARRIVALS=""
    echo "bench-failover: $name: no source port put the stream where $event cuts (last: $T_BEFORE)" >&2
    return 1
}

if [[ $ROWS == plot ]]; then
    printf 'stream\tevent_ns\tport\tbefore\tafter\tsport\n' >"$PLOT_DIR/events.tsv"
    echo "## plot: the kernel's own path ($DATA on e1000g0, no ipmpd), no event"
    ip -n "$H" addr add "$DATA/24" dev e1000g0
    ip netns exec "$H" ping -c 3 -i 0.2 -W 1 -q "$ROUTER" >/dev/null || true
    plot_stream kernel "" 40001 1
    ip -n "$H" addr del "$DATA/24" dev e1000g0
    ip -n "$R" neigh flush dev r0
    echo "## plot: (a) carrier cut, link-based"
    start_ipmpd link "${LINK_ARGS[@]}"
    plot_stream carrier ev_cut_carrier 41010 3
    stop_ipmpd
    echo "## plot: (b) cable4 cut, ARP probing, --fdt 100ms"
    start_ipmpd arp "${PLAIN[@]}" --probe arp "${PROBE_COMMON[@]}"
    sleep 2 # first probe round: every member confirmed
    plot_stream silent ev_cut_cable4 $((43000 + RANDOM % 1000)) 10
    stop_ipmpd
    cp "$RESULTS" "$PLOT_DIR/results.tsv"
    echo "ipmpd command lines (in ${LAB_PREFIX}-host, IPMPD_RUN_DIR set):"
    for c in "${CMDS[@]}"; do echo "- \`$c\`"; done
    exit 0
fi

if [[ $ROWS == all ]]; then
echo "## the kernel's own path: $DATA on e1000g0, no ipmpd"
ip -n "$H" addr add "$DATA/24" dev e1000g0
ip netns exec "$H" ping -c 3 -i 0.2 -W 1 -q "$ROUTER" >/dev/null || true
baseline_trials baseline-kernel
ip -n "$H" addr del "$DATA/24" dev e1000g0
ip -n "$R" neigh flush dev r0

echo "## link-based: baseline, (a) carrier cut, (c) failback"
start_ipmpd link "${LINK_ARGS[@]}"
baseline_trials baseline
link_trials
stop_ipmpd

# The same with hostile local clients on the control socket all along:
# idle, dribbling and endless-line clients that reconnect when closed.
echo "## link-based with hostile control-socket clients: (a) carrier cut, (c) failback"
start_ipmpd hostile "${LINK_ARGS[@]}"
HOSTILE_SECS=$((TRIALS * 10 + 30))
((HOSTILE_SECS <= 600)) || HOSTILE_SECS=600
"$HOSTILE" "$RUN_DIR/bench0.sock" "$HOSTILE_SECS" >"$RUN_DIR/hostile.out" &
HOSTILE_PID=$!
BG_PIDS+=("$HOSTILE_PID")
sleep 1
link_trials a-carrier-cut-hostile c-failback-hostile
kill "$HOSTILE_PID" 2>/dev/null || true
wait "$HOSTILE_PID" 2>/dev/null || true
stop_ipmpd

echo "## probe-based (arp): (b) cable4 cut, (c) repair"
start_ipmpd arp "${PLAIN[@]}" --probe arp "${PROBE_COMMON[@]}"
sleep 2 # first probe round: every member confirmed
probe_trials arp
stop_ipmpd
echo "## probe-based (icmp, test addresses): (b) cable4 cut, (c) repair"
start_ipmpd icmp "${PLAIN[@]}" --probe icmp --test-address e1000g0=192.0.2.201/24 \
    --test-address e1000g1=192.0.2.202/24 --test-address rge0=192.0.2.203/24 "${PROBE_COMMON[@]}"
sleep 2
probe_trials icmp
stop_ipmpd

echo "## (d) 100 TCP connections, 50 carrier cut/restore cycles of the busiest member"
start_ipmpd tcp "${LINK_ARGS[@]}"
tcp_trial
stop_ipmpd
fi

echo "## (e) neighbour entries: IPv4 and IPv6 data address, carrier cut of the member bound to it"
# IPv6 on the router's r0 with its static address (as `lab.sh up` leaves
# it; idempotent).
ip netns exec "$R" sysctl -q -w net.ipv6.conf.r0.disable_ipv6=0
ip -n "$R" -6 addr replace "$ROUTER6/64" dev r0 nodad
start_ipmpd neigh "${PLAIN[@]}" --link-flap-limit 0 --data "$DATA6/64"
ip netns exec "$R" ping -c 3 -i 0.2 -W 1 -q "$DATA6" >/dev/null || true
neigh_trials
stop_ipmpd
ELAPSED=$(($(date +%s) - START))

echo
echo "## Summary"
echo
CMD_LINE="scripts/bench-failover.sh $TRIALS"
[[ $ROWS == all ]] || CMD_LINE+=" $ROWS"
echo "\`$CMD_LINE\` — kernel $(uname -r), $(nproc) CPUs, $(date -u +%F), ${ELAPSED} s."
if [[ $ROWS == all ]]; then
echo "One UDP flow, $RATE packets/s of 16-byte payloads, $DATA:SPORT -> $ROUTER:$UPORT through ipmp0, ${STREAM} s per trial"
echo "(\`udpgap send --dst $ROUTER:$UPORT --rate $RATE --seconds $STREAM --bind $DATA --sport N\`, \`udpgap recv --bind $ROUTER:$UPORT --seconds $RECV_SECS\` in the router);"
echo "gap = longest time between two consecutive packets arriving at the router (kernel timestamps), over the"
echo "whole stream: the event's gap, or scheduling noise when that is longer (column 'at the event': the longest"
echo "gap began within 0.25 s of the event); lost/rate = packets lost x 50 us, the outage seen by the flow."
echo
python3 "$HELPER" summary "$RESULTS" "$RATE"
echo
echo "(d) TCP: $TCP_RESULT"
alive=$(jget alive "$TCP_RESULT")
[[ $alive != NA ]] && echo "    => $alive of 100 connections still work after 50 cut/restore cycles of $(sed -n 's/.*"member": "\([a-z0-9]*\)".*/\1/p' <<<"$TCP_RESULT")."
echo
fi
echo "(e) neighbour entries, $TRIALS trials per family alternating, one daemon with $DATA/24 and $DATA6/64:"
echo "the router pings the address every 2 ms for 3 s (\`ping -D -i 0.002 -w 3\`), the member its neighbour entry"
echo "names loses carrier 1 s in (\`lab.sh cut\`); gap = longest time between two answers (before the cut: the"
echo "same stream's noise floor); moved after = from the member's carrier loss (\`ip -ts monitor link\` in the"
echo "host) to the router's entry naming another member (\`ip -ts monitor neigh\` in the router), each stamped"
echo "(one clock) as its netlink event reached ip."
echo
python3 "$HELPER" neigh-summary "$NEIGH_RESULTS"
echo
echo "ipmpd command lines (in ${LAB_PREFIX}-host, IPMPD_RUN_DIR set):"
for c in "${CMDS[@]}"; do echo "- \`$c\`"; done
