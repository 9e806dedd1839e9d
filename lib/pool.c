/* pool.c: many workers of one generator, each a subiter handle. Sharded
 * iteration (every worker runs the generator on its shard, items merged in
 * round robin or as they come) and a task queue (each task is one
 * iteration on an idle worker). The pool starts no thread: it does its
 * work inside its calls, waiting on every worker's eventfd and pidfd in a
 * single poll(). */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define ERRMSG_MAX 4800
/* Without pidfds (valgrind), deaths are looked for between sleeps of this
 * length. */
#define FALLBACK_SLICE_MS 5
/* A slot whose replacements keep failing their initializer is given up
 * after this many in a row. */
#define MAX_INIT_FAILURES 3

enum wstate {
    W_EMPTY,    /* no worker */
    W_STARTING, /* forked, initializer running */
    W_IDLE,     /* in Stand By */
    W_BUSY,     /* running a task or its shard */
    W_ENDED     /* its shard ended; in Stand By */
};

struct task {
    struct task *next;
    unsigned long long id;
    unsigned deaths; /* attempts whose worker died */
    int code;        /* how it ended */
    char *errmsg;    /* why, when code != 0 */
    size_t len;
    unsigned char input[];
};

struct pworker {
    subiter *h;
    enum wstate st;
    struct task *task;
    int64_t task_deadline; /* 0: none */
    int64_t last_ns;       /* last sign of life, for the inactivity timeout */
    int64_t idle_since;
    int64_t paused_at;            /* 0: running */
    bool blocked;                 /* an item waits at the head of its ring */
    bool exited;                  /* its pidfd said so; the handle reports it */
    bool armed;                   /* told that the parent sleeps */
    unsigned long long delivered; /* items of its shard delivered */
    unsigned long long skip;      /* items of a rerun shard to drop */
    unsigned restarts;            /* reruns of its shard */
    unsigned init_failures;
};

/* One thing that happened, for the caller or a callback. */
struct event {
    int kind;
    unsigned worker;
    subiter_item item;
    struct task *task;
};

struct subiter_pool {
    subiter_iter_fn fn;
    void *arg;
    subiter_pool_opts o;
    subiter_opts wopts;
    unsigned n; /* slots: o.workers */
    struct pworker *w;
    struct pollfd *pfd;
    unsigned *pfd_worker;
    int timeout_ms; /* each worker's inactivity timeout */

    /* sharded iteration */
    bool iterating;
    bool started;
    unsigned turn;
    unsigned char input[SUBITER_INPUT_MAX];
    size_t input_len;

    /* tasks */
    struct task *qhead, *qtail; /* waiting for a worker */
    struct task *ehead, *etail; /* ended, for subiter_pool_next() */
    struct task *delivered;     /* the end next() returned last */
    unsigned queued;
    unsigned running;
    unsigned long long next_id;
    bool finalizing;
    int64_t final_deadline;
    int final_grace_ms;
    bool paused_all;

    bool draining;  /* stopping every worker, their items dropped */
    bool drain_say; /* ... and a worker lost meanwhile sets errmsg */
    int drain_code; /* the first worker lost meanwhile: why */
    bool in_cb;
    int init_code; /* why the last worker failed to start */
    subiter *held; /* handle whose item view is out */
    int64_t call_ns;
    subiter_pool_stats stats;
    char errmsg[ERRMSG_MAX];
};

static int pfail(subiter_pool *p, int code, const char *fmt, ...)
    SUBITER_PRINTF(3, 4);

static int pfail(subiter_pool *p, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(p->errmsg, sizeof p->errmsg, fmt, ap);
    va_end(ap);
    return code;
}

static bool callbacks(const subiter_pool *p)
{
    return p->o.on_result != NULL;
}

/* ---- workers ---- */

static unsigned count(const subiter_pool *p, bool (*pred)(enum wstate))
{
    unsigned i, c = 0;

    for (i = 0; i < p->n; i++) {
        c += pred(p->w[i].st) ? 1 : 0;
    }
    return c;
}

static bool is_alive(enum wstate s)
{
    return s != W_EMPTY;
}

static bool is_busy(enum wstate s)
{
    return s == W_BUSY;
}

static bool is_starting(enum wstate s)
{
    return s == W_STARTING;
}

/* Take worker i's handle out of its slot (resumed if paused, to be
 * closed by the caller) and empty the slot. NULL when there is none. */
static subiter *detach_worker(subiter_pool *p, unsigned i)
{
    struct pworker *w = &p->w[i];
    subiter *h = w->h;

    if (h != NULL && p->held == h) {
        p->held = NULL;
    }
    if (h != NULL && w->paused_at != 0) {
        subiter__signal(h, SIGCONT);
    }
    w->h = NULL;
    w->st = W_EMPTY;
    w->paused_at = 0;
    w->blocked = false;
    w->exited = false;
    w->armed = false;
    return h;
}

/* End worker i's process (ABORT, then signals after grace) and empty the
 * slot. */
static void close_worker(subiter_pool *p, unsigned i)
{
    subiter *h = detach_worker(p, i);
    int rc;

    if (h != NULL) {
        subiter__close_many(&h, &rc, 1);
    }
}

static int spawn_worker(subiter_pool *p, unsigned i)
{
    struct pworker *w = &p->w[i];
    int r;

    r = subiter__open_async(&w->h, p->fn, p->arg, &p->wopts,
                            p->o.rank * p->n + i, p->o.world_size * p->n);
    if (r < 0) {
        pfail(p, r, "worker %u: %s", i,
              w->h != NULL ? subiter_errmsg(w->h) : subiter_strerror(r));
        close_worker(p, i);
        return r;
    }
    w->st = W_STARTING;
    w->task = NULL;
    w->last_ns = subiter__now_ns();
    w->paused_at = 0;
    w->blocked = false;
    return 0;
}

