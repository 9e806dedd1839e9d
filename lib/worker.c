/* worker.c: the child side. Maps the shared region, runs the state machine
 * (Initialization -> Stand By <-> Iteration) and implements the calls a
 * generator makes: subiter_yield(), reserve/commit, fail, input. */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define GEN_MAGIC 0x67656e21u
/* The largest item the lean path takes: its bytes move in a few moves of
 * fixed size (copy_small()); a larger one's copy costs more than the
 * checks the lean path saves, and it takes the full path. */
#define LEAN_MAX 64u

enum phase { PHASE_NONE, PHASE_INIT, PHASE_ITER };

struct subiter_gen {
    uint32_t magic;
    enum phase phase;
    /* fast_reserve() may take the next item: in an iteration, no
     * reservation open, nothing to skip, no stop or abort read, the
     * eventfd ours. Set by fast_update() after each change of those: one
     * test per item instead of six. */
    bool fast;
    struct subiter__shm *shm;
    struct subiter__ring cmd;   /* consumer */
    struct subiter__ring items; /* producer */
    int efd;
    bool efd_lost; /* efd no longer is the parent's eventfd */
    dev_t efd_dev; /* its identity, recorded at start */
    ino_t efd_ino;
    bool parent_unfenced;           /* wait.h: subiter__wake_unfenced() */
    struct subiter__item_word word; /* the last item's prefix */
    int64_t last_wait_ns;           /* wait.h: subiter__spin_window() */
    uint32_t buffer_items;
    uint32_t published;
    uint32_t consumed; /* the parent's items_consumed, as last read */
    uint64_t seq;
    struct subiter__ident id;      /* shard, rank, the pool's seed */
    struct subiter__command start; /* owns the input */
    uint64_t skip;                 /* items still to discard (resume, rerun) */
    bool stop;
    bool abort;
    bool unexpected;
    unsigned char *reserved; /* frame of an open reservation */
    size_t reserved_len;
    bool has_msg;
    char msg[SUBITER__MSG_MAX];
    int auto_code;      /* the library's last error to a callback, or 0 */
    char auto_msg[256]; /* what was wrong */
    bool dropped;       /* an item did not fit: the iteration fails */
    char dropped_msg[256];
    /* subiter_yield()'s lean path: the last item's record as words (its
     * frame's prefix, its header, its bytes), and how many bytes and
     * items it may still publish before it must look at the parent's
     * index and count again. Set by lean_learn(); room 0 sends the next
     * item to the full path. */
    struct {
        size_t len; /* the item's bytes; SIZE_MAX: none yet */
        uint64_t prefix;
        uint64_t hdr;
        uint32_t rec;
        uint32_t room;
        uint32_t items;
    } lean;
};

/* Recompute g->fast from what it stands for. */
static void fast_update(subiter_gen *g)
{
    g->fast = g->phase == PHASE_ITER && g->reserved == NULL && g->skip == 0 &&
              !g->efd_lost && !g->stop && !g->abort;
}

#ifdef SUBITER_COVERAGE
void __gcov_dump(void);
#endif

/* Every way out of the worker: _exit(), never exit() (the parent's atexit
 * handlers and stdio buffers are not the worker's). A coverage build first
 * writes the worker's counters, which _exit() would lose. */
static _Noreturn void worker_exit(int status)
{
#ifdef SUBITER_COVERAGE
    __gcov_dump();
#endif
    _exit(status);
}

/* The library itself ends the worker: say so in the region first, so that
 * the parent tells this status from the application's own (error.h). */
static _Noreturn void library_exit(subiter_gen *g, int status)
{
    /* release: the parent reads it after the exit (wait). */
    atomic_store_explicit(&g->shm->worker_stage, (uint32_t)status,
                          memory_order_release);
    worker_exit(status);
}

/* Record the library's error `code` for a callback and what was wrong;
 * returns code. */
