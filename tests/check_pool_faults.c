/* check_pool_faults.c: pools whose workers fail. A task whose generator
 * fails, workers silent past their inactivity timeout (sharded, in a task,
 * in the initializer), tasks no worker can ever run, every allocation of a
 * pool's life failing in turn, and the calls a pool refuses. Generators
 * report through shared pages, never ck_assert. Every case checks that no
 * child, fd or mapping is left. */
#include "config.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

#define PAGE 4096
#define SILENCE_MS 300 /* the workers' inactivity timeout */
#define SHORT_GRACE_MS 200
#define N_ITEMS 100L

struct shared {
    _Atomic int release;   /* workers forked after it is set cannot start */
    _Atomic int started;   /* tasks that began */
    _Atomic int ended_pid; /* gen_end_early: worker 0's pid, once it ends */
};

/* What a task does (its input). */
enum job { JOB_OK, JOB_FAIL, JOB_HANG, JOB_DIE, JOB_SLOW };

/* ---- generators and initializers (they run in the worker: no ck_*) ---- */

static void hang(void)
{
    for (;;) {
        pause();
    }
}

/* A task: three longs, a failure, silence, or death (arg: shared page). */
TU_EXPORT(int gen_task(subiter_gen *g, void *arg))
{
    struct shared *sh = arg;
    const void *in;
    size_t len;
    long how = JOB_OK;

    in = subiter_input(g, &len);
    if (in != NULL && len == sizeof how) {
        memcpy(&how, in, sizeof how);
    }
    if (sh != NULL) {
        atomic_fetch_add(&sh->started, 1);
    }
    switch (how) {
    case JOB_FAIL:
        return subiter_fail(g, "task failed on purpose");
    case JOB_HANG:
        hang();
        break;
    case JOB_DIE:
        raise(SIGKILL);
        break;
    case JOB_SLOW:
        tu_sleep_ms(300);
        break;
    default:
        break;
    }
    return tu_yield_count(g, 3);
}

/* Sharded: worker k yields the i < N_ITEMS with i % workers == k, but the
 * worker named by the input (a long; -1: none) falls silent at once. */
TU_EXPORT(int gen_shard(subiter_gen *g, void *arg))
{
    unsigned id = subiter_worker_id(g), nw = subiter_num_workers(g);
    const void *in;
    size_t len;
    long silent = -1, i;
    int r;

    (void)arg;
    in = subiter_input(g, &len);
    if (in != NULL && len == sizeof silent) {
        memcpy(&silent, in, sizeof silent);
    }
    if (silent == (long)id) {
        hang();
    }
    for (i = id; i < N_ITEMS; i += nw) {
        if ((r = subiter_yield(g, &i, sizeof i)) != 0) {
            return r;
        }
    }
    return 0;
}

/* Sharded (arg: shared page): worker 0 yields nothing and ends; worker 1
 * kills it once it has ended (in the first iteration only), then yields
 * 3 longs. */
TU_EXPORT(int gen_end_early(subiter_gen *g, void *arg))
{
    struct shared *sh = arg;
    int64_t end = tu_now_ms() + 10000;

    if (subiter_worker_id(g) == 0) {
        atomic_store(&sh->ended_pid, (int)getpid());
        return 0;
    }
    while (atomic_load(&sh->ended_pid) == 0 && tu_now_ms() < end) {
        tu_sleep_ms(1);
    }
    /* Time for the pool to read worker 0's end (a generous margin: an
     * end still unread when the worker dies fails the shard). */
    tu_sleep_ms(500);
    if (atomic_fetch_add(&sh->started, 1) == 0) {
        kill((pid_t)atomic_load(&sh->ended_pid), SIGKILL);
    }
    tu_sleep_ms(100);
    return tu_yield_count(g, 3);
}

TU_EXPORT(int init_hang(subiter_gen *g, void *arg))
{
    (void)g;
    (void)arg;
    hang();
    return 0;
}

/* Fails once the test has set `release`. */
TU_EXPORT(int init_fail_late(subiter_gen *g, void *arg))
{
    struct shared *sh = arg;

    if (atomic_load(&sh->release) != 0) {
        return subiter_fail(g, "no more workers");
    }
    return 0;
}

