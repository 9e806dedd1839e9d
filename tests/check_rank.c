/* check_rank.c: ranks and seeds. subiter_env_rank() with each launcher's
 * variables and their order, garbage refused; a pool with world_size 0
 * takes them from the environment; subiter_rank(), subiter_world_size(),
 * subiter_local_id(); subiter_seed() distinct per worker and iteration,
 * the same again for the same opts.seed (after a resume too), libc's
 * rand() and drand48() reseeded from it. Generators report through their
 * items, never ck_assert. Every pool case checks that nothing is left. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "testpool.h"

#define WORKERS 3

/* What each worker reports, as its one item of an iteration. */
struct report {
    unsigned long long seed, init_seed;
    unsigned rank, world, local, shard;
    int rnd;
    double drnd;
};

/* Set by the initializer, in the worker. */
static unsigned long long init_seed;

static int init_note(subiter_gen *g, void *arg)
{
    (void)arg;
    init_seed = subiter_seed(g);
    return 0;
}

static int gen_report(subiter_gen *g, void *arg)
{
    struct report r;

    (void)arg;
    memset(&r, 0, sizeof r);
    r.seed = subiter_seed(g);
    r.init_seed = init_seed;
    r.rank = subiter_rank(g);
    r.world = subiter_world_size(g);
    r.local = subiter_local_id(g);
    r.shard = subiter_worker_id(g);
    r.rnd = rand();
    r.drnd = drand48();
    return subiter_yield(g, &r, sizeof r);
}

static subiter_pool *open_seeded(unsigned long long seed, unsigned world)
{
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(WORKERS, &wo);
    subiter_pool *p;

    wo.init = init_note;
    po.seed = seed;
    po.world_size = world;
    ck_assert_int_eq(subiter_pool_open(&p, gen_report, NULL, &po), 0);
    return p;
}

/* One iteration's reports, by local id. */
static void one_iteration(subiter_pool *p, struct report *out)
{
    subiter_pool_item item;
    unsigned k;

    ck_assert_int_eq(subiter_pool_start(p, NULL, 0), 0);
    for (k = 0; k < WORKERS; k++) {
        ck_assert_int_eq(subiter_pool_next(p, &item), 1);
        ck_assert_uint_eq(item.len, sizeof *out);
        memcpy(&out[item.worker], item.data, sizeof *out);
    }
    ck_assert_int_eq(subiter_pool_next(p, &item), 0);
}

START_TEST(test_rank_seeds_distinct_and_reproducible)
{
    struct tu_snapshot snap;
    struct report a[2][WORKERS], b[2][WORKERS], c[WORKERS];
    subiter_pool *p;
    unsigned i, j, k, l;

    tu_snapshot(&snap);
    p = open_seeded(42, 1);
    ck_assert_uint_eq(tp_stats(p).seed, 42);
    one_iteration(p, a[0]);
    one_iteration(p, a[1]);
    tp_close_clean(p);
    /* Distinct per worker and iteration, and from the initializers'. */
    for (i = 0; i < 2 * WORKERS; i++) {
        const struct report *x = &a[i / WORKERS][i % WORKERS];

        ck_assert_uint_ne(x->seed, 0);
        ck_assert_uint_eq(x->local, i % WORKERS);
        ck_assert_uint_eq(x->shard, i % WORKERS);
        ck_assert_uint_eq(x->rank, 0);
        ck_assert_uint_eq(x->world, 1);
        for (j = i + 1; j < 2 * WORKERS; j++) {
            const struct report *y = &a[j / WORKERS][j % WORKERS];

            ck_assert_uint_ne(x->seed, y->seed);
            ck_assert_int_ne(x->rnd, y->rnd);
            ck_assert(x->drnd != y->drnd);
        }
        for (k = 0; k < WORKERS; k++) {
            ck_assert_uint_ne(x->seed, a[0][k].init_seed);
        }
    }
    for (k = 0; k < WORKERS; k++) {
        for (l = k + 1; l < WORKERS; l++) {
            ck_assert_uint_ne(a[0][k].init_seed, a[0][l].init_seed);
        }
    }
    /* The same seed: the same seeds and the same draws. */
    p = open_seeded(42, 1);
    one_iteration(p, b[0]);
    one_iteration(p, b[1]);
    tp_close_clean(p);
    ck_assert_int_eq(memcmp(a, b, sizeof a), 0);
    /* Another seed: others. */
    p = open_seeded(43, 1);
    one_iteration(p, c);
    tp_close_clean(p);
    for (k = 0; k < WORKERS; k++) {
        ck_assert_uint_ne(c[k].seed, a[0][k].seed);
    }
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_rank_seed_zero_is_drawn)
{
    struct tu_snapshot snap;
    struct report a[WORKERS], b[WORKERS];
    unsigned long long s1, s2;
    subiter_pool *p;

    tu_snapshot(&snap);
    p = open_seeded(0, 1);
    s1 = tp_stats(p).seed;
    one_iteration(p, a);
    tp_close_clean(p);
    p = open_seeded(0, 1);
    s2 = tp_stats(p).seed;
    one_iteration(p, b);
    tp_close_clean(p);
    ck_assert_uint_ne(s1, 0);
    ck_assert_uint_ne(s2, 0);
    ck_assert_uint_ne(s1, s2);
    ck_assert_uint_ne(a[0].seed, b[0].seed);
    /* The reported seed gives the same seeds again. */
    p = open_seeded(s1, 1);
    one_iteration(p, b);
    tp_close_clean(p);
    ck_assert_uint_eq(a[0].seed, b[0].seed);
    ck_assert_uint_eq(a[2].seed, b[2].seed);
    tu_assert_clean(&snap);
}
END_TEST

