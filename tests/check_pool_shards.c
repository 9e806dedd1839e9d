/* check_pool_shards.c: sharded iteration over a pool of workers:
 * unordered and round-robin merges, ranks, re-iteration and stop, a
 * failing or dying shard, restarted shards, and a worker that dies
 * outside an iteration. Generators report through shared pages, never
 * ck_assert. Every case checks that no child, fd or mapping is left. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool.h" /* first: the internal headers handle_impl.h needs */
#include "handle_impl.h"
#include "testpool.h"

/* Shards of unequal length: worker k yields 1000 k + j for j < 3 (k + 1). */
TU_EXPORT(int gen_uneven(subiter_gen *g, void *arg))
{
    long k = (long)subiter_worker_id(g), j, v;
    int r;

    (void)arg;
    for (j = 0; j < 3 * (k + 1); j++) {
        v = 1000 * k + j;
        if ((r = subiter_yield(g, &v, sizeof v)) != 0) {
            return r;
        }
    }
    return 0;
}

/* One item: the worker id (unsigned) followed by the whole input. */
TU_EXPORT(int gen_echo(subiter_gen *g, void *arg))
{
    unsigned id = subiter_worker_id(g);
    const void *in;
    size_t len;
    void *buf;
    int r;

    (void)arg;
    in = subiter_input(g, &len);
    if ((r = subiter_reserve(g, sizeof id + len, &buf)) != 0) {
        return r;
    }
    memcpy(buf, &id, sizeof id);
    if (len > 0) {
        memcpy((char *)buf + sizeof id, in, len);
    }
    return subiter_commit(g, sizeof id + len);
}

/* Fails once the test has set `release` (arg: struct tp_shared *): workers
 * forked after that cannot start. */
TU_EXPORT(int init_fail_late(subiter_gen *g, void *arg))
{
    struct tp_shared *sh = arg;

    if (atomic_load(&sh->release) != 0) {
        return subiter_fail(g, "no more workers");
    }
    return 0;
}

/* One whole clean run: every item once (in order 0, 1, ... if ordered). */
static void run_plain(subiter_pool *p, unsigned workers, bool ordered)
{
    int seen[N_ITEMS];
    long seq[N_ITEMS], nseq, i;

    memset(seen, 0, sizeof seen);
    tp_start_plain(p);
    TP_EXPECT(p, tp_collect(p, workers, 0, 1, N_ITEMS, seen, seq, &nseq), 0);
    ck_assert_int_eq(nseq, N_ITEMS);
    tp_assert_each_once(seen, N_ITEMS);
    if (ordered) {
        /* Worker k's j-th item is workers x j + k: the round robin is
         * 0, 1, 2, ... */
        for (i = 0; i < N_ITEMS; i++) {
            REQUIRE_EQ(seq[i], i);
        }
    }
}

static void sharded_unordered(unsigned workers)
{
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(workers, &wo);
    struct tp_shared *sh = tp_shared_new();
    subiter_pool *p;
    int seen[N_ITEMS];
    long nseq;
    unsigned i;

    po.order = SUBITER_POOL_UNORDERED;
    ck_assert_int_eq(subiter_pool_open(&p, tp_gen_shard, sh, &po), 0);
    for (i = 0; i < workers; i++) {
        ck_assert_int_gt(subiter_pool_worker_pid(p, i), 0);
    }
    ck_assert_int_eq(subiter_pool_worker_pid(p, workers), 0);
    memset(seen, 0, sizeof seen);
    tp_start_plain(p);
    TP_EXPECT(p, tp_collect(p, workers, 0, 1, N_ITEMS, seen, NULL, &nseq), 0);
    ck_assert_int_eq(nseq, N_ITEMS);
    tp_assert_each_once(seen, N_ITEMS);
    tp_close_clean(p);
    tu_shared_free(sh, PAGE);
}

