#!/usr/bin/env bash
# Installs what the demo, the tests, the benchmarks and the fuzzers need on
# Debian/Ubuntu: the namespace lab's tools, the real peers the tests talk to
# and the Rust toolchain. The one place scripts install anything: no other
# script calls apt-get, rustup or cargo install. Installs only what is
# missing; safe to run repeatedly, and from parallel callers (installs are
# serialised by a lock).
#
# Usage: scripts/deps.sh [NEED|PROFILE]...   (none: the profile "all")
#
#   NEED     a command (ip, iperf3, jq, ...; the list is in PKG_OF below),
#            or: rust (cargo, stable), kernel (Linux 6.6+, for tcx),
#            nightly (the nightly toolchain), cargo-fuzz, cargo-deb
#   PROFILE  lab    the namespace lab (scripts/lab.sh)
#            demo   scripts/demo.sh
#            test   scripts/test.sh (the whole suite)
#            bench  scripts/bench*.sh and scripts/soak.sh (bench-batch.sh also
#                   needs: perf)
#            fuzz   scripts/fuzz.sh (nightly and cargo-fuzz)
#            dhcp   the DHCP server and clients of tests/dhcp.rs (dnsmasq,
#                   dhclient, udhcpc, dhcpcd; dnsmasq-base and dhcpcd-base:
#                   the binaries, no service)
#            ipv6   the IPv6 peers of tests/ipv6.rs (ndisc6)
#            slaac  the router advertisement daemon of tests/slaac.rs and
#                   `scripts/lab.sh radvd` (radvd)
#            plot   scripts/failover-plot.sh: the failover benchmark's lab
#                   and gnuplot (gnuplot-nox: no X11) to draw its SVG
#            dev    shellcheck, for checking these scripts
#            package  scripts/package.sh (cargo-deb; dpkg-dev for the package's
#                   library dependencies; binutils to strip)
#            all    demo, test and bench: what the README's commands need
set -euo pipefail

# Debian package of each command.
declare -A PKG_OF=(
    [ip]=iproute2 [bridge]=iproute2 [ss]=iproute2 [tc]=iproute2 [ethtool]=ethtool [tcpdump]=tcpdump
    [iperf3]=iperf3 [ping]=iputils-ping [arping]=arping [python3]=python3 [jq]=jq
    [setpriv]=util-linux [flock]=util-linux [sysctl]=procps [timeout]=coreutils
    [realpath]=coreutils [awk]=mawk [systemd-analyze]=systemd [shellcheck]=shellcheck
    [dnsmasq]=dnsmasq-base [dhclient]=isc-dhcp-client [udhcpc]=udhcpc [dhcpcd]=dhcpcd-base
    [ndisc6]=ndisc6 [radvd]=radvd [perf]=linux-perf [gnuplot]=gnuplot-nox
    [dpkg-deb]=dpkg [dpkg-shlibdeps]=dpkg-dev [strip]=binutils [readelf]=binutils [gzip]=gzip [man]=man-db [groff]=groff-base
)
# Profiles: lists of needs (a profile may name another).
declare -A PROFILE=(
    [lab]="ip bridge ss tc ethtool sysctl flock awk"
    [demo]="lab rust kernel tcpdump ping"
    [test]="lab rust kernel tcpdump iperf3 ping arping python3 jq setpriv timeout realpath systemd-analyze dhcp ipv6 slaac package man groff readelf gnuplot"
    [dhcp]="dnsmasq dhclient udhcpc dhcpcd"
    [ipv6]="ndisc6"
    [slaac]="radvd"
    [bench]="lab rust kernel iperf3 ping python3 jq timeout realpath"
    [plot]="bench gnuplot"
    [fuzz]="rust nightly cargo-fuzz"
    [dev]="shellcheck"
    [package]="rust cargo-deb gzip dpkg-deb dpkg-shlibdeps strip"
    [all]="demo test bench"
)
# Oldest kernel with tcx.
MIN_KERNEL_MAJOR=6
MIN_KERNEL_MINOR=6
LOCK_FILE=/run/lock/ipmpd-deps.lock
[[ -d /run/lock ]] || LOCK_FILE=/tmp/ipmpd-deps.lock

die() { echo "deps: $*" >&2; exit 1; }

