/* shm.h: the shared region of one worker (shm.c), a cross-process ABI:
 *
 *   struct subiter__shm    header: magic, version, sizes, the sleeping flags,
 *                          the doorbell, the four ring indices and the
 *                          worker's life lock, each group on its own cache
 *                          line; SUBITER__SHM_HDR_BYTES
 *   command ring data      cmd_bytes   (parent -> worker)
 *   item ring data         item_bytes  (worker -> parent: all statuses)
 *   trace area             SUBITER__TRACE_BYTES, the region's last bytes
 *                          (trace.h: a crash or hang report)
 *
 * The parent creates it (a sealed memfd, so nothing can leak in /dev/shm and
 * a worker cannot shrink it under the parent) and maps it; each worker maps
 * it again from the inherited fd.
 */
#ifndef SUBITER_SHM_H
#define SUBITER_SHM_H

#include <stddef.h>

#define SUBITER__SHM_MAGIC 0x52495553u /* "SUIR" little-endian */
#define SUBITER__SHM_VERSION                                                   \
    5u /* 2: the life lock; 3: the barrier words;                              \
         4: the ready headers (ring.h); 5: the worker arms with a fence */

/* The header takes one page, so the rings start page-aligned. */
#define SUBITER__SHM_HDR_BYTES 4096u
/* The command ring: at most one START (input up to SUBITER_INPUT_MAX), one
 * STOP and one ABORT are ever unread in it. */
#define SUBITER__CMD_RING_BYTES (256u * 1024u)
/* The item ring: buffer_bytes rounded up to a power of two in this range. */
#define SUBITER__MIN_RING_BYTES (16u * 1024u)
#define SUBITER__MAX_RING_BYTES (1u << 30)

struct subiter__shm {
    /* Written once by the parent before the worker exists. The first two
     * words stay where they are in every version, so that a worker of
     * another version can say which one it met. */
    uint32_t magic;
    uint32_t version;
    uint32_t hdr_bytes;    /* offset of the command ring data */
    uint32_t cmd_bytes;    /* command ring capacity, a power of two */
    uint32_t item_bytes;   /* item ring capacity, a power of two */
    uint32_t buffer_items; /* max items published and not consumed */

    /* The worker's doorbell: a futex word the parent bumps to wake it, and
     * the worker's "about to sleep" flag (wait.c). */
    _Alignas(SUBITER__CACHELINE) _Atomic uint32_t child_bell;
    _Atomic uint32_t child_sleeping;
    /* The worker's "running" word (wait.c): 0 while it sleeps, else 1 +
     * the CPU it last ran on; the parent spins only while it is set. */
    _Atomic uint32_t child_running;

    /* Set by the parent while it sleeps in poll() on its eventfd; and its
     * "running" word, as the worker's. */
    _Alignas(SUBITER__CACHELINE) _Atomic uint32_t parent_sleeping;
    _Atomic uint32_t parent_running;
    /* 1 when the parent arms with membarrier (wait.h); written before
     * the worker exists. */
    uint32_t parent_barrier;

    /* Item ring, written by the worker: its index and item count, as it
     * shows them, once per batch (worker_impl.h: subiter__gen_show()). */
    _Alignas(SUBITER__CACHELINE) _Atomic uint32_t item_tail;
    _Atomic uint32_t items_published;
    /* Written by the worker, read by the parent once it has exited: 0
     * until the worker has mapped the region (no application code has run
     * yet), then SUBITER__STAGE_MAPPED, and before the library itself ends
     * the worker, the exit status it is about to use. So an exit status is
     * the library's only when the worker says so (worker.h). */
    _Atomic uint32_t worker_stage;

    /* Item ring, written by the parent. */
    _Alignas(SUBITER__CACHELINE) _Atomic uint32_t item_head;
    _Atomic uint32_t items_consumed;

    /* Command ring, written by the parent. */
    _Alignas(SUBITER__CACHELINE) _Atomic uint32_t cmd_tail;

    /* Command ring, written by the worker. */
    _Alignas(SUBITER__CACHELINE) _Atomic uint32_t cmd_head;

    /* The worker's life lock (life.c): its tid while it lives, marked
     * FUTEX_OWNER_DIED by the kernel when it ends; the rest of the line
     * holds the robust-list entry that points the kernel at the word. */
    _Alignas(SUBITER__CACHELINE) _Atomic uint32_t life;
    unsigned char life_room[SUBITER__CACHELINE - sizeof(uint32_t)];

    /* Test hooks only: a test's generator may scribble here. */
    _Alignas(SUBITER__CACHELINE) uint32_t reserved[16];
};

