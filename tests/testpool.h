/* testpool.h: what the pool suites (check_pool_shards.c,
 * check_pool_tasks.c, check_pool_control.c) share: the page the workers
 * report through, the sharded generator, the task generator, and the
 * helpers that drive a pool and check what it did. */
#ifndef SUBITER_TESTPOOL_H
#define SUBITER_TESTPOOL_H

#include <stdbool.h>
#include <sys/types.h>

#include "testutil.h"

#define PAGE 4096
/* Grace for pools whose workers all exit at once on ABORT (see
 * TU_LONG_GRACE_MS): close returns as soon as they have. */
#define PROMPT_GRACE_MS TU_LONG_GRACE_MS
/* Grace for pools with a worker deaf to ABORT: SIGTERM after this. */
#define SHORT_GRACE_MS 200
#define WAIT_MS 10000 /* bound on waits for a worker to reach a point */
#define N_ITEMS 1000L /* the sharded dataset: the longs 0 .. N_ITEMS - 1 */
#define MAX_TASKS 64

/* A page the workers and the test all see. */
struct tp_shared {
    _Atomic int release;  /* gate tasks wait for it */
    _Atomic int started;  /* gate/hang tasks and paused shards that began */
    _Atomic int attempts; /* runs of "once" tasks and shards so far */
    _Atomic int yielded;  /* items JOB_MANY yielded */
    _Atomic int fail;     /* != 0: every tp_init_gated() fails */
    _Atomic int deaths;   /* tp_init_gated() calls still to die (_exit) */
};

/* ---- generators (they run in the worker: no ck_*) ---- */

/* What a shard's victim does after `after` items. */
enum { SHARD_NONE, SHARD_FAIL, SHARD_SEGV, SHARD_PAUSE, SHARD_DIE_ON_STOP };

/* tp_gen_shard()'s input. */
struct tp_shard_in {
    long n;      /* the dataset: 0 .. n - 1 */
    long victim; /* the shard that misbehaves (-1: none) */
    long how;    /* SHARD_* */
    long after;  /* items the victim yields first */
    long once;   /* misbehave only on the first run (shared attempts) */
};

/* What a task does (struct tp_job.how). */
enum {
    JOB_PLAIN, /* yield tp_f(value) */
    JOB_SLEEP, /* sleep ms, then yield tp_f(value) */
    JOB_GATE,  /* count itself started, wait for release, yield tp_f(value) */
    JOB_HANG,  /* count itself started, then sleep until killed */
    JOB_KILL,  /* yield tp_f(value), then raise SIGKILL */
    JOB_SEGV,  /* yield tp_f(value), then raise SIGSEGV */
    JOB_EXIT3, /* yield tp_f(value), then exit(3) */
    JOB_MANY   /* yield 0 .. value - 1, counting them in yielded */
};

/* A task's input. */
struct tp_job {
    long value;
    long how;
    long once; /* JOB_KILL, _SEGV, _EXIT3: die on the first attempt only */
    long ms;
};

/* What tasks ended with, by task id (1 .. MAX_TASKS). */
struct tp_outcome {
    int items;     /* items received */
    long last;     /* the last item's value */
    int ends;      /* task ends received */
    int code;      /* the last end's code */
    char msg[256]; /* the last end's errmsg */
};

/* Task events, as the callbacks or tp_drain() recorded them. */
struct tp_results {
    struct tp_outcome t[MAX_TASKS + 1];
    int bad; /* a callback saw an impossible id or length */
    /* The re-entrancy probe: on_result calls the pool and records. */
    bool probe;
    int probed;
    int rc[8];
    int stats_rc;
    const char *errmsg;
};

/* Yields the i in [0, n) with i % num_workers == worker_id (input: struct
 * tp_shard_in; arg: struct tp_shared *). */
int tp_gen_shard(subiter_gen *g, void *arg);

/* What a plain task yields for value v. */
long tp_f(long v);

/* Runs the struct tp_job given as input (arg: struct tp_shared *). */
int tp_gen_job(subiter_gen *g, void *arg);

/* An initializer steered by struct tp_shared (arg): fails with "the device
 * is gone" while `fail` is set, dies with _exit(5) while `deaths` > 0. */
int tp_init_gated(subiter_gen *g, void *arg);

/* ---- helpers ---- */

subiter_pool_opts tp_pool_opts(unsigned workers, const subiter_opts *w);

/* A zeroed struct tp_shared in a page of its own (tu_shared_free(sh,
 * PAGE) unmaps it). */
struct tp_shared *tp_shared_new(void);

/* Drive a pool with callbacks until *flag >= want, at most WAIT_MS. */
bool tp_drive_until(subiter_pool *p, _Atomic int *flag, int want);

/* The pool's stats (ck_assert that they can be read). */
subiter_pool_stats tp_stats(const subiter_pool *p);

void tp_assert_errmsg_has(const subiter_pool *p, const char *what);

/* Close a pool whose workers are all healthy: they exit on ABORT. */
void tp_close_clean(subiter_pool *p);

/* Close a pool that may have had to signal a worker. */
void tp_close_any(subiter_pool *p);

/* The state letter of /proc/<pid>/stat ('T': stopped), '?' if none. */
char tp_proc_state(pid_t pid);

/*
 * Read a sharded iteration of tp_gen_shard to its end. Each item must be a
 * long i in [0, n) that belongs to the item's worker: i % (world x
 * workers) == rank x workers + item.worker. seen[i] counts it; seq (if
 * not NULL) gets the sequence and *nseq its length. Returns what the last
 * subiter_pool_next() returned.
 */
int tp_collect(subiter_pool *p, unsigned workers, unsigned rank, unsigned world,
               long n, int *seen, long *seq, long *nseq);

/* Assert that `call`, a call on pool p, returned `want`; else fail naming
 * what it returned and the pool's errmsg (why a shard or a rerun ended). */
#define TP_EXPECT(p, call, want)                                               \
    do {                                                                       \
        int tp_r_ = (call), tp_w_ = (want);                                    \
        ck_assert_msg(tp_r_ == tp_w_, "%s == %d (%s), not %d: %s", #call,      \
                      tp_r_, subiter_strerror(tp_r_), tp_w_,                   \
                      subiter_pool_errmsg(p));                                 \
    } while (0)

/* Every value in [0, n) was seen exactly once. */
void tp_assert_each_once(const int *seen, long n);

/* Start tp_gen_shard over [0, N_ITEMS) with no victim. */
void tp_start_plain(subiter_pool *p);

/* Zero *res and set the pool's callbacks to record task events in it. */
void tp_with_callbacks(subiter_pool_opts *po, struct tp_results *res);

/* Read task events with subiter_pool_next() until it returns 0 (or an
 * error, returned). */
int tp_drain(subiter_pool *p, struct tp_results *res);

/* Submit a task (blocking); returns its id. */
unsigned long long tp_submit(subiter_pool *p, long value, long how, long once,
                             long ms);

/* Submit a task with SUBITER_POOL_NOWAIT; returns what submit returned. */
int tp_submit_nowait(subiter_pool *p, long value, long how,
                     unsigned long long *id);

/* The task ended well (through next()) with tp_f(value) as its last
 * item. */
void tp_assert_task_ok(const struct tp_results *res, unsigned long long id,
                       long value);

#endif
