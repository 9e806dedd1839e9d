#!/bin/sh
# check-exports.sh: the dynamic symbols libsubiter.so defines must be exactly
# the names in the global: sections of lib/libsubiter.sym.
#
# Environment (set by `make check`): top_builddir, top_srcdir, NM.
# Exit: 0 match, 1 mismatch (diff printed), 77 skip (no nm or no .so),
# 99 harness error.

top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-.}
NM=${NM:-nm}

so="$top_builddir/lib/.libs/libsubiter.so"
sym="$top_srcdir/lib/libsubiter.sym"

# $NM may carry options (libtool sets "nm -B"); look up its first word only.
set -- $NM
if test $# -eq 0 || ! command -v "$1" >/dev/null 2>&1; then
    echo "SKIP: nm not found (NM='$NM')"
    exit 77
fi
if test ! -f "$so"; then
    echo "SKIP: $so not built (--disable-shared?)"
    exit 77
fi
if test ! -f "$sym"; then
    echo "ERROR: $sym not found"
    exit 99
fi

tmp=${TMPDIR:-/tmp}/check-exports.$$
trap 'rm -f "$tmp.want" "$tmp.got" "$tmp.got.raw"' 0 1 2 13 15

# Names that a version node makes global.  Single-line comments are dropped,
# then the file is split into one token per line.  Inside { } names are
# global until "local:"; outside (node names, inherited nodes) nothing counts.
sed -e 's|/\*.*\*/||g' -e 's|#.*||' -e 's|//.*||' "$sym" |
    sed -e 's/[{}]/ & /g' -e 's/;/ /g' \
        -e 's/global:/ global: /g' -e 's/local:/ local: /g' |
    tr ' \t' '\n\n' |
    awk '
        $0 == ""        { next }
        $0 == "{"       { mode = "g"; next }
        $0 == "}"       { mode = ""; next }
        $0 == "global:" { mode = "g"; next }
        $0 == "local:"  { mode = "l"; next }
        mode == "g"     { print }
    ' | sort -u >"$tmp.want" || exit 99

# Defined dynamic symbols, minus the version nodes themselves (type A, e.g.
# SUBITER_0.1).  Newer nm prints name@@NODE; keep the name.
$NM -D --defined-only "$so" >"$tmp.got.raw" 2>/dev/null || {
    echo "ERROR: $NM -D --defined-only $so failed"
    exit 99
}
awk 'NF >= 3 && $(NF - 1) != "A" { sub(/@.*/, "", $NF); print $NF }' \
    "$tmp.got.raw" | sort -u >"$tmp.got"
rm -f "$tmp.got.raw"

if test ! -s "$tmp.want"; then
    echo "ERROR: no global: symbols found in $sym"
    exit 99
fi

if diff -u "$tmp.want" "$tmp.got"; then
    echo "PASS: $(wc -l <"$tmp.got" | tr -d ' ') exported symbols match $sym"
    exit 0
fi
echo "FAIL: exports of $so differ from $sym (- .sym only, + .so only)"
exit 1