static int misuse(subiter_gen *g, int code, const char *fmt, ...)
    SUBITER_PRINTF(3, 4);

static int misuse(subiter_gen *g, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(g->auto_msg, sizeof g->auto_msg, fmt, ap);
    va_end(ap);
    g->auto_code = code;
    return code;
}

/* ---- test hooks ---- */

struct subiter__shm *subiter__gen_shm(subiter_gen *g)
{
    return g != NULL && g->magic == GEN_MAGIC ? g->shm : NULL;
}

/* ---- talking to the parent ---- */

/* Is g->efd still the eventfd the parent gave us? A callback may have
 * closed it (close_range() in a generator that closes "all" fds) and the
 * number may now be another file of the application's, which the wake-up
 * would write 8 bytes into. One fstat(): only on the way to a write, and
 * once at the end of each callback. Another anonymous-inode file (an
 * eventfd of the application's) on the same number is not told apart. */
static bool efd_ours(subiter_gen *g)
{
    struct stat st;

    if (!g->efd_lost && (fstat(g->efd, &st) < 0 || st.st_dev != g->efd_dev ||
                         st.st_ino != g->efd_ino)) {
        g->efd_lost = true;
        fast_update(g);
    }
    return !g->efd_lost;
}

/* The parent was armed: ring its eventfd if it still is ours. */
static SUBITER__NOINLINE void ring_parent(subiter_gen *g)
{
    if (efd_ours(g)) {
        subiter__ring_parent(g->efd);
    }
}

static inline void wake_parent(subiter_gen *g)
{
    /* Without the eventfd the parent is not woken: it sees the worker's
     * exit instead, which follows soon (send_status(), iterate()). */
    if (!g->efd_lost &&
        subiter__wake_if_armed(&g->shm->parent_sleeping, g->parent_unfenced)) {
        ring_parent(g);
    }
}

static int efd_lost_error(subiter_gen *g)
{
    return misuse(g, -EBADF,
                  "the worker's eventfd (fd %d) was closed or replaced by "
                  "the application: the worker cannot wake the parent any "
                  "more, and exits",
                  g->efd);
}

static void send_status(subiter_gen *g, int code, const char *msg, int errnum);

/* Read the commands that arrived during an iteration. */
static void poll_commands(subiter_gen *g)
{
    const unsigned char *frame;
    uint32_t len;
    struct subiter__command c;

    while (subiter__ring_peek(&g->cmd, &frame, &len) == 1) {
        int r = subiter__wire_command_decode(frame, len, &c);

        subiter__ring_release(&g->cmd, len);
        if (r == 0 && c.cmd == SUBITER__CMD_STOP) {
            g->stop = true;
        } else if (r == 0 && c.cmd == SUBITER__CMD_ABORT) {
            g->abort = true;
        } else {
            /* Reported when the generator has returned: sending now could
             * wait for room inside a wait for room. */
            g->unexpected = true;
        }
        subiter__command_free(&c);
    }
    fast_update(g);
    subiter__ring_publish(&g->cmd); /* the commands it read */
}

/* May one more item be published? Re-reads the parent's count only when
 * the cached one says no, so the worker does not pull the parent's cache
 * line over on every item. */
static bool below_item_bound(subiter_gen *g)
{
    if (g->published - g->consumed < g->buffer_items) {
        return true;
    }
    /* acquire: pairs with the parent's release of items_consumed. */
    g->consumed =
        atomic_load_explicit(&g->shm->items_consumed, memory_order_acquire);
    return g->published - g->consumed < g->buffer_items;
}

/*
 * Wait for room for a frame of `frame_len` bytes in the item ring (and,
 * for an item, below buffer_items). An item wait ends early with
 * SUBITER_STOPPED when STOP or ABORT arrives.
 */
