/* check_identity.c: what the library and a worker say about themselves:
 * the version string, and a lone handle's worker id and count (a pool's
 * are tested with its shards). */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "testutil.h"

START_TEST(test_identity_version)
{
    char want[32];

    snprintf(want, sizeof want, "%d.%d.%d", SUBITER_VERSION_MAJOR,
             SUBITER_VERSION_MINOR, SUBITER_VERSION_PATCH);
    ck_assert_str_eq(subiter_version(), SUBITER_VERSION_STRING);
    ck_assert_str_eq(subiter_version(), want);
}
END_TEST

/* Yields what the initializer saw (id, count), then what it sees. */
static unsigned seen_in_init[2];

TU_EXPORT(int init_identity(subiter_gen *g, void *arg))
{
    (void)arg;
    seen_in_init[0] = subiter_worker_id(g);
    seen_in_init[1] = subiter_num_workers(g);
    return 0;
}

TU_EXPORT(int gen_identity(subiter_gen *g, void *arg))
{
    unsigned v[4];

    (void)arg;
    v[0] = seen_in_init[0];
    v[1] = seen_in_init[1];
    v[2] = subiter_worker_id(g);
    v[3] = subiter_num_workers(g);
    return subiter_yield(g, v, sizeof v);
}

/* A worker of subiter_open() is shard 0 of 1, in its initializer and in
 * its generator. */
START_TEST(test_identity_lone_worker)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts(0);
    subiter_item item;
    unsigned v[4];
    subiter *it;

    tu_snapshot(&snap);
    o.init = init_identity;
    seen_in_init[0] = seen_in_init[1] = 99;
    ck_assert_int_eq(subiter_open(&it, gen_identity, NULL, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_int_eq(subiter_next(it, &item), 1);
    ck_assert_uint_eq(item.len, sizeof v);
    memcpy(v, item.data, sizeof v);
    ck_assert_uint_eq(v[0], 0);
    ck_assert_uint_eq(v[1], 1);
    ck_assert_uint_eq(v[2], 0);
    ck_assert_uint_eq(v[3], 1);
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

static Suite *identity_suite(void)
{
    Suite *s = suite_create("identity");
    TCase *tc = tcase_create("identity");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_identity_version);
    tcase_add_test(tc, test_identity_lone_worker);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(identity_suite());
}