/* Worker i died (or was killed): close it and fork its replacement.
 * Returns what the fork gave (errmsg set on failure). */
static int replace_worker(subiter_pool *p, unsigned i)
{
    close_worker(p, i);
    p->stats.replaced++;
    return spawn_worker(p, i);
}

/* ---- tasks ---- */

static void push_back(struct task **head, struct task **tail, struct task *t)
{
    t->next = NULL;
    if (*tail != NULL) {
        (*tail)->next = t;
    } else {
        *head = t;
    }
    *tail = t;
}

static struct task *pop_front(struct task **head, struct task **tail)
{
    struct task *t = *head;

    if (t != NULL) {
        *head = t->next;
        if (*head == NULL) {
            *tail = NULL;
        }
        t->next = NULL;
    }
    return t;
}

static void free_task(struct task *t)
{
    if (t != NULL) {
        subiter__free(t->errmsg);
        subiter__free(t);
    }
}

static void free_list(struct task *t)
{
    while (t != NULL) {
        struct task *next = t->next;

        free_task(t);
        t = next;
    }
}

static void call_error(subiter_pool *p, struct task *t)
{
    p->in_cb = true;
    p->o.on_error(p, t->id, t->code, t->errmsg != NULL ? t->errmsg : "",
                  p->o.user);
    p->in_cb = false;
}

/* Task t ended with code (0: success) and a message. */
static void end_task(subiter_pool *p, struct task *t, int code, const char *fmt,
                     ...) SUBITER_PRINTF(4, 5);

static void end_task(subiter_pool *p, struct task *t, int code, const char *fmt,
                     ...)
{
    char msg[ERRMSG_MAX];
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
    if (callbacks(p) && code == 0) {
        free_task(t);
    } else if (callbacks(p) && p->o.on_error != NULL) {
        call_error(p, t);
        free_task(t);
    } else {
        push_back(&p->ehead, &p->etail, t);
    }
}

/* The task of worker i is over (the worker is idle again, or gone). */
static struct task *take_task(subiter_pool *p, unsigned i)
{
    struct task *t = p->w[i].task;

    p->w[i].task = NULL;
    p->w[i].task_deadline = 0;
    p->running--;
    return t;
}

/* Worker i's handle is dead with code: retry or fail its task, replace it. */
static void task_worker_died(subiter_pool *p, unsigned i, int code)
{
    struct task *t = take_task(p, i);
    const char *why = subiter_errmsg(p->w[i].h);

    if (code == SUBITER_ECHILD && t->deaths < p->o.max_retries &&
        !p->finalizing) {
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
        end_task(p, t, code, "task %llu: %s (attempt %u of %u)", t->id, why,
                 t->deaths + 1, p->o.max_retries + 1);
    } else {
        end_task(p, t, code, "task %llu: %s", t->id, why);
    }
    replace_worker(p, i);
}

/* Hand queued tasks to idle workers; fork workers for the rest while
 * fewer than `workers` run. */
static void dispatch(subiter_pool *p)
{
    unsigned i, idle = 0;

    if (p->paused_all || p->iterating) {
        return;
    }
    for (i = 0; i < p->n && p->qhead != NULL; i++) {
        struct pworker *w = &p->w[i];
        struct task *t;
        int r;

        if (w->st != W_IDLE || w->paused_at != 0) {
            continue;
        }
        t = p->qhead;
        r = subiter_start(w->h, t->input, t->len);
        if (r < 0) {
            /* Its worker died in Stand By: the pidfd will tell. */
            continue;
        }
        (void)pop_front(&p->qhead, &p->qtail);
        p->queued--;
        p->running++;
        w->st = W_BUSY;
        w->task = t;
        w->last_ns = subiter__now_ns();
        w->task_deadline =
            p->o.task_timeout_ms > 0
                ? w->last_ns + (int64_t)p->o.task_timeout_ms * 1000000
                : 0;
    }
    for (i = 0; i < p->n; i++) {
        idle += p->w[i].st == W_IDLE || p->w[i].st == W_STARTING;
    }
    for (i = 0; i < p->n && p->queued > idle; i++) {
        if (p->w[i].st == W_EMPTY &&
            p->w[i].init_failures < MAX_INIT_FAILURES &&
            spawn_worker(p, i) == 0) {
            idle++;
        }
    }
}

/* No worker can ever run the queued tasks: every slot's initializer keeps
 * failing. Fail them rather than wait forever. */
static void fail_unrunnable(subiter_pool *p)
{
    unsigned i;
    struct task *t;

    for (i = 0; i < p->n; i++) {
        if (p->w[i].st != W_EMPTY ||
            p->w[i].init_failures < MAX_INIT_FAILURES) {
            return;
        }
    }
    while ((t = pop_front(&p->qhead, &p->qtail)) != NULL) {
        p->queued--;
        end_task(p, t, SUBITER_EINIT,
                 "task %llu: no worker could be started: %s", t->id, p->errmsg);
    }
}

/* ---- finalize ---- */

