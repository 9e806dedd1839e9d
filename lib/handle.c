/* handle.c: a handle's worker, from the parent's side: starting it (options,
 * shared region, eventfd, fork), talking to it (commands out, statuses in,
 * item views given back), losing it (the errmsg that explains how) and
 * ending it (ABORT, grace, SIGTERM, SIGKILL, reap). Owns the handle's state
 * transitions; subiter.c builds the public calls on top. */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "handle_impl.h"
#include "start.h"

/*
 * Every change of state goes through here. The legal ones, top to bottom:
 *
 *   DEAD      -> READY      the initializer succeeded (a new handle is dead
 *                           until then)
 *   READY     -> ITERATING  start
 *   ENDED     -> ITERATING  start
 *   ITERATING -> ENDED      ITERATION_FINISHED
 *   ITERATING -> READY      ITERATOR_FAILED, or a stop
 *   ENDED     -> READY      a stop whose draining met the end
 *   any       -> DEAD       the worker died, timed out or broke the protocol
 */
void subiter__set_state(subiter *it, enum state to)
{
    assert(to == ST_DEAD || (it->state == ST_DEAD && to == ST_READY) ||
           (it->state != ST_ITERATING && it->state != ST_DEAD &&
            to == ST_ITERATING) ||
           (it->state == ST_ITERATING && (to == ST_ENDED || to == ST_READY)) ||
           (it->state == ST_ENDED && to == ST_READY));
    it->state = to;
}

void subiter__set_errmsg(subiter *it, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(it->errmsg, sizeof it->errmsg, fmt, ap);
    va_end(ap);
}

int subiter__fail(subiter *it, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(it->errmsg, sizeof it->errmsg, fmt, ap);
    va_end(ap);
    it->last_code = code;
    return code;
}

/* ---- talking to the worker, and losing it ---- */

void subiter__publish(subiter *it)
{
    subiter__ring_publish(&it->items);
    if (it->consumed_pub != it->consumed) {
        it->consumed_pub = it->consumed;
        /* release: pairs with the worker's acquire in reserve(). */
        atomic_store_explicit(&it->reg.shm->items_consumed, it->consumed,
                              memory_order_release);
    }
}

void subiter__wake(subiter *it)
{
    subiter__publish(it);
    subiter__wake_worker(it->reg.shm);
    it->need_wake = false;
}

/* Has the worker half its buffer to fill again (half its items and half
 * the ring's bytes: either may be the bound)? Both from what it has
 * published: what we have read of the ring may be far behind, and with
 * the bytes as the bound it said "low" for a full ring, waking the worker
 * for every item. */
static bool backlog_low(subiter *it)
{
    uint32_t published = atomic_load_explicit(&it->reg.shm->items_published,
                                              memory_order_relaxed);
    uint32_t tail = subiter__ring_tail(&it->items);

    return published - it->consumed <= it->buffer_items / 2 &&
           tail - it->items.pos <= it->items.size / 2;
}

/*
 * Wake a sleeping worker for the room given back only once it has half
 * its buffer to fill again, so that it produces a batch per wake-up
 * instead of one item (a wake-up per item cost a pool of two a fifth of
 * its time). Until then need_wake stays set, and subiter__read_status()
 * wakes it before the parent sleeps itself, so the two never wait for
 * each other. The unfenced look may miss a worker that just went to
 * sleep; that same fenced look catches it.
 */
void subiter__wake_low(subiter *it)
{
    /* It waits: all the room there is, at once, so that it finds it when
     * it wakes, whoever wakes it. */
    subiter__publish(it);
    if (backlog_low(it)) {
        subiter__wake(it);
    }
}

/* Where the worker was: "while initializing", "during iteration 3 after
 * 10 items", "in Stand By". An iteration counts as begun only once its
 * ITERATION_STARTED was read: a worker lost before that (it died in Stand
 * By while the START was on its way) never ran it. */
static void where(const subiter *it, char *buf, size_t n)
{
    if (!it->init_ok) {
        snprintf(buf, n, "while initializing");
    } else if (it->state == ST_ITERATING && it->got_started) {
        snprintf(buf, n, "during iteration %llu after %llu items",
                 (unsigned long long)it->seq,
                 (unsigned long long)it->items_iter);
    } else if (it->state == ST_ITERATING) {
        snprintf(buf, n, "in Stand By, before iteration %llu began",
                 (unsigned long long)it->seq);
    } else {
        snprintf(buf, n, "in Stand By");
    }
}

