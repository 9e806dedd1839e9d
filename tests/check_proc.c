/* check_proc.c: the worker as a process: it dies (crash, exit, signal, in
 * every state, while the parent waits), it hangs (inactivity timeout,
 * close's grace period), and close ends it in every state. Parent death,
 * signals, fds and many handles are in check_proc_env.c. Every case
 * checks that no fd, mapping or child is left. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testproc.h"

#define GRACE_MS 200 /* what tu_opts() sets */
/* An inactivity timeout that must not fire while the worker starts (open
 * waits for it too), even under valgrind. */
#define TIMEOUT_MS 1000
#define TIMEOUT_TEXT "1000 ms" /* how errmsg says it */

/* ---- helpers ---- */

/* SIGKILL the worker and wait until it is a zombie, without reaping it:
 * the library must. */
static void kill_to_zombie(pid_t pid)
{
    siginfo_t si;

    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    memset(&si, 0, sizeof si);
    ck_assert_int_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* ---- generators and initializers (they run in the worker: no ck_*) ---- */

/* Ignores SIGTERM, and never yields so never sees ABORT. */
TU_EXPORT(int gen_stubborn(subiter_gen *g, void *arg))
{
    struct tproc_shared *sh = arg;

    (void)g;
    signal(SIGTERM, SIG_IGN);
    atomic_store(&sh->ready, 1);
    for (;;) {
        pause();
    }
    return 0;
}

static struct tproc_pace pace_slow = {
    50, 20}; /* one item every 20 ms for a second */

/* One item, then five silent seconds, then another. */
TU_EXPORT(int gen_sleepy(subiter_gen *g, void *arg))
{
    long i = 0;
    int r;

    (void)arg;
    if ((r = subiter_yield(g, &i, sizeof i)) != 0) {
        return r;
    }
    tu_sleep_ms(5000);
    i = 1;
    return subiter_yield(g, &i, sizeof i);
}

TU_EXPORT(int init_sigkill(subiter_gen *g, void *arg))
{
    (void)g;
    (void)arg;
    raise(SIGKILL);
    return 0;
}

TU_EXPORT(int init_hang(subiter_gen *g, void *arg))
{
    (void)g;
    (void)arg;
    for (;;) {
        pause();
    }
    return 0;
}

/* ---- the worker dies during an iteration ---- */

/* Run one normal iteration of 3 items, then one that ends as `how` after
 * `k` items (so errmsg must say "iteration 2"); returns the dead handle. */
static subiter *die_in_iteration2(int k, int how)
{
    subiter_opts o = tu_opts_grace(0, PROMPT_GRACE_MS);
    struct tproc_plan p = {3, HOW_RETURN};
    subiter *it;
    subiter_item item;
    int64_t t0;

    ck_assert_int_eq(subiter_open(&it, tproc_gen_plan, NULL, &o), 0);
    ck_assert_int_eq(subiter_start(it, &p, sizeof p), 0);
    tu_expect_items(it, 0, 3);
    ck_assert_int_eq(subiter_next(it, &item), 0);

    p.items = k;
    p.how = how;
    ck_assert_int_eq(subiter_start(it, &p, sizeof p), 0);
    tu_expect_items(it, 0, k);
    t0 = tu_now_ms();
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECHILD);
    ck_assert_int_lt(tu_now_ms() - t0, SLACK_MS);
    ck_assert_ptr_null(item.data);
    tu_assert_gone(subiter_pid(it));
    return it;
}

