/* pool_shards.c: sharded iteration. Every slot runs the generator on its
 * shard; owns the start of the shards, the merge of their items (round
 * robin or as they come), a shard's end and failure, the stop of the
 * other shards after one failed (POOL_STOPPING), and restart_shards: a
 * dead shard rerun by a replacement that skips what was delivered. A
 * rerun never waits: its slot is STARTING with a rerun mark until its
 * initializer is ready, and the loop's follow-up phase starts it. */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "pool.h"

static unsigned shard_of(const subiter_pool *p, unsigned i)
{
    return p->o.rank * p->n + i;
}

static unsigned shards(const subiter_pool *p)
{
    return p->o.world_size * p->n;
}

/* START slot i's shard, skipping what it delivered. */
static int start_shard(subiter_pool *p, unsigned i)
{
    struct subiter__start_args x = {p->w[i].delivered, p->iteration};

    return subiter__start_ex(p->w[i].h, p->input, p->input_len, &x);
}

int pool__start_shards(subiter_pool *p)
{
    unsigned i;
    int r;

    pool__set(p, POOL_ITERATING);
    for (i = 0; i < p->n; i++) {
        struct pool_slot *w = &p->w[i];

        w->restarts = 0;
        w->rerun = false;
        w->blocked = false;
        r = start_shard(p, i);
        if (r < 0) {
            pool__shard_failed(p, i, r);
            return r;
        }
        pool__slot_set(p, i, SLOT_BUSY);
        w->last_ns = subiter__now_ns();
    }
    return 0;
}

int pool__merge(subiter_pool *p)
{
    unsigned i, k;

    assert(p->st == POOL_ITERATING && p->turn < p->n);
    if (p->o.order == SUBITER_POOL_ORDERED) {
        for (k = 0; k < p->n; k++) {
            struct pool_slot *w = &p->w[p->turn];

            i = p->turn;
            if (w->st == SLOT_BUSY) {
                if (pool__read_slot(p, i, true) == 1) {
                    p->turn = (i + 1) % p->n;
                    return 1;
                }
                if (w->st == SLOT_BUSY || p->st != POOL_ITERATING) {
                    return 0;
                }
            }
            if (w->st != SLOT_ENDED) {
                /* Its rerun is on its way: the merge waits for it. */
                return 0;
            }
            /* Its shard ended: the next one's turn. */
            p->turn = (i + 1) % p->n;
        }
        return 0;
    }
    for (k = 0; k < p->n; k++) {
        i = (p->turn + k) % p->n;
        if (p->w[i].st == SLOT_BUSY && pool__read_slot(p, i, true) == 1) {
            p->turn = (i + 1) % p->n;
            return 1;
        }
        if (p->st != POOL_ITERATING) {
            return 0;
        }
    }
    return 0;
}

int pool__shard_read(subiter_pool *p, unsigned i, int r)
{
    struct pool_slot *w = &p->w[i];

    if (w->st == SLOT_STOPPING) {
        /* Its items were dropped; r is how the stopped shard ended. */
        if (r == 0 || r == SUBITER_EITER) {
            pool__slot_set(p, i, SLOT_IDLE);
        } else {
            pool__shard_lost(p, i, r);
        }
        return 0;
    }
    if (r == 1) {
        w->delivered++;
        p->ev.worker = i;
        p->ev.task = NULL;
        p->held = w->h;
        return 1;
    }
    if (r == 0) {
        pool__slot_set(p, i, SLOT_ENDED);
    } else if (r == SUBITER_EITER) {
        pool__shard_failed(p, i, r);
    } else {
        pool__shard_lost(p, i, r);
    }
    return 0;
}

void pool__stop_shards(subiter_pool *p, int code)
{
    unsigned i;

    pool__set(p, POOL_STOPPING);
    if (p->pending == 0) {
        p->pending = code;
    }
    for (i = 0; i < p->n; i++) {
        struct pool_slot *w = &p->w[i];
        int r;

        /* A pending rerun becomes a plain replacement. */
        w->rerun = false;
        if (w->st != SLOT_BUSY) {
            continue;
        }
        pool__slot_set(p, i, SLOT_STOPPING);
        r = subiter__send_stop(w->h);
        if (r < 0) {
            pool__shard_lost(p, i, r);
        }
    }
}

