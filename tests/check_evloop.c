/* check_evloop.c: handles and pools in one application event loop:
 * subiter_fd(), subiter_pool_fd() and the timed nexts. epoll over three
 * handles and a pool (every item once, in order per handle), a death and
 * an inactivity timeout wake the fd, no busy loop while every generator
 * sleeps, misuse, and the bound of subiter_stop() on a generator that
 * ignores the stop. Generators report through their items and exit
 * codes, never ck_assert. Every case checks that no child, fd or mapping
 * is left. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

#define HANG_BOUND_MS 10000 /* a wait that should end at once, generously */

/* What gen_ev does (struct job.how). */
enum how {
    SEQ,         /* yield base + 0 .. n - 1, sleeping ms before the first */
    DIE,         /* yield n items, sleep ms, then die of SIGKILL */
    HANG,        /* sleep until killed */
    IGNORE_STOP, /* yield, ignoring SUBITER_STOPPED, forever */
};

struct job {
    long how;
    long n;
    long base;
    long ms;
};

static int gen_ev(subiter_gen *g, void *arg)
{
    const struct job *j;
    size_t len;
    long i, v;
    int r;

    (void)arg;
    j = subiter_input(g, &len);
    if (j == NULL || len != sizeof *j) {
        return subiter_fail(g, "no job");
    }
    switch (j->how) {
    case SEQ:
        tu_sleep_ms(j->ms);
        for (i = 0; i < j->n; i++) {
            v = j->base + i;
            if ((r = subiter_yield(g, &v, sizeof v)) != 0) {
                return r;
            }
        }
        return 0;
    case DIE:
        if ((r = tu_yield_count(g, j->n)) != 0) {
            return r;
        }
        tu_sleep_ms(j->ms);
        raise(SIGKILL);
        return 0;
    case HANG:
        for (;;) {
            pause();
        }
    default:
        /* Keeps computing and yielding whatever yield says. */
        for (v = 0;; v++) {
            r = subiter_yield(g, &v, sizeof v);
            (void)r;
            tu_sleep_ms(1);
        }
    }
}

static subiter *open_job(const subiter_opts *o, long how, long n, long base,
                         long ms)
{
    struct job j = {how, n, base, ms};
    subiter *it;

    ck_assert_int_eq(subiter_open(&it, gen_ev, NULL, o), 0);
    ck_assert_int_eq(subiter_start(it, &j, sizeof j), 0);
    return it;
}

static void epoll_add(int ep, int fd, uint64_t tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = tag};

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev), 0);
}

/* Wait for one fd of `ep`: its tag; fails after HANG_BOUND_MS. */
static uint64_t epoll_one(int ep)
{
    struct epoll_event ev;
    int n = epoll_wait(ep, &ev, 1, HANG_BOUND_MS);

    ck_assert_msg(n == 1, "no fd became readable (%d)", n);
    return ev.data.u64;
}

static bool have_pidfd(void)
{
    long fd = syscall(SYS_pidfd_open, getpid(), 0);

    if (fd < 0) {
        return false;
    }
    close((int)fd);
    return true;
}

