/* check_pool.c: pools of workers on one generator. Sharded iteration
 * (unordered, round robin, ranks, a failing or dying shard, restarted
 * shards), tasks (results through next() and through callbacks, a worker
 * dying mid-task and the retry, per-task timeouts, the bounded queue,
 * pause/resume, finalize, growing and shrinking between min_workers and
 * workers) and misuse. Generators report through shared pages, never
 * ck_assert. Every case checks that no child, fd or mapping is left. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
struct shared {
    _Atomic int release;  /* gate tasks wait for it */
    _Atomic int started;  /* gate/hang tasks and paused shards that began */
    _Atomic int attempts; /* runs of "once" tasks and shards so far */
    _Atomic int yielded;  /* items JOB_MANY yielded */
};

/* ---- generators and initializers (they run in the worker: no ck_*) ---- */

/* What a shard's victim does after `after` items. */
enum { SHARD_NONE, SHARD_FAIL, SHARD_SEGV, SHARD_PAUSE, SHARD_DIE_ON_STOP };

/* gen_shard()'s input. */
struct shard_in {
    long n;      /* the dataset: 0 .. n - 1 */
    long victim; /* the shard that misbehaves (-1: none) */
    long how;    /* SHARD_* */
    long after;  /* items the victim yields first */
    long once;   /* misbehave only on the first run (shared attempts) */
};

/* Yields the i in [0, n) with i % num_workers == worker_id (arg: struct
 * shared *). */
static int gen_shard(subiter_gen *g, void *arg)
{
    struct shared *sh = arg;
    struct shard_in in;
    unsigned id = subiter_worker_id(g), nw = subiter_num_workers(g);
    const void *p;
    size_t len;
    long i, k = 0;
    bool victim;
    int r;

    p = subiter_input(g, &len);
    if (p == NULL || len != sizeof in) {
        return subiter_fail(g, "no shard input");
    }
    memcpy(&in, p, sizeof in);
    victim = in.victim == (long)id && in.how != SHARD_NONE;
    if (victim && in.once && atomic_fetch_add(&sh->attempts, 1) > 0) {
        victim = false;
    }
    for (i = id; i < in.n; i += nw) {
        if (victim && k == in.after) {
            switch (in.how) {
            case SHARD_FAIL:
                return subiter_fail(g, "shard %u broke after %ld", id, k);
            case SHARD_SEGV:
                raise(SIGSEGV);
                break;
            case SHARD_PAUSE:
                atomic_fetch_add(&sh->started, 1);
                for (;;) {
                    pause();
                }
            default:
                break;
            }
        }
        if ((r = subiter_yield(g, &i, sizeof i)) != 0) {
            if (victim && in.how == SHARD_DIE_ON_STOP) {
                raise(SIGKILL);
            }
            return r;
        }
        k++;
    }
    return 0;
}

/* Shards of unequal length: worker k yields 1000 k + j for j < 3 (k + 1). */
static int gen_uneven(subiter_gen *g, void *arg)
{
    long k = (long)subiter_worker_id(g), j, v;
    int r;

    (void)arg;
    for (j = 0; j < 3 * (k + 1); j++) {
        v = 1000 * k + j;
        if ((r = subiter_yield(g, &v, sizeof v)) != 0) {
            return r;
        }
    }
    return 0;
}

/* One item: the worker id (unsigned) followed by the whole input. */
static int gen_echo(subiter_gen *g, void *arg)
{
    unsigned id = subiter_worker_id(g);
    const void *in;
    size_t len;
    void *buf;
    int r;

    (void)arg;
    in = subiter_input(g, &len);
    if ((r = subiter_reserve(g, sizeof id + len, &buf)) != 0) {
        return r;
    }
    memcpy(buf, &id, sizeof id);
    if (len > 0) {
        memcpy((char *)buf + sizeof id, in, len);
    }
    return subiter_commit(g, sizeof id + len);
}

/* What a task does (struct job.how). */
enum {
    JOB_PLAIN, /* yield f(value) */
    JOB_SLEEP, /* sleep ms, then yield f(value) */
    JOB_GATE,  /* count itself started, wait for release, yield f(value) */
    JOB_HANG,  /* count itself started, then sleep until killed */
    JOB_KILL,  /* yield f(value), then raise SIGKILL */
    JOB_SEGV,  /* yield f(value), then raise SIGSEGV */
    JOB_EXIT3, /* yield f(value), then exit(3) */
    JOB_MANY   /* yield 0 .. value - 1, counting them in yielded */
};

/* A task's input. */
struct job {
    long value;
    long how;
    long once; /* JOB_KILL, _SEGV, _EXIT3: die on the first attempt only */
    long ms;
};

/* What a plain task yields for value v. */
static long f(long v)
{
    return 3 * v + 1;
}

/* Runs the struct job given as input (arg: struct shared *). */
static int gen_job(subiter_gen *g, void *arg)
{
    struct shared *sh = arg;
    struct job j;
    const void *p;
    size_t len;
    int64_t end;
    long v, i;
    int r;

    p = subiter_input(g, &len);
    if (p == NULL || len != sizeof j) {
        return subiter_fail(g, "no job");
    }
    memcpy(&j, p, sizeof j);
    v = f(j.value);
    switch (j.how) {
    case JOB_SLEEP:
        tu_sleep_ms(j.ms);
        break;
    case JOB_GATE:
        atomic_fetch_add(&sh->started, 1);
        end = tu_now_ms() + WAIT_MS;
        while (atomic_load(&sh->release) == 0) {
            if (tu_now_ms() > end) {
                return subiter_fail(g, "the gate never opened");
            }
            tu_sleep_ms(1);
        }
        break;
    case JOB_HANG:
        atomic_fetch_add(&sh->started, 1);
        for (;;) {
            pause();
        }
    case JOB_MANY:
        for (i = 0; i < j.value; i++) {
            if ((r = subiter_yield(g, &i, sizeof i)) != 0) {
                return r;
            }
            atomic_fetch_add(&sh->yielded, 1);
        }
        return 0;
    default:
        break;
    }
    if ((r = subiter_yield(g, &v, sizeof v)) != 0) {
        return r;
    }
    if (j.how == JOB_KILL || j.how == JOB_SEGV || j.how == JOB_EXIT3) {
        if (atomic_fetch_add(&sh->attempts, 1) > 0 && j.once) {
            return 0;
        }
        if (j.how == JOB_KILL) {
            raise(SIGKILL);
        } else if (j.how == JOB_SEGV) {
            raise(SIGSEGV);
        } else {
            exit(3);
        }
    }
    return 0;
}

/* Fails in the worker of shard 1 only. */
static int init_fail_shard1(subiter_gen *g, void *arg)
{
    (void)arg;
    if (subiter_worker_id(g) == 1) {
        return subiter_fail(g, "no device for shard %u", subiter_worker_id(g));
    }
    return 0;
}

/* ---- helpers ---- */

/* Fails once the test has set `release` (arg: struct shared *): workers
 * forked after that cannot start. */
static int init_fail_late(subiter_gen *g, void *arg)
{
    struct shared *sh = arg;

    if (atomic_load(&sh->release) != 0) {
        return subiter_fail(g, "no more workers");
    }
    return 0;
}

static subiter_pool_opts pool_opts(unsigned workers, const subiter_opts *w)
{
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;

    po.workers = workers;
    po.worker = w;
    return po;
}

static struct shared *shared_new(void)
{
    struct shared *sh = tu_shared_new(PAGE);

    memset(sh, 0, sizeof *sh);
    return sh;
}

/* Drive a pool with callbacks until *flag >= want, at most WAIT_MS. */
static bool drive_until(subiter_pool *p, _Atomic int *flag, int want)
{
    int64_t end = tu_now_ms() + WAIT_MS;
    int r;

    while (atomic_load(flag) < want) {
        if (tu_now_ms() > end) {
            return false;
        }
        r = subiter_pool_wait(p, 10);
        ck_assert_msg(r == 0 || r == -ETIMEDOUT, "wait: %d", r);
    }
    return true;
}

static subiter_pool_stats get_stats(const subiter_pool *p)
{
    subiter_pool_stats st = SUBITER_POOL_STATS_INIT;

    ck_assert_int_eq(subiter_pool_get_stats(p, &st), 0);
    return st;
}

static void assert_errmsg_has(const subiter_pool *p, const char *what)
{
    const char *m = subiter_pool_errmsg(p);

    ck_assert_msg(strstr(m, what) != NULL, "errmsg \"%s\" lacks \"%s\"", m,
                  what);
}

/* Close a pool whose workers are all healthy: they exit on ABORT. */
static void close_clean(subiter_pool *p)
{
    ck_assert_int_eq(subiter_pool_close(p), 0);
}

/* Close a pool that may have had to signal a worker. */
static void close_any(subiter_pool *p)
{
    int r = subiter_pool_close(p);

    ck_assert_msg(r == 0 || r == SUBITER_ETIMEDOUT, "close: %d", r);
}

/* The state letter of /proc/<pid>/stat ('T': stopped), '?' if none. */
static char proc_state(pid_t pid)
{
    char path[64], buf[512], *q;
    size_t n;
    FILE *fp;

    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if ((fp = fopen(path, "r")) == NULL) {
        return '?';
    }
    n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    q = strrchr(buf, ')');
    return q != NULL && q[1] == ' ' ? q[2] : '?';
}

/* Wait until the process is stopped (or, with !stopped, running again). */
static bool wait_state(pid_t pid, bool stopped)
{
    int64_t end = tu_now_ms() + WAIT_MS;

    while ((proc_state(pid) == 'T') != stopped) {
        if (tu_now_ms() > end) {
            return false;
        }
        tu_sleep_ms(1);
    }
    return true;
}

