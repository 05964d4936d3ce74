# shellcheck shell=bash
# Shared by the scripts that run ipmpd in the namespace lab (demo.sh,
# soak.sh, bench.sh, bench-failover.sh): the one way to start the daemon,
# wait until it is ready, and stop it. Source it:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
#   IPMPD_BIN=PATH            the ipmpd binary (the caller builds or picks it)
#   IPMPD_RUN_DIR, RUST_LOG   passed to the daemon from the caller's environment
#   IPMPD_LOG=FILE            the daemon's stderr is appended there; unset or
#                             empty: it goes to the caller's stderr
#   ipmpd_start NS ARGS...    starts `ipmpd ARGS...` in namespace NS (sets
#                             IPMPD_PID); returns once it is ready, or fails
#                             (status 1, daemon stopped, log shown)
#   ipmpd_running             the daemon started last still runs (not ended,
#                             its pid not reused)
#   ipmpd_wait                waits until the daemon ends (or a trapped signal)
#   ipmpd_stop                SIGTERM, then waits for it (bounded); sets
#                             IPMPD_STATUS to its exit status; no-op when none
#   ipmpd_tid NAME            the id of the daemon's thread named NAME
#                             (ipmpd-out, ipmpd-in), or status 1
#
# Ready means what the README says: every data address (--data) is on the
# group interface (--interface, default ipmp0). The daemon adds them last in
# its start-up, after the members, the data plane and the control socket, so
# that is the moment it forwards. It is read from the kernel, like the tests
# do (tests/common/daemon.rs), so it needs no extra tool and no cooperation
# from the process; the socket file exists before the group is up, and
# sd_notify's READY=1 would need a datagram listener next to every script.

# How long a start may take: the tests' READY_TIMEOUT (10 s), in polls.
IPMPD_READY_POLLS=100
IPMPD_POLL_SECONDS=0.1
# How long a stop may take (restoring members is quick; 5 s is generous)
# before SIGKILL; a killed daemon's next start restores from its state file.
IPMPD_STOP_POLLS=50
IPMPD_PID=""
# The daemon's process name: its file name, cut to the kernel's 15 bytes.
_IPMPD_COMM=""
# The shell that started the daemon: its parent, as long as it runs.
_IPMPD_PARENT=""
# shellcheck disable=SC2034 # read by the scripts that source this file
IPMPD_STATUS=0

# The process PID exists and has not ended (a zombie has ended).
_ipmpd_pid_live() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    # Field 3, after "pid (comm)"; comm may hold spaces, so cut at the last ')'.
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}

# The parent pid of process PID (field 4 of its stat), or nothing.
_ipmpd_ppid() {
    local stat fields
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    read -r -a fields <<<"${stat##*) }"
    echo "${fields[1]:-}"
}

# PID is still the daemon we started: live, a child of the shell that
# started it, and named like it (or `ip`: `ip netns exec` just before it
# execs the daemon). A pid reused after the daemon ended, by an `ip` of
# another script or another subshell, has another parent: it is never
# signalled. (This shell's own foreground commands have ended by the time
# it checks.)
_ipmpd_ours() {
    local comm
    _ipmpd_pid_live "$1" || return 1
    [[ -n "$_IPMPD_PARENT" && "$(_ipmpd_ppid "$1")" == "$_IPMPD_PARENT" ]] || return 1
    comm=$(cat "/proc/$1/comm" 2>/dev/null) || return 1
    [[ $comm == "$_IPMPD_COMM" || $comm == ip ]]
}

ipmpd_running() {
    [[ -n "$IPMPD_PID" ]] && _ipmpd_pid_live "$IPMPD_PID" &&
        [[ "$(_ipmpd_ppid "$IPMPD_PID")" == "$_IPMPD_PARENT" ]] &&
        [[ "$(cat "/proc/$IPMPD_PID/comm" 2>/dev/null)" == "$_IPMPD_COMM" ]]
}

