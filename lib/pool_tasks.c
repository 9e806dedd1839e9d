/* pool_tasks.c: the pool's tasks. Owns the queue (submitted, not yet
 * taken) and the list of ended tasks for subiter_pool_next(), the handing
 * out of tasks to idle slots (and forking for them), a task's end, its
 * retry when its worker died, per-task timeouts, finalize's grace and the
 * cancelling of what is left after it. Every function here is a handler
 * or a follow-up of the loop in pool.c: none waits. */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "pool.h"

/* Batch of workers closed at once when finalize's grace ends. */
#define CANCEL_BATCH 64

/* ---- the lists ---- */

static void push_back(struct pool_task **head, struct pool_task **tail,
                      struct pool_task *t)
{
    t->next = NULL;
    if (*tail != NULL) {
        (*tail)->next = t;
    } else {
        *head = t;
    }
    *tail = t;
}

struct pool_task *pool__pop(struct pool_task **head, struct pool_task **tail)
{
    struct pool_task *t = *head;

    if (t != NULL) {
        *head = t->next;
        if (*head == NULL) {
            *tail = NULL;
        }
        t->next = NULL;
    }
    return t;
}

void pool__task_free(struct pool_task *t)
{
    if (t != NULL) {
        subiter__free(t->errmsg);
        subiter__free(t);
    }
}

void pool__task_free_list(struct pool_task *t)
{
    while (t != NULL) {
        struct pool_task *next = t->next;

        pool__task_free(t);
        t = next;
    }
}

struct pool_task *pool__task_new(subiter_pool *p, const void *input, size_t len)
{
    struct pool_task *t = subiter__malloc(sizeof *t + len);

    if (t == NULL) {
        return NULL;
    }
    memset(t, 0, sizeof *t);
    if (len > 0) {
        memcpy(t->input, input, len);
    }
    t->len = len;
    t->id = ++p->next_id;
    push_back(&p->qhead, &p->qtail, t);
    p->queued++;
    p->stats.submitted++;
    return t;
}

static struct pool_task *pop_queued(subiter_pool *p)
{
    struct pool_task *t = pool__pop(&p->qhead, &p->qtail);

    if (t != NULL) {
        assert(p->queued > 0);
        p->queued--;
    }
    return t;
}

bool pool__no_task(const subiter_pool *p)
{
    return p->queued == 0 && p->running == 0;
}

/* ---- a task's end ---- */

/* Task t ended with code (0: success) and a message. */
static void end_task(subiter_pool *p, struct pool_task *t, int code,
                     const char *fmt, ...) SUBITER_PRINTF(4, 5);

static void end_task(subiter_pool *p, struct pool_task *t, int code,
                     const char *fmt, ...)
{
    char msg[SUBITER__POOL_ERRMSG_MAX];
    va_list ap;
    size_t n;

    t->code = code;
    if (code == 0) {
        p->stats.done++;
    } else {
        p->stats.failed++;
        p->stats.timed_out += code == SUBITER_ETIMEDOUT ? 1 : 0;
        p->stats.cancelled += code == SUBITER_ECANCELED ? 1 : 0;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        n = strlen(msg) + 1;
        /* Without memory for the message, the code alone still tells. */
        t->errmsg = subiter__malloc(n);
        if (t->errmsg != NULL) {
            memcpy(t->errmsg, msg, n);
        }
    }
    if (pool__callbacks(p) && code == 0) {
        pool__task_free(t);
    } else if (pool__callbacks(p) && p->o.on_error != NULL) {
        p->in_cb = true;
        p->cb_task = t; /* for subiter_pool_task_user() */
        p->o.on_error(p, t->id, t->code, t->errmsg != NULL ? t->errmsg : "",
                      p->o.user);
        p->cb_task = NULL;
        p->in_cb = false;
        pool__task_free(t);
    } else {
        push_back(&p->ehead, &p->etail, t);
    }
}

/* The task of slot i is over (the worker is idle again, or gone). */
static struct pool_task *take_task(subiter_pool *p, unsigned i)
{
    struct pool_task *t = p->w[i].task;