static void cancel_all(subiter_pool *p)
{
    subiter *v[64];
    int rc[64];
    unsigned i, k = 0;
    struct task *t;

    while ((t = pop_front(&p->qhead, &p->qtail)) != NULL) {
        p->queued--;
        end_task(p, t, SUBITER_ECANCELED,
                 "task %llu: still queued when finalize's %d ms grace "
                 "ended",
                 t->id, p->final_grace_ms);
    }
    /* Every running worker at once, up to 64 in one batch. */
    for (i = 0; i < p->n; i++) {
        struct pworker *w = &p->w[i];

        if (w->st != W_BUSY) {
            continue;
        }
        t = take_task(p, i);
        end_task(p, t, SUBITER_ECANCELED,
                 "task %llu: still running on worker %u (pid %d) when "
                 "finalize's %d ms grace ended; aborted",
                 t->id, i, (int)subiter_pid(w->h), p->final_grace_ms);
        v[k++] = detach_worker(p, i);
        if (k == 64) {
            subiter__close_many(v, rc, k);
            k = 0;
        }
    }
    subiter__close_many(v, rc, k);
}

/* ---- reading the workers ---- */

/* What a failed shard returns from subiter_pool_next(). */
static int shard_failed(subiter_pool *p, unsigned i, int code);
static int worker_lost(subiter_pool *p, unsigned i, int code);

/* Worker i's shard died: rerun it on a replacement, skipping what was
 * delivered. Returns 0, or (errmsg set) why the replacement could not
 * take it. */
static int rerun_shard(subiter_pool *p, unsigned i)
{
    struct pworker *w = &p->w[i];
    unsigned long long delivered = w->delivered;
    int r;

    r = replace_worker(p, i);
    if (r < 0) {
        return r;
    }
    r = subiter__init_wait(w->h);
    if (r == 0) {
        r = subiter_start(w->h, p->input, p->input_len);
    }
    if (r < 0) {
        pfail(p, r, "worker %u (shard %u of %u), rerun: %s", i,
              p->o.rank * p->n + i, p->o.world_size * p->n,
              subiter_errmsg(w->h));
        close_worker(p, i);
        return r;
    }
    w->st = W_BUSY;
    w->restarts++;
    w->delivered = delivered;
    w->skip = delivered;
    w->last_ns = subiter__now_ns();
    return 0;
}

/* Worker i will never be ready: r is what subiter_open() would say. */
static void init_failed(subiter_pool *p, unsigned i, int r)
{
    p->init_code = r;
    pfail(p, r, "worker %u: %s", i, subiter_errmsg(p->w[i].h));
    p->w[i].init_failures++;
    close_worker(p, i);
    fail_unrunnable(p);
}

/*
 * Read what worker i has. Returns 1 with an event, 0 when nothing is
 * there, or (sharded iteration) the code that ends the iteration.
 */
static int step(subiter_pool *p, unsigned i, struct event *ev, bool items_ok)
{
    struct pworker *w = &p->w[i];
    int r;

    if (w->st == W_STARTING) {
        r = subiter__init_step(w->h);
        if (r == 1) {
            w->st = W_IDLE;
            w->init_failures = 0;
            w->idle_since = subiter__now_ns();
        } else if (r < 0) {
            init_failed(p, i, r);
        }
        return 0;
    }
    if (w->st != W_BUSY) {
        return 0;
    }
    for (;;) {
        r = subiter__next_nowait(w->h, &ev->item, items_ok);
        w->blocked = r == -EBUSY;
        if (r == -EAGAIN || r == -EBUSY || r == -ENOMEM) {
            /* -ENOMEM: the record stays; try again on the next turn. */
            return 0;
        }
        if (p->timeout_ms > 0) {
            w->last_ns = subiter__now_ns();
        }
        if (r == 1 && (p->draining || (p->iterating && w->skip > 0))) {
            /* Dropped: the next read gives its record back. */
            w->skip -= p->draining ? 0 : 1;
            continue;
        }
        break;
    }
    if (p->draining) {
        if (r == 0 || r == SUBITER_EITER) {
            w->st = W_IDLE;
            w->idle_since = subiter__now_ns();
            return 0;
        }
        return worker_lost(p, i, r);
    }
    if (p->iterating) {
        if (r == 1) {
            w->delivered++;
            ev->kind = SUBITER_POOL_ITEM;
            ev->worker = i;
            ev->task = NULL;
            p->held = w->h;
            return 1;
        }
        if (r == 0) {
            w->st = W_ENDED;
            return 0;
        }
        return worker_lost(p, i, r);
    }
    if (r == 1) {
        ev->kind = SUBITER_POOL_ITEM;
        ev->worker = i;
        ev->task = w->task;
        p->held = w->h;
        return 1;
    }
    if (r == 0 || r == SUBITER_EITER) {
        struct task *t = take_task(p, i);

        w->st = W_IDLE;
        w->idle_since = subiter__now_ns();
        if (r == 0) {
            end_task(p, t, 0, "%s", "");
        } else {
            end_task(p, t, r, "task %llu: %s", t->id, subiter_errmsg(w->h));
        }
        return 0;
    }
    return worker_lost(p, i, r);
}

static bool none_busy(subiter_pool *p)
{
    return count(p, is_busy) == 0;
}

static int run(subiter_pool *p, struct event *ev, bool (*done)(subiter_pool *),
               int64_t deadline_ns, bool items_ok);

/* STOP every busy worker and read them all, in the pool's one wait, until
 * each is back in Stand By; their items are dropped, and a worker that
 * dies meanwhile is replaced. Returns 0, or why the first one was lost
 * (with `say`, errmsg tells it too). */
static int stop_all(subiter_pool *p, bool say)
{
    struct event ev;
    unsigned j;

    p->draining = true;
    p->drain_say = say;
    p->drain_code = 0;
    for (j = 0; j < p->n; j++) {
        int r;

        if (p->w[j].st == W_BUSY && (r = subiter__send_stop(p->w[j].h)) < 0) {
            (void)worker_lost(p, j, r);
        }
    }
    (void)run(p, &ev, none_busy, 0, true);
    p->draining = false;
    for (j = 0; j < p->n; j++) {
        if (p->w[j].st == W_ENDED) {
            p->w[j].st = W_IDLE;
            p->w[j].idle_since = subiter__now_ns();
        }
    }
    return p->drain_code;
}

