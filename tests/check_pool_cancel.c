/* check_pool_cancel.c: task control in a pool: cancelling a queued task,
 * a running one that honours the stop and one that ignores it (its worker
 * replaced), per-task timeouts, task user data, recycling workers after
 * max_tasks_per_worker, misuse, and the bound of subiter_pool_stop() on
 * shards that ignore the stop. Generators report through their items,
 * never ck_assert. Every case checks that no child, fd or mapping is
 * left. */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#define HANG_BOUND_MS 10000 /* a wait that should end at once, generously */

/* What gen_task does (struct job.how). */
enum how {
    PLAIN,       /* yield value */
    SLEEP,       /* sleep ms, then yield value */
    PID,         /* yield the worker's pid */
    MANY,        /* yield 0, 1, 2, ... until stopped */
    IGNORE_STOP, /* yield, ignoring SUBITER_STOPPED, forever */
    FAIL,        /* fail with "bad job" */
};

struct job {
    long how;
    long value;
    long ms;
};

static int gen_task(subiter_gen *g, void *arg)
{
    const struct job *j;
    size_t len;
    long v;
    int r;

    (void)arg;
    j = subiter_input(g, &len);
    if (j == NULL || len != sizeof *j) {
        /* A sharded iteration (no input): ignore the stop. */
        for (v = 0;; v++) {
            r = subiter_yield(g, &v, sizeof v);
            (void)r;
            tu_sleep_ms(1);
        }
    }
    switch (j->how) {
    case SLEEP:
        tu_sleep_ms(j->ms);
        break;
    case PID:
        v = (long)getpid();
        return subiter_yield(g, &v, sizeof v);
    case MANY:
        for (v = 0;; v++) {
            if ((r = subiter_yield(g, &v, sizeof v)) != 0) {
                return r;
            }
        }
    case IGNORE_STOP:
        for (v = 0;; v++) {
            r = subiter_yield(g, &v, sizeof v);
            (void)r;
            tu_sleep_ms(1);
        }
    case FAIL:
        return subiter_fail(g, "bad job");
    default:
        break;
    }
    v = j->value;
    return subiter_yield(g, &v, sizeof v);
}

static subiter_pool *open_pool(unsigned workers, int grace_ms,
                               subiter_pool_opts *po)
{
    static subiter_opts o;
    subiter_pool *p;

    o = tu_opts_grace(0, grace_ms);
    po->workers = workers;
    po->worker = &o;
    ck_assert_int_eq(subiter_pool_open(&p, gen_task, NULL, po), 0);
    return p;
}

static unsigned long long submit(subiter_pool *p, long how, long value,
                                 const subiter_task_opts *to)
{
    struct job j = {how, value, value};
    unsigned long long id;

    ck_assert_int_eq(subiter_pool_submit_ex(p, &j, sizeof j, 0, to, &id), 0);
    return id;
}

/* Read until the end of task `id`: its code; *items counts its items. */
static int await_end(subiter_pool *p, unsigned long long id, int *items)
{
    subiter_pool_item pi;
    int r;

    for (;;) {
        r = subiter_pool_next(p, &pi);
        ck_assert_int_eq(r, 1);
        if (pi.task == id && pi.kind == SUBITER_POOL_TASK_END) {
            return pi.code;
        }
        if (pi.task == id && items != NULL) {
            (*items)++;
        }
    }
}

static subiter_pool_stats stats(const subiter_pool *p)
{
    subiter_pool_stats st = SUBITER_POOL_STATS_INIT;

    ck_assert_int_eq(subiter_pool_get_stats(p, &st), 0);
    return st;
}

