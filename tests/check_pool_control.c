/* check_pool_control.c: controlling a pool of workers: pause and
 * resume, finalize, growing and shrinking between min_workers and
 * workers, and misuse (bad options, NULL arguments, calls out of turn,
 * a failing initializer). Generators report through shared pages, never
 * ck_assert. Every case checks that no child, fd or mapping is left. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testpool.h"

/* Fails in the worker of shard 1 only. */
TU_EXPORT(int init_fail_shard1(subiter_gen *g, void *arg))
{
    (void)arg;
    if (subiter_worker_id(g) == 1) {
        return subiter_fail(g, "no device for shard %u", subiter_worker_id(g));
    }
    return 0;
}

/* Wait until the process is stopped (or, with !stopped, running again). */
static bool wait_state(pid_t pid, bool stopped)
{
    int64_t end = tu_now_ms() + WAIT_MS;

    while ((tp_proc_state(pid) == 'T') != stopped) {
        if (tu_now_ms() > end) {
            return false;
        }
        tu_sleep_ms(1);
    }
    return true;
}

START_TEST(test_pool_control_pause_resume)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, SHORT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(2, &wo);
    struct tp_shared *sh;
    static struct tp_results res;
    subiter_pool *p;
    pid_t pids[2];
    unsigned long long a;
    int64_t t0;
    int r;

    tu_snapshot(&snap);
    sh = tp_shared_new();
    tp_with_callbacks(&po, &res);
    ck_assert_int_eq(subiter_pool_open(&p, tp_gen_job, sh, &po), 0);
    pids[0] = subiter_pool_worker_pid(p, 0);
    pids[1] = subiter_pool_worker_pid(p, 1);

    /* One worker. */
    ck_assert_int_eq(subiter_pool_pause(p, 1), 0);
    ck_assert(wait_state(pids[1], true));
    ck_assert_int_ne(tp_proc_state(pids[0]), 'T');
    ck_assert_int_eq(subiter_pool_resume(p, 1), 0);
    ck_assert(wait_state(pids[1], false));

    /* The whole pool: nothing is handed out, nothing completes. */
    ck_assert_int_eq(subiter_pool_pause(p, -1), 0);
    ck_assert(wait_state(pids[0], true));
    ck_assert(wait_state(pids[1], true));
    a = tp_submit(p, 7, JOB_PLAIN, 0, 0);
    r = subiter_pool_wait(p, 200);
    ck_assert_int_eq(r, -ETIMEDOUT);
    ck_assert_uint_eq(tp_stats(p).done, 0);
    ck_assert_int_eq(res.t[a].items, 0);
    ck_assert_int_eq(subiter_pool_resume(p, -1), 0);
    ck_assert_int_eq(subiter_pool_wait(p, 20000), 0);
    ck_assert_int_eq(res.t[a].items, 1);
    ck_assert_int_eq(res.t[a].last, tp_f(7));
    ck_assert_uint_eq(tp_stats(p).done, 1);
    ck_assert(wait_state(pids[0], false));
    ck_assert(wait_state(pids[1], false));

    /* No such worker. */
    ck_assert_int_eq(subiter_pool_pause(p, 2), -EINVAL);
    ck_assert_int_eq(subiter_pool_pause(p, 99), -EINVAL);
    ck_assert_int_eq(subiter_pool_pause(p, -2), -EINVAL);
    ck_assert_int_eq(subiter_pool_resume(p, 2), -EINVAL);
    ck_assert_int_eq(subiter_pool_pause(NULL, 0), -EINVAL);
    ck_assert_int_eq(subiter_pool_resume(NULL, -1), -EINVAL);

    /* Close ends a paused worker too, within its grace. */
    ck_assert_int_eq(subiter_pool_pause(p, 0), 0);
    ck_assert(wait_state(pids[0], true));
    t0 = tu_now_ms();
    tp_close_any(p);
    ck_assert_int_lt(tu_now_ms() - t0, 3 * SHORT_GRACE_MS + 2000);
    tu_assert_gone(pids[0]);
    tu_assert_gone(pids[1]);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_control_paused_time_not_counted)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, SHORT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(1, &wo);
    struct tp_shared *sh;
    static struct tp_results res;
    subiter_pool *p;
    unsigned long long a;

    tu_snapshot(&snap);
    sh = tp_shared_new();
    tp_with_callbacks(&po, &res);
    po.task_timeout_ms = 1000;
    ck_assert_int_eq(subiter_pool_open(&p, tp_gen_job, sh, &po), 0);
    /* A 100 ms task, paused for 1.5 s of its 1 s limit: it still ends
     * well, because paused time does not count. */
    a = tp_submit(p, 5, JOB_SLEEP, 0, 100);
    ck_assert_int_eq(subiter_pool_pause(p, 0), 0);
    ck_assert_int_eq(subiter_pool_wait(p, 1500), -ETIMEDOUT);
    ck_assert_int_eq(res.t[a].items, 0);
    ck_assert_int_eq(subiter_pool_resume(p, 0), 0);
    ck_assert_int_eq(subiter_pool_wait(p, 20000), 0);
    ck_assert_int_eq(res.t[a].items, 1);
    ck_assert_int_eq(res.t[a].last, tp_f(5));
    ck_assert_int_eq(res.t[a].ends, 0);
    ck_assert_uint_eq(tp_stats(p).timed_out, 0);
    ck_assert_uint_eq(tp_stats(p).done, 1);
    tp_close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

