#!/bin/sh
# check-loader-resume.sh: the loader example's --resume. A run that gets
# Ctrl-C (SIGINT) after its first save exits 130 with the file saved; a
# second run with the same file goes on from there and checks every
# record of the dataset (the loader checks each shard's records in
# order, so a lost or repeated one fails it), then removes the file.
#
# Environment (set by `make check`): top_builddir.
# Exit: 0 pass, 1 fail, 99 harness error.

top_builddir=${top_builddir:-.}
loader="$top_builddir/examples/loader/loader"
n=100000

if test ! -x "$loader"; then
    echo "ERROR: $loader not built"
    exit 99
fi
dir=$(mktemp -d) || exit 99
trap 'rm -rf "$dir"' EXIT
set -- --dir "$dir/data" --records $n --item-bytes 256 --workers 2

"$loader" "$@" >"$dir/make.txt" 2>&1 || {
    echo "FAIL: making the dataset"; cat "$dir/make.txt"; exit 1; }

"$loader" "$@" --resume "$dir/ck" --checkpoint-every 200 \
    >"$dir/first.txt" 2>&1 &
pid=$!
i=0
while test ! -f "$dir/ck" && test $i -lt 1000; do
    sleep 0.01
    i=$((i + 1))
done
kill -INT $pid 2>/dev/null
wait $pid
rc=$?
if test $rc -ne 130; then
    echo "FAIL: the interrupted run exited $rc, not 130"
    cat "$dir/first.txt"
    exit 1
fi
test -s "$dir/ck" || { echo "FAIL: nothing saved"; exit 1; }
grep 'interrupted after' "$dir/first.txt"

"$loader" "$@" --resume "$dir/ck" >"$dir/second.txt" 2>&1
rc=$?
grep -E 'resuming|^records:|^shards:' "$dir/second.txt"
if test $rc -ne 0 ||
    ! grep -q "^records:     $n of $n " "$dir/second.txt" ||
    ! grep -q 'resuming after' "$dir/second.txt"; then
    echo "FAIL: the resumed run (exit $rc):"
    cat "$dir/second.txt"
    exit 1
fi
if test -e "$dir/ck"; then
    echo "FAIL: the resume file is still there after the run"
    exit 1
fi
echo "PASS: interrupted, saved, resumed: $n of $n records checked"