/* A resumed iteration draws the seeds of the one it resumes. */
START_TEST(test_rank_seed_survives_resume)
{
    struct tu_snapshot snap;
    struct report a[2][WORKERS], b[WORKERS];
    unsigned char ck[128];
    subiter_pool_item item;
    size_t len;
    subiter_pool *p;
    unsigned k;

    tu_snapshot(&snap);
    p = open_seeded(9, 1);
    one_iteration(p, a[0]);
    ck_assert_int_eq(subiter_pool_start(p, NULL, 0), 0);
    ck_assert_int_eq(subiter_pool_checkpoint(p, ck, sizeof ck, &len), 0);
    for (k = 0; k < WORKERS; k++) {
        ck_assert_int_eq(subiter_pool_next(p, &item), 1);
        memcpy(&a[1][item.worker], item.data, sizeof a[1][0]);
    }
    tp_close_clean(p);
    p = open_seeded(9, 1);
    ck_assert_int_eq(subiter_pool_start_from(p, NULL, 0, ck, len), 0);
    for (k = 0; k < WORKERS; k++) {
        ck_assert_int_eq(subiter_pool_next(p, &item), 1);
        memcpy(&b[item.worker], item.data, sizeof b[0]);
    }
    ck_assert_int_eq(subiter_pool_next(p, &item), 0);
    tp_close_clean(p);
    for (k = 0; k < WORKERS; k++) {
        ck_assert_uint_eq(b[k].seed, a[1][k].seed);
        ck_assert_uint_ne(b[k].seed, a[0][k].seed);
        ck_assert_int_eq(b[k].rnd, a[1][k].rnd);
    }
    tu_assert_clean(&snap);
}
END_TEST

/* A lone worker has a seed too, and a bad g has none. */
START_TEST(test_rank_lone_worker)
{
    struct tu_snapshot snap;
    struct report r;
    subiter_opts o = tu_opts(0);
    subiter_item item;
    subiter *it;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, gen_report, NULL, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_int_eq(subiter_next(it, &item), 1);
    memcpy(&r, item.data, sizeof r);
    ck_assert_uint_ne(r.seed, 0);
    ck_assert_uint_eq(r.rank, 0);
    ck_assert_uint_eq(r.world, 1);
    ck_assert_uint_eq(r.local, 0);
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_int_eq(subiter_close(it), 0);
    ck_assert_uint_eq(subiter_seed(NULL), 0);
    ck_assert_uint_eq(subiter_rank(NULL), 0);
    ck_assert_uint_eq(subiter_world_size(NULL), 1);
    ck_assert_uint_eq(subiter_local_id(NULL), 0);
    ck_assert_uint_eq(subiter_skip(NULL), 0);
    tu_assert_clean(&snap);
}
END_TEST

static void clear_env(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_RANK",
                                       "OMPI_COMM_WORLD_SIZE",
                                       "PMI_RANK",
                                       "PMI_SIZE",
                                       "SLURM_PROCID",
                                       "SLURM_NTASKS",
                                       "RANK",
                                       "WORLD_SIZE"};
    size_t i;

    for (i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        ck_assert_int_eq(unsetenv(vars[i]), 0);
    }
}

static void expect_env(int want, unsigned rank, unsigned world)
{
    unsigned r = 77, n = 77;

    ck_assert_int_eq(subiter_env_rank(&r, &n), want);
    ck_assert_uint_eq(r, rank);
    ck_assert_uint_eq(n, world);
}

