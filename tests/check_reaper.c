/* check_reaper.c: host programs that reap children themselves. A worker
 * reaped by someone else (an application's waitpid(-1) reaper, SIGCHLD set
 * to SIG_IGN or SA_NOCLDWAIT) is reported as such, and its pid, once the
 * kernel gives it to another child of the application (made here with
 * clone3() and set_tid, which needs CAP_SYS_ADMIN or
 * CAP_CHECKPOINT_RESTORE), is never waited on, reaped nor signalled by
 * next() or close(): with a pidfd, and without one (the life lock and
 * /proc). Every case checks that no child, fd or mapping is left. */
#include "config.h"

#include <errno.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "testproc.h"

#define PAGE 4096
/* An impostor lives this long unless told to go: far longer than the hang
 * bound, so that waiting on it cannot pass for success. */
#define IMPOSTOR_MS 20000
#define HANG_BOUND_MS 5000
#define IMPOSTOR_STATUS 42
#define WORKER_STATUS 3

/* Who reaps the application's children. */
enum reaper { R_WAITPID, R_SIG_IGN, R_NOCLDWAIT };
/* The child that gets the worker's pid afterwards. */
enum impostor { I_NONE, I_EXITED, I_LIVES };
/* What the application calls on the handle then. */
enum op { OP_NEXT, OP_CLOSE };

struct reaper_case {
    enum reaper reaper;
    enum impostor impostor;
    enum op op;
};

/* The page the impostor and the test share. */
struct impostor_page {
    _Atomic int go;   /* the test tells a living impostor to exit */
    _Atomic int done; /* it exited by itself, not by a signal */
};

/* Generator: two items, then the worker exits with WORKER_STATUS. */
static int gen_two_then_exit(subiter_gen *g, void *arg)
{
    int r = tu_yield_count(g, 2);

    (void)arg;
    if (r != 0) {
        return r;
    }
    _exit(WORKER_STATUS);
}

static void set_reaper(enum reaper r)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = r == R_SIG_IGN ? SIG_IGN : SIG_DFL;
    sa.sa_flags = r == R_NOCLDWAIT ? SA_NOCLDWAIT : 0;
    ck_assert_int_eq(sigaction(SIGCHLD, &sa, NULL), 0);
}

/* A child of ours whose pid is `pid` (free again), or -errno. */
static pid_t clone_with_pid(pid_t pid)
{
    struct clone_args a;
    pid_t tid[1] = {pid};
    long r;

    memset(&a, 0, sizeof a);
    a.exit_signal = SIGCHLD;
    a.set_tid = (uint64_t)(uintptr_t)tid;
    a.set_tid_size = 1;
    fflush(NULL);
    r = syscall(SYS_clone3, &a, sizeof a);
    return r < 0 ? -errno : (pid_t)r;
}

/* The application's child under the worker's old pid. */
static pid_t impostor_new(pid_t pid, enum impostor how,
                          struct impostor_page *pg)
{
    int64_t end = tu_now_ms() + WAIT_MS;
    pid_t c;

    /* The kernel frees the number a moment after the task is gone. */
    while ((c = clone_with_pid(pid)) == -EEXIST && tu_now_ms() < end) {
        tu_sleep_ms(1);
    }
    ck_assert_msg(c >= 0, "clone3 with set_tid %d: %s", (int)pid, strerror(-c));
    if (c == 0) {
        if (how == I_EXITED) {
            _exit(IMPOSTOR_STATUS);
        }
        end = tu_now_ms() + IMPOSTOR_MS;
        while (!atomic_load(&pg->go) && tu_now_ms() < end) {
            tu_sleep_ms(1);
        }
        atomic_store(&pg->done, 1);
        _exit(IMPOSTOR_STATUS);
    }
    ck_assert_int_eq(c, pid);
    return c;
}

/* Wait until the worker is reaped by the application (R_WAITPID: the test
 * is that reaper) or by the kernel. */
static void reaped_by_application(pid_t pid, enum reaper r)
{
    int64_t end = tu_now_ms() + WAIT_MS;
    int status;

    if (r == R_WAITPID) {
        ck_assert_int_eq(waitpid(-1, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), WORKER_STATUS);
        return;
    }
    while (kill(pid, 0) == 0 || errno != ESRCH) {
        ck_assert_msg(tu_now_ms() < end, "the kernel did not reap %d",
                      (int)pid);
        tu_sleep_ms(1);
    }
}

/* The impostor must have ended by itself, with its own status, seen by
 * the application (when it may wait for it). */
static void impostor_end(pid_t c, const struct reaper_case *k,
                         struct impostor_page *pg)
{
    int64_t end = tu_now_ms() + WAIT_MS;
    int status;

    atomic_store(&pg->go, 1);
    if (k->reaper == R_WAITPID) {
        ck_assert_int_eq(waitpid(c, &status, 0), c);
        ck_assert_msg(WIFEXITED(status), "impostor ended with wait status %#x",
                      (unsigned)status);
        ck_assert_int_eq(WEXITSTATUS(status), IMPOSTOR_STATUS);
    } else {
        while (kill(c, 0) == 0 || errno != ESRCH) {
            ck_assert(tu_now_ms() < end);
            tu_sleep_ms(1);
        }
    }
    if (k->impostor == I_LIVES) {
        ck_assert_msg(atomic_load(&pg->done), "the impostor was signalled");
    }
}