static int reserve(subiter_gen *g, size_t frame_len, bool item,
                   unsigned char **frame)
{
    struct subiter__wait w = SUBITER__WAIT_INIT;
    void *p;
    int r;

    w.last = &g->last_wait_ns;
    g->lean.room = 0; /* a record of its own: lean_learn() again after */
    for (;;) {
        if (subiter__ring_pending(&g->cmd)) {
            poll_commands(g);
        }
        if (item && (g->stop || g->abort)) {
            r = SUBITER_STOPPED;
            break;
        }
        if (g->abort) {
            /* A status that waits for room after ABORT would wait for a
             * parent that no longer reads: leave now. */
            worker_exit(0);
        }
        if (!item || below_item_bound(g)) {
            uint32_t pos = g->items.pos;

            r = subiter__ring_reserve(&g->items, frame_len, &p);
            if (g->items.pos != pos) {
                /* It published padding up to the wrap: the parent must
                 * consume it before there is room at the start. */
                wake_parent(g);
            }
            if (r != -EAGAIN) {
                break;
            }
        }
        subiter__worker_wait(g->shm, &w);
    }
    subiter__worker_wait_end(g->shm, &w);
    if (r == 0) {
        *frame = p;
    }
    return r;
}

static void send_status(subiter_gen *g, int code, const char *msg, int errnum)
{
    size_t n = subiter__wire_status_size(code, g->seq, msg, errnum);
    unsigned char *frame;

    if (reserve(g, n, false, &frame) != 0) {
        /* Cannot happen with the message cap below the ring size. */
        library_exit(g, SUBITER__EXIT_STATUS);
    }
    subiter__wire_status_pack(code, g->seq, msg, errnum, frame);
    subiter__ring_commit(&g->items, (uint32_t)n);
    wake_parent(g);
    if (g->efd_lost) {
        /* The parent may sleep until it sees us exit: do it now, with the
         * status published. */
        library_exit(g, SUBITER__EXIT_EVENTFD);
    }
}

/* An item is published: count it, and wake the parent if it sleeps. */
static inline void item_published(subiter_gen *g)
{
    /* Below the bound: lean_yield() or fast_reserve() looked, or
     * reserve() waited. */
    g->published++;
    atomic_store_explicit(&g->shm->items_published, g->published,
                          memory_order_relaxed);
    wake_parent(g);
}

/* After an item of `len` bytes took the full path: its record as words
 * for the lean path, and the room it may use, from the parent's index and
 * count as last read (what the full path just checked): below the
 * consumer's index, keeping a header free (subiter__ring_fits()), and
 * before the end of the ring. */
static void lean_learn(subiter_gen *g, size_t len)
{
    const struct subiter__ring *r = &g->items;
    uint32_t fit = r->cached + r->size - SUBITER__REC_HDR - r->pos;
    uint32_t to_end = r->size - (r->pos & r->mask);

    if (len > LEAN_MAX) {
        g->lean.room = 0; /* the record moved pos: learn again first */
        return;
    }
    if (g->lean.len != len) {
        g->lean.len = len;
        g->lean.prefix = subiter__wire_item_word((uint32_t)len);
        g->lean.hdr = subiter__ring_hdr_word(
            (uint32_t)(SUBITER__ITEM_PREFIX + len), SUBITER__REC_FRAME);
        g->lean.rec =
            (uint32_t)subiter__ring_rec_bytes(SUBITER__ITEM_PREFIX + len);
    }
    g->lean.room = fit < to_end ? fit : to_end;
    g->lean.items = g->buffer_items - (g->published - g->consumed);
}

static void commit_item(subiter_gen *g, unsigned char *frame, size_t len)
{
    subiter__wire_item_prefix(&g->word, frame, len);
    subiter__ring_commit(&g->items, (uint32_t)(SUBITER__ITEM_PREFIX + len));
    item_published(g);
    lean_learn(g, len);
}

