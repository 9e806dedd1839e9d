/* bench_pool.c: the pools.
 *
 * bench=pool_cpu: a CPU-bound generator (few items, each a hash chain of
 * CPU_STEPS steps: a few milliseconds) on a plain subiter handle, a pool
 * of one worker and a pool of two, all on the same total of items, split
 * into shards with subiter_worker_id()/subiter_num_workers().
 * bench=pool_merge: 64-byte items yielded as fast as possible by a pool of
 * two workers, ORDERED (round robin) against UNORDERED, with the workers'
 * default options (a pool's own item bound), then again with buffer_items
 * MERGE_BOUND: a round robin can run only as far ahead as the bound of
 * the worker whose turn it is, so the bound decides what the order
 * costs when three processes share two CPUs. Every variant's
 * workers stay open across the runs, which alternate between the variants
 * (the machine is noisy: what hits one hits the others alike); a run is
 * timed from subiter_pool_start() (or subiter_start()) to the end of the
 * iteration. Rates and wall_s_med are medians over cfg->reps runs,
 * cpu_parent_s and cpu_child_s (summed over the workers) means per run.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "bench/bench.h"

#define CPU_STEPS ((uint64_t)3 << 19) /* hash steps per pool_cpu item */
#define CPU_ITEM 16                   /* pool_cpu item: index, hash */
#define MERGE_ITEM 64                 /* pool_merge item size */
#define POOL_SLOTS 16                 /* per-worker CPU marks */

/* The pool generator's input: the same for every worker and every run of
 * a measurement. */
struct pool_input {
    uint64_t total; /* items over all shards */
    uint64_t steps; /* hash steps per item; 0: none */
    uint64_t item_bytes;
};

/* The pool generator's parameters; the worker reads its copy. */
struct pool_gen {
    unsigned slot;            /* first of its workers' CPU marks in cpu_ns */
    _Atomic uint64_t *cpu_ns; /* POOL_SLOTS MAP_SHARED words */
    unsigned char *hot;
};

/* One variant of a pool bench: a handle or a pool, and its figures. */
struct pool_variant {
    const char *impl;
    unsigned workers;
    int order;             /* pools only; -1: a plain handle */
    unsigned buffer_items; /* the workers' bound; 0: their defaults */
    bool on;
    subiter *it;
    subiter_pool *p;
    struct pool_gen gen;
    char label[256];
    double rates[MAX_REPS], walls[MAX_REPS], cpu_self, cpu_child;
    double child_mark;
    double rate_med, rate_max;
    uint64_t check; /* the XOR of the hashes of the last run */
};

/* A chain of multiply-xorshift steps: pure computation, no memory. */
static uint64_t cpu_work(uint64_t seed, uint64_t steps)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15u + 1, i;

    for (i = 0; i < steps; i++) {
        x ^= x >> 31;
        x *= 0x7fb5d329728ea185u;
        x ^= x >> 27;
    }
    return x;
}

/* Items i of its shard (i % num_workers == worker_id), each its index
 * and, with steps, the hash of the index; then its CPU mark. */
static int gen_pool(subiter_gen *g, void *arg)
{
    const struct pool_gen *c = arg;
    unsigned id = subiter_worker_id(g), nw = subiter_num_workers(g);
    struct pool_input in;
    const void *p;
    size_t len;
    uint64_t i;
    int r;

    p = subiter_input(g, &len);
    if (!p || len != sizeof in) {
        return subiter_fail(g, "bad input (%zu bytes)", len);
    }
    memcpy(&in, p, sizeof in);
    if (in.item_bytes < CPU_ITEM || in.item_bytes > MAX_ITEM) {
        return subiter_fail(g, "bad item size %" PRIu64, in.item_bytes);
    }
    for (i = id; i < in.total; i += nw) {
        uint64_t h = in.steps ? cpu_work(i, in.steps) : i;

        memcpy(c->hot, &i, sizeof i);
        memcpy(c->hot + sizeof i, &h, sizeof h);
        if ((r = subiter_yield(g, c->hot, (size_t)in.item_bytes))) {
            return r;
        }
    }
    if (c->slot + id < POOL_SLOTS) {
        mark_cpu(&c->cpu_ns[c->slot + id]);
    }
    return 0;
}

