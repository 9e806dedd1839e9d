/* check_ctrlc.c: Ctrl-C and Ctrl-\ at a terminal. The terminal signals the
 * whole foreground process group; workers ignore SIGINT and SIGQUIT, so
 * the host program that handles the signal by stopping, finalizing or
 * closing sees no dead worker, and a pool forks nothing while it stops or
 * finalizes. A host process in a group of its own is signalled with
 * kill(-pgid), as the terminal does. Every case checks that no process,
 * fd or mapping is left. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "testproc.h"

#define PAGE 4096
#define WORKERS 2
#define ITEMS_AFTER 20 /* items the host reads after the signal */
#define HOST_BOUND_MS 20000

/* How the host ends when the signal comes. */
enum end { END_STOP, END_FINALIZE, END_CLOSE, END_HANDLE };

struct ctrlc_variant {
    int sig;
    enum end end;
};

static const struct ctrlc_variant variants[] = {
    {SIGINT, END_STOP},  {SIGINT, END_FINALIZE}, {SIGINT, END_CLOSE},
    {SIGQUIT, END_STOP}, {SIGINT, END_HANDLE},
};
#define N_VARIANTS (sizeof variants / sizeof variants[0])

/* What the host, its workers and the test share. */
struct ctrlc_page {
    _Atomic int inits;     /* workers that ran the initializer */
    _Atomic int ready;     /* the host iterates: signal it */
    _Atomic int die_stop;  /* a worker that sees a stop exits (no host) */
    _Atomic int failed;    /* the host's first failed step, 0: none */
    _Atomic int code;      /* what that step returned */
    _Atomic int replaced;  /* the pool's stats.replaced at the end */
    _Atomic int inits_sig; /* inits when the host saw the signal */
};

/* Host steps, as reported in ctrlc_page.failed. */
enum step { S_OK, S_OPEN, S_START, S_NEXT, S_END, S_CLOSE, S_FORKED };

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
    (void)sig;
    got_signal = 1;
}

static int init_count(subiter_gen *g, void *arg)
{
    struct ctrlc_page *pg = arg;

    (void)g;
    atomic_fetch_add(&pg->inits, 1);
    return 0;
}

/* Yields 0, 1, 2, ... until stopped; with die_stop set, a stop ends the
 * worker instead. */
static int gen_forever(subiter_gen *g, void *arg)
{
    struct ctrlc_page *pg = arg;
    long i;
    int r;

    for (i = 0;; i++) {
        if ((r = subiter_yield(g, &i, sizeof i)) != 0) {
            if (r == SUBITER_STOPPED && atomic_load(&pg->die_stop)) {
                _exit(9);
            }
            return r;
        }
    }
}

/* The host's first failure: recorded once; returns its exit status. */
static int host_fail(struct ctrlc_page *pg, enum step s, int code)
{
    int none = 0;

    if (atomic_compare_exchange_strong(&pg->failed, &none, (int)s)) {
        atomic_store(&pg->code, code);
    }
    return (int)s;
}

/* Read until the signal came, then ITEMS_AFTER more: none may fail. */
static int host_read(struct ctrlc_page *pg, subiter_pool *p, subiter *it)
{
    subiter_pool_item pi;
    subiter_item item;
    int after = 0, n = 0, r;

    while (after < ITEMS_AFTER) {
        r = p != NULL ? subiter_pool_next(p, &pi) : subiter_next(it, &item);
        if (r != 1) {
            return host_fail(pg, S_NEXT, r);
        }
        if (++n == 10) {
            atomic_store(&pg->ready, 1);
        }
        if (got_signal) {
            if (after++ == 0) {
                atomic_store(&pg->inits_sig, atomic_load(&pg->inits));
            }
        }
    }
    return 0;
}

