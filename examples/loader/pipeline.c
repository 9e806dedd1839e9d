/* pipeline.c: the run on the pool: the workers' generator, and the
 * parent that starts the pool, checks what comes out and starts it again
 * on the shards left after a failure.
 *
 * The pool has one worker per CPU (or --workers). subiter_pool_start()
 * gives every worker the same input, the list of shards to read, and each
 * takes its share: entries k, k + N, k + 2N, ... where k is
 * subiter_worker_id() and N subiter_num_workers(). A worker reads its
 * shards with read_shard(), which writes each result straight into ring
 * memory (subiter_reserve/subiter_commit). A bad file makes the generator
 * send a shard-failed result and fail with a message naming the file
 * (subiter_fail): the pool stops the other workers and subiter_pool_next()
 * returns SUBITER_EITER, with the worker and that message in
 * subiter_pool_errmsg(). The parent prints it and starts the pool again on
 * the shards left, so the other shards still finish. A worker that dies
 * (kill -9 one) is replaced, and its replacement reads its shards again,
 * skipping the results already delivered (restart_shards): the run goes
 * on as if nothing happened.
 *
 * The parent takes the results from subiter_pool_next(): round robin over
 * the workers, the same order every run, or with --unordered from
 * whichever worker has one first.
 */
#include "loader.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static int ring_reserve(void *ctx, size_t len, void **buf)
{
    return subiter_reserve(ctx, len, buf);
}

static int ring_commit(void *ctx, size_t len, char *err, size_t errlen)
{
    int r = subiter_commit(ctx, len);

    if (r < 0) {
        snprintf(err, errlen, "subiter_commit: %s", subiter_strerror(r));
    }
    return r;
}

/* The initializer: runs once in each worker, before its first shard. */
static int loader_init(subiter_gen *g, void *arg)
{
    struct reader *rd = arg;

    if (reader_setup(rd) != 0) {
        return subiter_fail(g, "no memory for a %zu-byte read buffer", rd->cap);
    }
    return 0;
}

/*
 * The generator: the input lists the shards to read; this worker reads
 * its share of them, in order (entries id, id + n, id + 2n, ...).
 */
static int loader_run(subiter_gen *g, void *arg)
{
    struct reader *rd = arg;
    const struct sink sk = {ring_reserve, ring_commit, g};
    size_t len, k, id = subiter_worker_id(g), n = subiter_num_workers(g);
    const unsigned char *in;
    char err[ERR_BYTES];
    struct result res;
    uint32_t shard;
    int r;

    in = subiter_input(g, &len);
    if (in == NULL || len % sizeof shard != 0) {
        return subiter_fail(g,
                            "expected a list of shard numbers, got %zu "
                            "bytes",
                            len);
    }
    for (k = id; k < len / sizeof shard; k += n) {
        memcpy(&shard, in + k * sizeof shard, sizeof shard);
        if (shard >= rd->ds->shards) {
            return subiter_fail(g, "no shard %lu", (unsigned long)shard);
        }
        err[0] = '\0';
        r = read_shard(rd, shard, &sk, err, sizeof err);
        if (r > 0) {
            return r; /* stopped: return at once */
        }
        if (r < 0) {
            /*
             * Say which shard before failing: the items published before
             * the failure reach the parent first.
             */
            memset(&res, 0, sizeof res);
            res.kind = RESULT_SHARD_FAILED;
            res.shard = shard;
            if ((r = subiter_yield(g, &res, sizeof res)) != 0) {
                return r;
            }
            return subiter_fail(g, "%s", err);
        }
    }
    return 0;
}

static void progress(struct console *con, unsigned long done,
                     unsigned long total, double t)
{
    fprintf(stderr, "\rloading: %lu/%lu records (%lu%%), %.0f records/s", done,
            total, (unsigned long)((double)done * 100.0 / (double)total),
            t > 0 ? (double)done / t : 0.0);
    con->progress_shown = 1;
}

/* Save to --resume (if given): 0, or -1 after a message. */
static int save(struct console *con, const struct options *opt,
                const struct collector *c, const uint32_t *list,
                unsigned long n, const subiter_pool *p)
{
    if (opt->resume == NULL) {
        return 0;
    }
    progress_clear(con);
    return resume_save(con, opt->resume_path, c, list, n, p);
}

/*
 * Read every shard with the pool: start it on the list of the shards
 * left (the first round from the --resume file, if there is one), check
 * each result as it comes, and after a failure (a bad shard, a bad result,
 * a worker that died twice: the pool has replaced it) start again on the
 * shards still left, until two rounds in a row finish none. With
 * --resume, save every --checkpoint-every results, and on Ctrl-C save and
 * stop. Returns the number of rounds.
 */
static unsigned long load_all(struct console *con, const struct options *opt,
                              subiter_pool *p, struct collector *c,
                              struct pool_run *run, double t0)
{
    uint32_t list[MAX_SHARDS];
    unsigned long s, n = 0, left = ULONG_MAX, rounds = 0, items = 0, shard;
    unsigned long fruitless = 0, since = 0;
    int r, from = 0;
    char err[ERR_BYTES];
    subiter_pool_item item;
    double last = 0;
    unsigned char ck[16384];
    size_t ck_len = 0;

