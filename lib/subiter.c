/* subiter.c: the parent's handle. Owns the shared region, the eventfd the
 * worker rings, and the handle's state machine (ready, iterating, ended,
 * dead) with the error messages that explain it. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

#define CMD_RING_BYTES (256u * 1024u)
#define MIN_RING_BYTES (16u * 1024u)
#define MAX_RING_BYTES (1u << 30)
#define ERRMSG_MAX 4608

enum state { ST_READY, ST_ITERATING, ST_ENDED, ST_DEAD };

struct subiter {
    enum state state;
    bool started;     /* a start was ever made */
    bool got_started; /* ITERATION_STARTED seen for the current one */
    bool init_ok;     /* the initializer succeeded */
    struct subiter__proc proc;
    int efd;
    struct subiter__shm *shm;
    size_t shm_len;
    struct subiter__ring cmd;   /* producer */
    struct subiter__ring items; /* consumer */
    int timeout_ms;
    int grace_ms;
    uint64_t seq;        /* current iteration, 1-based */
    uint64_t items_iter; /* items delivered in the current iteration */
    uint32_t consumed;   /* mirror of shm->items_consumed */
    uint32_t buffer_items;
    bool need_wake; /* released room the worker may wait for */
    bool holding;   /* an item view is out */
    uint32_t held_len;
    struct subiter__status held;
    struct subiter__oom oom;
    int last_code; /* what subiter_get_errinfo() reports */
    int errnum;
    bool oom_suspected;
    bool died;      /* the worker died or was killed before close */
    bool exited;    /* a pool saw the pidfd: report the death once drained */
    bool stop_sent; /* STOP_ITERATION is on its way for this iteration */
    char errmsg[ERRMSG_MAX];
};

static void set_errmsg(subiter *it, const char *fmt, ...) SUBITER_PRINTF(2, 3);

static void set_errmsg(subiter *it, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(it->errmsg, sizeof it->errmsg, fmt, ap);
    va_end(ap);
}

static int fail(subiter *it, int code, const char *fmt, ...)
    SUBITER_PRINTF(3, 4);

static int fail(subiter *it, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(it->errmsg, sizeof it->errmsg, fmt, ap);
    va_end(ap);
    it->last_code = code;
    return code;
}

/* ---- waking and reading the worker ---- */

static void wake_child(subiter *it)
{
    /* seq_cst: orders our index stores before the load of the worker's
     * flag; pairs with the fence in the worker's wait_step(). */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&it->shm->child_sleeping, memory_order_relaxed) &&
        atomic_exchange_explicit(&it->shm->child_sleeping, 0,
                                 memory_order_relaxed)) {
        atomic_fetch_add_explicit(&it->shm->child_bell, 1,
                                  memory_order_relaxed);
        subiter__futex_wake(&it->shm->child_bell);
    }
    it->need_wake = false;
}

static void release_held(subiter *it)
{
    if (!it->holding) {
        return;
    }
    subiter__status_free(&it->held);
    subiter__ring_release(&it->items, it->held_len);
    it->holding = false;
    it->need_wake = true;
}

/* Where the worker was: "while initializing", "during iteration 3 after
 * 10 items", "in Stand By". */
static void where(const subiter *it, char *buf, size_t n)
{
    if (!it->init_ok) {
        snprintf(buf, n, "while initializing");
    } else if (it->state == ST_ITERATING) {
        snprintf(buf, n, "during iteration %llu after %llu items",
                 (unsigned long long)it->seq,
                 (unsigned long long)it->items_iter);
    } else {
        snprintf(buf, n, "in Stand By");
    }
}

/* The worker is gone or must go: kill, reap, explain, and make the handle
 * dead. `what` is NULL when it died by itself. */
