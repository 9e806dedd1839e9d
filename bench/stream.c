/* stream.c: the streaming runner behind bench=throughput, bench=pingpong
 * and bench=pinned. It starts one worker per measurement (a subiter
 * handle, or a baseline from baselines.c), warms it up, calibrates the
 * item count so that a run takes about the target time, then times
 * cfg->reps runs on it: the figures are the steady state, from the start
 * of a run to its last item. cpu_parent_s is getrusage(RUSAGE_SELF) over
 * a run, cpu_child_s the worker's own getrusage(RUSAGE_SELF) over it
 * (workers outlive runs, so RUSAGE_CHILDREN cannot split them).
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench/bench.h"

const char *const impl_names[] = {
    "inproc",          "pipe", "pipe_pb",       "memcpy", "subiter_yield",
    "subiter_reserve", "pipe", "subiter_start", "zmq",    "limit"};

static const char *const consume_names[] = {"none", "touch", "read"};

/* The worker's generator: n items (the input) from the hot buffer with
 * subiter_yield(), or written in place with subiter_reserve/commit. */
static int gen_stream(subiter_gen *g, void *arg)
{
    const struct gen *c = arg;
    const void *in;
    size_t in_len, len = c->item_bytes;
    uint64_t n, i;
    int r;

    in = subiter_input(g, &in_len);
    if (!in || in_len != sizeof n) {
        return subiter_fail(g, "bad input (%zu bytes)", in_len);
    }
    memcpy(&n, in, sizeof n);
    for (i = 0; i < n; i++) {
        if (c->impl == IMPL_RESERVE) {
            void *buf;

            if ((r = subiter_reserve(g, len, &buf))) {
                return r;
            }
            if (len > 0) {
                stamp(buf, len, i);
                ((unsigned char *)buf)[len - 1] = (unsigned char)i;
            }
            if ((r = subiter_commit(g, len))) {
                return r;
            }
        } else {
            stamp(c->hot, len, i);
            if ((r = subiter_yield(g, c->hot, len))) {
                return r;
            }
        }
    }
    mark_cpu(c->cpu_ns);
    return 0;
}

/* Ping-pong: send the input back as the one item. An input that starts
 * with PROBE asks for the CPU mark first (the pipe's echo child does the
 * same). */
bool is_probe(const void *msg, size_t len)
{
    uint64_t v;

    if (len < sizeof v) {
        return false;
    }
    memcpy(&v, msg, sizeof v);
    return v == PROBE;
}

static int gen_echo(subiter_gen *g, void *arg)
{
    const struct gen *c = arg;
    size_t len;
    const void *in = subiter_input(g, &len);

    if (is_probe(in, len)) {
        mark_cpu(c->cpu_ns);
    }
    return subiter_yield(g, in, len);
}

static int setup(struct runner *r, struct bench *b, const struct spec *t)
{
    subiter_opts o = SUBITER_OPTS_INIT;
    int rc;

    memset(r, 0, sizeof *r);
    r->b = b;
    r->t = t;
    r->to_child = r->from_child = -1;
    r->gen.impl = t->impl;
    r->gen.item_bytes = t->item_bytes;
    r->gen.hot = b->hot;
    r->gen.cpu_ns = b->child_cpu_ns;
    atomic_store_explicit(b->child_cpu_ns, 0, memory_order_relaxed);
    switch (t->impl) {
    case IMPL_PIPE:
    case IMPL_PIPE_PB:
        return baseline_setup(r, false);
    case IMPL_PING_PIPE:
        return baseline_setup(r, true);
#ifdef HAVE_ZMQ
    case IMPL_ZMQ:
        return zmq_setup(r);
#endif
    case IMPL_LIMIT:
        return limit_setup(r);
    case IMPL_YIELD:
    case IMPL_RESERVE:
    case IMPL_PING_START:
        o.buffer_items = t->buffer_items;
        o.buffer_bytes = t->buffer_bytes;
        fflush(NULL);
        rc = subiter_open(&r->it,
                          t->impl == IMPL_PING_START ? gen_echo : gen_stream,
                          &r->gen, &o);
        if (rc != 0) {
            set_subiter_error(b, "subiter_open", r->it, rc);
            subiter_close(r->it);
            r->it = NULL;
            return -1;
        }
        return 0;
    default:
        return 0;
    }
}

