/* check_items.c: the items themselves: the two buffer bounds (items and
 * bytes), zero-length, multi-MiB and maximum-size items, and zero-copy
 * reserve/commit with its rules. Generators report through shared pages,
 * never ck_assert. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#define PAGE 4096

/* ---- generators (run in the worker: no ck_assert here) ---- */

/* Counts attempts (slot 0, before each yield) and successes (slot 1). */
struct bound_arg {
    _Atomic long *ctr;
    long n;
};

TU_EXPORT(int gen_bound(subiter_gen *g, void *arg))
{
    const struct bound_arg *a = arg;
    long i;
    int r;

    for (i = 0; i < a->n; i++) {
        atomic_fetch_add(&a->ctr[0], 1);
        if ((r = subiter_yield(g, &i, sizeof i)) != 0) {
            return r;
        }
        atomic_fetch_add(&a->ctr[1], 1);
    }
    return 0;
}

/* Yields n items of len bytes, item i filled with tu_fill(i). */
struct sized_arg {
    size_t len;
    long n;
    int use_reserve;
};

TU_EXPORT(int gen_sized(subiter_gen *g, void *arg))
{
    const struct sized_arg *a = arg;
    unsigned char *buf;
    void *p;
    long i;
    int r = 0;

    buf = a->use_reserve ? NULL : malloc(a->len ? a->len : 1);
    if (!a->use_reserve && buf == NULL) {
        return -ENOMEM;
    }
    for (i = 0; i < a->n && r == 0; i++) {
        if (a->use_reserve) {
            r = subiter_reserve(g, a->len, &p);
            if (r == 0) {
                tu_fill(p, a->len, (unsigned)i);
                r = subiter_commit(g, a->len);
            }
        } else {
            tu_fill(buf, a->len, (unsigned)i);
            r = subiter_yield(g, buf, a->len);
        }
    }
    free(buf);
    return r;
}

/* Item i's size in gen_mixed(): runs of one size (each length up to 64
 * bytes the worker copies its own way, and two larger), every ninth item
 * a 3000-byte one in between, and every fourth run through
 * reserve/commit. */
static size_t mixed_len(long i)
{
    static const size_t runs[] = {64, 16, 1, 5, 33, 0, 8, 63, 200, 1000};

    return i % 9 == 4 ? 3000 : runs[(i / 27) % 10];
}

TU_EXPORT(int gen_mixed(subiter_gen *g, void *arg))
{
    const long *n = arg;
    unsigned char buf[3000];
    void *p;
    long i;
    int r = 0;

    for (i = 0; i < *n && r == 0; i++) {
        size_t len = mixed_len(i);

        if ((i / 27) % 4 == 3) {
            r = subiter_reserve(g, len, &p);
            if (r == 0) {
                tu_fill(p, len, (unsigned)i);
                r = subiter_commit(g, len);
            }
        } else {
            tu_fill(buf, len, (unsigned)i);
            r = subiter_yield(g, buf, len);
        }
    }
    return r;
}

/* Yields max-size items, then probes max + 1 with yield and reserve.
 * Slots: 0 yield(max+1), 1 reserve(max+1), 2 buf cleared, 3 done. */
struct max_arg {
    _Atomic long *sh;
    size_t max;
    long n;
};

TU_EXPORT(int gen_max(subiter_gen *g, void *arg))
{
    const struct max_arg *a = arg;
    unsigned char *buf = malloc(a->max + 1);
    void *p = buf;
    long i;
    int r = 0;

    if (buf == NULL) {
        return -ENOMEM;
    }
    for (i = 0; i < a->n && r == 0; i++) {
        tu_fill(buf, a->max, (unsigned)i);
        r = subiter_yield(g, buf, a->max);
    }
    if (r == 0) {
        atomic_store(&a->sh[0], subiter_yield(g, buf, a->max + 1));
        atomic_store(&a->sh[1], subiter_reserve(g, a->max + 1, &p));
        atomic_store(&a->sh[2], p == NULL);
        atomic_store(&a->sh[3], 1);
    }
    free(buf);
    return r;
}