START_TEST(test_proc_crash_mid_iteration)
{
    struct tu_snapshot snap;
    subiter *it;
    pid_t pid;

    tu_snapshot(&snap);
    it = die_in_iteration2(5, HOW_SEGV);
    pid = subiter_pid(it);
    ck_assert_int_gt(pid, 0);
    tproc_assert_errmsg_has(it, "signal 11 (SIGSEGV)");
    tproc_assert_errmsg_has(it, "iteration 2");
    tproc_assert_errmsg_has(it, "5 item");
    tproc_assert_dead_handle(it);
    ck_assert_int_eq(subiter_pid(it), pid);
    ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_proc_crash_before_any_item)
{
    struct tu_snapshot snap;
    subiter *it;

    tu_snapshot(&snap);
    it = die_in_iteration2(0, HOW_SEGV);
    tproc_assert_errmsg_has(it, "signal 11 (SIGSEGV)");
    tproc_assert_errmsg_has(it, "0 item");
    tproc_assert_dead_handle(it);
    ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_proc_exit3_mid_iteration)
{
    struct tu_snapshot snap;
    subiter *it;

    /* exit() in the worker flushes its copy of our stdio buffers. */
    fflush(NULL);
    tu_snapshot(&snap);
    it = die_in_iteration2(4, HOW_EXIT3);
    tproc_assert_errmsg_has(it, "status 3");
    tproc_assert_errmsg_has(it, "iteration 2");
    tproc_assert_errmsg_has(it, "4 item");
    tproc_assert_dead_handle(it);
    ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_proc_exit0_mid_iteration)
{
    struct tu_snapshot snap;
    subiter *it;

    /* Status 0 without ITERATION_FINISHED is a death, not an end. */
    tu_snapshot(&snap);
    it = die_in_iteration2(2, HOW_EXIT0);
    tproc_assert_errmsg_has(it, "status 0");
    tproc_assert_errmsg_has(it, "2 item");
    tproc_assert_dead_handle(it);
    ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- the worker dies outside an iteration ---- */

START_TEST(test_proc_init_killed)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter *it;

    tu_snapshot(&snap);
    o.init = init_sigkill;
    ck_assert_int_eq(subiter_open(&it, tu_gen_count, NULL, &o), SUBITER_ECHILD);
    ck_assert_ptr_nonnull(it);
    tproc_assert_errmsg_has(it, "signal 9 (SIGKILL)");
    tproc_assert_errmsg_has(it, "initializ");
    ck_assert_int_gt(subiter_pid(it), 0);
    tu_assert_gone(subiter_pid(it));
    tproc_assert_dead_handle(it);
    ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_proc_init_exits)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter *it;

    tu_snapshot(&snap);
    o.init = tu_init_exit5;
    ck_assert_int_eq(subiter_open(&it, tu_gen_count, NULL, &o), SUBITER_ECHILD);
    ck_assert_ptr_nonnull(it);
    tproc_assert_errmsg_has(it, "status 5");
    tproc_assert_errmsg_has(it, "initializ");
    tproc_assert_dead_handle(it);
    ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);
    tu_assert_clean(&snap);
}
END_TEST

/* Killed in Stand By and already dead when start is called. */
START_TEST(test_proc_killed_in_stand_by)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter *it;
    subiter_item item;
    pid_t pid;
    int r;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, tu_gen_count, (void *)10L, &o), 0);
    pid = subiter_pid(it);
    kill_to_zombie(pid);
    r = subiter_start(it, NULL, 0);
    ck_assert_msg(r == 0 || r == SUBITER_ECHILD, "start: %d", r);
    if (r == 0) {
        ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECHILD);
    }
    tproc_assert_errmsg_has(it, "signal 9 (SIGKILL)");
    tu_assert_gone(pid);
    tproc_assert_dead_handle(it);
    ck_assert_int_eq(subiter_pid(it), pid);
    ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);
    tu_assert_clean(&snap);
}
END_TEST

/* Started, killed (wherever it is), then next. */
START_TEST(test_proc_killed_after_start)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter *it;
    subiter_item item;
    pid_t pid;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, tproc_gen_pause, NULL, &o), 0);
    pid = subiter_pid(it);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    kill_to_zombie(pid);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECHILD);
    tproc_assert_errmsg_has(it, "signal 9 (SIGKILL)");
    tu_assert_gone(pid);
    tproc_assert_dead_handle(it);
    ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- the worker is killed while the parent waits ---- */

struct killer {
    pid_t pid;
    int delay_ms;
    int64_t killed_at_us;
};

