/* check_api.c: the public API's behaviour, state by state (DESIGN.md's
 * state table: ready / iterating / ended / dead x start, next, stop,
 * close), options, inputs, the two buffer bounds, zero-copy items and
 * misuse. Generators report through shared pages, never ck_assert. */
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
#define SMALL_RING ((size_t)16 * 1024)
#define SMALL_MAX (SMALL_RING - 16)

/* ---- helpers ---- */

/* Read n items 0 .. n-1, then the end (twice: it is sticky). */
static void expect_count(subiter *it, long n)
{
    subiter_item item;

    tu_expect_items(it, 0, n);
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_ptr_null(item.data);
    ck_assert_uint_eq(item.len, 0);
    ck_assert_int_eq(subiter_next(it, &item), 0);
}

/* Open tu_gen_count(n) with o, check one whole iteration, close. */
static void run_count(const subiter_opts *o, long n)
{
    subiter *it;

    ck_assert_int_eq(subiter_open(&it, tu_gen_count, (void *)n, o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    expect_count(it, n);
    ck_assert_int_eq(subiter_close(it), 0);
}

static unsigned char pattern(size_t i, unsigned seed)
{
    return (unsigned char)((i * 7u + seed * 13u + (i >> 9)) & 0xffu);
}

static void fill(unsigned char *p, size_t len, unsigned seed)
{
    size_t i;

    for (i = 0; i < len; i++) {
        p[i] = pattern(i, seed);
    }
}

/* Does item hold len bytes of fill(seed)? */
static void expect_pattern(const subiter_item *item, size_t len, unsigned seed)
{
    const unsigned char *p = item->data;
    size_t i;

    ck_assert_uint_eq(item->len, len);
    for (i = 0; i < len; i++) {
        if (p[i] != pattern(i, seed)) {
            ck_abort_msg("item %u: byte %zu is %u, expected %u", seed, i,
                         (unsigned)p[i], (unsigned)pattern(i, seed));
        }
    }
}

/* ---- generators (run in the worker: no ck_assert here) ---- */

/* Yields 0, 1, 2, ... until asked to stop. */
static int gen_forever(subiter_gen *g, void *arg)
{
    long i;
    int r;

    (void)arg;
    for (i = 0;; i++) {
        if ((r = subiter_yield(g, &i, sizeof i)) != 0) {
            return r;
        }
    }
}

/* Counts how often the initializer ran, in a shared page. */
static int init_count(subiter_gen *g, void *arg)
{
    _Atomic long *ctr = arg;

    (void)g;
    atomic_fetch_add(&ctr[0], 1);
    return 0;
}

/* Yields the initializer count, then 0 .. 2. */
static int gen_report_init(subiter_gen *g, void *arg)
{
    _Atomic long *ctr = arg;
    long v = atomic_load(&ctr[0]);
    int r;

    if ((r = subiter_yield(g, &v, sizeof v)) != 0) {
        return r;
    }
    return tu_yield_count(g, 3);
}

#define INIT_FAIL_TEXT "cannot load model 'x.bin': 42% done, gave up"

static int init_fail(subiter_gen *g, void *arg)
{
    _Atomic long *ctr = arg;
    int r = subiter_fail(g, "cannot load model '%s': %d%% done, gave up",
                         "x.bin", 42);

    atomic_store(&ctr[0], r);
    return r;
}

static int init_enoent(subiter_gen *g, void *arg)
{
    (void)g;
    (void)arg;
    return -ENOENT;
}

/* Echoes the input as one item, then an int: was subiter_input NULL? */
static int gen_echo_input(subiter_gen *g, void *arg)
{
    size_t len = 12345;
    const void *in = subiter_input(g, &len);
    int isnull = in == NULL, r;

    (void)arg;
    if ((r = subiter_yield(g, in, len)) != 0) {
        return r;
    }
    return subiter_yield(g, &isnull, sizeof isnull);
}

/* Records what subiter_input() and the generator-only calls give in the
 * initializer. Slots: 0 input==NULL, 1 len, 2 yield, 3 reserve, 4 buf
 * cleared, 5 commit, 6 ran. */
static int init_probe(subiter_gen *g, void *arg)
{
    _Atomic long *sh = arg;
    size_t len = 99;
    void *buf = &len;
    const void *in = subiter_input(g, &len);

    atomic_store(&sh[0], in == NULL);
    atomic_store(&sh[1], (long)len);
    atomic_store(&sh[2], subiter_yield(g, "x", 1));
    atomic_store(&sh[3], subiter_reserve(g, 8, &buf));
    atomic_store(&sh[4], buf == NULL);
    atomic_store(&sh[5], subiter_commit(g, 0));
    atomic_store(&sh[6], 1);
    return 0;
}

/* Counts attempts (slot 0, before each yield) and successes (slot 1). */
struct bound_arg {
    _Atomic long *ctr;
    long n;
};

static int gen_bound(subiter_gen *g, void *arg)
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

/* Yields n items of len bytes, item i filled with fill(i). */
struct sized_arg {
    size_t len;
    long n;
    int use_reserve;
};

static int gen_sized(subiter_gen *g, void *arg)
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
                fill(p, a->len, (unsigned)i);
                r = subiter_commit(g, a->len);
            }
        } else {
            fill(buf, a->len, (unsigned)i);
            r = subiter_yield(g, buf, a->len);
        }
    }
    free(buf);
    return r;
}