# Expands profiles into needs, each once, in order.
declare -A SEEN=()
NEEDS=()
expand() {
    local n
    for n in "$@"; do
        [[ -z "${SEEN[$n]:-}" ]] || continue
        SEEN[$n]=1
        if [[ -n "${PROFILE[$n]:-}" ]]; then
            # shellcheck disable=SC2086 # a profile is a space-separated list
            expand ${PROFILE[$n]}
        elif [[ -n "${PKG_OF[$n]:-}" || "$n" =~ ^(rust|kernel|nightly|cargo-fuzz|cargo-deb)$ ]]; then
            NEEDS+=("$n")
        else
            die "unknown need or profile '$n' (profiles: ${!PROFILE[*]})"
        fi
    done
}
if (($# == 0)); then expand all; else expand "$@"; fi

# Everything below may install: one caller at a time.
locked() {
    exec 8>"$LOCK_FILE"
    flock 8
}

apt_install() {
    [[ $EUID -eq 0 ]] || die "missing $*; run as root to install them"
    command -v apt-get >/dev/null 2>&1 || die "apt-get not available; install: $*"
    echo "deps: installing $*"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

install_commands() {
    local missing=() n
    for n in "${NEEDS[@]}"; do
        [[ -n "${PKG_OF[$n]:-}" ]] || continue
        command -v "$n" >/dev/null 2>&1 || missing+=("${PKG_OF[$n]}")
    done
    ((${#missing[@]})) || return 0
    locked
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    apt_install "${missing[@]}"
    for n in "${NEEDS[@]}"; do
        [[ -z "${PKG_OF[$n]:-}" ]] || command -v "$n" >/dev/null 2>&1 || die "could not install $n"
    done
}

install_rust() {
    command -v cargo >/dev/null 2>&1 && return 0
    locked
    # Debian 13+ packages rustup; older releases: https://rustup.rs
    if apt-cache show rustup >/dev/null 2>&1; then
        apt_install rustup
        rustup default stable
    else
        die "cargo not found; install Rust (1.85 or newer) with rustup first"
    fi
}

install_nightly() {
    command -v rustup >/dev/null 2>&1 || die "the nightly toolchain needs rustup"
    rustup toolchain list | grep -q '^nightly' && return 0
    locked
    rustup toolchain install nightly --profile minimal
}

install_cargo_fuzz() {
    command -v cargo-fuzz >/dev/null 2>&1 && return 0
    locked
    cargo install cargo-fuzz --locked
}

# cargo-deb for scripts/package.sh: Debian's package where there is one of
# the pinned major version (older ones lack options package.sh uses), else
# this version from crates.io (with its locked dependencies).
CARGO_DEB_VERSION=3.8.0
CARGO_DEB_MAJOR=${CARGO_DEB_VERSION%%.*}
# The major version of the cargo-deb on PATH; 0 when there is none.
cargo_deb_major() {
    local v
    v=$(cargo deb --version 2>/dev/null | awk '{print $2}') || v=
    if [[ $v =~ ^([0-9]+)\. ]]; then echo "${BASH_REMATCH[1]}"; else echo 0; fi
}
install_cargo_deb() {
    # cargo install's directory, which a shell may not have on its PATH.
    local PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin"
    (($(cargo_deb_major) >= CARGO_DEB_MAJOR)) && return 0
    locked
    (($(cargo_deb_major) >= CARGO_DEB_MAJOR)) && return 0
    if apt-cache show cargo-deb >/dev/null 2>&1; then
        apt_install cargo-deb
        (($(cargo_deb_major) >= CARGO_DEB_MAJOR)) && return 0
        echo "deps: Debian's cargo-deb is older than $CARGO_DEB_MAJOR; installing $CARGO_DEB_VERSION" >&2
    fi
    cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION"
}

check_kernel() {
    local kmaj kmin
    kmaj=$(uname -r | cut -d. -f1)
    kmin=$(uname -r | cut -d. -f2)
    if ((kmaj < MIN_KERNEL_MAJOR || (kmaj == MIN_KERNEL_MAJOR && kmin < MIN_KERNEL_MINOR))); then
        die "kernel $(uname -r) is older than $MIN_KERNEL_MAJOR.$MIN_KERNEL_MINOR; ipmpd needs tcx"
    fi
}

install_commands
for n in "${NEEDS[@]}"; do
    case $n in
    rust) install_rust ;;
    nightly) install_nightly ;;
    cargo-fuzz) install_cargo_fuzz ;;
    cargo-deb) install_cargo_deb ;;
    kernel) check_kernel ;;
    esac
done