START_TEST(test_rank_env_precedence)
{
    unsigned r;

    clear_env();
    expect_env(0, 0, 1);
    /* torchrun */
    setenv("RANK", "1", 1);
    setenv("WORLD_SIZE", "4", 1);
    expect_env(1, 1, 4);
    /* srun wins over torchrun */
    setenv("SLURM_PROCID", "2", 1);
    setenv("SLURM_NTASKS", "8", 1);
    expect_env(1, 2, 8);
    /* MPICH over srun */
    setenv("PMI_RANK", "3", 1);
    setenv("PMI_SIZE", "5", 1);
    expect_env(1, 3, 5);
    /* Half a pair does not count. */
    setenv("OMPI_COMM_WORLD_RANK", "0", 1);
    expect_env(1, 3, 5);
    /* Open MPI over all. */
    setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
    expect_env(1, 0, 2);
    ck_assert_int_eq(subiter_env_rank(NULL, &r), -EINVAL);
    ck_assert_int_eq(subiter_env_rank(&r, NULL), -EINVAL);
}
END_TEST

START_TEST(test_rank_env_garbage)
{
    static const char *const bad[][2] = {
        {"x", "2"},  {"1", "two"}, {"", "2"},          {"-1", "2"},
        {"2", "2"},  {"0", "0"},   {" 1", "2"},        {"1 ", "2"},
        {"1", "+2"}, {"0", "0x4"}, {"0", "4294967296"}};
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        clear_env();
        /* A good pair further down does not rescue the first. */
        setenv("RANK", "0", 1);
        setenv("WORLD_SIZE", "1", 1);
        setenv("SLURM_PROCID", bad[i][0], 1);
        setenv("SLURM_NTASKS", bad[i][1], 1);
        expect_env(-EINVAL, 0, 1);
    }
    clear_env();
    setenv("SLURM_PROCID", "4294967294", 1);
    setenv("SLURM_NTASKS", "4294967295", 1);
    expect_env(1, 4294967294u, 4294967295u);
}
END_TEST

/* world_size 0: the pool takes rank and size from the launcher. */
START_TEST(test_rank_pool_from_env)
{
    struct tu_snapshot snap;
    struct report a[WORKERS];
    subiter_pool *p;
    unsigned k;

    tu_snapshot(&snap);
    clear_env();
    setenv("RANK", "1", 1);
    setenv("WORLD_SIZE", "2", 1);
    p = open_seeded(5, 0);
    one_iteration(p, a);
    tp_close_clean(p);
    for (k = 0; k < WORKERS; k++) {
        ck_assert_uint_eq(a[k].rank, 1);
        ck_assert_uint_eq(a[k].world, 2);
        ck_assert_uint_eq(a[k].local, k);
        ck_assert_uint_eq(a[k].shard, WORKERS + k);
    }
    /* Explicit values win over the environment. */
    p = open_seeded(5, 1);
    one_iteration(p, a);
    tp_close_clean(p);
    ck_assert_uint_eq(a[1].rank, 0);
    ck_assert_uint_eq(a[1].world, 1);
    ck_assert_uint_eq(a[1].shard, 1);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_rank_pool_env_garbage)
{
    struct tu_snapshot snap;
    subiter_pool_opts po = tp_pool_opts(WORKERS, NULL);
    subiter_pool *p;

    tu_snapshot(&snap);
    clear_env();
    setenv("OMPI_COMM_WORLD_RANK", "3", 1);
    setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
    po.world_size = 0;
    ck_assert_int_eq(subiter_pool_open(&p, gen_report, NULL, &po), -EINVAL);
    tp_assert_errmsg_has(p, "opts.world_size 0");
    ck_assert_int_eq(subiter_pool_close(p), 0);
    tu_assert_clean(&snap);
}
END_TEST

static Suite *rank_suite(void)
{
    Suite *s = suite_create("rank");
    TCase *tc;

    tc = tcase_create("rank");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_rank_seeds_distinct_and_reproducible);
    tcase_add_test(tc, test_rank_seed_zero_is_drawn);
    tcase_add_test(tc, test_rank_seed_survives_resume);
    tcase_add_test(tc, test_rank_lone_worker);
    tcase_add_test(tc, test_rank_env_precedence);
    tcase_add_test(tc, test_rank_env_garbage);
    tcase_add_test(tc, test_rank_pool_from_env);
    tcase_add_test(tc, test_rank_pool_env_garbage);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(rank_suite());
}