/* Open the variant's handle or pool; its workers' marks start at slot. */
static int pool_setup(struct bench *b, struct pool_variant *v, unsigned slot)
{
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;
    subiter_opts o = SUBITER_OPTS_INIT;
    const subiter_opts *wo = NULL;
    unsigned k;
    int rc;

    v->gen.slot = slot;
    for (k = 0; k < v->workers && slot + k < POOL_SLOTS; k++) {
        atomic_store_explicit(&v->gen.cpu_ns[slot + k], 0,
                              memory_order_relaxed);
    }
    v->child_mark = 0;
    v->cpu_self = v->cpu_child = 0;
    if (v->buffer_items > 0) {
        o.buffer_items = v->buffer_items;
        wo = &o;
    }
    fflush(NULL);
    if (v->order < 0) {
        rc = subiter_open(&v->it, gen_pool, &v->gen, wo);
        if (rc != 0) {
            set_subiter_error(b, "subiter_open", v->it, rc);
            subiter_close(v->it);
            v->it = NULL;
            return -1;
        }
        return 0;
    }
    po.workers = v->workers;
    po.order = v->order;
    po.worker = wo;
    rc = subiter_pool_open(&v->p, gen_pool, &v->gen, &po);
    if (rc != 0) {
        set_pool_error(b, "subiter_pool_open", v->p, rc);
        subiter_pool_close(v->p);
        v->p = NULL;
        return -1;
    }
    return 0;
}

static int pool_teardown(struct bench *b, struct pool_variant *v)
{
    int bad = close_handle(b, &v->it) < 0, rc;

    if (v->p) {
        rc = subiter_pool_close(v->p);
        v->p = NULL;
        if (rc != 0) {
            set_error(b, "subiter_pool_close: %s", subiter_errname(rc));
            bad = 1;
        }
    }
    return bad ? -1 : 0;
}

/* One run of the variant over `in`: checks that every index came once
 * (in sequence when ordered, from the worker owning its shard) and
 * records the wall time, the parent's CPU and the workers'. */
static int pool_run(struct bench *b, struct pool_variant *v,
                    const struct pool_input *in, struct sample *s)
{
    uint64_t got = 0, sum = 0, bad = 0, check = 0, idx, h, want_sum;
    bool seq = v->order == SUBITER_POOL_ORDERED || v->it != NULL;
    double c0, t0, mark = 0;
    unsigned k;
    int rc;

    c0 = cpu_s(RUSAGE_SELF);
    t0 = now_s();
    if (v->it) {
        subiter_item item;

        rc = subiter_start(v->it, in, sizeof *in);
        if (rc != 0) {
            set_subiter_error(b, "subiter_start", v->it, rc);
            return -1;
        }
        while ((rc = subiter_next(v->it, &item)) > 0) {
            got++;
            if (item.len != in->item_bytes) {
                bad++;
                continue;
            }
            memcpy(&idx, item.data, sizeof idx);
            memcpy(&h, (const unsigned char *)item.data + sizeof idx, sizeof h);
            bad += idx != got - 1;
            sum += idx;
            check ^= h;
        }
        if (rc < 0) {
            set_subiter_error(b, "subiter_next", v->it, rc);
            return -1;
        }
    } else {
        subiter_pool_item item;

        rc = subiter_pool_start(v->p, in, sizeof *in);
        if (rc != 0) {
            set_pool_error(b, "subiter_pool_start", v->p, rc);
            return -1;
        }
        while ((rc = subiter_pool_next(v->p, &item)) > 0) {
            got++;
            if (item.kind != SUBITER_POOL_ITEM || item.len != in->item_bytes) {
                bad++;
                continue;
            }
            memcpy(&idx, item.data, sizeof idx);
            memcpy(&h, (const unsigned char *)item.data + sizeof idx, sizeof h);
            bad += (seq && idx != got - 1) || idx % v->workers != item.worker;
            sum += idx;
            check ^= h;
        }
        if (rc < 0) {
            set_pool_error(b, "subiter_pool_next", v->p, rc);
            return -1;
        }
    }
    s->wall_s = now_s() - t0;
    s->cpu_self_s = cpu_s(RUSAGE_SELF) - c0;
    want_sum = in->total > 0 ? in->total * (in->total - 1) / 2 : 0;
    if (got != in->total || sum != want_sum || bad != 0) {
        set_error(b,
                  "got %" PRIu64 " of %" PRIu64 " items, index sum %" PRIu64
                  " (want %" PRIu64 "), %" PRIu64 " %s",
                  got, in->total, sum, want_sum, bad,
                  seq ? "out of sequence, misattributed or malformed"
                      : "misattributed or malformed");
        return -1;
    }
    for (k = 0; k < v->workers && v->gen.slot + k < POOL_SLOTS; k++) {
        mark += read_cpu(&v->gen.cpu_ns[v->gen.slot + k]);
    }
    s->cpu_child_s = mark - v->child_mark;
    v->child_mark = mark;
    v->check = check;
    if (getenv("BENCH_TRACE")) {
        fprintf(stderr, "trace: %s n=%" PRIu64 " wall=%.6f\n", v->label,
                in->total, s->wall_s);
    }
    return 0;
}

/* Open the selected variants, warm each up with `warm`, then run them
 * cfg->reps times over `in`, in an order that rotates with every round.
 * Prints a line per variant (an error line for a failed one, which is
 * then left out). Returns how many variants have figures. */