static void *killer_main(void *arg)
{
    struct killer *k = arg;

    tu_sleep_ms(k->delay_ms);
    k->killed_at_us = tproc_now_us();
    (void)kill(k->pid, SIGKILL);
    return NULL;
}

#define KILL_REPS 20

START_TEST(test_proc_killed_while_parent_waits)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter *it;
    subiter_item item;
    struct killer k;
    pthread_t th;
    int64_t delay[KILL_REPS], returned_at;
    int rep, r;

    tu_snapshot(&snap);
    for (rep = 0; rep < KILL_REPS; rep++) {
        ck_assert_int_eq(subiter_open(&it, tproc_gen_pause, NULL, &o), 0);
        ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
        k.pid = subiter_pid(it);
        k.delay_ms = 100;
        k.killed_at_us = 0;
        ck_assert_int_eq(pthread_create(&th, NULL, killer_main, &k), 0);
        r = subiter_next(it, &item);
        returned_at = tproc_now_us();
        ck_assert_int_eq(pthread_join(th, NULL), 0);
        ck_assert_int_eq(r, SUBITER_ECHILD);
        tproc_assert_errmsg_has(it, "signal 9 (SIGKILL)");
        tu_assert_gone(k.pid);
        delay[rep] = returned_at - k.killed_at_us;
        ck_assert_int_ge(delay[rep], 0);
        ck_assert_int_lt(delay[rep], (int64_t)SLACK_MS * 1000);
        ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);
    }
    qsort(delay, KILL_REPS, sizeof delay[0], cmp_i64);
    fprintf(stderr,
            "proc: kill() -> subiter_next() returns ECHILD over %d runs: "
            "min %lld us, median %lld us, max %lld us\n",
            KILL_REPS, (long long)delay[0],
            (long long)((delay[KILL_REPS / 2 - 1] + delay[KILL_REPS / 2]) / 2),
            (long long)delay[KILL_REPS - 1]);
    tu_assert_clean(&snap);
}
END_TEST

/* Blocked on a full ring when killed: the buffered item comes first. */
START_TEST(test_proc_killed_on_full_ring)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(0, PROMPT_GRACE_MS);
    struct tproc_shared *sh;
    subiter *it;
    subiter_item item;
    pid_t pid;

    tu_snapshot(&snap);
    sh = tu_shared_new(sizeof *sh);
    o.buffer_items = 1;
    ck_assert_int_eq(subiter_open(&it, tproc_gen_forever, sh, &o), 0);
    pid = subiter_pid(it);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert(tu_wait_flag(&sh->count, 1, WAIT_MS));
    tu_sleep_ms(50); /* let it go to sleep waiting for room */
    ck_assert_int_eq(atomic_load(&sh->count), 1);
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    ck_assert_int_eq(subiter_next(it, &item), 1);
    ck_assert_int_eq(tu_item_long(&item), 0);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECHILD);
    tproc_assert_errmsg_has(it, "signal 9 (SIGKILL)");
    tproc_assert_errmsg_has(it, "1 item");
    tu_assert_gone(pid);
    tproc_assert_dead_handle(it);
    ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);
    tu_shared_free(sh, sizeof *sh);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- inactivity timeout ---- */

START_TEST(test_proc_timeout_in_next)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(TIMEOUT_MS, PROMPT_GRACE_MS);
    subiter *it;
    subiter_item item;
    int64_t t0, dt;
    pid_t pid;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, tproc_gen_pause, NULL, &o), 0);
    pid = subiter_pid(it);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    t0 = tu_now_ms();
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ETIMEDOUT);
    dt = tu_now_ms() - t0;
    /* Killed and reaped before next returned. */
    tu_assert_gone(pid);
    ck_assert_int_ge(dt, TIMEOUT_MS);
    ck_assert_int_lt(dt, TIMEOUT_MS + SLACK_MS);
    tproc_assert_errmsg_has(it, TIMEOUT_TEXT);
    tproc_assert_errmsg_has(it, "iteration");
    tproc_assert_dead_handle(it);
    ck_assert_int_eq(subiter_pid(it), pid);
    ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_proc_timeout_in_init)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts(300);
    subiter *it;
    int64_t t0, dt;

    tu_snapshot(&snap);
    o.init = init_hang;
    t0 = tu_now_ms();
    ck_assert_int_eq(subiter_open(&it, tu_gen_count, NULL, &o),
                     SUBITER_ETIMEDOUT);
    dt = tu_now_ms() - t0;
    ck_assert_ptr_nonnull(it);
    tu_assert_gone(subiter_pid(it));
    ck_assert_int_ge(dt, 300);
    ck_assert_int_lt(dt, 300 + SLACK_MS);
    tproc_assert_errmsg_has(it, "300 ms");
    tproc_assert_errmsg_has(it, "initializ");
    tproc_assert_dead_handle(it);
    ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);
    tu_assert_clean(&snap);
}
END_TEST

