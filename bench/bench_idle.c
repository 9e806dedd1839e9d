/* bench_idle.c: bench=idle, the CPU that waiting costs: the parent asleep
 * in subiter_next() (no timeout) while the generator takes cfg->idle_s
 * to yield (side=consumer), and a producer blocked on a full ring for as
 * long (side=producer), each as CPU seconds over wall seconds.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"

/* What the idle producer measures about itself while it is blocked. */
struct idle_report {
    double cpu_s;
    double wall_s;
};

/* Idle generator: sleeps (input: microseconds) without yielding, then
 * yields one item from the hot buffer (`arg`). */
static int gen_sleepy(subiter_gen *g, void *arg)
{
    const void *in;
    size_t len;
    uint64_t us;
    double end;

    in = subiter_input(g, &len);
    if (!in || len != sizeof us) {
        return subiter_fail(g, "bad input");
    }
    memcpy(&us, in, sizeof us);
    end = now_s() + (double)us * 1e-6;
    while (now_s() < end) {
        usleep(1000);
    }
    return subiter_yield(g, arg, 8);
}

/* Idle producer: yields `n` (input) small items from the hot buffer
 * (`arg`) into a ring bounded to fewer, so that it blocks until the
 * parent wakes up, and reports the CPU it used meanwhile as one more
 * item. */
static int gen_blocked(subiter_gen *g, void *arg)
{
    struct idle_report rep;
    const void *in;
    size_t len;
    uint64_t n, i;
    double c0, t0;
    int r;

    in = subiter_input(g, &len);
    if (!in || len != sizeof n) {
        return subiter_fail(g, "bad input");
    }
    memcpy(&n, in, sizeof n);
    c0 = cpu_s(RUSAGE_SELF);
    t0 = now_s();
    for (i = 0; i < n; i++) {
        if ((r = subiter_yield(g, arg, 8))) {
            return r;
        }
    }
    rep.cpu_s = cpu_s(RUSAGE_SELF) - c0;
    rep.wall_s = now_s() - t0;
    return subiter_yield(g, &rep, sizeof rep);
}

static void print_idle(struct bench *b, const char *side, double wall,
                       double cpu, double *frac)
{
    *frac = wall > 0 ? cpu / wall : -1;
    out(b, "bench=idle side=%s wall_s=%.3f cpu_s=%.5f cpu_percent=%.3f", side,
        wall, cpu, *frac * 100);
}

void bench_idle(struct bench *b, struct figures *f)
{
    subiter_opts o = SUBITER_OPTS_INIT;
    subiter *it = NULL;
    subiter_item item;
    uint64_t arg;
    double c0, t0, cpu, wall;
    int r;

    f->idle_c = f->idle_p = -1;
    if (selected(b, "bench=idle side=consumer")) {
        /* The parent waits in subiter_next() with no timeout (0). */
        progress(b, "bench=idle side=consumer");
        watch(b, "bench=idle side=consumer");
        o.timeout_ms = 0;
        arg = (uint64_t)(b->cfg->idle_s * 1e6);
        r = subiter_open(&it, gen_sleepy, b->hot, &o);
        if (r == 0) {
            r = subiter_start(it, &arg, sizeof arg);
        }
        if (r == 0) {
            c0 = cpu_s(RUSAGE_SELF);
            t0 = now_s();
            r = subiter_next(it, &item);
            wall = now_s() - t0;
            cpu = cpu_s(RUSAGE_SELF) - c0;
            if (r == 1) {
                print_idle(b, "consumer", wall, cpu, &f->idle_c);
                r = subiter_next(it, &item);
            } else if (r == 0) {
                r = -EPROTO;
            }
        }
        if (r < 0) {
            out(b, "bench=idle side=consumer error=\"%s: %s\"",
                subiter_errname(r), subiter_errmsg(it));
        }
        subiter_close(it);
        it = NULL;
        unwatch(b);
        b->n_done++;
    }
    if (selected(b, "bench=idle side=producer")) {
        struct idle_report rep;
        bool have = false;

        progress(b, "bench=idle side=producer");
        watch(b, "bench=idle side=producer");
        o.buffer_items = 4;
        /* Two past the bound, so it blocks whether or not the bound
         * counts the item being published. */
        arg = o.buffer_items + 2;
        r = subiter_open(&it, gen_blocked, b->hot, &o);
        if (r == 0) {
            r = subiter_start(it, &arg, sizeof arg);
        }
        if (r == 0) {
            sleep_s(b->cfg->idle_s);
            while ((r = subiter_next(it, &item)) > 0) {
                if (item.len == sizeof rep) {
                    memcpy(&rep, item.data, sizeof rep);
                    have = true;
                }
            }
        }
        if (r < 0 || !have) {
            out(b, "bench=idle side=producer error=\"%s: %s\"",
                subiter_errname(r), r < 0 ? subiter_errmsg(it) : "no report");
        } else {
            print_idle(b, "producer", rep.wall_s, rep.cpu_s, &f->idle_p);
        }
        subiter_close(it);
        unwatch(b);
        b->n_done++;
    }
}
