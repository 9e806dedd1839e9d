/* check_ends.c: every end of an iteration is told as it was: an item that
 * did not fit, a positive return without a stop, reserve/commit misuse, a
 * worker that died in Stand By, the library's exit statuses against the
 * application's, and a callback that closed the worker's eventfd (the
 * parent learns it; nothing is written into the file that took its
 * number). Generators report through their returns and shared pages, never
 * ck_assert. Every case checks that no child, fd or mapping is left. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "testring.h"
#include "testutil.h"

#define PAGE 4096

/* ---- an item that does not fit ---- */

/* Yields one long, then an item bigger than the ring, ignores the
 * -EMSGSIZE and returns 0. */
static int gen_ignores_emsgsize(subiter_gen *g, void *arg)
{
    static unsigned char big[TU_SMALL_RING * 2];
    long v = 7;
    int r;

    (void)arg;
    if ((r = subiter_yield(g, &v, sizeof v)) != 0) {
        return r;
    }
    if (subiter_yield(g, big, sizeof big) != -EMSGSIZE) {
        return -EPROTO; /* the test fails on this errnum */
    }
    return 0;
}

START_TEST(test_ends_emsgsize_ignored)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts(10000);
    subiter_errinfo ei = SUBITER_ERRINFO_INIT;
    subiter_item item;
    char want[64];
    subiter *it;

    tu_snapshot(&snap);
    o.buffer_bytes = TU_SMALL_RING;
    ck_assert_int_eq(subiter_open(&it, gen_ignores_emsgsize, NULL, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_int_eq(subiter_next(it, &item), 1);
    ck_assert_int_eq(tu_item_long(&item), 7);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_EITER);
    snprintf(want, sizeof want, "item of %zu bytes", TU_SMALL_RING * 2);
    ck_assert_msg(strstr(subiter_errmsg(it), want) != NULL, "%s",
                  subiter_errmsg(it));
    snprintf(want, sizeof want, "at most %zu bytes", TU_SMALL_MAX);
    ck_assert_msg(strstr(subiter_errmsg(it), want) != NULL, "%s",
                  subiter_errmsg(it));
    ck_assert_int_eq(subiter_get_errinfo(it, &ei), 0);
    ck_assert_int_eq(ei.errnum, EMSGSIZE);
    /* The worker is back in Stand By, and the next iteration is judged
     * afresh. */
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_int_eq(subiter_next(it, &item), 1);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_EITER);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- a positive return ---- */

/* Returns the long given as input after one item, without a stop. */
static int gen_returns_input(subiter_gen *g, void *arg)
{
    const long *v;
    size_t len;
    int r;

    (void)arg;
    v = subiter_input(g, &len);
    if ((r = subiter_yield(g, v, len)) != 0) {
        return r;
    }
    return (int)*v;
}

START_TEST(test_ends_positive_return)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts(10000);
    subiter_item item;
    long v[] = {7, SUBITER_STOPPED, 0};
    subiter *it;
    int i;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, gen_returns_input, NULL, &o), 0);
    for (i = 0; i < 3; i++) {
        char want[32];

        ck_assert_int_eq(subiter_start(it, &v[i], sizeof v[i]), 0);
        ck_assert_int_eq(subiter_next(it, &item), 1);
        if (v[i] == 0) {
            ck_assert_int_eq(subiter_next(it, &item), 0);
            continue;
        }
        ck_assert_int_eq(subiter_next(it, &item), SUBITER_EITER);
        snprintf(want, sizeof want, "returned %ld without a stop", v[i]);
        ck_assert_msg(strstr(subiter_errmsg(it), want) != NULL, "%s",
                      subiter_errmsg(it));
    }
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- reserve/commit misuse ---- */

enum {
    M_COMMIT_NONE,
    M_COMMIT_MORE,
    M_YIELD_OPEN,
    M_RESERVE_OPEN,
    M_YIELD_NULL,
    M_RESERVE_NULL,
    M_COUNT
};

static const char *const misuse_msg[M_COUNT] = {
    "subiter_commit() without an open subiter_reserve()",
    "subiter_commit() of 65 bytes, but only 64 were reserved",
    "subiter_yield() called while a reservation of 64 bytes is open "
    "(subiter_commit() it first)",
    "subiter_reserve() called while a reservation of 64 bytes is open "
    "(subiter_commit() it first)",
    "subiter_yield() of 8 bytes at NULL",
    "subiter_reserve() with a NULL buf",
};