void pool__shard_failed(subiter_pool *p, unsigned i, int code)
{
    struct pool_slot *w = &p->w[i];

    pool__fail(p, code, "worker %u (shard %u of %u): %s", i, shard_of(p, i),
               shards(p), subiter_errmsg(w->h));
    pool__note(p, i, 0);
    /* Ready again after SUBITER_EITER; dead after anything else. */
    if (code != SUBITER_EITER) {
        pool__replace(p, i);
    } else if (w->st == SLOT_BUSY) {
        pool__slot_set(p, i, SLOT_IDLE);
    }
    pool__stop_shards(p, code);
}

void pool__shard_lost(subiter_pool *p, unsigned i, int code)
{
    struct pool_slot *w = &p->w[i];

    if (p->st == POOL_STOPPING) {
        if (p->pending == 0) {
            p->pending = code;
            pool__fail(p, code, "worker %u, while it stopped: %s", i,
                       subiter_errmsg(w->h));
            pool__note(p, i, 0);
        }
        pool__replace(p, i);
        return;
    }
    if (code != SUBITER_ECHILD || !p->o.restart_shards ||
        w->restarts >= p->o.max_retries || !pool__may_fork(p)) {
        pool__shard_failed(p, i, code);
        return;
    }
    /* Rerun: a replacement starts the shard again once it is ready,
     * skipping what was delivered (w->delivered stays). */
    w->restarts++;
    pool__replace(p, i);
    w->rerun = true;
}

void pool__rerun_failed(subiter_pool *p, unsigned i, int code)
{
    struct pool_slot *w = &p->w[i];
    char why[SUBITER__POOL_ERRMSG_MAX];

    /* Copied: without a handle, the reason is in the errmsg rewritten
     * below. */
    snprintf(why, sizeof why, "%s",
             w->h != NULL ? subiter_errmsg(w->h) : p->errmsg);
    assert(w->rerun && p->st == POOL_ITERATING);
    if (w->restarts < p->o.max_retries && pool__may_fork(p)) {
        /* Each failed replacement counts one rerun. */
        w->restarts++;
        if (w->h != NULL) {
            pool__replace(p, i);
        } else {
            w->respawn = true;
            p->followup = true;
        }
        return;
    }
    pool__fail(p, code, "worker %u (shard %u of %u), rerun %u of %u: %s", i,
               shard_of(p, i), shards(p), w->restarts, p->o.max_retries, why);
    w->rerun = false;
    w->respawn = false;
    pool__close_slot(p, i);
    pool__stop_shards(p, code);
}

/* Slot i's rerun replacement is ready: start the shard on it. */
static void start_rerun(subiter_pool *p, unsigned i)
{
    struct pool_slot *w = &p->w[i];
    int r;

    /* The worker drops what was delivered before it reaches the ring. */
    r = start_shard(p, i);
    if (r < 0) {
        pool__rerun_failed(p, i, r);
        return;
    }
    w->rerun = false;
    pool__slot_set(p, i, SLOT_BUSY);
    w->blocked = false;
    w->last_ns = subiter__now_ns();
}

/* The iteration or the stop is over: every slot in Stand By again. */
static void rest(subiter_pool *p)
{
    unsigned i;

    for (i = 0; i < p->n; i++) {
        p->w[i].rerun = false;
        if (p->w[i].st == SLOT_ENDED) {
            pool__slot_set(p, i, SLOT_IDLE);
        }
    }
    pool__set(p, p->rest);
}

void pool__shards_follow_up(subiter_pool *p)
{
    unsigned i;

    if (p->st == POOL_ITERATING && p->nstate[SLOT_IDLE] > 0) {
        for (i = 0; i < p->n && p->st == POOL_ITERATING; i++) {
            if (p->w[i].rerun && p->w[i].st == SLOT_IDLE) {
                start_rerun(p, i);
            }
        }
    }
    if (p->st == POOL_ITERATING && p->nstate[SLOT_ENDED] == p->n) {
        rest(p);
    } else if (p->st == POOL_STOPPING && p->nstate[SLOT_STOPPING] == 0) {
        rest(p);
    }
}

/* ---- the public calls ---- */

/* The pool is stopping: the loop until every slot is back, then the code
 * that ended it. */
static int finish_stop(subiter_pool *p)
{
    int r = pool__run(p, pool__iteration_over, 0, true);

    if (r == 0) {
        r = p->pending;
    }
    p->pending = 0;
    return r;
}

/* Is the checkpoint of this pool's configuration? 0, or -EINVAL with an
 * errmsg naming the first field that differs. */
