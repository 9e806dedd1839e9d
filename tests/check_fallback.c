/* check_fallback.c: workers watched without a pidfd, as under valgrind
 * (subiter__proc_no_pidfd()): the parent must still see a worker's death
 * while it waits and after the last item, time out a silent worker, end
 * one deaf to ABORT and SIGTERM, and a pool must still replace dead
 * workers and retry their tasks. Every case checks that no child, fd or
 * mapping is left. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

#define PAGE 4096
#define HANG_BOUND_MS 10000 /* far above the fallback's detection delay */

/* What the generator does (arg). */
enum how { DIE_AFTER_ITEMS, DIE_SILENT, DEAF, KILL_ONCE };

/* arg: enum how, or for KILL_ONCE a shared counter of attempts. */
TU_EXPORT(int gen_fallback(subiter_gen *g, void *arg))
{
    enum how how = (enum how)(intptr_t)arg;
    sigset_t set;
    int r;

    switch (how) {
    case DIE_AFTER_ITEMS:
        if ((r = tu_yield_count(g, 3)) != 0) {
            return r;
        }
        _exit(3);
    case DIE_SILENT:
        tu_sleep_ms(100);
        raise(SIGKILL);
        break;
    case DEAF:
        /* Never yields (deaf to ABORT) and ignores SIGTERM: only SIGKILL
         * ends it. */
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigprocmask(SIG_BLOCK, &set, NULL);
        for (;;) {
            pause();
        }
    case KILL_ONCE:
        break;
    }
    return 0;
}

/* Does one of this process's fds name `path`? */
static bool has_fd_to(const char *path)
{
    /* Room for any d_name (256 bytes), as gcc -O2 checks. */
    char link[sizeof "/proc/self/fd/" + 256], target[64];
    struct dirent *d;
    bool found = false;
    DIR *dir = opendir("/proc/self/fd");
    ssize_t n;

    ck_assert_ptr_nonnull(dir);
    while (!found && (d = readdir(dir)) != NULL) {
        snprintf(link, sizeof link, "/proc/self/fd/%s", d->d_name);
        n = readlink(link, target, sizeof target - 1);
        if (n > 0) {
            target[n] = '\0';
            found = strcmp(target, path) == 0;
        }
    }
    closedir(dir);
    return found;
}

/* Opens a handle watched without a pidfd: it holds two fds, the eventfd
 * and the worker's /proc directory where a watched one holds its pidfd. */
static subiter *open_fallback(enum how how, const subiter_opts *o)
{
    struct tu_snapshot before, after;
    char proc[32];
    subiter *it;

    subiter__proc_no_pidfd(true);
    tu_snapshot(&before);
    ck_assert_int_eq(subiter_open(&it, gen_fallback, (void *)(intptr_t)how, o),
                     0);
    tu_snapshot(&after);
    ck_assert_int_eq(after.fds, before.fds + 2);
    snprintf(proc, sizeof proc, "/proc/%d", (int)subiter_pid(it));
    ck_assert(has_fd_to(proc));
    return it;
}

/* Everything published before the death comes first, then the death, in
 * words. */
START_TEST(test_fallback_death_after_items)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts(0);
    subiter_item item;
    subiter *it;

    tu_snapshot(&snap);
    it = open_fallback(DIE_AFTER_ITEMS, &o);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    tu_expect_items(it, 0, 3);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECHILD);
    ck_assert_ptr_nonnull(strstr(subiter_errmsg(it), "exited with status 3"));
    ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);
    subiter__proc_no_pidfd(false);
    tu_assert_clean(&snap);
}
END_TEST

