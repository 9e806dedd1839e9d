/* pool.c: many workers of one generator, each a subiter handle in a slot.
 * Owns the one loop that drives the pool (its phases, and why it never
 * re-enters itself, are in pool.h), the handlers every mode shares, and
 * the public calls of the pool as a whole: open, next, stats, errmsg,
 * close. The pool's options are read and checked in pool_opts.c, sharded
 * iteration (with start and stop) is in pool_shards.c,
 * tasks (with submit, wait and finalize) in pool_tasks.c, slots and
 * states (with pause and resume) in pool_slot.c, the wait (spin, then
 * sleep) on all workers in pool_wait.c. The pool starts no thread: it works
 * inside its calls. */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pool.h"

int pool__fail(subiter_pool *p, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(p->errmsg, sizeof p->errmsg, fmt, ap);
    va_end(ap);
    subiter__free(p->ei_backtrace);
    p->ei_backtrace = NULL;
    memset(&p->ei, 0, sizeof p->ei);
    p->ei.code = code;
    p->ei.worker = -1;
    return code;
}

void pool__note(subiter_pool *p, unsigned i, unsigned long long task)
{
    subiter_errinfo e = SUBITER_ERRINFO_INIT;
    size_t n;

    subiter__free(p->ei_backtrace);
    p->ei_backtrace = NULL;
    if (p->w[i].h == NULL || subiter_get_errinfo(p->w[i].h, &e) < 0) {
        return;
    }
    /* Copied: the worker's handle is closed when it is replaced. */
    n = strlen(e.backtrace) + 1;
    p->ei_backtrace = n > 1 ? subiter__malloc(n) : NULL;
    if (p->ei_backtrace != NULL) {
        memcpy(p->ei_backtrace, e.backtrace, n);
    }
    p->ei = e;
    p->ei.worker = (int)i;
    p->ei.task = task;
}

int subiter_pool_get_errinfo(const subiter_pool *p, subiter_errinfo *out)
{
    subiter_errinfo e;

    if (p == NULL || out == NULL || out->size < SUBITER__ERRINFO_V1) {
        return -EINVAL;
    }
    e = p->ei;
    /* An older caller keeps its own size: its struct ends earlier. */
    e.size = out->size < sizeof e ? out->size : sizeof e;
    e.backtrace = p->ei_backtrace != NULL ? p->ei_backtrace : "";
    if (p->ei.size == 0) {
        e.worker = -1; /* no failure yet */
    }
    memcpy(out, &e, out->size < sizeof e ? out->size : sizeof e);
    return 0;
}

bool pool__callbacks(const subiter_pool *p)
{
    return p->o.on_result != NULL;
}

/* ---- handlers every mode shares ---- */

/* Slot i will never be ready: r is what subiter_open() would say. */
static void init_failed(subiter_pool *p, unsigned i, int r)
{
    struct pool_slot *w = &p->w[i];

    if (w->rerun && p->st == POOL_ITERATING) {
        pool__rerun_failed(p, i, r);
        return;
    }
    p->init_code = r;
    pool__fail(p, r, "worker %u: %s", i, subiter_errmsg(w->h));
    pool__note(p, i, 0);
    w->init_failures++;
    w->rerun = false;
    pool__close_slot(p, i);
    p->followup = true;
}

void pool__lost(subiter_pool *p, unsigned i, int code)
{
    if (pool__taking_tasks(p)) {
        pool__task_lost(p, i, code);
    } else {
        pool__shard_lost(p, i, code);
    }
}

void pool__exited(subiter_pool *p, unsigned i)
{
    struct pool_slot *w = &p->w[i];

    w->exited = true;
    subiter__mark_exited(w->h);
    switch (w->st) {
    case SLOT_IDLE:
        (void)subiter__kill(w->h, SUBITER_ECHILD, NULL);
        if (w->rerun && p->st == POOL_ITERATING) {
            pool__rerun_failed(p, i, SUBITER_ECHILD);
        } else {
            pool__replace(p, i);
        }
        return;
    case SLOT_BUSY:
        if (pool__taking_tasks(p)) {
            return; /* the read reports it once its ring is read */
        }
        /* Its shard is lost (its published items included) or rerun:
         * either way now, not when its turn comes. */
        pool__lost(p, i, subiter__kill(w->h, SUBITER_ECHILD, NULL));
        return;
    case SLOT_STOPPING:
        pool__lost(p, i, subiter__kill(w->h, SUBITER_ECHILD, NULL));
        return;
    default:
        return; /* starting: the read; ended shard: the next start */
    }
}

