/* bench_throughput.c: bench=throughput, items and bytes per second from
 * one worker to the parent for item sizes from 0 bytes to 4 MiB: subiter's
 * subiter_yield() and subiter_reserve()/commit(), the consumer touching
 * each item or reading all of it, next to the baselines (in process, a
 * pipe, a pipe with protobuf-c, ZeroMQ when built with it, memcpy), and
 * at 64-byte items with
 * tighter item bounds. MB is 10^6 bytes.
 */
#include "config.h"

#include <inttypes.h>

#include "bench/bench.h"

void print_throughput(struct bench *b, const struct result *r)
{
    char label[256];
    double mb = (double)r->spec.item_bytes / 1e6;

    label_of(&r->spec, r->pinned, label, sizeof label);
    out(b,
        "%s items=%" PRIu64 " reps=%d items_per_s_min=%.6g "
        "items_per_s_med=%.6g items_per_s_max=%.6g mb_per_s_min=%.6g "
        "mb_per_s_med=%.6g mb_per_s_max=%.6g ns_per_item_med=%.4g "
        "wall_s_med=%.3f cpu_parent_s=%.3f cpu_child_s=%.3f",
        label, r->items, b->cfg->reps, r->rate_min, r->rate_med, r->rate_max,
        r->rate_min * mb, r->rate_med * mb, r->rate_max * mb, 1e9 / r->rate_med,
        r->wall_med, r->cpu_self, r->cpu_child);
}

/* A first guess at the item count of a run: the calibration grows it. */
uint64_t pilot_items(size_t item_bytes)
{
    if (item_bytes >= MIB) {
        return 4;
    }
    if (item_bytes >= 64 * KIB) {
        return 32;
    }
    return 1000;
}

const struct result *throughput(struct bench *b, struct results *rs,
                                const struct spec *t)
{
    char label[256];
    const struct result *r;

    label_of(t, false, label, sizeof label);
    if (!selected(b, label)) {
        return NULL;
    }
    r = measure(b, rs, t, false, pilot_items(t->item_bytes));
    if (r) {
        print_throughput(b, r);
    }
    return r;
}

static const size_t sizes[] = {0, 64, 4 * KIB, 64 * KIB, MIB, 4 * MIB};

struct spec throughput_spec(enum impl impl, size_t item_bytes)
{
    /* The default 4 MiB ring cannot hold a 4 MiB item (records carry a
     * header): give those twice the room. */
    struct spec t = {"throughput",
                     impl,
                     CONSUME_TOUCH,
                     item_bytes,
                     SUBITER_OPTS_DEFAULT_BUFFER_ITEMS,
                     item_bytes >= 4 * MIB ? 8 * MIB
                                           : SUBITER_OPTS_DEFAULT_BUFFER_BYTES};

    return t;
}

void bench_throughput(struct bench *b, struct results *rs)
{
    static const enum impl subiter_impls[] = {IMPL_YIELD, IMPL_RESERVE};
    /* The default bound is the ring's bytes, as for the limit ring; the
     * item caps are extra lines at 64 B. */
    static const unsigned small_bounds[] = {1, 8, 64};
    size_t k, j, n;

    for (k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        struct spec t = throughput_spec(IMPL_INPROC, sizes[k]);

        /* Baselines first, then subiter, all with the same item size. */
        t.impl = IMPL_INPROC;
        t.consume = CONSUME_TOUCH;
        throughput(b, rs, &t);
        if (sizes[k] > 0) {
            t.consume = CONSUME_READ;
            throughput(b, rs, &t);
        }
        t.consume = CONSUME_TOUCH;
        t.impl = IMPL_PIPE;
        throughput(b, rs, &t);
        t.impl = IMPL_PIPE_PB;
        throughput(b, rs, &t);
#ifdef HAVE_ZMQ
        t.impl = IMPL_ZMQ;
        throughput(b, rs, &t);
#endif
        t.impl = IMPL_MEMCPY;
        t.consume = CONSUME_NONE;
        throughput(b, rs, &t);
        for (j = 0; j < 2; j++) {
            t.impl = subiter_impls[j];
            t.consume = CONSUME_TOUCH;
            throughput(b, rs, &t);
            if (sizes[k] > 0) {
                t.consume = CONSUME_READ;
                throughput(b, rs, &t);
            }
        }
        if (sizes[k] == 64) {
            /* A tighter item bound costs more hand-offs per item. */
            for (n = 0; n < sizeof small_bounds / sizeof small_bounds[0]; n++) {
                for (j = 0; j < 2; j++) {
                    t.impl = subiter_impls[j];
                    t.consume = CONSUME_TOUCH;
                    t.buffer_items = small_bounds[n];
                    throughput(b, rs, &t);
                }
            }
        }
    }
}
