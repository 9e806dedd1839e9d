/* testpool.c: the generators and helpers the pool suites share (see
 * testpool.h). */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testpool.h"

/* Yields the i in [0, n) with i % num_workers == worker_id (arg: struct
 * tp_shared *). */
int tp_gen_shard(subiter_gen *g, void *arg)
{
    struct tp_shared *sh = arg;
    struct tp_shard_in in;
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

/* What a plain task yields for value v. */
long tp_f(long v)
{
    return 3 * v + 1;
}

/* Runs the struct tp_job given as input (arg: struct tp_shared *). */
int tp_gen_job(subiter_gen *g, void *arg)
{
    struct tp_shared *sh = arg;
    struct tp_job j;
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
    v = tp_f(j.value);
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

subiter_pool_opts tp_pool_opts(unsigned workers, const subiter_opts *w)
{
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;

    po.workers = workers;
    po.worker = w;
    return po;
}

struct tp_shared *tp_shared_new(void)
{
    struct tp_shared *sh = tu_shared_new(PAGE);

    memset(sh, 0, sizeof *sh);
    return sh;
}

/* Drive a pool with callbacks until *flag >= want, at most WAIT_MS. */
bool tp_drive_until(subiter_pool *p, _Atomic int *flag, int want)
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

subiter_pool_stats tp_stats(const subiter_pool *p)
{
    subiter_pool_stats st = SUBITER_POOL_STATS_INIT;

    ck_assert_int_eq(subiter_pool_get_stats(p, &st), 0);
    return st;
}

void tp_assert_errmsg_has(const subiter_pool *p, const char *what)
{
    const char *m = subiter_pool_errmsg(p);

    ck_assert_msg(strstr(m, what) != NULL, "errmsg \"%s\" lacks \"%s\"", m,
                  what);
}

/* Close a pool whose workers are all healthy: they exit on ABORT. */
void tp_close_clean(subiter_pool *p)
{
    ck_assert_int_eq(subiter_pool_close(p), 0);
}

/* Close a pool that may have had to signal a worker. */
void tp_close_any(subiter_pool *p)
{
    int r = subiter_pool_close(p);

    ck_assert_msg(r == 0 || r == SUBITER_ETIMEDOUT, "close: %d", r);
}

/* The state letter of /proc/<pid>/stat ('T': stopped), '?' if none. */
char tp_proc_state(pid_t pid)
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

/*
 * Read a sharded iteration of tp_gen_shard to its end. Each item must be a
 * long i in [0, n) that belongs to the item's worker: i % (world x
 * workers) == rank x workers + item.worker. seen[i] counts it; seq (if
 * not NULL) gets the sequence and *nseq its length. Returns what the last
 * subiter_pool_next() returned.
 */
int tp_collect(subiter_pool *p, unsigned workers, unsigned rank, unsigned world,
               long n, int *seen, long *seq, long *nseq)
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
void tp_assert_each_once(const int *seen, long n)
{
    long i;

    for (i = 0; i < n; i++) {
        if (seen[i] != 1) {
            ck_abort_msg("item %ld seen %d times", i, seen[i]);
        }
    }
}

/* Start tp_gen_shard over [0, N_ITEMS) with no victim. */
void tp_start_plain(subiter_pool *p)
{
    struct tp_shard_in in = {N_ITEMS, -1, SHARD_NONE, 0, 0};

    ck_assert_int_eq(subiter_pool_start(p, &in, sizeof in), 0);
}

static void on_result(subiter_pool *p, unsigned long long task,
                      const void *data, size_t len, void *user)
{
    struct tp_results *res = user;
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
    struct tp_results *res = user;

    (void)p;
    if (task < 1 || task > MAX_TASKS || errmsg == NULL) {
        res->bad++;
        return;
    }
    res->t[task].ends++;
    res->t[task].code = code;
    snprintf(res->t[task].msg, sizeof res->t[task].msg, "%s", errmsg);
}

void tp_with_callbacks(subiter_pool_opts *po, struct tp_results *res)
{
    memset(res, 0, sizeof *res);
    po->on_result = on_result;
    po->on_error = on_error;
    po->user = res;
}

/* Read task events with subiter_pool_next() until it returns 0 (or an
 * error, returned). */
int tp_drain(subiter_pool *p, struct tp_results *res)
{
    subiter_pool_item item;
    struct tp_outcome *o;
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
unsigned long long tp_submit(subiter_pool *p, long value, long how, long once,
                             long ms)
{
    struct tp_job j = {value, how, once, ms};
    unsigned long long id = 0;

    ck_assert_int_eq(subiter_pool_submit(p, &j, sizeof j, 0, &id), 0);
    ck_assert(id >= 1 && id <= MAX_TASKS);
    return id;
}

int tp_submit_nowait(subiter_pool *p, long value, long how,
                     unsigned long long *id)
{
    struct tp_job j = {value, how, 0, 0};

    return subiter_pool_submit(p, &j, sizeof j, SUBITER_POOL_NOWAIT, id);
}

/* The task ended well (through next()) with tp_f(value) as its last item.
 */
void tp_assert_task_ok(const struct tp_results *res, unsigned long long id,
                       long value)
{
    const struct tp_outcome *o = &res->t[id];

    ck_assert_msg(o->ends == 1 && o->code == 0,
                  "task %llu: %d ends, code %d (%s)", id, o->ends, o->code,
                  o->msg);
    ck_assert_int_ge(o->items, 1);
    ck_assert_int_eq(o->last, tp_f(value));
    ck_assert_str_eq(o->msg, "");
}
