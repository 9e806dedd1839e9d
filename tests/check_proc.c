/* check_proc.c: the worker as a process: it dies (crash, exit, signal, in
 * every state), it hangs (inactivity timeout, close's grace period), it
 * outlives nothing (parent death), and many handles and threads share the
 * machinery. Every case checks that no fd, mapping or child is left. */
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

#include "testutil.h"

#define GRACE_MS 200 /* what tu_opts() sets */
/* Grace for cases where the worker must exit at once on ABORT: close then
 * returns as soon as it has, and the grace only decides when a slow exit
 * (valgrind, a loaded machine) would count as a hang. Cases that need the
 * grace to run out (a worker that ignores ABORT) use tu_opts() itself. */
#define PROMPT_GRACE_MS 3000
#define SLACK_MS 2000
/* An inactivity timeout that must not fire while the worker starts (open
 * waits for it too), even under valgrind. */
#define TIMEOUT_MS 1000
#define TIMEOUT_TEXT "1000 ms" /* how errmsg says it */
#define WAIT_MS 5000 /* bound on waits for a worker to reach a point */

/* A page the worker and the test both see. */
struct shared {
    _Atomic int ready; /* the worker reached the point the test waits for */
    _Atomic int count; /* items the worker yielded */
    _Atomic int pid;   /* a worker's pid, written by a middle process */
};

/* What gen_plan() does after yielding `items` items. */
enum how { HOW_RETURN, HOW_SEGV, HOW_EXIT3, HOW_EXIT0 };

struct plan {
    int items;
    int how;
};

/* ---- helpers ---- */

static int64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void assert_errmsg_has(const subiter *it, const char *what)
{
    const char *m = subiter_errmsg(it);

    ck_assert_msg(strstr(m, what) != NULL, "errmsg \"%s\" lacks \"%s\"", m,
                  what);
}

/* The pid is gone: the library killed and reaped it. */
static void assert_gone(pid_t pid)
{
    int r = kill(pid, 0), e = errno;

    ck_assert_msg(r == -1 && e == ESRCH, "worker %d is still there", (int)pid);
}

/* SIGKILL the worker and wait until it is a zombie, without reaping it:
 * the library must. */
static void kill_to_zombie(pid_t pid)
{
    siginfo_t si;

    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    memset(&si, 0, sizeof si);
    ck_assert_int_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
}

static void assert_dead_handle(subiter *it)
{
    subiter_item item;

    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECLOSED);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECLOSED);
    ck_assert_int_eq(subiter_start(it, NULL, 0), SUBITER_ECLOSED);
    ck_assert_int_eq(subiter_stop(it), SUBITER_ECLOSED);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* ---- generators and initializers (they run in the worker: no ck_*) ---- */

/* Follows the struct plan given as input. */
static int gen_plan(subiter_gen *g, void *arg)
{
    struct plan p = {0, HOW_RETURN};
    size_t len;
    const void *in = subiter_input(g, &len);
    int r;

    (void)arg;
    if (in == NULL || len != sizeof p) {
        return subiter_fail(g, "no plan");
    }
    memcpy(&p, in, sizeof p);
    if ((r = tu_yield_count(g, p.items)) != 0) {
        return r;
    }
    switch (p.how) {
    case HOW_SEGV:
        raise(SIGSEGV);
        break;
    case HOW_EXIT3:
        exit(3);
    case HOW_EXIT0:
        _exit(0);
    default:
        break;
    }
    return 0;
}

/* Says it is running (arg: struct shared *, may be NULL), then sleeps
 * until a signal kills it. */
static int gen_pause(subiter_gen *g, void *arg)
{
    struct shared *sh = arg;

    (void)g;
    if (sh != NULL) {
        atomic_store(&sh->ready, 1);
    }
    for (;;) {
        pause();
    }
    return 0;
}

/* Yields 0, 1, 2, ... forever, counting in arg (struct shared *). */
static int gen_forever(subiter_gen *g, void *arg)
{
    struct shared *sh = arg;
    long i;
    int r;

    for (i = 0;; i++) {
        if ((r = subiter_yield(g, &i, sizeof i)) != 0) {
            return r;
        }
        if (sh != NULL) {
            atomic_store(&sh->count, (int)(i + 1));
        }
    }
}