static int pool_measure(struct bench *b, struct pool_variant *vars, int nv,
                        const struct pool_input *in,
                        const struct pool_input *warm, const char *extra)
{
    const int reps = b->cfg->reps;
    struct sample s;
    int i, j, ok = 0;
    unsigned slot = 0;

    for (j = 0; j < nv; j++) {
        struct pool_variant *v = &vars[j];

        v->rate_med = -1;
        if (!v->on) {
            continue;
        }
        progress(b, v->label);
        watch(b, v->label);
        if (pool_setup(b, v, slot) < 0 || pool_run(b, v, warm, &s) < 0) {
            out(b, "%s items=%" PRIu64 " error=\"%s\"", v->label, warm->total,
                b->errbuf);
            (void)pool_teardown(b, v);
            v->on = false;
        }
        slot += v->workers;
    }
    for (i = 0; i < reps; i++) {
        for (j = 0; j < nv; j++) {
            struct pool_variant *v = &vars[(i + j) % nv];

            if (!v->on) {
                continue;
            }
            progress(b, v->label);
            watch(b, v->label);
            if (pool_run(b, v, in, &s) < 0) {
                out(b, "%s items=%" PRIu64 " error=\"%s\"", v->label, in->total,
                    b->errbuf);
                (void)pool_teardown(b, v);
                v->on = false;
                continue;
            }
            v->rates[i] = (double)in->total / (s.wall_s > 0 ? s.wall_s : 1e-9);
            v->walls[i] = s.wall_s;
            v->cpu_self += s.cpu_self_s;
            v->cpu_child += s.cpu_child_s;
        }
    }
    unwatch(b);
    for (j = 0; j < nv; j++) {
        struct pool_variant *v = &vars[j];
        double wall;

        if (!v->on) {
            continue;
        }
        watch(b, v->label);
        if (pool_teardown(b, v) < 0) {
            out(b, "%s items=%" PRIu64 " error=\"%s\"", v->label, in->total,
                b->errbuf);
            continue;
        }
        unwatch(b);
        v->rate_med = median(v->rates, reps); /* sorts rates */
        v->rate_max = v->rates[reps - 1];
        wall = median(v->walls, reps);
        out(b,
            "%s%s items=%" PRIu64 " reps=%d items_per_s_min=%.6g "
            "items_per_s_med=%.6g items_per_s_max=%.6g ns_per_item_med=%.4g "
            "wall_s_med=%.3f cpu_parent_s=%.3f cpu_child_s=%.3f",
            v->label, extra, in->total, reps, v->rates[0], v->rate_med,
            v->rates[reps - 1], 1e9 / v->rate_med, wall, v->cpu_self / reps,
            v->cpu_child / reps);
        b->n_done++;
        ok++;
    }
    return ok;
}

/* Fill *v and say whether the filter selects it. */
static bool pool_variant_init(struct bench *b, struct pool_variant *v,
                              _Atomic uint64_t *cpu_ns, const char *bench,
                              const char *impl, unsigned workers, int order,
                              size_t item_bytes, unsigned buffer_items)
{
    int k;

    memset(v, 0, sizeof *v);
    v->impl = impl;
    v->workers = workers;
    v->order = order;
    v->buffer_items = buffer_items;
    v->gen.cpu_ns = cpu_ns;
    v->gen.hot = b->hot;
    k = snprintf(v->label, sizeof v->label, "bench=%s impl=%s workers=%u",
                 bench, impl, workers);
    if (order >= 0 && k > 0 && (size_t)k < sizeof v->label) {
        k += snprintf(v->label + k, sizeof v->label - (size_t)k, " order=%s",
                      order == SUBITER_POOL_ORDERED ? "ordered" : "unordered");
    }
    if (k > 0 && (size_t)k < sizeof v->label) {
        k += snprintf(v->label + k, sizeof v->label - (size_t)k,
                      " item_bytes=%zu", item_bytes);
    }
    if (buffer_items > 0 && k > 0 && (size_t)k < sizeof v->label) {
        snprintf(v->label + k, sizeof v->label - (size_t)k, " buffer_items=%u",
                 buffer_items);
    }
    v->on = selected(b, v->label);
    return v->on;
}

/* The workers' CPU marks: POOL_SLOTS shared words, or NULL after an
 * error line. */
static _Atomic uint64_t *map_marks(struct bench *b, const char *bench)
{
    _Atomic uint64_t *m = map_shared(POOL_SLOTS * sizeof *m);

    if (!m) {
        out(b, "bench=%s error=\"mmap failed\"", bench);
    }
    return m;
}

static void unmap_marks(_Atomic uint64_t *m)
{
    munmap(m, POOL_SLOTS * sizeof *m);
}

