/* check_resume.c: resuming a sharded iteration from a checkpoint
 * (subiter_pool_checkpoint(), subiter_pool_start_from()): ordered runs
 * resume into exactly the uninterrupted run, unordered ones into the same
 * set, at many checkpoint points, with a generator that seeks with
 * subiter_skip() and one the library skips for; corrupt checkpoints and
 * checkpoints of another configuration are refused with the field named.
 * Generators report through a shared page, never ck_assert. Every case
 * checks that no child, fd or mapping is left. */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "testpool.h"

#define N 101 /* not a multiple of any worker count used here */
#define CKPT_MAX 256

struct shared {
    _Atomic long produced; /* items the generators made, skipped included */
};

/* The dataset's items: v in [0, N) with v % shards == shard. Uneven:
 * shard k stops 7 k items early, so shards end at different turns. */
struct gen_in {
    long use_skip;
    long uneven;
};

static long shard_len(long shard, long shards, long uneven)
{
    long len = (N - shard + shards - 1) / shards;

    if (uneven) {
        len -= 7 * shard;
    }
    return len > 0 ? len : 0;
}

static int gen_data(subiter_gen *g, void *arg)
{
    struct shared *sh = arg;
    const struct gen_in *in = subiter_input(g, NULL);
    long shard = (long)subiter_worker_id(g);
    long shards = (long)subiter_num_workers(g);
    long len = shard_len(shard, shards, in->uneven), j = 0, v;
    int r;

    if (in->use_skip) {
        /* Seeks: the skipped items cost nothing. */
        j = (long)subiter_skip(g);
    }
    for (; j < len; j++) {
        v = shard + j * shards;
        atomic_fetch_add(&sh->produced, 1);
        if ((r = subiter_yield(g, &v, sizeof v)) != 0) {
            return r;
        }
    }
    return 0;
}

static subiter_pool *open_pool(struct shared *sh, unsigned workers, int order)
{
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(workers, &wo);
    subiter_pool *p;

    po.order = order;
    po.seed = 7;
    ck_assert_int_eq(subiter_pool_open(&p, gen_data, sh, &po), 0);
    return p;
}

/* Read up to max items into seq; returns how many (the rest is left). */
static long read_items(subiter_pool *p, long *seq, long max, int *end)
{
    subiter_pool_item item;
    long k = 0;
    int r = 1;

    while (k < max && (r = subiter_pool_next(p, &item)) == 1) {
        REQUIRE_EQ(item.len, sizeof(long));
        memcpy(&seq[k++], item.data, sizeof(long));
    }
    if (end != NULL) {
        *end = r == 1 ? 1 : r;
    }
    return k;
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;

    return (x > y) - (x < y);
}

/* One uninterrupted run, then for each checkpoint point k: a run
 * stopped after k items, a checkpoint, a fresh pool resumed from it; the
 * k items and the rest are the uninterrupted run (ordered) or its set. */
static void resume_at_points(unsigned workers, int order, bool use_skip,
                             bool uneven)
{
    static const long points[] = {0, 1, 2, 3, 4, 5, 17, 50, 64, 99};
    struct gen_in in = {use_skip, uneven};
    struct shared *sh = tu_shared_new(PAGE);
    long ref[N + 1], got[N + 1], nref, k, n2, before, i;
    unsigned char ck[CKPT_MAX];
    size_t cklen;
    subiter_pool *p;
    size_t pi;
    int end;

    p = open_pool(sh, workers, order);
    ck_assert_int_eq(subiter_pool_start(p, &in, sizeof in), 0);
    nref = read_items(p, ref, N + 1, &end);
    ck_assert_int_eq(end, 0);
    tp_close_clean(p);
    for (pi = 0; pi < sizeof points / sizeof points[0]; pi++) {
        k = points[pi] < nref ? points[pi] : nref;
        p = open_pool(sh, workers, order);
        ck_assert_int_eq(subiter_pool_start(p, &in, sizeof in), 0);
        ck_assert_int_eq(read_items(p, got, k, NULL), k);
        ck_assert_int_eq(subiter_pool_checkpoint(p, ck, sizeof ck, &cklen), 0);
        /* Ctrl-C: the application stops and exits. */
        ck_assert_int_eq(subiter_pool_stop(p), 0);
        tp_close_clean(p);

        p = open_pool(sh, workers, order);
        before = atomic_load(&sh->produced);
        ck_assert_int_eq(subiter_pool_start_from(p, &in, sizeof in, ck, cklen),
                         0);
        n2 = read_items(p, got + k, N + 1 - k, &end);
        ck_assert_int_eq(end, 0);
        ck_assert_msg(k + n2 == nref, "k %ld: %ld + %ld items, not %ld", k, k,
                      n2, nref);
        if (use_skip) {
            /* Only the remaining items were made. */
            ck_assert_int_eq(atomic_load(&sh->produced) - before, n2);
        } else {
            ck_assert_int_eq(atomic_load(&sh->produced) - before, nref);
        }
        tp_close_clean(p);
        if (order == SUBITER_POOL_ORDERED) {
            for (i = 0; i < nref; i++) {
                ck_assert_msg(got[i] == ref[i],
                              "k %ld: item %ld is %ld, "
                              "not %ld",
                              k, i, got[i], ref[i]);
            }
        } else {
            long a[N], b[N];

            memcpy(a, ref, nref * sizeof *a);
            memcpy(b, got, nref * sizeof *b);
            qsort(a, (size_t)nref, sizeof *a, cmp_long);
            qsort(b, (size_t)nref, sizeof *b, cmp_long);
            ck_assert_int_eq(memcmp(a, b, nref * sizeof *a), 0);
        }
    }
    tu_shared_free(sh, PAGE);
}

