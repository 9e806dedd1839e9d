/* limit.c: the physical limit of subiter's design (impl=limit), a minimal
 * single-producer/single-consumer ring in a MAP_SHARED mapping between the
 * bench and a forked child: 8-byte record headers, each side's index on a
 * cache line of its own, each index published every LIMIT_BATCH items or
 * an eighth of the ring, and always before its side waits and at the end
 * of a run, so that the steady state costs one shared cache-line transfer
 * per batch and no syscall. A side that finds nothing to do spins a while,
 * then sleeps on a futex with a sleeping flag that the other side looks
 * at after each publication. It moves the items subiter_yield() moves
 * (stamped in the hot buffer, copied into the ring, consumed in place),
 * so the bench=ratio lines of subiter_yield over it are what subiter
 * costs over the ring alone.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench/bench.h"

#define LIMIT_BATCH 32u
#define LIMIT_SPIN 4096u
#define LIMIT_END UINT32_MAX        /* the header of a run's last record */
#define LIMIT_WRAP (UINT32_MAX - 1) /* the rest of the ring is unused */

/* One side's index, its sleeping flag beside it, alone on its line. */
struct limit_side {
    _Alignas(64) _Atomic uint64_t pos; /* bytes written / read, ever */
    _Atomic uint32_t sleeping;
};

struct limit_ring {
    struct limit_side prod, cons;
    size_t cap;
    _Alignas(64) unsigned char data[];
};

static void futex(_Atomic uint32_t *w, int op, uint32_t v)
{
    (void)syscall(SYS_futex, (void *)(uintptr_t)w, op, v, NULL, NULL, 0);
}

static void cpu_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Publish our index; wake the other side if it sleeps. The seq_cst fence
 * orders the store before the look at its flag, as its own fence orders
 * its flag before its look at our index: one of the two sees the other. */
static void publish(struct limit_side *me, struct limit_side *other,
                    uint64_t pos)
{
    atomic_store_explicit(&me->pos, pos, memory_order_release);
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&other->sleeping, memory_order_relaxed)) {
        atomic_store_explicit(&other->sleeping, 0, memory_order_relaxed);
        futex(&other->sleeping, FUTEX_WAKE, 1);
    }
}

/* Wait until ok(other's index) holds; returns that index. */
static uint64_t await(struct limit_side *me, struct limit_side *other,
                      uint64_t need, bool is_prod, size_t cap)
{
    unsigned spin = 0;

    for (;;) {
        uint64_t v = atomic_load_explicit(&other->pos, memory_order_acquire);

        if (is_prod ? v + cap >= need : v >= need) {
            return v;
        }
        if (spin++ < LIMIT_SPIN) {
            cpu_pause();
            continue;
        }
        atomic_store_explicit(&me->sleeping, 1, memory_order_relaxed);
        atomic_thread_fence(memory_order_seq_cst);
        v = atomic_load_explicit(&other->pos, memory_order_acquire);
        if (is_prod ? v + cap >= need : v >= need) {
            atomic_store_explicit(&me->sleeping, 0, memory_order_relaxed);
            return v;
        }
        futex(&me->sleeping, FUTEX_WAIT, 1);
        spin = 0;
    }
}

static size_t rec_size(size_t len)
{
    return 8 + ((len + 7) & ~(size_t)7);
}

/* The producer: n items per count read from `cmd`, then an end record. */
static _Noreturn void limit_child(const struct runner *r, int cmd)
{
    struct limit_ring *q = r->limit;
    unsigned char *hot = r->gen.hot;
    size_t len = r->t->item_bytes, cap = q->cap;
    uint64_t w = atomic_load_explicit(&q->prod.pos, memory_order_relaxed);
    uint64_t seen = 0, n, i;

    while (read_full(cmd, &n, sizeof n) == sizeof n) {
        uint64_t pub = w;
        unsigned batch = 0;

        for (i = 0; i <= n; i++) {
            uint32_t hdr = i < n ? (uint32_t)len : LIMIT_END;
            size_t need = rec_size(i < n ? len : 0), off = w % cap;

            if (off + need > cap) {
                need += cap - off; /* a wrap record, then ours at 0 */
            }
            if (w + need > seen + cap) {
                if (w != pub) {
                    publish(&q->prod, &q->cons, w);
                    pub = w;
                    batch = 0;
                }
                seen = await(&q->prod, &q->cons, w + need, true, cap);
            }
            if (off + rec_size(i < n ? len : 0) > cap) {
                uint32_t wrap = LIMIT_WRAP;

                memcpy(q->data + off, &wrap, sizeof wrap);
                w += cap - off;
                off = 0;
            }
            if (i < n) {
                stamp(hot, len, i);
                memcpy(q->data + off + 8, hot, len);
            }
            memcpy(q->data + off, &hdr, sizeof hdr);
            w += rec_size(i < n ? len : 0);
            if (++batch >= LIMIT_BATCH || w - pub >= cap / 8 || i == n) {
                publish(&q->prod, &q->cons, w);
                pub = w;
                batch = 0;
            }
        }
        mark_cpu(r->gen.cpu_ns);
    }
    _exit(0);
}