static double cpu_seconds(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

#define N_HANDLES 3
#define N_ITEMS 3000L
#define N_TASKS 6
#define TASK_ITEMS 200L

/* Three handles and a pool of tasks, all in one epoll: each handle's items
 * come exactly once and in order, and so do each task's. */
START_TEST(test_evloop_epoll_handles_and_pool)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(0, TU_LONG_GRACE_MS);
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;
    subiter *h[N_HANDLES];
    subiter_pool *p;
    long want[N_HANDLES], task_next[N_TASKS + 1];
    bool done[N_HANDLES] = {false};
    bool pool_done = false;
    unsigned long long id;
    int ep, k, r, ends = 0;

    tu_snapshot(&snap);
    /* Small buffers: the workers block on full rings, and wake-ups in
     * both directions are many. */
    o.buffer_items = 8;
    ep = epoll_create1(EPOLL_CLOEXEC);
    ck_assert_int_ge(ep, 0);
    for (k = 0; k < N_HANDLES; k++) {
        h[k] = open_job(&o, SEQ, N_ITEMS, 1000000L * k, 10 * k);
        want[k] = 1000000L * k;
        epoll_add(ep, subiter_fd(h[k]), (uint64_t)k);
        /* The same fd each time. */
        ck_assert_int_eq(subiter_fd(h[k]), subiter_fd(h[k]));
    }
    po.workers = 2;
    po.worker = &o;
    ck_assert_int_eq(subiter_pool_open(&p, gen_ev, NULL, &po), 0);
    epoll_add(ep, subiter_pool_fd(p), N_HANDLES);
    for (k = 1; k <= N_TASKS; k++) {
        struct job j = {SEQ, TASK_ITEMS, 1000L * k, 5};

        ck_assert_int_eq(subiter_pool_submit(p, &j, sizeof j, 0, &id), 0);
        ck_assert_uint_eq(id, (unsigned long long)k);
        task_next[k] = 1000L * k;
    }
    while (!pool_done || !done[0] || !done[1] || !done[2]) {
        uint64_t tag = epoll_one(ep);

        if (tag < N_HANDLES) {
            subiter_item item;

            k = (int)tag;
            while ((r = subiter_next_timeout(h[k], &item, 0)) == 1) {
                ck_assert_int_eq(tu_item_long(&item), want[k]);
                want[k]++;
            }
            if (r == 0) {
                done[k] = true;
                ck_assert_int_eq(
                    epoll_ctl(ep, EPOLL_CTL_DEL, subiter_fd(h[k]), NULL), 0);
            } else {
                ck_assert_int_eq(r, -EAGAIN);
            }
            continue;
        }
        for (;;) {
            subiter_pool_item pi;
            long v;

            r = subiter_pool_next_timeout(p, &pi, 0);
            if (r != 1) {
                ck_assert_msg(r == -EAGAIN || r == 0, "pool: %d", r);
                pool_done = r == 0;
                break;
            }
            ck_assert_uint_ge(pi.task, 1);
            ck_assert_uint_le(pi.task, N_TASKS);
            if (pi.kind == SUBITER_POOL_TASK_END) {
                ck_assert_int_eq(pi.code, 0);
                ck_assert_int_eq(task_next[pi.task],
                                 1000L * pi.task + TASK_ITEMS);
                ends++;
                continue;
            }
            ck_assert_uint_eq(pi.len, sizeof v);
            memcpy(&v, pi.data, sizeof v);
            ck_assert_int_eq(v, task_next[pi.task]);
            task_next[pi.task]++;
        }
    }
    ck_assert_int_eq(ends, N_TASKS);
    for (k = 0; k < N_HANDLES; k++) {
        ck_assert_int_eq(want[k], 1000000L * k + N_ITEMS);
        ck_assert_int_eq(subiter_close(h[k]), 0);
    }
    ck_assert_int_eq(subiter_pool_close(p), 0);
    close(ep);
    tu_assert_clean(&snap);
}
END_TEST

/* One task of job j on a one-worker pool (no retry), read through its fd
 * in epoll `ep`: the code its end carries. */
static int pool_task_via_fd(int ep, const subiter_opts *o, const struct job *j)
{
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;
    subiter_pool_item pi;
    subiter_pool *p;
    int r;

    po.workers = 1;
    po.worker = o;
    po.max_retries = 0;
    ck_assert_int_eq(subiter_pool_open(&p, gen_ev, NULL, &po), 0);
    epoll_add(ep, subiter_pool_fd(p), 2);
    ck_assert_int_eq(subiter_pool_submit(p, j, sizeof *j, 0, NULL), 0);
    for (;;) {
        ck_assert_uint_eq(epoll_one(ep), 2);
        r = subiter_pool_next_timeout(p, &pi, 0);
        if (r == 1 && pi.kind == SUBITER_POOL_TASK_END) {
            break;
        }
        ck_assert_msg(r == -EAGAIN || r == 1, "pool: %d", r);
    }
    r = pi.code;
    ck_assert_int_eq(subiter_pool_close(p), 0);
    return r;
}

/* A worker that dies while the application waits in epoll wakes the fd,
 * for a handle and for a pool. */
START_TEST(test_evloop_death_wakes_fd)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(0, TU_LONG_GRACE_MS);
    struct job j = {DIE, 0, 0, 300};
    subiter_item item;
    subiter *it;
    int ep, r;

    tu_snapshot(&snap);
    ep = epoll_create1(EPOLL_CLOEXEC);
    it = open_job(&o, DIE, 3, 0, 300);
    epoll_add(ep, subiter_fd(it), 1);
    for (;;) {
        ck_assert_uint_eq(epoll_one(ep), 1);
        while ((r = subiter_next_timeout(it, &item, 0)) == 1) {
        }
        if (r != -EAGAIN) {
            break;
        }
    }
    ck_assert_int_eq(r, SUBITER_ECHILD);
    ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);

    ck_assert_int_eq(pool_task_via_fd(ep, &o, &j), SUBITER_ECHILD);
    close(ep);
    tu_assert_clean(&snap);
}
END_TEST

/* While every generator sleeps, the loop sleeps too: little CPU time and
 * few wake-ups (a busy loop would burn the whole wait). */