/* ---- (a) timers ---- */

/* Is the pool waiting on slot i (so that its silence counts)? */
static bool awaited(const subiter_pool *p, unsigned i)
{
    const struct pool_slot *w = &p->w[i];

    if (w->st == SLOT_STARTING) {
        return w->paused_at == 0;
    }
    if ((w->st != SLOT_BUSY && w->st != SLOT_STOPPING) || w->paused_at != 0 ||
        w->blocked) {
        return false;
    }
    return !(p->st == POOL_ITERATING && p->o.order == SUBITER_POOL_ORDERED &&
             i != p->turn);
}

/* Slot i's inactivity deadline has passed: kill it. */
static void silent(subiter_pool *p, unsigned i)
{
    struct pool_slot *w = &p->w[i];
    char why[128];
    int code;

    /* A stopping generator's items are dropped: it may have yielded all
     * along, so say what it did not do. */
    if (w->st == SLOT_STOPPING) {
        snprintf(why, sizeof why, SUBITER__STOP_SILENT, p->timeout_ms);
    } else {
        snprintf(why, sizeof why, "sent nothing for %d ms", p->timeout_ms);
    }
    code = subiter__kill(w->h, SUBITER_ETIMEDOUT, why);
    if (w->st == SLOT_STARTING) {
        init_failed(p, i, code);
    } else {
        pool__lost(p, i, code);
    }
}

/* Slot i ignored its STOP for the worker's grace_ms: end and replace it. */
static void stop_overdue(subiter_pool *p, unsigned i)
{
    char why[128];

    snprintf(why, sizeof why, SUBITER__STOP_OVERDUE, p->wopts.grace_ms);
    pool__lost(p, i, subiter__kill(p->w[i].h, SUBITER_ETIMEDOUT, why));
}

/* Deadlines into events: tasks past their time, silent workers, idle
 * ones to retire, finalize's grace. Returns the next deadline (0: none). */
static int64_t timers(subiter_pool *p)
{
    int64_t now = subiter__now_ns(), next = 0, d;
    unsigned i, alive = p->n - p->nstate[SLOT_EMPTY];

    pool__task_timers(p, now, &next);
    for (i = 0; i < p->n; i++) {
        struct pool_slot *w = &p->w[i];

        /* The stop's own bound: a generator that ignores STOP. */
        if (w->st == SLOT_STOPPING && w->stop_deadline != 0) {
            if (now >= w->stop_deadline) {
                stop_overdue(p, i);
                continue;
            }
            next = pool__earlier(next, w->stop_deadline);
        }

        if (p->timeout_ms > 0 && awaited(p, i)) {
            int64_t since = w->last_ns > p->call_ns ? w->last_ns : p->call_ns;

            d = since + p->timeout_ms * SUBITER__NS_PER_MS;
            if (now >= d) {
                silent(p, i);
                continue;
            }
            next = pool__earlier(next, d);
        }
        if (w->st == SLOT_IDLE && pool__taking_tasks(p) &&
            alive > p->o.min_workers && p->qhead == NULL && w->paused_at == 0) {
            d = w->idle_since + p->o.idle_ms * SUBITER__NS_PER_MS;
            if (now >= d) {
                pool__close_slot(p, i);
                alive--;
                continue;
            }
            next = pool__earlier(next, d);
        }
    }
    return next;
}

/* ---- (b), (c) read the workers, handle what they say ---- */

/* Slot i's initializer: ready, not yet, or failed. */
static void read_starting(subiter_pool *p)
{
    unsigned i;

    for (i = 0; i < p->n; i++) {
        struct pool_slot *w = &p->w[i];
        int r;

        if (w->st != SLOT_STARTING) {
            continue;
        }
        r = subiter__init_step(w->h);
        if (r == 1) {
            pool__slot_set(p, i, SLOT_IDLE);
            w->init_failures = 0;
            p->followup |= w->rerun;
        } else if (r < 0) {
            init_failed(p, i, r);
        }
    }
}