static void assert_gone(pid_t pid)
{
    int r = kill(pid, 0), e = errno;

    ck_assert_msg(r == -1 && e == ESRCH, "worker %d is still there", (int)pid);
}

/*
 * Read a sharded iteration of gen_shard to its end. Each item must be a
 * long i in [0, n) that belongs to the item's worker: i % (world x
 * workers) == rank x workers + item.worker. seen[i] counts it; seq (if
 * not NULL) gets the sequence and *nseq its length. Returns what the last
 * subiter_pool_next() returned.
 */
static int collect(subiter_pool *p, unsigned workers, unsigned rank,
                   unsigned world, long n, int *seen, long *seq, long *nseq)
{
    subiter_pool_item item;
    long v, k = 0;
    int r;

    while ((r = subiter_pool_next(p, &item)) == 1) {
        REQUIRE_EQ(item.kind, SUBITER_POOL_ITEM);
        REQUIRE_EQ(item.task, 0);
        REQUIRE_EQ(item.len, sizeof v);
        memcpy(&v, item.data, sizeof v);
        REQUIRE(v >= 0 && v < n);
        REQUIRE(item.worker < workers);
        REQUIRE_EQ(v % (long)(world * workers),
                   (long)(rank * workers + item.worker));
        seen[v]++;
        if (seq != NULL) {
            REQUIRE(k < n);
            seq[k] = v;
        }
        k++;
    }
    if (nseq != NULL) {
        *nseq = k;
    }
    return r;
}

/* Every value in [0, n) was seen exactly once. */
static void assert_each_once(const int *seen, long n)
{
    long i;

    for (i = 0; i < n; i++) {
        if (seen[i] != 1) {
            ck_abort_msg("item %ld seen %d times", i, seen[i]);
        }
    }
}

/* Start gen_shard over [0, N_ITEMS) with no victim. */
static void start_plain(subiter_pool *p)
{
    struct shard_in in = {N_ITEMS, -1, SHARD_NONE, 0, 0};

    ck_assert_int_eq(subiter_pool_start(p, &in, sizeof in), 0);
}

/* One whole clean run: every item once (in order 0, 1, ... if ordered). */
static void run_plain(subiter_pool *p, unsigned workers, bool ordered)
{
    int seen[N_ITEMS];
    long seq[N_ITEMS], nseq, i;

    memset(seen, 0, sizeof seen);
    start_plain(p);
    ck_assert_int_eq(collect(p, workers, 0, 1, N_ITEMS, seen, seq, &nseq), 0);
    ck_assert_int_eq(nseq, N_ITEMS);
    assert_each_once(seen, N_ITEMS);
    if (ordered) {
        /* Worker k's j-th item is workers x j + k: the round robin is
         * 0, 1, 2, ... */
        for (i = 0; i < N_ITEMS; i++) {
            REQUIRE_EQ(seq[i], i);
        }
    }
}

/* What tasks ended with, by task id (1 .. MAX_TASKS). */
struct outcome {
    int items;     /* items received */
    long last;     /* the last item's value */
    int ends;      /* task ends received */
    int code;      /* the last end's code */
    char msg[256]; /* the last end's errmsg */
};

struct results {
    struct outcome t[MAX_TASKS + 1];
    int bad; /* a callback saw an impossible id or length */
    /* The re-entrancy probe: on_result calls the pool and records. */
    bool probe;
    int probed;
    int rc[8];
    int stats_rc;
    const char *errmsg;
};

static void on_result(subiter_pool *p, unsigned long long task,
                      const void *data, size_t len, void *user)
{
    struct results *res = user;
    subiter_pool_item item;
    subiter_pool_stats st = SUBITER_POOL_STATS_INIT;
    long v = 0;

    if (task < 1 || task > MAX_TASKS || len != sizeof v || data == NULL) {
        res->bad++;
        return;
    }
    if (res->t[task].ends != 0) {
        res->bad++; /* an item after its task's end */
    }
    memcpy(&v, data, sizeof v);
    res->t[task].items++;
    res->t[task].last = v;
    if (res->probe && res->probed == 0) {
        res->probed = 1;
        res->rc[0] = subiter_pool_submit(p, &v, sizeof v, 0, NULL);
        res->rc[1] = subiter_pool_next(p, &item);
        res->rc[2] = subiter_pool_wait(p, 10);
        res->rc[3] = subiter_pool_start(p, NULL, 0);
        res->rc[4] = subiter_pool_stop(p);
        res->rc[5] = subiter_pool_pause(p, 0);
        res->rc[6] = subiter_pool_resume(p, 0);
        res->rc[7] = subiter_pool_finalize(p, 0);
        res->stats_rc = subiter_pool_get_stats(p, &st);
        res->errmsg = subiter_pool_errmsg(p);
    }
}

static void on_error(subiter_pool *p, unsigned long long task, int code,
                     const char *errmsg, void *user)
{
    struct results *res = user;

    (void)p;
    if (task < 1 || task > MAX_TASKS || errmsg == NULL) {
        res->bad++;
        return;
    }
    res->t[task].ends++;
    res->t[task].code = code;
    snprintf(res->t[task].msg, sizeof res->t[task].msg, "%s", errmsg);
}

static void with_callbacks(subiter_pool_opts *po, struct results *res)
{
    memset(res, 0, sizeof *res);
    po->on_result = on_result;
    po->on_error = on_error;
    po->user = res;
}

/* Read task events with subiter_pool_next() until it returns 0 (or an
 * error, returned). */
static int drain(subiter_pool *p, struct results *res)
{
    subiter_pool_item item;
    struct outcome *o;
    int r;

    while ((r = subiter_pool_next(p, &item)) == 1) {
        REQUIRE(item.task >= 1 && item.task <= MAX_TASKS);
        o = &res->t[item.task];
        if (item.kind == SUBITER_POOL_ITEM) {
            REQUIRE_EQ(item.len, sizeof o->last);
            REQUIRE_EQ(o->ends, 0); /* items come before the end */
            memcpy(&o->last, item.data, sizeof o->last);
            o->items++;
        } else {
            REQUIRE_EQ(item.kind, SUBITER_POOL_TASK_END);
            REQUIRE(item.errmsg != NULL);
            o->ends++;
            o->code = item.code;
            snprintf(o->msg, sizeof o->msg, "%s", item.errmsg);
        }
    }
    return r;
}

/* Submit a task (blocking); returns its id. */
static unsigned long long submit(subiter_pool *p, long value, long how,
                                 long once, long ms)
{
    struct job j = {value, how, once, ms};
    unsigned long long id = 0;

    ck_assert_int_eq(subiter_pool_submit(p, &j, sizeof j, 0, &id), 0);
    ck_assert(id >= 1 && id <= MAX_TASKS);
    return id;
}

static int submit_nowait(subiter_pool *p, long value, long how,
                         unsigned long long *id)
{
    struct job j = {value, how, 0, 0};

    return subiter_pool_submit(p, &j, sizeof j, SUBITER_POOL_NOWAIT, id);
}

/* The task ended well (through next()) with f(value) as its last item. */
static void assert_task_ok(const struct results *res, unsigned long long id,
                           long value)
{
    const struct outcome *o = &res->t[id];

    ck_assert_msg(o->ends == 1 && o->code == 0,
                  "task %llu: %d ends, code %d (%s)", id, o->ends, o->code,
                  o->msg);
    ck_assert_int_ge(o->items, 1);
    ck_assert_int_eq(o->last, f(value));
    ck_assert_str_eq(o->msg, "");
}

/* ---- sharded iteration ---- */

static void sharded_unordered(unsigned workers)
{
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = pool_opts(workers, &wo);
    struct shared *sh = shared_new();
    subiter_pool *p;
    int seen[N_ITEMS];
    long nseq;
    unsigned i;

    po.order = SUBITER_POOL_UNORDERED;
    ck_assert_int_eq(subiter_pool_open(&p, gen_shard, sh, &po), 0);
    for (i = 0; i < workers; i++) {
        ck_assert_int_gt(subiter_pool_worker_pid(p, i), 0);
    }
    ck_assert_int_eq(subiter_pool_worker_pid(p, workers), 0);
    memset(seen, 0, sizeof seen);
    start_plain(p);
    ck_assert_int_eq(collect(p, workers, 0, 1, N_ITEMS, seen, NULL, &nseq), 0);
    ck_assert_int_eq(nseq, N_ITEMS);
    assert_each_once(seen, N_ITEMS);
    close_clean(p);
    tu_shared_free(sh, PAGE);
}

