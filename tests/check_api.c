/* check_api.c: the public API's behaviour, state by state (DESIGN.md's
 * state table: ready / iterating / ended / dead x start, next, stop,
 * close), the initializer, inputs, generator failures and stop. Items
 * (bounds, sizes, zero-copy) are in check_items.c, misuse and options in
 * check_misuse.c. Generators report through shared pages, never
 * ck_assert. */
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

/* Yields 0, 1, 2, ... until asked to stop. */
TU_EXPORT(int gen_forever(subiter_gen *g, void *arg))
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
TU_EXPORT(int init_count(subiter_gen *g, void *arg))
{
    _Atomic long *ctr = arg;

    (void)g;
    atomic_fetch_add(&ctr[0], 1);
    return 0;
}

/* Yields the initializer count, then 0 .. 2. */
TU_EXPORT(int gen_report_init(subiter_gen *g, void *arg))
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

TU_EXPORT(int init_fail(subiter_gen *g, void *arg))
{
    _Atomic long *ctr = arg;
    int r = subiter_fail(g, "cannot load model '%s': %d%% done, gave up",
                         "x.bin", 42);

    atomic_store(&ctr[0], r);
    return r;
}

TU_EXPORT(int init_enoent(subiter_gen *g, void *arg))
{
    (void)g;
    (void)arg;
    return -ENOENT;
}

/* Echoes the input as one item, then an int: was subiter_input NULL? */
TU_EXPORT(int gen_echo_input(subiter_gen *g, void *arg))
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
TU_EXPORT(int init_probe(subiter_gen *g, void *arg))
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

/* Input: an int k. Yields k items, then fails with a message (k < 0:
 * 10 items and success). */
TU_EXPORT(int gen_fail_at(subiter_gen *g, void *arg))
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
TU_EXPORT(int gen_return_code(subiter_gen *g, void *arg))
{
    int r;

    if ((r = tu_yield_count(g, 2)) != 0) {
        return r;
    }
    return (int)(intptr_t)arg;
}

/* Yields an item one byte over the ring's maximum and passes the
 * -EMSGSIZE on. */
TU_EXPORT(int gen_too_big(subiter_gen *g, void *arg))
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

/* Yields 2 items, then dies: arg 0 raise(SIGKILL), else _exit(arg). */
TU_EXPORT(int gen_die(subiter_gen *g, void *arg))
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
    tu_expect_count(it, 100);
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
    tu_expect_count(it, 5);
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
        tu_expect_count(it, n);
        ck_assert_int_eq(subiter_pid(it), pid);
    }
    /* No input: the generator falls back to arg. */
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    tu_expect_count(it, 3);
    ck_assert_int_eq(subiter_pid(it), pid);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_api_opts_null_gives_defaults)
{
    struct tu_snapshot snap;

    tu_snapshot(&snap);
    tu_run_count(NULL, 1000);
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
        tu_expect_count(it, 3);
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
    tu_fill(big, SUBITER_INPUT_MAX + 1, 3);
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
    tu_expect_count(it, 10);
    /* And fails again, and again recovers. */
    ck_assert_int_eq(subiter_start(it, &k, sizeof k), 0);
    tu_expect_items(it, 0, k);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_EITER);
    ck_assert_str_eq(subiter_errmsg(it), want);
    ck_assert_int_eq(subiter_start(it, &none, sizeof none), 0);
    tu_expect_count(it, 10);
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
    o.buffer_bytes = TU_SMALL_RING;
    ck_assert_int_eq(subiter_open(&it, gen_too_big,
                                  (void *)(uintptr_t)(TU_SMALL_MAX + 1), &o),
                     0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_EITER);
    snprintf(big, sizeof big, "%zu", TU_SMALL_MAX + 1);
    snprintf(max, sizeof max, "%zu", TU_SMALL_MAX);
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
    tu_expect_count(it, n);
    ck_assert_int_eq(subiter_pid(it), pid);
    /* Stop right after start, before any next. */
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_int_eq(subiter_stop(it), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    tu_expect_count(it, n);
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
    tu_expect_count(it, 4);
    /* Ended: stop is a no-op and the end stays sticky. */
    ck_assert_int_eq(subiter_stop(it), 0);
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    tu_expect_count(it, 4);
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
    tu_expect_count(it, n);
    ck_assert_int_eq(subiter_close(it), 0);
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
    tu_expect_count(it, 10);
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
    tu_run_count(&o, 3);
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