START_TEST(test_pool_shards_unordered_union)
{
    struct tu_snapshot snap;

    tu_snapshot(&snap);
    sharded_unordered(2);
    sharded_unordered(3);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_shards_ordered_round_robin)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(3, &wo);
    struct tp_shared *sh;
    subiter_pool *p;
    int seen[N_ITEMS];
    long seq[N_ITEMS], again[N_ITEMS], n1, n2, i;

    tu_snapshot(&snap);
    sh = tp_shared_new();
    ck_assert_int_eq(subiter_pool_open(&p, tp_gen_shard, sh, &po), 0);

    /* Two runs: the same sequence, the round robin 0, 1, 2, ... (shard 0
     * has one item more than the others: 999 comes alone at the end). */
    memset(seen, 0, sizeof seen);
    tp_start_plain(p);
    TP_EXPECT(p, tp_collect(p, 3, 0, 1, N_ITEMS, seen, seq, &n1), 0);
    memset(seen, 0, sizeof seen);
    tp_start_plain(p);
    TP_EXPECT(p, tp_collect(p, 3, 0, 1, N_ITEMS, seen, again, &n2), 0);
    ck_assert_int_eq(n1, N_ITEMS);
    ck_assert_int_eq(n2, N_ITEMS);
    tp_assert_each_once(seen, N_ITEMS);
    for (i = 0; i < N_ITEMS; i++) {
        REQUIRE_EQ(seq[i], i);
    }
    ck_assert(memcmp(seq, again, sizeof seq) == 0);
    run_plain(p, 3, true);
    tp_close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_shards_ordered_skips_ended_shards)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(3, &wo);
    subiter_pool *p;
    subiter_pool_item item;
    long want[18], v, j, k, n = 0, got = 0;
    int run, r;

    tu_snapshot(&snap);
    /* Worker k's shard has 3 (k + 1) items: rounds 0-2 take all three,
     * 3-5 workers 1 and 2, 6-8 worker 2 alone. */
    for (j = 0; j < 9; j++) {
        for (k = 0; k < 3; k++) {
            if (j < 3 * (k + 1)) {
                want[n++] = 1000 * k + j;
            }
        }
    }
    ck_assert_int_eq(n, 18);
    ck_assert_int_eq(subiter_pool_open(&p, gen_uneven, NULL, &po), 0);
    for (run = 0; run < 2; run++) {
        ck_assert_int_eq(subiter_pool_start(p, NULL, 0), 0);
        for (got = 0; (r = subiter_pool_next(p, &item)) == 1; got++) {
            ck_assert_int_lt(got, n);
            ck_assert_uint_eq(item.len, sizeof v);
            memcpy(&v, item.data, sizeof v);
            ck_assert_int_eq(v, want[got]);
            ck_assert_uint_eq(item.worker, (unsigned)(v / 1000));
        }
        ck_assert_int_eq(r, 0);
        ck_assert_int_eq(got, n);
    }
    tp_close_clean(p);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_shards_reiterate_and_stop)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(2, &wo);
    struct tp_shared *sh;
    subiter_pool *p;
    subiter_pool_item item;
    pid_t pids[2];
    long v;
    int i;

    tu_snapshot(&snap);
    sh = tp_shared_new();
    ck_assert_int_eq(subiter_pool_open(&p, tp_gen_shard, sh, &po), 0);
    pids[0] = subiter_pool_worker_pid(p, 0);
    pids[1] = subiter_pool_worker_pid(p, 1);
    ck_assert_int_gt(pids[0], 0);
    ck_assert_int_gt(pids[1], 0);
    ck_assert_int_ne(pids[0], pids[1]);
    run_plain(p, 2, true);
    run_plain(p, 2, true);

    /* Stop midway (the shards are far longer than the buffers), then a
     * whole run again, from the start. */
    tp_start_plain(p);
    for (i = 0; i < 10; i++) {
        ck_assert_int_eq(subiter_pool_next(p, &item), 1);
        memcpy(&v, item.data, sizeof v);
        ck_assert_int_eq(v, i);
    }
    ck_assert_int_eq(subiter_pool_stop(p), 0);
    ck_assert_int_eq(subiter_pool_stop(p), 0);
    run_plain(p, 2, true);

    /* Re-iteration reuses the workers. */
    ck_assert_int_eq(subiter_pool_worker_pid(p, 0), pids[0]);
    ck_assert_int_eq(subiter_pool_worker_pid(p, 1), pids[1]);
    ck_assert_uint_eq(tp_stats(p).replaced, 0);
    tp_close_clean(p);
    tu_assert_gone(pids[0]);
    tu_assert_gone(pids[1]);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_shards_input_reaches_every_worker)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(3, &wo);
    static unsigned char in[SUBITER_INPUT_MAX];
    subiter_pool *p;
    subiter_pool_item item;
    size_t i, sizes[3] = {0, 7, SUBITER_INPUT_MAX};
    unsigned id, mask;
    int s, r;

    tu_snapshot(&snap);
    for (i = 0; i < sizeof in; i++) {
        in[i] = (unsigned char)(i * 7 + (i >> 8));
    }
    po.order = SUBITER_POOL_UNORDERED;
    ck_assert_int_eq(subiter_pool_open(&p, gen_echo, NULL, &po), 0);
    for (s = 0; s < 3; s++) {
        ck_assert_int_eq(subiter_pool_start(p, sizes[s] ? in : NULL, sizes[s]),
                         0);
        mask = 0;
        while ((r = subiter_pool_next(p, &item)) == 1) {
            ck_assert_uint_eq(item.len, sizeof id + sizes[s]);
            memcpy(&id, item.data, sizeof id);
            ck_assert_uint_eq(id, item.worker);
            ck_assert_uint_eq(mask & (1u << id), 0);
            mask |= 1u << id;
            ck_assert(
                memcmp((const char *)item.data + sizeof id, in, sizes[s]) == 0);
        }
        ck_assert_int_eq(r, 0);
        ck_assert_uint_eq(mask, 7);
    }
    tp_close_clean(p);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_shards_ranks_cover_once)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(2, &wo);
    struct tp_shared *sh;
    subiter_pool *p[2];
    struct tp_shard_in in = {N_ITEMS, -1, SHARD_NONE, 0, 0};
    int seen[N_ITEMS];
    long n[2];
    unsigned rank;

    tu_snapshot(&snap);
    sh = tp_shared_new();
    po.world_size = 2;
    po.order = SUBITER_POOL_UNORDERED;
    for (rank = 0; rank < 2; rank++) {
        po.rank = rank;
        ck_assert_int_eq(subiter_pool_open(&p[rank], tp_gen_shard, sh, &po), 0);
    }
    /* Both run at once; tp_collect() checks each item's shard. */
    memset(seen, 0, sizeof seen);
    for (rank = 0; rank < 2; rank++) {
        ck_assert_int_eq(subiter_pool_start(p[rank], &in, sizeof in), 0);
    }
    for (rank = 0; rank < 2; rank++) {
        TP_EXPECT(
            p[rank],
            tp_collect(p[rank], 2, rank, 2, N_ITEMS, seen, NULL, &n[rank]), 0);
    }
    ck_assert_int_eq(n[0], N_ITEMS / 2);
    ck_assert_int_eq(n[1], N_ITEMS / 2);
    tp_assert_each_once(seen, N_ITEMS);
    tp_close_clean(p[0]);
    tp_close_clean(p[1]);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_shards_shard_fails)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(3, &wo);
    struct tp_shared *sh;
    subiter_pool *p;
    struct tp_shard_in in = {N_ITEMS, 1, SHARD_FAIL, 5, 0};
    int seen[N_ITEMS], order;
    pid_t pids[3];
    unsigned i;

    tu_snapshot(&snap);
    sh = tp_shared_new();
    for (order = 0; order < 2; order++) {
        po.order = order;
        ck_assert_int_eq(subiter_pool_open(&p, tp_gen_shard, sh, &po), 0);
        for (i = 0; i < 3; i++) {
            pids[i] = subiter_pool_worker_pid(p, i);
        }
        memset(seen, 0, sizeof seen);
        ck_assert_int_eq(subiter_pool_start(p, &in, sizeof in), 0);
        TP_EXPECT(p, tp_collect(p, 3, 0, 1, N_ITEMS, seen, NULL, NULL),
                  SUBITER_EITER);
        tp_assert_errmsg_has(p, "shard 1 broke after 5");
        /* The pool is usable; a generator's failure kills nobody. */
        run_plain(p, 3, order == SUBITER_POOL_ORDERED);
        for (i = 0; i < 3; i++) {
            ck_assert_int_eq(subiter_pool_worker_pid(p, i), pids[i]);
        }
        ck_assert_uint_eq(tp_stats(p).replaced, 0);
        tp_close_clean(p);
    }
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

