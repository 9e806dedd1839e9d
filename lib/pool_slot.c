/* pool_slot.c: a pool's slots and states. Owns the one setter of a slot's
 * state and the one setter of the pool's, each with its legal moves
 * listed top to bottom; the check of the pool's bookkeeping; and what is
 * done to the worker in a slot: fork it, take it out, close it, replace
 * it, pause it (subiter_pool_pause(), subiter_pool_resume()). */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>

#include "pool.h"

/* ---- states ---- */

/* The legal moves of a slot, top to bottom. */
static bool slot_legal(enum slot_state from, enum slot_state to)
{
    switch (from) {
    case SLOT_EMPTY: /* forked */
        return to == SLOT_STARTING;
    case SLOT_STARTING: /* ready; or failed, killed, closed */
        return to == SLOT_IDLE || to == SLOT_EMPTY;
    case SLOT_IDLE: /* took a task or a shard; or died, retired, closed */
        return to == SLOT_BUSY || to == SLOT_EMPTY;
    case SLOT_BUSY: /* task or failed shard over; shard ended; STOP sent;
                       died, killed, cancelled, closed */
        return to == SLOT_IDLE || to == SLOT_ENDED || to == SLOT_STOPPING ||
               to == SLOT_EMPTY;
    case SLOT_STOPPING: /* back in Stand By; or died, closed */
        return to == SLOT_IDLE || to == SLOT_EMPTY;
    case SLOT_ENDED: /* the iteration is over; or died, closed */
        return to == SLOT_IDLE || to == SLOT_EMPTY;
    default:
        return false;
    }
}

void pool__slot_set(subiter_pool *p, unsigned i, enum slot_state to)
{
    struct pool_slot *w = &p->w[i];

    assert(slot_legal(w->st, to));
    assert(p->nstate[w->st] > 0);
    p->nstate[w->st]--;
    p->nstate[to]++;
    w->st = to;
    p->moves++;
    if (to == SLOT_IDLE) {
        w->idle_since = subiter__now_ns();
    }
    /* A stop is bounded by the worker's grace_ms (pool.c's timers). */
    w->stop_deadline =
        to == SLOT_STOPPING
            ? subiter__now_ns() + p->wopts.grace_ms * SUBITER__NS_PER_MS
            : 0;
}

/* The legal moves of the pool, top to bottom. */
static bool pool_legal(enum pool_state from, enum pool_state to)
{
    switch (from) {
    case POOL_IDLE: /* start; finalize */
        return to == POOL_ITERATING || to == POOL_FINALIZING;
    case POOL_ITERATING: /* stop or a failed shard; every shard ended */
        return to == POOL_STOPPING || to == POOL_IDLE || to == POOL_FINALIZING;
    case POOL_STOPPING: /* every slot is back */
        return to == POOL_IDLE || to == POOL_FINALIZING;
    case POOL_FINALIZING: /* start (the queue is empty) */
        return to == POOL_ITERATING;
    default:
        return false;
    }
}

void pool__set(subiter_pool *p, enum pool_state to)
{
    assert(pool_legal(p->st, to));
    p->st = to;
    p->moves++;
}

void pool__check(const subiter_pool *p)
{
#ifndef NDEBUG
    unsigned i, c[SLOT_NSTATES] = {0}, running = 0, queued = 0;
    const struct pool_task *t;
    bool held_found = p->held == NULL;

    assert(p->n == 0 || p->turn < p->n);
    for (i = 0; i < p->n; i++) {
        const struct pool_slot *w = &p->w[i];

        c[w->st]++;
        assert((w->st == SLOT_EMPTY) == (w->h == NULL));
        /* Tasks stop one by one: a cancelled one. */
        assert(w->st != SLOT_STOPPING || p->st == POOL_STOPPING ||
               (w->task != NULL && w->task->cancelled));
        assert(w->task == NULL || w->st == SLOT_BUSY || w->st == SLOT_STOPPING);
        running += w->task != NULL ? 1 : 0;
        held_found |= w->h != NULL && w->h == p->held;
    }
    for (i = 0; i < SLOT_NSTATES; i++) {
        assert(c[i] == p->nstate[i]);
    }
    for (t = p->qhead; t != NULL; t = t->next) {
        queued++;
    }
    assert(running == p->running);
    assert(queued == p->queued);
    assert(running == 0 || pool__taking_tasks(p));
    assert(held_found);
    (void)running;
    (void)queued;
    (void)held_found;
#else
    (void)p;
#endif
}