START_TEST(test_pool_cancel_queued)
{
    struct tu_snapshot snap;
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;
    subiter_pool_item pi;
    subiter_pool *p;
    unsigned long long a, b;

    tu_snapshot(&snap);
    p = open_pool(1, TU_LONG_GRACE_MS, &po);
    a = submit(p, SLEEP, 300, NULL);
    b = submit(p, PLAIN, 5, NULL);
    ck_assert_int_eq(subiter_pool_cancel(p, b), 0);
    /* It ended at once: first in line. */
    ck_assert_int_eq(subiter_pool_next(p, &pi), 1);
    ck_assert_int_eq(pi.kind, SUBITER_POOL_TASK_END);
    ck_assert_uint_eq(pi.task, b);
    ck_assert_int_eq(pi.code, SUBITER_ECANCELED);
    ck_assert_ptr_nonnull(strstr(pi.errmsg, "cancelled while queued"));
    ck_assert_int_eq(subiter_pool_cancel(p, b), -ENOENT);
    ck_assert_int_eq(subiter_pool_cancel(p, 999), -ENOENT);
    ck_assert_int_eq(await_end(p, a, NULL), 0);
    ck_assert_int_eq(subiter_pool_cancel(p, a), -ENOENT);
    ck_assert_uint_eq(stats(p).cancelled, 1);
    ck_assert_int_eq(subiter_pool_close(p), 0);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_cancel_running_honours_stop)
{
    struct tu_snapshot snap;
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;
    subiter_pool_item pi;
    subiter_pool *p;
    unsigned long long a, b;
    pid_t pid;
    int items = 0;

    tu_snapshot(&snap);
    p = open_pool(1, TU_LONG_GRACE_MS, &po);
    a = submit(p, MANY, 0, NULL);
    ck_assert_int_eq(subiter_pool_next(p, &pi), 1);
    ck_assert_uint_eq(pi.task, a);
    pid = subiter_pool_worker_pid(p, 0);
    ck_assert_int_eq(subiter_pool_cancel(p, a), 0);
    ck_assert_int_eq(subiter_pool_cancel(p, a), 0); /* not ended yet */
    ck_assert_int_eq(await_end(p, a, &items), SUBITER_ECANCELED);
    /* The same worker takes the next task. */
    b = submit(p, PID, 0, NULL);
    ck_assert_int_eq(subiter_pool_next(p, &pi), 1);
    ck_assert_uint_eq(pi.task, b);
    ck_assert_int_eq(*(const long *)pi.data, (long)pid);
    ck_assert_int_eq(await_end(p, b, NULL), 0);
    ck_assert_uint_eq(stats(p).replaced, 0);
    ck_assert_uint_eq(stats(p).cancelled, 1);
    ck_assert_int_eq(subiter_pool_close(p), 0);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_cancel_running_ignores_stop)
{
    struct tu_snapshot snap;
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;
    subiter_pool_item pi;
    subiter_pool *p;
    unsigned long long a, b;
    pid_t pid;
    int64_t t0;

    tu_snapshot(&snap);
    p = open_pool(1, 200, &po);
    a = submit(p, IGNORE_STOP, 0, NULL);
    ck_assert_int_eq(subiter_pool_next(p, &pi), 1);
    pid = subiter_pool_worker_pid(p, 0);
    t0 = tu_now_ms();
    ck_assert_int_eq(subiter_pool_cancel(p, a), 0);
    for (;;) {
        ck_assert_int_eq(subiter_pool_next(p, &pi), 1);
        if (pi.kind == SUBITER_POOL_TASK_END) {
            break;
        }
    }
    ck_assert_int_lt(tu_now_ms() - t0, HANG_BOUND_MS);
    ck_assert_uint_eq(pi.task, a);
    ck_assert_int_eq(pi.code, SUBITER_ECANCELED);
    ck_assert_msg(strstr(pi.errmsg, "grace_ms (200 ms) of STOP") != NULL &&
                      strstr(pi.errmsg, "replaced") != NULL,
                  "%s", pi.errmsg);
    tu_assert_gone(pid);
    ck_assert_uint_eq(stats(p).replaced, 1);
    /* Its replacement works. */
    b = submit(p, PID, 0, NULL);
    ck_assert_int_eq(subiter_pool_next(p, &pi), 1);
    ck_assert_int_ne(*(const long *)pi.data, (long)pid);
    ck_assert_int_eq(await_end(p, b, NULL), 0);
    ck_assert_int_eq(subiter_pool_close(p), 0);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_task_timeouts)
{
    struct tu_snapshot snap;
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;
    subiter_task_opts to = SUBITER_TASK_OPTS_INIT;
    subiter_pool_item pi;
    subiter_pool *p;
    unsigned long long a, b, c;

    tu_snapshot(&snap);
    po.task_timeout_ms = 200;
    po.max_retries = 0;
    p = open_pool(2, TU_LONG_GRACE_MS, &po);
    to.timeout_ms = 5000; /* longer than the pool's */
    a = submit(p, SLEEP, 500, &to);
    b = submit(p, SLEEP, 3000, NULL); /* the pool's 200 ms */
    ck_assert_int_eq(await_end(p, b, NULL), SUBITER_ETIMEDOUT);
    ck_assert_int_eq(await_end(p, a, NULL), 0);
    to.timeout_ms = 100; /* shorter than the pool's */
    c = submit(p, SLEEP, 3000, &to);
    for (;;) {
        ck_assert_int_eq(subiter_pool_next(p, &pi), 1);
        if (pi.task == c && pi.kind == SUBITER_POOL_TASK_END) {
            break;
        }
    }
    ck_assert_int_eq(pi.code, SUBITER_ETIMEDOUT);
    ck_assert_msg(strstr(pi.errmsg, "past its 100 ms limit") != NULL, "%s",
                  pi.errmsg);
    ck_assert_int_eq(subiter_pool_close(p), 0);
    tu_assert_clean(&snap);
}
END_TEST