void subiter__gen_kick(subiter_gen *g)
{
    if (g != NULL && g->magic == GEN_MAGIC) {
        /* Make the parent look even if it is asleep. */
        atomic_store_explicit(&g->shm->parent_sleeping, 1,
                              memory_order_relaxed);
        wake_parent(g);
    }
}

/* ---- the state machine ---- */

void subiter__reset_signals(void)
{
    struct sigaction sa;
    sigset_t all;
    int sig;

    /* The child must not run the parent's handlers (Check's runner, for
     * one, kills the whole process group from its SIGTERM handler). */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) {
            (void)sigaction(sig, &sa, NULL);
        }
    }
    sigemptyset(&all);
    (void)sigprocmask(SIG_SETMASK, &all, NULL);
}

/* The terminal's Ctrl-C and Ctrl-\ go to the whole foreground process
 * group: they are the parent's to handle (its exit ends the workers). An
 * initializer may set handlers of its own. */
void subiter__ignore_terminal_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    (void)sigaction(SIGINT, &sa, NULL);
    (void)sigaction(SIGQUIT, &sa, NULL);
}

static const char *failure_message(subiter_gen *g, int r)
{
    if (g->has_msg) {
        return g->msg;
    }
    if (g->auto_code != 0 && r == g->auto_code) {
        return g->auto_msg;
    }
    if (g->dropped && r == -EMSGSIZE) {
        return g->dropped_msg;
    }
    return subiter_strerror(r);
}

static int errnum_of(int r)
{
    return r < 0 && r > SUBITER_EINIT ? -r : 0;
}

static void clear_messages(subiter_gen *g)
{
    g->has_msg = false;
    g->auto_code = 0;
    g->dropped = false;
    g->msg[0] = '\0';
}

/* libc's own generators start from this worker's seed, so that forked
 * workers do not all draw what the parent would have (as PyTorch reseeds
 * Python's random in each worker). */
static void reseed(const subiter_gen *g, uint64_t iteration)
{
    uint64_t s = subiter__seed_of(&g->id, iteration);

    srand((unsigned)(s ^ (s >> 32)));
    srand48((long)s);
}

static void iterate(subiter_gen *g, subiter_iter_fn fn, void *arg)
{
    int r;

    g->stop = false;
    g->abort = false;
    g->skip = g->start.start.skip;
    clear_messages(g);
    reseed(g, g->start.start.iteration);
    send_status(g, SUBITER__STARTED, NULL, 0);
    g->phase = PHASE_ITER;
    fast_update(g);
    r = fn(g, arg);
    g->phase = PHASE_NONE;
    g->reserved = NULL; /* an uncommitted reservation is dropped */
    fast_update(g);
    subiter__command_free(&g->start);
    if (g->abort) {
        worker_exit(0);
    }
    if (g->unexpected) {
        g->unexpected = false;
        send_status(g, SUBITER__UNEXPECTED, "command during an iteration", 0);
    }
    if (!efd_ours(g)) {
        (void)efd_lost_error(g);
        send_status(g, SUBITER__FAILED, g->auto_msg, EBADF); /* exits */
    }
    if (g->stop || (r == 0 && !g->dropped)) {
        send_status(g, SUBITER__FINISHED, NULL, 0);
    } else if (r < 0) {
        send_status(g, SUBITER__FAILED, failure_message(g, r), errnum_of(r));
    } else if (g->dropped) {
        /* It went on after -EMSGSIZE: the item is lost, so the iteration
         * is not a success. */
        send_status(g, SUBITER__FAILED, g->dropped_msg, EMSGSIZE);
    } else {
        snprintf(g->msg, sizeof g->msg,
                 "the generator returned %d without a stop: it must return "
                 "0 at its end or a negative error",
                 r);
        send_status(g, SUBITER__FAILED, g->msg, 0);
    }
}

