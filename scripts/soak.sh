#!/usr/bin/env bash
# Soak test in the namespace lab: ipmpd with the tutorial's three members
# under iperf3 load and 100 long-lived TCP connections, with a failover or a
# failback every 5 s (`lab.sh cut M`, then `lab.sh restore M`, M rotating
# over the members) for SECONDS. Prints connections lost (goal 0), daemon
# restarts (goal 0: the daemon died or its pid changed; it is started again
# so the soak goes on), and the daemon's RSS at start and end (goal flat:
# growth at most RSS_GROWTH_LIMIT_KB). Exits non-zero when a goal is missed.
#
# Usage: scripts/soak.sh [SECONDS]   (default 600; 30..86400)
# IPMPD_BIN=path uses that ipmpd build (ipmpstat next to it) instead of
# building a release one.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TOTAL="${1:-600}"
MIN_SECONDS=30
MAX_SECONDS=86400
if ! [[ "$SECONDS_TOTAL" =~ ^[0-9]+$ ]] || ((SECONDS_TOTAL < MIN_SECONDS || SECONDS_TOTAL > MAX_SECONDS)); then
    echo "soak.sh: SECONDS must be $MIN_SECONDS..$MAX_SECONDS" >&2
    exit 2
fi
[[ $EUID -eq 0 ]] || { echo "soak.sh: must run as root (network namespaces)" >&2; exit 1; }

# A failover or a failback this often.
EVENT_INTERVAL=5
CONNS=100
CONN_PORT=7000
# iperf3: this many TCP streams at this rate each, so the load is heavy but
# leaves the connections' client and the daemon CPU time on a small machine.
IPERF_STREAMS=4
IPERF_RATE=100M
# The daemon's resident set may grow this much over the soak.
RSS_GROWTH_LIMIT_KB=2048
# RSS is sampled this often (seconds) for the trend line.
RSS_SAMPLE_EVERY=60
# Extra time the helpers may take beyond SECONDS before `timeout` ends them.
GRACE=60
MAX_RESTARTS=5

# shellcheck source=scripts/lib.sh
. scripts/lib.sh
scripts/deps.sh bench
if [[ -n "${IPMPD_BIN:-}" ]]; then
    IPMPD_BIN="$(realpath "$IPMPD_BIN")"
else
    cargo build --release --quiet --bin ipmpd --bin ipmpstat
    IPMPD_BIN="$PWD/target/release/ipmpd"
fi
STAT="$(dirname "$IPMPD_BIN")/ipmpstat"
[[ -x "$IPMPD_BIN" && -x "$STAT" ]] || { echo "soak.sh: $IPMPD_BIN or $STAT missing" >&2; exit 1; }
LAB="$PWD/scripts/lab.sh"
CONNS_PY="$PWD/scripts/soak_conns.py"

export LAB_PREFIX="ipmpsoak$$"
RUN_DIR="$(mktemp -d)"
export IPMPD_RUN_DIR="$RUN_DIR/run"
IPMPD_LOG="$RUN_DIR/ipmpd.log"
H="${LAB_PREFIX}-host"
R="${LAB_PREFIX}-router"
ROUTER=192.0.2.1
DATA=192.0.2.200
MEMBERS=(e1000g0 e1000g1 rge0)
# Flap damping off: the same member comes back every 15 s, and the soak is
# about failover and failback, not about holding a repair.
ARGS=(--group soak0 --interface ipmp0 --data "$DATA/24" --member e1000g0 --member e1000g1
    --member rge0 --link-flap-limit 0)
BG_PIDS=()

cleanup() {
    local p
    for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    ipmpd_stop
    "$LAB" down >/dev/null 2>&1 || true
    rm -rf "$RUN_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

lab() { "$LAB" "$@" >/dev/null; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo NA; }
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo NA; }

start_ipmpd() { ipmpd_start "$H" "${ARGS[@]}"; }

RESTARTS=0
RESTART_NOTES=()
check_daemon() {
    ipmpd_running && return 0
    local pid=$IPMPD_PID st
    ipmpd_stop # collects its exit status
    st=$IPMPD_STATUS
    RESTARTS=$((RESTARTS + 1))
    RESTART_NOTES+=("at $(($(date +%s) - T0)) s: pid $pid ended (status $st)")
    echo "soak.sh: ipmpd (pid $pid) ended with status $st; starting it again" >&2
    tail -5 "$RUN_DIR/ipmpd.log" >&2
    ((RESTARTS <= MAX_RESTARTS)) || { echo "soak.sh: too many restarts, giving up" >&2; return 1; }
    start_ipmpd
}

wait_listen() {
    local port=$1 i
    for ((i = 0; i < 50; i++)); do
        ip netns exec "$R" ss -Hltn | grep -q "$ROUTER:$port " && return 0
        sleep 0.1
    done
    echo "soak.sh: nothing listens on $ROUTER:$port" >&2
    return 1
}

"$LAB" up >/dev/null
echo "# ipmpd soak: kernel $(uname -r), $(nproc) CPUs, ${SECONDS_TOTAL} s, $(date -u +%FT%TZ)"
echo "# $IPMPD_BIN ${ARGS[*]}"
start_ipmpd
ip netns exec "$H" ping -c 3 -i 0.2 -W 1 -q "$ROUTER" >/dev/null

# 100 connections, each exchanging a byte a second.
ip netns exec "$R" timeout $((SECONDS_TOTAL + GRACE)) python3 "$CONNS_PY" server \
    --bind "$ROUTER" --port "$CONN_PORT" --seconds $((SECONDS_TOTAL + GRACE)) &