/* The layout is an ABI between two processes (and, one day, two builds):
 * pin what the protocol version stands for. */
_Static_assert(offsetof(struct subiter__shm, magic) == 0, "magic first");
_Static_assert(offsetof(struct subiter__shm, version) == 4,
               "version right after the magic, in every version");
_Static_assert(offsetof(struct subiter__shm, child_bell) == 64,
               "the worker's doorbell on the second cache line");
_Static_assert(offsetof(struct subiter__shm, parent_sleeping) == 128,
               "the parent's flag on a line of its own");
_Static_assert(offsetof(struct subiter__shm, child_running) ==
                       offsetof(struct subiter__shm, child_sleeping) + 4 &&
                   offsetof(struct subiter__shm, parent_running) ==
                       offsetof(struct subiter__shm, parent_sleeping) + 4,
               "each running word right after its sleeping flag (wait.c)");
_Static_assert(offsetof(struct subiter__shm, parent_barrier) == 136,
               "the barrier word on the line its waker reads the flag of");
_Static_assert(offsetof(struct subiter__shm, item_tail) == 192,
               "the worker's item index on a line of its own");
_Static_assert(offsetof(struct subiter__shm, item_head) == 256,
               "the parent's item index on a line of its own");
_Static_assert(offsetof(struct subiter__shm, cmd_tail) == 320,
               "the parent's command index on a line of its own");
_Static_assert(offsetof(struct subiter__shm, cmd_head) == 384,
               "the worker's command index on a line of its own");
_Static_assert(offsetof(struct subiter__shm, life) == 448,
               "the worker's life lock on a line of its own");
_Static_assert(offsetof(struct subiter__shm, life_room) == 452,
               "the life lock's robust-list entry right after it");
_Static_assert(offsetof(struct subiter__shm, reserved) == 512,
               "the test area on a line of its own");
_Static_assert(sizeof(struct subiter__shm) == 576,
               "the header is 9 cache lines");
_Static_assert(sizeof(struct subiter__shm) <= SUBITER__SHM_HDR_BYTES,
               "the header fits before the rings");
_Static_assert(sizeof(_Atomic uint32_t) == 4 && _Alignof(_Atomic uint32_t) == 4,
               "atomic words are plain 32-bit words in shared memory");
_Static_assert((SUBITER__CMD_RING_BYTES & (SUBITER__CMD_RING_BYTES - 1)) == 0,
               "the command ring is a power of two");
_Static_assert((SUBITER__MIN_RING_BYTES & (SUBITER__MIN_RING_BYTES - 1)) == 0,
               "the smallest item ring is a power of two");

/* Items per batch under a bound of `buffer_items`: the parent gives room
 * back, and the worker shows its count, every so many items (a quarter of
 * the bound, 1 to 32). */
static inline uint32_t subiter__shm_batch(uint32_t buffer_items)
{
    uint32_t b = buffer_items / 4;

    return b < 1 ? 1 : b > 32 ? 32 : b;
}

/* The parent's view of a region it created. */
struct subiter__region {
    struct subiter__shm *shm; /* NULL: none */
    size_t len;
    int memfd; /* open until the worker is forked; -1 after */
};

/*
 * Parent: create, seal, map and fill in a region whose item ring holds at
 * least `buffer_bytes` (rounded up to a power of two, at least
 * SUBITER__MIN_RING_BYTES). Returns 0 or -errno (nothing left behind).
 */
SUBITER__HIDDEN int subiter__shm_create(struct subiter__region *r,
                                        size_t buffer_bytes,
                                        uint32_t buffer_items);
/* Parent: close the memfd once the worker has its own copy of it. */
SUBITER__HIDDEN void subiter__shm_close_fd(struct subiter__region *r);
/* Parent: unmap (and close the memfd if still open). */
SUBITER__HIDDEN void subiter__shm_destroy(struct subiter__region *r);

/*
 * Worker: map the region from the inherited memfd (then closed) and check
 * its magic. Returns the mapping, or NULL with *exit_code set to the
 * worker's exit status that says why (SUBITER__EXIT_MMAP or
 * SUBITER__EXIT_BAD_MAGIC, worker.h).
 */
SUBITER__HIDDEN struct subiter__shm *subiter__shm_attach(int memfd, size_t len,
                                                         int *exit_code);

/* Both sides: their views of the two rings (the parent produces commands
 * and consumes items; the worker the other way round). */
SUBITER__HIDDEN void subiter__shm_rings(struct subiter__shm *shm,
                                        struct subiter__ring *cmd,
                                        struct subiter__ring *items,
                                        bool parent);

#endif /* SUBITER_SHM_H */