    assert(t != NULL && p->running > 0);
    p->w[i].task = NULL;
    p->w[i].task_deadline = 0;
    p->running--;
    return t;
}

int pool__task_read(subiter_pool *p, unsigned i, int r)
{
    struct pool_slot *w = &p->w[i];
    struct pool_task *t;

    if (r == 1) {
        p->ev.worker = i;
        p->ev.task = w->task;
        p->held = w->h;
        return 1;
    }
    if (r != 0 && r != SUBITER_EITER) {
        pool__task_lost(p, i, r);
        return 0;
    }
    t = take_task(p, i);
    pool__slot_set(p, i, SLOT_IDLE);
    if (t->cancelled) {
        end_task(p, t, SUBITER_ECANCELED, "task %llu: cancelled", t->id);
    } else if (r == 0) {
        end_task(p, t, 0, "%s", "");
    } else {
        pool__note(p, i, t->id);
        end_task(p, t, r, "task %llu (worker %u): %s", t->id, i,
                 subiter_errmsg(w->h));
    }
    /* Recycling: it exits cleanly; dispatch forks a fresh one when a
     * task needs it. */
    if (p->o.max_tasks_per_worker > 0 &&
        ++w->tasks_run >= p->o.max_tasks_per_worker) {
        pool__close_slot(p, i);
    }
    return 0;
}

void pool__task_lost(subiter_pool *p, unsigned i, int code)
{
    struct pool_task *t = take_task(p, i);
    const char *why = subiter_errmsg(p->w[i].h);

    if (t->cancelled) {
        end_task(p, t, SUBITER_ECANCELED,
                 "task %llu: cancelled; its worker was ended and replaced: %s",
                 t->id, why);
    } else if (code == SUBITER_ECHILD && t->deaths < p->o.max_retries &&
               p->rest != POOL_FINALIZING) {
        t->deaths++;
        p->stats.retried++;
        /* At the front: it was first in line once already. */
        t->next = p->qhead;
        p->qhead = t;
        if (p->qtail == NULL) {
            p->qtail = t;
        }
        p->queued++;
    } else if (code == SUBITER_ECHILD && t->deaths > 0) {
        pool__note(p, i, t->id);
        end_task(p, t, code, "task %llu (worker %u, attempt %u of %u): %s",
                 t->id, i, t->deaths + 1, p->o.max_retries + 1, why);
    } else {
        pool__note(p, i, t->id);
        end_task(p, t, code, "task %llu (worker %u): %s", t->id, i, why);
    }
    pool__replace(p, i);
}

/* ---- handing out ---- */

static bool given_up(const struct pool_slot *w)
{
    return w->st == SLOT_EMPTY && !w->respawn &&
           w->init_failures >= POOL_MAX_INIT_FAILURES;
}

void pool__fresh_chance(subiter_pool *p)
{
    unsigned i;

    for (i = 0; i < p->n; i++) {
        if (given_up(&p->w[i])) {
            p->w[i].init_failures = 0;
        }
    }
}

/* No worker can ever run the queued tasks: every slot's initializer keeps
 * failing. Fail them rather than wait forever. */
static void fail_unrunnable(subiter_pool *p)
{
    struct pool_task *t;
    unsigned i;

    if (p->nstate[SLOT_EMPTY] < p->n) {
        return;
    }
    for (i = 0; i < p->n; i++) {
        if (!given_up(&p->w[i])) {
            return;
        }
    }
    while ((t = pop_queued(p)) != NULL) {
        end_task(p, t, SUBITER_EINIT,
                 "task %llu: no worker could be started: %s", t->id, p->errmsg);
    }
}

/* A finalizing pool forks no worker: queued tasks that no worker is left
 * to take end now, not when the grace runs out. */
static void fail_workerless(subiter_pool *p)
{
    struct pool_task *t;

    if (pool__may_fork(p) || p->nstate[SLOT_EMPTY] < p->n) {
        return;
    }
    while ((t = pop_queued(p)) != NULL) {
        end_task(p, t, SUBITER_ECANCELED,
                 "task %llu: no worker is left to run it, and a finalizing "
                 "pool starts none",
                 t->id);
    }
}

