#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests, and the integration
# tests that run the real daemon in namespace labs against kernel peers.
# Needs root (network namespaces, TAP, BPF); installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $EUID -ne 0 ]]; then
    exec sudo -E "$0" "$@"
fi
scripts/deps.sh test
if cargo fmt --version >/dev/null 2>&1; then cargo fmt --check; fi
if cargo clippy --version >/dev/null 2>&1; then cargo clippy --all-targets --quiet -- -D warnings; fi
# Benches run once each in test mode first, so they cannot rot; then the
# unit and integration tests.
cargo test --bench datapath --quiet
# Tools the integration tests drive (e.g. the LAN flooder) are examples.
cargo build --examples --quiet
cargo test --lib --bins --tests "$@"
# A one-minute soak (12 failovers and failbacks under load, 100 TCP
# connections) with the debug build the tests just made; skipped when the
# arguments select tests. The full 600 s run is in docs/BENCHMARKS.md.
if (($# == 0)); then
    IPMPD_BIN=target/debug/ipmpd scripts/soak.sh 60
fi