int pool__read_slot(subiter_pool *p, unsigned i, bool items_ok)
{
    struct pool_slot *w = &p->w[i];
    bool stopping = w->st == SLOT_STOPPING;
    int r;

    assert(w->st == SLOT_BUSY || stopping);
    for (;;) {
        r = subiter__next_nowait(w->h, &p->ev.item, items_ok || stopping);
        w->blocked = r == -EBUSY;
        if (r == -EAGAIN || r == -EBUSY || r == -ENOMEM) {
            /* -ENOMEM: the record stays; try again on the next turn. */
            return 0;
        }
        if (p->timeout_ms > 0) {
            w->last_ns = subiter__now_ns();
        }
        if (r != 1 || !stopping) {
            break;
        }
        /* Dropped: the next read gives its record back. */
    }
    if (pool__taking_tasks(p)) {
        return pool__task_read(p, i, r);
    }
    return pool__shard_read(p, i, r);
}

/* Read every worker that may have something: 1 with p->ev. */
static int read_all(subiter_pool *p, bool items_ok)
{
    unsigned i, k;

    if (p->nstate[SLOT_STARTING] > 0) {
        read_starting(p);
    }
    if (p->st == POOL_ITERATING) {
        return pool__merge(p);
    }
    for (k = 0; k < p->n; k++) {
        i = (p->turn + k) % p->n;
        if ((p->w[i].st == SLOT_BUSY || p->w[i].st == SLOT_STOPPING) &&
            pool__read_slot(p, i, items_ok) == 1) {
            p->turn = (i + 1) % p->n;
            return 1;
        }
    }
    return 0;
}

/* ---- (d) follow-up work ---- */

static void follow_up(subiter_pool *p)
{
    unsigned i;
    int r;

    if (p->followup) {
        p->followup = false;
        for (i = 0; i < p->n; i++) {
            struct pool_slot *w = &p->w[i];

            if (w->st != SLOT_EMPTY || !w->respawn) {
                continue;
            }
            if (!pool__may_fork(p)) {
                p->followup = true; /* looked at again after the stop */
                continue;
            }
            r = pool__spawn(p, i);
            if (r < 0 && w->rerun) {
                pool__rerun_failed(p, i, r);
            }
        }
    }
    pool__shards_follow_up(p);
    if (pool__taking_tasks(p) && p->queued > 0) {
        pool__dispatch(p);
    }
}

/* An item found by the read may be gone after the follow-up (its slot
 * closed, or the iteration failing): then there is none. */
static int item_kept(subiter_pool *p, int r)
{
    if (r == 1 && (p->held == NULL || p->st == POOL_STOPPING)) {
        if (p->held != NULL) {
            subiter__give_back(p->held, true);
            p->held = NULL;
        }
        return 0;
    }
    return r;
}

/* ---- the loop ---- */