START_TEST(test_pool_sharded_unordered_union)
{
    struct tu_snapshot snap;

    tu_snapshot(&snap);
    sharded_unordered(2);
    sharded_unordered(3);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_sharded_ordered_round_robin)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = pool_opts(3, &wo);
    struct shared *sh;
    subiter_pool *p;
    int seen[N_ITEMS];
    long seq[N_ITEMS], again[N_ITEMS], n1, n2, i;

    tu_snapshot(&snap);
    sh = shared_new();
    ck_assert_int_eq(subiter_pool_open(&p, gen_shard, sh, &po), 0);

    /* Two runs: the same sequence, the round robin 0, 1, 2, ... (shard 0
     * has one item more than the others: 999 comes alone at the end). */
    memset(seen, 0, sizeof seen);
    start_plain(p);
    ck_assert_int_eq(collect(p, 3, 0, 1, N_ITEMS, seen, seq, &n1), 0);
    memset(seen, 0, sizeof seen);
    start_plain(p);
    ck_assert_int_eq(collect(p, 3, 0, 1, N_ITEMS, seen, again, &n2), 0);
    ck_assert_int_eq(n1, N_ITEMS);
    ck_assert_int_eq(n2, N_ITEMS);
    assert_each_once(seen, N_ITEMS);
    for (i = 0; i < N_ITEMS; i++) {
        REQUIRE_EQ(seq[i], i);
    }
    ck_assert(memcmp(seq, again, sizeof seq) == 0);
    run_plain(p, 3, true);
    close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_sharded_ordered_skips_ended_shards)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = pool_opts(3, &wo);
    subiter_pool *p;
    subiter_pool_item item;
    long want[18], v, j, k, n = 0, got = 0;
    int run, r;

    tu_snapshot(&snap);
    /* Worker k's shard has 3 (k + 1) items: rounds 0-2 take all three,
     * 3-5 workers 1 and 2, 6-8 worker 2 alone. */
    for (j = 0; j < 9; j++) {
        for (k = 0; k < 3; k++) {
            if (j < 3 * (k + 1)) {
                want[n++] = 1000 * k + j;
            }
        }
    }
    ck_assert_int_eq(n, 18);
    ck_assert_int_eq(subiter_pool_open(&p, gen_uneven, NULL, &po), 0);
    for (run = 0; run < 2; run++) {
        ck_assert_int_eq(subiter_pool_start(p, NULL, 0), 0);
        for (got = 0; (r = subiter_pool_next(p, &item)) == 1; got++) {
            ck_assert_int_lt(got, n);
            ck_assert_uint_eq(item.len, sizeof v);
            memcpy(&v, item.data, sizeof v);
            ck_assert_int_eq(v, want[got]);
            ck_assert_uint_eq(item.worker, (unsigned)(v / 1000));
        }
        ck_assert_int_eq(r, 0);
        ck_assert_int_eq(got, n);
    }
    close_clean(p);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_sharded_reiterate_and_stop)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = pool_opts(2, &wo);
    struct shared *sh;
    subiter_pool *p;
    subiter_pool_item item;
    pid_t pids[2];
    long v;
    int i;

    tu_snapshot(&snap);
    sh = shared_new();
    ck_assert_int_eq(subiter_pool_open(&p, gen_shard, sh, &po), 0);
    pids[0] = subiter_pool_worker_pid(p, 0);
    pids[1] = subiter_pool_worker_pid(p, 1);
    ck_assert_int_gt(pids[0], 0);
    ck_assert_int_gt(pids[1], 0);
    ck_assert_int_ne(pids[0], pids[1]);
    run_plain(p, 2, true);
    run_plain(p, 2, true);

    /* Stop midway (the shards are far longer than the buffers), then a
     * whole run again, from the start. */
    start_plain(p);
    for (i = 0; i < 10; i++) {
        ck_assert_int_eq(subiter_pool_next(p, &item), 1);
        memcpy(&v, item.data, sizeof v);
        ck_assert_int_eq(v, i);
    }
    ck_assert_int_eq(subiter_pool_stop(p), 0);
    ck_assert_int_eq(subiter_pool_stop(p), 0);
    run_plain(p, 2, true);

    /* Re-iteration reuses the workers. */
    ck_assert_int_eq(subiter_pool_worker_pid(p, 0), pids[0]);
    ck_assert_int_eq(subiter_pool_worker_pid(p, 1), pids[1]);
    ck_assert_uint_eq(get_stats(p).replaced, 0);
    close_clean(p);
    assert_gone(pids[0]);
    assert_gone(pids[1]);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_sharded_input_reaches_every_worker)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = pool_opts(3, &wo);
    static unsigned char in[SUBITER_INPUT_MAX];
    subiter_pool *p;
    subiter_pool_item item;
    size_t i, sizes[3] = {0, 7, SUBITER_INPUT_MAX};
    unsigned id, mask;
    int s, r;

    tu_snapshot(&snap);
    for (i = 0; i < sizeof in; i++) {
        in[i] = (unsigned char)(i * 7 + (i >> 8));
    }
    po.order = SUBITER_POOL_UNORDERED;
    ck_assert_int_eq(subiter_pool_open(&p, gen_echo, NULL, &po), 0);
    for (s = 0; s < 3; s++) {
        ck_assert_int_eq(subiter_pool_start(p, sizes[s] ? in : NULL, sizes[s]),
                         0);
        mask = 0;
        while ((r = subiter_pool_next(p, &item)) == 1) {
            ck_assert_uint_eq(item.len, sizeof id + sizes[s]);
            memcpy(&id, item.data, sizeof id);
            ck_assert_uint_eq(id, item.worker);
            ck_assert_uint_eq(mask & (1u << id), 0);
            mask |= 1u << id;
            ck_assert(
                memcmp((const char *)item.data + sizeof id, in, sizes[s]) == 0);
        }
        ck_assert_int_eq(r, 0);
        ck_assert_uint_eq(mask, 7);
    }
    close_clean(p);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_sharded_ranks_cover_once)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = pool_opts(2, &wo);
    struct shared *sh;
    subiter_pool *p[2];
    struct shard_in in = {N_ITEMS, -1, SHARD_NONE, 0, 0};
    int seen[N_ITEMS];
    long n[2];
    unsigned rank;

    tu_snapshot(&snap);
    sh = shared_new();
    po.world_size = 2;
    po.order = SUBITER_POOL_UNORDERED;
    for (rank = 0; rank < 2; rank++) {
        po.rank = rank;
        ck_assert_int_eq(subiter_pool_open(&p[rank], gen_shard, sh, &po), 0);
    }
    /* Both run at once; collect() checks each item's shard. */
    memset(seen, 0, sizeof seen);
    for (rank = 0; rank < 2; rank++) {
        ck_assert_int_eq(subiter_pool_start(p[rank], &in, sizeof in), 0);
    }
    for (rank = 0; rank < 2; rank++) {
        ck_assert_int_eq(
            collect(p[rank], 2, rank, 2, N_ITEMS, seen, NULL, &n[rank]), 0);
    }
    ck_assert_int_eq(n[0], N_ITEMS / 2);
    ck_assert_int_eq(n[1], N_ITEMS / 2);
    assert_each_once(seen, N_ITEMS);
    close_clean(p[0]);
    close_clean(p[1]);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_sharded_shard_fails)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = pool_opts(3, &wo);
    struct shared *sh;
    subiter_pool *p;
    struct shard_in in = {N_ITEMS, 1, SHARD_FAIL, 5, 0};
    int seen[N_ITEMS], order;
    pid_t pids[3];
    unsigned i;

    tu_snapshot(&snap);
    sh = shared_new();
    for (order = 0; order < 2; order++) {
        po.order = order;
        ck_assert_int_eq(subiter_pool_open(&p, gen_shard, sh, &po), 0);
        for (i = 0; i < 3; i++) {
            pids[i] = subiter_pool_worker_pid(p, i);
        }
        memset(seen, 0, sizeof seen);
        ck_assert_int_eq(subiter_pool_start(p, &in, sizeof in), 0);
        ck_assert_int_eq(collect(p, 3, 0, 1, N_ITEMS, seen, NULL, NULL),
                         SUBITER_EITER);
        assert_errmsg_has(p, "shard 1 broke after 5");
        /* The pool is usable; a generator's failure kills nobody. */
        run_plain(p, 3, order == SUBITER_POOL_ORDERED);
        for (i = 0; i < 3; i++) {
            ck_assert_int_eq(subiter_pool_worker_pid(p, i), pids[i]);
        }
        ck_assert_uint_eq(get_stats(p).replaced, 0);
        close_clean(p);
    }
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

/* Shard 1 dies mid-iteration (`how`, or SIGKILL from us when how is
 * SHARD_PAUSE); next() says SUBITER_ECHILD naming `sig`; then a whole run
 * works, on a new worker 1. */
static void shard_dies(long how, const char *sig)
{
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = pool_opts(3, &wo);
    struct shared *sh = shared_new();
    subiter_pool *p;
    struct shard_in in = {N_ITEMS, 1, how, 5, 0};
    int seen[N_ITEMS];
    pid_t pids[3];
    unsigned i;

    ck_assert_int_eq(subiter_pool_open(&p, gen_shard, sh, &po), 0);
    for (i = 0; i < 3; i++) {
        pids[i] = subiter_pool_worker_pid(p, i);
    }
    memset(seen, 0, sizeof seen);
    ck_assert_int_eq(subiter_pool_start(p, &in, sizeof in), 0);
    if (how == SHARD_PAUSE) {
        ck_assert(tu_wait_flag(&sh->started, 1, WAIT_MS));
        ck_assert_int_eq(kill(pids[1], SIGKILL), 0);
    }
    ck_assert_int_eq(collect(p, 3, 0, 1, N_ITEMS, seen, NULL, NULL),
                     SUBITER_ECHILD);
    assert_errmsg_has(p, sig);
    assert_errmsg_has(p, "worker 1");
    assert_gone(pids[1]);

    run_plain(p, 3, true);
    ck_assert_int_gt(subiter_pool_worker_pid(p, 1), 0);
    ck_assert_int_ne(subiter_pool_worker_pid(p, 1), pids[1]);
    ck_assert_int_eq(subiter_pool_worker_pid(p, 0), pids[0]);
    ck_assert_int_eq(subiter_pool_worker_pid(p, 2), pids[2]);
    ck_assert_uint_eq(get_stats(p).replaced, 1);
    close_clean(p);
    tu_shared_free(sh, PAGE);
}

