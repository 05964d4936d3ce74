#!/usr/bin/env bash
# Network-namespace lab for ipmpd (topology of the Solaris IPMP tutorial).
#
#   host   : e1000g0, e1000g1, rge0     (member NICs: no addresses, no IPv6, GRO on)
#   swa    : br0 = sw-e1000g0 + sw-e1000g1 + cable4        (snooping, no querier)
#   swb    : br0 = sw-rge0 + cable4 + sw-router            (snooping + querier)
#   router : r0 = 192.0.2.1/24, 2001:db8::1/64 (IPv6 on r0 only)
#
# Every namespace is named "${LAB_PREFIX}-{host,swa,swb,router}" (LAB_PREFIX
# defaults to "ipmplab"), and every veth pair is created directly across two
# lab namespaces, so nothing ever appears in the root namespace.
#
# Usage: scripts/lab.sh up|down|status|cut CABLE|restore CABLE|exec NS cmd...|dhcp-server DIR|radvd DIR|dhcp6-server DIR
#
#   up       Build the topology. `up` always yields a FRESH lab: if namespaces
#            with this prefix already exist (complete or partial lab), they are
#            torn down first (killing processes still running in them). If the
#            build fails half-way, whatever was created is removed again.
#   down     Kill processes left in the lab namespaces and delete all four
#            namespaces (missing ones are ignored). Leaves nothing behind.
#   status   Namespaces, links with state, bridge fdb/mdb summary.
#   cut C    C = e1000g0|e1000g1|rge0: carrier loss on that member (its switch
#            port is set down, so the veth loses carrier on the host side).
#            C = router: the router's switch port (swb sw-router) goes down.
#            C = cable4: SILENT cut between the switches: cable4 leaves swa's
#            bridge (nomaster); every link keeps its carrier, but frames no
#            longer cross between the switches.
#   restore C  Undo `cut C`.
#   exec NS cmd...  Run cmd in ${LAB_PREFIX}-NS (NS = host|swa|swb|router).
#   dhcp-server DIR  Run a DHCPv4 server (dnsmasq, no DNS) on the router's r0
#            in the foreground until SIGTERM/Ctrl-C: addresses
#            192.0.2.100-150, 2-minute leases (dnsmasq's shortest), T1 of
#            20 s (option 58) so a client renews soon, T2 of 40 s (option
#            59) so a client that cannot reach the server by unicast
#            rebinds (broadcast) soon. Its lease file
#            (DIR/leases) and log (DIR/dnsmasq.log, every DHCP message) are in
#            DIR; nothing is read from or written to /etc.
#   radvd DIR  Run a router advertisement daemon (radvd) on the router's r0
#            in the foreground until SIGTERM/Ctrl-C, for SLAAC: IPv6 on r0,
#            r0 gets 2001:db8:0:5::1/64 and advertises 2001:db8:0:5::/64
#            (on-link, autonomous) every 3 to 4 s with a router lifetime,
#            so hosts form addresses and a default route via r0's
#            link-local address. Its config (DIR/radvd.conf), pid file and
#            log (DIR/radvd.log) are in DIR; nothing in /etc.
#   dhcp6-server DIR  As dhcp-server, for DHCPv6 (dnsmasq, stateful): r0 gets
#            2001:db8:0:6::1/64 and leases 2001:db8:0:6::100-150 for
#            2 minutes (renewal at half of it); files and log in DIR.
set -euo pipefail

PREFIX="${LAB_PREFIX:-ipmplab}"
if [[ ! "$PREFIX" =~ ^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,40}$ ]]; then
    echo "lab: invalid LAB_PREFIX '$PREFIX' (letters, digits, '_', '.', '-'; at most 41 chars)" >&2
    exit 2
fi
ROLES=(host swa swb router)
MEMBERS=(e1000g0 e1000g1 rge0)
LOCK_FILE="/run/lock/ipmpd-lab.lock"
[[ -d /run/lock ]] || LOCK_FILE="/tmp/ipmpd-lab.lock"

say() { echo "lab[$PREFIX]: $*"; }
die() { echo "lab[$PREFIX]: error: $*" >&2; exit 1; }