/* A worker that dies while the parent sleeps waiting for it. */
START_TEST(test_fallback_death_while_waiting)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts(0);
    subiter_item item;
    subiter *it;
    int64_t t0;

    tu_snapshot(&snap);
    it = open_fallback(DIE_SILENT, &o);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    t0 = tu_now_ms();
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECHILD);
    ck_assert_int_lt(tu_now_ms() - t0, HANG_BOUND_MS);
    ck_assert_ptr_nonnull(
        strstr(subiter_errmsg(it), "killed by signal 9 (SIGKILL)"));
    ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);
    subiter__proc_no_pidfd(false);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_fallback_inactivity_timeout)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts(300);
    subiter_item item;
    subiter *it;

    tu_snapshot(&snap);
    subiter__proc_no_pidfd(true);
    ck_assert_int_eq(subiter_open(&it, tu_gen_hang, NULL, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    tu_expect_items(it, 0, 1);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ETIMEDOUT);
    ck_assert_ptr_nonnull(strstr(subiter_errmsg(it), "300 ms"));
    ck_assert_int_eq(kill(subiter_pid(it), 0), -1); /* killed and reaped */
    ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);
    subiter__proc_no_pidfd(false);
    tu_assert_clean(&snap);
}
END_TEST

/* Deaf to ABORT and to SIGTERM: close must reach SIGKILL and reap it. */
START_TEST(test_fallback_close_deaf_worker)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts(0);
    subiter *it;
    int64_t t0;

    tu_snapshot(&snap);
    it = open_fallback(DEAF, &o);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    tu_sleep_ms(50); /* let it block SIGTERM */
    t0 = tu_now_ms();
    ck_assert_int_eq(subiter_close(it), SUBITER_ETIMEDOUT);
    ck_assert_int_lt(tu_now_ms() - t0, HANG_BOUND_MS);
    subiter__proc_no_pidfd(false);
    tu_assert_clean(&snap);
}
END_TEST

/* SIGCHLD ignored: the kernel reaps the worker, which without a pidfd the
 * parent must still notice; the status is then unknown. */
START_TEST(test_fallback_sigchld_ignored)
{
    struct tu_snapshot snap;
    subiter_errinfo ei = SUBITER_ERRINFO_INIT;
    subiter_opts o = tu_opts(0);
    subiter_item item;
    subiter *it;

    tu_snapshot(&snap);
    signal(SIGCHLD, SIG_IGN);
    it = open_fallback(DIE_AFTER_ITEMS, &o);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    tu_expect_items(it, 0, 3);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECHILD);
    ck_assert_ptr_nonnull(strstr(subiter_errmsg(it), "status unavailable"));
    ck_assert_int_eq(subiter_get_errinfo(it, &ei), 0);
    ck_assert_int_eq(ei.status_unknown, 1);
    ck_assert_int_eq(ei.exited, 0);
    (void)subiter_close(it);
    signal(SIGCHLD, SIG_DFL);
    subiter__proc_no_pidfd(false);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- pools ---- */

/* A task: the first run of all kills its worker (arg: shared counter),
 * every run yields its input's long. */
TU_EXPORT(int gen_task(subiter_gen *g, void *arg))
{
    _Atomic int *attempts = arg;
    const void *in;
    size_t len;

    if (atomic_fetch_add(attempts, 1) == 0) {
        raise(SIGKILL);
    }
    in = subiter_input(g, &len);
    return subiter_yield(g, in, len);
}

/* Sharded: worker 1 dies at once, worker 0 yields 3 longs. */
TU_EXPORT(int gen_shard(subiter_gen *g, void *arg))
{
    (void)arg;
    if (subiter_worker_id(g) == 1) {
        tu_sleep_ms(50);
        raise(SIGKILL);
    }
    return tu_yield_count(g, 3);
}

/* Read task events until none is left; returns the number of task ends
 * that failed, and checks each item is `want`. */
static int drain_tasks(subiter_pool *p, long want, int *items)
{
    subiter_pool_item item;
    int failed = 0, r;
    long v;

    while ((r = subiter_pool_next(p, &item)) == 1) {
        if (item.kind == SUBITER_POOL_ITEM) {
            REQUIRE_EQ(item.len, sizeof v);
            memcpy(&v, item.data, sizeof v);
            REQUIRE_EQ(v, want);
            (*items)++;
        } else {
            failed += item.code != 0;
        }
    }
    ck_assert_int_eq(r, 0);
    return failed;
}

/* A pool whose workers have no pidfd: a worker that dies in a task is
 * seen, replaced, and the task retried; one killed while idle is
 * replaced too. */