START_TEST(test_pool_sharded_shard_segv)
{
    struct tu_snapshot snap;

    tu_snapshot(&snap);
    shard_dies(SHARD_SEGV, "SIGSEGV");
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_sharded_shard_sigkilled)
{
    struct tu_snapshot snap;

    tu_snapshot(&snap);
    shard_dies(SHARD_PAUSE, "SIGKILL");
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_sharded_restart_shards)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = pool_opts(3, &wo);
    struct shared *sh;
    subiter_pool *p;
    /* Shard 1 crashes after 100 items, the first time only. */
    struct shard_in in = {N_ITEMS, 1, SHARD_SEGV, 100, 1};
    int seen[N_ITEMS], order;
    long seq[N_ITEMS], nseq, i;
    pid_t pid1;

    tu_snapshot(&snap);
    sh = shared_new();
    po.restart_shards = 1;
    for (order = 0; order < 2; order++) {
        atomic_store(&sh->attempts, 0);
        po.order = order;
        ck_assert_int_eq(subiter_pool_open(&p, gen_shard, sh, &po), 0);
        pid1 = subiter_pool_worker_pid(p, 1);
        memset(seen, 0, sizeof seen);
        ck_assert_int_eq(subiter_pool_start(p, &in, sizeof in), 0);
        ck_assert_int_eq(collect(p, 3, 0, 1, N_ITEMS, seen, seq, &nseq), 0);
        ck_assert_int_eq(atomic_load(&sh->attempts), 2);
        ck_assert_int_eq(nseq, N_ITEMS);
        assert_each_once(seen, N_ITEMS);
        if (order == SUBITER_POOL_ORDERED) {
            /* Not even the order shows the restart. */
            for (i = 0; i < N_ITEMS; i++) {
                REQUIRE_EQ(seq[i], i);
            }
        }
        assert_gone(pid1);
        ck_assert_int_gt(subiter_pool_worker_pid(p, 1), 0);
        ck_assert_int_ne(subiter_pool_worker_pid(p, 1), pid1);
        ck_assert_uint_eq(get_stats(p).replaced, 1);
        run_plain(p, 3, order == SUBITER_POOL_ORDERED);
        close_clean(p);
    }
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_sharded_restart_gives_up)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = pool_opts(2, &wo);
    struct shared *sh;
    subiter_pool *p;
    /* Shard 1 crashes after 10 items, every time. */
    struct shard_in in = {N_ITEMS, 1, SHARD_SEGV, 10, 0};
    int seen[N_ITEMS];

    tu_snapshot(&snap);
    sh = shared_new();
    po.restart_shards = 1;
    po.max_retries = 2;
    ck_assert_int_eq(subiter_pool_open(&p, gen_shard, sh, &po), 0);
    memset(seen, 0, sizeof seen);
    ck_assert_int_eq(subiter_pool_start(p, &in, sizeof in), 0);
    ck_assert_int_eq(collect(p, 2, 0, 1, N_ITEMS, seen, NULL, NULL),
                     SUBITER_ECHILD);
    assert_errmsg_has(p, "SIGSEGV");
    assert_errmsg_has(p, "worker 1");
    /* Two reruns, then the replacement after the last death. */
    ck_assert_uint_eq(get_stats(p).replaced, 3);
    run_plain(p, 2, true);
    close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_sharded_rerun_cannot_start)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = pool_opts(2, &wo);
    struct shared *sh;
    subiter_pool *p;
    /* Shard 1 crashes after 10 items, the first time only. */
    struct shard_in in = {N_ITEMS, 1, SHARD_SEGV, 10, 1};
    int seen[N_ITEMS];

    tu_snapshot(&snap);
    sh = shared_new();
    wo.init = init_fail_late;
    po.restart_shards = 1;
    ck_assert_int_eq(subiter_pool_open(&p, gen_shard, sh, &po), 0);
    atomic_store(&sh->release, 1);
    memset(seen, 0, sizeof seen);
    ck_assert_int_eq(subiter_pool_start(p, &in, sizeof in), 0);
    /* The replacement's initializer fails: the rerun cannot start. */
    ck_assert_int_eq(collect(p, 2, 0, 1, N_ITEMS, seen, NULL, NULL),
                     SUBITER_EINIT);
    assert_errmsg_has(p, "rerun");
    assert_errmsg_has(p, "no more workers");
    ck_assert_int_eq(subiter_pool_worker_pid(p, 1), 0);
    /* Still no worker can start; then one can, and all is well. */
    ck_assert_int_eq(subiter_pool_start(p, &in, sizeof in), SUBITER_EINIT);
    atomic_store(&sh->release, 0);
    run_plain(p, 2, true);
    close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_sharded_idle_death_replaced)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = pool_opts(2, &wo);
    struct shared *sh;
    subiter_pool *p;
    pid_t pid1;
    int k;

    tu_snapshot(&snap);
    sh = shared_new();
    ck_assert_int_eq(subiter_pool_open(&p, gen_shard, sh, &po), 0);
    pid1 = subiter_pool_worker_pid(p, 1);
    /* Killed in Stand By, between calls: the next start replaces it
     * instead of failing an iteration it never began. */
    ck_assert_int_eq(kill(pid1, SIGKILL), 0);
    for (k = 0; k < 2000 && proc_state(pid1) != 'Z'; k++) {
        tu_sleep_ms(1);
    }
    ck_assert_int_eq(proc_state(pid1), 'Z');
    run_plain(p, 2, true);
    assert_gone(pid1);
    ck_assert_int_ne(subiter_pool_worker_pid(p, 1), pid1);
    ck_assert_uint_eq(get_stats(p).replaced, 1);
    close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_sharded_stop_worker_dies)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = pool_opts(2, &wo);
    struct shared *sh;
    subiter_pool *p;
    subiter_pool_item item;
    /* Far more items than the rings hold: shard 1 is still yielding when
     * the stop comes, and dies of it. */
    struct shard_in in = {10 * 1000 * 1000, 1, SHARD_DIE_ON_STOP, 0, 0};
    pid_t pid1;
    int k;

    tu_snapshot(&snap);
    sh = shared_new();
    ck_assert_int_eq(subiter_pool_open(&p, gen_shard, sh, &po), 0);
    pid1 = subiter_pool_worker_pid(p, 1);
    ck_assert_int_eq(subiter_pool_start(p, &in, sizeof in), 0);
    for (k = 0; k < 10; k++) {
        ck_assert_int_eq(subiter_pool_next(p, &item), 1);
    }
    ck_assert_int_eq(subiter_pool_stop(p), SUBITER_ECHILD);
    assert_errmsg_has(p, "while it stopped");
    assert_errmsg_has(p, "SIGKILL");
    assert_gone(pid1);
    ck_assert_uint_eq(get_stats(p).replaced, 1);
    /* Stopped: next says the iteration is over; the pool goes on. */
    ck_assert_int_eq(subiter_pool_next(p, &item), 0);
    run_plain(p, 2, true);
    close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- tasks ---- */

#define M_TASKS 30

START_TEST(test_pool_tasks_through_next)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = pool_opts(3, &wo);
    struct shared *sh;
    static struct results res;
    subiter_pool *p;
    subiter_pool_stats st;
    unsigned long long ids[M_TASKS];
    long k;

    tu_snapshot(&snap);
    sh = shared_new();
    memset(&res, 0, sizeof res);
    ck_assert_int_eq(subiter_pool_open(&p, gen_job, sh, &po), 0);
    for (k = 0; k < M_TASKS; k++) {
        ids[k] = submit(p, 10 * k + 3, JOB_PLAIN, 0, 0);
        if (k > 0) {
            ck_assert_uint_gt(ids[k], ids[k - 1]);
        }
    }
    ck_assert_int_eq(drain(p, &res), 0);
    for (k = 0; k < M_TASKS; k++) {
        assert_task_ok(&res, ids[k], 10 * k + 3);
        ck_assert_int_eq(res.t[ids[k]].items, 1);
    }
    st = get_stats(p);
    ck_assert_uint_eq(st.submitted, M_TASKS);
    ck_assert_uint_eq(st.done, M_TASKS);
    ck_assert_uint_eq(st.failed, 0);
    ck_assert_uint_eq(st.queued, 0);
    ck_assert_uint_eq(st.busy, 0);
    /* Nothing left: next says so at once. */
    ck_assert_int_eq(drain(p, &res), 0);
    close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_tasks_through_callbacks)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = pool_opts(3, &wo);
    struct shared *sh;
    static struct results res;
    subiter_pool *p;
    subiter_pool_stats st;
    unsigned long long ids[M_TASKS];
    long k;

    tu_snapshot(&snap);
    sh = shared_new();
    with_callbacks(&po, &res);
    ck_assert_int_eq(subiter_pool_open(&p, gen_job, sh, &po), 0);
    for (k = 0; k < M_TASKS; k++) {
        ids[k] = submit(p, 10 * k + 3, JOB_PLAIN, 0, 0);
    }
    ck_assert_int_eq(subiter_pool_wait(p, 20000), 0);
    ck_assert_int_eq(res.bad, 0);
    for (k = 0; k < M_TASKS; k++) {
        ck_assert_int_eq(res.t[ids[k]].items, 1);
        ck_assert_int_eq(res.t[ids[k]].last, f(10 * k + 3));
        ck_assert_int_eq(res.t[ids[k]].ends, 0); /* no error */
    }
    st = get_stats(p);
    ck_assert_uint_eq(st.submitted, M_TASKS);
    ck_assert_uint_eq(st.done, M_TASKS);
    ck_assert_uint_eq(st.failed, 0);
    /* Nothing to wait for. */
    ck_assert_int_eq(subiter_pool_wait(p, 1000), 0);
    close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

/* A task whose worker dies (`how`) on its first attempt: replaced, the
 * task retried, and everything succeeds. */