/* ---- helpers ---- */

static struct shared *shared_new(void)
{
    struct shared *sh = tu_shared_new(PAGE);

    memset(sh, 0, sizeof *sh);
    return sh;
}

static subiter_pool_opts pool_opts(unsigned workers, const subiter_opts *w)
{
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;

    po.workers = workers;
    po.worker = w;
    return po;
}

static subiter_pool_stats get_stats(const subiter_pool *p)
{
    subiter_pool_stats st = SUBITER_POOL_STATS_INIT;

    ck_assert_int_eq(subiter_pool_get_stats(p, &st), 0);
    return st;
}

static void assert_has(const char *m, const char *what)
{
    ck_assert_msg(strstr(m, what) != NULL, "\"%s\" lacks \"%s\"", m, what);
}

static unsigned long long submit(subiter_pool *p, long how)
{
    unsigned long long id = 0;

    ck_assert_int_eq(subiter_pool_submit(p, &how, sizeof how, 0, &id), 0);
    return id;
}

#define MAX_TASKS 8

/* How each task went, as subiter_pool_next() told it. */
struct outcome {
    int items, ends, code;
    char msg[512];
};

/* Read task events until subiter_pool_next() returns 0 (or an error,
 * returned). */
static int drain(subiter_pool *p, struct outcome *t)
{
    subiter_pool_item item;
    int r;

    while ((r = subiter_pool_next(p, &item)) == 1) {
        REQUIRE(item.task >= 1 && item.task < MAX_TASKS);
        if (item.kind == SUBITER_POOL_ITEM) {
            REQUIRE_EQ(t[item.task].ends, 0);
            t[item.task].items++;
        } else {
            REQUIRE_EQ(item.kind, SUBITER_POOL_TASK_END);
            t[item.task].ends++;
            t[item.task].code = item.code;
            snprintf(t[item.task].msg, sizeof t[item.task].msg, "%s",
                     item.errmsg);
        }
    }
    return r;
}

/* Every item of a sharded iteration, each once; returns the outcome. */
static int collect(subiter_pool *p, long silent, int *n)
{
    static int seen[N_ITEMS];
    subiter_pool_item item;
    long v;
    int r;

    memset(seen, 0, sizeof seen);
    *n = 0;
    ck_assert_int_eq(subiter_pool_start(p, &silent, sizeof silent), 0);
    while ((r = subiter_pool_next(p, &item)) == 1) {
        REQUIRE_EQ(item.len, sizeof v);
        memcpy(&v, item.data, sizeof v);
        REQUIRE(v >= 0 && v < N_ITEMS);
        REQUIRE_EQ(seen[v], 0);
        seen[v] = 1;
        (*n)++;
    }
    return r;
}

/* ---- failing tasks ---- */

/* A generator's failure ends its task with SUBITER_EITER and its message;
 * the worker stays (no replacement) and runs the next task. */
START_TEST(test_pool_faults_task_eiter)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, TU_LONG_GRACE_MS);
    subiter_pool_opts po = pool_opts(1, &wo);
    struct outcome t[MAX_TASKS];
    subiter_pool_stats st;
    subiter_pool *p;
    unsigned long long a, b;
    pid_t pid;

    tu_snapshot(&snap);
    memset(t, 0, sizeof t);
    ck_assert_int_eq(subiter_pool_open(&p, gen_task, NULL, &po), 0);
    pid = subiter_pool_worker_pid(p, 0);
    a = submit(p, JOB_FAIL);
    b = submit(p, JOB_OK);
    ck_assert_int_eq(drain(p, t), 0);
    ck_assert_int_eq(t[a].ends, 1);
    ck_assert_int_eq(t[a].code, SUBITER_EITER);
    ck_assert_int_eq(t[a].items, 0);
    assert_has(t[a].msg, "task 1");
    assert_has(t[a].msg, "task failed on purpose");
    ck_assert_int_eq(t[b].ends, 1);
    ck_assert_int_eq(t[b].code, 0);
    ck_assert_int_eq(t[b].items, 3);
    st = get_stats(p);
    ck_assert_uint_eq(st.failed, 1);
    ck_assert_uint_eq(st.done, 1);
    ck_assert_uint_eq(st.replaced, 0);
    ck_assert_int_eq(subiter_pool_worker_pid(p, 0), pid);
    ck_assert_int_eq(subiter_pool_close(p), 0);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- the workers' inactivity timeout ---- */