/* Worker 0 yields its first item, worker 1 none; both wait for `release`,
 * then worker 0 yields the rest of its shard of [0, N_ITEMS) (in steps
 * of 2) and worker 1 fails. Each counts itself in `started` once past
 * the gate. */
TU_EXPORT(int gen_gated_fail(subiter_gen *g, void *arg))
{
    struct tp_shared *sh = arg;
    unsigned id = subiter_worker_id(g);
    long i;
    int r;

    if (id == 0 && (r = subiter_yield(g, &(long){0}, sizeof(long))) != 0) {
        return r;
    }
    while (atomic_load(&sh->release) == 0) {
        usleep(1000);
    }
    atomic_fetch_add(&sh->started, 1);
    if (id == 1) {
        return subiter_fail(g, "gated failure");
    }
    for (i = 2; i < N_ITEMS; i += 2) {
        if ((r = subiter_yield(g, &i, sizeof i)) != 0) {
            return r;
        }
    }
    return 0;
}

static struct tp_shared *gated_sh;

/* Before the arm that follows worker 0's first item (the merge waits for
 * worker 1 in turn): open the gate and let both workers end and wait in
 * Stand By, their last records published while the parent was not armed,
 * so neither will ring it. */
static void release_before_arm(subiter_pool *p)
{
    unsigned i;
    int k;

    if (p->st != POOL_ITERATING || p->turn != 1 || p->w[1].armed ||
        atomic_load(&gated_sh->release) != 0) {
        return;
    }
    atomic_store(&gated_sh->release, 1);
    ck_assert(tu_wait_flag(&gated_sh->started, 2, WAIT_MS));
    for (i = 0; i < 2; i++) {
        _Atomic uint32_t *sleeping = &p->w[i].h->reg.shm->child_sleeping;

        for (k = 0; k < WAIT_MS && atomic_load(sleeping) == 0; k++) {
            tu_sleep_ms(1);
        }
        ck_assert_msg(atomic_load(sleeping) != 0, "worker %u never slept", i);
    }
}