/* Zero-length items: yield(NULL, 0), yield("", 0), reserve/commit 0. */
TU_EXPORT(int gen_empty_items(subiter_gen *g, void *arg))
{
    void *p;
    int r;

    (void)arg;
    if ((r = subiter_yield(g, NULL, 0)) != 0 ||
        (r = subiter_yield(g, "", 0)) != 0) {
        return r;
    }
    if ((r = subiter_reserve(g, 0, &p)) != 0 ||
        (r = subiter_commit(g, 0)) != 0) {
        return r;
    }
    if ((r = subiter_reserve(g, 64, &p)) != 0 ||
        (r = subiter_commit(g, 0)) != 0) {
        return r;
    }
    return 0;
}

/*
 * Reserve/commit rules. Slots: 0 commit without reserve, 1 reserve(100),
 * 2 second reserve, 3 its buf cleared, 4 yield while reserved, 5 commit
 * of more than reserved, 6 commit(60), 7 commit again, 8 reached the end,
 * 9 reserve with NULL buf.
 */
TU_EXPORT(int gen_reserve_rules(subiter_gen *g, void *arg))
{
    _Atomic long *sh = arg;
    void *p = NULL, *q = &p;
    long i;
    int r;

    atomic_store(&sh[0], subiter_commit(g, 0));
    atomic_store(&sh[9], subiter_reserve(g, 10, NULL));
    r = subiter_reserve(g, 100, &p);
    atomic_store(&sh[1], r);
    if (r != 0) {
        return r;
    }
    tu_fill(p, 100, 1000);
    atomic_store(&sh[2], subiter_reserve(g, 10, &q));
    atomic_store(&sh[3], q == NULL);
    atomic_store(&sh[4], subiter_yield(g, "x", 1));
    atomic_store(&sh[5], subiter_commit(g, 101));
    atomic_store(&sh[6], subiter_commit(g, 60));
    atomic_store(&sh[7], subiter_commit(g, 60));
    /* Many more, of varying sizes, to wrap a small ring. */
    for (i = 0; i < 100; i++) {
        size_t want = 900 + (size_t)i * 37, got = want - (size_t)i % 5;

        if ((r = subiter_reserve(g, want, &p)) != 0) {
            return r;
        }
        tu_fill(p, got, (unsigned)i);
        if ((r = subiter_commit(g, got)) != 0) {
            return r;
        }
    }
    atomic_store(&sh[8], 1);
    return 0;
}