/* A shard silent for timeout_ms ends the iteration with SUBITER_ETIMEDOUT
 * and names the worker; it is replaced and the next iteration is whole. */
START_TEST(test_pool_faults_shard_inactivity_timeout)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(SILENCE_MS, SHORT_GRACE_MS);
    subiter_pool_opts po = pool_opts(2, &wo);
    subiter_pool *p;
    pid_t silent;
    int n;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_pool_open(&p, gen_shard, NULL, &po), 0);
    silent = subiter_pool_worker_pid(p, 1);
    ck_assert_int_eq(collect(p, 1, &n), SUBITER_ETIMEDOUT);
    ck_assert_int_le(n, N_ITEMS / 2 + 1);
    assert_has(subiter_pool_errmsg(p), "worker 1");
    assert_has(subiter_pool_errmsg(p), "sent nothing for 300 ms");
    ck_assert_uint_eq(get_stats(p).replaced, 1);
    ck_assert_int_ne(subiter_pool_worker_pid(p, 1), silent);
    ck_assert_int_eq(collect(p, -1, &n), 0);
    ck_assert_int_eq(n, N_ITEMS);
    ck_assert_int_eq(subiter_pool_close(p), 0);
    tu_assert_clean(&snap);
}
END_TEST

/* A task silent for timeout_ms ends with SUBITER_ETIMEDOUT (no retry: the
 * worker did not die by itself); its replacement runs the next task. */
START_TEST(test_pool_faults_task_inactivity_timeout)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(SILENCE_MS, SHORT_GRACE_MS);
    subiter_pool_opts po = pool_opts(1, &wo);
    struct outcome t[MAX_TASKS];
    subiter_pool_stats st;
    subiter_pool *p;
    unsigned long long a, b;

    tu_snapshot(&snap);
    memset(t, 0, sizeof t);
    ck_assert_int_eq(subiter_pool_open(&p, gen_task, NULL, &po), 0);
    a = submit(p, JOB_HANG);
    b = submit(p, JOB_OK);
    ck_assert_int_eq(drain(p, t), 0);
    ck_assert_int_eq(t[a].ends, 1);
    ck_assert_int_eq(t[a].code, SUBITER_ETIMEDOUT);
    assert_has(t[a].msg, "sent nothing for 300 ms");
    ck_assert_int_eq(t[b].ends, 1);
    ck_assert_int_eq(t[b].code, 0);
    ck_assert_int_eq(t[b].items, 3);
    st = get_stats(p);
    ck_assert_uint_eq(st.replaced, 1);
    ck_assert_uint_eq(st.retried, 0);
    ck_assert_uint_eq(st.failed, 1);
    ck_assert_int_eq(subiter_pool_close(p), 0);
    tu_assert_clean(&snap);
}
END_TEST

/* An initializer silent for timeout_ms: open fails with SUBITER_ETIMEDOUT
 * and says which worker. */
START_TEST(test_pool_faults_init_inactivity_timeout)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(SILENCE_MS, SHORT_GRACE_MS);
    subiter_pool_opts po = pool_opts(2, &wo);
    subiter_pool *p = NULL;
    int64_t t0;

    tu_snapshot(&snap);
    wo.init = init_hang;
    t0 = tu_now_ms();
    ck_assert_int_eq(subiter_pool_open(&p, gen_task, NULL, &po),
                     SUBITER_ETIMEDOUT);
    ck_assert_int_lt(tu_now_ms() - t0, 20000); /* a hang bound */
    ck_assert_ptr_nonnull(p);
    assert_has(subiter_pool_errmsg(p), "worker ");
    assert_has(subiter_pool_errmsg(p), "sent nothing for 300 ms");
    (void)subiter_pool_close(p);
    tu_assert_clean(&snap);
}
END_TEST

/* An initializer that exits: open fails with SUBITER_ECHILD and says
 * how the worker ended. */