static int shard_failed(subiter_pool *p, unsigned i, int code)
{
    pfail(p, code, "worker %u (shard %u of %u): %s", i, p->o.rank * p->n + i,
          p->o.world_size * p->n, subiter_errmsg(p->w[i].h));
    p->iterating = false;
    p->held = NULL;
    /* Ready again after SUBITER_EITER; dead after anything else. */
    if (code == SUBITER_EITER) {
        p->w[i].st = W_IDLE;
    } else {
        replace_worker(p, i);
    }
    (void)stop_all(p, false);
    return code;
}

/* Worker i's handle is dead with `code` (it died, or was killed): rerun
 * or fail its shard, retry or fail its task, or (while stopping) just
 * replace it. Returns the code that ends a sharded iteration, or 0. */
static int worker_lost(subiter_pool *p, unsigned i, int code)
{
    if (p->draining) {
        if (p->drain_code == 0) {
            p->drain_code = code;
            if (p->drain_say) {
                pfail(p, code, "worker %u, while it stopped: %s", i,
                      subiter_errmsg(p->w[i].h));
            }
        }
        replace_worker(p, i);
        return 0;
    }
    if (p->iterating) {
        if (code != SUBITER_ECHILD || !p->o.restart_shards ||
            p->w[i].restarts >= p->o.max_retries) {
            return shard_failed(p, i, code);
        }
        code = rerun_shard(p, i);
        if (code < 0) {
            /* The rerun could not even start: that ends it. */
            p->iterating = false;
            p->held = NULL;
            (void)stop_all(p, false);
        }
        return code;
    }
    task_worker_died(p, i, code);
    return 0;
}

/* ---- waiting ---- */

/* Is the pool waiting on worker i (so that its silence counts)? */
static bool awaited(const subiter_pool *p, unsigned i)
{
    const struct pworker *w = &p->w[i];

    if (w->st == W_STARTING) {
        return w->paused_at == 0;
    }
    if (w->st != W_BUSY || w->paused_at != 0 || w->blocked) {
        return false;
    }
    return !(p->iterating && p->o.order == SUBITER_POOL_ORDERED &&
             i != p->turn);
}

/*
 * Kill workers past their task's time or silent for too long, retire
 * idle ones, end finalize's grace. Returns the next deadline (0: none),
 * or through *code an iteration-ending code.
 */
static int64_t housekeeping(subiter_pool *p, int *code)
{
    int64_t now = subiter__now_ns(), next = 0, d;
    unsigned i, alive = count(p, is_alive);
    unsigned min = p->o.min_workers;
    char why[128];

    *code = 0;
    for (i = 0; i < p->n; i++) {
        struct pworker *w = &p->w[i];

        if (w->st == W_BUSY && w->task_deadline != 0 && w->paused_at == 0) {
            if (now >= w->task_deadline) {
                snprintf(why, sizeof why, "ran task %llu past its %d ms limit",
                         w->task->id, p->o.task_timeout_ms);
                (void)worker_lost(p, i,
                                  subiter__kill(w->h, SUBITER_ETIMEDOUT, why));
                continue;
            }
            next =
                next == 0 || w->task_deadline < next ? w->task_deadline : next;
        }
        if (p->timeout_ms > 0 && awaited(p, i)) {
            int64_t since = w->last_ns > p->call_ns ? w->last_ns : p->call_ns;

            d = since + (int64_t)p->timeout_ms * 1000000;
            if (now >= d) {
                snprintf(why, sizeof why, "sent nothing for %d ms",
                         p->timeout_ms);
                if (w->st == W_STARTING) {
                    init_failed(p, i,
                                subiter__kill(w->h, SUBITER_ETIMEDOUT, why));
                    continue;
                }
                *code = worker_lost(
                    p, i, subiter__kill(w->h, SUBITER_ETIMEDOUT, why));
                if (*code < 0) {
                    return 0;
                }
                continue;
            }
            next = next == 0 || d < next ? d : next;
        }
        if (w->st == W_IDLE && !p->iterating && alive > min &&
            p->qhead == NULL && w->paused_at == 0) {
            d = w->idle_since + (int64_t)p->o.idle_ms * 1000000;
            if (now >= d) {
                close_worker(p, i);
                alive--;
                continue;
            }
            next = next == 0 || d < next ? d : next;
        }
    }
    if (p->finalizing && (p->queued > 0 || p->running > 0)) {
        if (now >= p->final_deadline) {
            cancel_all(p);
        } else {
            next = next == 0 || p->final_deadline < next ? p->final_deadline
                                                         : next;
        }
    }
    return next;
}

/* Worker i's pidfd is readable: it exited. Returns an iteration-ending
 * code, or 0. */
static int worker_exited(subiter_pool *p, unsigned i)
{
    struct pworker *w = &p->w[i];

    w->exited = true;
    subiter__mark_exited(w->h);
    switch (w->st) {
    case W_IDLE:
        (void)subiter__kill(w->h, SUBITER_ECHILD, NULL);
        replace_worker(p, i);
        return 0;
    case W_BUSY:
        if (p->iterating || p->draining) {
            /* Its shard is lost (its published items included) or rerun:
             * either way now, not when its turn comes. */
            return worker_lost(p, i, subiter__kill(w->h, SUBITER_ECHILD, NULL));
        }
        return 0; /* step() reports it once its ring is read */
    default:
        return 0; /* starting: step(); ended shard: the next start */
    }
}