/* Map the ring and fork the producer; its commands come through a pipe,
 * off the measured path. */
int limit_setup(struct runner *r)
{
    size_t cap = r->t->buffer_bytes;
    struct limit_ring *q;

    q = mmap(NULL, sizeof *q + cap, PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (q == MAP_FAILED) {
        set_error(r->b, "mmap: %s", strerror(errno));
        return -1;
    }
    q->cap = cap;
    r->limit = q;
    return fork_commanded(r, limit_child);
}

void limit_teardown(struct runner *r)
{
    if (r->limit) {
        struct limit_ring *q = r->limit;

        munmap(q, sizeof *q + q->cap);
        r->limit = NULL;
    }
}

/* The consumer: n items and the end record, each consumed in place. */
int run_limit(struct runner *r, uint64_t n)
{
    struct limit_ring *q = r->limit;
    size_t cap = q->cap;
    uint64_t rd = atomic_load_explicit(&q->cons.pos, memory_order_relaxed);
    uint64_t avail = rd, pub = rd, got = 0;
    unsigned batch = 0;

    if (write_full(r->to_child, &n, sizeof n) < 0) {
        set_error(r->b, "limit: write: %s", strerror(errno));
        return -1;
    }
    for (;;) {
        uint32_t hdr;
        size_t off = rd % cap;

        if (rd + 8 > avail) {
            if (rd != pub) {
                publish(&q->cons, &q->prod, rd);
                pub = rd;
                batch = 0;
            }
            avail = await(&q->cons, &q->prod, rd + 8, false, cap);
        }
        memcpy(&hdr, q->data + off, sizeof hdr);
        if (hdr == LIMIT_WRAP) {
            rd += cap - off;
            continue;
        }
        rd += rec_size(hdr == LIMIT_END ? 0 : hdr);
        if (hdr == LIMIT_END) {
            break;
        }
        consume(&r->b->sink, q->data + off + 8, hdr, r->t->consume);
        got++;
        if (++batch >= LIMIT_BATCH || rd - pub >= cap / 8) {
            publish(&q->cons, &q->prod, rd);
            pub = rd;
            batch = 0;
        }
    }
    publish(&q->cons, &q->prod, rd);
    if (got != n) {
        set_error(r->b, "limit: got %" PRIu64 " of %" PRIu64 " items", got, n);
        return -1;
    }
    return 0;
}

/* Rounds of each ratio. One round's ratio at 64 B ranged from 0.23 to
 * 3.7 in three runs of this bench (either side's run moves between modes
 * some 2x apart), at 1 MiB by a few per cent with the order of the pair:
 * more rounds than the 5 that a ratio needs at least, in both orders. */
#define LIMIT_ROUNDS 9

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/*
 * impl=limit's throughput lines at 64 B, 4 KiB and 1 MiB beside the
 * throughput bench's, then subiter_yield over the limit ring in
 * LIMIT_ROUNDS rounds that run both, one after the other, on the same
 * item count, subiter first in even rounds and the ring first in odd
 * ones (the second of a pair finds the machine as the first left it):
 * the machine's load changes between rounds, rarely within one, so the
 * median of the rounds' ratios is the figure.
 */
void bench_limit(struct bench *b, struct results *rs)
{
    static const size_t sizes[] = {64, 4096, MIB};
    static const char *const names[] = {"64B", "4KiB", "1MiB"};
    static const double mins[] = {0.8, 0.95, 0.95};
    size_t k;

    for (k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        struct spec t = throughput_spec(IMPL_LIMIT, sizes[k]);
        struct spec y = t;
        const struct result *r;
        double v[LIMIT_ROUNDS];
        char name[64];
        int i;

        y.impl = IMPL_YIELD;
        r = throughput(b, rs, &t);
        if (!r) {
            continue;
        }
        for (i = 0; i < LIMIT_ROUNDS; i++) {
            double wy, wl;

            if (i % 2 == 0) {
                wy = stream_once(b, &y, r->items);
                wl = wy > 0 ? stream_once(b, &t, r->items) : -1;
            } else {
                wl = stream_once(b, &t, r->items);
                wy = wl > 0 ? stream_once(b, &y, r->items) : -1;
            }
            if (wy <= 0 || wl <= 0) {
                out(b, "bench=ratio name=yield_%s/limit_%s error=\"%s\"",
                    names[k], names[k], b->errbuf);
                break;
            }
            v[i] = wl / wy;
        }
        if (i == LIMIT_ROUNDS) {
            qsort(v, LIMIT_ROUNDS, sizeof v[0], cmp_double);
            snprintf(name, sizeof name, "yield_%s/limit_%s", names[k],
                     names[k]);
            ratio(b, name, v[LIMIT_ROUNDS / 2], mins[k], -1);
        }
    }
}