/* Input: an int k. Yields k items, then fails with a message (k < 0:
 * 10 items and success). */
static int gen_fail_at(subiter_gen *g, void *arg)
{
    int k = -1, r;
    size_t len;
    const void *in = subiter_input(g, &len);

    (void)arg;
    if (in != NULL && len == sizeof k) {
        memcpy(&k, in, sizeof k);
    }
    if ((r = tu_yield_count(g, k < 0 ? 10 : k)) != 0) {
        return r;
    }
    if (k < 0) {
        return 0;
    }
    return subiter_fail(g, "record %d is bad: \"%s\"", k, "xyz");
}

/* Yields 2 items, then returns the (negative) code in arg. */
static int gen_return_code(subiter_gen *g, void *arg)
{
    int r;

    if ((r = tu_yield_count(g, 2)) != 0) {
        return r;
    }
    return (int)(intptr_t)arg;
}

/* Yields an item one byte over the ring's maximum and passes the
 * -EMSGSIZE on. */
static int gen_too_big(subiter_gen *g, void *arg)
{
    size_t len = (size_t)(uintptr_t)arg;
    unsigned char *buf = calloc(1, len);
    int r;

    if (buf == NULL) {
        return -ENOMEM;
    }
    r = subiter_yield(g, buf, len);
    free(buf);
    return r;
}

/* Yields max-size items, then probes max + 1 with yield and reserve.
 * Slots: 0 yield(max+1), 1 reserve(max+1), 2 buf cleared, 3 done. */
struct max_arg {
    _Atomic long *sh;
    size_t max;
    long n;
};

static int gen_max(subiter_gen *g, void *arg)
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
        fill(buf, a->max, (unsigned)i);
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
static int gen_empty_items(subiter_gen *g, void *arg)
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
static int gen_reserve_rules(subiter_gen *g, void *arg)
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
    fill(p, 100, 1000);
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
        fill(p, got, (unsigned)i);
        if ((r = subiter_commit(g, got)) != 0) {
            return r;
        }
    }
    atomic_store(&sh[8], 1);
    return 0;
}

/* Misuse inside the generator. Slots: 0 yield(NULL data, 5), 1 fail's
 * return (the last thing it does). */
static int gen_misuse(subiter_gen *g, void *arg)
{
    _Atomic long *sh = arg;
    int r;

    atomic_store(&sh[0], subiter_yield(g, NULL, 5));
    r = subiter_fail(g, "generator says no");
    atomic_store(&sh[1], r);
    return r;
}

/* Yields 2 items, then dies: arg 0 raise(SIGKILL), else _exit(arg). */
static int gen_die(subiter_gen *g, void *arg)
{
    int how = (int)(intptr_t)arg;
    int r;

    if ((r = tu_yield_count(g, 2)) != 0) {
        return r;
    }
    if (how == 0) {
        raise(SIGKILL);
    }
    _exit(how);
}

/* ---- the basics ---- */

