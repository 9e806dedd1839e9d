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
#include "worker_impl.h"

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

int subiter__gen_misuse(subiter_gen *g, int code, const char *fmt, ...)
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
        subiter__gen_fast_update(g);
    }
    return !g->efd_lost;
}

void subiter__gen_ring_parent(subiter_gen *g)
{
    if (efd_ours(g)) {
        subiter__ring_parent(g->efd);
    }
}

int subiter__gen_efd_lost_error(subiter_gen *g)
{
    return subiter__gen_misuse(
        g, -EBADF,
        "the worker's eventfd (fd %d) was closed or replaced by "
        "the application: the worker cannot wake the parent any "
        "more, and exits",
        g->efd);
}

static void send_status(subiter_gen *g, int code, const char *msg, int errnum);

/* Read the commands that arrived during an iteration. */
void subiter__gen_poll_commands(subiter_gen *g)
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
    subiter__gen_fast_update(g);
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
int subiter__gen_reserve(subiter_gen *g, size_t frame_len, bool item,
                         unsigned char **frame)
{
    struct subiter__wait w = SUBITER__WAIT_INIT;
    void *p;
    int r;

    w.last = &g->last_wait_ns;
    w.quick = true;       /* wait.h: what it looks at moves once per batch */
    g->lean.room = 0;     /* a record of its own: lean_learn() again after */
    subiter__gen_show(g); /* the parent may wait for it */
    for (;;) {
        if (subiter__ring_pending(&g->cmd)) {
            subiter__gen_poll_commands(g);
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
                subiter__gen_wake_parent(g);
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

    if (subiter__gen_reserve(g, n, false, &frame) != 0) {
        /* Cannot happen with the message cap below the ring size. */
        library_exit(g, SUBITER__EXIT_STATUS);
    }
    subiter__wire_status_pack(code, g->seq, msg, errnum, frame);
    subiter__ring_commit_unshown(&g->items, (uint32_t)n);
    subiter__gen_show(g);
    subiter__gen_wake_parent(g);
    if (g->efd_lost) {
        /* The parent may sleep until it sees us exit: do it now, with the
         * status published. */
        library_exit(g, SUBITER__EXIT_EVENTFD);
    }
}

void subiter__gen_kick(subiter_gen *g)
{
    if (g != NULL && g->magic == GEN_MAGIC) {
        /* Make the parent look even if it is asleep. */
        atomic_store_explicit(&g->shm->parent_sleeping, 1,
                              memory_order_relaxed);
        subiter__gen_wake_parent(g);
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
    subiter__gen_fast_update(g);
    r = fn(g, arg);
    g->phase = PHASE_NONE;
    g->reserved = NULL; /* an uncommitted reservation is dropped */
    subiter__gen_fast_update(g);
    subiter__command_free(&g->start);
    if (g->abort) {
        worker_exit(0);
    }
    if (g->unexpected) {
        g->unexpected = false;
        send_status(g, SUBITER__UNEXPECTED, "command during an iteration", 0);
    }
    if (!efd_ours(g)) {
        (void)subiter__gen_efd_lost_error(g);
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
    /* Where we run, for the parent's spin while it waits for our first
     * status (wait.h: subiter__say_running()). */
    subiter__say_running(&g.shm->child_running);
    /* Before the worker first looks for a sleeping parent (wait.h): the
     * parent's membarrier reaches our CPU only once we are registered,
     * and what a forked worker inherited does not say whether the kernel
     * counts it. */
    (void)subiter__barrier_init(true);
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
    g.show_items = subiter__shm_batch(g.buffer_items);
    subiter__shm_rings(g.shm, &g.cmd, &g.items, false);
    if (g.shm->version != SUBITER__SHM_VERSION) {
        snprintf(g.msg, sizeof g.msg,
                 "worker speaks protocol version %u, parent %u",
                 SUBITER__SHM_VERSION, g.shm->version);
        send_status(&g, SUBITER__INIT_FAILED, g.msg, EPROTO);
        worker_exit(0);
    }

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
            (void)subiter__gen_efd_lost_error(&g);
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
