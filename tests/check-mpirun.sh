#!/bin/sh
# check-mpirun.sh: under the real launcher (Open MPI's mpirun, two ranks
# on this machine), the ranks' pools take rank and world size from the
# environment and together cover the dataset exactly once, with a
# checkpoint and a resume on the way (tests/rank-cover.c).
#
# Environment (set by `make check`): top_builddir.
# Exit: 0 covered once, 1 not, 77 skip (no mpirun), 99 harness error.

top_builddir=${top_builddir:-.}
prog="$top_builddir/tests/rank-cover"
n=1000

if ! command -v mpirun >/dev/null 2>&1; then
    echo "SKIP: mpirun not found (apt-get install -y openmpi-bin)"
    exit 77
fi
if test ! -x "$prog"; then
    echo "ERROR: $prog not built"
    exit 99
fi
dir=$(mktemp -d) || exit 99
trap 'rm -rf "$dir"' EXIT

# Root in containers and CI; more ranks than cores on small machines.
if ! mpirun --allow-run-as-root --oversubscribe -np 2 "$prog" $n "$dir"; then
    echo "FAIL: mpirun exited non-zero"
    exit 1
fi
for r in 0 1; do
    if test ! -s "$dir/rank-$r"; then
        echo "FAIL: rank $r wrote nothing"
        exit 1
    fi
done
seq 0 $((n - 1)) >"$dir/want"
sort -n "$dir/rank-0" "$dir/rank-1" >"$dir/got"
if ! cmp -s "$dir/want" "$dir/got"; then
    echo "FAIL: the ranks did not cover 0..$((n - 1)) exactly once:"
    diff "$dir/want" "$dir/got" | head -20
    exit 1
fi
echo "PASS: 2 ranks under mpirun covered $n items exactly once" \
    "($(wc -l <"$dir/rank-0") + $(wc -l <"$dir/rank-1"))"
exit 0