int pool__run(subiter_pool *p, bool (*done)(const subiter_pool *),
              int64_t deadline_ns, bool items_ok)
{
    struct subiter__wait w;
    unsigned turns = 0;
    int64_t next = 0;
    bool past = false;
    int r;

    assert(!p->in_loop);
    assert(p->held == NULL);
    p->in_loop = true;
    pool__check(p);
    if (p->parked) {
        pool__unpark(p);
    }
    /* Timed nexts that found nothing wait as one call. */
    if (!p->polling) {
        p->call_ns = subiter__now_ns();
    }
    pool__wait_begin(p, &w);
    for (;; turns++) {
        unsigned moves = p->moves;

        /* (a) The clock and the deadlines on every 64th turn, and always
         * before a sleep or once the call's deadline passed: while
         * workers talk, they can wait. */
        if (turns % 64 == 0 || w.spins == SUBITER__SPUN || past) {
            next = timers(p);
        }
        r = read_all(p, items_ok); /* (b), (c) */
        follow_up(p);              /* (d) */
        r = item_kept(p, r);
        if (r == 1 && pool__taking_tasks(p) && pool__callbacks(p)) {
            p->in_cb = true;
            p->o.on_result(p, p->ev.task->id, p->ev.item.data, p->ev.item.len,
                           p->o.user);
            p->in_cb = false;
            subiter__give_back(p->held, true);
            p->held = NULL;
            pool__wait_begin(p, &w);
            continue;
        }
        /* (e) */
        if (r == 1 || done(p)) {
            break;
        }
        if (deadline_ns != 0 && (past || turns % 64 == 0) &&
            (past || subiter__now_ns() >= deadline_ns)) {
            /* Parking: arm every worker that may write, then one more
             * pass (the last look of wait.h) before leaving them armed. */
            past = true;
            if (p->park && (pool__arm(p) || p->moves != moves)) {
                continue;
            }
            r = -ETIMEDOUT;
            break;
        }
        if (pool__may_spin(p, &w)) {
            subiter__spin(w.spins++);
            continue;
        }
        /* The last look before a sleep is one that found the workers
         * armed and moved nothing. A look that moved the pool or a slot
         * read only what mattered before the move: a failed shard read in
         * turn stops the others, whose last records (read by no one yet,
         * and whose workers will not ring again) then matter, and
         * whose stop deadlines the timers have not seen. */
        if (pool__arm(p) || p->moves != moves) {
            continue;
        }
        pool__sleep(p, pool__earlier(next, deadline_ns));
        pool__disarm(p);
    }
    pool__wait_end(p, &w, r == -ETIMEDOUT);
    p->parked = r == -ETIMEDOUT && p->park;
    p->next_timer = next;
    if (!p->parked) {
        pool__disarm(p);
    }
    pool__check(p);
    p->in_loop = false;
    return r;
}

/* ---- conditions the public calls run the loop until ---- */

static bool none_starting(const subiter_pool *p)
{
    return p->nstate[SLOT_STARTING] == 0;
}

bool pool__iteration_over(const subiter_pool *p)
{
    return p->st != POOL_ITERATING && p->st != POOL_STOPPING;
}

static bool task_event(const subiter_pool *p)
{
    return p->ehead != NULL || pool__no_task(p);
}

/* ---- the API ---- */

/* Give back the item view and the task end of the last call. */
void pool__settle(subiter_pool *p)
{
    if (p->held != NULL) {
        assert(p->ev.worker < p->n && p->w[p->ev.worker].h == p->held);
        subiter__give_back(p->held, true);
        p->held = NULL;
    }
    pool__task_free(p->delivered);
    p->delivered = NULL;
}

/* The common entry checks of the calls that drive the pool. */
int pool__enter(subiter_pool *p)
{
    if (p == NULL || p->w == NULL) {
        return -EINVAL;
    }
    if (p->in_cb) {
        return -EBUSY;
    }
    /* Every call that stops the shards runs the loop until they are. */
    assert(!p->in_loop && p->st != POOL_STOPPING);
    pool__poke(p);
    return 0;
}

/* The same rules as subiter_start()'s, with the pool's errmsg. */
int pool__check_input(subiter_pool *p, const void *input, size_t len)
{
    if (input == NULL && len > 0) {
        return pool__fail(p, -EINVAL, "NULL input of %zu bytes", len);
    }
    if (len > SUBITER_INPUT_MAX) {
        return pool__fail(p, -EMSGSIZE,
                          "input of %zu bytes is over the %u-byte limit", len,
                          SUBITER_INPUT_MAX);
    }
    return 0;
}

/* Fork the missing workers of the first `want` slots, then the loop until
 * no slot is starting. */
int pool__fill(subiter_pool *p, unsigned want)
{
    unsigned i;
    int r;

    p->init_code = 0;
    for (i = 0; i < want; i++) {
        struct pool_slot *w = &p->w[i];

        if (w->st != SLOT_EMPTY && (w->exited || subiter__check_exit(w->h))) {
            /* It died in Stand By since: replace it now, rather than
             * fail the iteration it has not begun. */
            (void)subiter__kill(w->h, SUBITER_ECHILD, NULL);
            pool__close_slot(p, i);
            p->stats.replaced++;
        }
        if (w->st == SLOT_EMPTY) {
            w->init_failures = 0;
            r = pool__spawn(p, i);
            if (r < 0) {
                return r;
            }
        }
    }
    r = pool__run(p, none_starting, 0, false);
    if (r < 0) {
        return r;
    }
    for (i = 0; i < want; i++) {
        if (p->w[i].st == SLOT_EMPTY) {
            return p->init_code != 0 ? p->init_code : SUBITER_ECHILD;
        }
    }
    return 0;
}