/* The timeout bounds each wait, not the iteration. */
START_TEST(test_proc_slow_items_no_timeout)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(200, PROMPT_GRACE_MS);
    subiter *it;
    subiter_item item;

    tu_snapshot(&snap);
    o.arg_len =
        sizeof pace_slow; /* a copy: SPAWN maps no static where ours is */
    ck_assert_int_eq(subiter_open(&it, tproc_gen_paced, &pace_slow, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    tu_expect_items(it, 0, 50);
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

/* A stop that the generator does not see in time times out. */
START_TEST(test_proc_stop_timeout)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(TIMEOUT_MS, PROMPT_GRACE_MS);
    subiter *it;
    subiter_item item;
    int64_t t0, dt;
    pid_t pid;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, gen_sleepy, NULL, &o), 0);
    pid = subiter_pid(it);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_int_eq(subiter_next(it, &item), 1);
    t0 = tu_now_ms();
    ck_assert_int_eq(subiter_stop(it), SUBITER_ETIMEDOUT);
    dt = tu_now_ms() - t0;
    tu_assert_gone(pid);
    ck_assert_int_lt(dt, TIMEOUT_MS + SLACK_MS);
    tproc_assert_errmsg_has(it, TIMEOUT_TEXT);
    tproc_assert_dead_handle(it);
    ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- close ---- */

START_TEST(test_proc_close_full_ring)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(0, PROMPT_GRACE_MS);
    struct tproc_shared *sh;
    subiter *it;
    pid_t pid;
    int64_t t0;

    tu_snapshot(&snap);
    sh = tu_shared_new(sizeof *sh);
    o.buffer_items = 1;
    ck_assert_int_eq(subiter_open(&it, tproc_gen_forever, sh, &o), 0);
    pid = subiter_pid(it);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert(tu_wait_flag(&sh->count, 1, WAIT_MS));
    tu_sleep_ms(50);
    t0 = tu_now_ms();
    /* 0: it exited with status 0 on ABORT, not on a signal. */
    ck_assert_int_eq(subiter_close(it), 0);
    ck_assert_int_lt(tu_now_ms() - t0, SLACK_MS);
    tu_assert_gone(pid);
    tu_shared_free(sh, sizeof *sh);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_proc_close_stubborn)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts(0);
    struct tproc_shared *sh;
    subiter *it;
    pid_t pid;
    int64_t t0;

    tu_snapshot(&snap);
    sh = tu_shared_new(sizeof *sh);
    ck_assert_int_eq(subiter_open(&it, gen_stubborn, sh, &o), 0);
    pid = subiter_pid(it);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert(tu_wait_flag(&sh->ready, 1, WAIT_MS));
    t0 = tu_now_ms();
    ck_assert_int_eq(subiter_close(it), SUBITER_ETIMEDOUT);
    ck_assert_int_lt(tu_now_ms() - t0, 2 * GRACE_MS + SLACK_MS);
    tu_assert_gone(pid);
    tu_shared_free(sh, sizeof *sh);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_proc_close_stopped)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts(0);
    subiter *it;
    siginfo_t si;
    pid_t pid;
    int64_t t0;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, tu_gen_count, NULL, &o), 0);
    pid = subiter_pid(it);
    ck_assert_int_eq(kill(pid, SIGSTOP), 0);
    memset(&si, 0, sizeof si);
    ck_assert_int_eq(waitid(P_PID, (id_t)pid, &si, WSTOPPED | WNOWAIT), 0);
    ck_assert_int_eq(si.si_code, CLD_STOPPED);
    t0 = tu_now_ms();
    ck_assert_int_eq(subiter_close(it), SUBITER_ETIMEDOUT);
    ck_assert_int_lt(tu_now_ms() - t0, 2 * GRACE_MS + SLACK_MS);
    tu_assert_gone(pid);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_proc_close_ready)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter *it;
    subiter_item item;
    pid_t pid;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, tu_gen_count, (void *)3L, &o), 0);
    pid = subiter_pid(it);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    while (subiter_next(it, &item) == 1) {
    }
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_gone(pid);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_proc_close_right_after_open)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter *it;
    pid_t pid;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, tu_gen_count, NULL, &o), 0);
    pid = subiter_pid(it);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_gone(pid);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_proc_close_right_after_start)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter *it;
    pid_t pid;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, tu_gen_count, (void *)1000L, &o), 0);
    pid = subiter_pid(it);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_gone(pid);
    tu_assert_clean(&snap);
}
END_TEST

