#!/usr/bin/env bash
# Builds ipmpd, brings up the tutorial's namespace lab (three member NICs,
# two switches joined by "cable 4", a router) and runs ipmpd on it until
# Ctrl-C, its log on this terminal. Ctrl-C (or SIGTERM) stops ipmpd (which
# removes ipmp0 and restores the members) and takes the lab down.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $EUID -ne 0 ]]; then
    exec sudo -E "$0" "$@"
fi
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
scripts/deps.sh demo
cargo build --release --bins
export PATH="$PWD/target/release:$PATH"
export LAB_PREFIX="${LAB_PREFIX:-ipmplab}"
export IPMPD_RUN_DIR="${IPMPD_RUN_DIR:-/run/ipmpd}"
IPMPD_BIN="$PWD/target/release/ipmpd"
H="${LAB_PREFIX}-host"
trap 'ipmpd_stop; scripts/lab.sh down >/dev/null 2>&1 || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
scripts/lab.sh up >/dev/null
ipmpd_start "$H" --group production0 --interface ipmp0 \
    --data 192.0.2.200/24 --data 192.0.2.201/24 --data 192.0.2.202/24 \
    --member e1000g0 --member e1000g1 --member rge0
cat <<EOT

Lab "${LAB_PREFIX}" is up and ipmpd is running in it. In another shell, try:
  export PATH=$PWD/target/release:\$PATH
  ip netns exec $H ipmpstat -i
  ip netns exec $H ip addr show ipmp0
  ip netns exec $H ping 192.0.2.1
  ip netns exec $H tcpdump -ni ipmp0
  ip netns exec ${LAB_PREFIX}-router ip neigh          # data addresses on member MACs
  LAB_PREFIX=$LAB_PREFIX scripts/lab.sh cut e1000g0      # pull a cable (then: restore e1000g0)
Ctrl-C here stops ipmpd and removes the lab.

EOT
# Until ipmpd ends or Ctrl-C; the EXIT trap stops ipmpd and takes the lab down.
ipmpd_wait || true
