/* bench.h: the measurements of subiter-bench and what they share: the
 * streaming runner (a subiter handle or a baseline, calibrated and
 * repeated by measure()) that the throughput, ping-pong and pinned
 * figures use, the results the ratios are computed from, and one entry
 * point per figure, each taking the run's state from the harness.
 */
#ifndef SUBITER_BENCH_BENCH_H
#define SUBITER_BENCH_BENCH_H

#include "bench/harness.h"

#define MAX_RESULTS 256
#define PING_BYTES 64
#define PROBE UINT64_MAX /* a ping asking for the worker's CPU mark */
/* A guess at the ring's per-record overhead (header, Status framing). */
#define REC_GUESS 24

enum impl {
    IMPL_INPROC,
    IMPL_PIPE,
    IMPL_PIPE_PB,
    IMPL_MEMCPY,
    IMPL_YIELD,
    IMPL_RESERVE,
    IMPL_PING_PIPE,
    IMPL_PING_START,
    IMPL_ZMQ, /* only with HAVE_ZMQ */
    IMPL_LIMIT
};

extern const char *const impl_names[];

/* What one throughput (or ping-pong) measurement runs. */
struct spec {
    const char *bench; /* "throughput", "pingpong", "pinned" */
    enum impl impl;
    enum consume consume;
    size_t item_bytes;
    unsigned buffer_items; /* subiter only */
    size_t buffer_bytes;   /* subiter's ring, memcpy's destination */
};

/* One run of a spec over n items. */
struct sample {
    double wall_s;      /* the streaming part only */
    double cpu_self_s;  /* getrusage(RUSAGE_SELF) delta, whole run */
    double cpu_child_s; /* the worker's CPU mark delta, whole run */
};

/* A measurement's summary, kept for the ratios. */
struct result {
    struct spec spec;
    bool pinned;
    uint64_t items;
    double rate_min, rate_med, rate_max; /* items per second */
    double wall_med, cpu_self, cpu_child;
};

struct results {
    struct result r[MAX_RESULTS];
    int n;
};

/* The generator's parameters; the worker reads its copy through `arg`. */
struct gen {
    enum impl impl;
    size_t item_bytes;
    unsigned char *hot;
    _Atomic uint64_t *cpu_ns;
};

/*
 * A runner holds what lives across one measurement's runs: the subiter
 * handle or the pipe child. Workers are started once, so that every run
 * after the first finds them warm: first touches of memory cost a page
 * fault each (tens of microseconds in these VMs), which latency measures;
 * throughput is the steady state.
 */
struct runner {
    struct bench *b;
    const struct spec *t;
    struct gen gen; /* the worker's `arg`: lives as long as the handle */
    subiter *it;
    pid_t pid;
    int to_child, from_child;
    void *limit;              /* impl=limit's shared ring */
    double child_mark;        /* the worker's CPU time at the previous mark */
    void *zmq_ctx, *zmq_sock; /* impl=zmq: the PULL side */
    char zmq_endpoint[64];
};

/* What the pool benches leave for the ratios; < 0: not measured. */
struct pool_figures {
    double cpu2_vs_cpu1;
    double cpu2_vs_cpu1_best; /* of the best runs: what a quiet machine
                                 gives (other load only slows runs) */
    double cpu1_vs_handle;
    double ordered_vs_unordered;
    double ordered_vs_unordered_bound; /* with buffer_items MERGE_BOUND */
};

/* Every figure the ratios compare; < 0: not measured. */
struct figures {
    double fork_med, ofc_med; /* bench=latency medians, us */
    double pin_ratio;         /* pinned over unpinned, yield 64 B */
    double idle_c, idle_p;    /* idle CPU over wall, consumer, producer */
    struct pool_figures pool;
};

/* pool_merge's second item bound: a small one, as a caller may set */
#define MERGE_BOUND 32u

/* bench_death.c's generator, which bench_parent_death.c uses too. */
enum death_mode {
    DEATH_SLEEP,   /* sleep in the generator without yielding */
    DEATH_SEGV,    /* stamp the time, then raise(SIGSEGV) */
    DEATH_FLOOD,   /* yield until the ring is full, forever */
    DEATH_BASELINE /* no subiter: a forked child, a pidfd */
};