int subiter_pool_open(subiter_pool **out, subiter_iter_fn fn, void *arg,
                      const subiter_pool_opts *opts)
{
    subiter_pool *p;
    unsigned i;
    int r;

    if (out == NULL) {
        return -EINVAL;
    }
    *out = NULL;
    p = subiter__malloc(sizeof *p);
    if (p == NULL) {
        return -ENOMEM;
    }
    memset(p, 0, sizeof *p);
    *out = p;
    p->evfd.ep = -1;
    p->evfd.tfd = -1;
    p->st = POOL_IDLE;
    p->rest = POOL_IDLE;
    r = pool__read_opts(p, opts);
    if (r < 0) {
        return p->errmsg[0] != '\0' ? r
                                    : pool__fail(p, r, "invalid pool options");
    }
    if (fn == NULL) {
        return pool__fail(p, -EINVAL, "no generator given");
    }
    p->fn = fn;
    p->arg = arg;
    p->n = p->o.workers;
    p->w = subiter__malloc(p->n * sizeof *p->w);
    p->pfd = subiter__malloc(2 * p->n * sizeof *p->pfd);
    p->pfd_worker = subiter__malloc(2 * p->n * sizeof *p->pfd_worker);
    if (p->w == NULL || p->pfd == NULL || p->pfd_worker == NULL) {
        subiter__free(p->w);
        p->w = NULL;
        return pool__fail(p, -ENOMEM, "out of memory");
    }
    memset(p->w, 0, p->n * sizeof *p->w);
    for (i = 0; i < p->n; i++) {
        p->w[i].ev_efd = -1;
        p->w[i].ev_pidfd = -1;
    }
    p->nstate[SLOT_EMPTY] = p->n;
    r = pool__fill(p, p->o.min_workers);
    if (r < 0) {
        return r;
    }
    p->errmsg[0] = '\0';
    return 0;
}

static void to_item(const subiter_pool *p, subiter_pool_item *item)
{
    item->kind = SUBITER_POOL_ITEM;
    item->data = p->ev.item.data;
    item->len = p->ev.item.len;
    item->worker = p->ev.worker;
    item->task = p->ev.task != NULL ? p->ev.task->id : 0;
    item->task_user = p->ev.task != NULL ? p->ev.task->user : NULL;
}

/* subiter_pool_next() in a sharded iteration. */
static int next_shard(subiter_pool *p, subiter_pool_item *item,
                      int64_t deadline_ns)
{
    int r = 0;

    /* While items flow, one look is enough: no clock, no deadline. A
     * rerun's initializer is looked at too, so that it joins at once.
     * A parked pool is unparked by the loop first. */
    if (p->nstate[SLOT_STARTING] > 0 && !p->parked) {
        read_starting(p);
    }
    if (!p->parked) {
        r = p->st == POOL_ITERATING ? pool__merge(p) : 0;
    }
    if (r == 1 && p->followup) {
        follow_up(p);
        r = item_kept(p, r);
    }
    if (r == 0) {
        r = pool__run(p, pool__iteration_over, deadline_ns, true);
    }
    if (r == -ETIMEDOUT) {
        return -EAGAIN;
    }
    if (r == 1) {
        to_item(p, item);
        return 1;
    }
    r = p->pending;
    p->pending = 0;
    return r;
}

int subiter_pool_next(subiter_pool *p, subiter_pool_item *item)
{
    /* A blocking call: its wait counts from now, not from a timed
     * next's -EAGAIN. */
    if (p != NULL && !p->in_cb) {
        p->polling = false;
    }
    return pool__next(p, item, 0);
}

