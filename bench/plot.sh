#!/bin/sh
# plot.sh: draws PNG charts from subiter-bench's key=value output.
#
#     plot.sh RESULTS OUTDIR
#
# Writes OUTDIR/items_per_s.png and OUTDIR/mb_per_s.png (log scales: median
# per item size, bars from min to max), one series per implementation:
# subiter's modes (default options: the ring's bytes bound what is in
# flight) and the baselines of the same run, plus
# the OUTDIR/<series>.dat files they are drawn from. Needs gnuplot
# ($GNUPLOT, else the one on PATH; Debian: apt-get install gnuplot-nox).
set -eu

if test $# -ne 2; then
    echo "usage: plot.sh RESULTS OUTDIR" >&2
    exit 2
fi
results=$1
out=$2
gnuplot=${GNUPLOT:-}
if test -z "$gnuplot"; then
    gnuplot=$(command -v gnuplot || :)
fi
if test -z "$gnuplot"; then
    echo "plot.sh: gnuplot not found (Debian: apt-get install gnuplot-nox)" >&2
    exit 1
fi
mkdir -p "$out"
rm -f "$out"/*.dat

# One .dat per series, columns: x items/s(min med max) MB/s(min med max).
# 0-byte items sit at x=1 (labelled 0) so that the log axis can show them.
awk -v out="$out" '
function field(name) { return (name in kv) ? kv[name] : "" }
/^bench=info / || /^bench=throughput / {
    split("", kv)
    for (i = 1; i <= NF; i++) {
        j = index($i, "=")
        kv[substr($i, 1, j - 1)] = substr($i, j + 1)
    }
}
/^bench=info / {
    print "version=" field("version") " reps=" field("reps") \
        " quick=" field("quick") > (out "/info.dat")
    next
}
/^bench=throughput / {
    if (field("error") != "" || field("items_per_s_med") == "")
        next
    if (field("buffer_items") != "" && field("buffer_items") != 0)
        next
    name = field("impl")
    if (field("consume") == "read")
        name = name "_read"
    x = field("item_bytes")
    if (x == 0)
        x = 1
    print x, field("items_per_s_min"), field("items_per_s_med"), \
        field("items_per_s_max"), field("mb_per_s_min"), \
        field("mb_per_s_med"), field("mb_per_s_max") > (out "/" name ".dat")
}
' "$results"

info=$(cat "$out/info.dat" 2>/dev/null || echo "")
rm -f "$out/info.dat"

# Series in a fixed order: title, line style.
series='subiter_yield|subiter yield, consumer touches|lw 3 lc rgb "#1f77b4" pt 7
subiter_yield_read|subiter yield, consumer reads all|lw 3 lc rgb "#1f77b4" dt 2 pt 6
subiter_reserve|subiter reserve/commit, touches|lw 3 lc rgb "#2ca02c" pt 5
subiter_reserve_read|subiter reserve/commit, reads all|lw 3 lc rgb "#2ca02c" dt 2 pt 4
inproc|in-process callback, touches|lw 2 lc rgb "#7f7f7f" pt 9
inproc_read|in-process callback, reads all|lw 2 lc rgb "#7f7f7f" dt 2 pt 8
memcpy|memcpy (bandwidth limit)|lw 2 lc rgb "#000000" pt 3
pipe|pipe, length + payload per write|lw 2 lc rgb "#d62728" pt 11
pipe_pb|pipe + protobuf-c pack/unpack|lw 2 lc rgb "#ff7f0e" pt 13'

# plot_cmd COLUMN XFILTER [SKIP]: the gnuplot plot command over the series
# that have data (but SKIP): median in COLUMN, min and max around it.
plot_cmd() {
    col=$1
    xf=$2
    skip=${3:-}
    sep="plot"
    echo "$series" | while IFS='|' read -r name title style; do
        f="$out/$name.dat"
        test -s "$f" || continue
        test "$name" != "$skip" || continue
        printf '%s "%s" using (%s):%d:%d:%d with yerrorlines title "%s" %s' \
            "$sep" "$f" "$xf" "$col" $((col - 1)) $((col + 1)) \
            "$title" "$style"
        sep=", \\
    "
    done
    echo
}

# The $1 below are gnuplot's column references, not the shell's.
# shellcheck disable=SC2016
items_plot=$(plot_cmd 3 '$1')
# Bandwidth: no 0-byte items, and no in-process "touch" line (it moves no
# bytes, so its MB/s says nothing).
# shellcheck disable=SC2016
mb_plot=$(plot_cmd 6 '$1 > 1 ? $1 : NaN' inproc)
if test "$items_plot" = ""; then
    echo "plot.sh: no throughput lines in $results" >&2
    exit 1
fi

"$gnuplot" <<EOF
set terminal pngcairo size 1100,800 font "sans,11"
set logscale xy
set grid xtics ytics mytics
set xtics ("0" 1, "64" 64, "4 KiB" 4096, "64 KiB" 65536, "1 MiB" 1048576, "4 MiB" 4194304)
set xlabel "item size (bytes)"
set key outside bottom center horizontal maxcols 3 width 2
set format y "10^{%L}"
set bars small

set output "$out/items_per_s.png"
set xrange [0.6:7e6]
set title "subiter-bench: items per second (median; bars min..max)\n{/*0.8 $info}"
set ylabel "items/s"
$items_plot

set output "$out/mb_per_s.png"
set xrange [40:7e6]
set title "subiter-bench: bandwidth, MB/s (10^6 B/s; median; bars min..max)\n{/*0.8 $info}"
set ylabel "MB/s"
$mb_plot
EOF
echo "plot.sh: wrote $out/items_per_s.png $out/mb_per_s.png"