/* A task's wall-time limit in ms: its own, else the pool's (<= 0: none). */
static int task_limit(const subiter_pool *p, const struct pool_task *t)
{
    return t->timeout_ms > 0 ? t->timeout_ms : p->o.task_timeout_ms;
}

void pool__dispatch(subiter_pool *p)
{
    unsigned i, idle;

    fail_unrunnable(p);
    fail_workerless(p);
    if (p->paused_all || p->st == POOL_ITERATING || p->st == POOL_STOPPING) {
        return;
    }
    for (i = 0; i < p->n && p->qhead != NULL; i++) {
        struct pool_slot *w = &p->w[i];
        struct pool_task *t;

        if (w->st != SLOT_IDLE || w->paused_at != 0) {
            continue;
        }
        t = p->qhead;
        if (subiter_start(w->h, t->input, t->len) < 0) {
            /* Its worker died in Stand By: the pidfd will tell. */
            continue;
        }
        (void)pop_queued(p);
        p->running++;
        pool__slot_set(p, i, SLOT_BUSY);
        w->task = t;
        w->task_late = false;
        w->last_ns = subiter__now_ns();
        w->task_deadline =
            task_limit(p, t) > 0
                ? w->last_ns + task_limit(p, t) * SUBITER__NS_PER_MS
                : 0;
    }
    /* Fork workers for the rest while fewer than `workers` run. */
    idle = p->nstate[SLOT_IDLE] + p->nstate[SLOT_STARTING];
    for (i = 0; i < p->n && p->queued > idle && pool__may_fork(p); i++) {
        struct pool_slot *w = &p->w[i];

        if (w->st == SLOT_EMPTY && w->init_failures < POOL_MAX_INIT_FAILURES &&
            pool__spawn(p, i) == 0) {
            idle++;
        }
    }
}

/* ---- deadlines ---- */

/* Finalize's grace is over: end every queued and running task. */
static void cancel_all(subiter_pool *p)
{
    subiter *v[CANCEL_BATCH];
    int rc[CANCEL_BATCH];
    unsigned i, k = 0;
    struct pool_task *t;

    while ((t = pop_queued(p)) != NULL) {
        end_task(p, t, SUBITER_ECANCELED,
                 "task %llu: still queued when finalize's %d ms grace "
                 "ended",
                 t->id, p->final_grace_ms);
    }
    /* Every running worker at once, a batch at a time. */
    for (i = 0; i < p->n; i++) {
        struct pool_slot *w = &p->w[i];

        if (w->st != SLOT_BUSY) {
            continue;
        }
        t = take_task(p, i);
        end_task(p, t, SUBITER_ECANCELED,
                 "task %llu: still running on worker %u (pid %d) when "
                 "finalize's %d ms grace ended; aborted",
                 t->id, i, (int)subiter_pid(w->h), p->final_grace_ms);
        v[k++] = pool__detach(p, i);
        if (k == CANCEL_BATCH) {
            subiter__close_many(v, rc, k);
            k = 0;
        }
    }
    subiter__close_many(v, rc, k);
}

void pool__task_timers(subiter_pool *p, int64_t now, int64_t *next)
{
    char why[128];
    unsigned i;

    for (i = 0; i < p->n && p->running > 0; i++) {
        struct pool_slot *w = &p->w[i];

        if (w->st != SLOT_BUSY || w->task_deadline == 0 || w->paused_at != 0) {
            continue;
        }
        /* The parent was away past the deadline (the application, or a
         * crash report it symbolized) and the worker had spoken: read what
         * it published by then first, its task may have ended in time.
         * Only that: what it yields later does not extend its time. */
        if (now >= w->task_deadline && !w->task_late &&
            subiter__has_unread(w->h, &w->late_mark)) {
            w->task_late = true; /* at least one more read */
            *next = now;
            continue;
        }
        if (now >= w->task_deadline && w->task_late &&
            !subiter__read_past(w->h, w->late_mark)) {
            *next = now;
            continue;
        }
        if (now >= w->task_deadline) {
            snprintf(why, sizeof why, "ran task %llu past its %d ms limit",
                     w->task->id, task_limit(p, w->task));
            pool__task_lost(p, i, subiter__kill(w->h, SUBITER_ETIMEDOUT, why));
            continue;
        }
        *next = pool__earlier(*next, w->task_deadline);
    }
    if (p->st == POOL_FINALIZING && !pool__no_task(p)) {
        if (now >= p->final_deadline) {
            cancel_all(p);
        } else {
            *next = pool__earlier(*next, p->final_deadline);
        }
    }
}