static void stand_by(subiter_gen *g, subiter_iter_fn fn, void *arg)
{
    const unsigned char *frame;
    struct subiter__command c;
    uint32_t len;
    int r;

    for (;;) {
        struct subiter__wait w = SUBITER__WAIT_INIT;

        w.quick = true; /* the parent waits for what the command starts */
        while ((r = subiter__ring_peek(&g->cmd, &frame, &len)) == 0) {
            subiter__worker_wait(g->shm, &w);
        }
        subiter__worker_wait_end(g->shm, &w);
        if (r < 0) {
            library_exit(g, SUBITER__EXIT_CMD_RING);
        }
        r = subiter__wire_command_decode(frame, len, &c);
        subiter__ring_release(&g->cmd, len);
        subiter__ring_publish(&g->cmd);
        if (r == 0 && c.cmd == SUBITER__CMD_START) {
            g->start = c;
            g->seq = c.seq;
            iterate(g, fn, arg);
            continue;
        }
        subiter__command_free(&c);
        if (r == 0 && c.cmd == SUBITER__CMD_STOP) {
            continue; /* so the parent can always force Stand By */
        }
        if (r == 0 && c.cmd == SUBITER__CMD_ABORT) {
            worker_exit(0);
        }
        send_status(g, SUBITER__UNEXPECTED,
                    r == -ENOMEM ? "out of memory reading a command"
                                 : "unexpected command in Stand By",
                    r == -ENOMEM ? ENOMEM : 0);
    }
}

_Noreturn void subiter__worker_main(const struct subiter__child_args *a)
{
    subiter_gen g;
    struct stat st;
    bool barrier;
    int r;

    if (!a->signals_clean) {
        subiter__reset_signals();
    }
    subiter__ignore_terminal_signals();
    /* A fault injected into the parent's allocations is not the worker's:
     * start counting afresh. */
    (void)subiter__alloc_fail_at(0);
    /* The worker must not outlive the thread that forked it; and the
     * parent may have died before prctl(), so compare with the pid
     * recorded before fork(). */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != a->parent) {
        worker_exit(SUBITER__EXIT_ORPHAN);
    }
    memset(&g, 0, sizeof g);
    g.lean.len = SIZE_MAX; /* nothing learned yet */
    g.shm = subiter__shm_attach(a->memfd, a->shm_len, &r);
    if (g.shm == NULL) {
        worker_exit(r);
    }
    /* Before the worker first wakes or sleeps (wait.h): what a forked
     * worker inherited does not say whether the kernel counts it. */
    barrier = subiter__barrier_init(true);
    g.parent_unfenced = subiter__wake_unfenced(g.shm->parent_barrier);
    /* Before any user code: from here on the parent knows whether this
     * worker lives without trusting its pid number. Without the lock it
     * asks /proc instead. */
    (void)subiter__life_hold(&g.shm->life, sizeof g.shm->life_room);
    /* From here on the application's code may run: an exit status is the
     * library's only when library_exit() recorded it. */
    atomic_store_explicit(&g.shm->worker_stage, SUBITER__STAGE_MAPPED,
                          memory_order_relaxed);
    /* Before the initializer, so that handlers it installs win. */
    subiter__trace_install(g.shm, a->shm_len);
    g.magic = GEN_MAGIC;
    g.efd = a->efd;
    if (fstat(g.efd, &st) == 0) {
        g.efd_dev = st.st_dev;
        g.efd_ino = st.st_ino;
    } else {
        g.efd_lost = true;
    }
    g.id = a->id;
    /* 0 counts as 1 (a worker forked by hand, as the tests do). */
    g.id.num_workers += g.id.num_workers == 0;
    g.id.world_size += g.id.world_size == 0;
    g.buffer_items = g.shm->buffer_items;
    subiter__shm_rings(g.shm, &g.cmd, &g.items, false);
    if (g.shm->version != SUBITER__SHM_VERSION) {
        snprintf(g.msg, sizeof g.msg,
                 "worker speaks protocol version %u, parent %u",
                 SUBITER__SHM_VERSION, g.shm->version);
        send_status(&g, SUBITER__INIT_FAILED, g.msg, EPROTO);
        worker_exit(0);
    }
    /* Tell the parent, which until then wakes us with a fence. */
    atomic_store_explicit(&g.shm->worker_barrier, barrier,
                          memory_order_relaxed);

    reseed(&g, SUBITER__INIT_ITERATION);
    /* A forked worker has the unwinder its parent loaded; an exec'd one
     * loads it (about 300 us) before any user code can crash: before the
     * initializer, or without one while the parent answers INIT_OK. */
    if (a->init != NULL) {
        subiter__trace_prime();
        g.phase = PHASE_INIT;
        r = a->init(&g, a->arg);
        g.phase = PHASE_NONE;
        if (!efd_ours(&g)) {
            (void)efd_lost_error(&g);
            send_status(&g, SUBITER__INIT_FAILED, g.auto_msg, EBADF);
        }
        if (r != 0) {
            send_status(&g, SUBITER__INIT_FAILED, failure_message(&g, r),
                        errnum_of(r));
            worker_exit(0);
        }
    }
    clear_messages(&g);
    send_status(&g, SUBITER__INIT_OK, NULL, 0);
    if (a->init == NULL) {
        subiter__trace_prime();
    }
    stand_by(&g, a->fn, a->arg);
    worker_exit(0);
}