int pool__next(subiter_pool *p, subiter_pool_item *item, int64_t deadline_ns)
{
    struct pool_task *t;
    int r;

    if (item != NULL) {
        memset(item, 0, sizeof *item);
        item->errmsg = "";
    }
    if (item == NULL) {
        return -EINVAL;
    }
    if ((r = pool__enter(p)) < 0) {
        return r;
    }
    pool__settle(p);
    if (!pool__taking_tasks(p)) {
        return next_shard(p, item, deadline_ns);
    }
    if (p->next_id == 0) {
        return p->started ? 0
                          : pool__fail(p, -EINVAL,
                                       "neither an iteration nor a "
                                       "task was started");
    }
    for (;;) {
        t = pool__pop(&p->ehead, &p->etail);
        if (t != NULL) {
            p->delivered = t;
            item->kind = SUBITER_POOL_TASK_END;
            item->task = t->id;
            item->code = t->code;
            item->errmsg = t->errmsg != NULL ? t->errmsg : "";
            item->task_user = t->user;
            return 1;
        }
        if (pool__no_task(p)) {
            return 0;
        }
        r = pool__run(p, task_event, deadline_ns, true);
        if (r == 1) {
            to_item(p, item);
            return 1;
        }
        if (r == -ETIMEDOUT) {
            return -EAGAIN;
        }
        if (r < 0) {
            return r;
        }
    }
}

int subiter_pool_get_stats(const subiter_pool *p, subiter_pool_stats *out)
{
    subiter_pool_stats s;

    if (p == NULL || out == NULL || out->size < SUBITER__POOL_STATS_V1) {
        return -EINVAL;
    }
    s = p->stats;
    s.size = out->size < sizeof s ? out->size : sizeof s;
    s.workers = p->w != NULL ? p->n - p->nstate[SLOT_EMPTY] : 0;
    s.busy = p->w != NULL ? p->nstate[SLOT_BUSY] : 0;
    s.queued = p->queued;
    s.seed = p->o.seed;
    memcpy(out, &s, s.size);
    return 0;
}

pid_t subiter_pool_worker_pid(const subiter_pool *p, unsigned worker)
{
    if (p == NULL || p->w == NULL || worker >= p->n || p->w[worker].h == NULL) {
        return 0;
    }
    return subiter_pid(p->w[worker].h);
}

const char *subiter_pool_errmsg(const subiter_pool *p)
{
    return p == NULL ? "out of memory" : p->errmsg;
}

int subiter_pool_close(subiter_pool *p)
{
    subiter **v;
    int *rc;
    unsigned i, k = 0;
    int r = 0;

    if (p == NULL) {
        return 0;
    }
    if (p->in_cb) {
        return -EBUSY;
    }
    pool__settle(p);
    v = p->n > 0 ? subiter__malloc(p->n * sizeof *v) : NULL;
    rc = p->n > 0 ? subiter__malloc(p->n * sizeof *rc) : NULL;
    for (i = 0; p->w != NULL && i < p->n; i++) {
        struct pool_task *t = p->w[i].task;
        subiter *h;

        p->w[i].task = NULL;
        pool__task_free(t);
        h = pool__detach(p, i);
        if (h == NULL) {
            continue;
        }
        if (v != NULL && rc != NULL) {
            v[k++] = h;
        } else {
            /* No memory for the batch: one at a time. */
            int one;

            subiter__close_many(&h, &one, 1);
            r = one == SUBITER_ETIMEDOUT || r == 0 ? one : r;
        }
    }
    if (k > 0) {
        subiter__close_many(v, rc, k);
    }
    for (i = 0; i < k; i++) {
        /* A worker that had to be signalled says the most. */
        if (rc[i] == SUBITER_ETIMEDOUT || r == 0) {
            r = rc[i];
        }
    }
    pool__task_free_list(p->qhead);
    pool__task_free_list(p->ehead);
    subiter__free(v);
    subiter__free(rc);
    subiter__free(p->w);
    subiter__free(p->ei_backtrace);
    subiter__free(p->pfd);
    subiter__free(p->pfd_worker);
    subiter__evfd_close(&p->evfd);
    subiter__free(p);
    return r;
}