/* Ignores SIGTERM, and never yields so never sees ABORT. */
static int gen_stubborn(subiter_gen *g, void *arg)
{
    struct shared *sh = arg;

    (void)g;
    signal(SIGTERM, SIG_IGN);
    atomic_store(&sh->ready, 1);
    for (;;) {
        pause();
    }
    return 0;
}

/* gen_paced()'s arg: n items, each after gap_ms of sleep. */
struct pace {
    long n;
    int gap_ms;
};

static struct pace pace_slow = {50, 20}; /* one item every 20 ms for a second */

/* Yields 0 .. n-1, sleeping gap_ms before each (arg: struct pace *). */
static int gen_paced(subiter_gen *g, void *arg)
{
    const struct pace *p = arg;
    long i;
    int r;

    for (i = 0; i < p->n; i++) {
        tu_sleep_ms(p->gap_ms);
        if ((r = subiter_yield(g, &i, sizeof i)) != 0) {
            return r;
        }
    }
    return 0;
}

/* One item, then five silent seconds, then another. */
static int gen_sleepy(subiter_gen *g, void *arg)
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

/* Yields base + i for i < 50, base = 1000 * arg. */
static int gen_based(subiter_gen *g, void *arg)
{
    long base = 1000 * (long)(intptr_t)arg, i, v;
    int r;

    for (i = 0; i < 50; i++) {
        v = base + i;
        if ((r = subiter_yield(g, &v, sizeof v)) != 0) {
            return r;
        }
    }
    return 0;
}

/* Sleeps 300 ms (so a foreign child exits meanwhile), yields 2, crashes. */
static int gen_late_crash(subiter_gen *g, void *arg)
{
    int r;

    (void)arg;
    tu_sleep_ms(300);
    if ((r = tu_yield_count(g, 2)) != 0) {
        return r;
    }
    raise(SIGSEGV);
    return 0;
}

static int init_sigkill(subiter_gen *g, void *arg)
{
    (void)g;
    (void)arg;
    raise(SIGKILL);
    return 0;
}

static int init_hang(subiter_gen *g, void *arg)
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
    struct plan p = {3, HOW_RETURN};
    subiter *it;
    subiter_item item;
    int64_t t0;

    ck_assert_int_eq(subiter_open(&it, gen_plan, NULL, &o), 0);
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
    assert_gone(subiter_pid(it));
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
    assert_errmsg_has(it, "signal 11 (SIGSEGV)");
    assert_errmsg_has(it, "iteration 2");
    assert_errmsg_has(it, "5 item");
    assert_dead_handle(it);
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
    assert_errmsg_has(it, "signal 11 (SIGSEGV)");
    assert_errmsg_has(it, "0 item");
    assert_dead_handle(it);
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
    assert_errmsg_has(it, "status 3");
    assert_errmsg_has(it, "iteration 2");
    assert_errmsg_has(it, "4 item");
    assert_dead_handle(it);
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
    assert_errmsg_has(it, "status 0");
    assert_errmsg_has(it, "2 item");
    assert_dead_handle(it);
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
    assert_errmsg_has(it, "signal 9 (SIGKILL)");
    assert_errmsg_has(it, "initializ");
    ck_assert_int_gt(subiter_pid(it), 0);
    assert_gone(subiter_pid(it));
    assert_dead_handle(it);
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
    assert_errmsg_has(it, "status 5");
    assert_errmsg_has(it, "initializ");
    assert_dead_handle(it);
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
    assert_errmsg_has(it, "signal 9 (SIGKILL)");
    assert_gone(pid);
    assert_dead_handle(it);
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
    ck_assert_int_eq(subiter_open(&it, gen_pause, NULL, &o), 0);
    pid = subiter_pid(it);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    kill_to_zombie(pid);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECHILD);
    assert_errmsg_has(it, "signal 9 (SIGKILL)");
    assert_gone(pid);
    assert_dead_handle(it);
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
    k->killed_at_us = now_us();
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
        ck_assert_int_eq(subiter_open(&it, gen_pause, NULL, &o), 0);
        ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
        k.pid = subiter_pid(it);
        k.delay_ms = 100;
        k.killed_at_us = 0;
        ck_assert_int_eq(pthread_create(&th, NULL, killer_main, &k), 0);
        r = subiter_next(it, &item);
        returned_at = now_us();
        ck_assert_int_eq(pthread_join(th, NULL), 0);
        ck_assert_int_eq(r, SUBITER_ECHILD);
        assert_errmsg_has(it, "signal 9 (SIGKILL)");
        assert_gone(k.pid);
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
    struct shared *sh;
    subiter *it;
    subiter_item item;
    pid_t pid;

    tu_snapshot(&snap);
    sh = tu_shared_new(sizeof *sh);
    o.buffer_items = 1;
    ck_assert_int_eq(subiter_open(&it, gen_forever, sh, &o), 0);
    pid = subiter_pid(it);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert(tu_wait_flag(&sh->count, 1, WAIT_MS));
    tu_sleep_ms(50); /* let it go to sleep waiting for room */
    ck_assert_int_eq(atomic_load(&sh->count), 1);
    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    ck_assert_int_eq(subiter_next(it, &item), 1);
    ck_assert_int_eq(tu_item_long(&item), 0);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECHILD);
    assert_errmsg_has(it, "signal 9 (SIGKILL)");
    assert_errmsg_has(it, "1 item");
    assert_gone(pid);
    assert_dead_handle(it);
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
    ck_assert_int_eq(subiter_open(&it, gen_pause, NULL, &o), 0);
    pid = subiter_pid(it);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    t0 = tu_now_ms();
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ETIMEDOUT);
    dt = tu_now_ms() - t0;
    /* Killed and reaped before next returned. */
    assert_gone(pid);
    ck_assert_int_ge(dt, TIMEOUT_MS);
    ck_assert_int_lt(dt, TIMEOUT_MS + SLACK_MS);
    assert_errmsg_has(it, TIMEOUT_TEXT);
    assert_errmsg_has(it, "iteration");
    assert_dead_handle(it);
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
    assert_gone(subiter_pid(it));
    ck_assert_int_ge(dt, 300);
    ck_assert_int_lt(dt, 300 + SLACK_MS);
    assert_errmsg_has(it, "300 ms");
    assert_errmsg_has(it, "initializ");
    assert_dead_handle(it);
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
    ck_assert_int_eq(subiter_open(&it, gen_paced, &pace_slow, &o), 0);
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
    assert_gone(pid);
    ck_assert_int_lt(dt, TIMEOUT_MS + SLACK_MS);
    assert_errmsg_has(it, TIMEOUT_TEXT);
    assert_dead_handle(it);
    ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- close ---- */

