/* bench_resume.c: what resuming costs.
 *
 * bench=resume: a pool of two workers over a dataset of RESUME_ITEMS
 * items, each costing RESUME_STEPS hash steps to make (a decode, say). A
 * checkpoint is taken after k items (k = 3/4 of the dataset, and not a
 * multiple of the worker count), then three runs of the same remaining
 * length are timed from their start to the iteration's end:
 *   fresh     a fresh run over a dataset of only the remaining items;
 *   seek      subiter_pool_start_from() with a generator that calls
 *             subiter_skip() and starts after the delivered items;
 *   discard   subiter_pool_start_from() with a generator that does not,
 *             so the library drops the delivered items in the worker.
 * seek_vs_fresh near 1 means a seeking generator pays only for the rest;
 * discard_vs_fresh shows what making the skipped items costs. Runs
 * alternate between the variants (the machine is noisy); medians over
 * cfg->reps runs.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "bench/bench.h"

#define RESUME_ITEMS 40000u
#define RESUME_STEPS 2000u /* hash steps per item: a few microseconds */
#define RESUME_WORKERS 2u

/* The generator's input. */
struct resume_input {
    uint64_t total; /* items in the dataset */
    uint64_t seek;  /* 1: call subiter_skip() */
};

static uint64_t work(uint64_t i)
{
    uint64_t x = i * 0x9e3779b97f4a7c15u + 1;
    unsigned k;

    for (k = 0; k < RESUME_STEPS; k++) {
        x ^= x >> 31;
        x *= 0x7fb5d329728ea185u;
        x ^= x >> 27;
    }
    return x;
}

/* Items i of its shard, each its index and a costly hash of it. */
static int gen_resume(subiter_gen *g, void *arg)
{
    uint64_t n = subiter_num_workers(g), i = subiter_worker_id(g), v[2];
    struct resume_input in;
    const void *p;
    size_t len;
    int r;

    (void)arg;
    p = subiter_input(g, &len);
    if (p == NULL || len != sizeof in) {
        return subiter_fail(g, "bad input (%zu bytes)", len);
    }
    memcpy(&in, p, sizeof in);
    if (in.seek) {
        i += subiter_skip(g) * n;
    }
    for (; i < in.total; i += n) {
        v[0] = i;
        v[1] = work(i);
        if ((r = subiter_yield(g, v, sizeof v)) != 0) {
            return r;
        }
    }
    return 0;
}

/* Read the iteration to its end; the items, or -1. */
static long drain(struct bench *b, subiter_pool *p, long max)
{
    subiter_pool_item item;
    long k = 0;
    int r = 0;

    while ((max < 0 || k < max) && (r = subiter_pool_next(p, &item)) == 1) {
        consume(&b->sink, item.data, item.len, CONSUME_TOUCH);
        k++;
    }
    if (r < 0) {
        set_pool_error(b, "subiter_pool_next", p, r);
        return -1;
    }
    return k;
}

/* One timed run: a start (from ck if given), then every item. */
static double timed(struct bench *b, subiter_pool *p,
                    const struct resume_input *in, const void *ck, size_t cklen,
                    long want)
{
    double t0 = now_s();
    int r;

    r = ck != NULL ? subiter_pool_start_from(p, in, sizeof *in, ck, cklen)
                   : subiter_pool_start(p, in, sizeof *in);
    if (r != 0) {
        set_pool_error(b, "subiter_pool_start", p, r);
        return -1;
    }
    if (drain(b, p, -1) != want) {
        set_error(b, "resume: not %ld items", want);
        return -1;
    }
    return now_s() - t0;
}

void bench_resume(struct bench *b)
{
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;
    struct resume_input full = {RESUME_ITEMS, 1}, rest, plain;
    unsigned long k = RESUME_ITEMS / 4 * 3 + 1; /* odd: not a multiple */
    double fresh[MAX_REPS], seek[MAX_REPS], discard[MAX_REPS];
    unsigned char ck[256];
    subiter_pool *p = NULL;
    size_t cklen;
    int rep, reps = b->cfg->reps, r = 0;
    bool ok = false;

    if (!selected(b, "bench=resume")) {
        return;
    }
    progress(b, "bench=resume");
    watch(b, "bench=resume");
    po.workers = RESUME_WORKERS;
    fflush(NULL);
    if ((r = subiter_pool_open(&p, gen_resume, NULL, &po)) != 0) {
        set_pool_error(b, "subiter_pool_open", p, r);
        goto out;
    }
    /* The checkpoint at item k, once. */
    if ((r = subiter_pool_start(p, &full, sizeof full)) != 0 ||
        drain(b, p, (long)k) != (long)k ||
        (r = subiter_pool_checkpoint(p, ck, sizeof ck, &cklen)) != 0 ||
        (r = subiter_pool_stop(p)) != 0) {
        set_pool_error(b, "resume: checkpoint", p, r);
        goto out;
    }
    rest.total = RESUME_ITEMS - k;
    rest.seek = 0;
    plain = full;
    plain.seek = 0;
    for (rep = 0; rep < reps; rep++) {
        rewatch(b);
        fresh[rep] = timed(b, p, &rest, NULL, 0, (long)rest.total);
        seek[rep] = timed(b, p, &full, ck, cklen, (long)rest.total);
        discard[rep] = timed(b, p, &plain, ck, cklen, (long)rest.total);
        if (fresh[rep] < 0 || seek[rep] < 0 || discard[rep] < 0) {
            goto out;
        }
    }
    {
        double f = median(fresh, reps), s = median(seek, reps);
        double d = median(discard, reps);

        out(b,
            "bench=resume workers=%u items=%u k=%lu remaining=%lu "
            "steps_per_item=%u fresh_s_med=%.4f seek_s_med=%.4f "
            "discard_s_med=%.4f seek_vs_fresh=%.2f discard_vs_fresh=%.2f",
            RESUME_WORKERS, RESUME_ITEMS, k, (unsigned long)rest.total,
            RESUME_STEPS, f, s, d, f > 0 ? s / f : -1, f > 0 ? d / f : -1);
        ok = true;
    }
out:
    if (!ok) {
        out(b, "bench=resume error=\"%s\"", b->errbuf);
    }
    unwatch(b);
    if (p != NULL) {
        subiter_pool_close(p);
    }
}