/* The library's reason for the worker's exit status, or NULL when the
 * status is the application's (error.h). */
static const char *exit_why(const subiter *it)
{
    const struct subiter__proc *p = &it->proc;

    if (!p->status_known || !WIFEXITED(p->wait_status) || it->reg.shm == NULL) {
        return NULL;
    }
    return subiter__worker_exit_why(
        WEXITSTATUS(p->wait_status),
        atomic_load_explicit(&it->reg.shm->worker_stage, memory_order_relaxed));
}

/* The stack the dead worker left (trace.c), kept for errinfo and put
 * after the reason line of errmsg, as many whole frames as fit. */
static void add_backtrace(subiter *it)
{
    size_t len = strlen(it->errmsg), room = sizeof it->errmsg - len - 1;
    const char *bt, *cut;

    subiter__free(it->backtrace);
    if (subiter__trace_collect(&it->reg, &it->backtrace) < 0 ||
        it->backtrace == NULL || room < 2) {
        return;
    }
    bt = it->backtrace;
    cut = bt + strlen(bt);
    while ((size_t)(cut - bt) + 1 > room) {
        const char *nl = cut - 1;

        while (nl > bt && *nl != '\n') {
            nl--;
        }
        cut = nl;
    }
    if (cut > bt) {
        snprintf(it->errmsg + len, room + 1, "\n%.*s", (int)(cut - bt), bt);
    }
}

/* The worker is gone or must go: kill, reap, explain, and make the handle
 * dead. `what` is NULL when it died by itself. */
static int make_dead(subiter *it, int code, const char *what)
{
    char how[128], at[96];

    where(it, at, sizeof at);
    if (code == SUBITER_ETIMEDOUT) {
        /* A hang: ask for the stack first (bounded), then kill. */
        subiter__trace_request(&it->reg, &it->proc);
    }
    subiter__proc_kill(&it->proc);
    subiter__proc_describe(&it->proc, how, sizeof how);
    it->last_code = code;
    it->ended_early = true;
    if (what == NULL) {
        it->oom_suspected = it->proc.status_known &&
                            WIFSIGNALED(it->proc.wait_status) &&
                            WTERMSIG(it->proc.wait_status) == SIGKILL &&
                            subiter__oom_check(&it->oom);
        if (it->oom_suspected) {
            subiter__set_errmsg(
                it,
                "worker pid %d %s %s; probably by the kernel's OOM "
                "killer (oom_kill went from %lld to %lld in %s)",
                (int)it->proc.pid, how, at, it->oom.before, it->oom.after,
                it->oom.path);
        } else if (exit_why(it) != NULL) {
            subiter__set_errmsg(
                it, "worker pid %d %s %s (%d: %s)", (int)it->proc.pid, how, at,
                WEXITSTATUS(it->proc.wait_status), exit_why(it));
        } else {
            subiter__set_errmsg(it, "worker pid %d %s %s", (int)it->proc.pid,
                                how, at);
        }
    } else {
        subiter__set_errmsg(it, "worker pid %d %s %s; killed",
                            (int)it->proc.pid, what, at);
    }
    add_backtrace(it);
    subiter__set_state(it, ST_DEAD);
    return code;
}

static int worker_died(subiter *it)
{
    return make_dead(it, SUBITER_ECHILD, NULL);
}

int subiter__broke(subiter *it, const char *what)
{
    char why[160];

    snprintf(why, sizeof why, "broke the protocol (%s)", what);
    return make_dead(it, SUBITER_EPROTO, why);
}

static int timed_out(subiter *it)
{
    char why[128];

    /* After STOP a generator that keeps yielding sends nothing (its items
     * are dropped in the worker): say what it failed to do instead. */
    if (it->stop_sent) {
        snprintf(why, sizeof why, SUBITER__STOP_SILENT, it->timeout_ms);
    } else {
        snprintf(why, sizeof why, "sent nothing for %d ms", it->timeout_ms);
    }
    return make_dead(it, SUBITER_ETIMEDOUT, why);
}

/* subiter_stop()'s own bound passed: the generator ignores the stop. */
static int stop_overdue(subiter *it)
{
    char why[128];

    snprintf(why, sizeof why, SUBITER__STOP_OVERDUE, it->grace_ms);
    return make_dead(it, SUBITER_ETIMEDOUT, why);
}

void subiter__status_wait(subiter *it, struct subiter__wait *w)
{
    *w = (struct subiter__wait)SUBITER__WAIT_INIT;
    w->quick = it->answer_due;
    w->last = &it->last_wait_ns;
    if (!it->init_ok) {
        subiter__start_wait(w, it->start_method);
    }
}