/* What the callbacks saw of the task user pointers. */
static struct {
    int results, errors, bad;
} seen;

static void on_result(subiter_pool *p, unsigned long long task,
                      const void *data, size_t len, void *user)
{
    long *want = subiter_pool_task_user(p, task);

    (void)user;
    seen.results++;
    if (want == NULL || len != sizeof(long) || *want != *(const long *)data) {
        seen.bad++;
    }
}

static void on_error(subiter_pool *p, unsigned long long task, int code,
                     const char *errmsg, void *user)
{
    long *want = subiter_pool_task_user(p, task);

    (void)errmsg;
    (void)user;
    seen.errors++;
    if (want == NULL || *want != -1 || code != SUBITER_EITER) {
        seen.bad++;
    }
}

START_TEST(test_pool_task_user)
{
    struct tu_snapshot snap;
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;
    subiter_task_opts to = SUBITER_TASK_OPTS_INIT;
    long vals[4] = {10, 20, 30, -1};
    subiter_pool_item pi;
    subiter_pool *p;
    unsigned long long id[4];
    int k, ends = 0, items = 0;

    tu_snapshot(&snap);
    p = open_pool(1, TU_LONG_GRACE_MS, &po);
    for (k = 0; k < 4; k++) {
        to.user = &vals[k];
        id[k] = submit(p, k < 3 ? PLAIN : FAIL, vals[k], &to);
        ck_assert_ptr_eq(subiter_pool_task_user(p, id[k]), &vals[k]);
    }
    ck_assert_ptr_null(subiter_pool_task_user(p, 999));
    ck_assert_ptr_null(subiter_pool_task_user(NULL, id[0]));
    while (ends < 4) {
        ck_assert_int_eq(subiter_pool_next(p, &pi), 1);
        k = (int)(pi.task - id[0]);
        ck_assert_ptr_eq(pi.task_user, &vals[k]);
        ck_assert_ptr_eq(subiter_pool_task_user(p, pi.task), &vals[k]);
        if (pi.kind == SUBITER_POOL_TASK_END) {
            ends++;
            ck_assert_int_eq(pi.code, k < 3 ? 0 : SUBITER_EITER);
        } else {
            items++;
            ck_assert_int_eq(*(const long *)pi.data, vals[k]);
        }
    }
    ck_assert_int_eq(items, 3);
    ck_assert_int_eq(subiter_pool_next(p, &pi), 0);
    ck_assert_ptr_null(subiter_pool_task_user(p, id[0]));
    ck_assert_int_eq(subiter_pool_close(p), 0);

    /* The same through the callbacks. */
    memset(&seen, 0, sizeof seen);
    po = (subiter_pool_opts)SUBITER_POOL_OPTS_INIT;
    po.on_result = on_result;
    po.on_error = on_error;
    p = open_pool(2, TU_LONG_GRACE_MS, &po);
    for (k = 0; k < 4; k++) {
        to.user = &vals[k];
        (void)submit(p, k < 3 ? PLAIN : FAIL, vals[k], &to);
    }
    ck_assert_int_eq(subiter_pool_wait(p, HANG_BOUND_MS), 0);
    ck_assert_int_eq(seen.results, 3);
    ck_assert_int_eq(seen.errors, 1);
    ck_assert_int_eq(seen.bad, 0);
    ck_assert_int_eq(subiter_pool_close(p), 0);
    tu_assert_clean(&snap);
}
END_TEST

#define RECYCLED 5

/* max_tasks_per_worker 1: a fresh process for every task, each ending
 * cleanly (not counted as replaced). */
START_TEST(test_pool_recycling)
{
    struct tu_snapshot snap;
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;
    subiter_pool_item pi;
    subiter_pool *p;
    long pids[RECYCLED];
    int k, i;

    tu_snapshot(&snap);
    po.max_tasks_per_worker = 1;
    p = open_pool(1, TU_LONG_GRACE_MS, &po);
    for (k = 0; k < RECYCLED; k++) {
        (void)submit(p, PID, 0, NULL);
    }
    k = 0;
    while (subiter_pool_next(p, &pi) == 1) {
        if (pi.kind == SUBITER_POOL_TASK_END) {
            ck_assert_int_eq(pi.code, 0);
            continue;
        }
        ck_assert_int_lt(k, RECYCLED);
        pids[k] = *(const long *)pi.data;
        for (i = 0; i < k; i++) {
            ck_assert_int_ne(pids[i], pids[k]);
        }
        k++;
    }
    ck_assert_int_eq(k, RECYCLED);
    for (i = 0; i < RECYCLED - 1; i++) {
        tu_assert_gone((pid_t)pids[i]);
    }
    ck_assert_uint_eq(stats(p).replaced, 0);
    ck_assert_uint_eq(stats(p).done, RECYCLED);
    ck_assert_int_eq(subiter_pool_close(p), 0);
    tu_assert_clean(&snap);
}
END_TEST

