/* pool.h: the pool's private structures and what its files share; never
 * installed.
 *
 * A pool is n slots, each holding at most one worker (a subiter handle),
 * driven by one loop, pool__run(), in phases as libuv's uv_run():
 *
 *   (a) timers     task deadlines, inactivity, idle retirement and
 *                  finalize's grace turn into events (pool__timers());
 *   (b) read       each worker's ring says what it did (pool__read());
 *   (c) handle     each of those events goes to its handler;
 *   (d) follow-up  what the handlers queued: spawn the slots marked to
 *                  respawn, start the reruns whose initializer is ready,
 *                  hand out queued tasks, end the pool's stop or the
 *                  iteration (pool__follow_up());
 *   (e) stop when the caller's condition holds (or an item is there for
 *                  it); else spin, then sleep on every worker at once
 *                  (pool__sleep(), which turns a pidfd into an event).
 *
 * Why the loop never re-enters itself: the loop is the only place that
 * waits for what workers do, and the public calls are its only callers
 * (pool__fill() runs it on their behalf). Handlers are leaf functions:
 * they change slot and pool state, mark slots (respawn, rerun), queue
 * tasks and set the pool's pending result, then return to the loop; none
 * of them, nor anything they call, waits for an event or calls the loop
 * (closing a dead or retired worker waits for its exit, bounded by its
 * grace, and reads nothing; killing a hung one first waits at most
 * SUBITER__TRACE_WAIT_MS for its stack, trace.c). Work that needs the
 * loop (stop the other shards, wait for a rerun's initializer) is a state
 * (POOL_STOPPING, a STARTING slot marked rerun) that the running loop
 * carries to its end,
 * so every public call returns with the pool out of POOL_STOPPING.
 * p->in_loop, set around the loop, makes a re-entry abort in any build
 * with assert() on (NDEBUG is never defined by the build).
 */
#ifndef SUBITER_POOL_H
#define SUBITER_POOL_H

#include <poll.h>

#include "internal.h"

/* A slot whose replacements keep failing their initializer is given up
 * after this many in a row (until a new start or submit). */
#define POOL_MAX_INIT_FAILURES 3

/* A slot's state. Pause (SIGSTOP) is orthogonal: any live slot may be
 * paused, see pool_slot.paused_at. */
enum slot_state {
    SLOT_EMPTY,    /* no worker (maybe marked respawn) */
    SLOT_STARTING, /* forked, initializer running */
    SLOT_IDLE,     /* in Stand By */
    SLOT_BUSY,     /* running a task or its shard */
    SLOT_STOPPING, /* STOP sent; its items are dropped until it is back */
    SLOT_ENDED,    /* its shard ended; in Stand By */
    SLOT_NSTATES
};

/* The pool's state. */
enum pool_state {
    POOL_IDLE,       /* no iteration; tasks are taken */
    POOL_ITERATING,  /* a sharded iteration runs */
    POOL_STOPPING,   /* the shards are being stopped (stop, or one failed) */
    POOL_FINALIZING, /* no iteration; no new task; the queue drains */
};

struct pool_task {
    struct pool_task *next;
    unsigned long long id;
    unsigned deaths; /* attempts whose worker died */
    void *user;      /* subiter_task_opts.user */
    int timeout_ms;  /* subiter_task_opts.timeout_ms; 0: the pool's */
    bool cancelled;  /* subiter_pool_cancel(): it ends with ECANCELED */
    int code;        /* how it ended */
    char *errmsg;    /* why, when code != 0 */
    size_t len;
    unsigned char input[];
};

struct pool_slot {
    subiter *h;
    enum slot_state st;
    struct pool_task *task;
    int64_t task_deadline; /* 0: none */
    bool task_late;        /* past the deadline with words unread: read them */
    uint32_t late_mark;    /* ...up to here (the ring's end at the deadline) */
    int64_t last_ns;       /* last sign of life, for the inactivity timeout */
    int64_t idle_since;
    int64_t paused_at;            /* 0: running */
    bool blocked;                 /* an item waits at the head of its ring */
    bool exited;                  /* its pidfd said so; the handle reports it */
    bool armed;                   /* told that the parent sleeps */
    bool respawn;                 /* EMPTY: fork a replacement (follow-up) */
    bool rerun;                   /* its replacement reruns the shard */
    unsigned long long delivered; /* items of its shard delivered */
    unsigned restarts;            /* reruns of its shard (failed ones too) */
    unsigned init_failures;
    int64_t stop_deadline; /* STOPPING: the end of its grace_ms */
    unsigned tasks_run;    /* by this worker, for max_tasks_per_worker */
    int ev_efd, ev_pidfd;  /* what p->evfd's epoll set watches */
};