START_TEST(test_proc_close_full_ring)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(0, PROMPT_GRACE_MS);
    struct shared *sh;
    subiter *it;
    pid_t pid;
    int64_t t0;

    tu_snapshot(&snap);
    sh = tu_shared_new(sizeof *sh);
    o.buffer_items = 1;
    ck_assert_int_eq(subiter_open(&it, gen_forever, sh, &o), 0);
    pid = subiter_pid(it);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert(tu_wait_flag(&sh->count, 1, WAIT_MS));
    tu_sleep_ms(50);
    t0 = tu_now_ms();
    /* 0: it exited with status 0 on ABORT, not on a signal. */
    ck_assert_int_eq(subiter_close(it), 0);
    ck_assert_int_lt(tu_now_ms() - t0, SLACK_MS);
    assert_gone(pid);
    tu_shared_free(sh, sizeof *sh);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_proc_close_stubborn)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts(0);
    struct shared *sh;
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
    assert_gone(pid);
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
    assert_gone(pid);
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
    assert_gone(pid);
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
    assert_gone(pid);
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
    assert_gone(pid);
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

/* ---- many handles, threads ---- */

#define NHANDLES 16

START_TEST(test_proc_many_handles)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter *its[NHANDLES];
    subiter_item item;
    long h, i;

    tu_snapshot(&snap);
    o.buffer_bytes = 16 * 1024;
    for (h = 0; h < NHANDLES; h++) {
        ck_assert_int_eq(subiter_open(&its[h], gen_based, (void *)h, &o), 0);
    }
    for (h = 0; h < NHANDLES; h++) {
        ck_assert_int_eq(subiter_start(its[h], NULL, 0), 0);
    }
    for (i = 0; i < 50; i++) {
        for (h = 0; h < NHANDLES; h++) {
            ck_assert_int_eq(subiter_next(its[h], &item), 1);
            ck_assert_int_eq(tu_item_long(&item), 1000 * h + i);
        }
    }
    for (h = 0; h < NHANDLES; h++) {
        ck_assert_int_eq(subiter_next(its[h], &item), 0);
    }
    for (h = 0; h < NHANDLES; h++) {
        ck_assert_int_eq(subiter_close(its[h]), 0);
    }
    tu_assert_clean(&snap);
}
END_TEST