static int host_pool(struct ctrlc_page *pg, enum end end)
{
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;
    subiter_pool_stats st = {.size = sizeof st};
    subiter_pool *p;
    int r;

    wo.init = init_count;
    po.workers = WORKERS;
    po.worker = &wo;
    po.restart_shards = 1;
    po.max_retries = 3;
    if ((r = subiter_pool_open(&p, gen_forever, pg, &po)) != 0) {
        subiter_pool_close(p);
        return host_fail(pg, S_OPEN, r);
    }
    if ((r = subiter_pool_start(p, NULL, 0)) != 0) {
        subiter_pool_close(p);
        return host_fail(pg, S_START, r);
    }
    if ((r = host_read(pg, p, NULL)) != 0) {
        subiter_pool_close(p);
        return r;
    }
    if (end == END_STOP) {
        r = subiter_pool_stop(p);
    } else if (end == END_FINALIZE) {
        r = subiter_pool_finalize(p, 0);
    }
    if (r != 0) {
        subiter_pool_close(p);
        return host_fail(pg, S_END, r);
    }
    if (subiter_pool_get_stats(p, &st) == 0) {
        atomic_store(&pg->replaced, (int)st.replaced);
    }
    if ((r = subiter_pool_close(p)) != 0) {
        return host_fail(pg, S_CLOSE, r);
    }
    if (atomic_load(&pg->inits) != WORKERS) {
        return host_fail(pg, S_FORKED, atomic_load(&pg->inits));
    }
    return 0;
}

static int host_handle(struct ctrlc_page *pg)
{
    subiter_opts o = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter *it;
    int r;

    o.init = init_count;
    if ((r = subiter_open(&it, gen_forever, pg, &o)) != 0) {
        subiter_close(it);
        return host_fail(pg, S_OPEN, r);
    }
    if ((r = subiter_start(it, NULL, 0)) != 0) {
        subiter_close(it);
        return host_fail(pg, S_START, r);
    }
    if ((r = host_read(pg, NULL, it)) != 0) {
        subiter_close(it);
        return r;
    }
    /* 0: the worker exited on ABORT, not of the signal. */
    if ((r = subiter_close(it)) != 0) {
        return host_fail(pg, S_CLOSE, r);
    }
    return 0;
}

/* The host program: a process group of its own, a handler for the
 * signal, and a pool or a handle it ends when the signal comes. */
static _Noreturn void host(struct ctrlc_page *pg, const struct ctrlc_variant *v)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (setpgid(0, 0) < 0 || sigaction(v->sig, &sa, NULL) < 0) {
        _exit(host_fail(pg, S_OPEN, -errno));
    }
    _exit(v->end == END_HANDLE ? host_handle(pg) : host_pool(pg, v->end));
}

