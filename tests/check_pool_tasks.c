/* check_pool_tasks.c: tasks on a pool of workers: results through
 * next() and through callbacks, a worker dying mid-task and the retry,
 * per-task timeouts, the bounded queue and its deadlock check. Generators
 * report through shared pages, never ck_assert. Every case checks that no
 * child, fd or mapping is left. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testpool.h"

#define M_TASKS 30

START_TEST(test_pool_tasks_through_next)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(3, &wo);
    struct tp_shared *sh;
    static struct tp_results res;
    subiter_pool *p;
    subiter_pool_stats st;
    unsigned long long ids[M_TASKS];
    long k;

    tu_snapshot(&snap);
    sh = tp_shared_new();
    memset(&res, 0, sizeof res);
    ck_assert_int_eq(subiter_pool_open(&p, tp_gen_job, sh, &po), 0);
    for (k = 0; k < M_TASKS; k++) {
        ids[k] = tp_submit(p, 10 * k + 3, JOB_PLAIN, 0, 0);
        if (k > 0) {
            ck_assert_uint_gt(ids[k], ids[k - 1]);
        }
    }
    ck_assert_int_eq(tp_drain(p, &res), 0);
    for (k = 0; k < M_TASKS; k++) {
        tp_assert_task_ok(&res, ids[k], 10 * k + 3);
        ck_assert_int_eq(res.t[ids[k]].items, 1);
    }
    st = tp_stats(p);
    ck_assert_uint_eq(st.submitted, M_TASKS);
    ck_assert_uint_eq(st.done, M_TASKS);
    ck_assert_uint_eq(st.failed, 0);
    ck_assert_uint_eq(st.queued, 0);
    ck_assert_uint_eq(st.busy, 0);
    /* Nothing left: next says so at once. */
    ck_assert_int_eq(tp_drain(p, &res), 0);
    tp_close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_tasks_through_callbacks)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(3, &wo);
    struct tp_shared *sh;
    static struct tp_results res;
    subiter_pool *p;
    subiter_pool_stats st;
    unsigned long long ids[M_TASKS];
    long k;

    tu_snapshot(&snap);
    sh = tp_shared_new();
    tp_with_callbacks(&po, &res);
    ck_assert_int_eq(subiter_pool_open(&p, tp_gen_job, sh, &po), 0);
    for (k = 0; k < M_TASKS; k++) {
        ids[k] = tp_submit(p, 10 * k + 3, JOB_PLAIN, 0, 0);
    }
    ck_assert_int_eq(subiter_pool_wait(p, 20000), 0);
    ck_assert_int_eq(res.bad, 0);
    for (k = 0; k < M_TASKS; k++) {
        ck_assert_int_eq(res.t[ids[k]].items, 1);
        ck_assert_int_eq(res.t[ids[k]].last, tp_f(10 * k + 3));
        ck_assert_int_eq(res.t[ids[k]].ends, 0); /* no error */
    }
    st = tp_stats(p);
    ck_assert_uint_eq(st.submitted, M_TASKS);
    ck_assert_uint_eq(st.done, M_TASKS);
    ck_assert_uint_eq(st.failed, 0);
    /* Nothing to wait for. */
    ck_assert_int_eq(subiter_pool_wait(p, 1000), 0);
    tp_close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

/* A task whose worker dies (`how`) on its first attempt: replaced, the
 * task retried, and everything succeeds. */
static void task_retried(long how)
{
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(2, &wo);
    struct tp_shared *sh = tp_shared_new();
    static struct tp_results res;
    subiter_pool *p;
    subiter_pool_stats st;
    unsigned long long ids[5], dying;
    long k;

    /* exit() in the worker flushes its copy of our stdio buffers. */
    fflush(NULL);
    memset(&res, 0, sizeof res);
    ck_assert_int_eq(subiter_pool_open(&p, tp_gen_job, sh, &po), 0);
    for (k = 0; k < 2; k++) {
        ids[k] = tp_submit(p, k, JOB_PLAIN, 0, 0);
    }
    dying = tp_submit(p, 100, how, 1, 0);
    for (k = 2; k < 5; k++) {
        ids[k] = tp_submit(p, k, JOB_PLAIN, 0, 0);
    }
    ck_assert_int_eq(tp_drain(p, &res), 0);
    ck_assert_int_eq(atomic_load(&sh->attempts), 2);
    for (k = 0; k < 5; k++) {
        tp_assert_task_ok(&res, ids[k], k);
        ck_assert_int_eq(res.t[ids[k]].items, 1);
    }
    /* Its item may have come from both attempts. */
    tp_assert_task_ok(&res, dying, 100);
    ck_assert_int_le(res.t[dying].items, 2);
    st = tp_stats(p);
    ck_assert_uint_eq(st.submitted, 6);
    ck_assert_uint_eq(st.done, 6);
    ck_assert_uint_eq(st.failed, 0);
    ck_assert_uint_eq(st.retried, 1);
    ck_assert_uint_eq(st.replaced, 1);
    tp_close_clean(p);
    tu_shared_free(sh, PAGE);
}