START_TEST(test_api_items_in_order)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(0, TU_LONG_GRACE_MS);
    subiter *it;
    subiter_item item;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, tu_gen_count, (void *)100L, &o), 0);
    ck_assert_str_eq(subiter_errmsg(it), "");
    ck_assert_int_gt(subiter_pid(it), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    expect_count(it, 100);
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_api_next_before_start_is_einval)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(0, TU_LONG_GRACE_MS);
    subiter *it;
    subiter_item item = {&item, 7};

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, tu_gen_count, (void *)5L, &o), 0);
    ck_assert_int_eq(subiter_next(it, &item), -EINVAL);
    ck_assert_ptr_null(item.data);
    ck_assert_uint_eq(item.len, 0);
    ck_assert_str_ne(subiter_errmsg(it), "");
    /* Still usable: stop is a no-op, next is still -EINVAL. */
    ck_assert_int_eq(subiter_stop(it), 0);
    ck_assert_int_eq(subiter_next(it, &item), -EINVAL);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_str_eq(subiter_errmsg(it), "");
    expect_count(it, 5);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_api_reiterate_same_worker)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    subiter *it;
    pid_t pid;
    long i, n;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, tu_gen_count, (void *)3L, &o), 0);
    pid = subiter_pid(it);
    ck_assert_int_gt(pid, 0);
    for (i = 0; i < 200; i++) {
        n = i % 7;
        ck_assert_int_eq(subiter_start(it, &n, sizeof n), 0);
        expect_count(it, n);
        ck_assert_int_eq(subiter_pid(it), pid);
    }
    /* No input: the generator falls back to arg. */
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    expect_count(it, 3);
    ck_assert_int_eq(subiter_pid(it), pid);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_api_opts_null_gives_defaults)
{
    struct tu_snapshot snap;

    tu_snapshot(&snap);
    run_count(NULL, 1000);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- the initializer ---- */

START_TEST(test_api_init_runs_once)
{
    struct tu_snapshot snap;
    void *page;
    subiter_opts o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    _Atomic long *ctr;
    subiter *it;
    subiter_item item;
    int i;

    tu_snapshot(&snap);
    page = tu_shared_new(PAGE);
    ctr = page;
    o.init = init_count;
    ck_assert_int_eq(subiter_open(&it, gen_report_init, page, &o), 0);
    ck_assert_int_eq(atomic_load(&ctr[0]), 1);
    for (i = 0; i < 5; i++) {
        ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
        ck_assert_int_eq(subiter_next(it, &item), 1);
        ck_assert_int_eq(tu_item_long(&item), 1);
        expect_count(it, 3);
    }
    ck_assert_int_eq(atomic_load(&ctr[0]), 1);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_shared_free(page, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_api_init_failure)
{
    struct tu_snapshot snap;
    void *page;
    subiter_opts o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    _Atomic long *sh;
    subiter *it;
    subiter_item item;
    pid_t pid;
    int r;

    tu_snapshot(&snap);
    page = tu_shared_new(PAGE);
    sh = page;
    o.init = init_fail;
    ck_assert_int_eq(subiter_open(&it, tu_gen_count, page, &o), SUBITER_EINIT);
    ck_assert_ptr_nonnull(it);
    ck_assert_str_eq(subiter_errmsg(it), INIT_FAIL_TEXT);
    /* subiter_fail() returned SUBITER_EINIT in the initializer. */
    ck_assert_int_eq(atomic_load(&sh[0]), SUBITER_EINIT);
    pid = subiter_pid(it);
    ck_assert_int_gt(pid, 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), SUBITER_ECLOSED);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECLOSED);
    ck_assert_int_eq(subiter_stop(it), SUBITER_ECLOSED);
    ck_assert_int_eq(subiter_pid(it), pid);
    ck_assert_str_eq(subiter_errmsg(it), INIT_FAIL_TEXT);
    r = subiter_close(it);
    ck_assert_msg(r == 0 || r == SUBITER_ECHILD, "close: %d", r);
    tu_shared_free(page, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_api_init_errno_without_message)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    subiter *it;
    int r;

    tu_snapshot(&snap);
    o.init = init_enoent;
    ck_assert_int_eq(subiter_open(&it, tu_gen_count, NULL, &o), SUBITER_EINIT);
    ck_assert_str_eq(subiter_errmsg(it), subiter_strerror(-ENOENT));
    ck_assert_int_eq(subiter_start(it, NULL, 0), SUBITER_ECLOSED);
    r = subiter_close(it);
    ck_assert_msg(r == 0 || r == SUBITER_ECHILD, "close: %d", r);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- inputs ---- */

static void expect_echo(subiter *it, const void *in, size_t len)
{
    subiter_item item;
    int isnull;

    ck_assert_int_eq(subiter_next(it, &item), 1);
    ck_assert_uint_eq(item.len, len);
    if (len > 0) {
        ck_assert_mem_eq(item.data, in, len);
    }
    ck_assert_int_eq(subiter_next(it, &item), 1);
    ck_assert_uint_eq(item.len, sizeof isnull);
    memcpy(&isnull, item.data, sizeof isnull);
    ck_assert_int_eq(isnull, len == 0);
    ck_assert_int_eq(subiter_next(it, &item), 0);
}

START_TEST(test_api_input_reaches_generator)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    subiter *it;
    unsigned char *big;

    tu_snapshot(&snap);
    big = malloc(SUBITER_INPUT_MAX + 1);
    ck_assert_ptr_nonnull(big);
    fill(big, SUBITER_INPUT_MAX + 1, 3);
    ck_assert_int_eq(subiter_open(&it, gen_echo_input, NULL, &o), 0);

    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    expect_echo(it, NULL, 0);
    /* A non-NULL pointer with len 0 is no input either. */
    ck_assert_int_eq(subiter_start(it, "ignored", 0), 0);
    expect_echo(it, NULL, 0);
    ck_assert_int_eq(subiter_start(it, "hello", 5), 0);
    expect_echo(it, "hello", 5);
    ck_assert_int_eq(subiter_start(it, big, SUBITER_INPUT_MAX), 0);
    expect_echo(it, big, SUBITER_INPUT_MAX);

    /* One byte more: -EMSGSIZE, and the handle stays usable. */
    ck_assert_int_eq(subiter_start(it, big, SUBITER_INPUT_MAX + 1), -EMSGSIZE);
    ck_assert_str_ne(subiter_errmsg(it), "");
    ck_assert_int_eq(subiter_start(it, NULL, 5), -EINVAL);
    ck_assert_str_ne(subiter_errmsg(it), "");
    ck_assert_int_eq(subiter_start(it, big + 1, 1000), 0);
    ck_assert_str_eq(subiter_errmsg(it), "");
    expect_echo(it, big + 1, 1000);

    ck_assert_int_eq(subiter_close(it), 0);
    free(big);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_api_input_null_in_initializer)
{
    struct tu_snapshot snap;
    void *page;
    subiter_opts o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    _Atomic long *sh;
    subiter *it;

    tu_snapshot(&snap);
    page = tu_shared_new(PAGE);
    sh = page;
    o.init = init_probe;
    ck_assert_int_eq(subiter_open(&it, tu_gen_count, page, &o), 0);
    ck_assert_int_eq(atomic_load(&sh[6]), 1);
    ck_assert_int_eq(atomic_load(&sh[0]), 1);
    ck_assert_int_eq(atomic_load(&sh[1]), 0);
    /* The generator-only calls are misuse in the initializer. */
    ck_assert_int_eq(atomic_load(&sh[2]), -EINVAL);
    ck_assert_int_eq(atomic_load(&sh[3]), -EINVAL);
    ck_assert_int_eq(atomic_load(&sh[4]), 1);
    ck_assert_int_eq(atomic_load(&sh[5]), -EINVAL);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_shared_free(page, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- the two bounds ---- */

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

START_TEST(test_api_buffer_items_bound)
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
    subiter *it;
    subiter_item item;
    long i;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, gen_sized, a, o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    for (i = 0; i < a->n; i++) {
        ck_assert_int_eq(subiter_next(it, &item), 1);
        expect_pattern(&item, a->len, (unsigned)i);
        if (pause_every > 0 && i % pause_every == 0) {
            tu_sleep_ms(2);
        }
    }
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}

START_TEST(test_api_buffer_bytes_bound)
{
    subiter_opts o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    struct sized_arg a = {5 * 1024, 300, 0};

    o.buffer_bytes = SMALL_RING;
    o.buffer_items = 1000;
    check_sized(&a, &o, 50);
}
END_TEST

/* ---- generator failures ---- */

START_TEST(test_api_generator_failure)
{
    static const int ks[] = {0, 1, 7, 100};
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    subiter *it;
    subiter_item item = {&item, 3};
    char want[64];
    pid_t pid;
    int k = ks[_i], none = -1;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, gen_fail_at, NULL, &o), 0);
    pid = subiter_pid(it);
    ck_assert_int_eq(subiter_start(it, &k, sizeof k), 0);
    tu_expect_items(it, 0, k);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_EITER);
    ck_assert_ptr_null(item.data);
    snprintf(want, sizeof want, "record %d is bad: \"xyz\"", k);
    ck_assert_str_eq(subiter_errmsg(it), want);
    /* Ready again: next gives 0, and stop is a no-op. */
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_int_eq(subiter_stop(it), 0);
    /* The same worker runs a full iteration; start clears errmsg. */
    ck_assert_int_eq(subiter_start(it, &none, sizeof none), 0);
    ck_assert_str_eq(subiter_errmsg(it), "");
    expect_count(it, 10);
    /* And fails again, and again recovers. */
    ck_assert_int_eq(subiter_start(it, &k, sizeof k), 0);
    tu_expect_items(it, 0, k);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_EITER);
    ck_assert_str_eq(subiter_errmsg(it), want);
    ck_assert_int_eq(subiter_start(it, &none, sizeof none), 0);
    expect_count(it, 10);
    ck_assert_int_eq(subiter_pid(it), pid);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_api_generator_emsgsize_names_sizes)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    subiter *it;
    subiter_item item;
    char big[32], max[32];

    tu_snapshot(&snap);
    o.buffer_bytes = SMALL_RING;
    ck_assert_int_eq(
        subiter_open(&it, gen_too_big, (void *)(uintptr_t)(SMALL_MAX + 1), &o),
        0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_EITER);
    snprintf(big, sizeof big, "%zu", SMALL_MAX + 1);
    snprintf(max, sizeof max, "%zu", SMALL_MAX);
    ck_assert_msg(strstr(subiter_errmsg(it), big) != NULL,
                  "no item size in \"%s\"", subiter_errmsg(it));
    ck_assert_msg(strstr(subiter_errmsg(it), max) != NULL,
                  "no maximum in \"%s\"", subiter_errmsg(it));
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_api_generator_errno_without_message)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    subiter *it;
    subiter_item item;

    tu_snapshot(&snap);
    ck_assert_int_eq(
        subiter_open(&it, gen_return_code, (void *)(intptr_t)-EIO, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    tu_expect_items(it, 0, 2);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_EITER);
    ck_assert_str_eq(subiter_errmsg(it), subiter_strerror(-EIO));
    /* A message from an earlier iteration does not stick to this one. */
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    tu_expect_items(it, 0, 2);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_EITER);
    ck_assert_str_eq(subiter_errmsg(it), subiter_strerror(-EIO));
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- stop ---- */

