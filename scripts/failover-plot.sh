#!/usr/bin/env bash
# The failover picture: packets of one 20,000 packets/s UDP flow received per
# 10 ms, from 300 ms before an event to 700 ms after, for three streams
# measured in the namespace lab by `scripts/bench-failover.sh 1 plot`:
#
#   kernel   the kernel's own path (the data address on e1000g0, no ipmpd),
#            no event: the lab's noise floor (its mark is the same point of
#            the stream, where the others have their event)
#   carrier  ipmpd, `lab.sh cut` of the member carrying the flow (carrier
#            loss, link-based detection)
#   silent   ipmpd, `lab.sh cut cable4` between the switches (every carrier
#            stays up; ARP probing, --fdt 100ms)
#
# Arrivals are the router's kernel receive timestamps (SO_TIMESTAMPNS,
# CLOCK_REALTIME). The event is an interval, shaded in its panel: t = 0 is
# `date +%s%N` taken just before `lab.sh cut` (the cut cannot be earlier;
# on a loaded machine the script itself takes tens of ms before its
# `ip link set` runs), and the band ends where `ip -ts monitor link` in the
# switch stamped the cut port's change (the same clock; the stamp is taken
# in user space, late under load, so the cut cannot be later). Writes OUT
# (SVG, drawn by gnuplot) and the binned counts beside it (OUT with .tsv for
# .svg, the bands as "# band STREAM: FROM TO" lines, in ms), from which
# --from redraws it. The per-packet data stays under target/failover-plot/.
#
# Usage: scripts/failover-plot.sh [OUT]              measure (root), then draw
#        scripts/failover-plot.sh --from TSV [OUT]   only draw, from a TSV
#                                                    this script wrote
# OUT defaults to docs/failover.svg. Measuring takes about 20 s (the release
# build aside); the lab is removed on exit. Paths are taken from the caller's
# working directory.
set -euo pipefail
# The arguments' paths, made absolute before moving to the checkout.
ARGS=()
for a in "$@"; do
    if [[ $a == --from ]]; then ARGS+=("$a"); else ARGS+=("$(realpath -m -- "$a")"); fi
done
set -- "${ARGS[@]}"
cd "$(dirname "$0")/.."

DEFAULT_OUT=docs/failover.svg
# Picture size (px) and the y axis top (packets per bin: 200 expected).
WIDTH=900
HEIGHT=780
Y_MAX=450
# The command line shown in the caption when measuring.
COMMAND="scripts/failover-plot.sh"

usage() {
    echo "usage: scripts/failover-plot.sh [OUT] | --from TSV [OUT]" >&2
    exit 2
}

FROM=""
if [[ ${1:-} == --from ]]; then
    FROM=${2:-}
    [[ -n $FROM ]] || usage
    [[ -f $FROM ]] || { echo "failover-plot: no file $FROM" >&2; exit 1; }
    shift 2