# _ipmpd_ready NS IF ADDR/PREFIX...: every address is on IF in NS (an IPv6
# one past DAD: the daemon binds it then).
_ipmpd_ready() {
    local ns=$1 ifname=$2 a
    shift 2
    for a in "$@"; do
        # `to ADDR/32` (/128) matches that address whatever its prefix length.
        if [[ $a == *:* ]]; then
            [[ -n "$(ip -n "$ns" -o -6 addr show dev "$ifname" to "${a%/*}/128" -tentative 2>/dev/null)" ]] ||
                return 1
        else
            [[ -n "$(ip -n "$ns" -o -4 addr show dev "$ifname" to "${a%/*}/32" 2>/dev/null)" ]] || return 1
        fi
    done
}

_ipmpd_show_log() {
    if [[ -n "${IPMPD_LOG:-}" ]]; then
        echo "--- ${IPMPD_LOG} (last lines)" >&2
        tail -20 "$IPMPD_LOG" >&2
    fi
}

ipmpd_start() {
    local ns=$1 ifname=ipmp0 data=() i
    shift
    [[ -n "${IPMPD_BIN:-}" && -x "$IPMPD_BIN" ]] || {
        echo "ipmpd_start: IPMPD_BIN '${IPMPD_BIN:-}' is not an executable" >&2
        return 1
    }
    [[ -z "$IPMPD_PID" ]] || {
        echo "ipmpd_start: ipmpd (pid $IPMPD_PID) is still running" >&2
        return 1
    }
    local args=("$@")
    for ((i = 0; i < ${#args[@]}; i++)); do
        case ${args[i]} in
        --interface) ifname=${args[i + 1]:-} ;;
        --interface=*) ifname=${args[i]#*=} ;;
        --data) data+=("${args[i + 1]:-}") ;;
        --data=*) data+=("${args[i]#*=}") ;;
        esac
    done
    ((${#data[@]})) || {
        echo "ipmpd_start: no --data: readiness is the data addresses on $ifname" >&2
        return 1
    }
    _IPMPD_COMM=$(basename "$IPMPD_BIN")
    _IPMPD_COMM=${_IPMPD_COMM:0:15}
    # `&` forks from this shell process (a subshell's own pid, not $$).
    _IPMPD_PARENT=$BASHPID
    if [[ -n "${IPMPD_LOG:-}" ]]; then
        ip netns exec "$ns" "$IPMPD_BIN" "$@" 2>>"$IPMPD_LOG" &
    else
        ip netns exec "$ns" "$IPMPD_BIN" "$@" &
    fi
    # `ip netns exec` execs the command: this is the daemon's pid.
    IPMPD_PID=$!
    for ((i = 0; i < IPMPD_READY_POLLS; i++)); do
        _ipmpd_ready "$ns" "$ifname" "${data[@]}" && return 0
        _ipmpd_pid_live "$IPMPD_PID" || break
        sleep "$IPMPD_POLL_SECONDS"
    done
    if _ipmpd_pid_live "$IPMPD_PID"; then
        echo "ipmpd (pid $IPMPD_PID) did not become ready: ${data[*]} not on $ifname in $ns" >&2
    else
        echo "ipmpd (pid $IPMPD_PID) ended before it was ready" >&2
    fi
    ipmpd_stop
    _ipmpd_show_log
    return 1
}

ipmpd_wait() {
    [[ -n "$IPMPD_PID" ]] || return 0
    wait "$IPMPD_PID"
}

ipmpd_stop() {
    local pid=$IPMPD_PID i
    IPMPD_STATUS=0
    [[ -n "$pid" ]] || return 0
    IPMPD_PID=""
    if _ipmpd_ours "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
    for ((i = 0; i < IPMPD_STOP_POLLS; i++)); do
        _ipmpd_ours "$pid" || break
        sleep "$IPMPD_POLL_SECONDS"
    done
    if _ipmpd_ours "$pid"; then
        echo "ipmpd (pid $pid) did not stop on SIGTERM; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    # shellcheck disable=SC2034 # read by the scripts that source this file
    wait "$pid" 2>/dev/null || IPMPD_STATUS=$?
    return 0
}

# The id of the thread of the daemon started last whose name (comm) is $1.
ipmpd_tid() {
    local t
    for t in /proc/"$IPMPD_PID"/task/*; do
        # Not the main thread: it is named after the binary.
        [[ ${t##*/} == "$IPMPD_PID" ]] && continue
        [[ "$(cat "$t/comm" 2>/dev/null)" == "$1" ]] && { basename "$t"; return 0; }
    done
    return 1
}