/* The item the loop found for the caller. */
struct pool_event {
    unsigned worker;
    subiter_item item;
    struct pool_task *task;
};

struct subiter_pool {
    subiter_iter_fn fn;
    void *arg;
    subiter_pool_opts o;
    subiter_opts wopts;
    unsigned n; /* slots: o.workers */
    struct pool_slot *w;
    unsigned nstate[SLOT_NSTATES]; /* slots in each state */
    struct pollfd *pfd;
    unsigned *pfd_worker;
    int timeout_ms; /* each worker's inactivity timeout */

    enum pool_state st;
    enum pool_state rest; /* IDLE or FINALIZING: where an iteration ends */
    bool in_loop;         /* inside pool__run() */
    unsigned moves;       /* changes of p->st and the slots' states */
    bool followup;        /* a handler queued follow-up work */
    bool in_cb;
    bool paused_all; /* the user's pause(-1): no task is handed out */
    int pending;     /* the code that ends the iteration or the stop */
    struct pool_event ev;
    subiter *held; /* handle whose item view is out */

    /* sharded iteration */
    bool started; /* one was started: next() returns 0 after it */
    unsigned turn;
    uint64_t iteration; /* the last one started, 0-based (subiter_seed()) */
    unsigned char input[SUBITER_INPUT_MAX];
    size_t input_len;

    /* tasks */
    struct pool_task *qhead, *qtail; /* waiting for a worker */
    struct pool_task *ehead, *etail; /* ended, for subiter_pool_next() */
    struct pool_task *delivered;     /* the end next() returned last */
    unsigned queued;
    unsigned running;
    unsigned long long next_id;
    int64_t final_deadline;
    int final_grace_ms;

    /* event loops (pool_evloop.c) */
    struct subiter__evfd evfd;
    bool park;          /* this call parks the pool when its time is up */
    bool parked;        /* armed after -EAGAIN; unparked by the loop */
    bool polling;       /* a timed next returned -EAGAIN: keep call_ns */
    int64_t next_timer; /* the loop's next deadline when it parked */
    struct pool_task *cb_task; /* the task of on_error, while it runs */

    int init_code; /* why the last worker failed to start */
    int64_t call_ns;
    int64_t last_wait_ns; /* wait.h: subiter__spin_window() */
    subiter_pool_stats stats;
    char errmsg[SUBITER__POOL_ERRMSG_MAX];
    subiter_errinfo ei; /* what subiter_pool_get_errinfo() reports */
    char *ei_backtrace; /* ei.backtrace's copy (the worker may be gone) */
};

/* No iteration runs or stops: tasks may. */
static inline bool pool__taking_tasks(const subiter_pool *p)
{
    return p->st == POOL_IDLE || p->st == POOL_FINALIZING;
}

/* Nothing is forked while the pool stops its shards or finalizes: a
 * Ctrl-C handler's stop, finalize or close must not start workers that
 * outlive it. Replacements wait, marked respawn, for the next call that
 * runs the loop in another state. */
static inline bool pool__may_fork(const subiter_pool *p)
{
    return p->st != POOL_STOPPING && p->st != POOL_FINALIZING &&
           p->rest != POOL_FINALIZING;
}

/* May the worker of a slot write to the parent while it waits? */
static inline bool pool__may_write(const struct pool_slot *w)
{
    return w->st == SLOT_STARTING || w->st == SLOT_BUSY ||
           w->st == SLOT_STOPPING;
}

/* Earlier of two deadlines, 0 meaning none. */
static inline int64_t pool__earlier(int64_t a, int64_t b)
{
    return a == 0 || (b != 0 && b < a) ? b : a;
}

/* ---- pool_slot.c: states and slots ---- */

/* The one place a slot changes state; asserts that the move is legal. */
SUBITER__HIDDEN void pool__slot_set(subiter_pool *p, unsigned i,
                                    enum slot_state to);