START_TEST(test_pool_faults_init_exits)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, TU_LONG_GRACE_MS);
    subiter_pool_opts po = pool_opts(2, &wo);
    subiter_pool *p = NULL;

    tu_snapshot(&snap);
    wo.init = tu_init_exit5;
    ck_assert_int_eq(subiter_pool_open(&p, gen_task, NULL, &po),
                     SUBITER_ECHILD);
    assert_has(subiter_pool_errmsg(p), "exited with status 5");
    (void)subiter_pool_close(p);
    tu_assert_clean(&snap);
}
END_TEST

/* An idle worker killed while the pool waits on a busy one is replaced
 * at once; the task and the next one are unharmed. */
START_TEST(test_pool_faults_idle_worker_dies)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, TU_LONG_GRACE_MS);
    subiter_pool_opts po = pool_opts(2, &wo);
    struct outcome t[MAX_TASKS];
    subiter_pool *p;
    unsigned long long a, b;
    pid_t idle;

    tu_snapshot(&snap);
    memset(t, 0, sizeof t);
    ck_assert_int_eq(subiter_pool_open(&p, gen_task, NULL, &po), 0);
    a = submit(p, JOB_SLOW); /* taken by worker 0 */
    idle = subiter_pool_worker_pid(p, 1);
    ck_assert_int_eq(kill(idle, SIGKILL), 0);
    ck_assert_int_eq(drain(p, t), 0);
    ck_assert_int_eq(t[a].code, 0);
    ck_assert_int_eq(t[a].items, 3);
    ck_assert_uint_eq(get_stats(p).replaced, 1);
    ck_assert_int_ne(subiter_pool_worker_pid(p, 1), idle);
    ck_assert_int_gt(subiter_pool_worker_pid(p, 1), 0);
    b = submit(p, JOB_OK);
    ck_assert_int_eq(drain(p, t), 0);
    ck_assert_int_eq(t[b].code, 0);
    ck_assert_int_eq(subiter_pool_close(p), 0);
    tu_assert_clean(&snap);
}
END_TEST

/* A shard that ended and then died does not fail the iteration; it is
 * replaced before the next one. */
START_TEST(test_pool_faults_ended_shard_dies)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, TU_LONG_GRACE_MS);
    subiter_pool_opts po = pool_opts(2, &wo);
    subiter_pool_item item;
    struct shared *sh;
    subiter_pool *p;
    pid_t first;
    int n = 0, r;

    tu_snapshot(&snap);
    sh = shared_new();
    po.order = SUBITER_POOL_UNORDERED;
    ck_assert_int_eq(subiter_pool_open(&p, gen_end_early, sh, &po), 0);
    first = subiter_pool_worker_pid(p, 0);
    ck_assert_int_eq(subiter_pool_start(p, NULL, 0), 0);
    while ((r = subiter_pool_next(p, &item)) == 1) {
        ck_assert_uint_eq(item.worker, 1);
        n++;
    }
    ck_assert_int_eq(r, 0);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(atomic_load(&sh->ended_pid), first);
    atomic_store(&sh->ended_pid, 0);
    ck_assert_int_eq(subiter_pool_start(p, NULL, 0), 0);
    ck_assert_uint_eq(get_stats(p).replaced, 1);
    ck_assert_int_ne(subiter_pool_worker_pid(p, 0), first);
    n = 0;
    while ((r = subiter_pool_next(p, &item)) == 1) {
        n++;
    }
    ck_assert_int_eq(r, 0);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(subiter_pool_close(p), 0);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

/* Every slot's initializer keeps failing: the queued tasks (a retried one
 * included) end with SUBITER_EINIT and the initializer's reason, rather
 * than wait forever. */