static void task_retried(long how)
{
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = pool_opts(2, &wo);
    struct shared *sh = shared_new();
    static struct results res;
    subiter_pool *p;
    subiter_pool_stats st;
    unsigned long long ids[5], dying;
    long k;

    /* exit() in the worker flushes its copy of our stdio buffers. */
    fflush(NULL);
    memset(&res, 0, sizeof res);
    ck_assert_int_eq(subiter_pool_open(&p, gen_job, sh, &po), 0);
    for (k = 0; k < 2; k++) {
        ids[k] = submit(p, k, JOB_PLAIN, 0, 0);
    }
    dying = submit(p, 100, how, 1, 0);
    for (k = 2; k < 5; k++) {
        ids[k] = submit(p, k, JOB_PLAIN, 0, 0);
    }
    ck_assert_int_eq(drain(p, &res), 0);
    ck_assert_int_eq(atomic_load(&sh->attempts), 2);
    for (k = 0; k < 5; k++) {
        assert_task_ok(&res, ids[k], k);
        ck_assert_int_eq(res.t[ids[k]].items, 1);
    }
    /* Its item may have come from both attempts. */
    assert_task_ok(&res, dying, 100);
    ck_assert_int_le(res.t[dying].items, 2);
    st = get_stats(p);
    ck_assert_uint_eq(st.submitted, 6);
    ck_assert_uint_eq(st.done, 6);
    ck_assert_uint_eq(st.failed, 0);
    ck_assert_uint_eq(st.retried, 1);
    ck_assert_uint_eq(st.replaced, 1);
    close_clean(p);
    tu_shared_free(sh, PAGE);
}

START_TEST(test_pool_task_retried_after_sigkill)
{
    struct tu_snapshot snap;

    tu_snapshot(&snap);
    task_retried(JOB_KILL);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_task_retried_after_segv)
{
    struct tu_snapshot snap;

    tu_snapshot(&snap);
    task_retried(JOB_SEGV);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_task_retried_after_exit3)
{
    struct tu_snapshot snap;

    tu_snapshot(&snap);
    task_retried(JOB_EXIT3);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_task_fails_without_retries)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = pool_opts(2, &wo);
    struct shared *sh;
    static struct results res;
    subiter_pool *p;
    subiter_pool_stats st;
    unsigned long long a, b, dying;

    tu_snapshot(&snap);
    sh = shared_new();
    with_callbacks(&po, &res);
    po.max_retries = 0;
    ck_assert_int_eq(subiter_pool_open(&p, gen_job, sh, &po), 0);
    a = submit(p, 1, JOB_PLAIN, 0, 0);
    dying = submit(p, 2, JOB_SEGV, 1, 0);
    b = submit(p, 3, JOB_PLAIN, 0, 0);
    ck_assert_int_eq(subiter_pool_wait(p, 20000), 0);
    ck_assert_int_eq(res.bad, 0);
    ck_assert_int_eq(atomic_load(&sh->attempts), 1);
    ck_assert_int_eq(res.t[dying].ends, 1);
    ck_assert_int_eq(res.t[dying].code, SUBITER_ECHILD);
    ck_assert_msg(strstr(res.t[dying].msg, "SIGSEGV") != NULL,
                  "errmsg \"%s\" lacks the signal", res.t[dying].msg);
    ck_assert_int_eq(res.t[a].ends, 0);
    ck_assert_int_eq(res.t[a].last, f(1));
    ck_assert_int_eq(res.t[b].ends, 0);
    ck_assert_int_eq(res.t[b].last, f(3));
    st = get_stats(p);
    ck_assert_uint_eq(st.done, 2);
    ck_assert_uint_eq(st.failed, 1);
    ck_assert_uint_eq(st.retried, 0);
    ck_assert_uint_eq(st.replaced, 1);
    /* The pool goes on. */
    a = submit(p, 4, JOB_PLAIN, 0, 0);
    ck_assert_int_eq(subiter_pool_wait(p, 20000), 0);
    ck_assert_int_eq(res.t[a].last, f(4));
    close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_task_always_dies)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = pool_opts(2, &wo);
    struct shared *sh;
    static struct results res;
    subiter_pool *p;
    subiter_pool_stats st;
    unsigned long long killed, exited, ok;

    tu_snapshot(&snap);
    fflush(NULL);
    sh = shared_new();
    memset(&res, 0, sizeof res);
    ck_assert_int_eq(subiter_pool_open(&p, gen_job, sh, &po), 0);
    /* max_retries is 1: two attempts each. */
    killed = submit(p, 1, JOB_KILL, 0, 0);
    exited = submit(p, 2, JOB_EXIT3, 0, 0);
    ok = submit(p, 3, JOB_PLAIN, 0, 0);
    ck_assert_int_eq(drain(p, &res), 0);
    ck_assert_int_eq(atomic_load(&sh->attempts), 4);
    ck_assert_int_eq(res.t[killed].ends, 1);
    ck_assert_int_eq(res.t[killed].code, SUBITER_ECHILD);
    ck_assert_msg(strstr(res.t[killed].msg, "SIGKILL") != NULL,
                  "errmsg \"%s\" lacks the signal", res.t[killed].msg);
    ck_assert_int_eq(res.t[exited].ends, 1);
    ck_assert_int_eq(res.t[exited].code, SUBITER_ECHILD);
    ck_assert_msg(strstr(res.t[exited].msg, "status 3") != NULL,
                  "errmsg \"%s\" lacks the status", res.t[exited].msg);
    assert_task_ok(&res, ok, 3);
    st = get_stats(p);
    ck_assert_uint_eq(st.done, 1);
    ck_assert_uint_eq(st.failed, 2);
    ck_assert_uint_eq(st.retried, 2);
    ck_assert_uint_eq(st.replaced, 4);
    close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_task_timeout)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, SHORT_GRACE_MS);
    subiter_pool_opts po = pool_opts(1, &wo);
    struct shared *sh;
    static struct results res;
    subiter_pool *p;
    subiter_pool_stats st;
    unsigned long long hang, ids[3];
    pid_t pid;
    int64_t t0;
    long k;

    tu_snapshot(&snap);
    sh = shared_new();
    memset(&res, 0, sizeof res);
    po.task_timeout_ms = 200;
    ck_assert_int_eq(subiter_pool_open(&p, gen_job, sh, &po), 0);
    pid = subiter_pool_worker_pid(p, 0);
    t0 = tu_now_ms();
    hang = submit(p, 0, JOB_HANG, 0, 0);
    for (k = 0; k < 3; k++) {
        ids[k] = submit(p, k + 1, JOB_PLAIN, 0, 0);
    }
    ck_assert_int_eq(drain(p, &res), 0);
    ck_assert_int_lt(tu_now_ms() - t0, WAIT_MS);
    ck_assert_int_eq(atomic_load(&sh->started), 1);
    ck_assert_int_eq(res.t[hang].ends, 1);
    ck_assert_int_eq(res.t[hang].code, SUBITER_ETIMEDOUT);
    ck_assert_int_eq(res.t[hang].items, 0);
    ck_assert_msg(strstr(res.t[hang].msg, "200 ms") != NULL,
                  "errmsg \"%s\" lacks the timeout", res.t[hang].msg);
    for (k = 0; k < 3; k++) {
        assert_task_ok(&res, ids[k], k + 1);
    }
    /* The later tasks ran on a new worker; the old one is reaped. */
    assert_gone(pid);
    ck_assert_int_gt(subiter_pool_worker_pid(p, 0), 0);
    ck_assert_int_ne(subiter_pool_worker_pid(p, 0), pid);
    st = get_stats(p);
    ck_assert_uint_eq(st.timed_out, 1);
    ck_assert_uint_eq(st.failed, 1);
    ck_assert_uint_eq(st.done, 3);
    ck_assert_uint_eq(st.retried, 0);
    close_any(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_queue_bounded_with_callbacks)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = pool_opts(1, &wo);
    struct shared *sh;
    static struct results res;
    subiter_pool *p;
    subiter_pool_stats st;
    unsigned long long a, b = 0, c = 0, d = 0;

    tu_snapshot(&snap);
    sh = shared_new();
    with_callbacks(&po, &res);
    po.queue_max = 2;
    ck_assert_int_eq(subiter_pool_open(&p, gen_job, sh, &po), 0);
    a = submit(p, 1, JOB_GATE, 0, 0);
    ck_assert(drive_until(p, &sh->started, 1));
    st = get_stats(p);
    ck_assert_uint_eq(st.busy, 1);
    ck_assert_uint_eq(st.queued, 0);

    ck_assert_int_eq(submit_nowait(p, 2, JOB_PLAIN, &b), 0);
    ck_assert_int_eq(submit_nowait(p, 3, JOB_PLAIN, &c), 0);
    ck_assert_int_eq(get_stats(p).queued, 2);
    ck_assert_int_eq(submit_nowait(p, 4, JOB_PLAIN, &d), -EAGAIN);
    ck_assert_int_eq(submit_nowait(p, 4, JOB_PLAIN, &d), -EAGAIN);
    st = get_stats(p);
    ck_assert_uint_eq(st.submitted, 3);
    ck_assert_uint_eq(st.queued, 2);

    /* Room comes only when the gate task ends and the worker takes the
     * next: the blocking submit runs the pool (and a's callback) until
     * then. */
    atomic_store(&sh->release, 1);
    d = submit(p, 4, JOB_PLAIN, 0, 0);
    ck_assert_int_eq(res.t[a].items, 1);
    ck_assert_uint_le(get_stats(p).queued, 2);
    ck_assert_int_eq(subiter_pool_wait(p, 20000), 0);
    ck_assert_int_eq(res.bad, 0);
    ck_assert_int_eq(res.t[a].last, f(1));
    ck_assert_int_eq(res.t[b].last, f(2));
    ck_assert_int_eq(res.t[c].last, f(3));
    ck_assert_int_eq(res.t[d].last, f(4));
    st = get_stats(p);
    ck_assert_uint_eq(st.submitted, 4);
    ck_assert_uint_eq(st.done, 4);
    close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_queue_full_deadlock)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = pool_opts(1, &wo);
    struct shared *sh;
    static struct results res;
    subiter_pool *p;
    subiter_pool_item item;
    subiter_pool_stats st;
    struct job j = {4, JOB_PLAIN, 0, 0};
    unsigned long long a, b = 0, c = 0, d = 0;
    long v;

    tu_snapshot(&snap);
    sh = shared_new();
    memset(&res, 0, sizeof res);
    po.queue_max = 2;
    ck_assert_int_eq(subiter_pool_open(&p, gen_job, sh, &po), 0);
    /* a yields 100 items: with 32 buffered the worker waits for next(). */
    a = submit(p, 100, JOB_MANY, 0, 0);
    ck_assert_int_eq(subiter_pool_next(p, &item), 1);
    ck_assert_int_eq(item.kind, SUBITER_POOL_ITEM);
    ck_assert_uint_eq(item.task, a);
    memcpy(&v, item.data, sizeof v);
    ck_assert_int_eq(v, 0);
    ck_assert(tu_wait_flag(&sh->yielded, (int)SUBITER_OPTS_DEFAULT_BUFFER_ITEMS,
                           WAIT_MS));

    ck_assert_int_eq(submit_nowait(p, 2, JOB_PLAIN, &b), 0);
    ck_assert_int_eq(submit_nowait(p, 3, JOB_PLAIN, &c), 0);
    ck_assert_int_eq(submit_nowait(p, 4, JOB_PLAIN, &d), -EAGAIN);
    ck_assert_int_eq(subiter_pool_submit(p, &j, sizeof j, 0, &d), -EDEADLK);
    st = get_stats(p);
    ck_assert_uint_eq(st.submitted, 3);
    ck_assert_uint_eq(st.queued, 2);

    res.t[a].items = 1;
    res.t[a].last = 0;
    ck_assert_int_eq(drain(p, &res), 0);
    ck_assert_int_eq(res.t[a].items, 100);
    ck_assert_int_eq(res.t[a].last, 99);
    ck_assert_int_eq(res.t[a].ends, 1);
    ck_assert_int_eq(res.t[a].code, 0);
    assert_task_ok(&res, b, 2);
    assert_task_ok(&res, c, 3);
    ck_assert_uint_eq(get_stats(p).done, 3);
    close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_pause_resume)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, SHORT_GRACE_MS);
    subiter_pool_opts po = pool_opts(2, &wo);
    struct shared *sh;
    static struct results res;
    subiter_pool *p;
    pid_t pids[2];
    unsigned long long a;
    int64_t t0;
    int r;

    tu_snapshot(&snap);
    sh = shared_new();
    with_callbacks(&po, &res);
    ck_assert_int_eq(subiter_pool_open(&p, gen_job, sh, &po), 0);
    pids[0] = subiter_pool_worker_pid(p, 0);
    pids[1] = subiter_pool_worker_pid(p, 1);

    /* One worker. */
    ck_assert_int_eq(subiter_pool_pause(p, 1), 0);
    ck_assert(wait_state(pids[1], true));
    ck_assert_int_ne(proc_state(pids[0]), 'T');
    ck_assert_int_eq(subiter_pool_resume(p, 1), 0);
    ck_assert(wait_state(pids[1], false));

    /* The whole pool: nothing is handed out, nothing completes. */
    ck_assert_int_eq(subiter_pool_pause(p, -1), 0);
    ck_assert(wait_state(pids[0], true));
    ck_assert(wait_state(pids[1], true));
    a = submit(p, 7, JOB_PLAIN, 0, 0);
    r = subiter_pool_wait(p, 200);
    ck_assert_int_eq(r, -ETIMEDOUT);
    ck_assert_uint_eq(get_stats(p).done, 0);
    ck_assert_int_eq(res.t[a].items, 0);
    ck_assert_int_eq(subiter_pool_resume(p, -1), 0);
    ck_assert_int_eq(subiter_pool_wait(p, 20000), 0);
    ck_assert_int_eq(res.t[a].items, 1);
    ck_assert_int_eq(res.t[a].last, f(7));
    ck_assert_uint_eq(get_stats(p).done, 1);
    ck_assert(wait_state(pids[0], false));
    ck_assert(wait_state(pids[1], false));

    /* No such worker. */
    ck_assert_int_eq(subiter_pool_pause(p, 2), -EINVAL);
    ck_assert_int_eq(subiter_pool_pause(p, 99), -EINVAL);
    ck_assert_int_eq(subiter_pool_pause(p, -2), -EINVAL);
    ck_assert_int_eq(subiter_pool_resume(p, 2), -EINVAL);
    ck_assert_int_eq(subiter_pool_pause(NULL, 0), -EINVAL);
    ck_assert_int_eq(subiter_pool_resume(NULL, -1), -EINVAL);

    /* Close ends a paused worker too, within its grace. */
    ck_assert_int_eq(subiter_pool_pause(p, 0), 0);
    ck_assert(wait_state(pids[0], true));
    t0 = tu_now_ms();
    close_any(p);
    ck_assert_int_lt(tu_now_ms() - t0, 3 * SHORT_GRACE_MS + 2000);
    assert_gone(pids[0]);
    assert_gone(pids[1]);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_paused_time_not_counted)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, SHORT_GRACE_MS);
    subiter_pool_opts po = pool_opts(1, &wo);
    struct shared *sh;
    static struct results res;
    subiter_pool *p;
    unsigned long long a;

    tu_snapshot(&snap);
    sh = shared_new();
    with_callbacks(&po, &res);
    po.task_timeout_ms = 1000;
    ck_assert_int_eq(subiter_pool_open(&p, gen_job, sh, &po), 0);
    /* A 100 ms task, paused for 1.5 s of its 1 s limit: it still ends
     * well, because paused time does not count. */
    a = submit(p, 5, JOB_SLEEP, 0, 100);
    ck_assert_int_eq(subiter_pool_pause(p, 0), 0);
    ck_assert_int_eq(subiter_pool_wait(p, 1500), -ETIMEDOUT);
    ck_assert_int_eq(res.t[a].items, 0);
    ck_assert_int_eq(subiter_pool_resume(p, 0), 0);
    ck_assert_int_eq(subiter_pool_wait(p, 20000), 0);
    ck_assert_int_eq(res.t[a].items, 1);
    ck_assert_int_eq(res.t[a].last, f(5));
    ck_assert_int_eq(res.t[a].ends, 0);
    ck_assert_uint_eq(get_stats(p).timed_out, 0);
    ck_assert_uint_eq(get_stats(p).done, 1);
    close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