START_TEST(test_evloop_no_busy_loop)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(0, TU_LONG_GRACE_MS);
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;
    struct job j = {SEQ, 1, 7, 1500};
    subiter_pool_item pi;
    subiter_item item;
    subiter *h[2];
    subiter_pool *p;
    int ep, k, r, got = 0, wakeups = 0;
    int64_t t0;
    double cpu0;

    tu_snapshot(&snap);
    ep = epoll_create1(EPOLL_CLOEXEC);
    po.workers = 1;
    po.worker = &o;
    ck_assert_int_eq(subiter_pool_open(&p, gen_ev, NULL, &po), 0);
    for (k = 0; k < 2; k++) {
        h[k] = open_job(&o, SEQ, 1, 0, 1500);
        epoll_add(ep, subiter_fd(h[k]), (uint64_t)k);
    }
    epoll_add(ep, subiter_pool_fd(p), 2);
    ck_assert_int_eq(subiter_pool_submit(p, &j, sizeof j, 0, NULL), 0);
    t0 = tu_now_ms();
    cpu0 = cpu_seconds();
    while (got < 3) {
        uint64_t tag = epoll_one(ep);

        wakeups++;
        if (tag < 2) {
            r = subiter_next_timeout(h[tag], &item, 0);
            ck_assert_msg(r >= 0 || r == -EAGAIN, "handle: %d", r);
            got += r == 1;
            if (r == 0) {
                /* Its end came before the others' items (slow runs). */
                ck_assert_int_eq(
                    epoll_ctl(ep, EPOLL_CTL_DEL, subiter_fd(h[tag]), NULL), 0);
            }
        } else {
            r = subiter_pool_next_timeout(p, &pi, 0);
            ck_assert_msg(r >= 0 || r == -EAGAIN, "pool: %d", r);
            if (r == 0) {
                /* No task left: the fd says so until it is dropped. */
                ck_assert_int_eq(
                    epoll_ctl(ep, EPOLL_CTL_DEL, subiter_pool_fd(p), NULL), 0);
            }
            got += r == 1 && pi.kind == SUBITER_POOL_ITEM;
        }
    }
    ck_assert_int_ge(tu_now_ms() - t0, 1000);
    /* Generous: a busy loop burns about 1.5 s here. */
    ck_assert_msg(cpu_seconds() - cpu0 < 0.5, "%.3f s of CPU while waiting",
                  cpu_seconds() - cpu0);
    /* Without pidfds (valgrind) the fds also fire every
     * SUBITER__FALLBACK_SLICE_MS, to look for exits. */
    ck_assert_int_lt(wakeups, have_pidfd() ? 200 : 2000);
    for (k = 0; k < 2; k++) {
        ck_assert_int_eq(subiter_close(h[k]), 0);
    }
    ck_assert_int_eq(subiter_pool_close(p), 0);
    close(ep);
    tu_assert_clean(&snap);
}
END_TEST

/* The timed next: 0 ms looks only, a bound gives -EAGAIN and leaves the
 * handle iterating, < 0 waits. */
START_TEST(test_evloop_next_timeout)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(0, TU_LONG_GRACE_MS);
    subiter_item item;
    subiter *it;
    int64_t t0;

    tu_snapshot(&snap);
    it = open_job(&o, SEQ, 2, 40, 500);
    t0 = tu_now_ms();
    ck_assert_int_eq(subiter_next_timeout(it, &item, 0), -EAGAIN);
    ck_assert_ptr_null(item.data);
    ck_assert_int_eq(subiter_next_timeout(it, &item, 50), -EAGAIN);
    ck_assert_int_ge(tu_now_ms() - t0, 50);
    ck_assert_int_eq(subiter_next_timeout(it, &item, -1), 1);
    ck_assert_int_eq(tu_item_long(&item), 40);
    ck_assert_int_eq(subiter_next_timeout(it, &item, 5000), 1);
    ck_assert_int_eq(tu_item_long(&item), 41);
    ck_assert_int_eq(subiter_next_timeout(it, &item, 5000), 0);
    ck_assert_int_eq(subiter_next_timeout(it, &item, 0), 0);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

/* The inactivity timeout counts across calls that return -EAGAIN, and its
 * deadline wakes the fd. */