#define NTHREADS 2
#define THREAD_ITERS 5

struct thread_result {
    int id;
    int open_rc;
    int close_rc;
    int bad;                  /* wrong returns or values seen */
    long count[THREAD_ITERS]; /* items per iteration */
    char msg[256];
};

static void *thread_main(void *arg)
{
    struct thread_result *t = arg;
    subiter_opts o = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter *it;
    subiter_item item;
    long n, got, v;
    int k, r;

    o.buffer_bytes = 16 * 1024;
    t->open_rc = subiter_open(&it, tu_gen_count, NULL, &o);
    if (t->open_rc != 0) {
        snprintf(t->msg, sizeof t->msg, "open: %s", subiter_errmsg(it));
        t->close_rc = subiter_close(it);
        return NULL;
    }
    for (k = 0; k < THREAD_ITERS; k++) {
        n = 200 + 10 * t->id + k;
        if (subiter_start(it, &n, sizeof n) != 0) {
            t->bad++;
            continue;
        }
        got = 0;
        while ((r = subiter_next(it, &item)) == 1) {
            if (item.len != sizeof v) {
                t->bad++;
                continue;
            }
            memcpy(&v, item.data, sizeof v);
            if (v != got) {
                t->bad++;
            }
            got++;
        }
        if (r != 0) {
            t->bad++;
            snprintf(t->msg, sizeof t->msg, "next: %d %s", r,
                     subiter_errmsg(it));
        }
        t->count[k] = got;
    }
    t->close_rc = subiter_close(it);
    return NULL;
}

START_TEST(test_proc_threads)
{
    struct tu_snapshot snap;
    struct thread_result res[NTHREADS];
    pthread_t th[NTHREADS];
    int i, k;

    tu_snapshot(&snap);
    memset(res, 0, sizeof res);
    for (i = 0; i < NTHREADS; i++) {
        res[i].id = i;
        ck_assert_int_eq(pthread_create(&th[i], NULL, thread_main, &res[i]), 0);
    }
    for (i = 0; i < NTHREADS; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    }
    for (i = 0; i < NTHREADS; i++) {
        ck_assert_msg(res[i].open_rc == 0, "thread %d: %s", i, res[i].msg);
        ck_assert_msg(res[i].bad == 0, "thread %d: %d bad (%s)", i, res[i].bad,
                      res[i].msg);
        for (k = 0; k < THREAD_ITERS; k++) {
            ck_assert_int_eq(res[i].count[k], 200 + 10 * i + k);
        }
        ck_assert_int_eq(res[i].close_rc, 0);
    }
    tu_assert_clean(&snap);
}
END_TEST

/* ---- the worker never outlives its parent ---- */

enum pd_mode { PD_STAND_BY, PD_ITERATING, PD_FULL_RING };

static const char *const pd_names[] = {"in Stand By", "blocked in a generator",
                                       "blocked on a full ring"};

/* The middle process: opens a worker, publishes its pid, waits to die. */
static _Noreturn void middle_main(struct shared *sh, int mode)
{
    subiter_opts o = tu_opts(0);
    subiter *it;
    subiter_iter_fn fn = mode == PD_FULL_RING ? gen_forever : gen_pause;

    o.buffer_items = 1;
    if (subiter_open(&it, fn, sh, &o) != 0) {
        _exit(10);
    }
    atomic_store(&sh->pid, (int)subiter_pid(it));
    if (mode != PD_STAND_BY) {
        if (subiter_start(it, NULL, 0) != 0) {
            _exit(11);
        }
        if (!tu_wait_flag(mode == PD_FULL_RING ? &sh->count : &sh->ready, 1,
                          WAIT_MS)) {
            _exit(12);
        }
        tu_sleep_ms(20);
    }
    atomic_store(&sh->ready, 2);
    for (;;) {
        pause();
    }
}

