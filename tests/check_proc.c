/* check_proc.c: the public API's behaviour, state by state. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "testutil.h"

static int gen_count(subiter_gen *g, void *arg)
{
    long n = (long)(intptr_t)arg, i;
    int r;

    for (i = 0; i < n; i++) {
        if ((r = subiter_yield(g, &i, sizeof i)) != 0) {
            return r;
        }
    }
    return 0;
}

START_TEST(test_proc_placeholder)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts(0);
    subiter *it;
    subiter_item item;
    long i, v;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, gen_count, (void *)100L, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    for (i = 0; i < 100; i++) {
        ck_assert_int_eq(subiter_next(it, &item), 1);
        ck_assert_uint_eq(item.len, sizeof v);
        memcpy(&v, item.data, sizeof v);
        ck_assert_int_eq(v, i);
    }
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

static Suite *proc_suite(void)
{
    Suite *s = suite_create("proc");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_proc_placeholder);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(proc_suite());
}
