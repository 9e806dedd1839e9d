/* check_start.c: the start methods. arg as bytes for each of them, the
 * errors of SUBITER_FORKSERVER and SUBITER_SPAWN (arg without arg_len, a
 * function that is not exported), the zygote (idempotent, thread-safe,
 * replaced when it dies, its workers children of the test process), a
 * pool on each method, and a threaded host whose threads hold malloc's
 * and the initializer's locks while workers start. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "start.h"
#include "testutil.h"
#include "worker_impl.h"

/* Callbacks a spawned worker finds by name: exported, so not static. */
int st_gen_arg(subiter_gen *g, void *arg);
int st_gen_ppid(subiter_gen *g, void *arg);
int st_init_locked(subiter_gen *g, void *arg);
int st_gen_shard(subiter_gen *g, void *arg);
int st_gen_signals(subiter_gen *g, void *arg);
int st_init_running(subiter_gen *g, void *arg);

static const int methods[] = {SUBITER_FORK, SUBITER_FORKSERVER, SUBITER_SPAWN};

/* Yields the arg bytes back (arg is a NUL-terminated string). */
int st_gen_arg(subiter_gen *g, void *arg)
{
    char *s = arg;

    if (s == NULL) {
        return subiter_yield(g, "(null)", 6);
    }
    /* The copy is the worker's own: writing to it is allowed. */
    s[0] = (char)(s[0] == 'h' ? 'H' : s[0]);
    return subiter_yield(g, s, strlen(s));
}

/* Yields the worker's parent's pid. */
int st_gen_ppid(subiter_gen *g, void *arg)
{
    pid_t p = getppid();

    (void)arg;
    return subiter_yield(g, &p, sizeof p);
}

/* Yields the signals, 1 to NSIG - 1, that have a handler or are ignored
 * or blocked in the worker, as a NUL-terminated list "10 12 ". */
int st_gen_signals(subiter_gen *g, void *arg)
{
    char list[512] = "";
    size_t n = 0;
    sigset_t mask;
    int sig;

    (void)arg;
    if (sigprocmask(SIG_SETMASK, NULL, &mask) != 0) {
        return subiter_fail(g, "sigprocmask: %s", strerror(errno));
    }
    for (sig = 1; sig < NSIG; sig++) {
        struct sigaction sa;

        if (sigaction(sig, NULL, &sa) == 0 &&
            (sa.sa_handler != SIG_DFL || sigismember(&mask, sig) == 1)) {
            n += (size_t)snprintf(list + n, sizeof list - n, "%d ", sig);
        }
    }
    return subiter_yield(g, list, strlen(list) + 1);
}

static pthread_mutex_t host_lock = PTHREAD_MUTEX_INITIALIZER;

/* Takes the lock a host thread holds most of the time, and mallocs. */
int st_init_locked(subiter_gen *g, void *arg)
{
    void *p;

    (void)arg;
    pthread_mutex_lock(&host_lock);
    p = malloc(100);
    pthread_mutex_unlock(&host_lock);
    if (p == NULL) {
        return subiter_fail(g, "malloc failed");
    }
    free(p);
    return 0;
}

/* One item: the shard number. */
int st_gen_shard(subiter_gen *g, void *arg)
{
    unsigned id = subiter_worker_id(g);

    (void)arg;
    return subiter_yield(g, &id, sizeof id);
}

/* Fails unless the worker's running word names a CPU: a worker says
 * where it runs as soon as it has mapped the region, before any code of
 * the application's, for the parent's spin while it waits for the first
 * status (wait.h: subiter__say_running()). The parent left it "not
 * known". */
int st_init_running(subiter_gen *g, void *arg)
{
    uint32_t run = atomic_load(&g->shm->child_running);

    (void)arg;
    if (run == 0 || run == SUBITER__RUNNING_ANY) {
        return subiter_fail(g, "running word %u", (unsigned)run);
    }
    return 0;
}

static int gen_static(subiter_gen *g, void *arg)
{
    (void)arg;
    return subiter_yield(g, "x", 1);
}

