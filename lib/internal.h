/* internal.h: declarations shared by the files of lib/; never installed.
 *
 * The shared region (one memfd per worker) is a cross-process ABI:
 *
 *   struct subiter__shm       header: magic, version, sizes, doorbells and
 *                             the four ring indices, each on its own line
 *   command ring data         cmd_bytes   (parent -> worker)
 *   item ring data            item_bytes  (worker -> parent: all statuses)
 *
 * Records in both rings are 8-byte aligned: an 8-byte header (frame length,
 * kind) and then one encoded protobuf message (the frame). A PAD record
 * fills the space up to the end of the ring so that no record wraps.
 */
#ifndef SUBITER_INTERNAL_H
#define SUBITER_INTERNAL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "subiter.h"

#define SUBITER__HIDDEN __attribute__((visibility("hidden")))
#define SUBITER__CACHELINE 64
#define SUBITER__NS_PER_MS INT64_C(1000000)

/* Without a pidfd (valgrind 3.19 answers ENOSYS for pidfd_open), a parent
 * looks for its workers' deaths between sleeps of this length: it is then
 * the detection delay. */
#define SUBITER__FALLBACK_SLICE_MS 5

/* ---- alloc.c ---- */

/* Every allocation of the library goes through these two. */
SUBITER__HIDDEN void *subiter__malloc(size_t n);
SUBITER__HIDDEN void subiter__free(void *p);

/*
 * Test hook: make the n-th allocation from now on fail (1 = the next one),
 * 0 disables. Counts per thread; returns how many allocations were made
 * since the last call (for counting allocations per item).
 */
SUBITER__HIDDEN unsigned long subiter__alloc_fail_at(unsigned long n);

/* ---- ring.c ---- */

#define SUBITER__SHM_MAGIC 0x52495553u /* "SUIR" little-endian */
#define SUBITER__SHM_VERSION 1u

#define SUBITER__REC_HDR 8u  /* u32 frame length, u32 kind */
#define SUBITER__REC_FRAME 0 /* kind: one protobuf frame */
#define SUBITER__REC_PAD 1   /* kind: skip to the end of the ring */

struct subiter__shm {
    uint32_t magic;
    uint32_t version;
    uint32_t hdr_bytes;    /* offset of the command ring data */
    uint32_t cmd_bytes;    /* command ring capacity, a power of two */
    uint32_t item_bytes;   /* item ring capacity, a power of two */
    uint32_t buffer_items; /* max items published and not consumed */

    /* Worker's doorbell: a futex word the parent bumps to wake it. */
    _Alignas(SUBITER__CACHELINE) _Atomic uint32_t child_bell;
    _Atomic uint32_t child_sleeping;

    /* Set by the parent while it sleeps in poll() on its eventfd. */
    _Alignas(SUBITER__CACHELINE) _Atomic uint32_t parent_sleeping;

    /* Item ring, written by the worker. */
    _Alignas(SUBITER__CACHELINE) _Atomic uint32_t item_tail;
    _Atomic uint32_t items_published;

    /* Item ring, written by the parent. */
    _Alignas(SUBITER__CACHELINE) _Atomic uint32_t item_head;
    _Atomic uint32_t items_consumed;

    /* Command ring, written by the parent. */
    _Alignas(SUBITER__CACHELINE) _Atomic uint32_t cmd_tail;

    /* Command ring, written by the worker. */
    _Alignas(SUBITER__CACHELINE) _Atomic uint32_t cmd_head;

    /* Test hooks only: a test's generator may scribble here. */
    _Alignas(SUBITER__CACHELINE) uint32_t reserved[16];
};

/* One side's view of one ring. Lives in private memory. */
struct subiter__ring {
    _Atomic uint32_t *head; /* consumer's index, in shared memory */
    _Atomic uint32_t *tail; /* producer's index, in shared memory */
    unsigned char *data;
    uint32_t size; /* power of two */
    uint32_t mask;
    uint32_t pos;    /* producer: next write; consumer: next read */
    uint32_t cached; /* the other side's index, as last read */
};

