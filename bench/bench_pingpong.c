/* bench_pingpong.c: bench=pingpong, the cost of one round trip per item:
 * a subiter stream bounded to one item in flight, a request and its
 * response through subiter_start() (the worker echoes its input), and a
 * pipe echo child, each PING_BYTES, in microseconds per item.
 * bench=pingpong_latency: the last two again, each round trip timed on
 * its own, as the 50th and 99th percentiles, and their ratios to the
 * pipe's (lower is better).
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>

#include "bench/bench.h"

static void print_pingpong(struct bench *b, const struct result *r)
{
    char label[256];

    label_of(&r->spec, false, label, sizeof label);
    out(b,
        "%s items=%" PRIu64 " reps=%d us_per_item_min=%.3f "
        "us_per_item_med=%.3f us_per_item_max=%.3f cpu_parent_s=%.3f "
        "cpu_child_s=%.3f",
        label, r->items, b->cfg->reps, 1e6 / r->rate_max, 1e6 / r->rate_med,
        1e6 / r->rate_min, r->cpu_self, r->cpu_child);
}

void bench_pingpong(struct bench *b, struct results *rs)
{
    static const struct spec specs[] = {
        {"pingpong", IMPL_YIELD, CONSUME_TOUCH, PING_BYTES, 1,
         SUBITER_OPTS_DEFAULT_BUFFER_BYTES},
        {"pingpong", IMPL_PING_START, CONSUME_TOUCH, PING_BYTES, 1,
         SUBITER_OPTS_DEFAULT_BUFFER_BYTES},
        {"pingpong", IMPL_PING_PIPE, CONSUME_TOUCH, PING_BYTES, 0, 0},
    };
    char label[256];
    size_t k;

    for (k = 0; k < sizeof specs / sizeof specs[0]; k++) {
        const struct result *r;

        label_of(&specs[k], false, label, sizeof label);
        if (!selected(b, label)) {
            continue;
        }
        r = measure(b, rs, &specs[k], false, 200);
        if (r) {
            print_pingpong(b, r);
        }
    }
}

/* p50 and p99 of one kind of round trip; false when not selected or on
 * an error (printed). */
static bool round_trip_percentiles(struct bench *b, enum impl impl, double *p)
{
    const struct spec t = {
        "pingpong_latency", impl, CONSUME_TOUCH,
        PING_BYTES,         1,    SUBITER_OPTS_DEFAULT_BUFFER_BYTES};
    const int n = b->cfg->quick ? 2000 : 20000;
    char label[256];
    double *us;

    label_of(&t, false, label, sizeof label);
    if (!selected(b, label)) {
        return false;
    }
    us = calloc((size_t)n, sizeof *us);
    if (us == NULL) {
        out(b, "%s error=\"out of memory\"", label);
        return false;
    }
    progress(b, label);
    watch(b, label);
    if (stream_round_trips(b, &t, (uint64_t)n, us) < 0) {
        unwatch(b);
        out(b, "%s error=\"%s\"", label, b->errbuf);
        free(us);
        return false;
    }
    unwatch(b);
    p[0] = median(us, n); /* sorts us */
    p[1] = us[(size_t)n * 99 / 100];
    out(b, "%s n=%d us_min=%.2f us_p50=%.2f us_p99=%.2f us_max=%.2f", label, n,
        us[0], p[0], p[1], us[n - 1]);
    free(us);
    return true;
}

void bench_pingpong_latency(struct bench *b)
{
    double sub[2], pipe[2];
    bool have_sub = round_trip_percentiles(b, IMPL_PING_START, sub);
    bool have_pipe = round_trip_percentiles(b, IMPL_PING_PIPE, pipe);

    if (have_sub && have_pipe) {
        ratio(b, "pingpong_p50/pipe_p50", sub[0] / pipe[0], -1, -1);
        ratio(b, "pingpong_p99/pipe_p99", sub[1] / pipe[1], -1, -1);
    }
}