/* ---- the generator's calls ---- */

static bool in_iteration(const subiter_gen *g)
{
    return g != NULL && g->magic == GEN_MAGIC && g->phase == PHASE_ITER;
}

/* Is g in a generator, for `call`? If not, -EINVAL with what was wrong
 * when g is ours at all. */
static int in_generator(subiter_gen *g, const char *call)
{
    if (g == NULL || g->magic != GEN_MAGIC) {
        return -EINVAL;
    }
    if (g->phase != PHASE_ITER) {
        return misuse(g, -EINVAL, "%s() called %s", call,
                      g->phase == PHASE_INIT ? "in the initializer"
                                             : "outside the generator");
    }
    return 0;
}

/* in_generator(), and no reservation open. */
static int check_iteration(subiter_gen *g, const char *call)
{
    int r = in_generator(g, call);

    if (r < 0) {
        return r;
    }
    if (g->reserved != NULL) {
        return misuse(g, -EINVAL,
                      "%s() called while a reservation of %zu bytes is open "
                      "(subiter_commit() it first)",
                      call, g->reserved_len);
    }
    return 0;
}

static int item_reserve(subiter_gen *g, size_t len, unsigned char **frame)
{
    size_t max = subiter__ring_max_frame(&g->items) - SUBITER__ITEM_PREFIX;

    if (g->efd_lost) {
        return efd_lost_error(g);
    }
    if (len > max) {
        snprintf(g->dropped_msg, sizeof g->dropped_msg,
                 "item of %zu bytes does not fit the item ring: at most %zu "
                 "bytes with buffer_bytes %u",
                 len, max, g->items.size);
        g->dropped = true;
        return -EMSGSIZE;
    }
    if (g->stop || g->abort) {
        return SUBITER_STOPPED;
    }
    return reserve(g, SUBITER__ITEM_PREFIX + len, true, frame);
}

/* One item of those already delivered: dropped before it reaches the
 * ring, but a STOP or ABORT is still obeyed (a long skip must not make
 * the parent wait). */
static int discard(subiter_gen *g)
{
    if (subiter__ring_pending(&g->cmd)) {
        poll_commands(g);
    }
    if (g->stop || g->abort) {
        return SUBITER_STOPPED;
    }
    g->skip--;
    fast_update(g);
    return 0;
}

/* The common item, inline and without a call per check: in an
 * iteration, no reservation open, nothing to discard, no command waiting,
 * below the item bound and room in the ring as last seen. The frame to
 * write, or NULL: then item_reserve() and the checks before it decide
 * (and report). */