START_TEST(test_api_stop_midway_then_full_iteration)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    subiter *it;
    subiter_item item;
    pid_t pid;
    long n = 1000;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, tu_gen_count, (void *)n, &o), 0);
    pid = subiter_pid(it);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    tu_expect_items(it, 0, 10);
    ck_assert_int_eq(subiter_stop(it), 0);
    /* Ready after a stop: next gives 0, stop is a no-op. */
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_int_eq(subiter_stop(it), 0);
    /* No stale item of the stopped iteration shows up. */
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    expect_count(it, n);
    ck_assert_int_eq(subiter_pid(it), pid);
    /* Stop right after start, before any next. */
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_int_eq(subiter_stop(it), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    expect_count(it, n);
    ck_assert_int_eq(subiter_pid(it), pid);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_api_stop_when_ready_or_ended)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    subiter *it;
    subiter_item item;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, tu_gen_count, (void *)4L, &o), 0);
    ck_assert_int_eq(subiter_stop(it), 0);
    ck_assert_int_eq(subiter_stop(it), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    expect_count(it, 4);
    /* Ended: stop is a no-op and the end stays sticky. */
    ck_assert_int_eq(subiter_stop(it), 0);
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    expect_count(it, 4);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_api_stop_blocked_generator_is_prompt)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    subiter *it;
    subiter_item item;
    pid_t pid;
    int64_t t0;

    tu_snapshot(&snap);
    o.buffer_items = 2;
    ck_assert_int_eq(subiter_open(&it, gen_forever, NULL, &o), 0);
    pid = subiter_pid(it);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    tu_expect_items(it, 0, 1);
    tu_sleep_ms(50); /* the worker fills the buffer and sleeps */
    t0 = tu_now_ms();
    ck_assert_int_eq(subiter_stop(it), 0);
    ck_assert_int_lt(tu_now_ms() - t0, 3000);
    ck_assert_int_eq(subiter_next(it, &item), 0);
    /* Still the same worker, ready for more. */
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    tu_expect_items(it, 0, 50);
    ck_assert_int_eq(subiter_stop(it), 0);
    ck_assert_int_eq(subiter_pid(it), pid);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_api_start_while_iterating_is_einval)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    subiter *it;
    subiter_item item;
    long n = 7;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, tu_gen_count, (void *)100L, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    /* Before the first item, and midway. */
    ck_assert_int_eq(subiter_start(it, NULL, 0), -EINVAL);
    ck_assert_str_ne(subiter_errmsg(it), "");
    tu_expect_items(it, 0, 10);
    ck_assert_int_eq(subiter_start(it, &n, sizeof n), -EINVAL);
    ck_assert_int_eq(subiter_start(it, NULL, SUBITER_INPUT_MAX + 1), -EINVAL);
    tu_expect_items(it, 10, 90);
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_int_eq(subiter_start(it, &n, sizeof n), 0);
    ck_assert_str_eq(subiter_errmsg(it), "");
    expect_count(it, n);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- item sizes ---- */

