/* bench_pingpong.c: bench=pingpong, the cost of one round trip per item:
 * a subiter stream bounded to one item in flight, a request and its
 * response through subiter_start() (the worker echoes its input), and a
 * pipe echo child, each PING_BYTES, in microseconds per item.
 */
#include "config.h"

#include <inttypes.h>

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