static void check_parent_death(int mode)
{
    struct tu_snapshot snap;
    struct shared *sh;
    struct pollfd pfd;
    pid_t middle, worker;
    int64_t t0, dt;
    int status, n;
    pid_t r;
    long fd;

    tu_snapshot(&snap);
    sh = tu_shared_new(sizeof *sh);
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    fflush(NULL);
    middle = fork();
    ck_assert_int_ge(middle, 0);
    if (middle == 0) {
        middle_main(sh, mode);
    }
    ck_assert_msg(tu_wait_flag(&sh->ready, 2, WAIT_MS),
                  "the middle process never got "
                  "ready");
    worker = (pid_t)atomic_load(&sh->pid);
    ck_assert_int_gt(worker, 0);
    /* Without a pidfd (valgrind), poll waitpid() instead. */
    fd = syscall(SYS_pidfd_open, worker, 0);

    t0 = now_us();
    ck_assert_int_eq(kill(middle, SIGKILL), 0);
    /* Once the middle is reaped, the worker is re-parented to us (the
     * subreaper), so waitpid() may reap it. */
    ck_assert_int_eq(waitpid(middle, &status, 0), middle);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    if (fd >= 0) {
        pfd.fd = (int)fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        do {
            n = poll(&pfd, 1, SLACK_MS);
        } while (n < 0 && errno == EINTR);
        dt = now_us() - t0;
        close((int)fd);
        r = n == 1 ? waitpid(worker, &status, 0) : 0;
    } else {
        while ((r = waitpid(worker, &status, WNOHANG)) == 0 &&
               now_us() - t0 < (int64_t)SLACK_MS * 1000) {
            tu_sleep_ms(1);
        }
        dt = now_us() - t0;
    }
    if (r == 0) {
        /* It outlived its parent: clean up, then fail. */
        (void)kill(worker, SIGKILL);
        (void)waitpid(worker, NULL, 0);
        ck_abort_msg("worker %s outlived its parent by %d ms", pd_names[mode],
                     SLACK_MS);
    }
    ck_assert_int_eq(r, worker);
    ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  "worker status 0x%x", (unsigned)status);
    fprintf(stderr, "proc: parent killed -> worker %s dead after %lld us\n",
            pd_names[mode], (long long)dt);
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
    tu_shared_free(sh, sizeof *sh);
    tu_assert_clean(&snap);
}

START_TEST(test_proc_parent_death_stand_by)
{
    check_parent_death(PD_STAND_BY);
}
END_TEST

START_TEST(test_proc_parent_death_iterating)
{
    check_parent_death(PD_ITERATING);
}
END_TEST

START_TEST(test_proc_parent_death_full_ring)
{
    check_parent_death(PD_FULL_RING);
}
END_TEST

/* ---- the application's own children and SIGCHLD ---- */

START_TEST(test_proc_sigchld_ignored)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(0, PROMPT_GRACE_MS);
    struct plan p = {3, HOW_SEGV};
    subiter *it;
    subiter_item item;
    long i;
    int64_t t0;
    int r;

    tu_snapshot(&snap);
    ck_assert(signal(SIGCHLD, SIG_IGN) != SIG_ERR);
    ck_assert_int_eq(subiter_open(&it, gen_plan, NULL, &o), 0);
    ck_assert_int_eq(subiter_start(it, &p, sizeof p), 0);
    tu_expect_items(it, 0, 3);
    t0 = tu_now_ms();
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECHILD);
    ck_assert_int_lt(tu_now_ms() - t0, SLACK_MS);
    assert_errmsg_has(it, "unavailable");
    assert_dead_handle(it);
    ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);

    /* A clean close works too. */
    ck_assert_int_eq(subiter_open(&it, tu_gen_count, (void *)3L, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(subiter_next(it, &item), 1);
    }
    ck_assert_int_eq(subiter_next(it, &item), 0);
    /* Exited on ABORT, but with its status lost it cannot say 0. */
    r = subiter_close(it);
    ck_assert_msg(r == 0 || r == SUBITER_ECHILD, "close: %d", r);
    ck_assert(signal(SIGCHLD, SIG_DFL) != SIG_ERR);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_proc_foreign_child_untouched)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter *it;
    subiter_item item;
    pid_t mine;
    int status;

    tu_snapshot(&snap);
    fflush(NULL);
    mine = fork();
    ck_assert_int_ge(mine, 0);
    if (mine == 0) {
        tu_sleep_ms(200);
        _exit(7);
    }
    /* It exits while we wait in next(); then the worker crashes. */
    ck_assert_int_eq(subiter_open(&it, gen_late_crash, NULL, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_int_eq(subiter_next(it, &item), 1);
    ck_assert_int_eq(subiter_next(it, &item), 1);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECHILD);
    assert_errmsg_has(it, "SIGSEGV");
    ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);
    /* And a clean one. */
    ck_assert_int_eq(subiter_open(&it, tu_gen_count, (void *)2L, &o), 0);
    ck_assert_int_eq(subiter_close(it), 0);

    ck_assert_int_eq(waitpid(mine, &status, 0), mine);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 7);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- fds and /dev/shm ---- */