/* Tell every worker that may write that the parent is about to sleep.
 * true when one was told just now (a worker forked since the last look
 * included): the caller looks at the rings once more before it sleeps. */
static bool arm_all(subiter_pool *p)
{
    bool fresh = false;
    unsigned i;

    for (i = 0; i < p->n; i++) {
        struct pworker *w = &p->w[i];

        if ((w->st == W_STARTING || w->st == W_BUSY) && !w->armed) {
            subiter__arm(w->h, true);
            w->armed = true;
            fresh = true;
        }
    }
    return fresh;
}

static void disarm_all(subiter_pool *p)
{
    unsigned i;

    for (i = 0; i < p->n; i++) {
        if (p->w[i].armed && p->w[i].h != NULL) {
            subiter__arm(p->w[i].h, false);
        }
        p->w[i].armed = false;
    }
}

/* Sleep in one poll() over every worker's eventfd and pidfd until one of
 * them fires or deadline_ns (0: none). Returns 0 or an iteration-ending
 * code. */
static int sleep_all(subiter_pool *p, int64_t deadline_ns)
{
    unsigned i, nfds = 0;
    bool fallback = false;
    int timeout = -1, n, r;
    uint64_t drain;

    for (i = 0; i < p->n; i++) {
        struct pworker *w = &p->w[i];
        int efd, pidfd;

        if (w->st == W_EMPTY) {
            continue;
        }
        subiter__fds(w->h, &efd, &pidfd);
        if (w->st == W_STARTING || w->st == W_BUSY) {
            p->pfd[nfds].fd = efd;
            p->pfd[nfds].events = POLLIN;
            p->pfd[nfds].revents = 0;
            p->pfd_worker[nfds++] = i;
        }
        if (w->exited) {
            continue;
        }
        if (pidfd < 0) {
            fallback = true;
            continue;
        }
        p->pfd[nfds].fd = pidfd;
        p->pfd[nfds].events = POLLIN;
        p->pfd[nfds].revents = 0;
        p->pfd_worker[nfds++] = i;
    }
    if (deadline_ns != 0) {
        int64_t left = deadline_ns - subiter__now_ns();

        timeout = left <= 0 ? 0 : (int)((left + 999999) / 1000000);
    }
    if (fallback && (timeout < 0 || timeout > FALLBACK_SLICE_MS)) {
        timeout = FALLBACK_SLICE_MS;
    }
    n = poll(p->pfd, nfds, timeout);
    if (n < 0 && errno != EINTR) {
        return 0;
    }
    for (i = 0; n > 0 && i < nfds; i++) {
        unsigned k = p->pfd_worker[i];
        int efd, pidfd;

        if (p->pfd[i].revents == 0 || p->w[k].st == W_EMPTY) {
            continue;
        }
        subiter__fds(p->w[k].h, &efd, &pidfd);
        if (p->pfd[i].fd == efd) {
            /* Non-blocking; emptied for the next sleep. */
            while (read(efd, &drain, sizeof drain) < 0 && errno == EINTR) {
            }
        } else if (!p->w[k].exited) {
            r = worker_exited(p, k);
            if (r < 0) {
                return r;
            }
        }
    }
    for (i = 0; fallback && i < p->n; i++) {
        if (p->w[i].st != W_EMPTY && !p->w[i].exited &&
            subiter__check_exit(p->w[i].h)) {
            r = worker_exited(p, i);
            if (r < 0) {
                return r;
            }
        }
    }
    return 0;
}

/* Every shard ended: the workers are idle again. */
static int all_ended(subiter_pool *p)
{
    unsigned i;

    p->iterating = false;
    for (i = 0; i < p->n; i++) {
        if (p->w[i].st == W_ENDED) {
            p->w[i].st = W_IDLE;
            p->w[i].idle_since = subiter__now_ns();
        }
    }
    return 2;
}

/* Sharded iteration, or tasks: read the workers in their order. Returns 1
 * with an event, 0 when nothing is there, 2 when every shard ended, or a
 * code that ended the iteration. */
static int scan(subiter_pool *p, struct event *ev, bool items_ok)
{
    unsigned i, k;
    int r;

    if (p->iterating && p->o.order == SUBITER_POOL_ORDERED) {
        for (k = 0; k < p->n; k++) {
            i = p->turn;
            if (p->w[i].st == W_BUSY) {
                r = step(p, i, ev, true);
                if (r == 1) {
                    p->turn = (i + 1) % p->n;
                }
                if (r != 0 || p->w[i].st == W_BUSY) {
                    return r;
                }
            }
            /* Its shard ended: the next one's turn. */
            p->turn = (i + 1) % p->n;
        }
        return all_ended(p);
    }
    for (k = 0; k < p->n; k++) {
        i = (p->turn + k) % p->n;
        r = step(p, i, ev, items_ok);
        if (r != 0) {
            if (r == 1) {
                p->turn = (i + 1) % p->n;
            }
            return r;
        }
    }
    if (p->iterating && count(p, is_busy) == 0) {
        return all_ended(p);
    }
    return 0;
}

/*
 * Drive the pool: read workers, hand out tasks, enforce the deadlines,
 * sleep when nothing moves. Items of tasks go to on_result when it is set.
 * Returns 1 with an event in *ev, 2 when the sharded iteration ended, 0
 * once done(p) holds, -ETIMEDOUT at deadline_ns (0: none), or the code
 * that ended the iteration.
 */