static int init_static(subiter_gen *g, void *arg)
{
    (void)g;
    (void)arg;
    return 0;
}

/* clone3() exists (valgrind answers ENOSYS, where a FORKSERVER open must
 * then fail and say why). Probed with bad arguments: EINVAL, not ENOSYS. */
static bool have_clone3(void)
{
    return syscall(SYS_clone3, NULL, 0) < 0 && errno != ENOSYS;
}

/* Without clone3(), check that a FORKSERVER open says so, and skip the
 * rest of the case: true then. */
static bool forkserver_missing(int method)
{
    subiter_opts o = tu_opts(0);
    subiter *it;

    if (method != SUBITER_FORKSERVER || have_clone3()) {
        return false;
    }
    o.start_method = SUBITER_FORKSERVER;
    ck_assert_int_eq(subiter_open(&it, st_gen_ppid, NULL, &o), -ENOSYS);
    ck_assert_ptr_nonnull(strstr(subiter_errmsg(it), "clone3"));
    ck_assert_int_eq(subiter_close(it), 0);
    return true;
}

/* Ready to open workers by `method`: the zygote started for
 * SUBITER_FORKSERVER, and *snap taken after it (the zygote and its spare
 * stay). False without clone3(), once forkserver_missing() has checked
 * what an open says then. */
static bool method_ready(int method, struct tu_snapshot *snap)
{
    if (forkserver_missing(method)) {
        return false;
    }
    if (method == SUBITER_FORKSERVER) {
        ck_assert_int_eq(subiter_forkserver_start(), 0);
    }
    tu_snapshot(snap);
    return true;
}

static subiter_opts method_opts(int method)
{
    subiter_opts o = tu_opts_grace(20000, TU_LONG_GRACE_MS);

    /* Whatever SUBITER_TEST_START_METHOD says: these cases test arg. */
    subiter__handoff_raw_arg(false);
    o.start_method = method;
    return o;
}

/* One iteration of a one-item generator; the item is copied to buf. */
static size_t one_item(subiter *it, void *buf, size_t cap)
{
    subiter_item item;
    size_t n;

    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_int_eq(subiter_next(it, &item), 1);
    n = item.len;
    ck_assert_uint_le(n, cap);
    memcpy(buf, item.data, n);
    ck_assert_int_eq(subiter_next(it, &item), 0);
    return n;
}

/* The handle's worker (st_gen_ppid), whatever made it, is a child of
 * this process: its one item is its parent's pid. */
static void expect_our_child(subiter *it)
{
    pid_t ppid;

    ck_assert_uint_eq(one_item(it, &ppid, sizeof ppid), sizeof ppid);
    ck_assert_int_eq(ppid, getpid());
}

/* arg_len copies the bytes into the worker, for every method; the
 * caller's bytes are untouched. */
