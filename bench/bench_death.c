/* bench_death.c: bench=death, from a worker's death to subiter_next()
 * returning SUBITER_ECHILD, with no timeout set: SIGKILL from a thread of
 * the parent, or the worker's own SIGSEGV, while the parent sleeps in
 * subiter_next(); SIGKILL while the worker is blocked on a full ring; and
 * the baseline of a forked child killed and waited for through a pidfd.
 * Each first waits until the sides are asleep (the scheduler state in
 * /proc is 'S'), so that the figure is the wake-up path, not a race with
 * a process still on its way to sleep; seen_blocked counts the
 * repetitions where that was seen. Min/median/max in microseconds.
 * The SIGSEGV worker leaves a crash report, which the parent symbolizes
 * before subiter_next() returns: `report=crash_vs_kill` is what that
 * adds to the SIGKILL death, for the process's first report (which reads
 * the modules' symbols) and the median one.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench.h"

/* What the killer thread needs and leaves. */
struct killer {
    pid_t worker;     /* whom to kill */
    pid_t tid;        /* the parent's thread, in subiter_next() */
    int64_t stamp_ns; /* taken right before kill() */
    bool blocked;     /* both were seen asleep first */
    int err;          /* kill()'s errno, or 0 */
};

/* The death bench's generator, in the worker. */
int gen_death(subiter_gen *g, void *arg)
{
    const struct death_gen *c = arg;
    double end;
    int r;

    switch (c->mode) {
    case DEATH_SLEEP:
        /* Long sleeps: the worker stays asleep until it is killed. */
        end = now_s() + 30;
        while (now_s() < end) {
            sleep_s(1);
        }
        return subiter_fail(g, "not killed within 30 s");
    case DEATH_SEGV:
        /* No core: dumping one would be timed too (and left behind). */
        (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        sleep_s(2e-3);
        atomic_store(&c->sh->blocked,
                     wait_asleep(getppid(), getppid(), 2.0) ? 1 : 0);
        atomic_store(&c->sh->stamp_ns, now_ns());
        raise(SIGSEGV);
        return subiter_fail(g, "survived SIGSEGV");
    case DEATH_FLOOD:
        for (;;) {
            if ((r = subiter_yield(g, c->hot, 8))) {
                return r;
            }
        }
    case DEATH_BASELINE:
        break;
    }
    return subiter_fail(g, "bad mode");
}

/* The killer thread: once the parent's thread is asleep in subiter_next()
 * and the worker asleep in its generator, SIGKILL the worker. */
static void *killer_main(void *arg)
{
    struct killer *k = arg;

    sleep_s(2e-3);
    k->blocked = wait_asleep(k->worker, k->worker, 2.0);
    k->blocked = wait_asleep(getpid(), k->tid, 2.0) && k->blocked;
    k->stamp_ns = now_ns();
    if (kill(k->worker, SIGKILL) < 0) {
        k->err = errno;
    }
    return NULL;
}

/* One death: open a worker, let it die as `mode` says, time the return
 * of SUBITER_ECHILD. Returns 0 and sets *delay_us and *blocked, or -1
 * with the error set. */
int death_once(struct bench *b, struct death_share *sh, enum death_mode mode,
               double *delay_us, bool *blocked)
{
    subiter_opts o = SUBITER_OPTS_INIT;
    subiter_errinfo ei = SUBITER_ERRINFO_INIT;
    struct death_gen dg = {mode, sh, b->hot};
    subiter *it = NULL;
    subiter_item item;
    struct killer k;
    pthread_t th;
    int64_t t0 = 0, t1 = 0;
    int rc, want = mode == DEATH_SEGV ? SIGSEGV : SIGKILL, items = 0;

    o.grace_ms = 100;
    if (mode == DEATH_FLOOD) {
        o.buffer_items = 1;
    }
    atomic_store(&sh->stamp_ns, 0);
    atomic_store(&sh->blocked, 0);
    fflush(NULL);
    rc = subiter_open(&it, gen_death, &dg, &o);
    if (rc == 0) {
        rc = subiter_start(it, NULL, 0);
    }
    if (rc != 0) {
        set_subiter_error(b, "open/start", it, rc);
        subiter_close(it);
        return -1;
    }
    switch (mode) {
    case DEATH_SLEEP:
        memset(&k, 0, sizeof k);
        k.worker = subiter_pid(it);
        k.tid = (pid_t)syscall(SYS_gettid);
        if ((rc = pthread_create(&th, NULL, killer_main, &k)) != 0) {
            set_error(b, "pthread_create: %s", strerror(rc));
            subiter_close(it);
            return -1;
        }
        rc = subiter_next(it, &item);
        t1 = now_ns();
        pthread_join(th, NULL);
        if (k.err) {
            set_error(b, "kill: %s", strerror(k.err));
            subiter_close(it);
            return -1;
        }
        t0 = k.stamp_ns;
        *blocked = k.blocked;
        break;
    case DEATH_SEGV:
        rc = subiter_next(it, &item);
        t1 = now_ns();
        t0 = atomic_load(&sh->stamp_ns);
        *blocked = atomic_load(&sh->blocked) == 1;
        break;
    case DEATH_FLOOD:
        /* The parent does not consume: the worker fills the ring and
         * sleeps on it. Then kill it and drain what it left. */
        sleep_s(b->cfg->quick ? 0.02 : 0.05);
        *blocked = wait_asleep(subiter_pid(it), subiter_pid(it), 2.0);
        t0 = now_ns();
        if (kill(subiter_pid(it), SIGKILL) < 0) {
            set_error(b, "kill: %s", strerror(errno));
            subiter_close(it);
            return -1;
        }
        while ((rc = subiter_next(it, &item)) > 0) {
            items++;
        }
        t1 = now_ns();
        if (rc == SUBITER_ECHILD && items == 0) {
            set_error(b, "no buffered item before SUBITER_ECHILD");
            subiter_close(it);
            return -1;
        }
        break;
    case DEATH_BASELINE:
        rc = -EINVAL; /* not a subiter death: death_baseline_once() */
        break;
    }
    if (rc != SUBITER_ECHILD) {
        set_error(b, "subiter_next returned %s, not SUBITER_ECHILD: %s",
                  subiter_errname(rc), subiter_errmsg(it));
        subiter_close(it);
        return -1;
    }
    if (subiter_get_errinfo(it, &ei) != 0 || ei.term_signal != want ||
        t0 <= 0) {
        set_error(b,
                  "worker ended otherwise (signal %d, stamp %" PRId64 "): %s",
                  ei.term_signal, t0, subiter_errmsg(it));
        subiter_close(it);
        return -1;
    }
    (void)subiter_close(it); /* SUBITER_ECHILD: it died */
    *delay_us = (double)(t1 - t0) * 1e-3;
    return 0;
}

/* The baseline: the same death without subiter. A forked child of this
 * process (as big as a worker) sleeps; SIGKILL it, wait on a pidfd, reap
 * it. What subiter adds is the difference. */
int death_baseline_once(struct bench *b, double *delay_us, bool *blocked)
{
    struct pollfd pfd;
    int64_t t0, t1;
    pid_t pid;
    int s;

    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        set_error(b, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        for (;;) {
            pause();
        }
    }
    pfd.fd = open_pidfd(pid);
    pfd.events = POLLIN;
    pfd.revents = 0;
    if (pfd.fd < 0) {
        set_error(b, "pidfd_open: %s", strerror(errno));
        (void)kill(pid, SIGKILL);
        (void)wait_status(b, pid, "baseline");
        return -1;
    }
    *blocked = wait_asleep(pid, pid, 2.0);
    t0 = now_ns();
    (void)kill(pid, SIGKILL);
    while (poll(&pfd, 1, -1) < 0 && errno == EINTR) {
    }
    s = wait_status(b, pid, "baseline");
    t1 = now_ns();
    close(pfd.fd);
    if (s < 0) {
        return -1;
    }
    if (!WIFSIGNALED(s) || WTERMSIG(s) != SIGKILL) {
        set_error(b, "child ended with status 0x%x, not SIGKILL", (unsigned)s);
        return -1;
    }
    *delay_us = (double)(t1 - t0) * 1e-3;
    return 0;
}

/* Prints the line; returns the median. */
static double print_delays(struct bench *b, const char *label, double *v, int n,
                           int blocked)
{
    double med = median(v, n); /* sorts v */

    out(b,
        "%s n=%d seen_blocked=%d delay_us_min=%.1f delay_us_med=%.1f "
        "delay_us_max=%.1f",
        label, n, blocked, v[0], med, v[n - 1]);
    return med;
}

void bench_death(struct bench *b)
{
    static const struct {
        enum death_mode mode;
        const char *label;
    } kinds[] = {
        {DEATH_SLEEP, "bench=death signal=SIGKILL state=in_generator"},
        {DEATH_SEGV, "bench=death signal=SIGSEGV state=in_generator"},
        {DEATH_FLOOD, "bench=death signal=SIGKILL state=full_ring"},
        {DEATH_BASELINE, "bench=death signal=SIGKILL baseline=fork_pidfd"},
    };
    const int reps = b->cfg->death_reps;
    double med[DEATH_BASELINE + 1] = {-1, -1, -1, -1}, segv_first = -1;
    struct death_share *sh;
    double *v;
    size_t k;
    int i, blocked;

    v = calloc((size_t)reps, sizeof *v);
    sh = map_shared(sizeof *sh);
    if (!v || !sh) {
        out(b, "bench=death error=\"out of memory\"");
        free(v);
        if (sh) {
            munmap(sh, sizeof *sh);
        }
        return;
    }
    for (k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        if (!selected(b, kinds[k].label)) {
            continue;
        }
        progress(b, kinds[k].label);
        watch(b, kinds[k].label);
        blocked = 0;
        for (i = 0; i < reps; i++) {
            bool bl = false;

            if ((kinds[k].mode == DEATH_BASELINE
                     ? death_baseline_once(b, &v[i], &bl)
                     : death_once(b, sh, kinds[k].mode, &v[i], &bl)) < 0) {
                out(b, "%s n=%d error=\"%s\"", kinds[k].label, i, b->errbuf);
                break;
            }
            blocked += bl;
        }
        unwatch(b);
        if (i == reps) {
            double first = v[0];

            med[kinds[k].mode] = print_delays(b, kinds[k].label, v, i, blocked);
            if (kinds[k].mode == DEATH_SEGV) {
                segv_first = first;
            }
            b->n_done++;
        }
    }
    /* What the crash report adds to a death: SIGSEGV against SIGKILL, both
     * in the generator. The first report of the process also reads the
     * modules' symbols and debug information; later ones reuse them. */
    if (med[DEATH_SEGV] >= 0 && med[DEATH_SLEEP] >= 0) {
        out(b,
            "bench=death report=crash_vs_kill crash_report_us_first=%.1f "
            "crash_report_us_med=%.1f",
            segv_first - med[DEATH_SLEEP], med[DEATH_SEGV] - med[DEATH_SLEEP]);
    }
    munmap(sh, sizeof *sh);
    free(v);
}