static int run(subiter_pool *p, struct event *ev, bool (*done)(subiter_pool *),
               int64_t deadline_ns, bool items_ok)
{
    unsigned spins = 0, turns = 0;
    int64_t next = 0;
    int r, code;

    p->call_ns = subiter__now_ns();
    for (;; turns++) {
        /* The clock and the deadlines on every 64th turn, and always
         * before a sleep: while workers talk, they can wait. */
        if (turns % 64 == 0 || spins >= SUBITER__SPIN_LIMIT) {
            next = housekeeping(p, &code);
            if (code < 0) {
                r = code;
                break;
            }
        }
        r = scan(p, ev, items_ok);
        /* After the scan: a worker it found ready takes a task before
         * the pool may sleep (nothing would wake it for that). */
        dispatch(p);
        if (r == 1 && !p->iterating && callbacks(p)) {
            p->in_cb = true;
            p->o.on_result(p, ev->task->id, ev->item.data, ev->item.len,
                           p->o.user);
            p->in_cb = false;
            subiter__give_back(p->held, true);
            p->held = NULL;
            spins = 0;
            continue;
        }
        if (r != 0) {
            break;
        }
        if (done != NULL && done(p)) {
            break;
        }
        if (deadline_ns != 0 && turns % 64 == 0 &&
            subiter__now_ns() >= deadline_ns) {
            r = -ETIMEDOUT;
            break;
        }
        if (spins < SUBITER__SPIN_LIMIT) {
            subiter__spin(spins++);
            continue;
        }
        if (arm_all(p)) {
            continue;
        }
        if (deadline_ns != 0 && (next == 0 || deadline_ns < next)) {
            next = deadline_ns;
        }
        r = sleep_all(p, next);
        disarm_all(p);
        if (r < 0) {
            return r;
        }
    }
    disarm_all(p);
    return r;
}

static bool no_task(subiter_pool *p)
{
    return p->queued == 0 && p->running == 0;
}

static bool none_starting(subiter_pool *p)
{
    return count(p, is_starting) == 0;
}

static bool task_event(subiter_pool *p)
{
    return p->ehead != NULL || no_task(p);
}

/* Without callbacks, can the queue ever make room? Only if some worker
 * can take a task, or finish one without subiter_pool_next(). */
static bool stuck(subiter_pool *p)
{
    unsigned i;

    if (callbacks(p) || p->queued < p->o.queue_max) {
        return false;
    }
    if (p->paused_all) {
        return true;
    }
    for (i = 0; i < p->n; i++) {
        const struct pworker *w = &p->w[i];

        if (w->st == W_STARTING || w->st == W_IDLE ||
            (w->st == W_BUSY && !w->blocked) ||
            (w->st == W_EMPTY && w->init_failures < MAX_INIT_FAILURES)) {
            return false;
        }
    }
    return true;
}

static bool room_or_stuck(subiter_pool *p)
{
    return p->queued < p->o.queue_max || stuck(p);
}

/* ---- the API ---- */

/* Give back the item view and the task end of the last call. */
static void settle(subiter_pool *p)
{
    if (p->held != NULL) {
        subiter__give_back(p->held, true);
        p->held = NULL;
    }
    free_task(p->delivered);
    p->delivered = NULL;
}

static int read_pool_opts(subiter_pool *p, const subiter_pool_opts *user)
{
    subiter_pool_opts d = SUBITER_POOL_OPTS_INIT;
    subiter_opts wd = SUBITER_OPTS_INIT;
    const unsigned char *extra;
    size_t i;
    long cpus;

    p->o = d;
    p->wopts = wd;
    /* Each worker runs further ahead than a lone one: an ordered merge
     * waits for one worker while the others fill up, and a wake-up per
     * 16 items (the lone default's hysteresis) costs more than the items
     * when workers and parent share the cores. */
    p->wopts.buffer_items = SUBITER_POOL_DEFAULT_BUFFER_ITEMS;
    if (user != NULL) {
        if (user->size < sizeof *user) {
            return -EINVAL;
        }
        extra = (const unsigned char *)user + sizeof *user;
        for (i = 0; i < user->size - sizeof *user; i++) {
            if (extra[i] != 0) {
                return -EINVAL;
            }
        }
        p->o = *user;
        p->o.size = sizeof *user;
    }
    if (p->o.worker != NULL) {
        /* Checked in full (size, unknown fields) by the first worker's
         * open; copied here for the replacements. */
        if (p->o.worker->size < sizeof p->wopts) {
            return -EINVAL;
        }
        p->wopts = *p->o.worker;
        p->wopts.size = sizeof p->wopts;
        p->o.worker = NULL;
    }
    if (p->o.workers == 0) {
        cpus = sysconf(_SC_NPROCESSORS_ONLN);
        p->o.workers = cpus > 0 ? (unsigned)cpus : 1;
    }
    if (p->o.min_workers == 0) {
        p->o.min_workers = p->o.workers;
    }
    if (p->o.workers > 4096 || p->o.min_workers > p->o.workers ||
        p->o.world_size == 0 || p->o.rank >= p->o.world_size ||
        p->o.world_size > UINT32_MAX / p->o.workers ||
        (p->o.order != SUBITER_POOL_ORDERED &&
         p->o.order != SUBITER_POOL_UNORDERED) ||
        p->o.queue_max == 0 || p->o.idle_ms < 0 ||
        (p->o.restart_shards != 0 && p->o.restart_shards != 1)) {
        return -EINVAL;
    }
    p->timeout_ms = p->wopts.timeout_ms > 0 ? p->wopts.timeout_ms : 0;
    return 0;
}