usage() {
    cat >&2 <<EOF
usage: ${0##*/} up|down|status|cut CABLE|restore CABLE|exec NS cmd...|dhcp-server DIR|radvd DIR|dhcp6-server DIR
  CABLE: e1000g0 | e1000g1 | rge0 | router | cable4
  NS:    host | swa | swb | router
  namespace prefix from LAB_PREFIX (now: $PREFIX)
EOF
    exit 2
}

ns() { echo "${PREFIX}-$1"; }

ns_exists() { [[ -e "/run/netns/$(ns "$1")" ]]; }

need_root() { [[ $EUID -eq 0 ]] || die "must run as root"; }

# Run a command in a lab namespace.
in_ns() {
    local role=$1
    shift
    ip netns exec "$(ns "$role")" "$@"
}

# sysctl inside a namespace (writes /proc/sys of that namespace).
ns_sysctl() {
    in_ns "$1" sysctl -q -w "$2" >/dev/null
}

# The lab's tools (ip, bridge, ethtool, sysctl, flock, awk), installed if missing.
ensure_tools() {
    "$(dirname "${BASH_SOURCE[0]}")/deps.sh" lab || die "missing tools (scripts/deps.sh lab failed)"
}

existing_namespaces() {
    local role
    for role in "${ROLES[@]}"; do
        if ns_exists "$role"; then ns "$role"; fi
    done
}

kill_ns_processes() {
    local name=$1 pids i
    pids=$(ip netns pids "$name" 2>/dev/null | tr '\n' ' ') || true
    [[ -n "${pids// /}" ]] || return 0
    say "killing processes left in $name: $pids"
    # shellcheck disable=SC2086 # word splitting of the pid list is intended
    kill -TERM $pids 2>/dev/null || true
    for ((i = 0; i < 20; i++)); do
        pids=$(ip netns pids "$name" 2>/dev/null | tr '\n' ' ') || true
        [[ -n "${pids// /}" ]] || return 0
        sleep 0.1
    done
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
}

teardown() {
    local role name found=0
    for role in "${ROLES[@]}"; do
        name=$(ns "$role")
        ns_exists "$role" || continue
        found=1
        kill_ns_processes "$name"
        ip netns del "$name" 2>/dev/null || ! ns_exists "$role" || die "could not delete $name"
    done
    if ((found)); then say "removed namespaces"; fi
    return 0
}

# veth pair across two namespaces: veth_pair NS_A IF_A NS_B IF_B
veth_pair() {
    ip -n "$(ns "$1")" link add "$2" type veth peer name "$4" netns "$(ns "$3")"
}

# Namespace whose IPv6 stack is off entirely (switches, router).
no_ipv6_ns() {
    ns_sysctl "$1" net.ipv6.conf.all.disable_ipv6=1
    ns_sysctl "$1" net.ipv6.conf.default.disable_ipv6=1
}

build() {
    local role m

    # `ip netns add` mounts /run/netns on first use; serialise it between labs
    # built in parallel (the test harness does that).
    exec 9>"$LOCK_FILE"
    flock 9
    for role in "${ROLES[@]}"; do
        ip netns add "$(ns "$role")"
    done
    flock -u 9
    exec 9>&-

    for role in "${ROLES[@]}"; do
        ip -n "$(ns "$role")" link set lo up
    done
    say "namespaces: $(existing_namespaces | tr '\n' ' ')"

    # Switches and router: no IPv6 at all (keeps captures clean); interfaces
    # created or moved in later inherit `default`. The router's r0 turns it
    # on for itself below.
    no_ipv6_ns swa
    no_ipv6_ns swb
    no_ipv6_ns router
    # Host: loose reverse-path filtering like common distributions.
    ns_sysctl host net.ipv4.conf.all.rp_filter=2
    ns_sysctl host net.ipv4.conf.default.rp_filter=2

    # Bridges.
    ip -n "$(ns swa)" link add name br0 type bridge \
        stp_state 0 mcast_snooping 1 mcast_querier 0
    # IGMP querier on swb. Intervals are in centiseconds (USER_HZ): query
    # every 5 s. The startup interval is NOT derived from the query interval
    # given here (it stays at 31.25 s) and the default response interval
    # (10 s) exceeds 5 s, so set both explicitly.
    ip -n "$(ns swb)" link add name br0 type bridge \
        stp_state 0 mcast_snooping 1 mcast_querier 1 mcast_query_interval 500 \
        mcast_startup_query_interval 125 mcast_query_response_interval 100

    # Cables.
    veth_pair host e1000g0 swa sw-e1000g0
    veth_pair host e1000g1 swa sw-e1000g1
    veth_pair host rge0 swb sw-rge0
    veth_pair swa cable4 swb cable4
    veth_pair router r0 swb sw-router

    for m in sw-e1000g0 sw-e1000g1 cable4; do
        ip -n "$(ns swa)" link set "$m" master br0 up
    done
    for m in sw-rge0 cable4 sw-router; do
        ip -n "$(ns swb)" link set "$m" master br0 up
    done
    ip -n "$(ns swa)" link set br0 up
    ip -n "$(ns swb)" link set br0 up
    say "switches: swa br0 [sw-e1000g0 sw-e1000g1 cable4], swb br0 [sw-rge0 cable4 sw-router]"

    # Host members: no IPv6, GRO on, link up, no addresses.
    for m in "${MEMBERS[@]}"; do
        ns_sysctl host "net.ipv6.conf.$m.disable_ipv6=1"
        in_ns host ethtool -K "$m" gro on
        ip -n "$(ns host)" link set "$m" up
    done
    say "host members: ${MEMBERS[*]} (up, no addresses, IPv6 off, GRO on)"

    ip -n "$(ns router)" addr add 192.0.2.1/24 dev r0
    # IPv6 on r0 only (the router's other interfaces stay without it): a
    # static address, without DAD so that it is usable at once.
    ns_sysctl router net.ipv6.conf.r0.disable_ipv6=0
    ip -n "$(ns router)" addr add 2001:db8::1/64 dev r0 nodad
    ip -n "$(ns router)" link set r0 up
    say "router: r0 192.0.2.1/24 2001:db8::1/64"
}

cmd_up() {
    need_root
    ensure_tools
    if [[ -n "$(existing_namespaces)" ]]; then
        say "lab already (partly) exists; tearing it down first for a fresh one"
        teardown
    fi
    # On any failure below, remove what was created.
    trap 'echo "lab[$PREFIX]: up failed; cleaning up" >&2; teardown >&2' EXIT
    build
    trap - EXIT
    say "up. Run the daemon with:"
    echo "  ip netns exec $(ns host) ipmpd --group production0 --interface ipmp0" \
        "--data 192.0.2.200/24 --member e1000g0 --member e1000g1 --member rge0"
}

cmd_down() {
    need_root
    if [[ -z "$(existing_namespaces)" ]]; then
        say "nothing to remove"
        return 0
    fi
    teardown
    say "down"
}

cmd_status() {
    local role name
    if [[ -z "$(existing_namespaces)" ]]; then
        say "not up (no namespaces with prefix '$PREFIX')"
        return 1
    fi
    for role in "${ROLES[@]}"; do
        name=$(ns "$role")
        if ! ns_exists "$role"; then
            echo "== $name: MISSING"
            continue
        fi
        echo "== $name"
        ip -n "$name" -br link show | sed 's/^/  /'
        ip -n "$name" -br -4 addr show | awk '$1 != "lo" && NF > 2 { print "  addr " $0 }'
        if ip -n "$name" link show br0 >/dev/null 2>&1; then
            echo "  bridge ports:"
            # "3: sw-e1000g0@if2: <...> ... master br0 state forwarding ..."
            bridge -n "$name" link show | awk '{
                port = $2; sub(/@.*/, "", port); sub(/:$/, "", port)
                st = "?"; for (i = 3; i < NF; i++) if ($i == "state") st = $(i + 1)
                printf "    %-12s %s\n", port, st }'
            echo "  fdb (learned):"
            bridge -n "$name" fdb show br br0 dynamic 2>/dev/null | sed 's/^/    /' || true
            echo "  mdb:"
            bridge -n "$name" mdb show 2>/dev/null | sed 's/^/    /' || true
        fi
    done
}