START_TEST(test_pool_faults_unrunnable_tasks)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, TU_LONG_GRACE_MS);
    subiter_pool_opts po = pool_opts(1, &wo);
    struct outcome t[MAX_TASKS];
    struct shared *sh;
    subiter_pool *p;
    unsigned long long a, b;
    int r;

    tu_snapshot(&snap);
    memset(t, 0, sizeof t);
    sh = shared_new();
    wo.init = init_fail_late;
    ck_assert_int_eq(subiter_pool_open(&p, gen_task, sh, &po), 0);
    atomic_store(&sh->release, 1);
    a = submit(p, JOB_DIE); /* its death needs a replacement */
    b = submit(p, JOB_OK);
    ck_assert_int_eq(drain(p, t), 0);
    ck_assert_int_eq(t[a].ends, 1);
    ck_assert_int_eq(t[a].code, SUBITER_EINIT);
    assert_has(t[a].msg, "task 1: no worker could be started");
    assert_has(t[a].msg, "no more workers");
    ck_assert_int_eq(t[b].ends, 1);
    ck_assert_int_eq(t[b].code, SUBITER_EINIT);
    assert_has(t[b].msg, "task 2: no worker could be started");
    ck_assert_int_eq(t[b].items, 0);
    ck_assert_uint_eq(get_stats(p).failed, 2);
    ck_assert_uint_eq(get_stats(p).workers, 0);
    r = subiter_pool_close(p);
    ck_assert_msg(r == 0 || r == SUBITER_ECHILD, "close: %d", r);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- every allocation failing in turn ---- */

static void on_result(subiter_pool *p, unsigned long long task,
                      const void *data, size_t len, void *user)
{
    (void)p;
    (void)task;
    (void)data;
    (void)len;
    (*(int *)user)++;
}

static void on_error(subiter_pool *p, unsigned long long task, int code,
                     const char *errmsg, void *user)
{
    (void)p;
    (void)task;
    (void)code;
    (void)errmsg;
    (void)user;
}

/* An error a call may return when an allocation fails under it. */
static bool allowed(int r)
{
    return r == -ENOMEM || r == SUBITER_ECHILD || r == SUBITER_EPROTO;
}

/* One pool life, sharded then tasks; returns the failures seen. */
static int pool_life(bool tasks)
{
    subiter_opts wo = tu_opts_grace(0, TU_LONG_GRACE_MS);
    subiter_pool_opts po = pool_opts(2, &wo);
    subiter_pool_item item;
    subiter_pool *p = NULL;
    long silent = -1, how = JOB_OK;
    int fails = 0, results = 0, r, i;

    if (tasks) {
        po.on_result = on_result;
        po.on_error = on_error;
        po.user = &results;
    }
    r = subiter_pool_open(&p, gen_task, NULL, &po);
    if (r != 0) {
        ck_assert_msg(allowed(r), "open: %s", subiter_errname(r));
        ck_assert_int_eq(subiter_pool_close(p), 0);
        return 1;
    }
    if (!tasks) {
        r = subiter_pool_start(p, &silent, sizeof silent);
        fails += r != 0;
        ck_assert_msg(r == 0 || allowed(r), "start: %s", subiter_errname(r));
        if (r == 0) {
            while ((r = subiter_pool_next(p, &item)) == 1) {
            }
            fails += r != 0;
            ck_assert_msg(r == 0 || allowed(r), "next: %s", subiter_errname(r));
        }
    } else {
        for (i = 0; i < 3; i++) {
            r = subiter_pool_submit(p, &how, sizeof how, 0, NULL);
            fails += r != 0;
            ck_assert_msg(r == 0 || allowed(r), "submit: %s",
                          subiter_errname(r));
        }
        r = subiter_pool_wait(p, 20000);
        ck_assert_int_eq(r, 0);
        r = subiter_pool_finalize(p, 1000);
        ck_assert_int_ge(r, 0);
    }
    r = subiter_pool_close(p);
    ck_assert_msg(r == 0 || r == SUBITER_ECHILD, "close: %s",
                  subiter_errname(r));
    return fails;
}

/* The 3rd and 4th allocations of an open: the poll arrays, made after the
 * slots. */
#define OPEN_SITE_POLL 3
#define OPEN_SITE_POLL_WORKER 4

/* Fail the n-th allocation of a whole pool life, for every n until a life
 * makes fewer allocations than n. */
