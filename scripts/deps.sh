#!/usr/bin/env bash
# Installs what the demo, the tests and the benchmarks need on Debian/Ubuntu:
# the namespace lab's tools and the real peers the tests talk to. Installs
# only what is missing; safe to run repeatedly.
set -euo pipefail
declare -A pkg_of=(
    [ip]=iproute2 [bridge]=iproute2 [ethtool]=ethtool [tcpdump]=tcpdump [iperf3]=iperf3
    [ping]=iputils-ping [arping]=arping [python3]=python3 [setpriv]=util-linux
    [flock]=util-linux [sysctl]=procps [ss]=iproute2 [systemd-analyze]=systemd
)
missing=()
for tool in "${!pkg_of[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("${pkg_of[$tool]}")
done
if ((${#missing[@]})); then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    echo "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
    # Debian 13+ packages rustup; older releases: https://rustup.rs
    if apt-cache show rustup >/dev/null 2>&1; then
        apt-get install -y -qq rustup >/dev/null && rustup default stable
    else
        echo "deps: cargo not found; install Rust (1.85 or newer) with rustup first" >&2
        exit 1
    fi
fi
kmaj=$(uname -r | cut -d. -f1); kmin=$(uname -r | cut -d. -f2)
if ((kmaj < 6 || (kmaj == 6 && kmin < 6))); then
    echo "deps: kernel $(uname -r) is older than 6.6; ipmpd needs tcx (6.6+)" >&2
    exit 1
fi