START_TEST(test_fallback_pool_task_retry)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, TU_LONG_GRACE_MS);
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;
    subiter_pool_stats st = SUBITER_POOL_STATS_INIT;
    _Atomic int *attempts;
    subiter_pool *p;
    long v = 42;
    int items = 0;
    pid_t idle;

    tu_snapshot(&snap);
    attempts = tu_shared_new(PAGE);
    atomic_store(attempts, 0);
    po.workers = 1;
    po.worker = &wo;
    subiter__proc_no_pidfd(true);
    ck_assert_int_eq(subiter_pool_open(&p, gen_task, attempts, &po), 0);
    ck_assert_int_eq(subiter_pool_submit(p, &v, sizeof v, 0, NULL), 0);
    ck_assert_int_eq(drain_tasks(p, v, &items), 0);
    ck_assert_int_eq(items, 1);
    ck_assert_int_eq(subiter_pool_get_stats(p, &st), 0);
    ck_assert_uint_eq(st.retried, 1);
    ck_assert_uint_eq(st.replaced, 1);
    ck_assert_uint_eq(st.done, 1);

    /* An idle worker killed from outside: the next task still runs. */
    idle = subiter_pool_worker_pid(p, 0);
    ck_assert_int_gt(idle, 0);
    ck_assert_int_eq(kill(idle, SIGKILL), 0);
    tu_sleep_ms(50);
    ck_assert_int_eq(subiter_pool_submit(p, &v, sizeof v, 0, NULL), 0);
    items = 0;
    ck_assert_int_eq(drain_tasks(p, v, &items), 0);
    ck_assert_int_eq(items, 1);
    ck_assert_int_ne(subiter_pool_worker_pid(p, 0), idle);
    ck_assert_int_eq(subiter_pool_close(p), 0);
    subiter__proc_no_pidfd(false);
    tu_shared_free(attempts, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

/* A shard's death without a pidfd ends the iteration with ECHILD. */
START_TEST(test_fallback_pool_shard_death)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, TU_LONG_GRACE_MS);
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;
    subiter_pool_item item;
    subiter_pool *p;
    int64_t t0;
    int r;

    tu_snapshot(&snap);
    po.workers = 2;
    po.worker = &wo;
    po.order = SUBITER_POOL_UNORDERED;
    subiter__proc_no_pidfd(true);
    ck_assert_int_eq(subiter_pool_open(&p, gen_shard, NULL, &po), 0);
    ck_assert_int_eq(subiter_pool_start(p, NULL, 0), 0);
    t0 = tu_now_ms();
    while ((r = subiter_pool_next(p, &item)) == 1) {
    }
    ck_assert_int_eq(r, SUBITER_ECHILD);
    ck_assert_int_lt(tu_now_ms() - t0, HANG_BOUND_MS);
    ck_assert_ptr_nonnull(strstr(subiter_pool_errmsg(p), "worker 1"));
    ck_assert_int_eq(subiter_pool_close(p), 0);
    subiter__proc_no_pidfd(false);
    tu_assert_clean(&snap);
}
END_TEST

static Suite *fallback_suite(void)
{
    Suite *s = suite_create("fallback");
    TCase *tc = tcase_create("no pidfd");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_fallback_death_after_items);
    tcase_add_test(tc, test_fallback_death_while_waiting);
    tcase_add_test(tc, test_fallback_inactivity_timeout);
    tcase_add_test(tc, test_fallback_close_deaf_worker);
    tcase_add_test(tc, test_fallback_sigchld_ignored);
    tcase_add_test(tc, test_fallback_pool_task_retry);
    tcase_add_test(tc, test_fallback_pool_shard_death);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (tu_start_method() == SUBITER_FORKSERVER) {
        /* Its workers' pidfds come from clone3(), which it needs: where
         * there is no pidfd (valgrind, no clone3) it does not start. */
        printf("SKIP: a FORKSERVER worker always has a pidfd: the no-pidfd "
               "watch is for fork and spawn only\n");
        return 77;
    }
    return tu_run(fallback_suite());
}