static int teardown(struct runner *r)
{
    int rc = 0;

    if (close_handle(r->b, &r->it) < 0) {
        return -1;
    }
#ifdef HAVE_ZMQ
    zmq_teardown(r);
#endif
    if (r->pid > 0) {
        close(r->to_child);
        if (r->from_child >= 0) {
            close(r->from_child);
        }
        rc = reap(r->b, r->pid, impl_names[r->t->impl]);
        r->pid = 0;
    }
    limit_teardown(r);
    return rc;
}

static int run_subiter(struct runner *r, uint64_t n)
{
    uint64_t *sink = &r->b->sink;
    subiter_item item;
    uint64_t got = 0;
    int rc;

    rc = subiter_start(r->it, &n, sizeof n);
    if (rc != 0) {
        set_subiter_error(r->b, "subiter_start", r->it, rc);
        return -1;
    }
    /* Two loops, so that the consume mode is not a branch per item. */
    if (r->t->consume == CONSUME_READ) {
        while ((rc = subiter_next(r->it, &item)) > 0) {
            consume(sink, item.data, item.len, CONSUME_READ);
            got++;
        }
    } else {
        while ((rc = subiter_next(r->it, &item)) > 0) {
            consume(sink, item.data, item.len, CONSUME_TOUCH);
            got++;
        }
    }
    if (rc < 0) {
        set_subiter_error(r->b, "subiter_next", r->it, rc);
        return -1;
    }
    if (got != n) {
        set_error(r->b, "subiter: got %" PRIu64 " of %" PRIu64 " items", got,
                  n);
        return -1;
    }
    return 0;
}

/* One round trip through subiter: start(msg) -> the item echoing it ->
 * the end of the iteration. */
static int ping_start(struct runner *r, unsigned char *msg)
{
    subiter_item item;
    int rc;

    if ((rc = subiter_start(r->it, msg, PING_BYTES)) != 0) {
        set_subiter_error(r->b, "subiter_start", r->it, rc);
        return -1;
    }
    if ((rc = subiter_next(r->it, &item)) != 1 || item.len != PING_BYTES) {
        set_subiter_error(r->b, "subiter_next (item)", r->it, rc);
        return -1;
    }
    memcpy(msg, item.data, PING_BYTES);
    if ((rc = subiter_next(r->it, &item)) != 0) {
        set_subiter_error(r->b, "subiter_next (end)", r->it, rc);
        return -1;
    }
    return 0;
}

/* n round trips; with `us`, each one's time in microseconds there. */
static int run_pingpong(struct runner *r, uint64_t n, double *us)
{
    int (*ping)(struct runner *, unsigned char *) =
        r->t->impl == IMPL_PING_PIPE ? ping_pipe : ping_start;
    unsigned char msg[PING_BYTES];
    uint64_t i;

    memcpy(msg, r->b->hot, sizeof msg);
    for (i = 0; i < n; i++) {
        double t0;

        stamp(msg, sizeof msg, i);
        t0 = us != NULL ? now_s() : 0;
        if (ping(r, msg) < 0) {
            return -1;
        }
        if (us != NULL) {
            us[i] = (now_s() - t0) * 1e6;
        }
        consume(&r->b->sink, msg, sizeof msg, CONSUME_TOUCH);
    }
    return 0;
}

/* Ask the ping-pong child for its CPU mark (outside the timed part). */
static int probe(struct runner *r)
{
    unsigned char msg[PING_BYTES];
    uint64_t v = PROBE;

    memset(msg, 0, sizeof msg);
    memcpy(msg, &v, sizeof v);
    return r->t->impl == IMPL_PING_PIPE ? ping_pipe(r, msg)
                                        : ping_start(r, msg);
}

/* One run of n items: wall time of the streaming, the parent's CPU over
 * it, and the worker's CPU since its previous mark. */