/* The same rules as subiter_start()'s, with the pool's errmsg. */
static int check_input(subiter_pool *p, const void *input, size_t len)
{
    if (input == NULL && len > 0) {
        return pfail(p, -EINVAL, "NULL input of %zu bytes", len);
    }
    if (len > SUBITER_INPUT_MAX) {
        return pfail(p, -EMSGSIZE,
                     "input of %zu bytes is over the %u-byte limit", len,
                     SUBITER_INPUT_MAX);
    }
    return 0;
}

/* Fork the missing workers of the first `want` slots and wait for them. */
static int fill(subiter_pool *p, unsigned want)
{
    struct event ev;
    unsigned i;
    int r;

    p->init_code = 0;
    for (i = 0; i < want; i++) {
        if (p->w[i].st != W_EMPTY &&
            (p->w[i].exited || subiter__check_exit(p->w[i].h))) {
            /* It died in Stand By since: replace it now, rather than
             * fail the iteration it has not begun. */
            (void)subiter__kill(p->w[i].h, SUBITER_ECHILD, NULL);
            close_worker(p, i);
            p->stats.replaced++;
        }
        if (p->w[i].st == W_EMPTY) {
            p->w[i].init_failures = 0;
            r = spawn_worker(p, i);
            if (r < 0) {
                return r;
            }
        }
    }
    r = run(p, &ev, none_starting, 0, false);
    if (r < 0) {
        return r;
    }
    for (i = 0; i < want; i++) {
        if (p->w[i].st == W_EMPTY) {
            return p->init_code != 0 ? p->init_code : SUBITER_ECHILD;
        }
    }
    return 0;
}

int subiter_pool_open(subiter_pool **out, subiter_iter_fn fn, void *arg,
                      const subiter_pool_opts *opts)
{
    subiter_pool *p;
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
    r = read_pool_opts(p, opts);
    if (r < 0) {
        return pfail(p, r, "invalid pool options");
    }
    if (fn == NULL) {
        return pfail(p, -EINVAL, "no generator given");
    }
    p->fn = fn;
    p->arg = arg;
    p->n = p->o.workers;
    p->w = subiter__malloc(p->n * sizeof *p->w);
    p->pfd = subiter__malloc(2 * p->n * sizeof *p->pfd);
    p->pfd_worker = subiter__malloc(2 * p->n * sizeof *p->pfd_worker);
    if (p->w == NULL || p->pfd == NULL || p->pfd_worker == NULL) {
        return pfail(p, -ENOMEM, "out of memory");
    }
    memset(p->w, 0, p->n * sizeof *p->w);
    r = fill(p, p->o.min_workers);
    if (r < 0) {
        return r;
    }
    p->errmsg[0] = '\0';
    return 0;
}

int subiter_pool_start(subiter_pool *p, const void *input, size_t len)
{
    unsigned i;
    int r;

    if (p == NULL || p->w == NULL) {
        return -EINVAL;
    }
    if (p->in_cb) {
        return -EBUSY;
    }
    settle(p);
    if (p->iterating) {
        return pfail(p, -EINVAL, "an iteration is running");
    }
    if (!no_task(p) || p->ehead != NULL) {
        return pfail(p, -EINVAL, "tasks are queued, running or unread");
    }
    r = check_input(p, input, len);
    if (r < 0) {
        return r;
    }
    r = fill(p, p->n);
    if (r < 0) {
        return r;
    }
    if (len > 0) {
        memcpy(p->input, input, len);
    }
    p->input_len = len;
    for (i = 0; i < p->n; i++) {
        struct pworker *w = &p->w[i];

        r = subiter_start(w->h, p->input, len);
        if (r < 0) {
            /* Only a dead worker refuses: end what was started. */
            p->iterating = true;
            return shard_failed(p, i, r);
        }
        w->st = W_BUSY;
        w->delivered = 0;
        w->skip = 0;
        w->restarts = 0;
        w->blocked = false;
        w->last_ns = subiter__now_ns();
    }
    p->iterating = true;
    p->started = true;
    p->turn = 0;
    p->errmsg[0] = '\0';
    return 0;
}

static void to_item(const struct event *ev, subiter_pool_item *item)
{
    item->kind = SUBITER_POOL_ITEM;
    item->data = ev->item.data;
    item->len = ev->item.len;
    item->worker = ev->worker;
    item->task = ev->task != NULL ? ev->task->id : 0;
}

int subiter_pool_next(subiter_pool *p, subiter_pool_item *item)
{
    struct event ev;
    struct task *t;
    int r;

    if (item != NULL) {
        memset(item, 0, sizeof *item);
        item->errmsg = "";
    }
    if (p == NULL || item == NULL || p->w == NULL) {
        return -EINVAL;
    }
    if (p->in_cb) {
        return -EBUSY;
    }
    settle(p);
    if (p->iterating) {
        /* While items flow, one look is enough: no clock, no deadline. */
        r = scan(p, &ev, true);
        if (r == 0) {
            r = run(p, &ev, NULL, 0, true);
        }
        if (r == 1) {
            to_item(&ev, item);
            return 1;
        }
        return r == 2 ? 0 : r;
    }
    if (p->next_id == 0) {
        return p->started ? 0
                          : pfail(p, -EINVAL,
                                  "neither an iteration nor a "
                                  "task was started");
    }
    for (;;) {
        t = pop_front(&p->ehead, &p->etail);
        if (t != NULL) {
            p->delivered = t;
            item->kind = SUBITER_POOL_TASK_END;
            item->task = t->id;
            item->code = t->code;
            item->errmsg = t->errmsg != NULL ? t->errmsg : "";
            return 1;
        }
        if (no_task(p)) {
            return 0;
        }
        r = run(p, &ev, task_event, 0, true);
        if (r == 1) {
            to_item(&ev, item);
            return 1;
        }
        if (r < 0) {
            return r;
        }
    }
}