/* The look right after the arm finds worker 1's failure, which stops the
 * shards: worker 0's records, published before the arm, still end its
 * stop (a pool that slept after that look waited forever). Both merges. */
START_TEST(test_pool_shards_fail_found_after_arm)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(2, &wo);
    subiter_pool *p;
    int seen[N_ITEMS], order;

    tu_snapshot(&snap);
    gated_sh = tp_shared_new();
    pool__before_arm = release_before_arm;
    for (order = 0; order < 2; order++) {
        po.order = order;
        atomic_store(&gated_sh->release, 0);
        atomic_store(&gated_sh->started, 0);
        ck_assert_int_eq(subiter_pool_open(&p, gen_gated_fail, gated_sh, &po),
                         0);
        memset(seen, 0, sizeof seen);
        ck_assert_int_eq(subiter_pool_start(p, NULL, 0), 0);
        TP_EXPECT(p, tp_collect(p, 2, 0, 1, N_ITEMS, seen, NULL, NULL),
                  SUBITER_EITER);
        ck_assert_int_eq(atomic_load(&gated_sh->release), 1);
        tp_assert_errmsg_has(p, "gated failure");
        ck_assert_int_eq(seen[0], 1);
        tp_close_clean(p);
    }
    pool__before_arm = NULL;
    tu_shared_free(gated_sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

/* Shard 1 dies mid-iteration (`how`, or SIGKILL from us when how is
 * SHARD_PAUSE); next() says SUBITER_ECHILD naming `sig`; then a whole run
 * works, on a new worker 1. */
static void shard_dies(long how, const char *sig)
{
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(3, &wo);
    struct tp_shared *sh = tp_shared_new();
    subiter_pool *p;
    struct tp_shard_in in = {N_ITEMS, 1, how, 5, 0};
    int seen[N_ITEMS];
    pid_t pids[3];
    unsigned i;

    ck_assert_int_eq(subiter_pool_open(&p, tp_gen_shard, sh, &po), 0);
    for (i = 0; i < 3; i++) {
        pids[i] = subiter_pool_worker_pid(p, i);
    }
    memset(seen, 0, sizeof seen);
    ck_assert_int_eq(subiter_pool_start(p, &in, sizeof in), 0);
    if (how == SHARD_PAUSE) {
        ck_assert(tu_wait_flag(&sh->started, 1, WAIT_MS));
        ck_assert_int_eq(kill(pids[1], SIGKILL), 0);
    }
    TP_EXPECT(p, tp_collect(p, 3, 0, 1, N_ITEMS, seen, NULL, NULL),
              SUBITER_ECHILD);
    tp_assert_errmsg_has(p, sig);
    tp_assert_errmsg_has(p, "worker 1");
    tu_assert_gone(pids[1]);

    run_plain(p, 3, true);
    ck_assert_int_gt(subiter_pool_worker_pid(p, 1), 0);
    ck_assert_int_ne(subiter_pool_worker_pid(p, 1), pids[1]);
    ck_assert_int_eq(subiter_pool_worker_pid(p, 0), pids[0]);
    ck_assert_int_eq(subiter_pool_worker_pid(p, 2), pids[2]);
    ck_assert_uint_eq(tp_stats(p).replaced, 1);
    tp_close_clean(p);
    tu_shared_free(sh, PAGE);
}

START_TEST(test_pool_shards_shard_segv)
{
    struct tu_snapshot snap;

    tu_snapshot(&snap);
    shard_dies(SHARD_SEGV, "SIGSEGV");
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_shards_shard_sigkilled)
{
    struct tu_snapshot snap;

    tu_snapshot(&snap);
    shard_dies(SHARD_PAUSE, "SIGKILL");
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_shards_restart_shards)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(3, &wo);
    struct tp_shared *sh;
    subiter_pool *p;
    /* Shard 1 crashes after 100 items, the first time only. */
    struct tp_shard_in in = {N_ITEMS, 1, SHARD_SEGV, 100, 1};
    int seen[N_ITEMS], order;
    long seq[N_ITEMS], nseq, i;
    pid_t pid1;

    tu_snapshot(&snap);
    sh = tp_shared_new();
    po.restart_shards = 1;
    for (order = 0; order < 2; order++) {
        atomic_store(&sh->attempts, 0);
        po.order = order;
        ck_assert_int_eq(subiter_pool_open(&p, tp_gen_shard, sh, &po), 0);
        pid1 = subiter_pool_worker_pid(p, 1);
        memset(seen, 0, sizeof seen);
        ck_assert_int_eq(subiter_pool_start(p, &in, sizeof in), 0);
        TP_EXPECT(p, tp_collect(p, 3, 0, 1, N_ITEMS, seen, seq, &nseq), 0);
        ck_assert_int_eq(atomic_load(&sh->attempts), 2);
        ck_assert_int_eq(nseq, N_ITEMS);
        tp_assert_each_once(seen, N_ITEMS);
        if (order == SUBITER_POOL_ORDERED) {
            /* Not even the order shows the restart. */
            for (i = 0; i < N_ITEMS; i++) {
                REQUIRE_EQ(seq[i], i);
            }
        }
        tu_assert_gone(pid1);
        ck_assert_int_gt(subiter_pool_worker_pid(p, 1), 0);
        ck_assert_int_ne(subiter_pool_worker_pid(p, 1), pid1);
        ck_assert_uint_eq(tp_stats(p).replaced, 1);
        run_plain(p, 3, order == SUBITER_POOL_ORDERED);
        tp_close_clean(p);
    }
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_shards_restart_gives_up)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(2, &wo);
    struct tp_shared *sh;
    subiter_pool *p;
    /* Shard 1 crashes after 10 items, every time. */
    struct tp_shard_in in = {N_ITEMS, 1, SHARD_SEGV, 10, 0};
    int seen[N_ITEMS];

    tu_snapshot(&snap);
    sh = tp_shared_new();
    po.restart_shards = 1;
    po.max_retries = 2;
    ck_assert_int_eq(subiter_pool_open(&p, tp_gen_shard, sh, &po), 0);
    memset(seen, 0, sizeof seen);
    ck_assert_int_eq(subiter_pool_start(p, &in, sizeof in), 0);
    TP_EXPECT(p, tp_collect(p, 2, 0, 1, N_ITEMS, seen, NULL, NULL),
              SUBITER_ECHILD);
    tp_assert_errmsg_has(p, "SIGSEGV");
    tp_assert_errmsg_has(p, "worker 1");
    /* Two reruns, then the replacement after the last death. */
    ck_assert_uint_eq(tp_stats(p).replaced, 3);
    run_plain(p, 2, true);
    tp_close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_shards_rerun_cannot_start)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(2, &wo);
    struct tp_shared *sh;
    subiter_pool *p;
    /* Shard 1 crashes after 10 items, the first time only. */
    struct tp_shard_in in = {N_ITEMS, 1, SHARD_SEGV, 10, 1};
    int seen[N_ITEMS];

    tu_snapshot(&snap);
    sh = tp_shared_new();
    wo.init = init_fail_late;
    po.restart_shards = 1;
    ck_assert_int_eq(subiter_pool_open(&p, tp_gen_shard, sh, &po), 0);
    atomic_store(&sh->release, 1);
    memset(seen, 0, sizeof seen);
    ck_assert_int_eq(subiter_pool_start(p, &in, sizeof in), 0);
    /* The replacement's initializer fails: the rerun cannot start. */
    TP_EXPECT(p, tp_collect(p, 2, 0, 1, N_ITEMS, seen, NULL, NULL),
              SUBITER_EINIT);
    tp_assert_errmsg_has(p, "rerun");
    tp_assert_errmsg_has(p, "no more workers");
    ck_assert_int_eq(subiter_pool_worker_pid(p, 1), 0);
    /* Still no worker can start; then one can, and all is well. */
    ck_assert_int_eq(subiter_pool_start(p, &in, sizeof in), SUBITER_EINIT);
    atomic_store(&sh->release, 0);
    run_plain(p, 2, true);
    tp_close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