START_TEST(test_start_arg_bytes)
{
    int method = methods[_i];
    struct tu_snapshot snap;
    subiter_opts o = method_opts(method);
    char arg[] = "hello";
    char got[16];
    subiter *it;
    size_t n;

    if (!method_ready(method, &snap)) {
        return;
    }
    o.arg_len = sizeof arg;
    ck_assert_int_eq(subiter_open(&it, st_gen_arg, arg, &o), 0);
    n = one_item(it, got, sizeof got);
    ck_assert_uint_eq(n, 5);
    ck_assert(memcmp(got, "Hello", 5) == 0);
    n = one_item(it, got, sizeof got);
    ck_assert(memcmp(got, "Hello", 5) == 0);
    ck_assert_str_eq(arg, "hello");
    ck_assert_int_eq(subiter_close(it), 0);
    /* No arg at all is fine for every method. */
    ck_assert_int_eq(subiter_open(&it, st_gen_arg, NULL, &o), 0);
    n = one_item(it, got, sizeof got);
    ck_assert(n == 6 && memcmp(got, "(null)", 6) == 0);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

/* An open's start, for each method: its wait for the worker's first
 * status is a start's (subiter__start_wait(): the forkserver's may spin
 * longer), the worker has said where it runs before its initializer
 * (st_init_running()), and once it has started the handle's waits are a
 * stream's. */
START_TEST(test_start_first_status_window)
{
    int method = methods[_i];
    struct tu_snapshot snap;
    subiter_opts o = method_opts(method);
    int64_t start_max = method == SUBITER_FORKSERVER
                            ? SUBITER__SPIN_START_MAX_NS
                            : SUBITER__SPIN_MAX_NS;
    struct subiter__wait w;
    char got[16];
    subiter *it;

    if (!method_ready(method, &snap)) {
        return;
    }
    o.init = st_init_running;
    ck_assert_int_eq(subiter__open_async(&it, st_gen_arg, NULL, &o, NULL), 0);
    subiter__status_wait(it, &w);
    ck_assert_int_eq(w.max, start_max);
    ck_assert(w.quick);
    ck_assert_int_eq(subiter__init_wait(it), 0);
    subiter__status_wait(it, &w);
    ck_assert_int_eq(w.max, SUBITER__SPIN_MAX_NS);
    ck_assert_uint_eq(one_item(it, got, sizeof got), 6);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

/* FORKSERVER and SPAWN cannot share a pointer: arg without arg_len is
 * -EINVAL, and errmsg names arg_len. */
START_TEST(test_start_arg_needs_len)
{
    int method = methods[1 + _i];
    subiter_opts o = method_opts(method);
    int x = 1;
    subiter *it;

    ck_assert_int_eq(subiter_open(&it, st_gen_arg, &x, &o), -EINVAL);
    ck_assert_ptr_nonnull(strstr(subiter_errmsg(it), "arg_len"));
    ck_assert_int_eq(subiter_pid(it), 0);
    ck_assert_int_eq(subiter_close(it), 0);
}
END_TEST

/* SPAWN finds functions by name: a static generator or initializer is
 * -EINVAL, and errmsg says to export it. */
START_TEST(test_start_spawn_needs_export)
{
    subiter_opts o = method_opts(SUBITER_SPAWN);
    subiter *it;

    ck_assert_int_eq(subiter_open(&it, gen_static, NULL, &o), -EINVAL);
    ck_assert_ptr_nonnull(strstr(subiter_errmsg(it), "generator"));
    ck_assert_ptr_nonnull(strstr(subiter_errmsg(it), "non-static"));
    ck_assert_ptr_nonnull(strstr(subiter_errmsg(it), "-rdynamic"));
    ck_assert_int_eq(subiter_close(it), 0);
    o.init = init_static;
    ck_assert_int_eq(subiter_open(&it, st_gen_ppid, NULL, &o), -EINVAL);
    ck_assert_ptr_nonnull(strstr(subiter_errmsg(it), "initializer"));
    ck_assert_int_eq(subiter_close(it), 0);
    ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
}
END_TEST

/* Every method's worker is a child of this process (the zygote's are made
 * with CLONE_PARENT). */
START_TEST(test_start_worker_is_our_child)
{
    int method = methods[_i];
    struct tu_snapshot snap;
    subiter_opts o = method_opts(method);
    subiter *it;

    if (!method_ready(method, &snap)) {
        return;
    }
    ck_assert_int_eq(subiter_open(&it, st_gen_ppid, NULL, &o), 0);
    expect_our_child(it);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

static void on_usr1(int sig)
{
    (void)sig;
}

/*
 * Every method's worker starts with no handler of the application's, no
 * signal it ignores and none blocked (forked, the zygote's clone, and
 * exec'd workers each get there their own way). The library's own: the
 * crash signals, the hang-report signal, and SIGINT and SIGQUIT ignored.
 */
START_TEST(test_start_signals_default)
{
    int method = methods[_i];
    subiter_opts o = method_opts(method);
    struct sigaction sa, old_usr1, old_usr2, old_pipe;
    sigset_t block, old_mask;
    char want[128], got[512];
    subiter_item item;
    subiter *it;

    if (forkserver_missing(method)) {
        return;
    }
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_usr1;
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, &old_usr1), 0);
    sa.sa_handler = SIG_IGN;
    ck_assert_int_eq(sigaction(SIGUSR2, &sa, &old_usr2), 0);
    ck_assert_int_eq(sigaction(SIGPIPE, &sa, &old_pipe), 0);
    sigemptyset(&block);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGTERM);
    ck_assert_int_eq(sigprocmask(SIG_BLOCK, &block, &old_mask), 0);

    ck_assert_int_eq(subiter_open(&it, st_gen_signals, NULL, &o), 0);
    memset(got, 0, sizeof got);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_msg(subiter_next(it, &item) == 1, "%s", subiter_errmsg(it));
    ck_assert_uint_lt(item.len, sizeof got);
    memcpy(got, item.data, item.len);
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_int_eq(subiter_close(it), 0);

    ck_assert_int_eq(sigprocmask(SIG_SETMASK, &old_mask, NULL), 0);
    ck_assert_int_eq(sigaction(SIGUSR1, &old_usr1, NULL), 0);
    ck_assert_int_eq(sigaction(SIGUSR2, &old_usr2, NULL), 0);
    ck_assert_int_eq(sigaction(SIGPIPE, &old_pipe, NULL), 0);
    /* In signal number order: SIGINT 2, SIGQUIT 3, SIGILL 4, SIGTRAP no,
     * SIGABRT 6, SIGBUS 7, SIGFPE 8, SIGSEGV 11, and SIGRTMIN+6. */
    snprintf(want, sizeof want, "%d %d %d %d %d %d %d %d ", SIGINT, SIGQUIT,
             SIGILL, SIGABRT, SIGBUS, SIGFPE, SIGSEGV, SIGRTMIN + 6);
    ck_assert_str_eq(got, want);
}
END_TEST