static void run_case(const struct reaper_case *k, bool pidfd)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(0, PROMPT_GRACE_MS);
    struct impostor_page *pg = tu_shared_new(PAGE);
    subiter_item item;
    subiter *it;
    pid_t pid, c = 0;
    siginfo_t si;
    int64_t t0;
    int r;

    tu_snapshot(&snap);
    set_reaper(k->reaper);
    subiter__proc_no_pidfd(!pidfd);
    ck_assert_int_eq(subiter_open(&it, gen_two_then_exit, NULL, &o), 0);
    pid = subiter_pid(it);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    reaped_by_application(pid, k->reaper);
    if (k->impostor != I_NONE) {
        c = impostor_new(pid, k->impostor, pg);
        if (k->impostor == I_EXITED) {
            /* A zombie whose status is the application's to take. */
            memset(&si, 0, sizeof si);
            ck_assert_int_eq(waitid(P_PID, (id_t)c, &si, WEXITED | WNOWAIT), 0);
        }
    }

    t0 = tu_now_ms();
    if (k->op == OP_NEXT) {
        tu_expect_items(it, 0, 2);
        ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECHILD);
        tproc_assert_errmsg_has(it, "someone else reaped it");
        ck_assert_ptr_null(strstr(subiter_errmsg(it), "status 42"));
        tproc_assert_dead_handle(it);
    }
    r = subiter_close(it);
    ck_assert_msg(tu_now_ms() - t0 < HANG_BOUND_MS,
                  "next()/close() waited %lld ms",
                  (long long)(tu_now_ms() - t0));
    ck_assert_int_eq(r, SUBITER_ECHILD);
    if (c > 0) {
        impostor_end(c, k, pg);
    }
    set_reaper(R_WAITPID);
    subiter__proc_no_pidfd(false);
    tu_shared_free(pg, PAGE);
    tu_assert_clean(&snap);
}

/* Reaped by someone else, pid not reused: the errmsg says who took the
 * status. _i: the reaper, then pidfd or not. */
static const struct reaper_case reaped[] = {
    {R_WAITPID, I_NONE, OP_NEXT},
    {R_SIG_IGN, I_NONE, OP_NEXT},
    {R_NOCLDWAIT, I_NONE, OP_NEXT},
    {R_WAITPID, I_NONE, OP_CLOSE},
};
#define N_REAPED (sizeof reaped / sizeof reaped[0])

START_TEST(test_reaper_status_taken)
{
    run_case(&reaped[_i / 2], _i % 2 == 0);
}
END_TEST

/* The pid reused for a child of the application that exited with 42 (a
 * zombie the application will reap) or lives. */
static const struct reaper_case recycled[] = {
    {R_WAITPID, I_EXITED, OP_NEXT},  {R_WAITPID, I_EXITED, OP_CLOSE},
    {R_WAITPID, I_LIVES, OP_NEXT},   {R_WAITPID, I_LIVES, OP_CLOSE},
    {R_SIG_IGN, I_LIVES, OP_NEXT},   {R_SIG_IGN, I_LIVES, OP_CLOSE},
    {R_NOCLDWAIT, I_LIVES, OP_NEXT}, {R_NOCLDWAIT, I_LIVES, OP_CLOSE},
};
#define N_RECYCLED (sizeof recycled / sizeof recycled[0])

START_TEST(test_reaper_pid_recycled)
{
    run_case(&recycled[_i / 2], _i % 2 == 0);
}
END_TEST

/* Can this process give a child a pid of its choosing? */
static bool can_set_tid(void)
{
    pid_t a, b;
    int status;

    fflush(NULL);
    a = fork();
    if (a == 0) {
        _exit(0);
    }
    if (a < 0 || waitpid(a, &status, 0) != a) {
        return false;
    }
    b = clone_with_pid(a);
    if (b == 0) {
        _exit(0);
    }
    if (b < 0) {
        return false;
    }
    (void)waitpid(b, &status, 0);
    return b == a;
}

static Suite *reaper_suite(bool recycle)
{
    Suite *s = suite_create("reaper");
    TCase *tc = tcase_create("status taken");

    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_reaper_status_taken, 0, 2 * N_REAPED);
    suite_add_tcase(s, tc);
    if (recycle) {
        tc = tcase_create("pid recycled");
        tcase_set_timeout(tc, 60);
        tcase_add_loop_test(tc, test_reaper_pid_recycled, 0, 2 * N_RECYCLED);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    bool recycle = can_set_tid();
    int r = tu_run(reaper_suite(recycle));

    if (r == EXIT_SUCCESS && !recycle) {
        printf("SKIP: clone3() with set_tid is not available here (it "
               "needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE, and valgrind "
               "lacks clone3): the recycled-pid cases did not run\n");
        return 77;
    }
    return r;
}