static int run(struct runner *r, uint64_t n, struct sample *s)
{
    double c0 = cpu_s(RUSAGE_SELF), t0 = now_s(), mark;
    int rc = 0;

    switch (r->t->impl) {
    case IMPL_INPROC:
        run_inproc(r, n);
        break;
    case IMPL_MEMCPY:
        run_memcpy(r, n);
        break;
    case IMPL_PIPE:
    case IMPL_PIPE_PB:
        rc = run_pipe(r, n);
        break;
    case IMPL_YIELD:
    case IMPL_RESERVE:
        rc = run_subiter(r, n);
        break;
    case IMPL_LIMIT:
        rc = run_limit(r, n);
        break;
    case IMPL_PING_PIPE:
    case IMPL_PING_START:
        rc = run_pingpong(r, n, NULL);
        break;
#ifdef HAVE_ZMQ
    case IMPL_ZMQ:
        rc = zmq_run(r, n);
        break;
#endif
    default:
        set_error(r->b, "unknown impl");
        rc = -1;
    }
    s->wall_s = now_s() - t0;
    s->cpu_self_s = cpu_s(RUSAGE_SELF) - c0;
    if (rc == 0 &&
        (r->t->impl == IMPL_PING_PIPE || r->t->impl == IMPL_PING_START)) {
        rc = probe(r);
    }
    mark = read_cpu(r->b->child_cpu_ns);
    s->cpu_child_s = mark - r->child_mark;
    r->child_mark = mark;
    if (getenv("BENCH_TRACE")) {
        fprintf(stderr, "trace: %s n=%" PRIu64 " wall=%.6f\n",
                impl_names[r->t->impl], n, s->wall_s);
    }
    return rc;
}

/* One spec on a worker of its own: a warm-up run of n/8 items, then n
 * timed. Returns the wall time of the timed run, or -1 with the error
 * set. For figures that repeat single runs on a changing machine
 * (bench=contention); measure() is the calibrated steady state. */
double stream_once(struct bench *b, const struct spec *t, uint64_t n)
{
    struct runner r;
    struct sample s;
    int rc;

    if (setup(&r, b, t) < 0) {
        (void)teardown(&r);
        return -1;
    }
    rc = run(&r, n / 8 + 1, &s);
    if (rc == 0) {
        rc = run(&r, n, &s);
    }
    if (teardown(&r) < 0 || rc < 0) {
        return -1;
    }
    return s.wall_s;
}

/* Each of n round trips of a ping-pong spec timed on its own, after n/8
 * untimed ones, into us[] (microseconds): what one request waits, where
 * measure() gives the mean cost. 0, or -1 with the error set. */
