#!/bin/bash
# .ci/mpirun.sh: ranks from real and simulated launchers. Run from a build
# directory configured for the tests (the CI's _ci/mpirun):
#   - two ranks under Open MPI's mpirun (tests/check-mpirun.sh) cover a
#     dataset exactly once, with a checkpoint and a resume on the way;
#   - the same program as two srun ranks and two torchrun ranks, with only
#     their variables set, does the same;
#   - the loader example under mpirun: each rank reads and checks its half
#     of the shards, with --resume.
# Needs openmpi-bin (the CI's dependency step installs it). Exit 0 or 1.

set -u
n=1000
rc=0

make -j2 tests/rank-cover >/dev/null || exit 1
make check TESTS=tests/check-mpirun.sh || rc=1
cat tests/check-mpirun.log 2>/dev/null | grep -E '^(PASS|FAIL|SKIP|ERROR)'
if grep -q '^SKIP' tests/check-mpirun.log 2>/dev/null; then
    echo "FAIL: mpirun is missing; install openmpi-bin"
    rc=1
fi

# launcher NAME RANKVAR SIZEVAR: two ranks with only those variables.
launcher() {
    local name=$1 rv=$2 sv=$3 dir r
    dir=$(mktemp -d) || return 1
    for r in 0 1; do
        env -u OMPI_COMM_WORLD_RANK -u OMPI_COMM_WORLD_SIZE -u PMI_RANK \
            -u PMI_SIZE -u SLURM_PROCID -u SLURM_NTASKS -u RANK -u WORLD_SIZE \
            "$rv=$r" "$sv=2" ./tests/rank-cover $n "$dir" &
    done
    wait
    if seq 0 $((n - 1)) | cmp -s - <(sort -n "$dir"/rank-0 "$dir"/rank-1); then
        echo "PASS: $name ($rv/$sv): 2 ranks covered $n items exactly once"
    else
        echo "FAIL: $name ($rv/$sv): the ranks did not cover 0..$((n - 1))"
        rc=1
    fi
    rm -rf "$dir"
}
launcher srun SLURM_PROCID SLURM_NTASKS
launcher torchrun RANK WORLD_SIZE

# The loader: one run makes the dataset, then two ranks read it.
make -j2 examples/loader/loader >/dev/null || exit 1
dir=$(mktemp -d) || exit 1
set -- --dir "$dir/data" --records 40000 --item-bytes 128 --workers 2
if ./examples/loader/loader "$@" >"$dir/make.txt" 2>&1 &&
    mpirun --allow-run-as-root --oversubscribe -np 2 ./examples/loader/loader \
        "$@" --resume "$dir/ck" >"$dir/ranks.txt" 2>&1 &&
    test "$(grep -c '^shards:      4 of 4 complete' "$dir/ranks.txt")" = 2 &&
    test "$(grep -c '^records:     20000 of 20000 ' "$dir/ranks.txt")" = 2; then
    echo "PASS: loader under mpirun: 2 ranks, 4 shards each, all checked"
else
    echo "FAIL: loader under mpirun:"
    cat "$dir/make.txt" "$dir/ranks.txt"
    rc=1
fi
rm -rf "$dir"
exit $rc