/* Workers 1: a gate task that never opens, and three queued behind it. */
static void submit_stuck(subiter_pool *p, unsigned long long *ids)
{
    int k;

    ids[0] = tp_submit(p, 0, JOB_GATE, 0, 0);
    for (k = 1; k < 4; k++) {
        ids[k] = tp_submit(p, k, JOB_PLAIN, 0, 0);
    }
}

START_TEST(test_pool_control_finalize_cancels_with_callbacks)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, SHORT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(1, &wo);
    struct tp_shared *sh;
    static struct tp_results res;
    subiter_pool *p;
    subiter_pool_stats st;
    unsigned long long ids[4];
    int k;

    tu_snapshot(&snap);
    sh = tp_shared_new();
    tp_with_callbacks(&po, &res);
    ck_assert_int_eq(subiter_pool_open(&p, tp_gen_job, sh, &po), 0);
    submit_stuck(p, ids);
    ck_assert(tp_drive_until(p, &sh->started, 1));
    ck_assert_int_eq(subiter_pool_finalize(p, 100), 4);
    ck_assert_int_eq(res.bad, 0);
    for (k = 0; k < 4; k++) {
        ck_assert_int_eq(res.t[ids[k]].items, 0);
        ck_assert_int_eq(res.t[ids[k]].ends, 1);
        ck_assert_int_eq(res.t[ids[k]].code, SUBITER_ECANCELED);
        ck_assert_str_ne(res.t[ids[k]].msg, "");
    }
    ck_assert_int_eq(tp_submit_nowait(p, 9, JOB_PLAIN, NULL), -ESHUTDOWN);
    st = tp_stats(p);
    ck_assert_uint_eq(st.cancelled, 4);
    ck_assert_uint_eq(st.failed, 4);
    ck_assert_uint_eq(st.done, 0);
    ck_assert_uint_eq(st.submitted, 4);
    ck_assert_int_eq(subiter_pool_wait(p, 1000), 0);
    tp_close_any(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_control_finalize_cancels_through_next)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, SHORT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(1, &wo);
    struct tp_shared *sh;
    static struct tp_results res;
    subiter_pool *p;
    struct tp_job j = {9, JOB_PLAIN, 0, 0};
    unsigned long long ids[4];
    int k;

    tu_snapshot(&snap);
    sh = tp_shared_new();
    memset(&res, 0, sizeof res);
    ck_assert_int_eq(subiter_pool_open(&p, tp_gen_job, sh, &po), 0);
    submit_stuck(p, ids);
    ck_assert_int_eq(subiter_pool_finalize(p, 100), 0);
    ck_assert_int_eq(subiter_pool_submit(p, &j, sizeof j, 0, NULL), -ESHUTDOWN);
    ck_assert_int_eq(tp_drain(p, &res), 0);
    for (k = 0; k < 4; k++) {
        ck_assert_int_eq(res.t[ids[k]].items, 0);
        ck_assert_int_eq(res.t[ids[k]].ends, 1);
        ck_assert_int_eq(res.t[ids[k]].code, SUBITER_ECANCELED);
        ck_assert_str_ne(res.t[ids[k]].msg, "");
    }
    ck_assert_uint_eq(tp_stats(p).cancelled, 4);
    ck_assert_int_eq(subiter_pool_submit(p, &j, sizeof j, 0, NULL), -ESHUTDOWN);
    tp_close_any(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_control_finalize_with_grace_finishes)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(2, &wo);
    struct tp_shared *sh;
    static struct tp_results res;
    subiter_pool *p;
    subiter_pool_stats st;
    unsigned long long ids[4];
    int k;

    tu_snapshot(&snap);
    sh = tp_shared_new();
    tp_with_callbacks(&po, &res);
    ck_assert_int_eq(subiter_pool_open(&p, tp_gen_job, sh, &po), 0);
    for (k = 0; k < 4; k++) {
        ids[k] = tp_submit(p, k, JOB_SLEEP, 0, 50);
    }
    ck_assert_int_eq(subiter_pool_finalize(p, 20000), 0);
    ck_assert_int_eq(res.bad, 0);
    for (k = 0; k < 4; k++) {
        ck_assert_int_eq(res.t[ids[k]].items, 1);
        ck_assert_int_eq(res.t[ids[k]].last, tp_f(k));
        ck_assert_int_eq(res.t[ids[k]].ends, 0);
    }
    ck_assert_int_eq(tp_submit_nowait(p, 9, JOB_PLAIN, NULL), -ESHUTDOWN);
    st = tp_stats(p);
    ck_assert_uint_eq(st.done, 4);
    ck_assert_uint_eq(st.cancelled, 0);
    ck_assert_uint_eq(st.failed, 0);
    tp_close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