/* Makes the mistake the input names and returns what the call said. */
static int gen_misuse(subiter_gen *g, void *arg)
{
    const long *how = subiter_input(g, NULL);
    void *p;
    int r = 0;

    (void)arg;
    if (*how != M_COMMIT_NONE && *how != M_YIELD_NULL &&
        *how != M_RESERVE_NULL) {
        r = subiter_reserve(g, 64, &p);
    }
    if (r != 0) {
        return r;
    }
    switch (*how) {
    case M_COMMIT_NONE:
        return subiter_commit(g, 1);
    case M_COMMIT_MORE:
        return subiter_commit(g, 65);
    case M_YIELD_OPEN:
        return subiter_yield(g, "x", 1);
    case M_RESERVE_OPEN:
        return subiter_reserve(g, 1, &p);
    case M_YIELD_NULL:
        return subiter_yield(g, NULL, 8);
    default:
        return subiter_reserve(g, 1, NULL);
    }
}

START_TEST(test_ends_misuse_says_what)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts(10000);
    subiter_errinfo ei = SUBITER_ERRINFO_INIT;
    subiter_item item;
    long how = _i;
    subiter *it;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, gen_misuse, NULL, &o), 0);
    ck_assert_int_eq(subiter_start(it, &how, sizeof how), 0);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_EITER);
    ck_assert_str_eq(subiter_errmsg(it), misuse_msg[_i]);
    ck_assert_int_eq(subiter_get_errinfo(it, &ei), 0);
    ck_assert_int_eq(ei.errnum, EINVAL);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

/* An initializer that yields: open fails with what was wrong. */
static int init_yields(subiter_gen *g, void *arg)
{
    (void)arg;
    return subiter_yield(g, "x", 1);
}

START_TEST(test_ends_yield_in_init)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts(10000);
    subiter *it;

    tu_snapshot(&snap);
    o.init = init_yields;
    ck_assert_int_eq(subiter_open(&it, tu_gen_count, (void *)1L, &o),
                     SUBITER_EINIT);
    ck_assert_str_eq(subiter_errmsg(it),
                     "subiter_yield() called in the initializer");
    (void)subiter_close(it);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- deaths and exit statuses ---- */

/* Wait (bounded) until pid has exited, without reaping it. */
static void wait_exited(pid_t pid)
{
    int64_t end = tu_now_ms() + 10000;
    siginfo_t si;

    do {
        memset(&si, 0, sizeof si);
        ck_assert_int_eq(
            waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT), 0);
        if (si.si_pid == pid) {
            return;
        }
        tu_sleep_ms(2);
    } while (tu_now_ms() < end);
    ck_abort_msg("worker %d did not exit", (int)pid);
}

/* A worker killed in Stand By: the next iteration's end says so, not
 * "during iteration 1 after 0 items". */
START_TEST(test_ends_death_in_stand_by)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts(10000);
    subiter_item item;
    subiter *it;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, tu_gen_count, (void *)3L, &o), 0);
    if (_i == 1) {
        ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
        tu_expect_count(it, 3);
    }
    ck_assert_int_eq(kill(subiter_pid(it), SIGKILL), 0);
    wait_exited(subiter_pid(it));
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECHILD);
    ck_assert_msg(strstr(subiter_errmsg(it), "in Stand By") != NULL, "%s",
                  subiter_errmsg(it));
    ck_assert_msg(strstr(subiter_errmsg(it), "during iteration") == NULL, "%s",
                  subiter_errmsg(it));
    ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);
    tu_assert_clean(&snap);
}
END_TEST

/* Corrupts the command ring's next record, then ends: the worker, back
 * in Stand By, exits with the library's status for it. */
static int gen_corrupts_commands(subiter_gen *g, void *arg)
{
    (void)arg;
    tring_forge_bad_record(subiter__gen_shm(g), true);
    return 0;
}

/* A status the library itself ended the worker with is explained, also
 * after the initializer succeeded. */
START_TEST(test_ends_library_exit_explained)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts(10000);
    subiter_item item;
    char want[128];
    subiter *it;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, gen_corrupts_commands, NULL, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_int_eq(subiter_next(it, &item), 0);
    wait_exited(subiter_pid(it));
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECHILD);
    snprintf(want, sizeof want, "(%d: %s)", SUBITER__EXIT_CMD_RING,
             subiter__worker_exit_reason(SUBITER__EXIT_CMD_RING));
    ck_assert_msg(strstr(subiter_errmsg(it), want) != NULL, "%s",
                  subiter_errmsg(it));
    ck_assert_msg(strstr(subiter_errmsg(it), "in Stand By") != NULL, "%s",
                  subiter_errmsg(it));
    ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- a callback that closes the worker's eventfd ---- */

/* Where the test wants the worker to put a file of its own over the
 * eventfd's number (a path), and how. */
struct foreign {
    char path[64];
    long when; /* F_MID, F_END or F_INIT */
    _Atomic int yields;
};
enum { F_MID, F_END, F_INIT };