/* A hand-off variable that is not three fd numbers "h,m,e" (each at most
 * INT_MAX) makes the program exit SUBITER__EXIT_HANDOFF before main(). */
START_TEST(test_start_handoff_variable_malformed)
{
    static const char *const bad[] = {
        "", "1,2", "1,2,3x", "-1,2,3", "1,,3", "1,2,2147483648", " 1,2,3",
    };
    char self[4096];
    ssize_t n;
    int status;
    pid_t pid;

    /* The path, not the link: under valgrind the link is the tool's. */
    n = readlink("/proc/self/exe", self, sizeof self - 1);
    ck_assert_int_gt(n, 0);
    self[n] = '\0';
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char *argv[] = {self, NULL};

        setenv(SUBITER__SPAWN_ENV, bad[_i], 1);
        execv(self, argv);
        _exit(99);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) &&
                      WEXITSTATUS(status) == SUBITER__EXIT_HANDOFF,
                  "\"%s\": status 0x%x", bad[_i], status);
}
END_TEST

struct starter {
    pthread_t t;
    int r;
};

static void *start_zygote(void *arg)
{
    struct starter *s = arg;

    s->r = subiter_forkserver_start();
    return NULL;
}

/* Started from several threads at once, then again: one zygote. */
START_TEST(test_start_forkserver_once)
{
    struct starter s[4];
    pid_t z;
    int i;

    for (i = 0; i < 4; i++) {
        ck_assert_int_eq(pthread_create(&s[i].t, NULL, start_zygote, &s[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        ck_assert_int_eq(pthread_join(s[i].t, NULL), 0);
        ck_assert_int_eq(s[i].r, 0);
    }
    z = subiter__forkserver_pid();
    ck_assert_int_gt(z, 0);
    ck_assert_int_eq(subiter_forkserver_start(), 0);
    ck_assert_int_eq(subiter__forkserver_pid(), z);
}
END_TEST

/* Is `pid` a live child of this process? */
static bool live_child(pid_t pid)
{
    siginfo_t si;

    memset(&si, 0, sizeof si);
    return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           si.si_pid == 0;
}

/* The forkserver started and its spare, a live child of ours, after the
 * snapshot; 0 where it cannot run. */
static pid_t spare_of_new_zygote(struct tu_snapshot *snap)
{
    pid_t sp;

    if (forkserver_missing(SUBITER_FORKSERVER)) {
        return 0;
    }
    ck_assert_int_eq(subiter_forkserver_start(), 0);
    tu_snapshot(snap);
    sp = subiter__forkserver_spare();
    ck_assert_int_gt(sp, 0);
    ck_assert(live_child(sp));
    return sp;
}

/* The zygote's spare now: a live child of ours, and not `old`. */
static void expect_new_spare(pid_t old)
{
    pid_t next = subiter__forkserver_spare();

    ck_assert_int_gt(next, 0);
    ck_assert_int_ne(next, old);
    ck_assert(live_child(next));
}

/* The zygote keeps a worker made ahead, the application's child: an open
 * takes it, and the zygote makes the next one. */
START_TEST(test_start_forkserver_spare)
{
    subiter_opts o = method_opts(SUBITER_FORKSERVER);
    struct tu_snapshot snap;
    pid_t sp = spare_of_new_zygote(&snap);
    subiter *it;

    if (sp == 0) {
        return;
    }
    ck_assert_int_eq(subiter_open(&it, st_gen_ppid, NULL, &o), 0);
    ck_assert_int_eq(subiter_pid(it), sp);
    expect_our_child(it);
    expect_new_spare(sp);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_gone(sp);
    tu_assert_clean(&snap);
}
END_TEST

/* The signals `pid` ignores, from /proc (SigIgn: bit sig - 1). */
static unsigned long long ignored_signals(pid_t pid)
{
    return tu_proc_status(pid, "SigIgn", 16);
}

/* The terminal's Ctrl-C and Ctrl-\ reach the whole foreground group: the
 * zygote and its spare ignore them, as workers do, so that an
 * application that handles them keeps its forkserver. */
START_TEST(test_start_forkserver_ignores_terminal)
{
    unsigned long long want = (1ull << (SIGINT - 1)) | (1ull << (SIGQUIT - 1));

    if (forkserver_missing(SUBITER_FORKSERVER)) {
        return;
    }
    ck_assert_int_eq(subiter_forkserver_start(), 0);
    /* The spare first: the zygote tells of it once it is set up. */
    ck_assert_uint_eq(ignored_signals(subiter__forkserver_spare()) & want,
                      want);
    ck_assert_uint_eq(ignored_signals(subiter__forkserver_pid()) & want, want);
}
END_TEST

/* A spare that died unused is reaped, and the open it would have served
 * gets a worker of its own. */
START_TEST(test_start_forkserver_spare_killed)
{
    subiter_opts o = method_opts(SUBITER_FORKSERVER);
    struct tu_snapshot snap;
    pid_t sp = spare_of_new_zygote(&snap);
    subiter *it;

    if (sp == 0) {
        return;
    }
    ck_assert_int_eq(kill(sp, SIGKILL), 0);
    /* Dead (not reaped) before the open: one killed while the zygote hands
     * it a request is a worker that died at its start. */
    ck_assert_int_eq(
        waitid(P_PID, (id_t)sp, &(siginfo_t){0}, WEXITED | WNOWAIT), 0);
    ck_assert_int_eq(subiter_open(&it, st_gen_ppid, NULL, &o), 0);
    ck_assert_int_ne(subiter_pid(it), sp);
    expect_our_child(it);
    ck_assert_int_eq(subiter_close(it), 0);
    ck_assert(live_child(subiter__forkserver_spare()));
    tu_assert_gone(sp);
    tu_assert_clean(&snap);
}
END_TEST

/* An open that takes the spare asks for the next once its worker has
 * started, not while it starts (the clone would compete with it): by its
 * first status, or by its close when that comes first. */
START_TEST(test_start_forkserver_next_spare_after_start)
{
    subiter_opts o = method_opts(SUBITER_FORKSERVER);
    struct tu_snapshot snap;
    pid_t sp = spare_of_new_zygote(&snap);
    subiter *it;

    if (sp == 0) {
        return;
    }
    /* Opened without waiting for its first status, then closed. */
    ck_assert_int_eq(subiter__open_async(&it, st_gen_ppid, NULL, &o, NULL), 0);
    ck_assert_int_eq(subiter_pid(it), sp);
    ck_assert_int_eq(subiter_close(it), 0);
    expect_new_spare(sp);
    tu_assert_gone(sp);
    tu_assert_clean(&snap);
}
END_TEST

/* A spare whose fds do not reach the application (it is out of
 * descriptors) is not left as a zombie: it exits, with no one at the other
 * end of its socket, and is reaped; the next open gets a worker. */
START_TEST(test_start_forkserver_spare_fds_lost)
{
    subiter_opts o = method_opts(SUBITER_FORKSERVER);
    struct tu_snapshot snap;
    struct rlimit old, low;
    pid_t sp = spare_of_new_zygote(&snap), next;
    subiter *it;
    int free_fd;

    if (sp == 0) {
        return;
    }
    /* Take the spare: the zygote makes the next one and sends its fds. */
    ck_assert_int_eq(subiter_open(&it, st_gen_ppid, NULL, &o), 0);
    ck_assert_int_eq(subiter_pid(it), sp);
    ck_assert_int_eq(subiter_close(it), 0);
    /* No descriptor above the lowest free one (the limit is on numbers). */
    free_fd = dup(0);
    ck_assert_int_ge(free_fd, 0);
    ck_assert_int_eq(close(free_fd), 0);
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = (rlim_t)free_fd;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    next = subiter__forkserver_spare();
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    ck_assert_int_eq(next, 0);
    ck_assert_int_eq(tu_other_child(), 0);
    ck_assert_int_eq(subiter_open(&it, st_gen_ppid, NULL, &o), 0);
    expect_our_child(it);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

/* A zygote that died is replaced by the open that finds it dead: the
 * first open after the kill takes the spare it left (the application
 * holds the spare's end of the hand-off, not the zygote), the next one
 * needs a zygote for its worker. */
START_TEST(test_start_forkserver_restarts)
{
    subiter_opts o = method_opts(SUBITER_FORKSERVER);
    pid_t z, sp;
    subiter *it, *it2;

    if (forkserver_missing(SUBITER_FORKSERVER)) {
        return;
    }
    ck_assert_int_eq(subiter_forkserver_start(), 0);
    z = subiter__forkserver_pid();
    sp = subiter__forkserver_spare();
    ck_assert_int_gt(sp, 0);
    ck_assert_int_eq(kill(z, SIGKILL), 0);
    ck_assert_int_eq(subiter_open(&it, st_gen_ppid, NULL, &o), 0);
    ck_assert_int_eq(subiter_pid(it), sp);
    ck_assert_int_eq(subiter_open(&it2, st_gen_ppid, NULL, &o), 0);
    expect_our_child(it);
    expect_our_child(it2);
    ck_assert_int_ne(subiter__forkserver_pid(), z);
    ck_assert_int_gt(subiter__forkserver_pid(), 0);
    ck_assert_int_eq(subiter_close(it), 0);
    ck_assert_int_eq(subiter_close(it2), 0);
    tu_assert_gone(z);
    tu_assert_gone(sp);
}
END_TEST

/* A pool takes its workers' start method. */
START_TEST(test_start_pool)
{
    int method = methods[_i];
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;
    subiter_opts o = method_opts(method);
    subiter_pool_item item;
    struct tu_snapshot snap;
    subiter_pool *p;
    unsigned seen = 0, id;
    int r;

    if (!method_ready(method, &snap)) {
        return;
    }
    po.workers = 3;
    po.worker = &o;
    ck_assert_int_eq(subiter_pool_open(&p, st_gen_shard, NULL, &po), 0);
    ck_assert_int_eq(subiter_pool_start(p, NULL, 0), 0);
    while ((r = subiter_pool_next(p, &item)) == 1) {
        ck_assert_uint_eq(item.len, sizeof id);
        memcpy(&id, item.data, sizeof id);
        ck_assert_uint_lt(id, 3);
        seen |= 1u << id;
    }
    ck_assert_int_eq(r, 0);
    ck_assert_uint_eq(seen, 7);
    ck_assert_int_eq(subiter_pool_close(p), 0);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- a threaded host ---- */

static _Atomic int host_stop;

static void *churn(void *arg)
{
    (void)arg;
    while (!atomic_load(&host_stop)) {
        void *p = malloc(64 + (size_t)(rand() % 4096));

        free(p);
    }
    return NULL;
}

static void *hold_lock(void *arg)
{
    (void)arg;
    while (!atomic_load(&host_stop)) {
        pthread_mutex_lock(&host_lock);
        tu_sleep_ms(1);
        pthread_mutex_unlock(&host_lock);
    }
    return NULL;
}

/* Four threads malloc and free, a fifth holds the lock the initializer
 * takes: 50 opens under FORKSERVER (zygote started before the threads)
 * and 50 under SPAWN all succeed. */
START_TEST(test_start_threaded_host)
{
    int method = methods[1 + _i];
    subiter_opts o = method_opts(method);
    struct tu_snapshot snap;
    pthread_t t[5];
    int i;

    if (!method_ready(method, &snap)) {
        return;
    }
    o.init = st_init_locked;
    atomic_store(&host_stop, 0);
    for (i = 0; i < 4; i++) {
        ck_assert_int_eq(pthread_create(&t[i], NULL, churn, NULL), 0);
    }
    ck_assert_int_eq(pthread_create(&t[4], NULL, hold_lock, NULL), 0);
    for (i = 0; i < 50; i++) {
        subiter *it;
        pid_t ppid;
        int r = subiter_open(&it, st_gen_ppid, NULL, &o);

        ck_assert_msg(r == 0, "open %d: %s", i, subiter_errmsg(it));
        ck_assert_uint_eq(one_item(it, &ppid, sizeof ppid), sizeof ppid);
        ck_assert_int_eq(subiter_close(it), 0);
    }
    atomic_store(&host_stop, 1);
    for (i = 0; i < 5; i++) {
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    }
    tu_assert_clean(&snap);
}
END_TEST

static Suite *start_suite(void)
{
    Suite *s = suite_create("start");
    TCase *tc = tcase_create("start");
    TCase *th = tcase_create("threaded_host");

    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_start_arg_bytes, 0, 3);
    tcase_add_loop_test(tc, test_start_arg_needs_len, 0, 2);
    tcase_add_loop_test(tc, test_start_first_status_window, 0, 3);
    tcase_add_test(tc, test_start_spawn_needs_export);
    tcase_add_loop_test(tc, test_start_worker_is_our_child, 0, 3);
    tcase_add_loop_test(tc, test_start_signals_default, 0, 3);
    tcase_add_loop_test(tc, test_start_handoff_variable_malformed, 0, 7);
    tcase_add_test(tc, test_start_forkserver_once);
    tcase_add_test(tc, test_start_forkserver_spare);
    tcase_add_test(tc, test_start_forkserver_spare_killed);
    tcase_add_test(tc, test_start_forkserver_spare_fds_lost);
    tcase_add_test(tc, test_start_forkserver_next_spare_after_start);
    tcase_add_test(tc, test_start_forkserver_ignores_terminal);
    tcase_add_test(tc, test_start_forkserver_restarts);
    tcase_add_loop_test(tc, test_start_pool, 0, 3);
    suite_add_tcase(s, tc);
    tcase_set_timeout(th, 120);
    tcase_add_loop_test(th, test_start_threaded_host, 0, 2);
    suite_add_tcase(s, th);
    return s;
}

int main(void)
{
    return tu_run(start_suite());
}