SUBITER__HIDDEN void subiter__ring_init(struct subiter__ring *r,
                                        _Atomic uint32_t *head,
                                        _Atomic uint32_t *tail, void *data,
                                        uint32_t size, bool producer);

/*
 * Producer: room for a record whose frame is `frame_len` bytes. Returns 0
 * and *frame (where to write it), -EAGAIN when the ring is too full (wait
 * for the consumer and retry; a PAD record may have been published), or
 * -EMSGSIZE when it can never fit.
 */
SUBITER__HIDDEN int subiter__ring_reserve(struct subiter__ring *r,
                                          size_t frame_len, void **frame);
/* Producer: publish the reserved record with its final frame length. */
SUBITER__HIDDEN void subiter__ring_commit(struct subiter__ring *r,
                                          uint32_t frame_len);
/* The largest frame a record may carry in this ring. */
SUBITER__HIDDEN size_t subiter__ring_max_frame(const struct subiter__ring *r);

/*
 * Consumer: the next record, bounds-checked (the producer is not trusted).
 * Returns 1 with *frame and *len (a view into the ring), 0 when the ring is
 * empty, -EPROTO when the indices or the record are corrupt. PAD records
 * are skipped (and released).
 */
SUBITER__HIDDEN int subiter__ring_peek(struct subiter__ring *r,
                                       const unsigned char **frame,
                                       uint32_t *len);
/* Consumer: give back the record returned by the last peek. */
SUBITER__HIDDEN void subiter__ring_release(struct subiter__ring *r,
                                           uint32_t len);
/* Consumer: is anything published past what we have read? */
SUBITER__HIDDEN bool subiter__ring_pending(struct subiter__ring *r);

/* ---- wire.c ---- */

/* Bytes of the fast item frame before the item's data. */
#define SUBITER__ITEM_PREFIX 8u

/* Kinds of status the parent reads (Status.code). */
enum subiter__code {
    SUBITER__INIT_OK = 1,
    SUBITER__INIT_FAILED = 2,
    SUBITER__STARTED = 3,
    SUBITER__FINISHED = 4,
    SUBITER__ITEM = 5,
    SUBITER__FAILED = 6,
    SUBITER__UNEXPECTED = 7
};
enum subiter__cmd {
    SUBITER__CMD_START = 1,
    SUBITER__CMD_STOP = 2,
    SUBITER__CMD_ABORT = 3
};

/* A decoded status; views point into `owned` or the ring. */
struct subiter__status {
    int code;
    uint64_t seq;
    const void *item;
    size_t item_len;
    const char *message; /* never NULL */
    int errnum;
    void *owned; /* unpacked message to free with subiter__status_free */
};

/* A decoded command; input points into `owned`. */
struct subiter__command {
    int cmd;
    uint64_t seq;
    const void *input;
    size_t input_len;
    void *owned;
};

/* Fast item frame: write the prefix for an item of `len` bytes. */
SUBITER__HIDDEN void subiter__wire_item_prefix(unsigned char *frame,
                                               size_t len);
/* Encoded size / encoding of a non-item status. */
SUBITER__HIDDEN size_t subiter__wire_status_size(int code, uint64_t seq,
                                                 const char *message,
                                                 int errnum);
SUBITER__HIDDEN size_t subiter__wire_status_pack(int code, uint64_t seq,
                                                 const char *message,
                                                 int errnum, void *out);
SUBITER__HIDDEN size_t subiter__wire_command_size(int cmd, uint64_t seq,
                                                  size_t input_len);
SUBITER__HIDDEN size_t subiter__wire_command_pack(int cmd, uint64_t seq,
                                                  const void *input,
                                                  size_t input_len, void *out);
/*
 * Decode a status frame. The fast item form is viewed in place (the item
 * points into `frame`); anything else is copied out of shared memory and
 * unpacked by protobuf-c. Returns 0, -EPROTO on bad bytes, -ENOMEM.
 */
SUBITER__HIDDEN int subiter__wire_status_decode(const unsigned char *frame,
                                                size_t len,
                                                struct subiter__status *st);
SUBITER__HIDDEN void subiter__status_free(struct subiter__status *st);
SUBITER__HIDDEN int subiter__wire_command_decode(const unsigned char *frame,
                                                 size_t len,
                                                 struct subiter__command *c);
