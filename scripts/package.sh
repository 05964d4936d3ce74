#!/usr/bin/env bash
# Builds the Debian package target/debian/ipmpd_<version>_<arch>.deb: release
# binaries (stripped), the systemd unit and the NetworkManager/networkd
# snippets, an example group file, man pages and bash/zsh/fish completions.
# The man pages and completions are rendered from the binaries' own clap
# definitions and docs/*.md by examples/pkgdocs.rs. Installs cargo-deb (and
# what else it needs) through scripts/deps.sh when missing.
#
# Usage: scripts/package.sh        then: apt install ./target/debian/ipmpd_*.deb
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh package
# cargo install puts cargo-deb here; a shell that never sourced cargo's env
# may not have it on PATH.
export PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin"

DOCS_OUT=target/pkgdocs
rm -rf "$DOCS_OUT"
cargo run --quiet --example pkgdocs -- "$DOCS_OUT"
# As Debian ships man pages: gzip, best compression, no name or timestamp
# inside (the same input gives the same bytes).
gzip -9n "$DOCS_OUT"/man/*
rm -f target/debian/ipmpd_*.deb
# The release profile keeps debug info for profiling: the package does not.
cargo deb --quiet --strip
ls target/debian/ipmpd_*.deb
