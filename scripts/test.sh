#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests, and the integration
# tests that run the real daemon in namespace labs against kernel peers.
# Needs root (network namespaces, TAP, BPF); installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $EUID -ne 0 ]]; then
    exec sudo -E "$0" "$@"
fi
scripts/deps.sh
if cargo fmt --version >/dev/null 2>&1; then cargo fmt --check; fi
if cargo clippy --version >/dev/null 2>&1; then cargo clippy --all-targets --quiet -- -D warnings; fi
# Benches run once each in test mode first, so they cannot rot; then the
# unit and integration tests, whose summary closes the output.
cargo test --bench datapath --quiet
cargo test --lib --bins --tests "$@"