/* With restart_shards, each replacement that dies in its initializer
 * counts one rerun: the third rerun runs the shard and nothing is lost or
 * repeated; when every replacement dies, the reruns run out and the
 * iteration fails with the reason. */
START_TEST(test_pool_shards_rerun_dies_in_init)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(2, &wo);
    struct tp_shared *sh;
    subiter_pool *p;
    /* Shard 1 crashes after 10 items, the first time only. */
    struct tp_shard_in in = {N_ITEMS, 1, SHARD_SEGV, 10, 1};
    int seen[N_ITEMS], order;
    long seq[N_ITEMS], nseq, i;

    tu_snapshot(&snap);
    sh = tp_shared_new();
    wo.init = tp_init_gated;
    po.restart_shards = 1;
    po.max_retries = 3;
    for (order = 0; order < 2; order++) {
        po.order = order;
        atomic_store(&sh->attempts, 0);
        atomic_store(&sh->deaths, 0);
        ck_assert_int_eq(subiter_pool_open(&p, tp_gen_shard, sh, &po), 0);
        atomic_store(&sh->deaths, 2);
        memset(seen, 0, sizeof seen);
        ck_assert_int_eq(subiter_pool_start(p, &in, sizeof in), 0);
        TP_EXPECT(p, tp_collect(p, 2, 0, 1, N_ITEMS, seen, seq, &nseq), 0);
        ck_assert_int_eq(nseq, N_ITEMS);
        tp_assert_each_once(seen, N_ITEMS);
        for (i = 0; order == SUBITER_POOL_ORDERED && i < N_ITEMS; i++) {
            REQUIRE_EQ(seq[i], i);
        }
        ck_assert_uint_eq(tp_stats(p).replaced, 3);
        atomic_store(&sh->attempts, 0);
        atomic_store(&sh->deaths, 1000);
        memset(seen, 0, sizeof seen);
        ck_assert_int_eq(subiter_pool_start(p, &in, sizeof in), 0);
        TP_EXPECT(p, tp_collect(p, 2, 0, 1, N_ITEMS, seen, NULL, NULL),
                  SUBITER_ECHILD);
        tp_assert_errmsg_has(p, "rerun 3 of 3");
        tp_assert_errmsg_has(p, "exit");
        atomic_store(&sh->deaths, 0);
        run_plain(p, 2, order == SUBITER_POOL_ORDERED);
        tp_close_clean(p);
    }
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_shards_idle_death_replaced)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(2, &wo);
    struct tp_shared *sh;
    subiter_pool *p;
    pid_t pid1;
    int k;

    tu_snapshot(&snap);
    sh = tp_shared_new();
    ck_assert_int_eq(subiter_pool_open(&p, tp_gen_shard, sh, &po), 0);
    pid1 = subiter_pool_worker_pid(p, 1);
    /* Killed in Stand By, between calls: the next start replaces it
     * instead of failing an iteration it never began. */
    ck_assert_int_eq(kill(pid1, SIGKILL), 0);
    for (k = 0; k < 2000 && tp_proc_state(pid1) != 'Z'; k++) {
        tu_sleep_ms(1);
    }
    ck_assert_int_eq(tp_proc_state(pid1), 'Z');
    run_plain(p, 2, true);
    tu_assert_gone(pid1);
    ck_assert_int_ne(subiter_pool_worker_pid(p, 1), pid1);
    ck_assert_uint_eq(tp_stats(p).replaced, 1);
    tp_close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_shards_stop_worker_dies)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(2, &wo);
    struct tp_shared *sh;
    subiter_pool *p;
    subiter_pool_item item;
    /* Far more items than the rings hold: shard 1 is still yielding when
     * the stop comes, and dies of it. */
    struct tp_shard_in in = {10 * 1000 * 1000, 1, SHARD_DIE_ON_STOP, 0, 0};
    pid_t pid1;
    int k;

    tu_snapshot(&snap);
    sh = tp_shared_new();
    ck_assert_int_eq(subiter_pool_open(&p, tp_gen_shard, sh, &po), 0);
    pid1 = subiter_pool_worker_pid(p, 1);
    ck_assert_int_eq(subiter_pool_start(p, &in, sizeof in), 0);
    for (k = 0; k < 10; k++) {
        ck_assert_int_eq(subiter_pool_next(p, &item), 1);
    }
    ck_assert_int_eq(subiter_pool_stop(p), SUBITER_ECHILD);
    tp_assert_errmsg_has(p, "while it stopped");
    tp_assert_errmsg_has(p, "SIGKILL");
    tu_assert_gone(pid1);
    ck_assert_uint_eq(tp_stats(p).replaced, 1);
    /* Stopped: next says the iteration is over; the pool goes on. */
    ck_assert_int_eq(subiter_pool_next(p, &item), 0);
    run_plain(p, 2, true);
    tp_close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