/* A MAP_SHARED page between the bench, its middle processes and their
 * workers, mapped before any of them is forked. */
struct death_share {
    _Atomic int64_t stamp_ns; /* DEATH_SEGV: the time right before raise() */
    _Atomic int blocked;      /* DEATH_SEGV: the parent was seen asleep */
    _Atomic int ready;        /* parent_death: 1 ready, -1 failed */
    _Atomic int worker;       /* parent_death: the worker's pid */
    char err[256];            /* parent_death: the middle's failure */
};

/* The death generator's parameters; the worker reads its copy through
 * `arg`. */
struct death_gen {
    enum death_mode mode;
    struct death_share *sh;
    const unsigned char *hot;
};

int gen_death(subiter_gen *g, void *arg);
int death_once(struct bench *b, struct death_share *sh, enum death_mode mode,
               double *delay_us, bool *blocked);
int death_baseline_once(struct bench *b, double *delay_us, bool *blocked);

/* stream.c: the runner and the calibrated, repeated measurement. */
bool is_subiter(enum impl impl);
void label_of(const struct spec *t, bool pinned, char *buf, size_t len);
const struct result *measure(struct bench *b, struct results *rs,
                             const struct spec *t, bool pinned, uint64_t pilot);
bool is_probe(const void *msg, size_t len);
double stream_once(struct bench *b, const struct spec *t, uint64_t n);
int stream_round_trips(struct bench *b, const struct spec *t, uint64_t n,
                       double *us);

/* baselines.c: the implementations subiter is compared against. */
int baseline_setup(struct runner *r, bool echo);
void run_inproc(struct runner *r, uint64_t n);
void run_memcpy(struct runner *r, uint64_t n);
int run_pipe(struct runner *r, uint64_t n);
int ping_pipe(struct runner *r, unsigned char *msg);
/* Fork child(r, cmd), which reads its commands from cmd and never
 * returns; r->to_child is the other end. 0, or -1 with the error set. */
int fork_commanded(struct runner *r,
                   void (*child)(const struct runner *r, int cmd));

/* zmq.c (HAVE_ZMQ): ZeroMQ PUSH/PULL over ipc:// from a forked child. */
int zmq_setup(struct runner *r);
int zmq_run(struct runner *r, uint64_t n);
void zmq_teardown(struct runner *r);

/* limit.c: the hand-tuned ring subiter is measured against. */
int limit_setup(struct runner *r);
void limit_teardown(struct runner *r);
int run_limit(struct runner *r, uint64_t n);
void bench_limit(struct bench *b, struct results *rs);

/* bench_throughput.c's line and first guess, which bench=pinned uses too. */
void print_throughput(struct bench *b, const struct result *r);
uint64_t pilot_items(size_t item_bytes);
/* A throughput spec with the default options (the ring's bytes bound what
 * is in flight; a larger ring for 4 MiB items), the consumer touching. */
struct spec throughput_spec(enum impl impl, size_t item_bytes);
/* One throughput measurement, if the filter selects it, and its line:
 * the result, or NULL (not selected, or the error printed). */
const struct result *throughput(struct bench *b, struct results *rs,
                                const struct spec *t);

/* One entry point per figure, in the order main() runs them. */
void bench_throughput(struct bench *b, struct results *rs);
void bench_latency(struct bench *b, struct figures *f);
void bench_pingpong(struct bench *b, struct results *rs);
void bench_pingpong_latency(struct bench *b);
void bench_idle(struct bench *b, struct figures *f);
void bench_death(struct bench *b);
void bench_parent_death(struct bench *b);
void bench_pinned(struct bench *b, struct results *rs, struct figures *f);
void bench_pool_cpu(struct bench *b, struct pool_figures *f);
void bench_pool_merge(struct bench *b, struct pool_figures *f);
void bench_resume(struct bench *b);
void bench_contention(struct bench *b);
void print_ratios(struct bench *b, const struct results *rs,
                  const struct figures *f);
/* One bench=ratio line; lo/hi are the bounds (< 0: none). */
void ratio(struct bench *b, const char *name, double value, double lo,
           double hi);

#endif