static void pool_chaos(bool tasks)
{
    unsigned long n, made;
    int fails = 0;

    for (n = 1;; n++) {
        struct tu_snapshot snap;

        tu_snapshot(&snap);
        (void)subiter__alloc_fail_at(n);
        fails += pool_life(tasks);
        made = subiter__alloc_fail_at(0);
        tu_assert_clean(&snap);
        if (made < n) {
            break;
        }
    }
    fprintf(stderr,
            "pool alloc chaos (%s): %lu allocations per life, %d "
            "calls failed\n",
            tasks ? "tasks" : "sharded", n - 1, fails);
    ck_assert_int_ge(fails, 1);
    /* The last life failed nothing: it was whole. */
    ck_assert_int_eq(pool_life(tasks), 0);
}

START_TEST(test_pool_faults_alloc_chaos_sharded)
{
    pool_chaos(false);
}
END_TEST

START_TEST(test_pool_faults_alloc_chaos_tasks)
{
    pool_chaos(true);
}
END_TEST

/* Open fails after the slots were allocated, then close: the slots must
 * not be read as if they held workers. M_PERTURB fills fresh allocations
 * with garbage, so uninitialised slots cannot pass for empty ones. */
START_TEST(test_pool_faults_open_enomem_close)
{
    struct tu_snapshot snap;
    subiter_pool_opts po = pool_opts(2, NULL);
    subiter_pool *p = NULL;
    unsigned long site;

    /* glibc's malloc; sanitizers' mallocs ignore it (ASan fills fresh
     * blocks with garbage by itself). */
    (void)mallopt(M_PERTURB, 0x5a);
    for (site = OPEN_SITE_POLL; site <= OPEN_SITE_POLL_WORKER; site++) {
        tu_snapshot(&snap);
        (void)subiter__alloc_fail_at(site);
        ck_assert_int_eq(subiter_pool_open(&p, gen_task, NULL, &po), -ENOMEM);
        (void)subiter__alloc_fail_at(0);
        ck_assert_ptr_nonnull(p);
        ck_assert_str_eq(subiter_pool_errmsg(p), "out of memory");
        ck_assert_int_eq(subiter_pool_close(p), 0);
        tu_assert_clean(&snap);
    }
}
END_TEST

/* ---- calls the pool refuses, and close with work left ---- */

/* Close with an item out and tasks still queued: they are dropped. */
START_TEST(test_pool_faults_close_drops_queued)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, TU_LONG_GRACE_MS);
    subiter_pool_opts po = pool_opts(1, &wo);
    subiter_pool_item item;
    subiter_pool *p;
    int i;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_pool_open(&p, gen_task, NULL, &po), 0);
    for (i = 0; i < 4; i++) {
        (void)submit(p, JOB_OK);
    }
    ck_assert_int_eq(subiter_pool_next(p, &item), 1);
    ck_assert_int_eq(item.kind, SUBITER_POOL_ITEM);
    ck_assert_uint_ge(get_stats(p).queued, 1);
    ck_assert_int_eq(subiter_pool_close(p), 0);
    tu_assert_clean(&snap);
}
END_TEST

/* Paused, with the queue full and no callbacks: submit cannot wait. */
START_TEST(test_pool_faults_full_while_paused)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, TU_LONG_GRACE_MS);
    subiter_pool_opts po = pool_opts(1, &wo);
    subiter_pool *p;
    long how = JOB_OK;

    tu_snapshot(&snap);
    po.queue_max = 1;
    ck_assert_int_eq(subiter_pool_open(&p, gen_task, NULL, &po), 0);
    ck_assert_int_eq(subiter_pool_pause(p, -1), 0);
    (void)submit(p, JOB_OK);
    ck_assert_int_eq(subiter_pool_submit(p, &how, sizeof how, 0, NULL),
                     -EDEADLK);
    assert_has(subiter_pool_errmsg(p), "the pool is paused");
    ck_assert_int_eq(subiter_pool_resume(p, -1), 0);
    ck_assert_int_eq(subiter_pool_close(p), 0);
    tu_assert_clean(&snap);
}
END_TEST

static void close_from_callback(subiter_pool *p, unsigned long long task,
                                const void *data, size_t len, void *user)
{
    (void)task;
    (void)data;
    (void)len;
    *(int *)user = subiter_pool_close(p);
}