/*
 * subiter__read_status() when the record is not there at once, or is
 * bad: wait for the next status record and decode it. Returns 0 with *st and
 * *len (the record to release), or an error: the fatal ones have killed
 * the worker and made the handle dead; -ENOMEM leaves the record in place.
 * Without `wait`, -EAGAIN when nothing is there yet (a pool waits for many
 * handles at once, and tells a handle with subiter__mark_exited() that its
 * worker is gone).
 */
static int read_status_wait(subiter *it, struct subiter__status *st,
                            uint32_t *len, bool wait)
{
    struct subiter__wait w;
    int64_t idle = 0, deadline, now;
    const unsigned char *frame;
    bool chased = false;
    int r;

    subiter__status_wait(it, &w);
    /* The inactivity bound counts from the first timed next that found
     * nothing (wait_since), else from now; the call's own deadline and
     * the stop's bound come on top. */
    if (it->timeout_ms > 0) {
        idle = (it->wait_since != 0 ? it->wait_since : subiter__now_ns()) +
               (int64_t)it->timeout_ms * SUBITER__NS_PER_MS;
    }
    deadline = idle;
    if (it->until != 0 && (deadline == 0 || it->until < deadline)) {
        deadline = it->until;
    }
    if (it->stop_until != 0 && (deadline == 0 || it->stop_until < deadline)) {
        deadline = it->stop_until;
    }
    for (;;) {
        uint32_t pos = it->items.pos;

        r = subiter__ring_peek(&it->items, &frame, len);
        if (it->items.pos != pos) {
            /* It skipped padding, giving room back: a worker waiting to
             * write a record at the start needs to hear of it. */
            it->need_wake = true;
        }
        if (r != 0) {
            subiter__parent_wait_end(it->reg.shm, &w);
        }
        if (r < 0) {
            return subiter__broke(it, "corrupt item ring");
        }
        if (r == 1) {
            it->wait_since = 0;
            it->answer_due = false;
            r = subiter__wire_status_decode(frame, *len, st);
            if (r == -EPROTO) {
                return subiter__broke(it, "undecodable status");
            }
            return r;
        }
        if (it->need_wake) {
            subiter__wake(it);
        }
        if (wait && !w.quick && !chased) {
            /* Caught up with a worker that runs: let it get ahead. */
            chased = true;
            subiter__parent_chase(it->reg.shm, it->consumed, it->items.pos);
            continue;
        }
        if (!wait) {
            if (it->exited) {
                return worker_died(it);
            }
            if (it->wait_since != 0 && idle != 0 && subiter__now_ns() >= idle) {
                return timed_out(it);
            }
            return -EAGAIN;
        }
        r = subiter__parent_wait(it->reg.shm, &w, it->efd, &it->proc, deadline);
        if (r == -ETIMEDOUT) {
            now = subiter__now_ns();
            if (idle != 0 && now >= idle) {
                return timed_out(it);
            }
            if (it->stop_until != 0 && now >= it->stop_until) {
                return stop_overdue(it);
            }
            return -EAGAIN; /* the caller's deadline */
        }
        /* Deliver what it published before it died, then report. */
        if (r == -ECHILD && !subiter__ring_pending(&it->items)) {
            return worker_died(it);
        }
    }
}

int subiter__read_status(subiter *it, struct subiter__status *st, uint32_t *len,
                         bool wait)
{
    const unsigned char *frame;
    uint32_t pos = it->items.pos;
    int r;

    /* The common case first, without the deadlines and the wait: a record
     * is there. Anything else (nothing yet, a bad record) is looked at
     * again below. */
    r = subiter__ring_peek(&it->items, &frame, len);
    if (it->items.pos != pos) {
        it->need_wake = true; /* as below: it skipped padding */
    }
    if (r == 1) {
        r = subiter__wire_status_decode(frame, *len, st);
        if (r != -EPROTO) {
            it->wait_since = 0;
            it->answer_due = false;
            return r;
        }
    }
    return read_status_wait(it, st, len, wait);
}