# Switch-side port a cable is cut at: sets PORT_ROLE and PORT_IF.
cable_port() {
    case "$1" in
        e1000g0 | e1000g1) PORT_ROLE=swa PORT_IF="sw-$1" ;;
        rge0) PORT_ROLE=swb PORT_IF=sw-rge0 ;;
        router) PORT_ROLE=swb PORT_IF=sw-router ;;
        cable4) PORT_ROLE=swa PORT_IF=cable4 ;;
        *) die "unknown cable '$1' (e1000g0|e1000g1|rge0|router|cable4)" ;;
    esac
}

cmd_cut_restore() {
    local action=$1 cable=${2:-} role port
    [[ -n "$cable" ]] || usage
    need_root
    cable_port "$cable"
    role=$PORT_ROLE
    port=$PORT_IF
    ns_exists "$role" || die "lab is not up ($(ns "$role") missing)"
    if [[ "$cable" == cable4 ]]; then
        # Silent: cable4 stays up with carrier on both ends, but is no longer
        # a port of swa's bridge, so nothing crosses between the switches.
        if [[ "$action" == cut ]]; then
            ip -n "$(ns "$role")" link set "$port" nomaster
        else
            ip -n "$(ns "$role")" link set "$port" master br0 up
        fi
    else
        if [[ "$action" == cut ]]; then
            ip -n "$(ns "$role")" link set "$port" down
        else
            ip -n "$(ns "$role")" link set "$port" up
        fi
    fi
    say "$action $cable ($(ns "$role") $port)"
}