static int die(subiter *it, int code, const char *what)
{
    char how[128], at[96];

    where(it, at, sizeof at);
    subiter__proc_kill(&it->proc);
    subiter__proc_describe(&it->proc, how, sizeof how);
    it->last_code = code;
    it->died = true;
    if (what == NULL) {
        it->oom_suspected = it->proc.status_known &&
                            WIFSIGNALED(it->proc.wait_status) &&
                            WTERMSIG(it->proc.wait_status) == SIGKILL &&
                            subiter__oom_check(&it->oom);
        if (it->oom_suspected) {
            set_errmsg(it,
                       "worker pid %d %s %s; probably by the kernel's OOM "
                       "killer (oom_kill went from %lld to %lld in %s)",
                       (int)it->proc.pid, how, at, it->oom.before,
                       it->oom.after, it->oom.path);
        } else if (!it->init_ok && it->proc.status_known &&
                   WIFEXITED(it->proc.wait_status) &&
                   subiter__worker_exit_reason(
                       WEXITSTATUS(it->proc.wait_status)) != NULL) {
            /* Before the initializer ran, these statuses are the
             * library's own (an initializer may still use them too). */
            set_errmsg(
                it, "worker pid %d %s %s (%d: %s)", (int)it->proc.pid, how, at,
                WEXITSTATUS(it->proc.wait_status),
                subiter__worker_exit_reason(WEXITSTATUS(it->proc.wait_status)));
        } else {
            set_errmsg(it, "worker pid %d %s %s", (int)it->proc.pid, how, at);
        }
    } else {
        set_errmsg(it, "worker pid %d %s %s; killed", (int)it->proc.pid, what,
                   at);
    }
    it->state = ST_DEAD;
    return code;
}

static int died(subiter *it)
{
    return die(it, SUBITER_ECHILD, NULL);
}

static int broke(subiter *it, const char *what)
{
    char why[160];

    snprintf(why, sizeof why, "broke the protocol (%s)", what);
    return die(it, SUBITER_EPROTO, why);
}

static int timed_out(subiter *it)
{
    char why[96];

    snprintf(why, sizeof why, "sent nothing for %d ms", it->timeout_ms);
    return die(it, SUBITER_ETIMEDOUT, why);
}

/*
 * Wait for the next status record and decode it. Returns 0 with *st and
 * *len (the record to release), or an error: the fatal ones have killed
 * the worker and made the handle dead; -ENOMEM leaves the record in place.
 * Without `wait`, -EAGAIN when nothing is there yet (a pool waits for many
 * handles at once, and tells a handle with subiter__mark_exited() that its
 * worker is gone).
 */
static int read_status(subiter *it, struct subiter__status *st, uint32_t *len,
                       bool wait)
{
    int64_t deadline = 0;
    unsigned spins = 0;
    bool armed = false;
    const unsigned char *frame;
    int r;

    if (it->timeout_ms > 0) {
        deadline = subiter__now_ns() + (int64_t)it->timeout_ms * 1000000;
    }
    for (;;) {
        uint32_t pos = it->items.pos;

        r = subiter__ring_peek(&it->items, &frame, len);
        if (it->items.pos != pos) {
            /* It skipped padding, giving room back: a worker waiting to
             * write a record at the start needs to hear of it. */
            it->need_wake = true;
        }
        if (r < 0) {
            if (armed) {
                atomic_store_explicit(&it->shm->parent_sleeping, 0,
                                      memory_order_relaxed);
            }
            return broke(it, "corrupt item ring");
        }
        if (r == 1) {
            if (armed) {
                atomic_store_explicit(&it->shm->parent_sleeping, 0,
                                      memory_order_relaxed);
            }
            r = subiter__wire_status_decode(frame, *len, st);
            if (r == -EPROTO) {
                return broke(it, "undecodable status");
            }
            return r;
        }
        if (it->need_wake) {
            wake_child(it);
        }
        if (!wait) {
            return it->exited ? died(it) : -EAGAIN;
        }
        if (spins < SUBITER__SPIN_LIMIT) {
            subiter__spin(spins++);
            continue;
        }
        if (!armed) {
            atomic_store_explicit(&it->shm->parent_sleeping, 1,
                                  memory_order_relaxed);
            /* seq_cst: pairs with the fence in the worker's
             * wake_parent(); re-check the ring before sleeping. */
            atomic_thread_fence(memory_order_seq_cst);
            armed = true;
            continue;
        }
        r = subiter__proc_wait(&it->proc, it->efd, deadline);
        atomic_store_explicit(&it->shm->parent_sleeping, 0,
                              memory_order_relaxed);
        armed = false;
        if (r == 0) {
            return timed_out(it);
        }
        if (r == -ECHILD) {
            /* Deliver what it published before it died, then report. */
            if (subiter__ring_pending(&it->items)) {
                continue;
            }
            return died(it);
        }
        if (r < 0) {
            return died(it);
        }
    }
}