/* A cancel from a callback is refused; not from an on_result of its own. */
static void on_result_cancel(subiter_pool *p, unsigned long long task,
                             const void *data, size_t len, void *user)
{
    (void)data;
    (void)len;
    *(int *)user = subiter_pool_cancel(p, task);
}

START_TEST(test_pool_cancel_misuse)
{
    struct tu_snapshot snap;
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;
    subiter_task_opts to = SUBITER_TASK_OPTS_INIT;
    struct job j = {PLAIN, 1, 0};
    unsigned long long id = 7;
    subiter_pool *p;
    int rc = 0;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_pool_cancel(NULL, 1), -EINVAL);
    ck_assert_int_eq(subiter_pool_submit_ex(NULL, &j, sizeof j, 0, NULL, &id),
                     -EINVAL);
    ck_assert_uint_eq(id, 0);
    p = open_pool(1, TU_LONG_GRACE_MS, &po);
    to.size = 1;
    ck_assert_int_eq(subiter_pool_submit_ex(p, &j, sizeof j, 0, &to, &id),
                     -EINVAL);
    to.size = sizeof to;
    to.timeout_ms = -1;
    ck_assert_int_eq(subiter_pool_submit_ex(p, &j, sizeof j, 0, &to, &id),
                     -EINVAL);
    ck_assert_ptr_nonnull(strstr(subiter_pool_errmsg(p), "timeout_ms -1"));
    ck_assert_int_eq(subiter_pool_cancel(p, 0), -ENOENT);
    ck_assert_int_eq(subiter_pool_close(p), 0);

    po = (subiter_pool_opts)SUBITER_POOL_OPTS_INIT;
    po.on_result = on_result_cancel;
    po.user = &rc;
    p = open_pool(1, TU_LONG_GRACE_MS, &po);
    (void)submit(p, PLAIN, 1, NULL);
    ck_assert_int_eq(subiter_pool_wait(p, HANG_BOUND_MS), 0);
    ck_assert_int_eq(rc, -EBUSY);
    ck_assert_int_eq(subiter_pool_close(p), 0);
    tu_assert_clean(&snap);
}
END_TEST

/* Issue 13.4 in a pool: shards that ignore the stop end after grace_ms;
 * the workers are replaced, the error says so, and the pool goes on. */
START_TEST(test_pool_stop_bound)
{
    struct tu_snapshot snap;
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;
    subiter_pool_item pi;
    subiter_pool *p;
    int64_t t0;

    tu_snapshot(&snap);
    p = open_pool(2, 200, &po);
    ck_assert_int_eq(subiter_pool_start(p, NULL, 0), 0);
    ck_assert_int_eq(subiter_pool_next(p, &pi), 1);
    t0 = tu_now_ms();
    ck_assert_int_eq(subiter_pool_stop(p), SUBITER_ETIMEDOUT);
    ck_assert_int_lt(tu_now_ms() - t0, HANG_BOUND_MS);
    ck_assert_msg(strstr(subiter_pool_errmsg(p), "within grace_ms (200 ms) "
                                                 "of STOP") != NULL,
                  "%s", subiter_pool_errmsg(p));
    ck_assert_uint_eq(stats(p).replaced, 2);
    /* Usable: start again, stop again. */
    ck_assert_int_eq(subiter_pool_start(p, NULL, 0), 0);
    ck_assert_int_eq(subiter_pool_next(p, &pi), 1);
    ck_assert_int_eq(subiter_pool_stop(p), SUBITER_ETIMEDOUT);
    ck_assert_int_eq(subiter_pool_close(p), 0);
    tu_assert_clean(&snap);
}
END_TEST

static Suite *pool_cancel_suite(void)
{
    Suite *s = suite_create("pool_cancel");
    TCase *tc = tcase_create("pool_cancel");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_pool_cancel_queued);
    tcase_add_test(tc, test_pool_cancel_running_honours_stop);
    tcase_add_test(tc, test_pool_cancel_running_ignores_stop);
    tcase_add_test(tc, test_pool_task_timeouts);
    tcase_add_test(tc, test_pool_task_user);
    tcase_add_test(tc, test_pool_recycling);
    tcase_add_test(tc, test_pool_cancel_misuse);
    tcase_add_test(tc, test_pool_stop_bound);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(pool_cancel_suite());
}