/* The worker's eventfd: the one fd that /proc names an eventfd. */
static int find_eventfd(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int fd = -1;

    while (d != NULL && (e = readdir(d)) != NULL) {
        char link[64], path[300];
        ssize_t n;

        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        n = readlink(path, link, sizeof link - 1);
        if (n > 0) {
            link[n] = '\0';
            if (strcmp(link, "anon_inode:[eventfd]") == 0) {
                fd = atoi(e->d_name);
            }
        }
    }
    if (d != NULL) {
        closedir(d);
    }
    return fd;
}

/* Close every fd from 3 on, as a daemonizing library would, and open the
 * file at `path` on the eventfd's old number. 0, or -errno. */
static int close_all_and_reuse(const char *path)
{
    int efd = find_eventfd(), fd, r = 0;

    if (efd < 3) {
        return -ENOENT;
    }
    for (fd = 3; fd < 1024; fd++) {
        (void)close(fd);
    }
    fd = open(path, O_WRONLY);
    if (fd < 0) {
        return -errno;
    }
    if (fd != efd && (dup2(fd, efd) < 0 || close(fd) < 0)) {
        r = -errno;
    }
    return r;
}

static int init_closes(subiter_gen *g, void *arg)
{
    struct foreign *f = arg;

    (void)g;
    return f->when == F_INIT ? close_all_and_reuse(f->path) : 0;
}

/* F_MID: one item, close, then yields (with pauses, so that the parent
 * sleeps and a wake-up is due) until one fails, and returns that. F_END:
 * one item, close, return 0. */
static int gen_closes(subiter_gen *g, void *arg)
{
    struct foreign *f = arg;
    long i;
    int r;

    if ((r = subiter_yield(g, &f->when, sizeof f->when)) != 0 ||
        (r = close_all_and_reuse(f->path)) != 0) {
        return r;
    }
    for (i = 0; f->when == F_MID && i < 100; i++) {
        tu_sleep_ms(20);
        if ((r = subiter_yield(g, &i, sizeof i)) != 0) {
            return r;
        }
        atomic_fetch_add(&f->yields, 1);
    }
    return 0;
}

START_TEST(test_ends_eventfd_closed)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts(20000);
    subiter_errinfo ei = SUBITER_ERRINFO_INIT;
    subiter_item item;
    struct foreign *f;
    struct stat st;
    subiter *it;
    int fd, r, n = 0;

    tu_snapshot(&snap);
    f = tu_shared_new(PAGE);
    memset(f, 0, sizeof *f);
    f->when = _i / 2;
    subiter__proc_no_pidfd(_i % 2 == 1);
    snprintf(f->path, sizeof f->path, "/tmp/subiter-ends-XXXXXX");
    fd = mkstemp(f->path);
    ck_assert_int_ge(fd, 0);
    o.init = init_closes;
    r = subiter_open(&it, gen_closes, f, &o);
    if (f->when == F_INIT) {
        ck_assert_int_eq(r, SUBITER_EINIT);
    } else {
        ck_assert_int_eq(r, 0);
        ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
        while ((r = subiter_next(it, &item)) == 1) {
            n++;
        }
        ck_assert_int_eq(r, SUBITER_EITER);
        ck_assert_int_ge(n, 1);
        ck_assert_int_eq(n, 1 + atomic_load(&f->yields));
        ck_assert_int_lt(n, 100);
    }
    ck_assert_msg(strstr(subiter_errmsg(it), "eventfd") != NULL, "%s",
                  subiter_errmsg(it));
    ck_assert_int_eq(subiter_get_errinfo(it, &ei), 0);
    ck_assert_int_eq(ei.errnum, EBADF);
    /* The worker left after saying so; the handle tells at the next
     * start. */
    wait_exited(subiter_pid(it));
    if (f->when != F_INIT) {
        ck_assert_int_eq(subiter_next(it, &item), 0);
        ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
        ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECHILD);
        ck_assert_msg(strstr(subiter_errmsg(it), "eventfd") != NULL, "%s",
                      subiter_errmsg(it));
    }
    (void)subiter_close(it);
    subiter__proc_no_pidfd(false);
    /* Not one byte went into the file that took the eventfd's number. */
    ck_assert_int_eq(fstat(fd, &st), 0);
    ck_assert_int_eq(st.st_size, 0);
    ck_assert_int_eq(close(fd), 0);
    ck_assert_int_eq(unlink(f->path), 0);
    tu_shared_free(f, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

static Suite *ends_suite(void)
{
    Suite *s = suite_create("ends");
    TCase *tc = tcase_create("ends");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_ends_emsgsize_ignored);
    tcase_add_test(tc, test_ends_positive_return);
    tcase_add_loop_test(tc, test_ends_misuse_says_what, 0, M_COUNT);
    tcase_add_test(tc, test_ends_yield_in_init);
    tcase_add_loop_test(tc, test_ends_death_in_stand_by, 0, 2);
    tcase_add_test(tc, test_ends_library_exit_explained);
    tcase_add_loop_test(tc, test_ends_eventfd_closed, 0, 6);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(ends_suite());
}