static unsigned live_workers(const subiter_pool *p, unsigned max)
{
    unsigned i, n = 0;

    for (i = 0; i < max; i++) {
        n += subiter_pool_worker_pid(p, i) > 0;
    }
    return n;
}

START_TEST(test_pool_control_min_max_workers)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(3, &wo);
    struct tp_shared *sh;
    static struct tp_results res;
    subiter_pool *p;
    subiter_pool_stats st;
    unsigned long long ids[3], e;
    int64_t end;
    int k;

    tu_snapshot(&snap);
    sh = tp_shared_new();
    tp_with_callbacks(&po, &res);
    po.min_workers = 1;
    po.idle_ms = 100;
    ck_assert_int_eq(subiter_pool_open(&p, tp_gen_job, sh, &po), 0);
    ck_assert_uint_eq(tp_stats(p).workers, 1);
    ck_assert_uint_eq(live_workers(p, 3), 1);

    /* Three tasks that hold their workers: the pool grows to 3. */
    for (k = 0; k < 3; k++) {
        ids[k] = tp_submit(p, k, JOB_GATE, 0, 0);
    }
    ck_assert(tp_drive_until(p, &sh->started, 3));
    st = tp_stats(p);
    ck_assert_uint_eq(st.workers, 3);
    ck_assert_uint_eq(st.busy, 3);
    ck_assert_uint_eq(live_workers(p, 3), 3);
    atomic_store(&sh->release, 1);
    ck_assert_int_eq(subiter_pool_wait(p, 20000), 0);
    for (k = 0; k < 3; k++) {
        ck_assert_int_eq(res.t[ids[k]].last, tp_f(k));
    }

    /* Idle: back to min_workers once a call drives the pool. */
    end = tu_now_ms() + WAIT_MS;
    while (tp_stats(p).workers > 1 && tu_now_ms() < end) {
        tu_sleep_ms(50);
        ck_assert_int_eq(subiter_pool_wait(p, 50), 0);
    }
    st = tp_stats(p);
    ck_assert_uint_eq(st.workers, 1);
    ck_assert_uint_eq(live_workers(p, 3), 1);
    ck_assert_uint_eq(st.replaced, 0);

    /* And it still works. */
    e = tp_submit(p, 5, JOB_PLAIN, 0, 0);
    ck_assert_int_eq(subiter_pool_wait(p, 20000), 0);
    ck_assert_int_eq(res.t[e].last, tp_f(5));
    ck_assert_int_eq(res.bad, 0);
    tp_close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- misuse ---- */