static int same_config(subiter_pool *p, const struct subiter__ckpt *c)
{
    static const char *const order[] = {"ordered", "unordered"};

    if (c->order != p->o.order) {
        return pool__fail(p, -EINVAL, "checkpoint: order %s, the pool's is %s",
                          c->order == SUBITER_POOL_UNORDERED ? order[1]
                          : c->order == SUBITER_POOL_ORDERED ? order[0]
                                                             : "unknown",
                          p->o.order == SUBITER_POOL_UNORDERED ? order[1]
                                                               : order[0]);
    }
    if (c->workers != p->n) {
        return pool__fail(p, -EINVAL, "checkpoint: %u workers, the pool has %u",
                          c->workers, p->n);
    }
    if (c->world_size != p->o.world_size || c->rank != p->o.rank) {
        return pool__fail(p, -EINVAL,
                          "checkpoint: rank %u of world size %u, the pool "
                          "is rank %u of %u",
                          c->rank, c->world_size, p->o.rank, p->o.world_size);
    }
    return 0;
}

/* subiter_pool_start() and subiter_pool_start_from() (c != NULL). */
static int start(subiter_pool *p, const void *input, size_t len,
                 const struct subiter__ckpt *c)
{
    unsigned i;
    int r;

    pool__settle(p);
    if (!pool__taking_tasks(p)) {
        return pool__fail(p, -EINVAL, "an iteration is running");
    }
    if (!pool__no_task(p) || p->ehead != NULL) {
        return pool__fail(p, -EINVAL, "tasks are queued, running or unread");
    }
    r = pool__check_input(p, input, len);
    if (r < 0) {
        return r;
    }
    if (c != NULL && (r = same_config(p, c)) < 0) {
        return r;
    }
    r = pool__fill(p, p->n);
    if (r < 0) {
        return r;
    }
    if (len > 0) {
        memcpy(p->input, input, len);
    }
    p->input_len = len;
    for (i = 0; i < p->n; i++) {
        p->w[i].delivered = c != NULL ? c->delivered[i] : 0;
    }
    p->turn = c != NULL ? c->turn : 0;
    p->iteration = c != NULL ? c->iteration : p->started ? p->iteration + 1 : 0;
    r = pool__start_shards(p);
    if (r < 0) {
        /* Only a dead worker refuses: end what was started. */
        return finish_stop(p);
    }
    p->started = true;
    p->errmsg[0] = '\0';
    return 0;
}

int subiter_pool_start(subiter_pool *p, const void *input, size_t len)
{
    int r = pool__enter(p);

    return r < 0 ? r : start(p, input, len, NULL);
}

int subiter_pool_start_from(subiter_pool *p, const void *input, size_t len,
                            const void *ckpt, size_t ckpt_len)
{
    struct subiter__ckpt c;
    int r = pool__enter(p);

    if (r < 0) {
        return r;
    }
    r = subiter__ckpt_decode(ckpt, ckpt_len, &c, p->errmsg, sizeof p->errmsg);
    if (r < 0) {
        return r;
    }
    r = start(p, input, len, &c);
    subiter__ckpt_free(&c);
    return r;
}

int subiter_pool_checkpoint(const subiter_pool *p, void *buf, size_t cap,
                            size_t *len)
{
    struct subiter__ckpt c;
    uint64_t *counts;
    unsigned i;
    size_t n;

    if (len != NULL) {
        *len = 0;
    }
    if (p == NULL || p->w == NULL || len == NULL || (buf == NULL && cap > 0) ||
        !p->started) {
        return -EINVAL;
    }
    counts = subiter__malloc(p->n * sizeof *counts);
    if (counts == NULL) {
        return -ENOMEM;
    }
    for (i = 0; i < p->n; i++) {
        counts[i] = p->w[i].delivered;
    }
    memset(&c, 0, sizeof c);
    c.version = SUBITER__CKPT_VERSION;
    c.order = p->o.order;
    c.workers = p->n;
    c.rank = p->o.rank;
    c.world_size = p->o.world_size;
    c.turn = p->turn;
    c.iteration = p->iteration;
    c.delivered = counts;
    n = subiter__ckpt_size(&c);
    *len = n;
    if (n > cap) {
        subiter__free(counts);
        return -ENOSPC;
    }
    subiter__ckpt_pack(&c, buf);
    subiter__free(counts);
    return 0;
}

int subiter_pool_stop(subiter_pool *p)
{
    int r = pool__enter(p);

    if (r < 0) {
        return r;
    }
    pool__settle(p);
    if (pool__taking_tasks(p)) {
        return 0;
    }
    pool__stop_shards(p, 0);
    return finish_stop(p);
}
