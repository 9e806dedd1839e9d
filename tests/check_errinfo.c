/* check_errinfo.c: what the parent says about a failed worker: the
 * structured subiter_get_errinfo(), the wording of errmsg, and the OOM-kill
 * attribution, tested against fake counter files (never real memory). */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

static char counter_path[64];

static void write_counter(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
}

static void make_counter(const char *text)
{
    int fd;

    snprintf(counter_path, sizeof counter_path, "/tmp/subiter-oomXXXXXX");
    fd = mkstemp(counter_path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    write_counter(counter_path, text);
}

enum death { OOM_KILL, PLAIN_KILL, OOM_SEGV, EXIT_3, FAIL_EIO };

/* arg: what the worker does after 3 items, and the counter it bumps. It
 * is passed as bytes (arg_len), so the worker has it under every start
 * method, not only in a fork of this process. */
struct die_arg {
    enum death how;
    char counter[sizeof counter_path];
};

TU_EXPORT(int gen_die(subiter_gen *g, void *arg))
{
    const struct die_arg *a = arg;
    int r;

    if ((r = tu_yield_count(g, 3)) != 0) {
        return r;
    }
    switch (a->how) {
    case OOM_KILL:
        /* As the kernel would: the cgroup's counter goes up, SIGKILL. */
        write_counter(a->counter,
                      "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n");
        raise(SIGKILL);
        break;
    case PLAIN_KILL:
        raise(SIGKILL);
        break;
    case OOM_SEGV:
        write_counter(a->counter,
                      "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n");
        raise(SIGSEGV);
        break;
    case EXIT_3:
        _exit(3);
    case FAIL_EIO:
        return -EIO;
    }
    return 0;
}

/* Run one iteration of gen_die to its end; returns next's outcome. */
static int run(enum death how, subiter **out)
{
    subiter_opts o = tu_opts(0);
    struct die_arg a = {how, ""};
    subiter_item item;
    int r;

    snprintf(a.counter, sizeof a.counter, "%s", counter_path);
    o.arg_len = sizeof a;
    ck_assert_int_eq(subiter_open(out, gen_die, &a, &o), 0);
    ck_assert_int_eq(subiter_start(*out, NULL, 0), 0);
    while ((r = subiter_next(*out, &item)) == 1) {
    }
    return r;
}

/* With the OOM counter read from a file holding `counter` (NULL: from a
 * path that does not exist), run gen_die(how) to a SUBITER_ECHILD. */
static subiter *run_oom(const char *counter, enum death how)
{
    subiter *it;

    if (counter != NULL) {
        make_counter(counter);
        subiter__oom_override(counter_path);
    } else {
        counter_path[0] = '\0';
        subiter__oom_override("/nonexistent/memory.events");
    }
    ck_assert_int_eq(run(how, &it), SUBITER_ECHILD);
    return it;
}

/* Close a handle of run_oom() and undo the counter. */
static void end_oom(subiter *it)
{
    (void)subiter_close(it);
    subiter__oom_override(NULL);
    if (counter_path[0] != '\0') {
        unlink(counter_path);
    }
}

START_TEST(test_errinfo_oom_kill_is_named)
{
    struct tu_snapshot snap;
    subiter_errinfo ei = SUBITER_ERRINFO_INIT;
    subiter *it;

    tu_snapshot(&snap);
    it = run_oom("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", OOM_KILL);
    ck_assert_ptr_nonnull(strstr(subiter_errmsg(it), "OOM killer"));
    ck_assert_ptr_nonnull(strstr(subiter_errmsg(it), "signal 9 (SIGKILL)"));
    ck_assert_int_eq(subiter_get_errinfo(it, &ei), 0);
    ck_assert_int_eq(ei.oom_suspected, 1);
    ck_assert_int_eq(ei.term_signal, SIGKILL);
    ck_assert_int_eq(ei.code, SUBITER_ECHILD);
    ck_assert_int_eq(ei.pid, subiter_pid(it));
    ck_assert_uint_eq(ei.iteration, 1);
    ck_assert_uint_eq(ei.items, 3);
    end_oom(it);
    tu_assert_clean(&snap);
}
END_TEST

/* cgroup v2's memory.events has an "oom" line too: only oom_kill counts. */
START_TEST(test_errinfo_oom_v2_format)
{
    struct tu_snapshot snap;
    subiter_errinfo ei = SUBITER_ERRINFO_INIT;
    subiter *it;

    tu_snapshot(&snap);
    it = run_oom("low 0\nhigh 0\nmax 2\noom 9\noom_kill 3\n", OOM_KILL);
    ck_assert_int_eq(subiter_get_errinfo(it, &ei), 0);
    ck_assert_int_eq(ei.oom_suspected, 1);
    end_oom(it);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_errinfo_no_oom_without_counter_rise)
{
    struct tu_snapshot snap;
    subiter_errinfo ei = SUBITER_ERRINFO_INIT;
    subiter *it;

    tu_snapshot(&snap);
    it = run_oom("oom_kill 3\n", PLAIN_KILL);
    ck_assert_ptr_null(strstr(subiter_errmsg(it), "OOM"));
    ck_assert_int_eq(subiter_get_errinfo(it, &ei), 0);
    ck_assert_int_eq(ei.oom_suspected, 0);
    ck_assert_int_eq(ei.term_signal, SIGKILL);
    end_oom(it);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_errinfo_no_oom_for_other_signals)
{
    struct tu_snapshot snap;
    subiter_errinfo ei = SUBITER_ERRINFO_INIT;
    subiter *it;

    tu_snapshot(&snap);
    it = run_oom("oom_kill 3\n", OOM_SEGV);
    ck_assert_ptr_null(strstr(subiter_errmsg(it), "OOM"));
    ck_assert_ptr_nonnull(strstr(subiter_errmsg(it), "signal 11 (SIGSEGV)"));
    ck_assert_int_eq(subiter_get_errinfo(it, &ei), 0);
    ck_assert_int_eq(ei.oom_suspected, 0);
    ck_assert_int_eq(ei.term_signal, SIGSEGV);
    end_oom(it);
    tu_assert_clean(&snap);
}
END_TEST

/* No readable counter: say nothing rather than guess. */
START_TEST(test_errinfo_no_oom_when_unreadable)
{
    struct tu_snapshot snap;
    subiter_errinfo ei = SUBITER_ERRINFO_INIT;
    subiter *it;

    tu_snapshot(&snap);
    it = run_oom(NULL, PLAIN_KILL);
    ck_assert_ptr_null(strstr(subiter_errmsg(it), "OOM"));
    ck_assert_int_eq(subiter_get_errinfo(it, &ei), 0);
    ck_assert_int_eq(ei.oom_suspected, 0);
    end_oom(it);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_errinfo_exit_status)
{
    struct tu_snapshot snap;
    subiter_errinfo ei = SUBITER_ERRINFO_INIT;
    subiter *it;

    tu_snapshot(&snap);
    ck_assert_int_eq(run(EXIT_3, &it), SUBITER_ECHILD);
    ck_assert_ptr_nonnull(strstr(subiter_errmsg(it), "exited with status 3"));
    ck_assert_ptr_nonnull(strstr(subiter_errmsg(it), "after 3 items"));
    ck_assert_ptr_nonnull(strstr(subiter_errmsg(it), "iteration 1"));
    ck_assert_int_eq(subiter_get_errinfo(it, &ei), 0);
    ck_assert_int_eq(ei.exited, 1);
    ck_assert_int_eq(ei.exit_status, 3);
    ck_assert_int_eq(ei.term_signal, 0);
    ck_assert_uint_eq(ei.items, 3);
    (void)subiter_close(it);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_errinfo_generator_errnum)
{
    struct tu_snapshot snap;
    subiter_errinfo ei = SUBITER_ERRINFO_INIT;
    subiter *it;

    tu_snapshot(&snap);
    ck_assert_int_eq(run(FAIL_EIO, &it), SUBITER_EITER);
    ck_assert_str_eq(subiter_errmsg(it), subiter_strerror(-EIO));
    ck_assert_int_eq(subiter_get_errinfo(it, &ei), 0);
    ck_assert_int_eq(ei.code, SUBITER_EITER);
    ck_assert_int_eq(ei.errnum, EIO);
    ck_assert_int_eq(ei.exited, 0);
    /* A successful start clears it. */
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_int_eq(subiter_get_errinfo(it, &ei), 0);
    ck_assert_int_eq(ei.code, 0);
    ck_assert_int_eq(ei.errnum, 0);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_errinfo_misuse)
{
    subiter_errinfo ei = SUBITER_ERRINFO_INIT;
    subiter *it;

    ck_assert_int_eq(subiter_get_errinfo(NULL, &ei), -EINVAL);
    ck_assert_int_eq(subiter_open(&it, gen_die, NULL, NULL), 0);
    ck_assert_int_eq(subiter_get_errinfo(it, NULL), -EINVAL);
    /* Smaller than 0.1's struct (0.1's size itself is served). */
    ei.size = offsetof(subiter_errinfo, backtrace) - 1;
    ck_assert_int_eq(subiter_get_errinfo(it, &ei), -EINVAL);
    ei.size = sizeof ei;
    ck_assert_int_eq(subiter_get_errinfo(it, &ei), 0);
    ck_assert_int_eq(ei.code, 0);
    ck_assert_int_gt(ei.pid, 0);
    ck_assert_int_eq(subiter_close(it), 0);
}
END_TEST

/* Core dumps are off on these machines: check the wording on an injected
 * wait status instead. */
START_TEST(test_errinfo_core_dump_wording)
{
    struct subiter__proc p;
    char buf[128];

    subiter__proc_init(&p);
    p.pid = 1234;
    p.reaped = true;
    p.status_known = true;
    p.wait_status = SIGSEGV | 0x80; /* WCOREFLAG */
    subiter__proc_describe(&p, buf, sizeof buf);
    ck_assert_str_eq(buf, "was killed by signal 11 (SIGSEGV), core dumped");
    p.wait_status = SIGABRT;
    subiter__proc_describe(&p, buf, sizeof buf);
    ck_assert_str_eq(buf, "was killed by signal 6 (SIGABRT)");
    p.status_known = false;
    subiter__proc_describe(&p, buf, sizeof buf);
    ck_assert_ptr_nonnull(strstr(buf, "status unavailable"));
}
END_TEST

/* No "oom_kill" line when the worker started: no OOM is claimed, even if
 * one appears by the time it is killed (the counter could not be read at
 * the start, so a rise cannot be told). */
START_TEST(test_errinfo_no_oom_without_counter_line)
{
    struct tu_snapshot snap;
    subiter_errinfo ei = SUBITER_ERRINFO_INIT;
    subiter *it;

    tu_snapshot(&snap);
    it = run_oom("oom_kill_disable 0\nunder_oom 0\n", OOM_KILL);
    ck_assert_ptr_null(strstr(subiter_errmsg(it), "OOM"));
    ck_assert_int_eq(subiter_get_errinfo(it, &ei), 0);
    ck_assert_int_eq(ei.oom_suspected, 0);
    ck_assert_int_eq(ei.term_signal, SIGKILL);
    end_oom(it);
    tu_assert_clean(&snap);
}
END_TEST

/* Initializer or generator: _exit() at once with the status in arg. */
TU_EXPORT(int exit_now(subiter_gen *g, void *arg))
{
    (void)g;
    _exit((int)(intptr_t)arg);
}

/* The library's own exit statuses (120..125) from an initializer are the
 * application's: errmsg gives the number and no library reason (an
 * initializer's _exit(122) is not "the parent died"). */
START_TEST(test_errinfo_library_exit_status)
{
    struct tu_snapshot snap;
    subiter_errinfo ei = SUBITER_ERRINFO_INIT;
    subiter_opts o = tu_opts(0);
    int status = SUBITER__EXIT_BAD_MAGIC + _i;
    const char *reason = subiter__worker_exit_reason(status);
    char want[64];
    subiter *it;

    tu_snapshot(&snap);
    ck_assert_ptr_nonnull(reason);
    o.init = exit_now;
    ck_assert_int_eq(subiter_open(&it, gen_die, (void *)(intptr_t)status, &o),
                     SUBITER_ECHILD);
    snprintf(want, sizeof want, "exited with status %d while initializing",
             status);
    ck_assert_msg(strstr(subiter_errmsg(it), want) != NULL,
                  "\"%s\" lacks \"%s\"", subiter_errmsg(it), want);
    ck_assert_msg(strstr(subiter_errmsg(it), reason) == NULL,
                  "\"%s\" has \"%s\"", subiter_errmsg(it), reason);
    ck_assert_int_eq(subiter_get_errinfo(it, &ei), 0);
    ck_assert_int_eq(ei.exited, 1);
    ck_assert_int_eq(ei.exit_status, status);
    (void)subiter_close(it);
    tu_assert_clean(&snap);
}
END_TEST

/* Once the initializer has succeeded, the same statuses are the
 * application's: errmsg gives the number and no library reason. */
START_TEST(test_errinfo_exit_status_after_init_unexplained)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts(0);
    subiter_item item;
    subiter *it;

    tu_snapshot(&snap);
    ck_assert_int_eq(
        subiter_open(&it, exit_now, (void *)(intptr_t)SUBITER__EXIT_MMAP, &o),
        0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECHILD);
    ck_assert_ptr_nonnull(strstr(subiter_errmsg(it), "exited with status 121"));
    ck_assert_ptr_null(strstr(subiter_errmsg(it), "could not map"));
    (void)subiter_close(it);
    tu_assert_clean(&snap);
}
END_TEST