SUBITER__HIDDEN void subiter__command_free(struct subiter__command *c);

/* ---- proc.c ---- */

/* What the parent knows about one child process. */
struct subiter__proc {
    pid_t pid;
    int pidfd;       /* -1 when pidfd_open() is unavailable (valgrind) */
    bool reaped;     /* waited for: pid may be reused, never signal it */
    bool signalled;  /* close had to send SIGTERM or SIGKILL */
    int wait_status; /* valid when reaped and status_known */
    bool status_known;
};

SUBITER__HIDDEN void subiter__proc_init(struct subiter__proc *p);
/* Open the pidfd (or fall back) for a freshly forked child. */
SUBITER__HIDDEN void subiter__proc_watch(struct subiter__proc *p, pid_t pid);
/* Has the child exited (without reaping it)? */
SUBITER__HIDDEN bool subiter__proc_exited(struct subiter__proc *p);
/*
 * Wait until `efd` is readable, the child exits, or `deadline_ns` (0: no
 * deadline) passes. Returns 1 (efd), 0 (deadline), -ECHILD (exited).
 */
SUBITER__HIDDEN int subiter__proc_wait(struct subiter__proc *p, int efd,
                                       int64_t deadline_ns);
/* Reap, blocking at most until deadline_ns (0: forever). 0 or -ETIMEDOUT. */
SUBITER__HIDDEN int subiter__proc_reap(struct subiter__proc *p,
                                       int64_t deadline_ns);
/* Send `sig` unless the child is reaped (never to a recycled pid). */
SUBITER__HIDDEN void subiter__proc_signal(struct subiter__proc *p, int sig);
/* Kill with SIGKILL (if not reaped) and reap. */
SUBITER__HIDDEN void subiter__proc_kill(struct subiter__proc *p);
/* Close the pidfd. */
SUBITER__HIDDEN void subiter__proc_release(struct subiter__proc *p);
/* "killed by signal 11 (SIGSEGV)", "exited with status 3", ... */
SUBITER__HIDDEN void subiter__proc_describe(const struct subiter__proc *p,
                                            char *buf, size_t n);
SUBITER__HIDDEN int64_t subiter__now_ns(void);

/* ---- worker.c ---- */

/* Everything the child needs; filled by the parent before fork(). */
struct subiter__child_args {
    int memfd;
    size_t shm_len;
    int efd; /* parent's eventfd, to wake it */
    pid_t parent;
    subiter_init_fn init;
    subiter_iter_fn fn;
    void *arg;
    unsigned worker_id;   /* subiter_worker_id() */
    unsigned num_workers; /* subiter_num_workers(); 0 counts as 1 */
};

/* Exit statuses of a worker that could not set itself up or go on. */
enum subiter__worker_exit {
    SUBITER__EXIT_BAD_MAGIC = 120, /* the shared region is not ours */
    SUBITER__EXIT_MMAP = 121,      /* mapping the shared region failed */
    SUBITER__EXIT_ORPHAN = 122,    /* the parent died before we started */
    SUBITER__EXIT_CMD_RING = 123,  /* the command ring is corrupt */
    SUBITER__EXIT_STATUS = 124     /* a status could not be sent */
};

/* What a worker's exit status means, for those above; NULL otherwise. */
SUBITER__HIDDEN const char *subiter__worker_exit_reason(int status);

/* The worker's main: never returns. */
SUBITER__HIDDEN _Noreturn void
subiter__worker_main(const struct subiter__child_args *a);

/* Shared-region helpers used by both sides. */
SUBITER__HIDDEN void subiter__shm_rings(struct subiter__shm *shm,
                                        struct subiter__ring *cmd,
                                        struct subiter__ring *items,
                                        bool parent);
SUBITER__HIDDEN void subiter__futex_wake(_Atomic uint32_t *word);
SUBITER__HIDDEN void subiter__futex_wait(_Atomic uint32_t *word, uint32_t val);
/* Turns of subiter__spin() before a side goes to sleep (some tens of µs,
 * sched_yield() included): waking a sleeper costs far more on these
 * machines, and a side that sleeps every batch halves the throughput. */
