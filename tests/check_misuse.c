/* check_misuse.c: the API misused: NULL and out-of-range arguments,
 * generator-only calls made wrongly inside the generator, and options
 * that are invalid, carry trailing bytes or leave fields zero. Generators
 * report through shared pages, never ck_assert. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#define PAGE 4096

/* ---- generators (run in the worker: no ck_assert here) ---- */

/* Misuse inside the generator. Slots: 0 yield(NULL data, 5), 1 fail's
 * return (the last thing it does). */
TU_EXPORT(int gen_misuse(subiter_gen *g, void *arg))
{
    _Atomic long *sh = arg;
    int r;

    atomic_store(&sh[0], subiter_yield(g, NULL, 5));
    r = subiter_fail(g, "generator says no");
    atomic_store(&sh[1], r);
    return r;
}

START_TEST(test_misuse_null_arguments)
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

START_TEST(test_misuse_in_generator)
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

START_TEST(test_misuse_opts_invalid)
{
    struct tu_snapshot snap;
    subiter_opts o;

    tu_snapshot(&snap);
    o = tu_opts_grace(0, TU_LONG_GRACE_MS);
    /* Smaller than the first release's struct (0.1 ended at arg_len). */
    o.size = offsetof(subiter_opts, arg_len) - 1;
    expect_bad_opts(&o, -EINVAL);
    o.size = 0;
    expect_bad_opts(&o, -EINVAL);

    o = tu_opts_grace(0, TU_LONG_GRACE_MS);
    o.start_method = 7;
    expect_bad_opts(&o, -EINVAL);
    o.start_method = -1;
    expect_bad_opts(&o, -EINVAL);

    o = tu_opts_grace(0, TU_LONG_GRACE_MS);
    o.grace_ms = -1;
    expect_bad_opts(&o, -EINVAL);

    o = tu_opts_grace(0, TU_LONG_GRACE_MS);
    o.buffer_bytes = ((size_t)1 << 30) + 1;
    expect_bad_opts(&o, -EINVAL);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_misuse_opts_trailing_bytes)
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
    tu_run_count(&big.o, 3);

    /* Any non-zero one: -EINVAL. */
    big.future[sizeof big.future - 1] = 1;
    expect_bad_opts(&big.o, -EINVAL);
    big.future[sizeof big.future - 1] = 0;
    big.future[0] = 0x80;
    expect_bad_opts(&big.o, -EINVAL);
    tu_assert_clean(&snap);
}
END_TEST

/* A caller built against 0.1's header passes 0.1's smaller struct: it is
 * served, and what lies past its size (here garbage) is never read. */
START_TEST(test_misuse_opts_older_size)
{
    struct tu_snapshot snap;
    subiter_opts o;

    tu_snapshot(&snap);
    o = tu_opts_grace(0, TU_LONG_GRACE_MS);
    o.size = offsetof(subiter_opts, arg_len);
    memset(&o.arg_len, 0xa5, sizeof o - o.size);
    tu_run_count(&o, 7);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_misuse_opts_zero_means_default)
{
    struct tu_snapshot snap;
    subiter_opts o;

    tu_snapshot(&snap);
    memset(&o, 0, sizeof o);
    o.size = sizeof o;
    o.grace_ms = 200;
    tu_run_count(&o, 500);
    /* A negative timeout means none. */
    o.timeout_ms = -5;
    tu_run_count(&o, 5);
    tu_assert_clean(&snap);
}
END_TEST

static Suite *misuse_suite(void)
{
    Suite *s = suite_create("misuse");
    TCase *tc;

    tc = tcase_create("misuse");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_misuse_null_arguments);
    tcase_add_test(tc, test_misuse_in_generator);
    tcase_add_test(tc, test_misuse_opts_invalid);
    tcase_add_test(tc, test_misuse_opts_trailing_bytes);
    tcase_add_test(tc, test_misuse_opts_zero_means_default);
    tcase_add_test(tc, test_misuse_opts_older_size);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(misuse_suite());
}