cmd_exec() {
    local role=${1:-}
    [[ -n "$role" ]] || usage
    shift
    case "$role" in host | swa | swb | router) ;; *) die "unknown namespace '$role' (host|swa|swb|router)" ;; esac
    (($# > 0)) || die "exec: no command given"
    ns_exists "$role" || die "lab is not up ($(ns "$role") missing)"
    exec ip netns exec "$(ns "$role")" "$@"
}

# The lab's DHCP server (see the header). Offered range inside the router's
# subnet, away from the tests' fixed addresses (.200 and up).
DHCP_RANGE_FIRST=192.0.2.100
DHCP_RANGE_LAST=192.0.2.150
DHCP_NETMASK=255.255.255.0
# dnsmasq refuses leases shorter than 2 minutes.
DHCP_LEASE=2m
# Renewal time (option 58, seconds): well inside the lease, so a client in
# a test renews after a short wait.
DHCP_T1=20
# Rebinding time (option 59, seconds): past T1 with room for a few
# renewal attempts, well before the lease ends, and soon enough for a test.
DHCP_T2=40

cmd_dhcp_server() {
    local dir=${1:-}
    [[ -n "$dir" ]] || usage
    need_root
    "$(dirname "${BASH_SOURCE[0]}")/deps.sh" dnsmasq || die "dnsmasq missing (scripts/deps.sh dnsmasq failed)"
    ns_exists router || die "lab is not up ($(ns router) missing)"
    mkdir -p "$dir"
    dir=$(realpath "$dir")
    : >"$dir/leases"
    # --conf-file=/dev/null: no /etc/dnsmasq.conf; --port=0: no DNS;
    # --user=root: the lease file stays in DIR, writable without a
    # privilege change; --bind-interfaces: r0 only.
    exec ip netns exec "$(ns router)" dnsmasq --keep-in-foreground --conf-file=/dev/null \
        --port=0 --no-hosts --no-resolv --user=root --group=root \
        --interface=r0 --bind-interfaces --dhcp-authoritative \
        --dhcp-range="$DHCP_RANGE_FIRST,$DHCP_RANGE_LAST,$DHCP_NETMASK,$DHCP_LEASE" \
        --dhcp-option=option:T1,"$DHCP_T1" --dhcp-option=option:T2,"$DHCP_T2" \
        --dhcp-leasefile="$dir/leases" --pid-file="$dir/dnsmasq.pid" \
        --log-dhcp --log-facility="$dir/dnsmasq.log"
}

# The lab's router advertisements (see the header). The SLAAC prefix is its
# own /64 inside the documentation range, apart from the static 2001:db8::/64.
RA_PREFIX=2001:db8:0:5::/64
RA_ROUTER_ADDR=2001:db8:0:5::1/64
# Unsolicited RAs every 3 to 4 s (radvd's lowest MinRtrAdvInterval is 3):
# a test sees several within seconds.
RA_MIN_INTERVAL=3
RA_MAX_INTERVAL=4
# Router lifetime (s): hosts keep the default route through a failover
# that costs a few advertisements.
RA_ROUTER_LIFETIME=60
# How long r0's link-local address may stay tentative (DAD, about 1 s):
# radvd sends from it. Tenths of a second.
RA_LINKLOCAL_WAIT=50

cmd_radvd() {
    local dir=${1:-} i
    [[ -n "$dir" ]] || usage
    need_root
    "$(dirname "${BASH_SOURCE[0]}")/deps.sh" radvd || die "radvd missing (scripts/deps.sh radvd failed)"
    ns_exists router || die "lab is not up ($(ns router) missing)"
    mkdir -p "$dir"
    dir=$(realpath "$dir")
    # IPv6 on r0 (as `up` leaves it; idempotent) and forwarding, as on a
    # router: radvd expects it.
    ns_sysctl router net.ipv6.conf.r0.disable_ipv6=0
    ns_sysctl router net.ipv6.conf.all.forwarding=1
    ip -n "$(ns router)" -6 addr replace "$RA_ROUTER_ADDR" dev r0
    for ((i = 0; i < RA_LINKLOCAL_WAIT; i++)); do
        if ip -n "$(ns router)" -6 addr show dev r0 scope link | grep -q inet6 &&
            ! ip -n "$(ns router)" -6 addr show dev r0 scope link tentative | grep -q inet6; then
            break
        fi
        sleep 0.1
    done
    cat >"$dir/radvd.conf" <<CONF
interface r0 {
    AdvSendAdvert on;
    MinRtrAdvInterval $RA_MIN_INTERVAL;
    MaxRtrAdvInterval $RA_MAX_INTERVAL;
    AdvDefaultLifetime $RA_ROUTER_LIFETIME;
    prefix $RA_PREFIX {
        AdvOnLink on;
        AdvAutonomous on;
    };
};
CONF
    # --nodaemon: foreground; the log in DIR (startup and errors at
    # --debug=1); no --username: stays root inside the namespace.
    exec ip netns exec "$(ns router)" radvd --nodaemon --config="$dir/radvd.conf" \
        --pidfile="$dir/radvd.pid" --logmethod=logfile --logfile="$dir/radvd.log" --debug=1
}

# The lab's DHCPv6 server: its own subnet on r0, beside the static one.
DHCP6_ROUTER_ADDR=2001:db8:0:6::1/64
DHCP6_RANGE_FIRST=2001:db8:0:6::100
DHCP6_RANGE_LAST=2001:db8:0:6::150
DHCP6_PREFIX_LEN=64

cmd_dhcp6_server() {
    local dir=${1:-}
    [[ -n "$dir" ]] || usage
    need_root
    "$(dirname "${BASH_SOURCE[0]}")/deps.sh" dnsmasq || die "dnsmasq missing (scripts/deps.sh dnsmasq failed)"
    ns_exists router || die "lab is not up ($(ns router) missing)"
    mkdir -p "$dir"
    dir=$(realpath "$dir")
    : >"$dir/leases"
    ns_sysctl router net.ipv6.conf.r0.disable_ipv6=0
    # nodad: the server must bind to it at once; the lab owns the subnet.
    in_ns router ip -6 addr replace "$DHCP6_ROUTER_ADDR" dev r0 nodad
    # As dhcp-server; a range with a prefix length makes dnsmasq serve
    # DHCPv6 on the interface holding an address in it.
    exec ip netns exec "$(ns router)" dnsmasq --keep-in-foreground --conf-file=/dev/null \
        --port=0 --no-hosts --no-resolv --user=root --group=root \
        --interface=r0 --bind-interfaces --dhcp-authoritative \
        --dhcp-range="$DHCP6_RANGE_FIRST,$DHCP6_RANGE_LAST,$DHCP6_PREFIX_LEN,$DHCP_LEASE" \
        --dhcp-leasefile="$dir/leases" --pid-file="$dir/dnsmasq.pid" \
        --log-dhcp --log-facility="$dir/dnsmasq.log"
}

main() {
    local cmd=${1:-}
    [[ -n "$cmd" ]] || usage
    shift
    case "$cmd" in
        up) cmd_up ;;
        down) cmd_down ;;
        status) cmd_status ;;
        cut | restore) cmd_cut_restore "$cmd" "$@" ;;
        exec) cmd_exec "$@" ;;
        dhcp-server) cmd_dhcp_server "$@" ;;
        radvd) cmd_radvd "$@" ;;
        dhcp6-server) cmd_dhcp6_server "$@" ;;
        -h | --help | help) usage ;;
        *) usage ;;
    esac
}

main "$@"