/* ---- slots ---- */

subiter *pool__detach(subiter_pool *p, unsigned i)
{
    struct pool_slot *w = &p->w[i];
    subiter *h = w->h;

    if (h == NULL) {
        return NULL;
    }
    if (p->held == h) {
        p->held = NULL;
    }
    pool__ev_forget(p, i);
    if (w->paused_at != 0) {
        subiter__signal(h, SIGCONT);
    }
    pool__slot_set(p, i, SLOT_EMPTY);
    w->h = NULL;
    w->paused_at = 0;
    w->blocked = false;
    w->exited = false;
    w->armed = false;
    return h;
}

/* End slot i's process (ABORT, then signals after grace): EMPTY. */
void pool__close_slot(subiter_pool *p, unsigned i)
{
    subiter *h = pool__detach(p, i);
    int rc;

    if (h != NULL) {
        subiter__close_many(&h, &rc, 1);
    }
}

int pool__spawn(subiter_pool *p, unsigned i)
{
    struct pool_slot *w = &p->w[i];
    struct subiter__ident id = {p->o.rank * p->n + i,
                                p->o.world_size * p->n,
                                p->o.rank,
                                p->o.world_size,
                                i,
                                p->o.seed};
    int r, rc;

    assert(w->st == SLOT_EMPTY);
    w->respawn = false;
    r = subiter__open_async(&w->h, p->fn, p->arg, &p->wopts, &id);
    if (r < 0) {
        pool__fail(p, r, "worker %u: %s", i,
                   w->h != NULL ? subiter_errmsg(w->h) : subiter_strerror(r));
        if (w->h != NULL) {
            subiter__close_many(&w->h, &rc, 1);
            w->h = NULL;
        }
        return r;
    }
    pool__slot_set(p, i, SLOT_STARTING);
    w->task = NULL;
    w->tasks_run = 0;
    w->last_ns = subiter__now_ns();
    w->paused_at = 0;
    w->blocked = false;
    return 0;
}

void pool__replace(subiter_pool *p, unsigned i)
{
    pool__close_slot(p, i);
    p->stats.replaced++;
    p->w[i].respawn = true;
    p->followup = true;
}

int pool__pause_one(subiter_pool *p, unsigned i, bool pause)
{
    struct pool_slot *w = &p->w[i];
    int64_t now = subiter__now_ns(), d;

    if (w->st == SLOT_EMPTY) {
        return -EINVAL;
    }
    if (pause && w->paused_at == 0) {
        subiter__signal(w->h, SIGSTOP);
        w->paused_at = now;
    } else if (!pause && w->paused_at != 0) {
        subiter__signal(w->h, SIGCONT);
        /* Paused time does not count against the task's time. */
        d = now - w->paused_at;
        w->task_deadline += w->task_deadline != 0 ? d : 0;
        w->last_ns += d;
        w->paused_at = 0;
    }
    return 0;
}

/* ---- the public calls ---- */

static int pause_resume(subiter_pool *p, int worker, bool pause)
{
    unsigned i;
    int r = pool__enter(p);

    if (r < 0) {
        return r;
    }
    if (worker == -1) {
        p->paused_all = pause;
        for (i = 0; i < p->n; i++) {
            (void)pool__pause_one(p, i, pause);
        }
        return 0;
    }
    if (worker < 0 || (unsigned)worker >= p->n) {
        return pool__fail(p, -EINVAL, "no worker %d (the pool has %u)", worker,
                          p->n);
    }
    if (pool__pause_one(p, (unsigned)worker, pause) < 0) {
        return pool__fail(p, -EINVAL, "worker %d is not running", worker);
    }
    return 0;
}

int subiter_pool_pause(subiter_pool *p, int worker)
{
    return pause_resume(p, worker, true);
}

int subiter_pool_resume(subiter_pool *p, int worker)
{
    return pause_resume(p, worker, false);
}