#define SUBITER__SPIN_LIMIT 1024u
/* The first turns only pause (no sched_yield()). */
#define SUBITER__SPIN_PAUSES 256u
/* One turn of a spin-wait: a pause, or every 16th turn sched_yield(). */
SUBITER__HIDDEN void subiter__spin(unsigned n);

/* Test hooks: the worker's view of its own shared region (NULL outside),
 * and a wake-up of the parent after a test scribbled on it. */
SUBITER__HIDDEN struct subiter__shm *subiter__gen_shm(subiter_gen *g);
SUBITER__HIDDEN void subiter__gen_kick(subiter_gen *g);

/* ---- subiter.c: what a pool builds on ---- */

/* Fork a worker without waiting for its initializer (*out is set whenever
 * memory allowed; close it with subiter__close_many()). */
SUBITER__HIDDEN int subiter__open_async(subiter **out, subiter_iter_fn fn,
                                        void *arg, const subiter_opts *opts,
                                        unsigned worker_id,
                                        unsigned num_workers);
/* Look for the initializer's verdict: 1 ready, 0 not yet, or the error
 * subiter_open() would return. */
SUBITER__HIDDEN int subiter__init_step(subiter *it);
/* The same, waiting: 0 or the error. */
SUBITER__HIDDEN int subiter__init_wait(subiter *it);
/* subiter_next() without waiting: -EAGAIN when nothing is there yet, and
 * without items_ok, -EBUSY when an item is next (it stays there). */
SUBITER__HIDDEN int subiter__next_nowait(subiter *it, subiter_item *item,
                                         bool items_ok);
/* Send STOP_ITERATION once for the running iteration. */
SUBITER__HIDDEN int subiter__send_stop(subiter *it);
/* Give back the item view now (and wake the worker if it waits). */
SUBITER__HIDDEN void subiter__release(subiter *it);
/* Tell the worker that the parent sleeps (on) or not. */
SUBITER__HIDDEN void subiter__arm(subiter *it, bool on);
/* The eventfd and pidfd (-1: none) to poll for this handle. */
SUBITER__HIDDEN void subiter__fds(const subiter *it, int *efd, int *pidfd);
/* The pidfd said the worker exited: report it once its ring is read. */
SUBITER__HIDDEN void subiter__mark_exited(subiter *it);
/* Without a pidfd: look whether the worker exited, and mark it so. */
SUBITER__HIDDEN bool subiter__check_exit(subiter *it);
/* Is there a live worker behind the handle? */
SUBITER__HIDDEN bool subiter__alive(const subiter *it);
/* Kill the worker and make the handle dead with `code`; errmsg says
 * "worker pid N <why> <where>; killed", or with why NULL, how it died.
 * Returns code. */
SUBITER__HIDDEN int subiter__kill(subiter *it, int code, const char *why);
/* Signal a live worker (SIGSTOP, SIGCONT). */
SUBITER__HIDDEN void subiter__signal(subiter *it, int sig);
/* Close n handles at once: ABORT to all, then one grace period for all,
 * SIGTERM, one more, SIGKILL. rc[i] is what subiter_close() returns. */
SUBITER__HIDDEN void subiter__close_many(subiter **v, int *rc, size_t n);

/* ---- oom.c ---- */

struct subiter__oom {
    char path[256];   /* the counter file read */
    long long before; /* at the worker's start; -1: none readable */
    long long after;  /* at its death */
};

/* Remember the OOM-kill counter before a worker starts. */
SUBITER__HIDDEN void subiter__oom_begin(struct subiter__oom *o);
/* Did it go up since? (false when it cannot be read) */
SUBITER__HIDDEN bool subiter__oom_check(struct subiter__oom *o);
/* Test hook: read this file (with an "oom_kill N" line) instead; NULL
 * restores the real counters. Per thread. */
SUBITER__HIDDEN void subiter__oom_override(const char *path);

/* ---- error.c ---- */

SUBITER__HIDDEN const char *subiter__signame(int sig);

#endif /* SUBITER_INTERNAL_H */