/* Workers 1: a gate task that never opens, and three queued behind it. */
static void submit_stuck(subiter_pool *p, unsigned long long *ids)
{
    int k;

    ids[0] = submit(p, 0, JOB_GATE, 0, 0);
    for (k = 1; k < 4; k++) {
        ids[k] = submit(p, k, JOB_PLAIN, 0, 0);
    }
}

START_TEST(test_pool_finalize_cancels_with_callbacks)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, SHORT_GRACE_MS);
    subiter_pool_opts po = pool_opts(1, &wo);
    struct shared *sh;
    static struct results res;
    subiter_pool *p;
    subiter_pool_stats st;
    unsigned long long ids[4];
    int k;

    tu_snapshot(&snap);
    sh = shared_new();
    with_callbacks(&po, &res);
    ck_assert_int_eq(subiter_pool_open(&p, gen_job, sh, &po), 0);
    submit_stuck(p, ids);
    ck_assert(drive_until(p, &sh->started, 1));
    ck_assert_int_eq(subiter_pool_finalize(p, 100), 4);
    ck_assert_int_eq(res.bad, 0);
    for (k = 0; k < 4; k++) {
        ck_assert_int_eq(res.t[ids[k]].items, 0);
        ck_assert_int_eq(res.t[ids[k]].ends, 1);
        ck_assert_int_eq(res.t[ids[k]].code, SUBITER_ECANCELED);
        ck_assert_str_ne(res.t[ids[k]].msg, "");
    }
    ck_assert_int_eq(submit_nowait(p, 9, JOB_PLAIN, NULL), -ESHUTDOWN);
    st = get_stats(p);
    ck_assert_uint_eq(st.cancelled, 4);
    ck_assert_uint_eq(st.failed, 4);
    ck_assert_uint_eq(st.done, 0);
    ck_assert_uint_eq(st.submitted, 4);
    ck_assert_int_eq(subiter_pool_wait(p, 1000), 0);
    close_any(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_finalize_cancels_through_next)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, SHORT_GRACE_MS);
    subiter_pool_opts po = pool_opts(1, &wo);
    struct shared *sh;
    static struct results res;
    subiter_pool *p;
    struct job j = {9, JOB_PLAIN, 0, 0};
    unsigned long long ids[4];
    int k;

    tu_snapshot(&snap);
    sh = shared_new();
    memset(&res, 0, sizeof res);
    ck_assert_int_eq(subiter_pool_open(&p, gen_job, sh, &po), 0);
    submit_stuck(p, ids);
    ck_assert_int_eq(subiter_pool_finalize(p, 100), 0);
    ck_assert_int_eq(subiter_pool_submit(p, &j, sizeof j, 0, NULL), -ESHUTDOWN);
    ck_assert_int_eq(drain(p, &res), 0);
    for (k = 0; k < 4; k++) {
        ck_assert_int_eq(res.t[ids[k]].items, 0);
        ck_assert_int_eq(res.t[ids[k]].ends, 1);
        ck_assert_int_eq(res.t[ids[k]].code, SUBITER_ECANCELED);
        ck_assert_str_ne(res.t[ids[k]].msg, "");
    }
    ck_assert_uint_eq(get_stats(p).cancelled, 4);
    ck_assert_int_eq(subiter_pool_submit(p, &j, sizeof j, 0, NULL), -ESHUTDOWN);
    close_any(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_finalize_with_grace_finishes)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = pool_opts(2, &wo);
    struct shared *sh;
    static struct results res;
    subiter_pool *p;
    subiter_pool_stats st;
    unsigned long long ids[4];
    int k;

    tu_snapshot(&snap);
    sh = shared_new();
    with_callbacks(&po, &res);
    ck_assert_int_eq(subiter_pool_open(&p, gen_job, sh, &po), 0);
    for (k = 0; k < 4; k++) {
        ids[k] = submit(p, k, JOB_SLEEP, 0, 50);
    }
    ck_assert_int_eq(subiter_pool_finalize(p, 20000), 0);
    ck_assert_int_eq(res.bad, 0);
    for (k = 0; k < 4; k++) {
        ck_assert_int_eq(res.t[ids[k]].items, 1);
        ck_assert_int_eq(res.t[ids[k]].last, f(k));
        ck_assert_int_eq(res.t[ids[k]].ends, 0);
    }
    ck_assert_int_eq(submit_nowait(p, 9, JOB_PLAIN, NULL), -ESHUTDOWN);
    st = get_stats(p);
    ck_assert_uint_eq(st.done, 4);
    ck_assert_uint_eq(st.cancelled, 0);
    ck_assert_uint_eq(st.failed, 0);
    close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