START_TEST(test_api_zero_length_items)
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

START_TEST(test_api_multi_mib_items)
{
    subiter_opts o = tu_opts_grace(20000, TU_LONG_GRACE_MS);
    struct sized_arg a = {(size_t)3 << 20, 4, _i};

    o.buffer_bytes = (size_t)4 << 20;
    check_sized(&a, &o, 0);
}
END_TEST

START_TEST(test_api_max_size_item)
{
    struct tu_snapshot snap;
    void *page;
    subiter_opts o = tu_opts_grace(5000, TU_LONG_GRACE_MS);
    struct max_arg a;
    subiter *it;
    subiter_item item;
    long i;

    tu_snapshot(&snap);
    page = tu_shared_new(PAGE);
    a.sh = page;
    a.max = SMALL_MAX;
    a.n = 5;
    o.buffer_bytes = SMALL_RING;
    ck_assert_int_eq(subiter_open(&it, gen_max, &a, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    for (i = 0; i < a.n; i++) {
        int r = subiter_next(it, &item);

        ck_assert_msg(r == 1, "item %ld: %d (%s)", i, r, subiter_errmsg(it));
        expect_pattern(&item, a.max, (unsigned)i);
    }
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

START_TEST(test_api_reserve_commit)
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
    o.buffer_bytes = SMALL_RING;
    ck_assert_int_eq(subiter_open(&it, gen_reserve_rules, page, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_int_eq(subiter_next(it, &item), 1);
    expect_pattern(&item, 60, 1000);
    for (i = 0; i < 100; i++) {
        ck_assert_int_eq(subiter_next(it, &item), 1);
        expect_pattern(&item, 900 + (size_t)i * 37 - (size_t)i % 5,
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

/* ---- misuse ---- */

START_TEST(test_api_null_arguments)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    subiter *it = NULL;
    subiter_item item = {&item, 9};
    void *buf = &buf;
    size_t len = 5;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(NULL, tu_gen_count, NULL, &o), -EINVAL);
    ck_assert_int_eq(subiter_start(NULL, NULL, 0), -EINVAL);
    ck_assert_int_eq(subiter_start(NULL, "x", 1), -EINVAL);
    ck_assert_int_eq(subiter_next(NULL, &item), -EINVAL);
    ck_assert_ptr_null(item.data);
    ck_assert_uint_eq(item.len, 0);
    ck_assert_int_eq(subiter_next(NULL, NULL), -EINVAL);
    ck_assert_int_eq(subiter_stop(NULL), -EINVAL);
    ck_assert_int_eq(subiter_close(NULL), 0);
    ck_assert_str_eq(subiter_errmsg(NULL), "out of memory");
    ck_assert_int_eq(subiter_pid(NULL), 0);

    /* Child-side calls with no generator context. */
    ck_assert_int_eq(subiter_yield(NULL, "x", 1), -EINVAL);
    ck_assert_int_eq(subiter_yield(NULL, NULL, 0), -EINVAL);
    ck_assert_int_eq(subiter_reserve(NULL, 8, &buf), -EINVAL);
    ck_assert_ptr_null(buf);
    ck_assert_int_eq(subiter_commit(NULL, 0), -EINVAL);
    ck_assert_int_eq(subiter_fail(NULL, "%s", "nope"), -EINVAL);
    ck_assert_ptr_null(subiter_input(NULL, &len));
    ck_assert_uint_eq(len, 0);
    ck_assert_ptr_null(subiter_input(NULL, NULL));

    /* NULL generator: -EINVAL, with a handle that explains. */
    ck_assert_int_eq(subiter_open(&it, NULL, NULL, &o), -EINVAL);
    ck_assert_ptr_nonnull(it);
    ck_assert_str_ne(subiter_errmsg(it), "");
    ck_assert_int_eq(subiter_pid(it), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), SUBITER_ECLOSED);
    ck_assert_int_eq(subiter_close(it), 0);

    /* NULL item on a live handle: -EINVAL, and the handle goes on. */
    ck_assert_int_eq(subiter_open(&it, tu_gen_count, (void *)20L, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    tu_expect_items(it, 0, 5);
    ck_assert_int_eq(subiter_next(it, NULL), -EINVAL);
    tu_expect_items(it, 5, 15);
    ck_assert_int_eq(subiter_next(it, NULL), -EINVAL);
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_api_misuse_in_generator)
{
    struct tu_snapshot snap;
    void *page;
    subiter_opts o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    _Atomic long *sh;
    subiter *it;
    subiter_item item;

    tu_snapshot(&snap);
    page = tu_shared_new(PAGE);
    sh = page;
    ck_assert_int_eq(subiter_open(&it, gen_misuse, page, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_EITER);
    ck_assert_str_eq(subiter_errmsg(it), "generator says no");
    ck_assert_int_eq(atomic_load(&sh[0]), -EINVAL);
    ck_assert_int_eq(atomic_load(&sh[1]), SUBITER_EITER);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_shared_free(page, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- options ---- */

/* Open with bad options: rc, a handle that explains, no worker. */
static void expect_bad_opts(const subiter_opts *o, int rc)
{
    subiter *it = NULL;

    ck_assert_int_eq(subiter_open(&it, tu_gen_count, NULL, o), rc);
    ck_assert_ptr_nonnull(it);
    ck_assert_str_ne(subiter_errmsg(it), "");
    ck_assert_int_eq(subiter_pid(it), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), SUBITER_ECLOSED);
    ck_assert_int_eq(subiter_close(it), 0);
}

START_TEST(test_api_opts_invalid)
{
    struct tu_snapshot snap;
    subiter_opts o;

    tu_snapshot(&snap);
    o = tu_opts_grace(0, TU_LONG_GRACE_MS);
    o.size = sizeof o - 1;
    expect_bad_opts(&o, -EINVAL);
    o.size = 0;
    expect_bad_opts(&o, -EINVAL);

    o = tu_opts_grace(0, TU_LONG_GRACE_MS);
    o.start_method = 7;
    expect_bad_opts(&o, -EINVAL);
    o.start_method = -1;
    expect_bad_opts(&o, -EINVAL);
    o.start_method = SUBITER_FORKSERVER;
    expect_bad_opts(&o, -ENOTSUP);
    o.start_method = SUBITER_SPAWN;
    expect_bad_opts(&o, -ENOTSUP);

    o = tu_opts_grace(0, TU_LONG_GRACE_MS);
    o.grace_ms = -1;
    expect_bad_opts(&o, -EINVAL);

    o = tu_opts_grace(0, TU_LONG_GRACE_MS);
    o.buffer_bytes = ((size_t)1 << 30) + 1;
    expect_bad_opts(&o, -EINVAL);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_api_opts_trailing_bytes)
{
    struct tu_snapshot snap;
    struct {
        subiter_opts o;
        unsigned char future[24];
    } big;

    tu_snapshot(&snap);
    memset(&big, 0, sizeof big);
    big.o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    big.o.size = sizeof big;

    /* Zero bytes past the known fields: accepted. */
    run_count(&big.o, 3);

    /* Any non-zero one: -EINVAL. */
    big.future[sizeof big.future - 1] = 1;
    expect_bad_opts(&big.o, -EINVAL);
    big.future[sizeof big.future - 1] = 0;
    big.future[0] = 0x80;
    expect_bad_opts(&big.o, -EINVAL);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_api_opts_zero_means_default)
{
    struct tu_snapshot snap;
    subiter_opts o;

    tu_snapshot(&snap);
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    o.grace_ms = 200;
    run_count(&o, 500);
    /* A negative timeout means none. */
    o.timeout_ms = -5;
    run_count(&o, 5);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- the state table ---- */

static void check_dead_after_echild(int how, const char *cause)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    subiter *it;
    subiter_item item = {&item, 1};
    char msg[512];
    pid_t pid;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, gen_die, (void *)(intptr_t)how, &o), 0);
    pid = subiter_pid(it);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_str_eq(subiter_errmsg(it), "");
    tu_expect_items(it, 0, 2);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECHILD);
    snprintf(msg, sizeof msg, "%s", subiter_errmsg(it));
    ck_assert_msg(strstr(msg, cause) != NULL, "no \"%s\" in \"%s\"", cause,
                  msg);
    ck_assert_msg(strstr(msg, "2 items") != NULL, "no count in \"%s\"", msg);

    /* Dead: every call but errmsg, pid and close is SUBITER_ECLOSED. */
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECLOSED);
    ck_assert_ptr_null(item.data);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECLOSED);
    ck_assert_int_eq(subiter_start(it, NULL, 0), SUBITER_ECLOSED);
    ck_assert_int_eq(subiter_start(it, "x", 1), SUBITER_ECLOSED);
    ck_assert_int_eq(subiter_stop(it), SUBITER_ECLOSED);
    ck_assert_int_eq(subiter_pid(it), pid);
    ck_assert_str_eq(subiter_errmsg(it), msg);
    ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);
    tu_assert_clean(&snap);
}

START_TEST(test_api_dead_after_sigkill)
{
    check_dead_after_echild(0, "SIGKILL");
}
END_TEST

START_TEST(test_api_dead_after_exit)
{
    check_dead_after_echild(3, "status 3");
}
END_TEST

START_TEST(test_api_start_clears_errmsg)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    subiter *it;
    subiter_item item;
    int k = 2;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, gen_fail_at, NULL, &o), 0);
    ck_assert_str_eq(subiter_errmsg(it), "");
    /* After a failed call. */
    ck_assert_int_eq(subiter_next(it, &item), -EINVAL);
    ck_assert_str_ne(subiter_errmsg(it), "");
    ck_assert_int_eq(subiter_start(it, &k, sizeof k), 0);
    ck_assert_str_eq(subiter_errmsg(it), "");
    /* After a generator failure. */
    tu_expect_items(it, 0, k);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_EITER);
    ck_assert_str_ne(subiter_errmsg(it), "");
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_str_eq(subiter_errmsg(it), "");
    expect_count(it, 10);
    ck_assert_str_eq(subiter_errmsg(it), "");
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_api_close_in_each_state)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    subiter *it;
    subiter_item item;
    int64_t t0;

    tu_snapshot(&snap);
    /* ready, right after open */
    ck_assert_int_eq(subiter_open(&it, gen_forever, NULL, &o), 0);
    ck_assert_int_eq(subiter_close(it), 0);
    /* ready, after a stop */
    ck_assert_int_eq(subiter_open(&it, gen_forever, NULL, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    tu_expect_items(it, 0, 3);
    ck_assert_int_eq(subiter_stop(it), 0);
    ck_assert_int_eq(subiter_close(it), 0);
    /* iterating, worker blocked on a full ring, an item held */
    o.buffer_items = 4;
    ck_assert_int_eq(subiter_open(&it, gen_forever, NULL, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    tu_expect_items(it, 0, 3);
    tu_sleep_ms(20);
    ck_assert_int_eq(subiter_close(it), 0);
    /* iterating, right after start */
    ck_assert_int_eq(subiter_open(&it, gen_forever, NULL, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_int_eq(subiter_close(it), 0);
    /* ended */
    run_count(&o, 3);
    /* iterating, generator deaf to ABORT: signalled after the grace */
    o.grace_ms = 200;
    ck_assert_int_eq(subiter_open(&it, tu_gen_hang, NULL, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_int_eq(subiter_next(it, &item), 1);
    t0 = tu_now_ms();
    ck_assert_int_eq(subiter_close(it), SUBITER_ETIMEDOUT);
    ck_assert_int_lt(tu_now_ms() - t0, 10000);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_api_timeout_not_counted_between_calls)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(400, TU_LONG_GRACE_MS);
    subiter *it;
    subiter_item item;
    long i;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, tu_gen_count, (void *)3L, &o), 0);
    tu_sleep_ms(600);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    for (i = 0; i < 3; i++) {
        tu_sleep_ms(600);
        ck_assert_int_eq(subiter_next(it, &item), 1);
        ck_assert_int_eq(tu_item_long(&item), i);
    }
    tu_sleep_ms(600);
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

static Suite *api_suite(void)
{
    Suite *s = suite_create("api");
    TCase *tc;

    tc = tcase_create("basics");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_api_items_in_order);
    tcase_add_test(tc, test_api_next_before_start_is_einval);
    tcase_add_test(tc, test_api_reiterate_same_worker);
    tcase_add_test(tc, test_api_opts_null_gives_defaults);
    tcase_add_test(tc, test_api_init_runs_once);
    tcase_add_test(tc, test_api_init_failure);
    tcase_add_test(tc, test_api_init_errno_without_message);
    tcase_add_test(tc, test_api_input_reaches_generator);
    tcase_add_test(tc, test_api_input_null_in_initializer);
    suite_add_tcase(s, tc);

    tc = tcase_create("bounds");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_api_buffer_items_bound, 0, 3);
    tcase_add_test(tc, test_api_buffer_bytes_bound);
    tcase_add_loop_test(tc, test_api_multi_mib_items, 0, 2);
    tcase_add_test(tc, test_api_max_size_item);
    tcase_add_test(tc, test_api_zero_length_items);
    tcase_add_test(tc, test_api_reserve_commit);
    suite_add_tcase(s, tc);

    tc = tcase_create("failures");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_api_generator_failure, 0, 4);
    tcase_add_test(tc, test_api_generator_emsgsize_names_sizes);
    tcase_add_test(tc, test_api_generator_errno_without_message);
    suite_add_tcase(s, tc);

    tc = tcase_create("stop");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_api_stop_midway_then_full_iteration);
    tcase_add_test(tc, test_api_stop_when_ready_or_ended);
    tcase_add_test(tc, test_api_stop_blocked_generator_is_prompt);
    tcase_add_test(tc, test_api_start_while_iterating_is_einval);
    suite_add_tcase(s, tc);

    tc = tcase_create("misuse");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_api_null_arguments);
    tcase_add_test(tc, test_api_misuse_in_generator);
    tcase_add_test(tc, test_api_opts_invalid);
    tcase_add_test(tc, test_api_opts_trailing_bytes);
    tcase_add_test(tc, test_api_opts_zero_means_default);
    suite_add_tcase(s, tc);

    tc = tcase_create("states");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_api_dead_after_sigkill);
    tcase_add_test(tc, test_api_dead_after_exit);
    tcase_add_test(tc, test_api_start_clears_errmsg);
    tcase_add_test(tc, test_api_close_in_each_state);
    tcase_add_test(tc, test_api_timeout_not_counted_between_calls);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(api_suite());
}
