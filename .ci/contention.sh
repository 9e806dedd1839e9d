#!/bin/bash
# .ci/contention.sh: print the waiting-under-contention figures once. Run
# it in an empty build directory:
#
#     mkdir -p _ci/contention && cd _ci/contention && ../../.ci/contention.sh
#
# It configures the source tree this script belongs to (out of tree, into
# the current directory), builds bench/subiter-bench and runs
# `subiter-bench --contention`, which starts `stress-ng --cpu 4` itself
# (Debian package stress-ng; without it the bench prints one skipped=1
# line) and prints, per round and over all rounds, 64 B items through
# subiter against a naive pipe and the delay from a worker's death to
# SUBITER_ECHILD, then the bench=ratio lines with their targets.
#
# The figures are printed, not enforced: they depend on the machine's
# load. The exit status is non-zero only when the bench could not run
# (a build failure, an error= line, a hang).
#
# Environment: JOBS (make -j, default 2).

set -eu

SRC=$(cd "$(dirname "$0")/.." && pwd)
JOBS=${JOBS:-2}

"$SRC/configure" --disable-tests >/dev/null
make -j"$JOBS" bench/subiter-bench
./bench/subiter-bench --contention | tee contention.txt
! grep -q ' error=' contention.txt
