#!/bin/bash
# .ci/install-check.sh: install subiter into a prefix and use it as a
# consumer would. Run it in an empty build directory:
#
#     mkdir -p _ci/install && cd _ci/install && ../../.ci/install-check.sh
#
# It configures the source tree this script belongs to (out of tree, into
# the current directory), installs into ./prefix and checks that:
#   - libsubiter.so is installed and no generated protobuf-c file is;
#   - the library exports only subiter_* symbols (subiter_open among them);
#   - every example program builds from its sources with
#     `pkg-config --cflags --libs subiter` alone, links the installed
#     library, and behaves as documented when run.
#
# An example program NAME is examples/NAME.c, or all of examples/NAME/*.c
# when that folder exists.
#
# Environment: JOBS (make -j, default 2), CC (default cc).
# Exit: 0 when everything holds, non-zero at the first failure.

set -eu

SRC=$(cd "$(dirname "$0")/.." && pwd)
JOBS=${JOBS:-2}
CC=${CC:-cc}
prefix=$(pwd)/prefix

"$SRC/configure" --prefix="$prefix" --disable-tests
make -j"$JOBS"
make install

echo "== installed files"
(cd "$prefix" && find . -type f -o -type l | sort)
so=$prefix/lib/libsubiter.so
test -e "$so"
if find "$prefix" -name "*pb-c*" | grep .; then
    echo "generated protobuf-c files were installed"
    exit 1
fi

echo "== nm -D --defined-only $so"
nm -D --defined-only "$so"
# Type A entries are the version nodes (SUBITER_0.1).
syms=$(nm -D --defined-only "$so" |
    awk 'NF >= 3 && $(NF - 1) != "A" { sub(/@.*/, "", $NF); print $NF }')
test -n "$syms"
bad=$(printf '%s\n' "$syms" | grep -v '^subiter_' || true)
if test -n "$bad"; then
    echo "exported symbols outside subiter_*:"
    printf '%s\n' "$bad"
    exit 1
fi
printf '%s\n' "$syms" | grep -qx subiter_open
echo "only subiter_* exported ($(printf '%s\n' "$syms" | wc -l) symbols)"

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
flags=$(pkg-config --cflags --libs subiter)
echo "pkg-config --modversion subiter: $(pkg-config --modversion subiter)"
echo "pkg-config --cflags --libs subiter: $flags"
export LD_LIBRARY_PATH=$prefix/lib

# build NAME: compile example NAME with the pkg-config flags only, and
# check that it links the installed library.
build() {
    local name=$1 srcs=()

    if test -d "$SRC/examples/$name"; then
        srcs=("$SRC/examples/$name"/*.c)
    else
        srcs=("$SRC/examples/$name.c")
    fi
    test -f "${srcs[0]}"
    echo "== $CC -o $name ${srcs[*]#"$SRC"/} \$(pkg-config --cflags --libs subiter)"
    # $flags is a list of options: split it on purpose.
    # shellcheck disable=SC2086
    "$CC" -o "$name" "${srcs[@]}" $flags
    ldd "./$name" | grep "$prefix/lib/libsubiter"
}

# fails_with STATUS COMMAND...: COMMAND must exit with exactly STATUS.
fails_with() {
    local want=$1 rc=0
    shift
    "$@" || rc=$?
    if test "$rc" -ne "$want"; then
        echo "expected exit $want, got $rc: $*"
        return 1
    fi
}

# Every example is built, including ones the runs below do not know yet.
examples=()
for p in "$SRC"/examples/*.c "$SRC"/examples/*/; do
    test -e "$p" || continue
    p=${p%/}
    p=${p##*/}
    examples+=("${p%.c}")
done
test "${#examples[@]}" -gt 0
for name in "${examples[@]}"; do
    build "$name"
done

echo "== running the examples"
./stream --records 20000 --item-bytes 512
fails_with 2 ./stream --records 0 2>/dev/null

./oneshot 1000000
# Killed at its time limit: exit 1.
fails_with 1 ./oneshot 1000000000000 --limit-ms 200

./loader --records 20000 --dir "$(pwd)/loader-data"
# One shard cut short: named on stderr, the others finish, exit 1.
fails_with 1 ./loader --records 20000 --dir "$(pwd)/loader-data" --corrupt
fails_with 2 ./loader --workers 0 2>/dev/null

# A worker kills itself mid-task: the task is retried, all succeed.
./tasks --tasks 8 | grep "retried 1"
# The last task hangs: it times out, exit 1.
fails_with 1 ./tasks --tasks 4 --no-kill --hang --timeout-ms 300

# Two loaders and a task pool in one epoll loop; interrupted by its own
# SIGINT, it finalizes cleanly: exit 130.
./evloop --records 20000 --tasks 8
fails_with 130 ./evloop --records 1000000 --tasks 64 --interrupt-ms 200

# Threads allocate and hold a lock while FORKSERVER workers start.
./threaded 20 | grep "opens=20 sum="

echo "install check OK (examples: ${examples[*]})"