/* The one place the pool changes state; asserts that the move is legal. */
SUBITER__HIDDEN void pool__set(subiter_pool *p, enum pool_state to);
/* assert() the bookkeeping: O(slots + queue), at the loop's ends only. */
SUBITER__HIDDEN void pool__check(const subiter_pool *p);
/* Fork slot i's worker (EMPTY to STARTING); errmsg set on failure. */
SUBITER__HIDDEN int pool__spawn(subiter_pool *p, unsigned i);
/* Take the handle out of slot i (to be closed by the caller): EMPTY. */
SUBITER__HIDDEN subiter *pool__detach(subiter_pool *p, unsigned i);
/* End slot i's process (ABORT, then signals after grace): EMPTY. */
SUBITER__HIDDEN void pool__close_slot(subiter_pool *p, unsigned i);
/* Close slot i's dead worker and mark the slot for a replacement. */
SUBITER__HIDDEN void pool__replace(subiter_pool *p, unsigned i);
/* SIGSTOP or SIGCONT slot i's worker; -EINVAL when it has none. */
SUBITER__HIDDEN int pool__pause_one(subiter_pool *p, unsigned i, bool pause);

/* ---- pool.c: the loop, the handlers every mode shares, the calls ---- */

SUBITER__HIDDEN int pool__fail(subiter_pool *p, int code, const char *fmt, ...)
    SUBITER_PRINTF(3, 4);
/* The last failure was slot i's worker's (task: its task id, 0 for a
 * shard): errinfo takes the worker's, with its index and the task. */
SUBITER__HIDDEN void pool__note(subiter_pool *p, unsigned i,
                                unsigned long long task);
SUBITER__HIDDEN bool pool__callbacks(const subiter_pool *p);
/* Read slot i (BUSY or STOPPING) once: 1 with p->ev, else 0. */
SUBITER__HIDDEN int pool__read_slot(subiter_pool *p, unsigned i, bool items_ok);
/* Handler: slot i's handle is dead with `code`. */
SUBITER__HIDDEN void pool__lost(subiter_pool *p, unsigned i, int code);
/* Handler: slot i's pidfd said the worker exited. */
SUBITER__HIDDEN void pool__exited(subiter_pool *p, unsigned i);
/*
 * The loop. Returns 1 with an item in p->ev (task items go to on_result
 * instead when it is set), 0 once done(p) holds, -ETIMEDOUT at
 * deadline_ns (0: none). Only the public calls call it (pool__fill()
 * on their behalf).
 */
SUBITER__HIDDEN int pool__run(subiter_pool *p,
                              bool (*done)(const subiter_pool *),
                              int64_t deadline_ns, bool items_ok);
/* Condition for pool__run(): no iteration runs or stops any more. */
SUBITER__HIDDEN bool pool__iteration_over(const subiter_pool *p);
/* Read the user's options (NULL: the defaults) into p->o and p->wopts,
 * with the defaults filled in and every limit checked (pool_opts.c). */
SUBITER__HIDDEN int pool__read_opts(subiter_pool *p,
                                    const subiter_pool_opts *user);
/* For the public calls: the entry checks (-EINVAL, -EBUSY), giving back
 * what the last call lent, the checks of an input, and forking the
 * missing workers of the first `want` slots (the loop until none is
 * starting). */
SUBITER__HIDDEN int pool__enter(subiter_pool *p);
SUBITER__HIDDEN void pool__settle(subiter_pool *p);
SUBITER__HIDDEN int pool__check_input(subiter_pool *p, const void *input,
                                      size_t len);
SUBITER__HIDDEN int pool__fill(subiter_pool *p, unsigned want);

/* ---- pool_shards.c ---- */