START_TEST(test_pool_faults_refused_calls)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, TU_LONG_GRACE_MS);
    subiter_pool_opts po = pool_opts(2, &wo);
    struct {
        subiter_pool_opts po;
        unsigned char extra[8];
    } big;
    struct {
        subiter_opts wo;
        unsigned char extra[8];
    } wbig;
    subiter_pool_stats st;
    subiter_pool *p;
    int rc = 1;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_pool_stop(NULL), -EINVAL);
    /* Bytes past the fields this version knows must be zero. */
    memset(&big, 0, sizeof big);
    big.po = po;
    big.po.size = sizeof big;
    big.extra[3] = 1;
    ck_assert_int_eq(subiter_pool_open(&p, gen_task, NULL, &big.po), -EINVAL);
    ck_assert_int_eq(subiter_pool_close(p), 0);
    big.extra[3] = 0;
    ck_assert_int_eq(subiter_pool_open(&p, gen_task, NULL, &big.po), 0);
    ck_assert_int_eq(subiter_pool_close(p), 0);
    /* The same for the workers' options, which the pool copies. */
    memset(&wbig, 0, sizeof wbig);
    wbig.wo = wo;
    wbig.wo.size = sizeof wbig;
    wbig.extra[5] = 1;
    po.worker = &wbig.wo;
    ck_assert_int_eq(subiter_pool_open(&p, gen_task, NULL, &po), -EINVAL);
    ck_assert_int_eq(subiter_pool_close(p), 0);
    wbig.extra[5] = 0;
    ck_assert_int_eq(subiter_pool_open(&p, gen_task, NULL, &po), 0);
    ck_assert_int_eq(subiter_pool_close(p), 0);
    po.worker = &wo;

    /* A slot with no worker cannot be paused. */
    po.min_workers = 1;
    ck_assert_int_eq(subiter_pool_open(&p, gen_task, NULL, &po), 0);
    ck_assert_int_eq(subiter_pool_pause(p, 1), -EINVAL);
    assert_has(subiter_pool_errmsg(p), "worker 1 is not running");

    /* Close from a callback is refused, and frees nothing. */
    po.on_result = close_from_callback;
    po.on_error = on_error;
    po.user = &rc;
    ck_assert_int_eq(subiter_pool_close(p), 0);
    ck_assert_int_eq(subiter_pool_open(&p, gen_task, NULL, &po), 0);
    (void)submit(p, JOB_OK);
    ck_assert_int_eq(subiter_pool_wait(p, 20000), 0);
    ck_assert_int_eq(rc, -EBUSY);
    ck_assert_int_eq(subiter_pool_close(p), 0);

    /* workers 0: one per online CPU. */
    po = pool_opts(0, &wo);
    ck_assert_int_eq(subiter_pool_open(&p, gen_task, NULL, &po), 0);
    st = get_stats(p);
    ck_assert_uint_eq(st.workers, (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
    ck_assert_int_eq(subiter_pool_close(p), 0);
    tu_assert_clean(&snap);
}
END_TEST

static Suite *pool_faults_suite(void)
{
    Suite *s = suite_create("pool_faults");
    TCase *tc;

    tc = tcase_create("faults");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_pool_faults_task_eiter);
    tcase_add_test(tc, test_pool_faults_shard_inactivity_timeout);
    tcase_add_test(tc, test_pool_faults_task_inactivity_timeout);
    tcase_add_test(tc, test_pool_faults_init_inactivity_timeout);
    tcase_add_test(tc, test_pool_faults_unrunnable_tasks);
    tcase_add_test(tc, test_pool_faults_init_exits);
    tcase_add_test(tc, test_pool_faults_idle_worker_dies);
    tcase_add_test(tc, test_pool_faults_ended_shard_dies);
    suite_add_tcase(s, tc);

    tc = tcase_create("alloc");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_pool_faults_alloc_chaos_sharded);
    tcase_add_test(tc, test_pool_faults_alloc_chaos_tasks);
    tcase_add_test(tc, test_pool_faults_open_enomem_close);
    suite_add_tcase(s, tc);

    tc = tcase_create("refused");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_pool_faults_close_drops_queued);
    tcase_add_test(tc, test_pool_faults_full_while_paused);
    tcase_add_test(tc, test_pool_faults_refused_calls);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(pool_faults_suite());
}
