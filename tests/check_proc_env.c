/* check_proc_env.c: the worker among the application's processes,
 * threads and signals: many handles and threads at once, it never
 * outlives its parent, the application's own children and SIGCHLD, fds
 * and /dev/shm, EINTR everywhere and no signal handler of our own. Every
 * case checks that no fd, mapping or child is left. */
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

/* ---- generators (they run in the worker: no ck_*) ---- */

/* Yields base + i for i < 50, base = 1000 * arg. */
TU_EXPORT(int gen_based(subiter_gen *g, void *arg))
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
TU_EXPORT(int gen_late_crash(subiter_gen *g, void *arg))
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

/* ---- many handles, threads ---- */

#define NHANDLES 16

START_TEST(test_proc_env_many_handles)
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

START_TEST(test_proc_env_threads)
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
static _Noreturn void middle_main(struct tproc_shared *sh, int mode)
{
    subiter_opts o = tu_opts(0);
    subiter *it;
    subiter_iter_fn fn =
        mode == PD_FULL_RING ? tproc_gen_forever : tproc_gen_pause;

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

/* Under FORKSERVER the middle started a zygote of its own (a fork child of
 * the application gets its own), which made a spare worker: both follow it
 * by their parent-death signal and come to us, the subreaper: reap them,
 * and so see them die. */
static void reap_middle_zygote(void)
{
    int64_t t0 = tproc_now_us();
    int reaped = 0;

    while (tproc_now_us() - t0 < (int64_t)SLACK_MS * 1000) {
        pid_t r = waitpid(-1, NULL, WNOHANG);

        if (r > 0) {
            reaped++;
        } else if (reaped > 0 && tu_other_child() == 0) {
            return;
        } else {
            tu_sleep_ms(1);
        }
    }
    ck_abort_msg("the middle's zygote or spare outlived it by %d ms", SLACK_MS);
}

static void check_parent_death(int mode)
{
    struct tu_snapshot snap;
    struct tproc_shared *sh;
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

    t0 = tproc_now_us();
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
        dt = tproc_now_us() - t0;
        close((int)fd);
        r = n == 1 ? waitpid(worker, &status, 0) : 0;
    } else {
        while ((r = waitpid(worker, &status, WNOHANG)) == 0 &&
               tproc_now_us() - t0 < (int64_t)SLACK_MS * 1000) {
            tu_sleep_ms(1);
        }
        dt = tproc_now_us() - t0;
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
    if (tu_start_method() == SUBITER_FORKSERVER) {
        reap_middle_zygote();
    }
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
    tu_shared_free(sh, sizeof *sh);
    tu_assert_clean(&snap);
}

START_TEST(test_proc_env_parent_death_stand_by)
{
    check_parent_death(PD_STAND_BY);
}
END_TEST

START_TEST(test_proc_env_parent_death_iterating)
{
    check_parent_death(PD_ITERATING);
}
END_TEST

START_TEST(test_proc_env_parent_death_full_ring)
{
    check_parent_death(PD_FULL_RING);
}
END_TEST

/* ---- the application's own children and SIGCHLD ---- */

START_TEST(test_proc_env_sigchld_ignored)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(0, PROMPT_GRACE_MS);
    struct tproc_plan p = {3, HOW_SEGV};
    subiter *it;
    subiter_item item;
    long i;
    int64_t t0;
    int r;

    tu_snapshot(&snap);
    ck_assert(signal(SIGCHLD, SIG_IGN) != SIG_ERR);
    ck_assert_int_eq(subiter_open(&it, tproc_gen_plan, NULL, &o), 0);
    ck_assert_int_eq(subiter_start(it, &p, sizeof p), 0);
    tu_expect_items(it, 0, 3);
    t0 = tu_now_ms();
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECHILD);
    ck_assert_int_lt(tu_now_ms() - t0, SLACK_MS);
    tproc_assert_errmsg_has(it, "unavailable");
    tproc_assert_dead_handle(it);
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

START_TEST(test_proc_env_foreign_child_untouched)
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
    tproc_assert_errmsg_has(it, "SIGSEGV");
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

START_TEST(test_proc_env_fds_cloexec_no_shm)
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
static struct tproc_pace pace_trickle = {40, 2};

/*
 * A SIGALRM every millisecond, with a handler installed without
 * SA_RESTART: every wait of the library is interrupted again and again,
 * and must simply go on (open, next, stop, close).
 */
START_TEST(test_proc_env_eintr_storm)
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

    o.arg_len =
        sizeof pace_trickle; /* a copy: SPAWN maps no static where ours is */
    ck_assert_int_eq(subiter_open(&it, tproc_gen_paced, &pace_trickle, &o), 0);
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
START_TEST(test_proc_env_no_signal_handlers)
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
    o.arg_len =
        sizeof pace_trickle; /* a copy: SPAWN maps no static where ours is */
    ck_assert_int_eq(subiter_open(&it, tproc_gen_paced, &pace_trickle, &o), 0);
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

static Suite *proc_env_suite(void)
{
    Suite *s = suite_create("proc_env");
    TCase *many = tcase_create("many");
    TCase *env = tcase_create("environment");

    tcase_set_timeout(many, 30);
    tcase_add_test(many, test_proc_env_many_handles);
    tcase_add_test(many, test_proc_env_threads);
    suite_add_tcase(s, many);

    tcase_set_timeout(env, 30);
    tcase_add_test(env, test_proc_env_parent_death_stand_by);
    tcase_add_test(env, test_proc_env_parent_death_iterating);
    tcase_add_test(env, test_proc_env_parent_death_full_ring);
    tcase_add_test(env, test_proc_env_sigchld_ignored);
    tcase_add_test(env, test_proc_env_foreign_child_untouched);
    tcase_add_test(env, test_proc_env_fds_cloexec_no_shm);
    tcase_add_test(env, test_proc_env_eintr_storm);
    tcase_add_test(env, test_proc_env_no_signal_handlers);
    suite_add_tcase(s, env);
    return s;
}

int main(void)
{
    return tu_run(proc_env_suite());
}