START_TEST(test_resume_ordered_is_one_run)
{
    struct tu_snapshot snap;

    tu_snapshot(&snap);
    resume_at_points(3, SUBITER_POOL_ORDERED, false, false);
    resume_at_points(3, SUBITER_POOL_ORDERED, true, false);
    resume_at_points(2, SUBITER_POOL_ORDERED, true, false);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_resume_ordered_uneven_shards)
{
    struct tu_snapshot snap;

    tu_snapshot(&snap);
    resume_at_points(3, SUBITER_POOL_ORDERED, false, true);
    resume_at_points(4, SUBITER_POOL_ORDERED, true, true);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_resume_unordered_same_set)
{
    struct tu_snapshot snap;

    tu_snapshot(&snap);
    resume_at_points(3, SUBITER_POOL_UNORDERED, false, false);
    resume_at_points(3, SUBITER_POOL_UNORDERED, true, true);
    tu_assert_clean(&snap);
}
END_TEST

/* The same pool resumes too (no new process), and a checkpoint of an
 * iteration that ended resumes into nothing. */
START_TEST(test_resume_same_pool_and_after_end)
{
    struct tu_snapshot snap;
    struct gen_in in = {1, 0};
    struct shared *sh;
    long ref[N + 1], got[N + 1], nref, n;
    unsigned char ck[CKPT_MAX];
    size_t cklen;
    subiter_pool *p;
    int end;

    tu_snapshot(&snap);
    sh = tu_shared_new(PAGE);
    p = open_pool(sh, 3, SUBITER_POOL_ORDERED);
    ck_assert_int_eq(subiter_pool_start(p, &in, sizeof in), 0);
    nref = read_items(p, ref, N + 1, &end);
    ck_assert_int_eq(end, 0);
    ck_assert_int_eq(subiter_pool_checkpoint(p, ck, sizeof ck, &cklen), 0);
    ck_assert_int_eq(subiter_pool_start_from(p, &in, sizeof in, ck, cklen), 0);
    ck_assert_int_eq(read_items(p, got, N + 1, &end), 0);
    ck_assert_int_eq(end, 0);

    ck_assert_int_eq(subiter_pool_start(p, &in, sizeof in), 0);
    ck_assert_int_eq(read_items(p, got, 10, NULL), 10);
    ck_assert_int_eq(subiter_pool_checkpoint(p, ck, sizeof ck, &cklen), 0);
    ck_assert_int_eq(subiter_pool_stop(p), 0);
    ck_assert_int_eq(subiter_pool_start_from(p, &in, sizeof in, ck, cklen), 0);
    n = read_items(p, got + 10, N + 1 - 10, &end);
    ck_assert_int_eq(end, 0);
    ck_assert_int_eq(10 + n, nref);
    ck_assert_int_eq(memcmp(got, ref, nref * sizeof *ref), 0);
    tp_close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_resume_checkpoint_misuse)
{
    struct tu_snapshot snap;
    struct gen_in in = {1, 0};
    struct shared *sh;
    unsigned char ck[CKPT_MAX];
    size_t need, cklen;
    subiter_pool *p;
    long got[4];

    tu_snapshot(&snap);
    sh = tu_shared_new(PAGE);
    p = open_pool(sh, 3, SUBITER_POOL_ORDERED);
    /* Nothing was started: nothing to checkpoint. */
    ck_assert_int_eq(subiter_pool_checkpoint(p, ck, sizeof ck, &cklen),
                     -EINVAL);
    ck_assert_int_eq(subiter_pool_checkpoint(NULL, ck, sizeof ck, &cklen),
                     -EINVAL);
    ck_assert_int_eq(subiter_pool_start(p, &in, sizeof in), 0);
    ck_assert_int_eq(read_items(p, got, 4, NULL), 4);
    ck_assert_int_eq(subiter_pool_checkpoint(p, ck, sizeof ck, NULL), -EINVAL);
    ck_assert_int_eq(subiter_pool_checkpoint(p, NULL, 8, &need), -EINVAL);
    /* Asking for the size. */
    ck_assert_int_eq(subiter_pool_checkpoint(p, NULL, 0, &need), -ENOSPC);
    ck_assert_uint_gt(need, 0);
    ck_assert_int_eq(subiter_pool_checkpoint(p, ck, need - 1, &cklen), -ENOSPC);
    ck_assert_uint_eq(cklen, need);
    ck_assert_int_eq(subiter_pool_checkpoint(p, ck, need, &cklen), 0);
    ck_assert_uint_eq(cklen, need);
    /* Out of memory: the checkpoint's counts, then the decoder's. */
    (void)subiter__alloc_fail_at(1);
    ck_assert_int_eq(subiter_pool_checkpoint(p, ck, sizeof ck, &cklen),
                     -ENOMEM);
    (void)subiter__alloc_fail_at(0);
    ck_assert_int_eq(subiter_pool_checkpoint(p, ck, need, &cklen), 0);
    ck_assert_int_eq(subiter_pool_stop(p), 0);
    (void)subiter__alloc_fail_at(1);
    ck_assert_int_eq(subiter_pool_start_from(p, &in, sizeof in, ck, cklen),
                     -ENOMEM);
    (void)subiter__alloc_fail_at(0);
    tp_assert_errmsg_has(p, "out of memory");
    ck_assert_int_eq(subiter_pool_start_from(p, &in, sizeof in, ck, cklen), 0);
    /* Not while the iteration runs. */
    ck_assert_int_eq(subiter_pool_start_from(p, &in, sizeof in, ck, cklen),
                     -EINVAL);
    tp_assert_errmsg_has(p, "an iteration is running");
    ck_assert_int_eq(subiter_pool_stop(p), 0);
    ck_assert_int_eq(subiter_pool_start_from(NULL, &in, sizeof in, ck, cklen),
                     -EINVAL);
    tp_close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

/* A checkpoint written by hand, as another version or configuration
 * would have. */
static size_t make_ckpt(unsigned char *buf, unsigned version, int order,
                        unsigned workers, unsigned rank, unsigned world,
                        unsigned turn)
{
    uint64_t counts[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    struct subiter__ckpt c;

    memset(&c, 0, sizeof c);
    c.version = version;
    c.order = order;
    c.workers = workers;
    c.rank = rank;
    c.world_size = world;
    c.turn = turn;
    c.delivered = counts;
    ck_assert_uint_le(subiter__ckpt_size(&c), CKPT_MAX);
    return subiter__ckpt_pack(&c, buf);
}

static void expect_refused(subiter_pool *p, const void *ck, size_t len,
                           const char *what)
{
    struct gen_in in = {1, 0};

    ck_assert_int_eq(subiter_pool_start_from(p, &in, sizeof in, ck, len),
                     -EINVAL);
    tp_assert_errmsg_has(p, what);
}

START_TEST(test_resume_refuses_corrupt_and_mismatched)
{
    struct tu_snapshot snap;
    struct shared *sh;
    unsigned char ck[CKPT_MAX];
    struct gen_in in = {1, 0};
    long got[N + 1];
    size_t n;
    subiter_pool *p;
    int end;

    tu_snapshot(&snap);
    sh = tu_shared_new(PAGE);
    p = open_pool(sh, 3, SUBITER_POOL_ORDERED);
    expect_refused(p, NULL, 0, "checkpoint: empty");
    memset(ck, 0xff, 16);
    expect_refused(p, ck, 16, "not a Checkpoint message");
    n = make_ckpt(ck, 2, SUBITER_POOL_ORDERED, 3, 0, 1, 0);
    expect_refused(p, ck, n, "version 2, this library reads version 1");
    n = make_ckpt(ck, 1, SUBITER_POOL_ORDERED, 4, 0, 1, 0);
    expect_refused(p, ck, n, "4 workers, the pool has 3");
    n = make_ckpt(ck, 1, SUBITER_POOL_UNORDERED, 3, 0, 1, 0);
    expect_refused(p, ck, n, "order unordered, the pool's is ordered");
    n = make_ckpt(ck, 1, SUBITER_POOL_ORDERED, 3, 1, 2, 0);
    expect_refused(p, ck, n, "rank 1 of world size 2, the pool is rank 0");
    n = make_ckpt(ck, 1, SUBITER_POOL_ORDERED, 3, 0, 1, 3);
    expect_refused(p, ck, n, "turn 3 of 3 workers");
    n = make_ckpt(ck, 1, SUBITER_POOL_ORDERED, 3, 2, 2, 0);
    expect_refused(p, ck, n, "rank 2 of world size 2");
    /* A truncated good one. */
    n = make_ckpt(ck, 1, SUBITER_POOL_ORDERED, 3, 0, 1, 0);
    expect_refused(p, ck, n - 1, "checkpoint");
    /* Refused without harm: the pool still runs. */
    ck_assert_int_eq(subiter_pool_start_from(p, &in, sizeof in, ck, n), 0);
    ck_assert_int_eq(read_items(p, got, N + 1, &end), N - 3);
    ck_assert_int_eq(end, 0);
    tp_close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

static Suite *resume_suite(void)
{
    Suite *s = suite_create("resume");
    TCase *tc;

    tc = tcase_create("resume");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_resume_ordered_is_one_run);
    tcase_add_test(tc, test_resume_ordered_uneven_shards);
    tcase_add_test(tc, test_resume_unordered_same_set);
    tcase_add_test(tc, test_resume_same_pool_and_after_end);
    tcase_add_test(tc, test_resume_checkpoint_misuse);
    tcase_add_test(tc, test_resume_refuses_corrupt_and_mismatched);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(resume_suite());
}