START_TEST(test_pool_control_bad_options)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS), bad_wo;
    subiter_pool_opts po;
    subiter_pool *p;
    int i;

    tu_snapshot(&snap);
    po = tp_pool_opts(2, &wo);
    ck_assert_int_eq(subiter_pool_open(NULL, tu_gen_count, NULL, &po), -EINVAL);
    p = NULL;
    ck_assert_int_eq(subiter_pool_open(&p, NULL, NULL, &po), -EINVAL);
    subiter_pool_close(p);
    for (i = 0; i < 9; i++) {
        po = tp_pool_opts(2, &wo);
        switch (i) {
        case 0:
            po.min_workers = 3;
            break;
        case 1:
            /* world_size 0 reads the launcher's variables: bad ones. */
            setenv("RANK", "x", 1);
            setenv("WORLD_SIZE", "2", 1);
            po.world_size = 0;
            break;
        case 2:
            po.world_size = 2;
            po.rank = 2;
            break;
        case 3:
            po.size = sizeof po.size;
            break;
        case 4:
            po.order = 7;
            break;
        case 5:
            po.queue_max = 0;
            break;
        case 6:
            po.idle_ms = -1;
            break;
        case 7:
            bad_wo = wo;
            bad_wo.grace_ms = -1;
            po.worker = &bad_wo;
            break;
        default:
            bad_wo = wo;
            bad_wo.size = 1;
            po.worker = &bad_wo;
            break;
        }
        p = NULL;
        ck_assert_msg(subiter_pool_open(&p, tu_gen_count, NULL, &po) == -EINVAL,
                      "bad option %d accepted", i);
        subiter_pool_close(p);
        unsetenv("RANK");
        unsetenv("WORLD_SIZE");
    }
    ck_assert_int_eq(subiter_pool_close(NULL), 0);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_control_null_args)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(2, &wo);
    subiter_pool *p;
    subiter_pool_item item;
    subiter_pool_stats st = SUBITER_POOL_STATS_INIT;
    static char big[SUBITER_INPUT_MAX + 1];
    long n = 3;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_pool_start(NULL, NULL, 0), -EINVAL);
    ck_assert_int_eq(subiter_pool_next(NULL, &item), -EINVAL);
    ck_assert_int_eq(subiter_pool_submit(NULL, &n, sizeof n, 0, NULL), -EINVAL);
    ck_assert_int_eq(subiter_pool_wait(NULL, 0), -EINVAL);
    ck_assert_int_eq(subiter_pool_finalize(NULL, 0), -EINVAL);
    ck_assert_int_eq(subiter_pool_get_stats(NULL, &st), -EINVAL);
    ck_assert_int_eq(subiter_pool_worker_pid(NULL, 0), 0);
    ck_assert_ptr_nonnull(subiter_pool_errmsg(NULL));

    ck_assert_int_eq(subiter_pool_open(&p, tu_gen_count, NULL, &po), 0);
    ck_assert_str_eq(subiter_pool_errmsg(p), "");
    ck_assert_int_eq(subiter_pool_next(p, NULL), -EINVAL);
    ck_assert_int_eq(subiter_pool_start(p, NULL, 5), -EINVAL);
    ck_assert_int_eq(subiter_pool_submit(p, NULL, 5, 0, NULL), -EINVAL);
    ck_assert_int_eq(subiter_pool_submit(p, &n, sizeof n, 8, NULL), -EINVAL);
    ck_assert_int_eq(subiter_pool_start(p, big, sizeof big), -EMSGSIZE);
    ck_assert_int_eq(subiter_pool_submit(p, big, sizeof big, 0, NULL),
                     -EMSGSIZE);
    ck_assert_int_eq(subiter_pool_get_stats(p, NULL), -EINVAL);
    st.size = 0;
    ck_assert_int_eq(subiter_pool_get_stats(p, &st), -EINVAL);
    ck_assert_int_eq(subiter_pool_worker_pid(p, 2), 0);
    ck_assert_int_eq(subiter_pool_worker_pid(p, 12345), 0);
    ck_assert_int_eq(subiter_pool_finalize(p, -1), -EINVAL);
    /* wait() is for callbacks. */
    ck_assert_int_eq(subiter_pool_wait(p, 0), -EINVAL);
    /* None of it hurt the pool. */
    ck_assert_int_eq(subiter_pool_start(p, &n, sizeof n), 0);
    ck_assert_int_eq(subiter_pool_stop(p), 0);
    ck_assert_uint_eq(tp_stats(p).submitted, 0);
    tp_close_clean(p);
    tu_assert_clean(&snap);
}
END_TEST