static int push_command(subiter *it, int cmd, const void *input, size_t len)
{
    size_t n = subiter__wire_command_size(cmd, it->seq, len);
    void *frame;
    int r;

    r = subiter__ring_reserve(&it->cmd, n, &frame);
    if (r != 0) {
        /* At most one START, one STOP and one ABORT are ever unread, far
         * below the ring's size: a full ring means the worker stopped
         * reading commands or corrupted the index. */
        return r;
    }
    subiter__wire_command_pack(cmd, it->seq, input, len, frame);
    subiter__ring_commit(&it->cmd, (uint32_t)n);
    wake_child(it);
    return 0;
}

/* ---- open ---- */

static int read_opts(subiter_opts *o, const subiter_opts *user)
{
    subiter_opts d = SUBITER_OPTS_INIT;
    const unsigned char *extra;
    size_t i;

    *o = d;
    if (user == NULL) {
        return 0;
    }
    if (user->size < sizeof *user) {
        return -EINVAL;
    }
    /* A newer caller's fields we do not know must be zero. */
    extra = (const unsigned char *)user + sizeof *user;
    for (i = 0; i < user->size - sizeof *user; i++) {
        if (extra[i] != 0) {
            return -EINVAL;
        }
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
    if (o->grace_ms < 0 || o->buffer_bytes > MAX_RING_BYTES) {
        return -EINVAL;
    }
    if (o->start_method == SUBITER_FORKSERVER ||
        o->start_method == SUBITER_SPAWN) {
        return -ENOTSUP;
    }
    if (o->start_method != SUBITER_FORK) {
        return -EINVAL;
    }
    return 0;
}

static uint32_t ring_size(size_t want)
{
    uint32_t n = MIN_RING_BYTES;

    while (n < want) {
        n <<= 1;
    }
    return n;
}

/* Create, seal and map the shared region. */
static int map_region(subiter *it, const subiter_opts *o, int *memfd)
{
    uint32_t items = ring_size(o->buffer_bytes);
    size_t hdr = (sizeof(struct subiter__shm) + 4095) & ~(size_t)4095;
    int fd, r;

    it->shm_len = hdr + CMD_RING_BYTES + items;
    /* A memfd has no name in /dev/shm: nothing can leak there. */
    fd = memfd_create("subiter", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        return -errno;
    }
    /* Sealed, so a worker cannot shrink it under the parent (SIGBUS). */
    if (ftruncate(fd, (off_t)it->shm_len) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
        r = -errno;
        (void)close(fd);
        return r;
    }
    it->shm =
        mmap(NULL, it->shm_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (it->shm == MAP_FAILED) {
        r = -errno;
        it->shm = NULL;
        (void)close(fd);
        return r;
    }
    /* Workers forked later must not inherit this ring: each worker maps
     * its own from the fd. */
    (void)madvise(it->shm, it->shm_len, MADV_DONTFORK);
    it->shm->magic = SUBITER__SHM_MAGIC;
    it->shm->version = SUBITER__SHM_VERSION;
    it->shm->hdr_bytes = (uint32_t)hdr;
    it->shm->cmd_bytes = CMD_RING_BYTES;
    it->shm->item_bytes = items;
    it->shm->buffer_items = o->buffer_items;
    it->buffer_items = o->buffer_items;
    subiter__shm_rings(it->shm, &it->cmd, &it->items, true);
    *memfd = fd;
    return 0;
}

static int spawn(subiter *it, const subiter_opts *o, subiter_iter_fn fn,
                 void *arg, unsigned worker_id, unsigned num_workers)
{
    struct subiter__child_args a;
    pid_t pid;
    int memfd = -1, r;

    r = map_region(it, o, &memfd);
    if (r < 0) {
        return fail(it, r, "cannot create the shared ring: %s",
                    subiter_strerror(r));
    }
    it->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (it->efd < 0) {
        r = -errno;
        (void)close(memfd);
        return fail(it, r, "eventfd: %s", subiter_strerror(r));
    }
    a.memfd = memfd;
    a.shm_len = it->shm_len;
    a.efd = it->efd;
    a.parent = getpid();
    a.init = o->init;
    a.fn = fn;
    a.arg = arg;
    a.worker_id = worker_id;
    a.num_workers = num_workers;
    subiter__oom_begin(&it->oom);
    pid = fork();
    if (pid == 0) {
        subiter__worker_main(&a);
    }
    r = -errno;
    (void)close(memfd);
    if (pid < 0) {
        return fail(it, r, "fork: %s", subiter_strerror(r));
    }
    subiter__proc_watch(&it->proc, pid);
    return 0;
}

static int await_init(subiter *it, bool wait)
{
    struct subiter__status st;
    uint32_t len;
    int r;

    for (;;) {
        r = read_status(it, &st, &len, wait);
        if (r == -EAGAIN) {
            return r;
        }
        if (r < 0) {
            if (r == -ENOMEM) {
                return fail(it, r, "out of memory");
            }
            return r;
        }
        if (st.code == SUBITER__INIT_OK) {
            subiter__status_free(&st);
            subiter__ring_release(&it->items, len);
            it->init_ok = true;
            it->state = ST_READY;
            it->errmsg[0] = '\0';
            return 0;
        }
        if (st.code == SUBITER__INIT_FAILED) {
            set_errmsg(it, "%s", st.message);
            it->last_code = SUBITER_EINIT;
            it->errnum = st.errnum;
            subiter__status_free(&st);
            subiter__ring_release(&it->items, len);
            /* It exits by itself; subiter_close() reaps it, within
             * grace_ms even if it does not. */
            return SUBITER_EINIT;
        }
        subiter__status_free(&st);
        return broke(it, "unexpected status during initialization");
    }
}

/* A handle without a worker yet: dead until its worker is ready. */
static subiter *new_handle(void)
{
    subiter *it = subiter__malloc(sizeof *it);

    if (it != NULL) {
        memset(it, 0, sizeof *it);
        subiter__proc_init(&it->proc);
        it->efd = -1;
        it->state = ST_DEAD;
    }
    return it;
}

int subiter_open(subiter **out, subiter_iter_fn fn, void *arg,
                 const subiter_opts *opts)
{
    subiter_opts o;
    subiter *it;
    int r;

    if (out == NULL) {
        return -EINVAL;
    }
    *out = NULL;
    it = new_handle();
    if (it == NULL) {
        return -ENOMEM;
    }
    *out = it;

    r = read_opts(&o, opts);
    if (r == -ENOTSUP) {
        return fail(it, r, "start method %d is not built yet",
                    opts->start_method);
    }
    if (r < 0) {
        return fail(it, r, "invalid options");
    }
    if (fn == NULL) {
        return fail(it, -EINVAL, "no generator given");
    }
    it->timeout_ms = o.timeout_ms > 0 ? o.timeout_ms : 0;
    it->grace_ms = o.grace_ms;
    r = spawn(it, &o, fn, arg, 0, 1);
    if (r < 0) {
        return r;
    }
    return await_init(it, true);
}

/* ---- iterate ---- */

int subiter_start(subiter *it, const void *input, size_t len)
{
    int r;

    if (it == NULL) {
        return -EINVAL;
    }
    if (it->state == ST_DEAD) {
        return SUBITER_ECLOSED;
    }
    if (it->state == ST_ITERATING) {
        return fail(it, -EINVAL, "an iteration is running");
    }
    if (input == NULL && len > 0) {
        return fail(it, -EINVAL, "NULL input of %zu bytes", len);
    }
    if (len > SUBITER_INPUT_MAX) {
        return fail(it, -EMSGSIZE,
                    "input of %zu bytes is over the %u-byte "
                    "limit",
                    len, SUBITER_INPUT_MAX);
    }
    release_held(it);
    it->seq++;
    r = push_command(it, SUBITER__CMD_START, input, len);
    if (r < 0) {
        it->seq--;
        return broke(it, "command ring full");
    }
    it->state = ST_ITERATING;
    it->stop_sent = false;
    it->started = true;
    it->items_iter = 0;
    it->got_started = false;
    it->errmsg[0] = '\0';
    it->last_code = 0;
    it->errnum = 0;
    return 0;
}

/* Count one more item as consumed, for the worker's buffer_items bound. */
static void consumed_one(subiter *it)
{
    it->consumed++;
    /* release: pairs with the worker's acquire in reserve(). */
    atomic_store_explicit(&it->shm->items_consumed, it->consumed,
                          memory_order_release);
    it->items_iter++;
    it->need_wake = true;
}

/*
 * Wake a sleeping worker only once it has half its buffer to fill again,
 * so that it produces a batch per wake-up instead of one item. Until then
 * need_wake stays set, and read_status() wakes it before the parent
 * sleeps itself, so the two never wait for each other.
 */
static bool backlog_low(subiter *it)
{
    uint32_t published =
        atomic_load_explicit(&it->shm->items_published, memory_order_relaxed);

    return published - it->consumed <= it->buffer_items / 2;
}

/*
 * Handle one non-item status of the running iteration. Returns 1 to keep
 * reading, or what subiter_next() returns.
 */
static int end_status(subiter *it, const struct subiter__status *st)
{
    if ((st->code == SUBITER__STARTED || st->code == SUBITER__FINISHED ||
         st->code == SUBITER__FAILED) &&
        st->seq != it->seq) {
        return broke(it, "status of another iteration");
    }
    switch (st->code) {
    case SUBITER__STARTED:
        /* Once per iteration: a worker that repeats it is not making
         * progress and must not keep the parent reading forever. */
        if (it->got_started) {
            return broke(it, "unexpected ITERATION_STARTED");
        }
        it->got_started = true;
        return 1;
    case SUBITER__FINISHED:
        it->state = ST_ENDED;
        return 0;
    case SUBITER__FAILED:
        set_errmsg(it, "%s", st->message);
        it->last_code = SUBITER_EITER;
        it->errnum = st->errnum;
        it->state = ST_READY;
        return SUBITER_EITER;
    case SUBITER__UNEXPECTED:
        return broke(it, "it received an unexpected command");
    default:
        return broke(it, "unexpected status during an iteration");
    }
}

/*
 * Read statuses until the next item or the end of the iteration. Returns 1
 * with the item in *st and its record's length in *len (the record is not
 * released yet), or what subiter_next() returns at the end: 0,
 * SUBITER_EITER, or an error.
 */
static int next_item(subiter *it, struct subiter__status *st, uint32_t *len,
                     bool wait, bool items_ok)
{
    int r;

    for (;;) {
        r = read_status(it, st, len, wait);
        if (r == -EAGAIN) {
            return r;
        }
        if (r < 0) {
            return r == -ENOMEM ? fail(it, r, "out of memory") : r;
        }
        if (st->code == SUBITER__ITEM) {
            if (!items_ok) {
                /* Left where it is (not released, not counted); read
                 * again when items are welcome. */
                subiter__status_free(st);
                return -EBUSY;
            }
            consumed_one(it);
            return 1;
        }
        r = end_status(it, st);
        subiter__status_free(st);
        if (it->state == ST_DEAD) {
            return r;
        }
        subiter__ring_release(&it->items, *len);
        it->need_wake = true;
        if (r != 1) {
            return r;
        }
    }
}

static int next(subiter *it, subiter_item *item, bool wait, bool items_ok)
{
    struct subiter__status st;
    uint32_t len;
    int r;

    if (item != NULL) {
        item->data = NULL;
        item->len = 0;
    }
    if (it == NULL) {
        return -EINVAL;
    }
    if (it->state == ST_DEAD) {
        return SUBITER_ECLOSED;
    }
    if (item == NULL) {
        return fail(it, -EINVAL, "NULL item");
    }
    if (it->state != ST_ITERATING) {
        return it->started ? 0
                           : fail(it, -EINVAL,
                                  "subiter_start() was never "
                                  "called");
    }
    release_held(it);
    r = next_item(it, &st, &len, wait, items_ok);
    if (r != 1) {
        return r;
    }
    it->held = st;
    it->held_len = len;
    it->holding = true;
    /* The unfenced look may miss a worker that just went to sleep;
     * need_wake stays set, and read_status() looks again, fenced, before
     * the parent sleeps itself. */
    if (atomic_load_explicit(&it->shm->child_sleeping, memory_order_relaxed) &&
        backlog_low(it)) {
        wake_child(it);
    }
    item->data = st.item;
    item->len = st.item_len;
    return 1;
}

int subiter_next(subiter *it, subiter_item *item)
{
    return next(it, item, true, true);
}

int subiter_stop(subiter *it)
{
    struct subiter__status st;
    uint32_t len;
    int r;

    if (it == NULL) {
        return -EINVAL;
    }
    if (it->state == ST_DEAD) {
        return SUBITER_ECLOSED;
    }
    if (it->state != ST_ITERATING) {
        return 0;
    }
    release_held(it);
    if (!it->stop_sent && push_command(it, SUBITER__CMD_STOP, NULL, 0) < 0) {
        return broke(it, "command ring full");
    }
    it->stop_sent = true;
    while ((r = next_item(it, &st, &len, true, true)) == 1) {
        subiter__status_free(&st);
        subiter__ring_release(&it->items, len);
        it->need_wake = true;
    }
    if (r < 0 && r != SUBITER_EITER) {
        return r;
    }
    /* A failure that raced with the stop still leaves the worker ready,
     * which is all the caller asked for. */
    it->state = ST_READY;
    it->errmsg[0] = '\0';
    it->last_code = 0;
    it->errnum = 0;
    return 0;
}

/* ---- close ---- */

/* Reap every handle in v that still has a worker, each by its own grace
 * counted from now; signal the ones left with `sig` (0: none). */
static void reap_all(subiter **v, size_t n, int sig)
{
    int64_t now = subiter__now_ns();
    size_t i;

    for (i = 0; i < n; i++) {
        struct subiter__proc *p = &v[i]->proc;

        if (subiter__alive(v[i]) &&
            subiter__proc_reap(p, now + (int64_t)v[i]->grace_ms * 1000000) <
                0 &&
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
    if (it->died) {
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
        release_held(v[i]);
        if (subiter__alive(v[i]) && v[i]->shm != NULL) {
            (void)push_command(v[i], SUBITER__CMD_ABORT, NULL, 0);
        }
    }
    reap_all(v, n, SIGTERM);
    reap_all(v, n, SIGKILL);
    for (i = 0; i < n; i++) {
        subiter *it = v[i];

        if (subiter__alive(it)) {
            subiter__proc_kill(&it->proc);
        }
        rc[i] = end_code(it);
        subiter__proc_release(&it->proc);
        if (it->shm != NULL) {
            (void)munmap(it->shm, it->shm_len);
        }
        if (it->efd >= 0) {
            (void)close(it->efd);
        }
        subiter__free(it);
    }
}

int subiter_close(subiter *it)
{
    int r;

    if (it == NULL) {
        return 0;
    }
    subiter__close_many(&it, &r, 1);
    return r;
}

/* ---- what a pool builds on ---- */

int subiter__open_async(subiter **out, subiter_iter_fn fn, void *arg,
                        const subiter_opts *opts, unsigned worker_id,
                        unsigned num_workers)
{
    subiter_opts o;
    subiter *it;
    int r;

    *out = NULL;
    r = read_opts(&o, opts);
    if (r < 0) {
        return r;
    }
    it = new_handle();
    if (it == NULL) {
        return -ENOMEM;
    }
    it->timeout_ms = o.timeout_ms > 0 ? o.timeout_ms : 0;
    it->grace_ms = o.grace_ms;
    *out = it;
    return spawn(it, &o, fn, arg, worker_id, num_workers);
}

int subiter__init_wait(subiter *it)
{
    return await_init(it, true);
}

int subiter__init_step(subiter *it)
{
    int r = await_init(it, false);

    return r == -EAGAIN ? 0 : r == 0 ? 1 : r;
}

int subiter__next_nowait(subiter *it, subiter_item *item, bool items_ok)
{
    return next(it, item, false, items_ok);
}

int subiter__send_stop(subiter *it)
{
    if (it->state != ST_ITERATING || it->stop_sent) {
        return 0;
    }
    release_held(it);
    if (push_command(it, SUBITER__CMD_STOP, NULL, 0) < 0) {
        return broke(it, "command ring full");
    }
    it->stop_sent = true;
    return 0;
}

void subiter__release(subiter *it)
{
    release_held(it);
    if (it->need_wake && it->shm != NULL && it->state != ST_DEAD) {
        wake_child(it);
    }
}

void subiter__arm(subiter *it, bool on)
{
    if (it->shm == NULL) {
        return;
    }
    atomic_store_explicit(&it->shm->parent_sleeping, on ? 1 : 0,
                          memory_order_relaxed);
    if (on) {
        /* seq_cst: pairs with the fence in the worker's wake_parent();
         * the caller looks at the ring again before it sleeps. */
        atomic_thread_fence(memory_order_seq_cst);
    }
}

void subiter__fds(const subiter *it, int *efd, int *pidfd)
{
    *efd = it->efd;
    *pidfd = it->proc.reaped ? -1 : it->proc.pidfd;
}

bool subiter__check_exit(subiter *it)
{
    if (!it->exited && !it->died && it->proc.pid > 0 &&
        subiter__proc_exited(&it->proc)) {
        it->exited = true;
    }
    return it->exited;
}

void subiter__mark_exited(subiter *it)
{
    it->exited = true;
}

bool subiter__alive(const subiter *it)
{
    return it->proc.pid > 0 && !it->died && !it->proc.reaped;
}

int subiter__kill(subiter *it, int code, const char *why)
{
    return die(it, code, why);
}

void subiter__signal(subiter *it, int sig)
{
    if (subiter__alive(it)) {
        subiter__proc_signal(&it->proc, sig);
    }
}

/* ---- inspection ---- */

const char *subiter_errmsg(const subiter *it)
{
    return it == NULL ? "out of memory" : it->errmsg;
}

pid_t subiter_pid(const subiter *it)
{
    return it == NULL ? 0 : it->proc.pid;
}

int subiter_get_errinfo(const subiter *it, subiter_errinfo *out)
{
    subiter_errinfo e;
    int st = it != NULL ? it->proc.wait_status : 0;

    if (it == NULL || out == NULL || out->size < sizeof e) {
        return -EINVAL;
    }
    memset(&e, 0, sizeof e);
    e.size = sizeof e;
    e.code = it->last_code;
    e.pid = it->proc.pid;
    e.errnum = it->errnum;
    e.iteration = it->seq;
    e.items = it->items_iter;
    e.oom_suspected = it->oom_suspected;
    if (it->proc.reaped && !it->proc.status_known) {
        e.status_unknown = 1;
    } else if (it->proc.reaped && WIFEXITED(st)) {
        e.exited = 1;
        e.exit_status = WEXITSTATUS(st);
    } else if (it->proc.reaped && WIFSIGNALED(st)) {
        e.term_signal = WTERMSIG(st);
        e.core_dumped = WCOREDUMP(st) ? 1 : 0;
    }
    /* A newer caller's bigger struct keeps its extra fields. */
    memcpy(out, &e, sizeof e);
    return 0;
}

const char *subiter_version(void)
{
    return SUBITER_VERSION_STRING;
}