int subiter__push_command(subiter *it, int cmd, const void *input, size_t len)
{
    const struct subiter__start_args *x =
        cmd == SUBITER__CMD_START ? &it->start_x : NULL;
    size_t n = x != NULL ? subiter__wire_start_size(it->seq, len, x)
                         : subiter__wire_command_size(cmd, it->seq, len);
    void *frame;
    int r;

    r = subiter__ring_reserve(&it->cmd, n, &frame);
    if (r != 0) {
        /* At most one START, one STOP and one ABORT are ever unread, far
         * below the ring's size: a full ring means the worker stopped
         * reading commands or corrupted the index. */
        return r;
    }
    if (x != NULL) {
        subiter__wire_start_pack(it->seq, input, len, x, frame);
    } else {
        subiter__wire_command_pack(cmd, it->seq, input, len, frame);
    }
    subiter__ring_commit(&it->cmd, (uint32_t)n);
    subiter__wake(it);
    it->answer_due = true;
    return 0;
}

/* ---- starting the worker ---- */

/* An option error: "<prefix><field>: <why>" into msg; returns -EINVAL. */
static int bad_opt(char *msg, size_t n, const char *prefix, const char *fmt,
                   ...) SUBITER_PRINTF(4, 5);

static int bad_opt(char *msg, size_t n, const char *prefix, const char *fmt,
                   ...)
{
    size_t k = (size_t)snprintf(msg, n, "%s", prefix);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg + (k < n ? k : n - 1), k < n ? n - k : 1, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

int subiter__read_opts(subiter_opts *o, const subiter_opts *user_opts,
                       const char *prefix, char *msg, size_t n)
{
    subiter_opts d = SUBITER_OPTS_INIT, u;
    const subiter_opts *user = &u;
    int r;

    *o = d;
    msg[0] = '\0';
    if (user_opts == NULL) {
        return 0;
    }
    r = subiter__opts_copy(&u, sizeof u, user_opts, SUBITER__OPTS_V1);
    if (r == -EINVAL) {
        return bad_opt(msg, n, prefix, "size: %zu is below %zu",
                       user_opts->size, SUBITER__OPTS_V1);
    }
    if (r < 0) {
        return bad_opt(msg, n, prefix,
                       "size: %zu, and the %zu bytes past the %zu this "
                       "version knows are not all zero",
                       user_opts->size, user_opts->size - sizeof u, sizeof u);
    }
    o->init = user->init;
    if (user->buffer_items != 0) {
        o->buffer_items = user->buffer_items;
    }
    if (user->buffer_bytes != 0) {
        o->buffer_bytes = user->buffer_bytes;
    }
    o->timeout_ms = user->timeout_ms;
    if (user->grace_ms != 0) {
        o->grace_ms = user->grace_ms;
    }
    o->start_method = user->start_method;
    o->arg_len = user->arg_len;
    if (o->grace_ms < 0) {
        return bad_opt(msg, n, prefix, "grace_ms: %d is negative", o->grace_ms);
    }
    if (o->buffer_bytes > SUBITER__MAX_RING_BYTES) {
        return bad_opt(msg, n, prefix, "buffer_bytes: %zu is over the %u limit",
                       o->buffer_bytes, SUBITER__MAX_RING_BYTES);
    }
    if (o->start_method != SUBITER_FORK &&
        o->start_method != SUBITER_FORKSERVER &&
        o->start_method != SUBITER_SPAWN) {
        return bad_opt(msg, n, prefix,
                       "start_method: %d is none of SUBITER_FORK (%d), "
                       "SUBITER_FORKSERVER (%d), SUBITER_SPAWN (%d)",
                       o->start_method, SUBITER_FORK, SUBITER_FORKSERVER,
                       SUBITER_SPAWN);
    }
    return 0;
}

/* SUBITER_FORKSERVER and SUBITER_SPAWN (start.h): the worker reads a
 * hand-off instead of sharing our memory. */
static int start_other(subiter *it, const subiter_opts *o,
                       const struct subiter__child_args *a)
{
    char why[512] = "";
    pid_t pid = 0;
    int hfd, pidfd, r;

    hfd = subiter__handoff_create(
        a, o->arg_len, o->start_method == SUBITER_SPAWN, why, sizeof why);
    r = hfd < 0 ? hfd
                : subiter__start_worker(o->start_method, hfd, it->reg.memfd,
                                        it->efd, &pid, &pidfd, why, sizeof why);
    if (hfd >= 0) {
        (void)close(hfd);
    }
    subiter__shm_close_fd(&it->reg);
    if (r < 0) {
        return subiter__fail(it, r, "%s", why);
    }
    if (pidfd >= 0) {
        it->proc.pid = pid;
        it->proc.pidfd = pidfd;
        it->proc.life = &it->reg.shm->life;
    } else {
        subiter__proc_watch(&it->proc, pid, &it->reg.shm->life);
    }
    return 0;
}

static int spawn(subiter *it, const subiter_opts *o, subiter_iter_fn fn,
                 void *arg, const struct subiter__ident *id)
{
    struct subiter__child_args a;
    pid_t pid;
    int r;

    /* buffer_items 0 is no cap: the ring's bytes are the bound. */
    r = subiter__shm_create(&it->reg, o->buffer_bytes,
                            o->buffer_items != 0 ? o->buffer_items
                                                 : UINT32_MAX);
    if (r < 0) {
        return subiter__fail(it, r, "cannot create the shared ring: %s",
                             subiter_strerror(r));
    }
    it->buffer_items = it->reg.shm->buffer_items;
    it->batch = subiter__shm_batch(it->buffer_items);
    subiter__shm_rings(it->reg.shm, &it->cmd, &it->items, true);
    subiter__lean_learn(it, SUBITER__ITEM_PREFIX); /* an empty item's */
    it->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (it->efd < 0) {
        r = -errno;
        subiter__shm_close_fd(&it->reg);
        return subiter__fail(it, r, "eventfd: %s", subiter_strerror(r));
    }
    a.memfd = it->reg.memfd;
    a.shm_len = it->reg.len;
    a.efd = it->efd;
    a.parent = getpid();
    a.init = o->init;
    a.fn = fn;
    a.arg = arg;
    a.id = *id;
    a.signals_clean = false; /* the application's handlers */
    it->start_method = o->start_method;
    subiter__trace_prime();
    if (o->start_method == SUBITER_FORK) {
        subiter__bind_generator_calls();
    }
    subiter__oom_begin(&it->oom);
    if (o->start_method != SUBITER_FORK) {
        return start_other(it, o, &a);
    }
    pid = fork();
    if (pid == 0) {
        subiter__worker_main(&a);
    }
    r = -errno;
    subiter__shm_close_fd(&it->reg);
    if (pid < 0) {
        return subiter__fail(it, r, "fork: %s", subiter_strerror(r));
    }
    subiter__proc_watch(&it->proc, pid, &it->reg.shm->life);
    return 0;
}

/* A handle without a worker yet: dead until its worker is ready. */
static subiter *new_handle(void)
{
    subiter *it = subiter__malloc(sizeof *it);

    if (it != NULL) {
        memset(it, 0, sizeof *it);
        subiter__proc_init(&it->proc);
        it->efd = -1;
        it->ev.ep = -1;
        it->ev.tfd = -1;
        it->ev_efd = -1;
        it->ev_pidfd = -1;
        it->reg.memfd = -1;
        it->answer_due = true; /* the worker's first status */
        subiter__set_state(it, ST_DEAD);
    }
    return it;
}

/* ---- ending the worker ---- */

/* Reap every handle in v that still has a worker, each by its own grace
 * counted from now; signal the ones left with `sig` (0: none). */
static void reap_all(subiter **v, size_t n, int sig)
{
    int64_t now = subiter__now_ns();
    size_t i;

    for (i = 0; i < n; i++) {
        struct subiter__proc *p = &v[i]->proc;

        if (subiter__live(v[i]) &&
            subiter__proc_reap(p, now + (int64_t)v[i]->grace_ms *
                                            SUBITER__NS_PER_MS) < 0 &&
            sig != 0) {
            p->signalled = true;
            subiter__proc_signal(p, sig);
        }
    }
}

/* What subiter_close() returns for a handle whose worker is gone. */
static int end_code(const subiter *it)
{
    const struct subiter__proc *p = &it->proc;

    if (p->pid <= 0) {
        return 0;
    }
    if (it->ended_early) {
        return SUBITER_ECHILD; /* ECHILD, ETIMEDOUT or EPROTO was returned */
    }
    if (p->signalled) {
        return SUBITER_ETIMEDOUT;
    }
    if (p->status_known && WIFEXITED(p->wait_status) &&
        WEXITSTATUS(p->wait_status) == 0) {
        return 0;
    }
    return SUBITER_ECHILD;
}

void subiter__close_many(subiter **v, int *rc, size_t n)
{
    size_t i;

    /* ABORT to all first, then one grace for all, SIGTERM to the ones
     * left, one more grace, SIGKILL: n workers end in about the time one
     * takes. */
    for (i = 0; i < n; i++) {
        subiter__give_back(v[i], false);
        if (subiter__live(v[i]) && v[i]->reg.shm != NULL) {
            (void)subiter__push_command(v[i], SUBITER__CMD_ABORT, NULL, 0);
        }
    }
    /* A handle closed before its worker's first status. */
    subiter__forkserver_settled();
    reap_all(v, n, SIGTERM);
    reap_all(v, n, SIGKILL);
    for (i = 0; i < n; i++) {
        subiter *it = v[i];

        if (subiter__live(it)) {
            subiter__proc_kill(&it->proc);
        }
        rc[i] = end_code(it);
        subiter__evfd_close(&it->ev);
        subiter__proc_close(&it->proc);
        subiter__shm_destroy(&it->reg);
        subiter__free(it->backtrace);
        if (it->efd >= 0) {
            (void)close(it->efd);
        }
        subiter__free(it);
    }
}

/* ---- what a pool builds on ---- */

int subiter__open_async(subiter **out, subiter_iter_fn fn, void *arg,
                        const subiter_opts *opts,
                        const struct subiter__ident *id)
{
    struct subiter__ident lone = {0, 1, 0, 1, 0, 0};
    subiter_opts o;
    subiter *it;
    int r;

    *out = NULL;
    it = new_handle();
    if (it == NULL) {
        return -ENOMEM;
    }
    *out = it;
    r = subiter__read_opts(&o, opts, "opts.", it->errmsg, sizeof it->errmsg);
    if (r < 0) {
        it->last_code = r;
        return r;
    }
    if (fn == NULL) {
        return subiter__fail(it, -EINVAL, "no generator given");
    }
    if (!subiter__handoff_arg_ok(o.start_method, arg, o.arg_len)) {
        return subiter__fail(it, -EINVAL,
                             "opts.arg_len: 0 with a non-NULL arg; "
                             "SUBITER_FORKSERVER and SUBITER_SPAWN copy arg "
                             "as arg_len bytes");
    }
    it->timeout_ms = o.timeout_ms > 0 ? o.timeout_ms : 0;
    it->grace_ms = o.grace_ms;
    if (id == NULL) {
        lone.seed = subiter__draw_seed();
        id = &lone;
    }
    return spawn(it, &o, fn, arg, id);
}

void subiter__give_back(subiter *it, bool wake)
{
    subiter__give_back_held(it);
    if (wake && it->reg.shm != NULL && it->state != ST_DEAD) {
        subiter__wake_if_low(it);
    }
}

void subiter__arm(subiter *it, bool on)
{
    if (it->reg.shm == NULL) {
        return;
    }
    if (on) {
        subiter__sleep_flag(&it->reg.shm->parent_sleeping);
    } else {
        subiter__sleep_disarm(&it->reg.shm->parent_sleeping);
    }
}

bool subiter__worker_elsewhere(const subiter *it, uint32_t me)
{
    /* relaxed: a hint, as in the handle's own spin (wait.c). */
    return it->reg.shm != NULL &&
           subiter__runs_elsewhere(
               atomic_load_explicit(&it->reg.shm->child_running,
                                    memory_order_relaxed),
               me);
}

void subiter__fds(const subiter *it, int *efd, int *pidfd)
{
    *efd = it->efd;
    *pidfd = it->proc.reaped ? -1 : it->proc.pidfd;
}

bool subiter__check_exit(subiter *it)
{
    if (!it->exited && !it->ended_early && it->proc.pid > 0 &&
        subiter__proc_exited(&it->proc)) {
        it->exited = true;
    }
    return it->exited;
}

void subiter__mark_exited(subiter *it)
{
    it->exited = true;
}

bool subiter__live(const subiter *it)
{
    return it->proc.pid > 0 && !it->ended_early && !it->proc.reaped;
}

int subiter__kill(subiter *it, int code, const char *why)
{
    return make_dead(it, code, why);
}

void subiter__signal(subiter *it, int sig)
{
    if (subiter__live(it)) {
        subiter__proc_signal(&it->proc, sig);
    }
}

bool subiter__has_unread(subiter *it, uint32_t *mark)
{
    if (it->reg.shm != NULL && subiter__ring_pending(&it->items)) {
        *mark = subiter__ring_tail(&it->items);
        return true;
    }
    /* Exited: one more read collects the end. */
    *mark = it->items.pos;
    return subiter__proc_exited(&it->proc);
}

bool subiter__read_past(const subiter *it, uint32_t mark)
{
    /* Ring indices wrap: compare their distance. The mark is the
     * worker's word: an empty ring has been read past it too. */
    return (int32_t)(it->items.pos - mark) >= 0 ||
           (it->reg.shm != NULL && !subiter__ring_pending(&it->items));
}