static inline unsigned char *fast_reserve(subiter_gen *g, size_t len)
{
    if (g == NULL || g->magic != GEN_MAGIC || !g->fast ||
        len > g->items.size || /* no wrap in the sum below */
        g->published - g->consumed >= g->buffer_items ||
        subiter__ring_pending(&g->cmd)) {
        return NULL;
    }
    return subiter__ring_reserve_fast(&g->items, SUBITER__ITEM_PREFIX + len);
}

/* Copy n <= LEAN_MAX bytes in moves of fixed size, two of them
 * overlapping when n is between: no call, so that lean_yield() needs no
 * registers saved. */
static inline void copy_small(unsigned char *d, const unsigned char *s,
                              size_t n)
{
    if (n >= 32) {
        memcpy(d, s, 32);
        memcpy(d + n - 32, s + n - 32, 32);
    } else if (n >= 16) {
        memcpy(d, s, 16);
        memcpy(d + n - 16, s + n - 16, 16);
    } else if (n >= 8) {
        memcpy(d, s, 8);
        memcpy(d + n - 8, s + n - 8, 8);
    } else if (n >= 4) {
        memcpy(d, s, 4);
        memcpy(d + n - 4, s + n - 4, 4);
    } else if (n > 0) {
        d[0] = s[0];
        d[n / 2] = s[n / 2];
        d[n - 1] = s[n - 1];
    }
}

/*
 * subiter_yield()'s common case for a small item: of the last one's size,
 * with room and below the bound as far as lean_learn() and the items
 * since say, in an iteration (g->fast) with no command waiting. Its
 * record is the words learned: the copy, the prefix, the header. Through
 * fast_reserve() and commit_item() a 64-byte item took the worker 116
 * instructions, here 78; a worker that keeps ahead of the parent sets the
 * pace with them (an empty loop of 10 turns added per item in bench/'s
 * generator cost its 64-byte stream 13 ns per item).
 */
static inline bool lean_yield(subiter_gen *g, const void *data, size_t len)
{
    unsigned char *frame;
    uint64_t prefix;

    if (g == NULL || g->magic != GEN_MAGIC || !g->fast || len != g->lean.len ||
        data == NULL || g->lean.items == 0 || g->lean.rec > g->lean.room ||
        subiter__ring_pending(&g->cmd)) {
        return false;
    }
    frame = g->items.data + (g->items.pos & g->items.mask) + SUBITER__REC_HDR;
    prefix = g->lean.prefix;
    copy_small(frame + SUBITER__ITEM_PREFIX, data, len);
    memcpy(frame, &prefix, sizeof prefix);
    subiter__ring_put_word(&g->items, g->lean.hdr, g->lean.rec);
    g->lean.room -= g->lean.rec;
    g->lean.items--;
    item_published(g);
    return true;
}

/* subiter_yield() past the lean path: the first item of a size, a large
 * one, a full ring or bound, a command, a reason to refuse. */
static SUBITER__NOINLINE int yield_full(subiter_gen *g, const void *data,
                                        size_t len)
{
    unsigned char *frame;
    int r;

    if (data != NULL && (frame = fast_reserve(g, len)) != NULL) {
        memcpy(frame + SUBITER__ITEM_PREFIX, data, len);
        commit_item(g, frame, len);
        return 0;
    }
    r = check_iteration(g, "subiter_yield");
    if (r < 0) {
        return r;
    }
    if (data == NULL && len > 0) {
        return misuse(g, -EINVAL, "subiter_yield() of %zu bytes at NULL", len);
    }
    if (g->skip > 0) {
        return discard(g);
    }
    r = item_reserve(g, len, &frame);
    if (r != 0) {
        return r;
    }
    if (len > 0) {
        memcpy(frame + SUBITER__ITEM_PREFIX, data, len);
    }
    commit_item(g, frame, len);
    return 0;
}