static void check_items_bound(unsigned k)
{
    struct tu_snapshot snap;
    void *page;
    subiter_opts o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    struct bound_arg a;
    subiter *it;
    subiter_item item;
    long consumed, att, done, max_att = 0, max_done = 0;
    int64_t t0;

    tu_snapshot(&snap);
    page = tu_shared_new(PAGE);
    a.ctr = page;
    a.n = 12 * (long)k + 40;
    o.buffer_items = k;
    o.arg_len = sizeof a; /* the worker's own copy, every method */
    ck_assert_int_eq(subiter_open(&it, gen_bound, &a, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);

    /*
     * Before any next(): the worker publishes k items and blocks on the
     * (k+1)-th, which it has counted as attempted. Wait for that, then a
     * while longer to see that it goes no further.
     */
    t0 = tu_now_ms();
    while (atomic_load(&a.ctr[0]) < (long)k + 1 && tu_now_ms() - t0 < 5000) {
        tu_sleep_ms(1);
    }
    tu_sleep_ms(20);
    max_att = atomic_load(&a.ctr[0]);
    max_done = atomic_load(&a.ctr[1]);
    ck_assert_int_eq(max_att, (long)k + 1);
    ck_assert_int_eq(max_done, (long)k);

    for (consumed = 0; consumed < a.n;) {
        ck_assert_int_eq(subiter_next(it, &item), 1);
        ck_assert_int_eq(tu_item_long(&item), consumed);
        consumed++;
        if (consumed % 5 == 0) {
            tu_sleep_ms(2);
        }
        att = atomic_load(&a.ctr[0]) - consumed;
        done = atomic_load(&a.ctr[1]) - consumed;
        ck_assert_msg(att <= (long)k + 1,
                      "k=%u: %ld attempted past %ld consumed", k, att,
                      consumed);
        ck_assert_msg(done <= (long)k, "k=%u: %ld published past %ld consumed",
                      k, done, consumed);
        if (att > max_att) {
            max_att = att;
        }
        if (done > max_done) {
            max_done = done;
        }
    }
    ck_assert_int_eq(max_att, (long)k + 1);
    ck_assert_int_eq(max_done, (long)k);
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_shared_free(page, PAGE);
    tu_assert_clean(&snap);
}

START_TEST(test_items_buffer_items_bound)
{
    static const unsigned ks[] = {1, 4, 32};

    check_items_bound(ks[_i]);
}
END_TEST

/* One iteration of gen_sized(a) under o, checked item by item and closed;
 * sleeps 2 ms after every pause_every-th item (0: never). */
static void check_sized(struct sized_arg *a, const subiter_opts *o,
                        long pause_every)
{
    struct tu_snapshot snap;
    subiter_opts copy = *o;
    struct sized_arg bytes;
    subiter *it;
    subiter_item item;
    long i;

    tu_snapshot(&snap);
    /* The worker's own copy under every method, its padding defined. */
    memset(&bytes, 0, sizeof bytes);
    bytes.len = a->len;
    bytes.n = a->n;
    bytes.use_reserve = a->use_reserve;
    copy.arg_len = sizeof bytes;
    ck_assert_int_eq(subiter_open(&it, gen_sized, &bytes, &copy), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    for (i = 0; i < a->n; i++) {
        ck_assert_int_eq(subiter_next(it, &item), 1);
        tu_expect_pattern(&item, a->len, (unsigned)i);
        if (pause_every > 0 && i % pause_every == 0) {
            tu_sleep_ms(2);
        }
    }
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}

START_TEST(test_items_buffer_bytes_bound)
{
    subiter_opts o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    struct sized_arg a = {5 * 1024, 300, 0};

    o.buffer_bytes = TU_SMALL_RING;
    o.buffer_items = 1000;
    check_sized(&a, &o, 50);
}
END_TEST

/* ---- item sizes ---- */

START_TEST(test_items_zero_length)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    subiter *it;
    subiter_item item;
    int i;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, gen_empty_items, NULL, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    for (i = 0; i < 4; i++) {
        ck_assert_int_eq(subiter_next(it, &item), 1);
        ck_assert_uint_eq(item.len, 0);
    }
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

/* Sizes that change, large items between runs of items of one size,
 * through a small ring that fills while the parent pauses: each item
 * intact. The worker's path for a run of items of one size keeps the
 * ring's room as it learned it from the last full reservation; an item
 * that took another path in between must make it learn again. */
START_TEST(test_items_mixed_sizes)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    long n = 2000, i;
    subiter *it;
    subiter_item item;

    tu_snapshot(&snap);
    o.buffer_bytes = TU_SMALL_RING;
    o.arg_len = sizeof n;
    ck_assert_int_eq(subiter_open(&it, gen_mixed, &n, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    for (i = 0; i < n; i++) {
        ck_assert_int_eq(subiter_next(it, &item), 1);
        tu_expect_pattern(&item, mixed_len(i), (unsigned)i);
        if (i % 40 == 0) {
            tu_sleep_ms(1); /* the ring fills */
        }
    }
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_items_multi_mib)
{
    subiter_opts o = tu_opts_grace(20000, TU_LONG_GRACE_MS);
    struct sized_arg a = {(size_t)3 << 20, 4, _i};

    o.buffer_bytes = (size_t)4 << 20;
    check_sized(&a, &o, 0);
}
END_TEST

START_TEST(test_items_max_size)
{
    struct tu_snapshot snap;
    void *page;
    subiter_opts o = tu_opts_grace(5000, TU_LONG_GRACE_MS);
    struct max_arg a;
    subiter_errinfo ei = SUBITER_ERRINFO_INIT;
    char want[64];
    subiter *it;
    subiter_item item;
    long i;

    tu_snapshot(&snap);
    page = tu_shared_new(PAGE);
    a.sh = page;
    a.max = TU_SMALL_MAX;
    a.n = 5;
    o.buffer_bytes = TU_SMALL_RING;
    o.arg_len = sizeof a; /* the worker's own copy, every method */
    ck_assert_int_eq(subiter_open(&it, gen_max, &a, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    for (i = 0; i < a.n; i++) {
        int r = subiter_next(it, &item);

        ck_assert_msg(r == 1, "item %ld: %d (%s)", i, r, subiter_errmsg(it));
        tu_expect_pattern(&item, a.max, (unsigned)i);
    }
    /* It returned 0 after -EMSGSIZE: the item is lost, the iteration
     * fails, and errmsg names both sizes. */
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_EITER);
    snprintf(want, sizeof want, "item of %zu bytes", a.max + 1);
    ck_assert_msg(strstr(subiter_errmsg(it), want) != NULL, "%s",
                  subiter_errmsg(it));
    snprintf(want, sizeof want, "at most %zu bytes", a.max);
    ck_assert_msg(strstr(subiter_errmsg(it), want) != NULL, "%s",
                  subiter_errmsg(it));
    ck_assert_int_eq(subiter_get_errinfo(it, &ei), 0);
    ck_assert_int_eq(ei.errnum, EMSGSIZE);
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_int_eq(atomic_load(&a.sh[3]), 1);
    ck_assert_int_eq(atomic_load(&a.sh[0]), -EMSGSIZE);
    ck_assert_int_eq(atomic_load(&a.sh[1]), -EMSGSIZE);
    ck_assert_int_eq(atomic_load(&a.sh[2]), 1);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_shared_free(page, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_items_reserve_commit)
{
    struct tu_snapshot snap;
    void *page;
    subiter_opts o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    _Atomic long *sh;
    subiter *it;
    subiter_item item;
    long i;

    tu_snapshot(&snap);
    page = tu_shared_new(PAGE);
    sh = page;
    o.buffer_bytes = TU_SMALL_RING;
    ck_assert_int_eq(subiter_open(&it, gen_reserve_rules, page, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_int_eq(subiter_next(it, &item), 1);
    tu_expect_pattern(&item, 60, 1000);
    for (i = 0; i < 100; i++) {
        ck_assert_int_eq(subiter_next(it, &item), 1);
        tu_expect_pattern(&item, 900 + (size_t)i * 37 - (size_t)i % 5,
                          (unsigned)i);
    }
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_int_eq(atomic_load(&sh[8]), 1);
    ck_assert_int_eq(atomic_load(&sh[0]), -EINVAL);
    ck_assert_int_eq(atomic_load(&sh[9]), -EINVAL);
    ck_assert_int_eq(atomic_load(&sh[1]), 0);
    ck_assert_int_eq(atomic_load(&sh[2]), -EINVAL);
    ck_assert_int_eq(atomic_load(&sh[3]), 1);
    ck_assert_int_eq(atomic_load(&sh[4]), -EINVAL);
    ck_assert_int_eq(atomic_load(&sh[5]), -EINVAL);
    ck_assert_int_eq(atomic_load(&sh[6]), 0);
    ck_assert_int_eq(atomic_load(&sh[7]), -EINVAL);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_shared_free(page, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

static Suite *items_suite(void)
{
    Suite *s = suite_create("items");
    TCase *tc;

    tc = tcase_create("bounds");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_items_buffer_items_bound, 0, 3);
    tcase_add_test(tc, test_items_buffer_bytes_bound);
    tcase_add_loop_test(tc, test_items_multi_mib, 0, 2);
    tcase_add_test(tc, test_items_max_size);
    tcase_add_test(tc, test_items_zero_length);
    tcase_add_test(tc, test_items_mixed_sizes);
    tcase_add_test(tc, test_items_reserve_commit);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(items_suite());
}