/* A caller built against 0.1's header: its smaller pool options, stats
 * and errinfo are served; nothing past their sizes is read or written. */
START_TEST(test_pool_control_older_sizes)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(2, &wo);
    union {
        subiter_pool_stats st;
        unsigned char raw[sizeof(subiter_pool_stats)];
    } s;
    union {
        subiter_errinfo ei;
        unsigned char raw[sizeof(subiter_errinfo)];
    } e;
    const size_t st_v1 = offsetof(subiter_pool_stats, seed);
    const size_t ei_v1 = offsetof(subiter_errinfo, backtrace);
    subiter_pool_item item;
    subiter_pool *p;
    long n = 5;
    size_t i;
    int r;

    tu_snapshot(&snap);
    po.size = offsetof(subiter_pool_opts, max_tasks_per_worker);
    memset(&po.max_tasks_per_worker, 0xa5, sizeof po - po.size);
    ck_assert_int_eq(subiter_pool_open(&p, tu_gen_count, NULL, &po), 0);
    ck_assert_int_eq(subiter_pool_start(p, &n, sizeof n), 0);
    do {
        r = subiter_pool_next(p, &item);
    } while (r == 1);
    ck_assert_int_eq(r, 0);

    memset(&s, 0xa5, sizeof s);
    s.st.size = st_v1;
    ck_assert_int_eq(subiter_pool_get_stats(p, &s.st), 0);
    ck_assert_uint_eq(s.st.size, st_v1);
    for (i = st_v1; i < sizeof s; i++) {
        ck_assert_uint_eq(s.raw[i], 0xa5);
    }
    s.st.size = st_v1 - 1;
    ck_assert_int_eq(subiter_pool_get_stats(p, &s.st), -EINVAL);

    memset(&e, 0xa5, sizeof e);
    e.ei.size = ei_v1;
    ck_assert_int_eq(subiter_pool_get_errinfo(p, &e.ei), 0);
    ck_assert_uint_eq(e.ei.size, ei_v1);
    for (i = ei_v1; i < sizeof e; i++) {
        ck_assert_uint_eq(e.raw[i], 0xa5);
    }
    tp_close_clean(p);

    po.size = offsetof(subiter_pool_opts, max_tasks_per_worker) - 1;
    ck_assert_int_eq(subiter_pool_open(&p, tu_gen_count, NULL, &po), -EINVAL);
    tp_assert_errmsg_has(p, "opts.size: ");
    ck_assert_int_eq(subiter_pool_close(p), 0);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_control_submit_while_sharded)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(2, &wo);
    struct tp_shared *sh;
    static struct tp_results res;
    subiter_pool *p;
    struct tp_job j = {1, JOB_PLAIN, 0, 0};
    struct tp_shard_in in = {N_ITEMS, -1, SHARD_NONE, 0, 0};
    unsigned long long a;
    int seen[N_ITEMS];

    tu_snapshot(&snap);
    sh = tp_shared_new();
    memset(&res, 0, sizeof res);
    ck_assert_int_eq(subiter_pool_open(&p, tp_gen_shard, sh, &po), 0);
    tp_start_plain(p);
    ck_assert_int_eq(subiter_pool_submit(p, &j, sizeof j, 0, NULL), -EINVAL);
    ck_assert_int_eq(
        subiter_pool_submit(p, &j, sizeof j, SUBITER_POOL_NOWAIT, NULL),
        -EINVAL);
    /* Nor a second start. */
    ck_assert_int_eq(subiter_pool_start(p, &in, sizeof in), -EINVAL);
    /* The running iteration is unharmed. */
    memset(seen, 0, sizeof seen);
    TP_EXPECT(p, tp_collect(p, 2, 0, 1, N_ITEMS, seen, NULL, NULL), 0);
    tp_assert_each_once(seen, N_ITEMS);
    tp_close_clean(p);

    /* And no start while tasks are pending. */
    ck_assert_int_eq(subiter_pool_open(&p, tp_gen_job, sh, &po), 0);
    a = tp_submit(p, 1, JOB_GATE, 0, 0);
    ck_assert_int_eq(subiter_pool_start(p, &in, sizeof in), -EINVAL);
    atomic_store(&sh->release, 1);
    ck_assert_int_eq(tp_drain(p, &res), 0);
    tp_assert_task_ok(&res, a, 1);
    tp_close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_control_calls_from_callback_busy)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(1, &wo);
    struct tp_shared *sh;
    static struct tp_results res;
    subiter_pool *p;
    unsigned long long a;
    int i;

    tu_snapshot(&snap);
    sh = tp_shared_new();
    tp_with_callbacks(&po, &res);
    res.probe = true;
    ck_assert_int_eq(subiter_pool_open(&p, tp_gen_job, sh, &po), 0);
    a = tp_submit(p, 1, JOB_PLAIN, 0, 0);
    ck_assert_int_eq(subiter_pool_wait(p, 20000), 0);
    ck_assert_int_eq(res.probed, 1);
    for (i = 0; i < 8; i++) {
        ck_assert_msg(res.rc[i] == -EBUSY, "call %d from a callback: %d", i,
                      res.rc[i]);
    }
    ck_assert_int_eq(res.stats_rc, 0);
    ck_assert_ptr_nonnull(res.errmsg);
    ck_assert_int_eq(res.t[a].last, tp_f(1));
    /* None of them took effect: no task added, not finalized. */
    ck_assert_uint_eq(tp_stats(p).submitted, 1);
    a = tp_submit(p, 2, JOB_PLAIN, 0, 0);
    ck_assert_int_eq(subiter_pool_wait(p, 20000), 0);
    ck_assert_int_eq(res.t[a].last, tp_f(2));
    tp_close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_control_init_fails)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = tp_pool_opts(3, &wo);
    subiter_pool *p = NULL;
    int r;

    tu_snapshot(&snap);
    wo.init = init_fail_shard1;
    ck_assert_int_eq(subiter_pool_open(&p, tu_gen_count, NULL, &po),
                     SUBITER_EINIT);
    ck_assert_ptr_nonnull(p);
    tp_assert_errmsg_has(p, "no device for shard 1");
    r = subiter_pool_close(p);
    ck_assert_msg(r == 0 || r == SUBITER_ECHILD || r == SUBITER_ETIMEDOUT,
                  "close: %d", r);
    tu_assert_clean(&snap);
}
END_TEST

static Suite *pool_control_suite(void)
{
    Suite *s = suite_create("pool_control");
    TCase *tc;

    tc = tcase_create("control");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_pool_control_pause_resume);
    tcase_add_test(tc, test_pool_control_paused_time_not_counted);
    tcase_add_test(tc, test_pool_control_finalize_cancels_with_callbacks);
    tcase_add_test(tc, test_pool_control_finalize_cancels_through_next);
    tcase_add_test(tc, test_pool_control_finalize_with_grace_finishes);
    tcase_add_test(tc, test_pool_control_min_max_workers);
    suite_add_tcase(s, tc);

    tc = tcase_create("misuse");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_pool_control_bad_options);
    tcase_add_test(tc, test_pool_control_null_args);
    tcase_add_test(tc, test_pool_control_submit_while_sharded);
    tcase_add_test(tc, test_pool_control_older_sizes);
    tcase_add_test(tc, test_pool_control_calls_from_callback_busy);
    tcase_add_test(tc, test_pool_control_init_fails);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(pool_control_suite());
}