/* Items pending in the ring, one held by the caller. */
START_TEST(test_proc_close_items_pending)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter *it;
    subiter_item item;
    long n;

    tu_snapshot(&snap);
    /* 5: all published and FINISHED waiting; 100: blocked on the ring. */
    for (n = 5; n <= 100; n += 95) {
        ck_assert_int_eq(subiter_open(&it, tu_gen_count, (void *)n, &o), 0);
        ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
        ck_assert_int_eq(subiter_next(it, &item), 1);
        ck_assert_int_eq(subiter_next(it, &item), 1);
        ck_assert_int_eq(tu_item_long(&item), 1);
        tu_sleep_ms(20);
        ck_assert_int_eq(subiter_close(it), 0);
    }
    tu_assert_clean(&snap);
}
END_TEST

static Suite *proc_suite(void)
{
    Suite *s = suite_create("proc");
    TCase *death = tcase_create("death");
    TCase *timeout = tcase_create("timeout");
    TCase *close_ = tcase_create("close");

    tcase_set_timeout(death, 30);
    tcase_add_test(death, test_proc_crash_mid_iteration);
    tcase_add_test(death, test_proc_crash_before_any_item);
    tcase_add_test(death, test_proc_exit3_mid_iteration);
    tcase_add_test(death, test_proc_exit0_mid_iteration);
    tcase_add_test(death, test_proc_init_killed);
    tcase_add_test(death, test_proc_init_exits);
    tcase_add_test(death, test_proc_killed_in_stand_by);
    tcase_add_test(death, test_proc_killed_after_start);
    tcase_add_test(death, test_proc_killed_while_parent_waits);
    tcase_add_test(death, test_proc_killed_on_full_ring);
    suite_add_tcase(s, death);

    tcase_set_timeout(timeout, 30);
    tcase_add_test(timeout, test_proc_timeout_in_next);
    tcase_add_test(timeout, test_proc_timeout_in_init);
    tcase_add_test(timeout, test_proc_slow_items_no_timeout);
    tcase_add_test(timeout, test_proc_stop_timeout);
    suite_add_tcase(s, timeout);

    tcase_set_timeout(close_, 30);
    tcase_add_test(close_, test_proc_close_full_ring);
    tcase_add_test(close_, test_proc_close_stubborn);
    tcase_add_test(close_, test_proc_close_stopped);
    tcase_add_test(close_, test_proc_close_ready);
    tcase_add_test(close_, test_proc_close_right_after_open);
    tcase_add_test(close_, test_proc_close_right_after_start);
    tcase_add_test(close_, test_proc_close_items_pending);
    suite_add_tcase(s, close_);
    return s;
}

int main(void)
{
    return tu_run(proc_suite());
}
