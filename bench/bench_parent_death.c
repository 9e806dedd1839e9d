/* bench_parent_death.c: bench=parent_death, from the SIGKILL of a
 * worker's parent to the worker's exit, with the worker in Stand By, in
 * its generator, or blocked on a full ring. The parent is a middle
 * process this bench forks; the bench becomes a subreaper, so that the
 * orphaned worker comes to it and can be waited for. Min/median/max in
 * microseconds.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench.h"

enum pd_state { PD_STAND_BY, PD_IN_GENERATOR, PD_FULL_RING };

static const char *const pd_state_names[] = {"stand_by", "in_generator",
                                             "full_ring"};

static _Noreturn void pd_fail(struct death_share *sh, const char *what,
                              subiter *it, int rc)
{
    snprintf(sh->err, sizeof sh->err, "%s: %s: %s", what, subiter_errname(rc),
             it ? subiter_errmsg(it) : "");
    atomic_store(&sh->ready, -1);
    _exit(1);
}

/* The middle process: the worker's parent, until the bench kills it. It
 * puts its worker in `st`, waits until the worker sleeps there, then
 * publishes the worker's pid and waits to be killed. */
static _Noreturn void pd_middle(const struct bench *b, struct death_share *sh,
                                enum pd_state st)
{
    subiter_opts o = SUBITER_OPTS_INIT;
    struct death_gen dg = {DEATH_SLEEP, sh, b->hot};
    subiter *it = NULL;
    pid_t w;
    int rc;

    /* Should the bench itself die, do not stay behind. */
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (st == PD_FULL_RING) {
        o.buffer_items = 1;
        dg.mode = DEATH_FLOOD;
    }
    rc = subiter_open(&it, gen_death, &dg, &o);
    if (rc != 0) {
        pd_fail(sh, "subiter_open", it, rc);
    }
    if (st != PD_STAND_BY && (rc = subiter_start(it, NULL, 0)) != 0) {
        pd_fail(sh, "subiter_start", it, rc);
    }
    w = subiter_pid(it);
    sleep_s(st == PD_FULL_RING ? 0.02 : 0.005);
    if (!wait_asleep(w, w, 5.0)) {
        pd_fail(sh, "the worker never slept", NULL, 0);
    }
    atomic_store(&sh->worker, (int)w);
    atomic_store(&sh->ready, 1);
    for (;;) {
        pause();
    }
}

/* One parent death in state `st`: returns 0 and sets *delay_us, or -1
 * with the error set. */
static int parent_death_once(struct bench *b, struct death_share *sh,
                             enum pd_state st, double *delay_us)
{
    struct pollfd pfd;
    pid_t mid, w;
    double end;
    int64_t t0, t1;
    int pidfd, s, ready = 0;

    atomic_store(&sh->ready, 0);
    atomic_store(&sh->worker, 0);
    sh->err[0] = '\0';
    fflush(NULL);
    mid = fork();
    if (mid < 0) {
        set_error(b, "fork: %s", strerror(errno));
        return -1;
    }
    if (mid == 0) {
        pd_middle(b, sh, st);
    }
    end = now_s() + 10;
    while (now_s() < end && (ready = atomic_load(&sh->ready)) == 0) {
        sleep_s(500e-6);
    }
    if (ready != 1) {
        set_error(b, "middle: %s", ready < 0 ? sh->err : "not ready in 10 s");
        (void)kill(mid, SIGKILL);
        (void)wait_status(b, mid, "middle");
        return -1;
    }
    w = (pid_t)atomic_load(&sh->worker);
    /* Opened while the worker is the middle's child and alive: the fd
     * names this process, whatever happens to the pid. */
    pidfd = open_pidfd(w);

    t0 = now_ns();
    (void)kill(mid, SIGKILL);
    if ((s = wait_status(b, mid, "middle")) < 0) {
        goto fail;
    }
    /* The middle is reaped, so its worker is ours now (we are a
     * subreaper). The pidfd bounds the wait should it never die. */
    if (pidfd >= 0) {
        pfd.fd = pidfd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        while (poll(&pfd, 1, 5000) < 0 && errno == EINTR) {
        }
        if (pfd.revents == 0) {
            set_error(b, "worker %d alive 5 s after its parent's death",
                      (int)w);
            (void)kill(w, SIGKILL);
            (void)wait_status(b, w, "worker");
            goto fail;
        }
    }
    if ((s = wait_status(b, w, "worker")) < 0) {
        goto fail;
    }
    t1 = now_ns();
    if (pidfd >= 0) {
        close(pidfd);
    }
    if (!WIFSIGNALED(s) || WTERMSIG(s) != SIGKILL) {
        set_error(b, "worker %d ended with status 0x%x, not SIGKILL", (int)w,
                  (unsigned)s);
        return -1;
    }
    *delay_us = (double)(t1 - t0) * 1e-3;
    return 0;

fail:
    if (pidfd >= 0) {
        close(pidfd);
    }
    return -1;
}

static void parent_deaths(struct bench *b, struct death_share *sh, double *v)
{
    const int reps = b->cfg->pd_reps;
    char label[128];
    int st, i;

    for (st = PD_STAND_BY; st <= PD_FULL_RING; st++) {
        snprintf(label, sizeof label, "bench=parent_death state=%s",
                 pd_state_names[st]);
        if (!selected(b, label)) {
            continue;
        }
        progress(b, label);
        watch(b, label);
        for (i = 0; i < reps; i++) {
            if (parent_death_once(b, sh, (enum pd_state)st, &v[i]) < 0) {
                out(b, "%s n=%d error=\"%s\"", label, i, b->errbuf);
                break;
            }
        }
        unwatch(b);
        if (i == reps) {
            double med = median(v, i);

            out(b,
                "%s n=%d delay_us_min=%.1f delay_us_med=%.1f "
                "delay_us_max=%.1f",
                label, i, v[0], med, v[i - 1]);
            b->n_done++;
        }
    }
}

void bench_parent_death(struct bench *b)
{
    struct death_share *sh;
    char label[128];
    double *v;
    int prev = 0, st;
    bool any = false;

    for (st = PD_STAND_BY; st <= PD_FULL_RING; st++) {
        snprintf(label, sizeof label, "bench=parent_death state=%s",
                 pd_state_names[st]);
        any = any || selected(b, label);
    }
    if (!any) {
        return;
    }
    v = calloc((size_t)b->cfg->pd_reps, sizeof *v);
    sh = map_shared(sizeof *sh);
    if (!v || !sh) {
        out(b, "bench=parent_death error=\"out of memory\"");
        goto done;
    }
    /* Orphans come to us instead of init, so that we can wait for them. */
    if (prctl(PR_GET_CHILD_SUBREAPER, &prev, 0, 0, 0) < 0 ||
        prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
        out(b, "bench=parent_death error=\"prctl: %s\"", strerror(errno));
        goto done;
    }
    parent_deaths(b, sh, v);
    (void)prctl(PR_SET_CHILD_SUBREAPER, prev, 0, 0, 0);
done:
    if (sh) {
        munmap(sh, sizeof *sh);
    }
    free(v);
}