    if (opt->resume != NULL) {
        from = resume_load(con, opt->resume_path, c, list, &n, ck, sizeof ck,
                           &ck_len);
        if (from < 0) {
            return 0;
        }
        if (from == 1) {
            say(con, "%s: resuming after %lu records", opt->resume_path,
                c->records);
        }
        run->resumed = from;
    }
    for (;;) {
        if (!from) {
            /* The shards left; what an interrupted round delivered goes. */
            for (n = s = 0; s < c->ds->shards; s++) {
                if (c->st[s].status == SHARD_PENDING) {
                    shard_reset(c, s);
                    list[n++] = (uint32_t)s;
                }
            }
        }
        fruitless = n == left ? fruitless + 1 : 0;
        if (n == 0 || fruitless == 2) {
            break; /* done, or the last two rounds finished no shard */
        }
        left = n;
        rounds++;
        r = from ? subiter_pool_start_from(p, list, n * sizeof list[0], ck,
                                           ck_len)
                 : subiter_pool_start(p, list, n * sizeof list[0]);
        from = 0;
        if (r != 0) {
            say(con, "subiter_pool_start: %s: %s", subiter_errname(r),
                subiter_pool_errmsg(p));
            break;
        }
        while ((r = subiter_pool_next(p, &item)) == 1) {
            /* item.data points into the worker's ring: check it there. */
            if (check_item(c, item.data, item.len, &shard, err, sizeof err) <
                0) {
                say(con, "worker %u: bad result: %s", item.worker, err);
                if (shard != ULONG_MAX) {
                    c->st[shard].status = SHARD_FAILED;
                }
                r = subiter_pool_stop(p);
                break;
            }
            if (resume_interrupted()) {
                /* Ctrl-C: this result is checked; save and stop. */
                run->interrupted = 1;
                (void)save(con, opt, c, list, n, p);
                (void)subiter_pool_stop(p);
                return rounds;
            }
            if (++since == opt->ckpt_every) {
                since = 0;
                (void)save(con, opt, c, list, n, p);
            }
            if (con->tty && ++items % 256 == 0 && now_s() - last > 0.1) {
                last = now_s();
                progress(con, c->records, c->ds->records, last - t0);
            }
        }
        if (r < 0) {
            /* SUBITER_EITER: the generator's message names the file. */
            say(con, "%s: %s", subiter_errname(r), subiter_pool_errmsg(p));
        }
    }
    for (s = 0; s < c->ds->shards; s++) {
        if (c->st[s].status == SHARD_PENDING) {
            c->st[s].status = SHARD_LOST;
            say(con, "shard-%03lu.rec: not read: the workers kept failing", s);
        }
    }
    if (con->progress_shown) {
        /* The last figures stay on the screen. */
        progress(con, c->records, c->ds->records, now_s() - t0);
        fputc('\n', stderr);
        con->progress_shown = 0;
    }
    if (opt->resume != NULL && unlink(opt->resume_path) == 0) {
        say(con, "%s: removed: the run is over", opt->resume_path);
    }
    return rounds;
}

/* The workers' pids, for the summary, while the pool still has them. */
static void describe_pool(subiter_pool *p, struct pool_run *run)
{
    subiter_pool_stats st = SUBITER_POOL_STATS_INIT;
    size_t used = 0;
    unsigned k;

    (void)subiter_pool_get_stats(p, &st);
    run->pids[0] = '\0';
    for (k = 0; k < st.workers && used + 16 < sizeof run->pids; k++) {
        used +=
            (size_t)snprintf(run->pids + used, sizeof run->pids - used, "%s%ld",
                             k ? " " : "", (long)subiter_pool_worker_pid(p, k));
    }
    run->pids_cut = k < st.workers;
    run->workers = st.workers;
    run->replaced = st.replaced;
}

int pipeline_run(struct console *con, const struct options *opt,
                 const struct dataset *ds, struct collector *c,
                 struct pool_run *run)
{
    subiter_pool_opts opts = SUBITER_POOL_OPTS_INIT;
    subiter_opts wopts = SUBITER_OPTS_INIT;
    subiter_pool *p = NULL;
    struct reader rd; /* the workers' copy of it is theirs */
    unsigned long workers = opt->workers, item;
    double t0, cpu0;
    int r;

    if (workers > ds->shards) {
        printf("workers:     %lu (not %lu: one shard each at least)\n",
               ds->shards, workers);
        workers = ds->shards;
    }
    if (collector_init(c, ds, opt->carry) != 0) {
        say(con, "out of memory");
        return -1;
    }

    /* Each worker's initializer allocates its own read buffer. */
    memset(&rd, 0, sizeof rd);
    rd.ds = ds;
    rd.carry = opt->carry;
    item = (unsigned long)(sizeof(struct result) + ds->item_bytes);
    wopts.init = loader_init;
    wopts.buffer_items = 256;
    if (wopts.buffer_bytes < 4 * item) {
        wopts.buffer_bytes = 4 * item;
    }
    /* Fail instead of hanging if a worker stops sending. */
    wopts.timeout_ms = 30000;
    opts.workers = (unsigned)workers; /* 0: one per CPU */
    opts.worker = &wopts;
    opts.order = opt->order;
    /*
     * A worker that dies is replaced and its replacement reads its shards
     * again, skipping the results already delivered: the reader is
     * deterministic, so nothing is lost or repeated.
     */
    opts.restart_shards = 1;

    fflush(stdout); /* before the forks */
    t0 = now_s();
    cpu0 = cpu_s(RUSAGE_SELF);
    r = subiter_pool_open(&p, loader_run, &rd, &opts);
    if (r != 0) {
        say(con, "subiter_pool_open: %s: %s", subiter_errname(r),
            subiter_pool_errmsg(p));
        (void)subiter_pool_close(p);
        return -1;
    }
    if (opt->resume != NULL) {
        resume_catch_sigint();
    }
    run->rounds = load_all(con, opt, p, c, run, t0);
    describe_pool(p, run);
    r = subiter_pool_close(p);
    if (r != 0) {
        say(con, "subiter_pool_close: %s", subiter_strerror(r));
    }
    run->seconds = now_s() - t0;
    run->cpu = cpu_s(RUSAGE_SELF) - cpu0;
    return 0;
}
