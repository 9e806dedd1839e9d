/* bench_latency.c: bench=latency, the cost of a worker's whole life with
 * the default options: subiter_open() to subiter_close() (impl=
 * subiter_open_close), the same with a first item in between (impl=
 * subiter_open_first_close), and the baseline of a fork(), _exit() and
 * waitpid() (impl=fork_exit_wait); min/median/max in microseconds.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "bench/bench.h"

/* One small item from the hot buffer (`arg`), then the end. */
static int gen_one(subiter_gen *g, void *arg)
{
    return subiter_yield(g, arg, PING_BYTES);
}

static double latency_fork(struct bench *b)
{
    double t0 = now_s();
    pid_t pid;

    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        _exit(0);
    }
    if (pid < 0 || reap(b, pid, "fork_exit_wait") < 0) {
        return -1;
    }
    return now_s() - t0;
}

/* open -> start -> first item -> close, with the default options. */
static double latency_subiter(struct bench *b, bool iterate)
{
    subiter *it = NULL;
    subiter_item item;
    double t0, t1;
    int r;

    fflush(NULL);
    t0 = now_s();
    r = subiter_open(&it, gen_one, b->hot, NULL);
    if (r == 0 && iterate) {
        r = subiter_start(it, NULL, 0);
        if (r == 0) {
            r = subiter_next(it, &item) == 1 ? 0 : -1;
        }
    }
    if (subiter_close(it) != 0 || r != 0) {
        set_error(b, "open/first/close: %s", subiter_errmsg(it));
        return -1;
    }
    t1 = now_s();
    return t1 - t0;
}

void bench_latency(struct bench *b, struct figures *f)
{
    static const char *const names[] = {
        "fork_exit_wait", "subiter_open_first_close", "subiter_open_close"};
    const int reps = b->cfg->lat_reps;
    double *v[3];
    char label[128];
    int i, m;
    bool any = false, on[3];

    f->fork_med = f->ofc_med = -1;
    for (m = 0; m < 3; m++) {
        snprintf(label, sizeof label, "bench=latency impl=%s", names[m]);
        on[m] = selected(b, label);
        any = any || on[m];
        v[m] = calloc((size_t)reps, sizeof(double));
        if (!v[m]) {
            out(b, "bench=latency error=\"out of memory\"");
            exit(1);
        }
    }
    if (!any) {
        goto done;
    }
    progress(b, "bench=latency");
    watch(b, "bench=latency");
    /* Interleaved, so that noise hits all three alike. */
    for (i = 0; i < reps; i++) {
        for (m = 0; m < 3; m++) {
            double x;

            if (!on[m]) {
                continue;
            }
            x = m == 0 ? latency_fork(b) : latency_subiter(b, m == 1);
            if (x < 0) {
                out(b, "bench=latency impl=%s error=\"%s\"", names[m],
                    b->errbuf);
                on[m] = false;
                continue;
            }
            v[m][i] = x * 1e6;
        }
    }
    unwatch(b);
    for (m = 0; m < 3; m++) {
        double med;

        if (!on[m]) {
            continue;
        }
        med = median(v[m], reps);
        out(b,
            "bench=latency impl=%s reps=%d us_min=%.1f us_med=%.1f "
            "us_max=%.1f",
            names[m], reps, v[m][0], med, v[m][reps - 1]);
        if (m == 0) {
            f->fork_med = med;
        } else if (m == 1) {
            f->ofc_med = med;
        }
    }
    b->n_done++;
done:
    for (m = 0; m < 3; m++) {
        free(v[m]);
    }
}
