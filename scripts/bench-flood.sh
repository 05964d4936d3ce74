#!/usr/bin/env bash
# Flood benchmark in the namespace lab: a hostile host on switch A sends, for
# 4 s at up to 100,000 frames/s (examples/lanflood.rs, sendmmsg), echo
# requests and bogus echo replies (with the daemon's ICMP id) at e1000g0's
# test address and broadcast ARP requests for the data address, while the
# router pings the data address every 10 ms. Runs tests/forgery.rs'
# flood test against the release daemon and prints, per run: the rate the
# sender reached, the daemon's CPU time over the flood (utime + stime from
# /proc/PID/stat), the ping count, and any member state change (the test
# fails on one).
#
# Usage: scripts/bench-flood.sh [RUNS]   (default 3, at most 20)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-3}"
if ! [[ "$RUNS" =~ ^[0-9]+$ ]] || ((RUNS < 1 || RUNS > 20)); then
    echo "RUNS must be 1..20" >&2
    exit 2
fi
[[ $EUID -eq 0 ]] || { echo "bench-flood.sh: must run as root (network namespaces)" >&2; exit 1; }
scripts/deps.sh bench
cargo build --release --bin ipmpd --example lanflood
echo "# kernel $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
for ((i = 1; i <= RUNS; i++)); do
    IPMPD_FLOOD_RATE=100000 IPMPD_BIN="$PWD/target/release/ipmpd" LANFLOOD="$PWD/target/release/examples/lanflood" \
        cargo test -q --test forgery -- a_flood --nocapture 2>&1 |
        grep -E '^flood:|panicked|failure detected|in: ' || true
done