/* Measure the CPU-bound generator's variants; leave their ratios. */
static void pool_cpu(struct bench *b, struct pool_variant vars[3],
                     struct pool_figures *f)
{
    struct pool_variant *h = &vars[0], *p1 = &vars[1], *p2 = &vars[2];
    struct pool_input in, warm;
    double item_s = 1e9, t0, target = b->cfg->quick ? 0.1 : 1.0;
    char extra[64];
    uint64_t n;
    int i;

    /* One item's cost here, best of three: the item count follows. */
    progress(b, "bench=pool_cpu calibration");
    for (i = 0; i < 3; i++) {
        t0 = now_s();
        b->sink += cpu_work((uint64_t)i, CPU_STEPS);
        t0 = now_s() - t0;
        item_s = t0 < item_s ? t0 : item_s;
    }
    n = round2(target / (item_s > 0 ? item_s : 1e-9));
    n = n < 16 ? 16 : n;
    in.total = n;
    in.steps = CPU_STEPS;
    in.item_bytes = CPU_ITEM;
    warm = in;
    warm.total = 4;
    snprintf(extra, sizeof extra, " work_ms=%.3f", item_s * 1e3);
    if (pool_measure(b, vars, 3, &in, &warm, extra) == 0) {
        return;
    }
    if (p1->rate_med > 0 && p2->rate_med > 0) {
        f->cpu2_vs_cpu1 = p2->rate_med / p1->rate_med;
        f->cpu2_vs_cpu1_best = p2->rate_max / p1->rate_max;
    }
    if (p1->rate_med > 0 && h->rate_med > 0) {
        f->cpu1_vs_handle = p1->rate_med / h->rate_med;
    }
    if ((h->rate_med > 0 && p1->rate_med > 0 && h->check != p1->check) ||
        (p1->rate_med > 0 && p2->rate_med > 0 && p1->check != p2->check) ||
        (h->rate_med > 0 && p2->rate_med > 0 && h->check != p2->check)) {
        out(b, "bench=pool_cpu error=\"the variants' hashes differ\"");
    }
}

/* The CPU-bound generator on one worker (a handle, a pool) and on two. */
void bench_pool_cpu(struct bench *b, struct pool_figures *f)
{
    struct pool_variant vars[3];
    _Atomic uint64_t *marks;
    bool any = false;

    f->cpu2_vs_cpu1 = f->cpu2_vs_cpu1_best = f->cpu1_vs_handle = -1;
    if (!(marks = map_marks(b, "pool_cpu"))) {
        return;
    }
    any |= pool_variant_init(b, &vars[0], marks, "pool_cpu", "subiter_yield", 1,
                             -1, CPU_ITEM, 0);
    any |= pool_variant_init(b, &vars[1], marks, "pool_cpu", "pool", 1,
                             SUBITER_POOL_ORDERED, CPU_ITEM, 0);
    any |= pool_variant_init(b, &vars[2], marks, "pool_cpu", "pool", 2,
                             SUBITER_POOL_ORDERED, CPU_ITEM, 0);
    if (any) {
        pool_cpu(b, vars, f);
    }
    unmap_marks(marks);
}

/* The ordered merge against the unordered one, at 64-byte items: with the
 * pool's default worker options, then with a small item bound. */
void bench_pool_merge(struct bench *b, struct pool_figures *f)
{
    struct pool_variant v[4];
    struct pool_input in, warm;
    _Atomic uint64_t *marks;
    bool any = false;
    int k;

    f->ordered_vs_unordered = f->ordered_vs_unordered_bound = -1;
    if (!(marks = map_marks(b, "pool_merge"))) {
        return;
    }
    for (k = 0; k < 4; k++) {
        any |= pool_variant_init(b, &v[k], marks, "pool_merge", "pool", 2,
                                 k % 2 ? SUBITER_POOL_UNORDERED
                                       : SUBITER_POOL_ORDERED,
                                 MERGE_ITEM, k < 2 ? 0 : MERGE_BOUND);
    }
    if (!any) {
        goto done;
    }
    in.total = b->cfg->quick ? 400000 : 4000000;
    in.steps = 0;
    in.item_bytes = MERGE_ITEM;
    /* Twice around each worker's ring: every page faulted in. */
    warm = in;
    warm.total =
        4 * SUBITER_OPTS_DEFAULT_BUFFER_BYTES / (MERGE_ITEM + REC_GUESS);
    if (pool_measure(b, v, 4, &in, &warm, "") == 0) {
        goto done;
    }
    if (v[0].rate_med > 0 && v[1].rate_med > 0) {
        f->ordered_vs_unordered = v[0].rate_med / v[1].rate_med;
    }
    if (v[2].rate_med > 0 && v[3].rate_med > 0) {
        f->ordered_vs_unordered_bound = v[2].rate_med / v[3].rate_med;
    }
done:
    unmap_marks(marks);
}