static unsigned live_workers(const subiter_pool *p, unsigned max)
{
    unsigned i, n = 0;

    for (i = 0; i < max; i++) {
        n += subiter_pool_worker_pid(p, i) > 0;
    }
    return n;
}

START_TEST(test_pool_min_max_workers)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = pool_opts(3, &wo);
    struct shared *sh;
    static struct results res;
    subiter_pool *p;
    subiter_pool_stats st;
    unsigned long long ids[3], e;
    int64_t end;
    int k;

    tu_snapshot(&snap);
    sh = shared_new();
    with_callbacks(&po, &res);
    po.min_workers = 1;
    po.idle_ms = 100;
    ck_assert_int_eq(subiter_pool_open(&p, gen_job, sh, &po), 0);
    ck_assert_uint_eq(get_stats(p).workers, 1);
    ck_assert_uint_eq(live_workers(p, 3), 1);

    /* Three tasks that hold their workers: the pool grows to 3. */
    for (k = 0; k < 3; k++) {
        ids[k] = submit(p, k, JOB_GATE, 0, 0);
    }
    ck_assert(drive_until(p, &sh->started, 3));
    st = get_stats(p);
    ck_assert_uint_eq(st.workers, 3);
    ck_assert_uint_eq(st.busy, 3);
    ck_assert_uint_eq(live_workers(p, 3), 3);
    atomic_store(&sh->release, 1);
    ck_assert_int_eq(subiter_pool_wait(p, 20000), 0);
    for (k = 0; k < 3; k++) {
        ck_assert_int_eq(res.t[ids[k]].last, f(k));
    }

    /* Idle: back to min_workers once a call drives the pool. */
    end = tu_now_ms() + WAIT_MS;
    while (get_stats(p).workers > 1 && tu_now_ms() < end) {
        tu_sleep_ms(50);
        ck_assert_int_eq(subiter_pool_wait(p, 50), 0);
    }
    st = get_stats(p);
    ck_assert_uint_eq(st.workers, 1);
    ck_assert_uint_eq(live_workers(p, 3), 1);
    ck_assert_uint_eq(st.replaced, 0);

    /* And it still works. */
    e = submit(p, 5, JOB_PLAIN, 0, 0);
    ck_assert_int_eq(subiter_pool_wait(p, 20000), 0);
    ck_assert_int_eq(res.t[e].last, f(5));
    ck_assert_int_eq(res.bad, 0);
    close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- misuse ---- */

START_TEST(test_pool_bad_options)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS), bad_wo;
    subiter_pool_opts po;
    subiter_pool *p;
    int i;

    tu_snapshot(&snap);
    po = pool_opts(2, &wo);
    ck_assert_int_eq(subiter_pool_open(NULL, tu_gen_count, NULL, &po), -EINVAL);
    p = NULL;
    ck_assert_int_eq(subiter_pool_open(&p, NULL, NULL, &po), -EINVAL);
    subiter_pool_close(p);
    for (i = 0; i < 9; i++) {
        po = pool_opts(2, &wo);
        switch (i) {
        case 0:
            po.min_workers = 3;
            break;
        case 1:
            po.world_size = 0;
            break;
        case 2:
            po.world_size = 2;
            po.rank = 2;
            break;
        case 3:
            po.size = sizeof po.size;
            break;
        case 4:
            po.order = 7;
            break;
        case 5:
            po.queue_max = 0;
            break;
        case 6:
            po.idle_ms = -1;
            break;
        case 7:
            bad_wo = wo;
            bad_wo.grace_ms = -1;
            po.worker = &bad_wo;
            break;
        default:
            bad_wo = wo;
            bad_wo.size = 1;
            po.worker = &bad_wo;
            break;
        }
        p = NULL;
        ck_assert_msg(subiter_pool_open(&p, tu_gen_count, NULL, &po) == -EINVAL,
                      "bad option %d accepted", i);
        subiter_pool_close(p);
    }
    ck_assert_int_eq(subiter_pool_close(NULL), 0);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_null_args)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = pool_opts(2, &wo);
    subiter_pool *p;
    subiter_pool_item item;
    subiter_pool_stats st = SUBITER_POOL_STATS_INIT;
    static char big[SUBITER_INPUT_MAX + 1];
    long n = 3;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_pool_start(NULL, NULL, 0), -EINVAL);
    ck_assert_int_eq(subiter_pool_next(NULL, &item), -EINVAL);
    ck_assert_int_eq(subiter_pool_submit(NULL, &n, sizeof n, 0, NULL), -EINVAL);
    ck_assert_int_eq(subiter_pool_wait(NULL, 0), -EINVAL);
    ck_assert_int_eq(subiter_pool_finalize(NULL, 0), -EINVAL);
    ck_assert_int_eq(subiter_pool_get_stats(NULL, &st), -EINVAL);
    ck_assert_int_eq(subiter_pool_worker_pid(NULL, 0), 0);
    ck_assert_ptr_nonnull(subiter_pool_errmsg(NULL));

    ck_assert_int_eq(subiter_pool_open(&p, tu_gen_count, NULL, &po), 0);
    ck_assert_str_eq(subiter_pool_errmsg(p), "");
    ck_assert_int_eq(subiter_pool_next(p, NULL), -EINVAL);
    ck_assert_int_eq(subiter_pool_start(p, NULL, 5), -EINVAL);
    ck_assert_int_eq(subiter_pool_submit(p, NULL, 5, 0, NULL), -EINVAL);
    ck_assert_int_eq(subiter_pool_submit(p, &n, sizeof n, 8, NULL), -EINVAL);
    ck_assert_int_eq(subiter_pool_start(p, big, sizeof big), -EMSGSIZE);
    ck_assert_int_eq(subiter_pool_submit(p, big, sizeof big, 0, NULL),
                     -EMSGSIZE);
    ck_assert_int_eq(subiter_pool_get_stats(p, NULL), -EINVAL);
    st.size = 0;
    ck_assert_int_eq(subiter_pool_get_stats(p, &st), -EINVAL);
    ck_assert_int_eq(subiter_pool_worker_pid(p, 2), 0);
    ck_assert_int_eq(subiter_pool_worker_pid(p, 12345), 0);
    ck_assert_int_eq(subiter_pool_finalize(p, -1), -EINVAL);
    /* wait() is for callbacks. */
    ck_assert_int_eq(subiter_pool_wait(p, 0), -EINVAL);
    /* None of it hurt the pool. */
    ck_assert_int_eq(subiter_pool_start(p, &n, sizeof n), 0);
    ck_assert_int_eq(subiter_pool_stop(p), 0);
    ck_assert_uint_eq(get_stats(p).submitted, 0);
    close_clean(p);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_submit_while_sharded)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = pool_opts(2, &wo);
    struct shared *sh;
    static struct results res;
    subiter_pool *p;
    struct job j = {1, JOB_PLAIN, 0, 0};
    struct shard_in in = {N_ITEMS, -1, SHARD_NONE, 0, 0};
    unsigned long long a;
    int seen[N_ITEMS];

    tu_snapshot(&snap);
    sh = shared_new();
    memset(&res, 0, sizeof res);
    ck_assert_int_eq(subiter_pool_open(&p, gen_shard, sh, &po), 0);
    start_plain(p);
    ck_assert_int_eq(subiter_pool_submit(p, &j, sizeof j, 0, NULL), -EINVAL);
    ck_assert_int_eq(
        subiter_pool_submit(p, &j, sizeof j, SUBITER_POOL_NOWAIT, NULL),
        -EINVAL);
    /* Nor a second start. */
    ck_assert_int_eq(subiter_pool_start(p, &in, sizeof in), -EINVAL);
    /* The running iteration is unharmed. */
    memset(seen, 0, sizeof seen);
    ck_assert_int_eq(collect(p, 2, 0, 1, N_ITEMS, seen, NULL, NULL), 0);
    assert_each_once(seen, N_ITEMS);
    close_clean(p);

    /* And no start while tasks are pending. */
    ck_assert_int_eq(subiter_pool_open(&p, gen_job, sh, &po), 0);
    a = submit(p, 1, JOB_GATE, 0, 0);
    ck_assert_int_eq(subiter_pool_start(p, &in, sizeof in), -EINVAL);
    atomic_store(&sh->release, 1);
    ck_assert_int_eq(drain(p, &res), 0);
    assert_task_ok(&res, a, 1);
    close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_calls_from_callback_busy)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = pool_opts(1, &wo);
    struct shared *sh;
    static struct results res;
    subiter_pool *p;
    unsigned long long a;
    int i;

    tu_snapshot(&snap);
    sh = shared_new();
    with_callbacks(&po, &res);
    res.probe = true;
    ck_assert_int_eq(subiter_pool_open(&p, gen_job, sh, &po), 0);
    a = submit(p, 1, JOB_PLAIN, 0, 0);
    ck_assert_int_eq(subiter_pool_wait(p, 20000), 0);
    ck_assert_int_eq(res.probed, 1);
    for (i = 0; i < 8; i++) {
        ck_assert_msg(res.rc[i] == -EBUSY, "call %d from a callback: %d", i,
                      res.rc[i]);
    }
    ck_assert_int_eq(res.stats_rc, 0);
    ck_assert_ptr_nonnull(res.errmsg);
    ck_assert_int_eq(res.t[a].last, f(1));
    /* None of them took effect: no task added, not finalized. */
    ck_assert_uint_eq(get_stats(p).submitted, 1);
    a = submit(p, 2, JOB_PLAIN, 0, 0);
    ck_assert_int_eq(subiter_pool_wait(p, 20000), 0);
    ck_assert_int_eq(res.t[a].last, f(2));
    close_clean(p);
    tu_shared_free(sh, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_init_fails)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = pool_opts(3, &wo);
    subiter_pool *p = NULL;
    int r;

    tu_snapshot(&snap);
    wo.init = init_fail_shard1;
    ck_assert_int_eq(subiter_pool_open(&p, tu_gen_count, NULL, &po),
                     SUBITER_EINIT);
    ck_assert_ptr_nonnull(p);
    assert_errmsg_has(p, "no device for shard 1");
    r = subiter_pool_close(p);
    ck_assert_msg(r == 0 || r == SUBITER_ECHILD || r == SUBITER_ETIMEDOUT,
                  "close: %d", r);
    tu_assert_clean(&snap);
}
END_TEST

