/* bench_pinned.c: bench=pinned, throughput with both sides on one CPU
 * (the worker inherits the parent's mask) next to the same spec unpinned,
 * measured back to back, for subiter_yield() and subiter_reserve() at 64
 * bytes and 64 KiB; a bench=pinned summary line gives the ratio.
 */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <string.h>

#include "bench/bench.h"

void bench_pinned(struct bench *b, struct results *rs, struct figures *f)
{
    static const size_t pin_sizes[] = {64, 64 * KIB};
    cpu_set_t orig, one;
    int cpu, k;
    size_t s;

    f->pin_ratio = -1;
    if (sched_getaffinity(0, sizeof orig, &orig) < 0) {
        out(b, "bench=pinned error=\"sched_getaffinity: %s\"", strerror(errno));
        return;
    }
    cpu = sched_getcpu();
    if (cpu < 0 || !CPU_ISSET(cpu, &orig)) {
        for (cpu = 0; cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &orig); cpu++) {
        }
    }
    for (s = 0; s < sizeof pin_sizes / sizeof pin_sizes[0]; s++) {
        for (k = 0; k < 2; k++) {
            struct spec t = {"pinned",
                             k ? IMPL_RESERVE : IMPL_YIELD,
                             CONSUME_TOUCH,
                             pin_sizes[s],
                             64,
                             SUBITER_OPTS_DEFAULT_BUFFER_BYTES};
            const struct result *u, *p;
            char label[256];

            label_of(&t, true, label, sizeof label);
            if (!selected(b, label)) {
                continue;
            }
            u = measure(b, rs, &t, false, pilot_items(t.item_bytes));
            if (!u) {
                continue;
            }
            print_throughput(b, u);
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            if (sched_setaffinity(0, sizeof one, &one) < 0) {
                out(b, "bench=pinned error=\"sched_setaffinity: %s\"",
                    strerror(errno));
                return;
            }
            p = measure(b, rs, &t, true, pilot_items(t.item_bytes));
            (void)sched_setaffinity(0, sizeof orig, &orig);
            if (!p) {
                continue;
            }
            print_throughput(b, p);
            out(b,
                "bench=pinned impl=%s item_bytes=%zu cpu=%d cpus_allowed=%d "
                "pinned_items_per_s_med=%.6g unpinned_items_per_s_med=%.6g "
                "ratio=%.3f",
                impl_names[t.impl], t.item_bytes, cpu, CPU_COUNT(&orig),
                p->rate_med, u->rate_med, p->rate_med / u->rate_med);
            if (f->pin_ratio < 0 && t.item_bytes == 64 &&
                t.impl == IMPL_YIELD) {
                f->pin_ratio = p->rate_med / u->rate_med;
            }
        }
    }
}