START_TEST(test_pool_tasks_retried_after_sigkill)
{
    struct tu_snapshot snap;

    tu_snapshot(&snap);
    task_retried(JOB_KILL);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_tasks_retried_after_segv)
{
    struct tu_snapshot snap;

    tu_snapshot(&snap);
    task_retried(JOB_SEGV);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_tasks_retried_after_exit3)
{
    struct tu_snapshot snap;

    tu_snapshot(&snap);
    task_retried(JOB_EXIT3);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_tasks_fail_without_retries)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(2, &wo);
    struct tp_shared *sh;
    static struct tp_results res;
    subiter_pool *p;
    subiter_pool_stats st;
    unsigned long long a, b, dying;

    tu_snapshot(&snap);
    sh = tp_shared_new();
    tp_with_callbacks(&po, &res);
    po.max_retries = 0;
    ck_assert_int_eq(subiter_pool_open(&p, tp_gen_job, sh, &po), 0);
    a = tp_submit(p, 1, JOB_PLAIN, 0, 0);
    dying = tp_submit(p, 2, JOB_SEGV, 1, 0);
    b = tp_submit(p, 3, JOB_PLAIN, 0, 0);
    ck_assert_int_eq(subiter_pool_wait(p, 20000), 0);
    ck_assert_int_eq(res.bad, 0);
    ck_assert_int_eq(atomic_load(&sh->attempts), 1);
    ck_assert_int_eq(res.t[dying].ends, 1);
    ck_assert_int_eq(res.t[dying].code, SUBITER_ECHILD);
    ck_assert_msg(strstr(res.t[dying].msg, "SIGSEGV") != NULL,
                  "errmsg \"%s\" lacks the signal", res.t[dying].msg);
    ck_assert_int_eq(res.t[a].ends, 0);
    ck_assert_int_eq(res.t[a].last, tp_f(1));
    ck_assert_int_eq(res.t[b].ends, 0);
    ck_assert_int_eq(res.t[b].last, tp_f(3));
    st = tp_stats(p);
    ck_assert_uint_eq(st.done, 2);
    ck_assert_uint_eq(st.failed, 1);
    ck_assert_uint_eq(st.retried, 0);
    ck_assert_uint_eq(st.replaced, 1);
    /* The pool goes on. */
    a = tp_submit(p, 4, JOB_PLAIN, 0, 0);
    ck_assert_int_eq(subiter_pool_wait(p, 20000), 0);
    ck_assert_int_eq(res.t[a].last, tp_f(4));
    tp_close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_tasks_always_dying)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(2, &wo);
    struct tp_shared *sh;
    static struct tp_results res;
    subiter_pool *p;
    subiter_pool_stats st;
    unsigned long long killed, exited, ok;

    tu_snapshot(&snap);
    fflush(NULL);
    sh = tp_shared_new();
    memset(&res, 0, sizeof res);
    ck_assert_int_eq(subiter_pool_open(&p, tp_gen_job, sh, &po), 0);
    /* max_retries is 1: two attempts each. */
    killed = tp_submit(p, 1, JOB_KILL, 0, 0);
    exited = tp_submit(p, 2, JOB_EXIT3, 0, 0);
    ok = tp_submit(p, 3, JOB_PLAIN, 0, 0);
    ck_assert_int_eq(tp_drain(p, &res), 0);
    ck_assert_int_eq(atomic_load(&sh->attempts), 4);
    ck_assert_int_eq(res.t[killed].ends, 1);
    ck_assert_int_eq(res.t[killed].code, SUBITER_ECHILD);
    ck_assert_msg(strstr(res.t[killed].msg, "SIGKILL") != NULL,
                  "errmsg \"%s\" lacks the signal", res.t[killed].msg);
    ck_assert_int_eq(res.t[exited].ends, 1);
    ck_assert_int_eq(res.t[exited].code, SUBITER_ECHILD);
    ck_assert_msg(strstr(res.t[exited].msg, "status 3") != NULL,
                  "errmsg \"%s\" lacks the status", res.t[exited].msg);
    tp_assert_task_ok(&res, ok, 3);
    st = tp_stats(p);
    ck_assert_uint_eq(st.done, 1);
    ck_assert_uint_eq(st.failed, 2);
    ck_assert_uint_eq(st.retried, 2);
    ck_assert_uint_eq(st.replaced, 4);
    tp_close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_tasks_timeout)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, SHORT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(1, &wo);
    struct tp_shared *sh;
    static struct tp_results res;
    subiter_pool *p;
    subiter_pool_stats st;
    unsigned long long hang, ids[3];
    pid_t pid;
    int64_t t0;
    long k;

    tu_snapshot(&snap);
    sh = tp_shared_new();
    memset(&res, 0, sizeof res);
    po.task_timeout_ms = 200;
    ck_assert_int_eq(subiter_pool_open(&p, tp_gen_job, sh, &po), 0);
    pid = subiter_pool_worker_pid(p, 0);
    t0 = tu_now_ms();
    hang = tp_submit(p, 0, JOB_HANG, 0, 0);
    for (k = 0; k < 3; k++) {
        ids[k] = tp_submit(p, k + 1, JOB_PLAIN, 0, 0);
    }
    ck_assert_int_eq(tp_drain(p, &res), 0);
    ck_assert_int_lt(tu_now_ms() - t0, WAIT_MS);
    ck_assert_int_eq(atomic_load(&sh->started), 1);
    ck_assert_int_eq(res.t[hang].ends, 1);
    ck_assert_int_eq(res.t[hang].code, SUBITER_ETIMEDOUT);
    ck_assert_int_eq(res.t[hang].items, 0);
    ck_assert_msg(strstr(res.t[hang].msg, "200 ms") != NULL,
                  "errmsg \"%s\" lacks the timeout", res.t[hang].msg);
    for (k = 0; k < 3; k++) {
        tp_assert_task_ok(&res, ids[k], k + 1);
    }
    /* The later tasks ran on a new worker; the old one is reaped. */
    tu_assert_gone(pid);
    ck_assert_int_gt(subiter_pool_worker_pid(p, 0), 0);
    ck_assert_int_ne(subiter_pool_worker_pid(p, 0), pid);
    st = tp_stats(p);
    ck_assert_uint_eq(st.timed_out, 1);
    ck_assert_uint_eq(st.failed, 1);
    ck_assert_uint_eq(st.done, 3);
    ck_assert_uint_eq(st.retried, 0);
    tp_close_any(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

/* The application was away past a task's deadline while the worker
 * finished in time: everything the worker published before the deadline
 * is read, and the task ends well (not after one more item). */
START_TEST(test_pool_tasks_timeout_after_parent_away)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, SHORT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(1, &wo);
    struct tp_shared *sh;
    static struct tp_results res;
    subiter_pool *p;
    unsigned long long id;
    int64_t end;

    tu_snapshot(&snap);
    sh = tp_shared_new();
    memset(&res, 0, sizeof res);
    po.task_timeout_ms = 200;
    ck_assert_int_eq(subiter_pool_open(&p, tp_gen_job, sh, &po), 0);
    id = tp_submit(p, 100, JOB_MANY, 0, 0);
    end = tu_now_ms() + WAIT_MS;
    while (atomic_load(&sh->yielded) < 100 && tu_now_ms() < end) {
        tu_sleep_ms(1);
    }
    ck_assert_int_eq(atomic_load(&sh->yielded), 100);
    tu_sleep_ms(400); /* the deadline passes with all 100 items unread */
    ck_assert_int_eq(tp_drain(p, &res), 0);
    ck_assert_msg(res.t[id].ends == 1 && res.t[id].code == 0,
                  "task: %d ends, code %d (%s)", res.t[id].ends, res.t[id].code,
                  res.t[id].msg);
    ck_assert_int_eq(res.t[id].items, 100);
    ck_assert_int_eq(tp_stats(p).timed_out, 0);
    tp_close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

/* Every slot gave up on its initializer (the task's worker died, and no
 * replacement could start): the queued task ends at once with the
 * reason; once the cause is gone, a task submitted later runs. */
START_TEST(test_pool_tasks_after_init_gave_up)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(1, &wo);
    static struct tp_results res;
    struct tp_shared *sh;
    subiter_pool *p;
    unsigned long long a, b, c;

    tu_snapshot(&snap);
    sh = tp_shared_new();
    memset(&res, 0, sizeof res);
    wo.init = tp_init_gated;
    po.max_retries = 0;
    ck_assert_int_eq(subiter_pool_open(&p, tp_gen_job, sh, &po), 0);
    /* The task's worker dies, and from now on no initializer succeeds. */
    atomic_store(&sh->fail, 1);
    a = tp_submit(p, 1, JOB_KILL, 0, 0);
    ck_assert_int_eq(tp_drain(p, &res), 0);
    ck_assert_int_eq(res.t[a].code, SUBITER_ECHILD);
    /* No worker can start: the task ends with the reason. */
    b = tp_submit(p, 2, JOB_PLAIN, 0, 0);
    ck_assert_int_eq(tp_drain(p, &res), 0);
    ck_assert_int_eq(res.t[b].ends, 1);
    ck_assert_int_eq(res.t[b].code, SUBITER_EINIT);
    ck_assert_msg(strstr(res.t[b].msg, "the device is gone") != NULL,
                  "errmsg \"%s\"", res.t[b].msg);
    ck_assert_int_eq(subiter_pool_worker_pid(p, 0), 0);
    /* The cause is gone: a task submitted now runs. */
    atomic_store(&sh->fail, 0);
    c = tp_submit(p, 3, JOB_PLAIN, 0, 0);
    ck_assert_int_eq(tp_drain(p, &res), 0);
    tp_assert_task_ok(&res, c, 3);
    ck_assert_int_gt(subiter_pool_worker_pid(p, 0), 0);
    tp_close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

/* The task's worker died and the next two initializers die too: the slot
 * may still be retried, so a task submitted then is not failed but runs
 * on the third replacement; and with two slots of which one gave up, the
 * other runs it. */
START_TEST(test_pool_tasks_run_while_a_slot_may_retry)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(1, &wo);
    static struct tp_results res;
    struct tp_shared *sh;
    subiter_pool *p;
    unsigned long long a, b;
    unsigned workers;
    int r;

    tu_snapshot(&snap);
    sh = tp_shared_new();
    wo.init = tp_init_gated;
    po.max_retries = 0;
    for (workers = 1; workers <= 2; workers++) {
        memset(&res, 0, sizeof res);
        po.workers = workers;
        ck_assert_int_eq(subiter_pool_open(&p, tp_gen_job, sh, &po), 0);
        a = tp_submit(p, 1, JOB_KILL, 0, 0);
        ck_assert_int_eq(tp_drain(p, &res), 0);
        ck_assert_int_eq(res.t[a].code, SUBITER_ECHILD);
        /* One slot: two replacements die, the third runs the task. Two
         * slots: the dead one gives up after three, the other runs it. */
        atomic_store(&sh->deaths, workers == 1 ? 2 : 3);
        b = tp_submit(p, 2, JOB_PLAIN, 0, 0);
        ck_assert_int_eq(tp_drain(p, &res), 0);
        tp_assert_task_ok(&res, b, 2);
        atomic_store(&sh->deaths, 0);
        /* A replacement may be dying in its initializer as the pool
         * closes: close then reports it. */
        r = subiter_pool_close(p);
        ck_assert_msg(r == 0 || r == SUBITER_ECHILD, "close: %d", r);
    }
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- the bounded queue ---- */

START_TEST(test_pool_tasks_queue_bounded_with_callbacks)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(1, &wo);
    struct tp_shared *sh;
    static struct tp_results res;
    subiter_pool *p;
    subiter_pool_stats st;
    unsigned long long a, b = 0, c = 0, d = 0;

    tu_snapshot(&snap);
    sh = tp_shared_new();
    tp_with_callbacks(&po, &res);
    po.queue_max = 2;
    ck_assert_int_eq(subiter_pool_open(&p, tp_gen_job, sh, &po), 0);
    a = tp_submit(p, 1, JOB_GATE, 0, 0);
    ck_assert(tp_drive_until(p, &sh->started, 1));
    st = tp_stats(p);
    ck_assert_uint_eq(st.busy, 1);
    ck_assert_uint_eq(st.queued, 0);

    ck_assert_int_eq(tp_submit_nowait(p, 2, JOB_PLAIN, &b), 0);
    ck_assert_int_eq(tp_submit_nowait(p, 3, JOB_PLAIN, &c), 0);
    ck_assert_int_eq(tp_stats(p).queued, 2);
    ck_assert_int_eq(tp_submit_nowait(p, 4, JOB_PLAIN, &d), -EAGAIN);
    ck_assert_int_eq(tp_submit_nowait(p, 4, JOB_PLAIN, &d), -EAGAIN);
    st = tp_stats(p);
    ck_assert_uint_eq(st.submitted, 3);
    ck_assert_uint_eq(st.queued, 2);

    /* Room comes only when the gate task ends and the worker takes the
     * next: the blocking submit runs the pool (and a's callback) until
     * then. */
    atomic_store(&sh->release, 1);
    d = tp_submit(p, 4, JOB_PLAIN, 0, 0);
    ck_assert_int_eq(res.t[a].items, 1);
    ck_assert_uint_le(tp_stats(p).queued, 2);
    ck_assert_int_eq(subiter_pool_wait(p, 20000), 0);
    ck_assert_int_eq(res.bad, 0);
    ck_assert_int_eq(res.t[a].last, tp_f(1));
    ck_assert_int_eq(res.t[b].last, tp_f(2));
    ck_assert_int_eq(res.t[c].last, tp_f(3));
    ck_assert_int_eq(res.t[d].last, tp_f(4));
    st = tp_stats(p);
    ck_assert_uint_eq(st.submitted, 4);
    ck_assert_uint_eq(st.done, 4);
    tp_close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_tasks_queue_full_deadlock)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po;
    struct tp_shared *sh;
    static struct tp_results res;
    subiter_pool *p;
    subiter_pool_item item;
    subiter_pool_stats st;
    struct tp_job j = {4, JOB_PLAIN, 0, 0};
    unsigned long long a, b = 0, c = 0, d = 0;
    long v;

    tu_snapshot(&snap);
    sh = tp_shared_new();
    memset(&res, 0, sizeof res);
    wo.buffer_items = 32;
    po = tp_pool_opts(1, &wo);
    po.queue_max = 2;
    ck_assert_int_eq(subiter_pool_open(&p, tp_gen_job, sh, &po), 0);
    /* a yields 100 items: with 32 buffered the worker waits for next(). */
    a = tp_submit(p, 100, JOB_MANY, 0, 0);
    ck_assert_int_eq(subiter_pool_next(p, &item), 1);
    ck_assert_int_eq(item.kind, SUBITER_POOL_ITEM);
    ck_assert_uint_eq(item.task, a);
    memcpy(&v, item.data, sizeof v);
    ck_assert_int_eq(v, 0);
    ck_assert(tu_wait_flag(&sh->yielded, (int)wo.buffer_items, WAIT_MS));

    ck_assert_int_eq(tp_submit_nowait(p, 2, JOB_PLAIN, &b), 0);
    ck_assert_int_eq(tp_submit_nowait(p, 3, JOB_PLAIN, &c), 0);
    ck_assert_int_eq(tp_submit_nowait(p, 4, JOB_PLAIN, &d), -EAGAIN);
    ck_assert_int_eq(subiter_pool_submit(p, &j, sizeof j, 0, &d), -EDEADLK);
    st = tp_stats(p);
    ck_assert_uint_eq(st.submitted, 3);
    ck_assert_uint_eq(st.queued, 2);

    res.t[a].items = 1;
    res.t[a].last = 0;
    ck_assert_int_eq(tp_drain(p, &res), 0);
    ck_assert_int_eq(res.t[a].items, 100);
    ck_assert_int_eq(res.t[a].last, 99);
    ck_assert_int_eq(res.t[a].ends, 1);
    ck_assert_int_eq(res.t[a].code, 0);
    tp_assert_task_ok(&res, b, 2);
    tp_assert_task_ok(&res, c, 3);
    ck_assert_uint_eq(tp_stats(p).done, 3);
    tp_close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

static Suite *pool_tasks_suite(void)
{
    Suite *s = suite_create("pool_tasks");
    TCase *tc;

    tc = tcase_create("tasks");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_pool_tasks_through_next);
    tcase_add_test(tc, test_pool_tasks_through_callbacks);
    tcase_add_test(tc, test_pool_tasks_retried_after_sigkill);
    tcase_add_test(tc, test_pool_tasks_retried_after_segv);
    tcase_add_test(tc, test_pool_tasks_retried_after_exit3);
    tcase_add_test(tc, test_pool_tasks_fail_without_retries);
    tcase_add_test(tc, test_pool_tasks_always_dying);
    tcase_add_test(tc, test_pool_tasks_timeout);
    tcase_add_test(tc, test_pool_tasks_timeout_after_parent_away);
    tcase_add_test(tc, test_pool_tasks_after_init_gave_up);
    tcase_add_test(tc, test_pool_tasks_run_while_a_slot_may_retry);
    suite_add_tcase(s, tc);

    tc = tcase_create("queue");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_pool_tasks_queue_bounded_with_callbacks);
    tcase_add_test(tc, test_pool_tasks_queue_full_deadlock);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(pool_tasks_suite());
}