/* ==== the pool loop: initializers that give up, reruns that fail ==== */

/* A page the workers and the test all see: struct shared first, so that
 * gen_job() and gen_shard() find theirs at the same address. */
struct init_gate {
    struct shared sh;
    _Atomic int fail;   /* != 0: every initializer fails */
    _Atomic int deaths; /* initializers still to die (_exit) */
};

/* Initializer steered by struct init_gate (arg). */
static int init_gated(subiter_gen *g, void *arg)
{
    struct init_gate *ig = arg;

    if (atomic_load(&ig->fail) != 0) {
        return subiter_fail(g, "the device is gone");
    }
    if (atomic_fetch_sub(&ig->deaths, 1) > 0) {
        _exit(5);
    }
    return 0;
}

static struct init_gate *init_gate_new(void)
{
    struct init_gate *ig = tu_shared_new(PAGE);

    memset(ig, 0, sizeof *ig);
    return ig;
}

START_TEST(test_pool_task_after_init_gave_up)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = pool_opts(1, &wo);
    static struct results res;
    struct init_gate *ig;
    subiter_pool *p;
    unsigned long long a, b, c;

    tu_snapshot(&snap);
    ig = init_gate_new();
    memset(&res, 0, sizeof res);
    wo.init = init_gated;
    po.max_retries = 0;
    ck_assert_int_eq(subiter_pool_open(&p, gen_job, ig, &po), 0);
    /* The task's worker dies, and from now on no initializer succeeds. */
    atomic_store(&ig->fail, 1);
    a = submit(p, 1, JOB_KILL, 0, 0);
    ck_assert_int_eq(drain(p, &res), 0);
    ck_assert_int_eq(res.t[a].code, SUBITER_ECHILD);
    /* No worker can start: the task ends with the reason, at once. */
    b = submit(p, 2, JOB_PLAIN, 0, 0);
    ck_assert_int_eq(drain(p, &res), 0);
    ck_assert_int_eq(res.t[b].ends, 1);
    ck_assert_int_eq(res.t[b].code, SUBITER_EINIT);
    ck_assert_msg(strstr(res.t[b].msg, "the device is gone") != NULL,
                  "errmsg \"%s\"", res.t[b].msg);
    ck_assert_int_eq(subiter_pool_worker_pid(p, 0), 0);
    /* The cause is gone: a task submitted now runs. */
    atomic_store(&ig->fail, 0);
    c = submit(p, 3, JOB_PLAIN, 0, 0);
    ck_assert_int_eq(drain(p, &res), 0);
    assert_task_ok(&res, c, 3);
    ck_assert_int_gt(subiter_pool_worker_pid(p, 0), 0);
    close_clean(p);
    tu_shared_free(ig, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_pool_sharded_rerun_dies_in_init)
{
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts_grace(0, PROMPT_GRACE_MS);
    subiter_pool_opts po = pool_opts(2, &wo);
    struct init_gate *ig;
    subiter_pool *p;
    /* Shard 1 crashes after 10 items, the first time only. */
    struct shard_in in = {N_ITEMS, 1, SHARD_SEGV, 10, 1};
    int seen[N_ITEMS], order;
    long seq[N_ITEMS], nseq, i;

    tu_snapshot(&snap);
    ig = init_gate_new();
    wo.init = init_gated;
    po.restart_shards = 1;
    po.max_retries = 3;
    for (order = 0; order < 2; order++) {
        po.order = order;
        atomic_store(&ig->sh.attempts, 0);
        atomic_store(&ig->deaths, 0);
        ck_assert_int_eq(subiter_pool_open(&p, gen_shard, ig, &po), 0);
        /* The first two replacements die in their initializer: each
         * counts one rerun, and the third rerun runs the shard. */
        atomic_store(&ig->deaths, 2);
        memset(seen, 0, sizeof seen);
        ck_assert_int_eq(subiter_pool_start(p, &in, sizeof in), 0);
        ck_assert_int_eq(collect(p, 2, 0, 1, N_ITEMS, seen, seq, &nseq), 0);
        ck_assert_int_eq(nseq, N_ITEMS);
        assert_each_once(seen, N_ITEMS);
        for (i = 0; order == SUBITER_POOL_ORDERED && i < N_ITEMS; i++) {
            REQUIRE_EQ(seq[i], i);
        }
        ck_assert_uint_eq(get_stats(p).replaced, 3);
        /* Every replacement dies: the reruns run out, and the iteration
         * fails with the reason. */
        atomic_store(&ig->sh.attempts, 0);
        atomic_store(&ig->deaths, 1000);
        memset(seen, 0, sizeof seen);
        ck_assert_int_eq(subiter_pool_start(p, &in, sizeof in), 0);
        ck_assert_int_eq(collect(p, 2, 0, 1, N_ITEMS, seen, NULL, NULL),
                         SUBITER_ECHILD);
        assert_errmsg_has(p, "rerun 3 of 3");
        assert_errmsg_has(p, "exit");
        atomic_store(&ig->deaths, 0);
        run_plain(p, 2, order == SUBITER_POOL_ORDERED);
        close_clean(p);
    }
    tu_shared_free(ig, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

/* ==== end of the pool loop's block ==== */

static Suite *pool_suite(void)
{
    Suite *s = suite_create("pool");
    TCase *tc;

    tc = tcase_create("sharded");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_pool_sharded_unordered_union);
    tcase_add_test(tc, test_pool_sharded_ordered_round_robin);
    tcase_add_test(tc, test_pool_sharded_ordered_skips_ended_shards);
    tcase_add_test(tc, test_pool_sharded_reiterate_and_stop);
    tcase_add_test(tc, test_pool_sharded_input_reaches_every_worker);
    tcase_add_test(tc, test_pool_sharded_ranks_cover_once);
    tcase_add_test(tc, test_pool_sharded_shard_fails);
    tcase_add_test(tc, test_pool_sharded_shard_segv);
    tcase_add_test(tc, test_pool_sharded_shard_sigkilled);
    tcase_add_test(tc, test_pool_sharded_restart_shards);
    tcase_add_test(tc, test_pool_sharded_restart_gives_up);
    tcase_add_test(tc, test_pool_sharded_stop_worker_dies);
    tcase_add_test(tc, test_pool_sharded_rerun_cannot_start);
    tcase_add_test(tc, test_pool_sharded_idle_death_replaced);
    suite_add_tcase(s, tc);

    tc = tcase_create("tasks");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_pool_tasks_through_next);
    tcase_add_test(tc, test_pool_tasks_through_callbacks);
    tcase_add_test(tc, test_pool_task_retried_after_sigkill);
    tcase_add_test(tc, test_pool_task_retried_after_segv);
    tcase_add_test(tc, test_pool_task_retried_after_exit3);
    tcase_add_test(tc, test_pool_task_fails_without_retries);
    tcase_add_test(tc, test_pool_task_always_dies);
    tcase_add_test(tc, test_pool_task_timeout);
    suite_add_tcase(s, tc);

    tc = tcase_create("control");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_pool_queue_bounded_with_callbacks);
    tcase_add_test(tc, test_pool_queue_full_deadlock);
    tcase_add_test(tc, test_pool_pause_resume);
    tcase_add_test(tc, test_pool_paused_time_not_counted);
    tcase_add_test(tc, test_pool_finalize_cancels_with_callbacks);
    tcase_add_test(tc, test_pool_finalize_cancels_through_next);
    tcase_add_test(tc, test_pool_finalize_with_grace_finishes);
    tcase_add_test(tc, test_pool_min_max_workers);
    suite_add_tcase(s, tc);

    tc = tcase_create("misuse");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_pool_bad_options);
    tcase_add_test(tc, test_pool_null_args);
    tcase_add_test(tc, test_pool_submit_while_sharded);
    tcase_add_test(tc, test_pool_calls_from_callback_busy);
    tcase_add_test(tc, test_pool_init_fails);
    suite_add_tcase(s, tc);

    tc = tcase_create("loop");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_pool_task_after_init_gave_up);
    tcase_add_test(tc, test_pool_sharded_rerun_dies_in_init);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(pool_suite());
}