/* Read the shards in the merge's order: 1 with an item in p->ev. */
SUBITER__HIDDEN int pool__merge(subiter_pool *p);
/* Handler: what slot i's shard read gave (r as from next_nowait). */
SUBITER__HIDDEN int pool__shard_read(subiter_pool *p, unsigned i, int r);
/* Handler: slot i's shard failed with code; the others are stopped. */
SUBITER__HIDDEN void pool__shard_failed(subiter_pool *p, unsigned i, int code);
/* Handler: slot i's worker of the running iteration is dead. */
SUBITER__HIDDEN void pool__shard_lost(subiter_pool *p, unsigned i, int code);
/* Handler: slot i, a rerun's replacement, could not start its shard. */
SUBITER__HIDDEN void pool__rerun_failed(subiter_pool *p, unsigned i, int code);
/* POOL_STOPPING: STOP to every busy slot; pending keeps the first code. */
SUBITER__HIDDEN void pool__stop_shards(subiter_pool *p, int code);
/* Follow-up: start reruns, end the stop or the iteration. */
SUBITER__HIDDEN void pool__shards_follow_up(subiter_pool *p);
/* Start the iteration on every slot (all IDLE), each skipping the
 * delivered count already in its slot. 0, or the failure. */
SUBITER__HIDDEN int pool__start_shards(subiter_pool *p);

/* ---- pool_tasks.c ---- */

SUBITER__HIDDEN struct pool_task *pool__task_new(subiter_pool *p,
                                                 const void *input, size_t len);
SUBITER__HIDDEN struct pool_task *pool__pop(struct pool_task **head,
                                            struct pool_task **tail);
SUBITER__HIDDEN void pool__task_free(struct pool_task *t);
SUBITER__HIDDEN void pool__task_free_list(struct pool_task *t);
/* Handler: what slot i's task read gave (r as from next_nowait). */
SUBITER__HIDDEN int pool__task_read(subiter_pool *p, unsigned i, int r);
/* Handler: slot i's worker is dead with code: retry or fail its task. */
SUBITER__HIDDEN void pool__task_lost(subiter_pool *p, unsigned i, int code);
/* Follow-up: hand queued tasks out, fork for them, fail the unrunnable. */
SUBITER__HIDDEN void pool__dispatch(subiter_pool *p);
/* Timers: task deadlines and finalize's grace; lowers *next. */
SUBITER__HIDDEN void pool__task_timers(subiter_pool *p, int64_t now,
                                       int64_t *next);
/* A new submit: give slots that gave up on their initializer a chance. */
SUBITER__HIDDEN void pool__fresh_chance(subiter_pool *p);
SUBITER__HIDDEN bool pool__no_task(const subiter_pool *p);
SUBITER__HIDDEN bool pool__room_or_stuck(const subiter_pool *p);

/* ---- pool_evloop.c ---- */

/* The next item, task end or end, as subiter_pool_next() returns it, with
 * a deadline (0: none): -EAGAIN when it passed. In pool.c. */
SUBITER__HIDDEN int pool__next(subiter_pool *p, subiter_pool_item *item,
                               int64_t deadline_ns);
/* In the loop: undo the last park (disarm, empty what rang, turn exits
 * into events). */
SUBITER__HIDDEN void pool__unpark(subiter_pool *p);
/* A call changed the pool: make its fd readable, so that the application
 * calls the timed next (which parks it again). */
SUBITER__HIDDEN void pool__poke(subiter_pool *p);
/* Slot i's worker leaves it: its fds leave the epoll set. */
SUBITER__HIDDEN void pool__ev_forget(subiter_pool *p, unsigned i);

/* ---- pool_wait.c ---- */

/* A new wait of the loop (pool__run()), spinning while pool__may_spin()
 * allows, and its end, which records how long it lasted for the next
 * one's window unless the caller's deadline cut it short. */
SUBITER__HIDDEN void pool__wait_begin(subiter_pool *p, struct subiter__wait *w);
SUBITER__HIDDEN bool pool__may_spin(const subiter_pool *p,
                                    struct subiter__wait *w);
SUBITER__HIDDEN void
pool__wait_end(subiter_pool *p, const struct subiter__wait *w, bool timed_out);

/* Tell the workers that may write that the parent will sleep; true when
 * one was told just now (look at the rings once more first). */
SUBITER__HIDDEN bool pool__arm(subiter_pool *p);
/* Test hook: what pool__arm() calls first; NULL outside tests. */
SUBITER__HIDDEN extern void (*pool__before_arm)(subiter_pool *p);
SUBITER__HIDDEN void pool__disarm(subiter_pool *p);
/* One poll() over every eventfd and pidfd until one fires or deadline_ns
 * (0: none); exits become pool__exited() events. */
SUBITER__HIDDEN void pool__sleep(subiter_pool *p, int64_t deadline_ns);

#endif /* SUBITER_POOL_H */