/* ---- conditions for subiter_pool_submit() ---- */

/* Without callbacks, can the queue ever make room? Only if some worker
 * can take a task, or finish one without subiter_pool_next(). */
static bool stuck(const subiter_pool *p)
{
    unsigned i;

    if (pool__callbacks(p) || p->queued < p->o.queue_max) {
        return false;
    }
    if (p->paused_all) {
        return true;
    }
    for (i = 0; i < p->n; i++) {
        const struct pool_slot *w = &p->w[i];

        if (w->st == SLOT_STARTING || w->st == SLOT_IDLE ||
            w->st == SLOT_STOPPING || (w->st == SLOT_BUSY && !w->blocked) ||
            (w->st == SLOT_EMPTY && !given_up(w))) {
            return false;
        }
    }
    return true;
}

bool pool__room_or_stuck(const subiter_pool *p)
{
    return p->queued < p->o.queue_max || stuck(p);
}

/* ---- the public calls ---- */

int subiter_pool_submit(subiter_pool *p, const void *input, size_t len,
                        int flags, unsigned long long *task)
{
    return subiter_pool_submit_ex(p, input, len, flags, NULL, task);
}

int subiter_pool_submit_ex(subiter_pool *p, const void *input, size_t len,
                           int flags, const subiter_task_opts *topts,
                           unsigned long long *task)
{
    struct pool_task *t;
    int r;

    if (task != NULL) {
        *task = 0;
    }
    if (p != NULL && (flags & ~SUBITER_POOL_NOWAIT) != 0) {
        return -EINVAL;
    }
    if ((r = pool__enter(p)) < 0) {
        return r;
    }
    if (topts != NULL &&
        (subiter__opts_size(topts, topts->size, sizeof *topts) < 0 ||
         topts->timeout_ms < 0)) {
        return pool__fail(p, -EINVAL,
                          "invalid task options (size %zu, timeout_ms %d)",
                          topts->size, topts->timeout_ms);
    }
    if (p->rest == POOL_FINALIZING) {
        return pool__fail(p, -ESHUTDOWN, "the pool is being finalized");
    }
    if (!pool__taking_tasks(p)) {
        return pool__fail(p, -EINVAL, "a sharded iteration is running");
    }
    r = pool__check_input(p, input, len);
    if (r < 0) {
        return r;
    }
    pool__settle(p);
    if (p->queued >= p->o.queue_max) {
        if (flags & SUBITER_POOL_NOWAIT) {
            return pool__fail(p, -EAGAIN, "%u tasks are queued already",
                              p->queued);
        }
        r = pool__run(p, pool__room_or_stuck, 0, pool__callbacks(p));
        if (r < 0) {
            return r;
        }
        if (p->queued >= p->o.queue_max) {
            return pool__fail(p, -EDEADLK, "the queue is full and %s",
                              p->paused_all ? "the pool is paused"
                                            : "every busy worker waits for "
                                              "subiter_pool_next() to take its "
                                              "items");
        }
    }
    t = pool__task_new(p, input, len);
    if (t == NULL) {
        return pool__fail(p, -ENOMEM, "out of memory");
    }
    if (topts != NULL) {
        t->user = topts->user;
        t->timeout_ms = topts->timeout_ms;
    }
    if (task != NULL) {
        *task = t->id;
    }
    pool__fresh_chance(p);
    pool__dispatch(p);
    return 0;
}

/* Take task `id` out of the queue: NULL when it is not there. */
static struct pool_task *unqueue(subiter_pool *p, unsigned long long id)
{
    struct pool_task *t, *prev = NULL;