static Suite *pool_shards_suite(void)
{
    Suite *s = suite_create("pool_shards");
    TCase *tc;

    tc = tcase_create("sharded");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_pool_shards_unordered_union);
    tcase_add_test(tc, test_pool_shards_ordered_round_robin);
    tcase_add_test(tc, test_pool_shards_ordered_skips_ended_shards);
    tcase_add_test(tc, test_pool_shards_reiterate_and_stop);
    tcase_add_test(tc, test_pool_shards_input_reaches_every_worker);
    tcase_add_test(tc, test_pool_shards_ranks_cover_once);
    tcase_add_test(tc, test_pool_shards_shard_fails);
    tcase_add_test(tc, test_pool_shards_fail_found_after_arm);
    tcase_add_test(tc, test_pool_shards_shard_segv);
    tcase_add_test(tc, test_pool_shards_shard_sigkilled);
    tcase_add_test(tc, test_pool_shards_restart_shards);
    tcase_add_test(tc, test_pool_shards_restart_gives_up);
    tcase_add_test(tc, test_pool_shards_stop_worker_dies);
    tcase_add_test(tc, test_pool_shards_rerun_cannot_start);
    tcase_add_test(tc, test_pool_shards_rerun_dies_in_init);
    tcase_add_test(tc, test_pool_shards_idle_death_replaced);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(pool_shards_suite());
}
