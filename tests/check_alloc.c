/* check_alloc.c: every allocation the parent makes fails in turn (as in
 * jansson's chaos test): each failure gives a clean -ENOMEM, nothing leaks,
 * nothing crashes, and the handle stays usable where the API says so. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "testutil.h"

#define ITEMS 5

TU_EXPORT(int gen_items(subiter_gen *g, void *arg))
{
    (void)arg;
    return tu_yield_count(g, ITEMS);
}

TU_EXPORT(int gen_fail(subiter_gen *g, void *arg))
{
    (void)arg;
    return subiter_fail(g, "failing on purpose");
}

/* Drain one iteration, retrying after -ENOMEM; returns the outcome and
 * counts the -ENOMEM seen. */
static int drain(subiter *it, long *items, int *nomem)
{
    subiter_item item;
    long v;
    int r;

    for (;;) {
        r = subiter_next(it, &item);
        if (r == -ENOMEM) {
            ck_assert_ptr_null(item.data);
            ck_assert_str_eq(subiter_errmsg(it), "out of memory");
            (*nomem)++;
            continue;
        }
        if (r != 1) {
            return r;
        }
        memcpy(&v, item.data, sizeof v);
        ck_assert_int_eq(v, *items);
        (*items)++;
    }
}

/* Fail the n-th allocation of a whole open/iterate/close cycle, for every
 * n until a cycle makes fewer allocations than n. */
static void chaos(subiter_iter_fn fn, int want_end, const char *name)
{
    subiter_opts o = tu_opts(0);
    unsigned long n, made;
    int sites = 0;

    for (n = 1;; n++) {
        struct tu_snapshot snap;
        subiter *it = NULL;
        long items = 0;
        int nomem = 0, r;

        tu_snapshot(&snap);
        (void)subiter__alloc_fail_at(n);
        r = subiter_open(&it, fn, NULL, &o);
        if (r == -ENOMEM) {
            sites++;
            ck_assert_str_eq(subiter_errmsg(it), "out of memory");
        } else {
            ck_assert_int_eq(r, 0);
            ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
            ck_assert_int_eq(drain(it, &items, &nomem), want_end);
            /* A second iteration after the fault must be whole. */
            ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
            items = 0;
            ck_assert_int_eq(drain(it, &items, &nomem), want_end);
            ck_assert_int_eq(items, want_end == 0 ? ITEMS : 0);
            sites += nomem;
        }
        (void)subiter_close(it);
        made = subiter__alloc_fail_at(0);
        tu_assert_clean(&snap);
        if (made < n) {
            break;
        }
    }
    fprintf(stderr,
            "alloc chaos %s: %lu allocations per cycle, %d failures "
            "injected, all gave -ENOMEM\n",
            name, n - 1, sites);
    ck_assert_int_ge(sites, 1);
}

START_TEST(test_alloc_each_failure_is_enomem)
{
    chaos(gen_items, 0, "items");
}
END_TEST

START_TEST(test_alloc_each_failure_is_enomem_on_eiter)
{
    chaos(gen_fail, SUBITER_EITER, "failing generator");
}
END_TEST

START_TEST(test_alloc_first_failure_leaves_out_null)
{
    subiter *it = (subiter *)&it;

    (void)subiter__alloc_fail_at(1);
    ck_assert_int_eq(subiter_open(&it, gen_items, NULL, NULL), -ENOMEM);
    ck_assert_ptr_null(it);
    ck_assert_str_eq(subiter_errmsg(it), "out of memory");
    ck_assert_int_eq(subiter_close(it), 0);
    (void)subiter__alloc_fail_at(0);
}
END_TEST

static Suite *alloc_suite(void)
{
    Suite *s = suite_create("alloc");
    TCase *tc = tcase_create("chaos");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_alloc_each_failure_is_enomem);
    tcase_add_test(tc, test_alloc_each_failure_is_enomem_on_eiter);
    tcase_add_test(tc, test_alloc_first_failure_leaves_out_null);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(alloc_suite());
}
