#!/bin/sh
# check-nofork.sh: CK_FORK from the environment is honoured. With
# CK_FORK=no a suite runs every case in its own process (as README's
# debugging section says, for gdb); with CK_FORK=yes, and with CK_FORK
# unset, each case runs in a child. The suite's fork probe case (added
# by tu_run() when TU_FORK_PROBE is set) prints which one it was.
#
# Environment (set by `make check`): top_builddir.
# Exit: 0 as expected, 1 not, 99 harness error.

top_builddir=${top_builddir:-.}
suite="$top_builddir/tests/check_ring"

if test ! -x "$suite"; then
    echo "ERROR: $suite not built"
    exit 99
fi

status=0
# expect MODE WHERE: run the suite with CK_FORK=MODE ("unset": without
# CK_FORK); the probe must say it ran WHERE, and the suite must pass.
expect() {
    if test "$1" = unset; then
        out=$(unset CK_FORK; TU_FORK_PROBE=1 "$suite" 2>&1)
    else
        out=$(CK_FORK=$1 TU_FORK_PROBE=1 "$suite" 2>&1)
    fi
    rc=$?
    probe=$(printf '%s\n' "$out" | grep '^fork probe: ')
    summary=$(printf '%s\n' "$out" | grep -E '^[0-9]+%: Checks: ')
    echo "CK_FORK=$1: $probe"
    echo "CK_FORK=$1: $summary (exit $rc)"
    case $probe in
    *"ran $2 "*) ;;
    *)
        echo "FAIL: CK_FORK=$1: the probe case did not run $2"
        status=1
        ;;
    esac
    if test "$rc" -ne 0; then
        echo "FAIL: CK_FORK=$1: the suite failed"
        printf '%s\n' "$out" | tail -n 20
        status=1
    fi
}

expect no "in the runner's process"
expect yes "in a child of the runner"
expect unset "in a child of the runner"

test "$status" -eq 0 && echo "PASS: CK_FORK is honoured"
exit $status