    for (t = p->qhead; t != NULL; prev = t, t = t->next) {
        if (t->id != id) {
            continue;
        }
        if (prev != NULL) {
            prev->next = t->next;
        } else {
            p->qhead = t->next;
        }
        if (p->qtail == t) {
            p->qtail = prev;
        }
        t->next = NULL;
        p->queued--;
        return t;
    }
    return NULL;
}

int subiter_pool_cancel(subiter_pool *p, unsigned long long task)
{
    struct pool_task *t;
    unsigned i;
    int r = pool__enter(p);

    if (r < 0) {
        return r;
    }
    pool__settle(p);
    t = unqueue(p, task);
    if (t != NULL) {
        end_task(p, t, SUBITER_ECANCELED, "task %llu: cancelled while queued",
                 t->id);
        return 0;
    }
    for (i = 0; i < p->n; i++) {
        struct pool_slot *w = &p->w[i];

        if (w->task == NULL || w->task->id != task) {
            continue;
        }
        if (w->st == SLOT_BUSY) {
            /* STOP; its items are dropped from now on, and pool.c's
             * timers end the worker if it ignores the stop for grace_ms. */
            w->task->cancelled = true;
            pool__slot_set(p, i, SLOT_STOPPING);
            if (subiter__send_stop(w->h) < 0) {
                pool__task_lost(p, i, SUBITER_EPROTO);
            }
        }
        return 0;
    }
    return pool__fail(p, -ENOENT, "no task %llu is queued or running", task);
}

/* A live task of the pool by id: NULL if none. */
static struct pool_task *find_live(const subiter_pool *p, unsigned long long id)
{
    struct pool_task *t;
    unsigned i;

    for (i = 0; i < p->n; i++) {
        if (p->w[i].task != NULL && p->w[i].task->id == id) {
            return p->w[i].task;
        }
    }
    for (t = p->qhead; t != NULL; t = t->next) {
        if (t->id == id) {
            return t;
        }
    }
    for (t = p->ehead; t != NULL; t = t->next) {
        if (t->id == id) {
            return t;
        }
    }
    return NULL;
}

void *subiter_pool_task_user(const subiter_pool *p, unsigned long long task)
{
    const struct pool_task *t = NULL;

    if (p == NULL || p->w == NULL || task == 0) {
        return NULL;
    }
    if (p->cb_task != NULL && p->cb_task->id == task) {
        t = p->cb_task;
    } else if (p->delivered != NULL && p->delivered->id == task) {
        t = p->delivered;
    } else {
        t = find_live(p, task);
    }
    return t != NULL ? t->user : NULL;
}

int subiter_pool_wait(subiter_pool *p, int timeout_ms)
{
    int64_t deadline = 0;
    int r = pool__enter(p);

    if (r < 0) {
        return r;
    }
    if (!pool__callbacks(p)) {
        return pool__fail(p, -EINVAL,
                          "no on_result callback: read the results "
                          "with subiter_pool_next()");
    }
    pool__settle(p);
    if (timeout_ms > 0) {
        deadline = subiter__now_ns() + timeout_ms * SUBITER__NS_PER_MS;
    }
    return pool__run(p, pool__no_task, deadline, true);
}

int subiter_pool_finalize(subiter_pool *p, int grace_ms)
{
    unsigned long long before;
    int r;

    if (p != NULL && grace_ms < 0) {
        return -EINVAL;
    }
    if ((r = pool__enter(p)) < 0) {
        return r;
    }
    pool__settle(p);
    if (p->rest != POOL_FINALIZING) {
        p->rest = POOL_FINALIZING;
        if (p->st == POOL_IDLE) {
            pool__set(p, POOL_FINALIZING);
        }
        p->final_grace_ms = grace_ms;
        p->final_deadline = subiter__now_ns() + grace_ms * SUBITER__NS_PER_MS;
    }
    if (!pool__callbacks(p)) {
        return 0;
    }
    before = p->stats.cancelled;
    r = pool__run(p, pool__no_task, 0, true);
    if (r < 0) {
        return r;
    }
    return (int)(p->stats.cancelled - before);
}