#define MAX_FD 1024

/* Marks the open fds below MAX_FD; fails on one that points at /dev/shm. */
static void list_fds(bool open_fds[MAX_FD])
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    char path[64], target[256];
    ssize_t n;
    int fd;

    ck_assert_ptr_nonnull(d);
    memset(open_fds, 0, MAX_FD * sizeof open_fds[0]);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        fd = atoi(e->d_name);
        if (fd == dirfd(d) || fd < 0 || fd >= MAX_FD) {
            continue;
        }
        open_fds[fd] = true;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        n = readlink(path, target, sizeof target - 1);
        if (n > 0) {
            target[n] = '\0';
            ck_assert_msg(strncmp(target, "/dev/shm/", 9) != 0, "fd %d is %s",
                          fd, target);
        }
    }
    closedir(d);
}

static unsigned fd_flags(int fd)
{
    char path[64], line[128];
    unsigned flags = 0;
    bool found = false;
    FILE *f;

    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof line, f) != NULL) {
        if (sscanf(line, "flags: %o", &flags) == 1) {
            found = true;
            break;
        }
    }
    fclose(f);
    ck_assert(found);
    return flags;
}

/* Every fd opened since `before` is CLOEXEC; returns how many there are. */
static int check_new_fds(const bool before[MAX_FD])
{
    bool now[MAX_FD];
    int fd, n = 0;

    list_fds(now);
    for (fd = 0; fd < MAX_FD; fd++) {
        if (now[fd] && !before[fd]) {
            n++;
            ck_assert_msg((fd_flags(fd) & 02000000) != 0,
                          "fd %d is not O_CLOEXEC", fd);
        }
    }
    return n;
}

/* /dev/shm's entries, NUL-separated; the caller frees. */
static char *list_dev_shm(size_t *len)
{
    DIR *d = opendir("/dev/shm");
    struct dirent *e;
    char *buf = NULL;
    size_t n = 0, k;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        k = strlen(e->d_name) + 1;
        buf = realloc(buf, n + k);
        ck_assert_ptr_nonnull(buf);
        memcpy(buf + n, e->d_name, k);
        n += k;
    }
    closedir(d);
    *len = n;
    return buf;
}

/* Fails on an entry of `now` that is not in `before`. */
static void assert_no_new_shm(const char *before, size_t blen)
{
    size_t nlen, i, j;
    char *now = list_dev_shm(&nlen);
    bool found;

    for (i = 0; i < nlen; i += strlen(now + i) + 1) {
        found = false;
        for (j = 0; j < blen; j += strlen(before + j) + 1) {
            if (strcmp(now + i, before + j) == 0) {
                found = true;
                break;
            }
        }
        ck_assert_msg(found, "new entry in /dev/shm: %s", now + i);
    }
    free(now);
}

static void assert_no_shm_mapping(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];

    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof line, f) != NULL) {
        ck_assert_msg(strstr(line, "/dev/shm/") == NULL, "mapping: %s", line);
    }
    fclose(f);
}

START_TEST(test_proc_fds_cloexec_no_shm)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(0, PROMPT_GRACE_MS);
    bool before[MAX_FD];
    subiter *it;
    subiter_item item;
    char *shm;
    size_t shm_len;
    long i;

    tu_snapshot(&snap);
    list_fds(before);
    shm = list_dev_shm(&shm_len);
    ck_assert_int_eq(subiter_open(&it, tu_gen_count, (void *)10L, &o), 0);
    ck_assert_int_ge(check_new_fds(before), 1);
    assert_no_new_shm(shm, shm_len);
    assert_no_shm_mapping();
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    for (i = 0; i < 5; i++) {
        ck_assert_int_eq(subiter_next(it, &item), 1);
    }
    ck_assert_int_ge(check_new_fds(before), 1);
    assert_no_new_shm(shm, shm_len);
    assert_no_shm_mapping();
    ck_assert_int_eq(subiter_close(it), 0);
    ck_assert_int_eq(check_new_fds(before), 0);
    assert_no_new_shm(shm, shm_len);
    free(shm);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- signals: EINTR everywhere, and no handler of our own ---- */

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

