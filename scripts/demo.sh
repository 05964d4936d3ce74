#!/usr/bin/env bash
# Builds ipmpd, brings up the tutorial's namespace lab (three member NICs,
# two switches joined by "cable 4", a router) and runs ipmpd on it in the
# foreground. Ctrl-C stops ipmpd (which removes ipmp0 and restores the
# members) and takes the lab down.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $EUID -ne 0 ]]; then
    exec sudo -E "$0" "$@"
fi
scripts/deps.sh
cargo build --release --bins
export PATH="$PWD/target/release:$PATH"
export LAB_PREFIX="${LAB_PREFIX:-ipmplab}"
trap 'scripts/lab.sh down >/dev/null 2>&1 || true' EXIT
scripts/lab.sh up >/dev/null
H="${LAB_PREFIX}-host"
cat <<EOT

Lab "${LAB_PREFIX}" is up. In another shell, try:
  export PATH=$PWD/target/release:\$PATH
  ip netns exec $H ipmpstat -i
  ip netns exec $H ip addr show ipmp0
  ip netns exec $H ping 192.0.2.1
  ip netns exec $H tcpdump -ni ipmp0
  ip netns exec ${LAB_PREFIX}-router ip neigh          # data addresses on member MACs
  LAB_PREFIX=$LAB_PREFIX scripts/lab.sh cut e1000g0      # pull a cable (then: restore e1000g0)
Ctrl-C here stops ipmpd and removes the lab.

EOT
export IPMPD_RUN_DIR="${IPMPD_RUN_DIR:-/run/ipmpd}"
# Not exec: the EXIT trap must still take the lab down after ipmpd stops.
ip netns exec "$H" target/release/ipmpd --group production0 --interface ipmp0 \
    --data 192.0.2.200/24 --data 192.0.2.201/24 --data 192.0.2.202/24 \
    --member e1000g0 --member e1000g1 --member rge0 || true