int subiter_yield(subiter_gen *g, const void *data, size_t len)
{
    if (lean_yield(g, data, len)) {
        return 0;
    }
    return yield_full(g, data, len);
}

int subiter_reserve(subiter_gen *g, size_t len, void **buf)
{
    unsigned char *frame;
    int r;

    frame = buf != NULL ? fast_reserve(g, len) : NULL;
    if (frame == NULL) {
        if (buf != NULL) {
            *buf = NULL;
        }
        r = check_iteration(g, "subiter_reserve");
        if (r < 0) {
            return r;
        }
        if (buf == NULL) {
            return misuse(g, -EINVAL, "subiter_reserve() with a NULL buf");
        }
        r = item_reserve(g, len, &frame);
        if (r != 0) {
            return r;
        }
    }
    g->reserved = frame;
    g->reserved_len = len;
    g->fast = false;
    *buf = frame + SUBITER__ITEM_PREFIX;
    return 0;
}

int subiter_commit(subiter_gen *g, size_t len)
{
    unsigned char *frame;
    int r = in_generator(g, "subiter_commit");

    if (r < 0) {
        return r;
    }
    if (g->reserved == NULL) {
        return misuse(g, -EINVAL,
                      "subiter_commit() without an open subiter_reserve()");
    }
    if (len > g->reserved_len) {
        return misuse(g, -EINVAL,
                      "subiter_commit() of %zu bytes, but only %zu were "
                      "reserved",
                      len, g->reserved_len);
    }
    frame = g->reserved;
    g->reserved = NULL;
    fast_update(g);
    if (g->skip > 0) {
        /* Never published: the next reservation reuses its room. */
        return discard(g);
    }
    commit_item(g, frame, len);
    return 0;
}

int subiter_fail(subiter_gen *g, const char *fmt, ...)
{
    va_list ap;

    if (g == NULL || g->magic != GEN_MAGIC || g->phase == PHASE_NONE ||
        fmt == NULL) {
        return -EINVAL;
    }
    va_start(ap, fmt);
    vsnprintf(g->msg, sizeof g->msg, fmt, ap);
    va_end(ap);
    g->has_msg = true;
    return g->phase == PHASE_INIT ? SUBITER_EINIT : SUBITER_EITER;
}

const void *subiter_input(const subiter_gen *g, size_t *len)
{
    if (len != NULL) {
        *len = 0;
    }
    if (!in_iteration(g) || g->start.input_len == 0) {
        return NULL;
    }
    if (len != NULL) {
        *len = g->start.input_len;
    }
    return g->start.input;
}

static bool valid(const subiter_gen *g)
{
    return g != NULL && g->magic == GEN_MAGIC;
}

unsigned subiter_worker_id(const subiter_gen *g)
{
    return valid(g) ? g->id.worker_id : 0;
}

unsigned subiter_num_workers(const subiter_gen *g)
{
    return valid(g) ? g->id.num_workers : 1;
}

unsigned subiter_rank(const subiter_gen *g)
{
    return valid(g) ? g->id.rank : 0;
}

unsigned subiter_world_size(const subiter_gen *g)
{
    return valid(g) ? g->id.world_size : 1;
}

unsigned subiter_local_id(const subiter_gen *g)
{
    return valid(g) ? g->id.local_id : 0;
}

unsigned long long subiter_seed(const subiter_gen *g)
{
    if (!valid(g)) {
        return 0;
    }
    return subiter__seed_of(&g->id, g->phase == PHASE_ITER
                                        ? g->start.start.iteration
                                        : SUBITER__INIT_ITERATION);
}

unsigned long long subiter_skip(subiter_gen *g)
{
    unsigned long long n;

    if (!in_iteration(g)) {
        return 0;
    }
    /* The generator seeks past them itself: the library drops no more. */
    n = g->skip;
    g->skip = 0;
    fast_update(g);
    return n;
}
