/* main.c: subiter-bench's driver. Measures throughput, latency and idle
 * cost of subiter, in one run next to the baselines it must beat (the
 * generator called in process, a pipe, a pipe carrying protobuf-c
 * messages, and memcpy), then how fast a death is noticed, and the pools;
 * each figure lives in its own bench_<figure>.c. Prints one key=value line
 * per measurement on stdout, then one `bench=ratio` line per target of
 * the performance issue; a progress line goes to stderr when it is a
 * terminal.
 *
 *     subiter-bench [--quick] [--reps=N] [--filter=TEXT[,TEXT...]] [--pin]
 *     subiter-bench --contention [--quick] [--reps=N]
 *
 * BENCH_TRACE=1 in the environment traces every run on stderr. Uses
 * subiter's public API only.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"

/* --------------------------------------------------------------- ratios */

static const struct result *find(const struct results *rs, const char *bench,
                                 enum impl impl, enum consume consume,
                                 size_t item_bytes)
{
    int i;

    for (i = 0; i < rs->n; i++) {
        const struct result *r = &rs->r[i];

        if (strcmp(r->spec.bench, bench) == 0 && r->spec.impl == impl &&
            r->spec.consume == consume && r->spec.item_bytes == item_bytes &&
            !r->pinned &&
            (!is_subiter(impl) ||
             r->spec.buffer_items == SUBITER_OPTS_DEFAULT_BUFFER_ITEMS)) {
            return r;
        }
    }
    return NULL;
}

/* One ratio line; lo/hi are the bounds (NAN-free: < 0 = none). */
void ratio(struct bench *b, const char *name, double value, double lo,
           double hi)
{
    char target[64] = "";

    if (value < 0) {
        return;
    }
    if (lo >= 0) {
        snprintf(target, sizeof target, " target_min=%g met=%s", lo,
                 value >= lo ? "yes" : "no");
    } else if (hi >= 0) {
        snprintf(target, sizeof target, " target_max=%g met=%s", hi,
                 value <= hi ? "yes" : "no");
    }
    out(b, "bench=ratio name=%s value=%.3g%s", name, value, target);
}

/* Items per second of a over b (bandwidth alike: same item size). */
static void rate_ratio(struct bench *b, const struct results *rs,
                       const char *name, enum impl x, enum consume cx,
                       enum impl y, enum consume cy, size_t item_bytes,
                       double lo)
{
    const struct result *rx = find(rs, "throughput", x, cx, item_bytes);
    const struct result *ry = find(rs, "throughput", y, cy, item_bytes);

    if (rx && ry) {
        ratio(b, name, rx->rate_med / ry->rate_med, lo, -1);
    }
}