/* Items that come slowly, so the parent sleeps in poll() between them. */
static struct pace pace_trickle = {40, 2};

/*
 * A SIGALRM every millisecond, with a handler installed without
 * SA_RESTART: every wait of the library is interrupted again and again,
 * and must simply go on (open, next, stop, close).
 */
START_TEST(test_proc_eintr_storm)
{
    struct tu_snapshot snap;
    struct sigaction sa, old;
    struct itimerval tv = {{0, 1000}, {0, 1000}}, off = {{0, 0}, {0, 0}};
    subiter_opts o = tu_opts(0);
    subiter_item item;
    subiter *it;
    long n = 0, v;
    int r;

    tu_snapshot(&snap);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART */
    ck_assert_int_eq(sigaction(SIGALRM, &sa, &old), 0);
    ck_assert_int_eq(setitimer(ITIMER_REAL, &tv, NULL), 0);

    ck_assert_int_eq(subiter_open(&it, gen_paced, &pace_trickle, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    while ((r = subiter_next(it, &item)) == 1) {
        memcpy(&v, item.data, sizeof v);
        ck_assert_int_eq(v, n);
        n++;
    }
    ck_assert_msg(r == 0, "%s: %s", subiter_errname(r), subiter_errmsg(it));
    ck_assert_int_eq(n, 40);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_int_eq(subiter_next(it, &item), 1);
    ck_assert_int_eq(subiter_stop(it), 0);
    ck_assert_int_eq(subiter_close(it), 0);

    ck_assert_int_eq(setitimer(ITIMER_REAL, &off, NULL), 0);
    ck_assert_int_eq(sigaction(SIGALRM, &old, NULL), 0);
    ck_assert_int_gt(alarms, 10); /* the storm did happen */
    tu_assert_clean(&snap);
}
END_TEST

/* The library installs no signal handler and leaves the mask alone. */
START_TEST(test_proc_no_signal_handlers)
{
    struct tu_snapshot snap;
    struct sigaction before[NSIG], after;
    sigset_t mask0, mask1;
    subiter_opts o = tu_opts(0);
    subiter_item item;
    subiter *it;
    int sig;

    tu_snapshot(&snap);
    /* glibc refuses its own internal signals (32, 33): zero both sides. */
    memset(before, 0, sizeof before);
    for (sig = 1; sig < NSIG; sig++) {
        (void)sigaction(sig, NULL, &before[sig]);
    }
    ck_assert_int_eq(sigprocmask(SIG_SETMASK, NULL, &mask0), 0);
    ck_assert_int_eq(subiter_open(&it, gen_paced, &pace_trickle, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_int_eq(subiter_next(it, &item), 1);
    for (sig = 1; sig < NSIG; sig++) {
        memset(&after, 0, sizeof after);
        (void)sigaction(sig, NULL, &after);
        ck_assert_msg(after.sa_handler == before[sig].sa_handler &&
                          after.sa_flags == before[sig].sa_flags,
                      "signal %d changed", sig);
    }
    ck_assert_int_eq(subiter_close(it), 0);
    ck_assert_int_eq(sigprocmask(SIG_SETMASK, NULL, &mask1), 0);
    for (sig = 1; sig < NSIG; sig++) {
        ck_assert_int_eq(sigismember(&mask0, sig), sigismember(&mask1, sig));
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
    TCase *many = tcase_create("many");
    TCase *env = tcase_create("environment");

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

    tcase_set_timeout(many, 30);
    tcase_add_test(many, test_proc_many_handles);
    tcase_add_test(many, test_proc_threads);
    suite_add_tcase(s, many);

    tcase_set_timeout(env, 30);
    tcase_add_test(env, test_proc_parent_death_stand_by);
    tcase_add_test(env, test_proc_parent_death_iterating);
    tcase_add_test(env, test_proc_parent_death_full_ring);
    tcase_add_test(env, test_proc_sigchld_ignored);
    tcase_add_test(env, test_proc_foreign_child_untouched);
    tcase_add_test(env, test_proc_fds_cloexec_no_shm);
    tcase_add_test(env, test_proc_eintr_storm);
    tcase_add_test(env, test_proc_no_signal_handlers);
    suite_add_tcase(s, env);
    return s;
}

int main(void)
{
    return tu_run(proc_suite());
}