/* SIGCHLD ignored: the kernel reaps the worker and its status is lost;
 * errinfo and errmsg say so instead of making one up. */
START_TEST(test_errinfo_status_unknown)
{
    struct tu_snapshot snap;
    subiter_errinfo ei = SUBITER_ERRINFO_INIT;
    subiter *it;

    tu_snapshot(&snap);
    signal(SIGCHLD, SIG_IGN);
    ck_assert_int_eq(run(EXIT_3, &it), SUBITER_ECHILD);
    ck_assert_ptr_nonnull(strstr(subiter_errmsg(it), "status unavailable"));
    ck_assert_ptr_null(strstr(subiter_errmsg(it), "status 3"));
    ck_assert_int_eq(subiter_get_errinfo(it, &ei), 0);
    ck_assert_int_eq(ei.status_unknown, 1);
    ck_assert_int_eq(ei.exited, 0);
    ck_assert_int_eq(ei.exit_status, 0);
    ck_assert_int_eq(ei.term_signal, 0);
    ck_assert_uint_eq(ei.items, 3);
    (void)subiter_close(it);
    signal(SIGCHLD, SIG_DFL);
    tu_assert_clean(&snap);
}
END_TEST

/* The other wordings, on injected states. */
START_TEST(test_errinfo_describe_wordings)
{
    struct subiter__proc p;
    char buf[128];

    subiter__proc_init(&p);
    p.pid = 1234;
    subiter__proc_describe(&p, buf, sizeof buf);
    ck_assert_str_eq(buf, "is still running");
    p.reaped = true;
    p.status_known = true;
    p.wait_status = 64; /* killed by a signal without a name here */
    subiter__proc_describe(&p, buf, sizeof buf);
    ck_assert_str_eq(buf, "was killed by signal 64 (unknown signal)");
    p.wait_status = 0x137f; /* stopped by SIGSTOP: neither exit nor kill */
    subiter__proc_describe(&p, buf, sizeof buf);
    ck_assert_str_eq(buf, "ended with wait status 0x137f");
    p.wait_status = 7 << 8;
    subiter__proc_describe(&p, buf, sizeof buf);
    ck_assert_str_eq(buf, "exited with status 7");
}
END_TEST

static Suite *errinfo_suite(void)
{
    Suite *s = suite_create("errinfo");
    TCase *tc = tcase_create("errinfo");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_errinfo_oom_kill_is_named);
    tcase_add_test(tc, test_errinfo_oom_v2_format);
    tcase_add_test(tc, test_errinfo_no_oom_without_counter_rise);
    tcase_add_test(tc, test_errinfo_no_oom_for_other_signals);
    tcase_add_test(tc, test_errinfo_no_oom_when_unreadable);
    tcase_add_test(tc, test_errinfo_exit_status);
    tcase_add_test(tc, test_errinfo_generator_errnum);
    tcase_add_test(tc, test_errinfo_misuse);
    tcase_add_test(tc, test_errinfo_core_dump_wording);
    tcase_add_test(tc, test_errinfo_no_oom_without_counter_line);
    tcase_add_loop_test(tc, test_errinfo_library_exit_status, 0, 6);
    tcase_add_test(tc, test_errinfo_exit_status_after_init_unexplained);
    tcase_add_test(tc, test_errinfo_status_unknown);
    tcase_add_test(tc, test_errinfo_describe_wordings);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(errinfo_suite());
}