void print_ratios(struct bench *b, const struct results *rs,
                  const struct figures *f)
{
    const enum consume T = CONSUME_TOUCH, R = CONSUME_READ;
    const struct pool_figures *pf = &f->pool;
    char name[64];

    rate_ratio(b, rs, "yield_64B/pipe_64B", IMPL_YIELD, T, IMPL_PIPE, T, 64,
               10);
    rate_ratio(b, rs, "reserve_64B/pipe_64B", IMPL_RESERVE, T, IMPL_PIPE, T, 64,
               10);
    rate_ratio(b, rs, "yield_64B/pipe_pb_64B", IMPL_YIELD, T, IMPL_PIPE_PB, T,
               64, 10);
    rate_ratio(b, rs, "reserve_64B/pipe_pb_64B", IMPL_RESERVE, T, IMPL_PIPE_PB,
               T, 64, 10);
    rate_ratio(b, rs, "yield_64B/zmq_64B", IMPL_YIELD, T, IMPL_ZMQ, T, 64, -1);
    rate_ratio(b, rs, "yield_4KiB/zmq_4KiB", IMPL_YIELD, T, IMPL_ZMQ, T,
               4 * KIB, -1);
    rate_ratio(b, rs, "yield_1MiB/zmq_1MiB", IMPL_YIELD, T, IMPL_ZMQ, T, MIB,
               -1);
    rate_ratio(b, rs, "yield_64B/inproc_64B", IMPL_YIELD, T, IMPL_INPROC, T, 64,
               -1);
    rate_ratio(b, rs, "yield_1MiB/memcpy_1MiB", IMPL_YIELD, T, IMPL_MEMCPY,
               CONSUME_NONE, MIB, 0.5);
    /* Reported, as README has it: reading every byte another core has
     * just written runs at the speed lines move between cores, not at
     * memcpy()'s from a buffer in its own cache. */
    rate_ratio(b, rs, "yield_1MiB_read/memcpy_1MiB", IMPL_YIELD, R, IMPL_MEMCPY,
               CONSUME_NONE, MIB, -1);
    rate_ratio(b, rs, "reserve_1MiB/pipe_1MiB", IMPL_RESERVE, T, IMPL_PIPE, T,
               MIB, 10);
    rate_ratio(b, rs, "reserve_1MiB_read/pipe_1MiB", IMPL_RESERVE, R, IMPL_PIPE,
               T, MIB, 10);
    if (f->fork_med > 0 && f->ofc_med > 0) {
        ratio(b, "open_first_close/fork_exit_wait", f->ofc_med / f->fork_med,
              -1, 1.5);
    }
    ratio(b, "pinned/unpinned_yield_64B", f->pin_ratio, -1, -1);
    ratio(b, "idle_consumer_cpu/wall", f->idle_c, -1, 0.01);
    ratio(b, "idle_producer_cpu/wall", f->idle_p, -1, 0.01);
    ratio(b, "pool2_vs_pool1", pf->cpu2_vs_cpu1, 1.9, -1);
    ratio(b, "pool2_vs_pool1_best", pf->cpu2_vs_cpu1_best, -1, -1);
    ratio(b, "pool1_vs_subiter", pf->cpu1_vs_handle, -1, -1);
    ratio(b, "pool_ordered_vs_unordered", pf->ordered_vs_unordered, 0.9, -1);
    snprintf(name, sizeof name, "pool_ordered_vs_unordered_%uitems",
             (unsigned)MERGE_BOUND);
    ratio(b, name, pf->ordered_vs_unordered_bound, -1, -1);
}

/* ----------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    struct results rs;
    struct bench_cfg cfg;
    struct bench b;
    struct figures f;
    int rc;

    if ((rc = bench_parse_args(&cfg, argc, argv)) >= 0) {
        return rc;
    }
    if (bench_init(&b, &cfg) < 0) {
        bench_fini(&b);
        return 1;
    }
    out(&b,
        "bench=info version=%s cpus_online=%ld quick=%d reps=%d "
        "target_s=%.2f",
        subiter_version(), sysconf(_SC_NPROCESSORS_ONLN), cfg.quick ? 1 : 0,
        cfg.reps, cfg.target_s);

    if (cfg.contention) {
        /* CPU hogs would disturb every other figure: this one alone. */
        bench_contention(&b);
        out(&b, "bench=done seconds=%.1f measurements=%d", now_s() - b.t_begin,
            b.n_done);
        bench_fini(&b);
        return 0;
    }
    bench_throughput(&b, &rs);
    bench_limit(&b, &rs);
    bench_latency(&b, &f);
    bench_pingpong(&b, &rs);
    bench_pingpong_latency(&b);
    bench_idle(&b, &f);
    bench_death(&b);
    bench_parent_death(&b);
    bench_pinned(&b, &rs, &f);
    bench_pool_cpu(&b, &f.pool);
    bench_pool_merge(&b, &f.pool);
    bench_resume(&b);
    print_ratios(&b, &rs, &f);

    out(&b, "bench=done seconds=%.1f measurements=%d sink=%" PRIu64,
        now_s() - b.t_begin, b.n_done, b.sink);
    bench_fini(&b);
    return 0;
}