BG_PIDS+=($!)
wait_listen "$CONN_PORT"
ip netns exec "$H" timeout $((SECONDS_TOTAL + GRACE)) python3 "$CONNS_PY" client \
    --connect "$ROUTER" --port "$CONN_PORT" --count "$CONNS" --seconds "$SECONDS_TOTAL" \
    --source "$DATA" >"$RUN_DIR/conns.json" 2>"$RUN_DIR/conns.err" &
CLIENT_PID=$!
BG_PIDS+=("$CLIENT_PID")

# iperf3 load for the whole soak.
ip netns exec "$R" timeout $((SECONDS_TOTAL + GRACE)) iperf3 -s -1 -B "$ROUTER" >/dev/null 2>&1 &
BG_PIDS+=($!)
wait_listen 5201
ip netns exec "$H" timeout $((SECONDS_TOTAL + GRACE)) iperf3 -c "$ROUTER" -B "$DATA" \
    -t "$SECONDS_TOTAL" -P "$IPERF_STREAMS" -b "$IPERF_RATE" -J >"$RUN_DIR/iperf.json" 2>&1 &
IPERF_PID=$!
BG_PIDS+=("$IPERF_PID")

sleep 2 # connections open, load flowing
RSS_START=$(rss_kb "$IPMPD_PID")
T0=$(date +%s)
echo "load up: $CONNS connections, iperf3 $IPERF_STREAMS x $IPERF_RATE; RSS ${RSS_START} kB"

EVENTS=0
CUTS=0
i=0
cut_now=""
next_sample=$RSS_SAMPLE_EVERY
while (($(date +%s) - T0 < SECONDS_TOTAL - EVENT_INTERVAL)); do
    sleep "$EVENT_INTERVAL"
    check_daemon
    m=${MEMBERS[i % ${#MEMBERS[@]}]}
    if [[ -z "$cut_now" ]]; then
        lab cut "$m"
        cut_now=$m
        CUTS=$((CUTS + 1))
    else
        lab restore "$cut_now"
        cut_now=""
        i=$((i + 1))
    fi
    EVENTS=$((EVENTS + 1))
    el=$(($(date +%s) - T0))
    if ((el >= next_sample)); then
        echo "  ${el} s: ${EVENTS} events, RSS $(rss_kb "$IPMPD_PID") kB"
        next_sample=$((next_sample + RSS_SAMPLE_EVERY))
    fi
done
[[ -z "$cut_now" ]] || { lab restore "$cut_now"; EVENTS=$((EVENTS + 1)); }
sleep 2 # the last repair settles
check_daemon
RSS_END=$(rss_kb "$IPMPD_PID")
HWM=$(hwm_kb "$IPMPD_PID")
FAILOVERS=$("$STAT" -g --json 2>/dev/null | jq -er '[.[].failovers] | add // 0' 2>/dev/null || echo NA)

CLIENT_ST=0
wait "$CLIENT_PID" || CLIENT_ST=$?
IPERF_ST=0
wait "$IPERF_PID" || IPERF_ST=$?
check_daemon || true
ELAPSED=$(($(date +%s) - T0))

CONNS_JSON=$(tail -1 "$RUN_DIR/conns.json" 2>/dev/null || true)
LOST=$(jq -er '.requested - .alive' <<<"$CONNS_JSON" 2>/dev/null || echo "$CONNS")
IPERF_SUM=$(jq -er 'if has("error") then "error: " + .error
        else .end.sum_received | "\(.bits_per_second) \(.seconds)" end' "$RUN_DIR/iperf.json" 2>/dev/null |
    awk '/^error: / { print; next } { printf "%.0f Mbit/s over %.0f s\n", $1 / 1e6, $2 }') || IPERF_SUM="no result"

echo
echo "## soak summary (${ELAPSED} s, ${EVENTS} events: ${CUTS} cuts, the rest repairs; failovers counted by ipmpd: ${FAILOVERS})"
echo "connections lost:   ${LOST} of ${CONNS}   (goal 0)"
if [[ -n "$CONNS_JSON" ]]; then
    echo "  $CONNS_JSON"
else
    echo "  client: $(tail -3 "$RUN_DIR/conns.err")"
fi
echo "iperf3:             ${IPERF_SUM} (exit status ${IPERF_ST})"
echo "daemon restarts:    ${RESTARTS}   (goal 0)"
for n in "${RESTART_NOTES[@]}"; do echo "  $n"; done
echo "daemon RSS:         start ${RSS_START} kB, end ${RSS_END} kB, peak ${HWM} kB   (goal flat: growth <= ${RSS_GROWTH_LIMIT_KB} kB)"

fail=()
[[ "$LOST" == 0 && $CLIENT_ST -eq 0 ]] || fail+=("connections lost")
((IPERF_ST == 0)) || fail+=("iperf3 failed")
((RESTARTS == 0)) || fail+=("daemon restarted")
if [[ "$RSS_START" =~ ^[0-9]+$ && "$RSS_END" =~ ^[0-9]+$ ]]; then
    ((RSS_END - RSS_START <= RSS_GROWTH_LIMIT_KB)) || fail+=("RSS grew $((RSS_END - RSS_START)) kB")
else
    fail+=("RSS not measured")
fi
if ((${#fail[@]})); then
    echo "SOAK FAILED: ${fail[*]}"
    tail -20 "$RUN_DIR/ipmpd.log"
    exit 1
fi
echo "SOAK PASSED"