START_TEST(test_evloop_inactivity_wakes_fd)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(300, TU_LONG_GRACE_MS);
    struct job j = {HANG, 0, 0, 0};
    subiter_item item;
    subiter *it;
    int ep, r;

    tu_snapshot(&snap);
    ep = epoll_create1(EPOLL_CLOEXEC);
    it = open_job(&o, HANG, 0, 0, 0);
    epoll_add(ep, subiter_fd(it), 1);
    do {
        ck_assert_uint_eq(epoll_one(ep), 1);
    } while ((r = subiter_next_timeout(it, &item, 0)) == -EAGAIN);
    ck_assert_int_eq(r, SUBITER_ETIMEDOUT);
    ck_assert_ptr_nonnull(strstr(subiter_errmsg(it), "sent nothing for 300"));
    ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);

    ck_assert_int_eq(pool_task_via_fd(ep, &o, &j), SUBITER_ETIMEDOUT);
    close(ep);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_evloop_misuse)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(0, TU_LONG_GRACE_MS);
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;
    subiter_pool_item pi;
    subiter_item item;
    subiter_pool *p;
    subiter *it;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_fd(NULL), -EINVAL);
    ck_assert_int_eq(subiter_next_timeout(NULL, &item, 0), -EINVAL);
    ck_assert_int_eq(subiter_pool_fd(NULL), -EINVAL);
    ck_assert_int_eq(subiter_pool_next_timeout(NULL, &pi, 0), -EINVAL);
    ck_assert_int_eq(subiter_open(&it, gen_ev, NULL, &o), 0);
    ck_assert_int_eq(subiter_next_timeout(it, NULL, 0), -EINVAL);
    /* Before any start. */
    ck_assert_int_eq(subiter_next_timeout(it, &item, 0), -EINVAL);
    ck_assert_int_eq(subiter_next_timeout(it, &item, 10), -EINVAL);
    ck_assert_int_ge(subiter_fd(it), 0);
    ck_assert_int_eq(subiter_close(it), 0);
    po.workers = 1;
    po.worker = &o;
    ck_assert_int_eq(subiter_pool_open(&p, gen_ev, NULL, &po), 0);
    ck_assert_int_eq(subiter_pool_next_timeout(p, NULL, 0), -EINVAL);
    ck_assert_int_eq(subiter_pool_next_timeout(p, &pi, 0), -EINVAL);
    ck_assert_int_ge(subiter_pool_fd(p), 0);
    ck_assert_int_eq(subiter_pool_close(p), 0);
    tu_assert_clean(&snap);
}
END_TEST

/* Issue 13.4: a generator that ignores the stop ends after grace_ms,
 * without an inactivity timeout; the error says so. */
START_TEST(test_evloop_stop_bound)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(0, 200);
    subiter_item item;
    subiter *it;
    int64_t t0;

    tu_snapshot(&snap);
    it = open_job(&o, IGNORE_STOP, 0, 0, 0);
    ck_assert_int_eq(subiter_next(it, &item), 1);
    t0 = tu_now_ms();
    ck_assert_int_eq(subiter_stop(it), SUBITER_ETIMEDOUT);
    ck_assert_int_lt(tu_now_ms() - t0, HANG_BOUND_MS);
    ck_assert_msg(strstr(subiter_errmsg(it), "did not return from its "
                                             "generator within grace_ms "
                                             "(200 ms) of STOP") != NULL,
                  "%s", subiter_errmsg(it));
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECLOSED);
    ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);
    tu_assert_clean(&snap);
}
END_TEST

/* Issue 13.4: the inactivity timeout during a stop does not claim the
 * worker sent nothing: it kept yielding, into a stop. */
START_TEST(test_evloop_stop_timeout_message)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(200, TU_LONG_GRACE_MS);
    subiter_item item;
    subiter *it;

    tu_snapshot(&snap);
    it = open_job(&o, IGNORE_STOP, 0, 0, 0);
    ck_assert_int_eq(subiter_next(it, &item), 1);
    ck_assert_int_eq(subiter_stop(it), SUBITER_ETIMEDOUT);
    ck_assert_msg(strstr(subiter_errmsg(it), "sent nothing") == NULL &&
                      strstr(subiter_errmsg(it), "within 200 ms of STOP") !=
                          NULL,
                  "%s", subiter_errmsg(it));
    ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);
    tu_assert_clean(&snap);
}
END_TEST

static Suite *evloop_suite(void)
{
    Suite *s = suite_create("evloop");
    TCase *tc = tcase_create("evloop");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_evloop_epoll_handles_and_pool);
    tcase_add_test(tc, test_evloop_death_wakes_fd);
    tcase_add_test(tc, test_evloop_no_busy_loop);
    tcase_add_test(tc, test_evloop_next_timeout);
    tcase_add_test(tc, test_evloop_inactivity_wakes_fd);
    tcase_add_test(tc, test_evloop_misuse);
    tcase_add_test(tc, test_evloop_stop_bound);
    tcase_add_test(tc, test_evloop_stop_timeout_message);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(evloop_suite());
}