START_TEST(test_ctrlc_process_group)
{
    const struct ctrlc_variant *v = &variants[_i];
    struct ctrlc_page *pg = tu_shared_new(PAGE);
    struct tu_snapshot snap;
    int64_t end;
    pid_t h, r;
    int status;

    tu_snapshot(&snap);
    memset(pg, 0, sizeof *pg);
    fflush(NULL);
    h = fork();
    ck_assert_int_ge(h, 0);
    if (h == 0) {
        host(pg, v);
    }
    ck_assert(tu_wait_flag(&pg->ready, 1, HOST_BOUND_MS));
    /* As the terminal does: the whole foreground group. */
    ck_assert_int_eq(kill(-h, v->sig), 0);
    end = tu_now_ms() + HOST_BOUND_MS;
    while ((r = waitpid(h, &status, WNOHANG)) == 0 && tu_now_ms() < end) {
        tu_sleep_ms(5);
    }
    if (r == 0) {
        (void)kill(-h, SIGKILL);
        (void)waitpid(h, &status, 0);
        ck_abort_msg("the host did not end within %d ms", HOST_BOUND_MS);
    }
    ck_assert_int_eq(r, h);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "host: wait status %#x, failed step %d with %d (%s); "
                  "%d workers started, %d when it saw the signal",
                  (unsigned)status, atomic_load(&pg->failed),
                  atomic_load(&pg->code),
                  subiter_errname(atomic_load(&pg->code)),
                  atomic_load(&pg->inits), atomic_load(&pg->inits_sig));
    ck_assert_int_eq(atomic_load(&pg->replaced), 0);
    /* Nothing of the host's group is left. */
    ck_assert_int_eq(kill(-h, 0), -1);
    ck_assert_int_eq(errno, ESRCH);
    tu_shared_free(pg, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

/* With restart_shards, workers that die while the pool stops are not
 * replaced during the stop; the next start forks their replacements. */
START_TEST(test_ctrlc_no_fork_while_stopping)
{
    struct ctrlc_page *pg = tu_shared_new(PAGE);
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;
    struct tu_snapshot snap;
    subiter_pool_item item;
    subiter_pool_stats st = {.size = sizeof st};
    subiter_pool *p;
    int k, r;

    tu_snapshot(&snap);
    memset(pg, 0, sizeof *pg);
    atomic_store(&pg->die_stop, 1);
    wo.init = init_count;
    po.workers = WORKERS;
    po.worker = &wo;
    po.restart_shards = 1;
    po.max_retries = 3;
    ck_assert_int_eq(subiter_pool_open(&p, gen_forever, pg, &po), 0);
    ck_assert_int_eq(subiter_pool_start(p, NULL, 0), 0);
    for (k = 0; k < 10; k++) {
        ck_assert_int_eq(subiter_pool_next(p, &item), 1);
    }
    r = subiter_pool_stop(p);
    ck_assert_msg(r == SUBITER_ECHILD, "stop: %s", subiter_errname(r));
    /* No replacement was forked: none is even starting. */
    ck_assert_int_eq(subiter_pool_get_stats(p, &st), 0);
    ck_assert_uint_eq(st.workers, 0);
    ck_assert_int_eq(atomic_load(&pg->inits), WORKERS);

    atomic_store(&pg->die_stop, 0);
    ck_assert_int_eq(subiter_pool_start(p, NULL, 0), 0);
    ck_assert_int_eq(atomic_load(&pg->inits), 2 * WORKERS);
    for (k = 0; k < 10; k++) {
        ck_assert_int_eq(subiter_pool_next(p, &item), 1);
    }
    ck_assert_int_eq(subiter_pool_close(p), 0);
    tu_shared_free(pg, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

/* Task generator: input 1 makes the worker die after 100 ms; any other
 * yields one item. */
static int gen_task(subiter_gen *g, void *arg)
{
    size_t len;
    const unsigned char *in = subiter_input(g, &len);
    long v = 1;

    (void)arg;
    if (len == 1 && in[0] == 1) {
        tu_sleep_ms(100);
        _exit(9);
    }
    return subiter_yield(g, &v, sizeof v);
}

/* A finalizing pool forks no replacement: a queued task that no worker is
 * left to run ends at once, cancelled, and says why. */
START_TEST(test_ctrlc_no_fork_while_finalizing)
{
    struct ctrlc_page *pg = tu_shared_new(PAGE);
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;
    struct tu_snapshot snap;
    subiter_pool_item item;
    subiter_pool *p;
    unsigned long long a, b;
    const unsigned char die = 1, live = 0;
    int a_code = 1, b_code = 1, b_items = 0, r;
    char b_msg[256] = "";

    tu_snapshot(&snap);
    memset(pg, 0, sizeof *pg);
    wo.init = init_count;
    po.workers = 1;
    po.worker = &wo;
    ck_assert_int_eq(subiter_pool_open(&p, gen_task, pg, &po), 0);
    ck_assert_int_eq(subiter_pool_submit(p, &die, 1, 0, &a), 0);
    ck_assert_int_eq(subiter_pool_submit(p, &live, 1, 0, &b), 0);
    ck_assert_int_eq(subiter_pool_finalize(p, 20000), 0);
    while ((r = subiter_pool_next(p, &item)) == 1) {
        if (item.kind == SUBITER_POOL_ITEM) {
            b_items += item.task == b;
        } else if (item.task == a) {
            a_code = item.code;
        } else if (item.task == b) {
            b_code = item.code;
            snprintf(b_msg, sizeof b_msg, "%s", item.errmsg);
        }
    }
    ck_assert_int_eq(r, 0);
    ck_assert_int_eq(a_code, SUBITER_ECHILD);
    ck_assert_msg(b_code == SUBITER_ECANCELED, "task b: %s (%s)",
                  subiter_errname(b_code), b_msg);
    ck_assert_ptr_nonnull(strstr(b_msg, "a finalizing pool starts none"));
    ck_assert_int_eq(b_items, 0);
    ck_assert_int_eq(atomic_load(&pg->inits), 1);
    ck_assert_int_eq(subiter_pool_close(p), 0);
    tu_shared_free(pg, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

static Suite *ctrlc_suite(void)
{
    Suite *s = suite_create("ctrlc");
    TCase *tc = tcase_create("ctrlc");

    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_ctrlc_process_group, 0, (int)N_VARIANTS);
    tcase_add_test(tc, test_ctrlc_no_fork_while_stopping);
    tcase_add_test(tc, test_ctrlc_no_fork_while_finalizing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(ctrlc_suite());
}
