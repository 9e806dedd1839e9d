#!/bin/bash
# .ci/start-methods.sh: the start methods. Run it in a configured build
# directory of subiter (the Check suites built, e.g. `make check TESTS=`):
#
#     ../../.ci/start-methods.sh
#
# It runs tests/check_start (every method: arg bytes, the FORKSERVER and
# SPAWN errors, the zygote, pools, the threaded host), then the core and
# pool suites again with SUBITER_TEST_START_METHOD=forkserver and =spawn.
# Every suite must pass under every method; a suite that does not apply
# to a method exits 77 and is reported as skipped with its reason
# (check_fallback under forkserver: its workers always have a pidfd).
# METHODS (default "forkserver spawn") chooses the methods; RUNNER is put
# before each suite (e.g. valgrind and its options).
#
# Exit: 0 when check_start and every suite pass.

set -u

SUITES="check_api check_items check_misuse check_error check_proc
check_proc_env check_hostile check_errinfo check_identity check_alloc
check_noalloc check_fallback check_pool_shards check_pool_tasks
check_pool_control check_pool_faults"

export CK_FORK=yes CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-30}
rc=0

summary() {
    grep -E '^[0-9]+%: Checks: ' "$1" | tail -n 1
}

echo "== tests/check_start"
if timeout -k 10 300 ./tests/check_start >start.log 2>&1; then
    echo "PASS check_start: $(summary start.log)"
else
    echo "FAIL check_start: $(summary start.log)"
    grep -E ':[FE]:' start.log | head -n 20
    rc=1
fi

for m in ${METHODS:-forkserver spawn}; do
    echo "== SUBITER_TEST_START_METHOD=$m"
    for s in $SUITES; do
        log=start-$m-$s.log
        SUBITER_TEST_START_METHOD=$m timeout -k 10 600 ${RUNNER:-} \
            ./tests/$s >"$log" 2>&1
        st=$?
        if test "$st" -eq 77; then
            echo "skip $m $s: $(grep -m 1 '^SKIP' "$log")"
            continue
        fi
        if test "$st" -eq 0; then
            echo "PASS $m $s: $(summary "$log")"
        else
            echo "FAIL $m $s: $(summary "$log")"
            grep -E ':[FE]:' "$log" | head -n 20
            rc=1
        fi
    done
done
exit "$rc"