int stream_round_trips(struct bench *b, const struct spec *t, uint64_t n,
                       double *us)
{
    struct runner r;
    int rc;

    if (setup(&r, b, t) < 0) {
        (void)teardown(&r);
        return -1;
    }
    rc = run_pingpong(&r, n / 8, NULL);
    if (rc == 0) {
        rc = run_pingpong(&r, n, us);
    }
    if (teardown(&r) < 0 || rc < 0) {
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ measuring */

bool is_subiter(enum impl impl)
{
    return impl == IMPL_YIELD || impl == IMPL_RESERVE ||
           impl == IMPL_PING_START;
}

void label_of(const struct spec *t, bool pinned, char *buf, size_t len)
{
    int k = snprintf(buf, len, "bench=%s impl=%s consume=%s item_bytes=%zu",
                     t->bench, impl_names[t->impl], consume_names[t->consume],
                     t->item_bytes);

    if (k > 0 && (size_t)k < len && is_subiter(t->impl)) {
        k += snprintf(buf + k, len - (size_t)k, " buffer_items=%u",
                      t->buffer_items);
    }
    if (k > 0 && (size_t)k < len &&
        (is_subiter(t->impl) || t->impl == IMPL_MEMCPY)) {
        snprintf(buf + k, len - (size_t)k, " buffer_bytes=%zu",
                 t->buffer_bytes);
    }
    if (pinned && k > 0 && (size_t)k < len) {
        snprintf(buf + strlen(buf), len - strlen(buf), " pinned=1");
    }
}

/* Is a run that took `wall` close enough to the target? */
static bool in_window(const struct bench_cfg *cfg, double wall)
{
    return wall >= cfg->target_s / 2 && wall <= cfg->target_s * 2;
}

/* Scale n so that a run that took `wall` takes the target. */
static uint64_t scale_items(const struct bench_cfg *cfg, uint64_t n,
                            double wall)
{
    n = round2((double)n * cfg->target_s / (wall > 0 ? wall : 1e-9));
    return n < 4 ? 4 : n;
}

/*
 * Calibrate, then run the spec cfg->reps times on one worker. The item
 * count grows from `pilot` until a run lasts a tenth of the target and
 * the runs so far have passed over the ring (or the pipe's buffers) twice,
 * faulting them in (or have taken 5 targets). Then it is set from the best
 * rate seen so far, and runs at that count repeat (up to 5) until one
 * lands near the target without beating the best rate by much: noise on
 * this machine (preemption, a slow wake-up at the start of a run, a page
 * fault) only ever slows a run down, so the best rate is the estimate to
 * trust. Stores the result in *rs and returns it, or NULL on an error
 * (already printed).
 */
const struct result *measure(struct bench *b, struct results *rs,
                             const struct spec *t, bool pinned, uint64_t pilot)
{
    const struct bench_cfg *cfg = b->cfg;
    char label[256];
    double rates[MAX_REPS], walls[MAX_REPS], cpu_self = 0, cpu_child = 0;
    struct runner r;
    struct sample s;
    struct result *res;
    uint64_t n = pilot ? pilot : 1;
    double passed = 0, ring = 2 * (double)t->buffer_bytes, best;
    double spent = 0,
           warm_cap = cfg->target_s * 5 > 0.3 ? cfg->target_s * 5 : 0.3;
    int i;

    if (ring <= 0) {
        ring = 2 * (double)SUBITER_OPTS_DEFAULT_BUFFER_BYTES;
    }
    label_of(t, pinned, label, sizeof label);
    progress(b, label);
    watch(b, label);
    if (setup(&r, b, t) < 0) {
        goto fail;
    }
    for (;;) {
        double grow;

        if (run(&r, n, &s) < 0) {
            goto fail;
        }
        passed += (double)n * (double)(t->item_bytes + REC_GUESS);
        spent += s.wall_s;
        if (n >= ((uint64_t)1 << 40)) {
            break;
        }
        if (s.wall_s >= cfg->target_s / 10) {
            double rest, fit;

            if (passed >= ring || spent >= warm_cap) {
                break;
            }
            /* Long enough, but the ring is not warm yet: go on, within
             * the time allowed (slow modes hardly notice the faults). */
            rest = (ring - passed) / (double)(t->item_bytes + REC_GUESS);
            fit = (double)n * (warm_cap - spent) / s.wall_s;
            n = (uint64_t)(rest < fit ? rest : fit) + 1;
            continue;
        }
        grow = s.wall_s > 0 ? cfg->target_s / 5 / s.wall_s : 100;
        grow = grow < 2 ? 2 : grow > 100 ? 100 : grow;
        n = (uint64_t)((double)n * grow);
    }
    best = (double)n / (s.wall_s > 0 ? s.wall_s : 1e-9);
    for (i = 0; i < 5; i++) {
        double rate;

        n = scale_items(cfg, 1, 1 / best);
        rewatch(b);
        if (run(&r, n, &s) < 0) {
            goto fail;
        }
        rate = (double)n / (s.wall_s > 0 ? s.wall_s : 1e-9);
        if (in_window(cfg, s.wall_s) && rate * 1.3 >= best) {
            break;
        }
        best = rate > best ? rate : best;
    }
    n = scale_items(cfg, 1, 1 / best);
    for (i = 0; i < cfg->reps; i++) {
        rewatch(b);
        if (run(&r, n, &s) < 0) {
            goto fail;
        }
        rates[i] = (double)n / (s.wall_s > 0 ? s.wall_s : 1e-9);
        walls[i] = s.wall_s;
        cpu_self += s.cpu_self_s;
        cpu_child += s.cpu_child_s;
    }
    if (teardown(&r) < 0) {
        goto fail;
    }
    unwatch(b);
    b->n_done++;
    if (rs->n == MAX_RESULTS) {
        return NULL;
    }
    res = &rs->r[rs->n++];
    res->spec = *t;
    res->pinned = pinned;
    res->items = n;
    res->rate_med = median(rates, cfg->reps); /* sorts rates */
    res->rate_min = rates[0];
    res->rate_max = rates[cfg->reps - 1];
    res->wall_med = median(walls, cfg->reps);
    res->cpu_self = cpu_self / cfg->reps;
    res->cpu_child = cpu_child / cfg->reps;
    return res;

fail:
    out(b, "%s items=%" PRIu64 " error=\"%s\"", label, n, b->errbuf);
    (void)teardown(&r);
    unwatch(b);
    return NULL;
}