int subiter_pool_stop(subiter_pool *p)
{
    if (p == NULL || p->w == NULL) {
        return -EINVAL;
    }
    if (p->in_cb) {
        return -EBUSY;
    }
    settle(p);
    if (!p->iterating) {
        return 0;
    }
    p->iterating = false;
    return stop_all(p, true);
}

int subiter_pool_submit(subiter_pool *p, const void *input, size_t len,
                        int flags, unsigned long long *task)
{
    struct event ev;
    struct task *t;
    int r;

    if (task != NULL) {
        *task = 0;
    }
    if (p == NULL || p->w == NULL || (flags & ~SUBITER_POOL_NOWAIT) != 0) {
        return -EINVAL;
    }
    if (p->in_cb) {
        return -EBUSY;
    }
    if (p->finalizing) {
        return pfail(p, -ESHUTDOWN, "the pool is being finalized");
    }
    if (p->iterating) {
        return pfail(p, -EINVAL, "a sharded iteration is running");
    }
    r = check_input(p, input, len);
    if (r < 0) {
        return r;
    }
    settle(p);
    if (p->queued >= p->o.queue_max) {
        if (flags & SUBITER_POOL_NOWAIT) {
            return pfail(p, -EAGAIN, "%u tasks are queued already", p->queued);
        }
        r = run(p, &ev, room_or_stuck, 0, callbacks(p));
        if (r < 0) {
            return r;
        }
        if (p->queued >= p->o.queue_max) {
            return pfail(p, -EDEADLK, "the queue is full and %s",
                         p->paused_all ? "the pool is paused"
                                       : "every busy worker waits for "
                                         "subiter_pool_next() to take its "
                                         "items");
        }
    }
    t = subiter__malloc(sizeof *t + len);
    if (t == NULL) {
        return pfail(p, -ENOMEM, "out of memory");
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
    if (task != NULL) {
        *task = t->id;
    }
    dispatch(p);
    return 0;
}

int subiter_pool_wait(subiter_pool *p, int timeout_ms)
{
    struct event ev;
    int64_t deadline = 0;

    if (p == NULL || p->w == NULL) {
        return -EINVAL;
    }
    if (p->in_cb) {
        return -EBUSY;
    }
    if (!callbacks(p)) {
        return pfail(p, -EINVAL,
                     "no on_result callback: read the results "
                     "with subiter_pool_next()");
    }
    settle(p);
    if (timeout_ms > 0) {
        deadline = subiter__now_ns() + (int64_t)timeout_ms * 1000000;
    }
    return run(p, &ev, no_task, deadline, true);
}

int subiter_pool_finalize(subiter_pool *p, int grace_ms)
{
    struct event ev;
    unsigned long long before;
    int r;

    if (p == NULL || p->w == NULL || grace_ms < 0) {
        return -EINVAL;
    }
    if (p->in_cb) {
        return -EBUSY;
    }
    settle(p);
    if (!p->finalizing) {
        p->finalizing = true;
        p->final_grace_ms = grace_ms;
        p->final_deadline = subiter__now_ns() + (int64_t)grace_ms * 1000000;
    }
    if (!callbacks(p)) {
        return 0;
    }
    before = p->stats.cancelled;
    r = run(p, &ev, no_task, 0, true);
    if (r < 0) {
        return r;
    }
    return (int)(p->stats.cancelled - before);
}

static int pause_one(subiter_pool *p, unsigned i, bool pause)
{
    struct pworker *w = &p->w[i];
    int64_t now = subiter__now_ns(), d;

    if (w->st == W_EMPTY) {
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

static int pause_resume(subiter_pool *p, int worker, bool pause)
{
    unsigned i;

    if (p == NULL || p->w == NULL) {
        return -EINVAL;
    }
    if (p->in_cb) {
        return -EBUSY;
    }
    if (worker == -1) {
        p->paused_all = pause;
        for (i = 0; i < p->n; i++) {
            (void)pause_one(p, i, pause);
        }
        return 0;
    }
    if (worker < 0 || (unsigned)worker >= p->n) {
        return pfail(p, -EINVAL, "no worker %d (the pool has %u)", worker,
                     p->n);
    }
    if (pause_one(p, (unsigned)worker, pause) < 0) {
        return pfail(p, -EINVAL, "worker %d is not running", worker);
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

int subiter_pool_get_stats(const subiter_pool *p, subiter_pool_stats *out)
{
    subiter_pool_stats s;

    if (p == NULL || out == NULL || out->size < sizeof s) {
        return -EINVAL;
    }
    s = p->stats;
    s.size = sizeof s;
    s.workers = p->w != NULL ? count(p, is_alive) : 0;
    s.busy = p->w != NULL ? count(p, is_busy) : 0;
    s.queued = p->queued;
    memcpy(out, &s, sizeof s);
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
    settle(p);
    v = p->n > 0 ? subiter__malloc(p->n * sizeof *v) : NULL;
    rc = p->n > 0 ? subiter__malloc(p->n * sizeof *rc) : NULL;
    for (i = 0; p->w != NULL && i < p->n; i++) {
        subiter *h = detach_worker(p, i);

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
    free_list(p->qhead);
    free_list(p->ehead);
    for (i = 0; p->w != NULL && i < p->n; i++) {
        free_task(p->w[i].task);
    }
    subiter__free(v);
    subiter__free(rc);
    subiter__free(p->w);
    subiter__free(p->pfd);
    subiter__free(p->pfd_worker);
    subiter__free(p);
    return r;
}
