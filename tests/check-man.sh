#!/bin/sh
# check-man.sh: every man page in man/ formats without a single groff
# warning, every .so link page points at a page that exists, and every
# public function of the header (include/subiter.h.in) has a page of its own.
#
# Each page runs through `groff -t -man -ww -z` (-t: tbl, for the pages
# that carry tables; -ww: all warnings; -z: no output). Anything groff
# prints is a failure.
#
# Environment (set by `make check`): top_srcdir.
# Exit: 0 all clean, 1 a warning or a missing page, 77 skip (no groff or
# no tbl), 99 harness error.

top_srcdir=${top_srcdir:-.}
mandir="$top_srcdir/man"
header="$top_srcdir/include/subiter.h.in"

if ! command -v groff >/dev/null 2>&1; then
    echo "SKIP: groff not found"
    exit 77
fi
if ! command -v tbl >/dev/null 2>&1; then
    echo "SKIP: tbl not found"
    exit 77
fi
if test ! -d "$mandir" || test ! -f "$header"; then
    echo "ERROR: $mandir or $header not found"
    exit 99
fi

tmp=${TMPDIR:-/tmp}/check-man.$$
trap 'rm -f "$tmp.out"' 0 1 2 13 15

status=0
pages=0
for page in "$mandir"/*.[1-9]; do
    test -f "$page" || continue
    pages=$((pages + 1))
    name=${page##*/}
    # A link page is one ".so manN/target.N" line: check its target.
    target=$(sed -n 's/^\.so[ 	][ 	]*//p' "$page")
    if test -n "$target"; then
        if test "$(grep -c . "$page")" -ne 1; then
            echo "FAIL: $name: a .so link page must hold only the .so line"
            status=1
        elif test ! -f "$mandir/${target##*/}"; then
            echo "FAIL: $name: links to $target, which is not in man/"
            status=1
        fi
        continue
    fi
    if ! groff -t -man -ww -z "$page" >"$tmp.out" 2>&1; then
        echo "FAIL: $name: groff failed"
        status=1
    fi
    if test -s "$tmp.out"; then
        echo "FAIL: $name: groff warnings:"
        sed 's/^/    /' "$tmp.out"
        status=1
    fi
done

if test "$pages" -eq 0; then
    echo "ERROR: no man pages in $mandir"
    exit 99
fi

# The public functions: each SUBITER_API declaration, whose name is on the
# same line or the next one.
funcs=$(awk '
    /^SUBITER_API/ {
        s = $0
        if (s !~ /subiter_[a-z0-9_]*\(/) { getline n; s = s " " n }
        if (match(s, /subiter_[a-z0-9_]*\(/)) {
            print substr(s, RSTART, RLENGTH - 1)
        }
    }' "$header")
if test -z "$funcs"; then
    echo "ERROR: no SUBITER_API functions found in $header"
    exit 99
fi
nfuncs=0
for f in $funcs; do
    nfuncs=$((nfuncs + 1))
    if test ! -f "$mandir/$f.3"; then
        echo "FAIL: $f has no man page ($mandir/$f.3)"
        status=1
    fi
done
if test ! -f "$mandir/subiter.7"; then
    echo "FAIL: the subiter(7) overview is missing"
    status=1
fi

if test "$status" -eq 0; then
    echo "PASS: $pages pages format without warnings;" \
        "all $nfuncs public functions have a page"
fi
exit $status