fi
(($# <= 1)) || usage
OUT=${1:-$DEFAULT_OUT}
[[ $OUT == *.svg ]] || { echo "failover-plot: OUT must end in .svg" >&2; exit 2; }
TSV=${OUT%.svg}.tsv

load() { cut -d' ' -f1-3 /proc/loadavg; }

measure() {
    [[ $EUID -eq 0 ]] || { echo "failover-plot: measuring needs root (network namespaces)" >&2; exit 1; }
    scripts/deps.sh plot
    local dir=target/failover-plot load0 tmp
    rm -rf "$dir"
    mkdir -p "$dir"
    load0=$(load)
    PLOT_DIR=$dir scripts/bench-failover.sh 1 plot | tee "$dir/bench.log"
    tmp=$(mktemp)
    {
        echo "# ipmpd failover picture: UDP packets received per 10 ms bin, 20000 packets/s (200 per bin)"
        echo "# t_ms: bin start, ms from the date +%s%N stamp just before lab.sh cut (the cut cannot be earlier); the event band ends at the cut port's change stamped by ip -ts monitor in the switch (the cut cannot be later); kernel receive timestamps; one clock, CLOCK_REALTIME"
        echo "# date: $(date -u '+%F %H:%M UTC')"
        echo "# kernel: $(uname -r)"
        echo "# cpus: $(nproc)"
        echo "# load: $load0 (start), $(load) (end)"
        echo "# command: $COMMAND"
        grep -E '^- `' "$dir/bench.log" | sed 's/^- /# ipmpd: /'
        python3 scripts/bench_failover.py plot-bins "$dir"
    } >"$tmp"
    mkdir -p "$(dirname "$TSV")"
    mv "$tmp" "$TSV"
    chmod 644 "$TSV"
    FROM=$TSV
}

# The TSV's column names, in order (bench_failover.py plot-bins writes them).
COLUMNS=$'t_ms\tkernel\tcarrier\tsilent'

# check_tsv: the first line that is not a comment names COLUMNS and every
# line after it holds that many integers (gnuplot would only warn about a
# missing column and draw an empty panel).
check_tsv() {
    awk -F'\t' -v want="$COLUMNS" '
        /^#/ { next }
        !header { header = 1; if ($0 != want) { print "failover-plot: columns are not: " want > "/dev/stderr"; bad = 1; exit }
                  n = split(want, w, "\t"); next }
        NF != n { print "failover-plot: line " NR ": " NF " fields, not " n > "/dev/stderr"; bad = 1; exit }
        { for (i = 1; i <= NF; i++) if ($i !~ /^-?[0-9]+$/) { print "failover-plot: line " NR ": not an integer: " $i > "/dev/stderr"; bad = 1; exit } rows++ }
        END { if (!bad && !rows) { print "failover-plot: no data lines" > "/dev/stderr"; bad = 1 } exit bad }
    ' "$FROM"
}

# meta KEY: the value of the "# KEY: value" line of the TSV.
meta() { sed -n "s/^# $1: //p" "$FROM" | head -1; }

# The event band's fill (a light orange, under the curves).
BAND_COLOUR="#fdb863"
BAND_OPACITY=0.45

# band STREAM: gnuplot commands shading STREAM's event band (the "# band
# STREAM: FROM TO" line, ms), or removing the previous panel's band when
# the TSV has none. A malformed line is refused: it would reach gnuplot.
band() {
    local b from to
    b=$(meta "band $1")
    if [[ -z $b ]]; then
        echo "unset object 2"
        echo "set label 1 \"$1 cut (no band: no monitor stamp)\""
        return 0
    fi
    if ! [[ $b =~ ^([0-9]+\.[0-9]+)\ ([0-9]+\.[0-9]+)$ ]]; then
        echo "failover-plot: band $1: not \"FROM TO\" in ms: $b" >&2
        return 1
    fi
    from=${BASH_REMATCH[1]} to=${BASH_REMATCH[2]}
    echo "set object 2 rect from first $from, graph 0 to first $to, graph 1 fc rgb \"$BAND_COLOUR\" fs transparent solid $BAND_OPACITY noborder behind"
    echo "set label 1 \"$1 cut, between $from and $to ms (shaded)\""
}

draw() {
    check_tsv || { echo "failover-plot: $FROM is not a failover-plot TSV" >&2; exit 1; }
    scripts/deps.sh gnuplot
    local caption title carrier_band silent_band
    carrier_band=$(band carrier) || exit 1
    silent_band=$(band silent) || exit 1
    caption="$(meta date), kernel $(meta kernel), $(meta cpus) vCPUs, load average $(meta load)"
    title="ipmpd failover: one UDP flow of 20,000 packets/s, packets received per 10 ms"
    # gnuplot reads the TSV by column name; comments (#) are skipped.
    gnuplot <<GP
set terminal svg size $WIDTH,$HEIGHT dynamic font "sans,12" background "white"
set output "$OUT"
set datafile separator "\t"
set datafile commentschars "#"
set key bottom right box opaque
set xrange [-300:700]
set yrange [0:$Y_MAX]
set xtics 100
set ytics 100
set grid xtics ytics lc rgb "#dddddd"
set style line 1 lc rgb "#1b7837" lw 1.5
set style line 2 lc rgb "#2166ac" lw 1.5
set style line 3 lc rgb "#b2182b" lw 1.5
set style line 9 lc rgb "#555555" lw 1.5 dt 2
set ylabel "packets per 10 ms"
set multiplot layout 3,1 title "$title\n{/*0.8 $caption}\n{/*0.8 $(meta command)}" font ",14" margins 0.08,0.97,0.08,0.87 spacing 0,0.06
set arrow 1 from 0,0 to 0,$Y_MAX nohead ls 9
set format x ""
set label 1 "no event (same point of the stream)" at 8,$((Y_MAX - 40))
plot "$FROM" using "t_ms":"kernel" with steps ls 1 title "kernel path, no event"
$carrier_band
plot "$FROM" using "t_ms":"carrier" with steps ls 2 title "ipmpd, carrier cut"
set format x "%g"
set xlabel "ms from the date stamp just before lab.sh cut (shaded: until ip monitor saw the port change)"
$silent_band
plot "$FROM" using "t_ms":"silent" with steps ls 3 title "ipmpd, silent cut (probes, FDT 100 ms)"
unset multiplot
GP
    echo "failover-plot: wrote $OUT (data: $FROM)"
}

if [[ -z $FROM ]]; then
    trap 'exit 130' INT TERM
    measure
fi
draw
