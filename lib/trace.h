/* trace.h: crash and hang stacks (trace.c). The worker records its raw
 * frames and its module map into the trace area, the last
 * SUBITER__TRACE_BYTES of its shared region; the parent turns them into
 * text, one frame a line.
 *
 *   struct subiter__trace    state, magic, why, frames, map length
 *   map text                 the file-backed lines of /proc/self/maps
 *
 * The worker writes the area at most once (it dies, or is killed, right
 * after); the parent reads it only once the worker is gone, and treats
 * it as untrusted: every length is checked against the area's own size.
 */
#ifndef SUBITER_TRACE_H
#define SUBITER_TRACE_H

#include <stddef.h>
#include <stdint.h>

#define SUBITER__TRACE_MAGIC 0x43415254u /* "TRAC" little-endian */
/* 64 KiB of address space in every region; only a report touches it. */
#define SUBITER__TRACE_BYTES (64u * 1024u)
#define SUBITER__TRACE_FRAMES 64u
/* The signal the parent sends to ask a hanging worker for its stack. */
#define SUBITER__TRACE_SIGNAL (SIGRTMIN + 6)
/* The longest module map line the worker copies or the parent prints. */
#define SUBITER__TRACE_LINE_MAX 512
/* How long the parent waits for that stack before it kills anyway. */
#define SUBITER__TRACE_WAIT_MS 50

enum subiter__trace_state {
    SUBITER__TRACE_EMPTY = 0,
    SUBITER__TRACE_WRITING = 1,
    SUBITER__TRACE_WRITTEN = 2
};

enum subiter__trace_kind { SUBITER__TRACE_CRASH = 1, SUBITER__TRACE_HANG = 2 };

struct subiter__trace {
    _Atomic uint32_t state; /* enum subiter__trace_state */
    uint32_t magic;
    uint32_t kind; /* enum subiter__trace_kind */
    int32_t signo;
    uint32_t nframes;  /* <= SUBITER__TRACE_FRAMES */
    uint32_t maps_len; /* bytes of map text that follow the frames */
    uint64_t frames[SUBITER__TRACE_FRAMES]; /* frames[0] is exact, the
                                               rest return addresses */
    char maps[];
};

#define SUBITER__TRACE_MAPS_MAX                                                \
    (SUBITER__TRACE_BYTES - sizeof(struct subiter__trace))

_Static_assert(offsetof(struct subiter__trace, frames) == 24,
               "the frames follow six 32-bit words");
_Static_assert(sizeof(struct subiter__trace) == 24 + 8 * SUBITER__TRACE_FRAMES,
               "no padding in the trace header");
_Static_assert(SUBITER__TRACE_BYTES % 4096 == 0,
               "the trace area is whole pages, after the rings");

struct subiter__region;
struct subiter__proc;

/* Worker: install the crash and hang handlers on an alternate stack (once,
 * before the initializer, so that the initializer's own handlers win). */
SUBITER__HIDDEN void subiter__trace_install(void *region, size_t len);

/* Make backtrace() safe to call in a signal handler (it loads its
 * unwinder on first use): in this process and in the workers forked from
 * it from now on. Once per process; a worker that was not forked from a
 * primed process calls it before any user code runs. */
SUBITER__HIDDEN void subiter__trace_prime(void);

/* Parent: ask a live worker for the stack of its generator and wait at
 * most SUBITER__TRACE_WAIT_MS for it. The caller kills it afterwards. */
SUBITER__HIDDEN void subiter__trace_request(struct subiter__region *r,
                                            struct subiter__proc *p);

/* Parent, once the worker is gone: the frames it left, as text (one frame
 * a line, no final newline), in *out (new: free with subiter__free(); NULL
 * when there is none or the area is corrupt). 0 or -ENOMEM. */
SUBITER__HIDDEN int subiter__trace_collect(const struct subiter__region *r,
                                           char **out);

/* The same from a copy of an area of `len` bytes: what collect does after
 * copying (and what the hostile tests call on garbage). */
SUBITER__HIDDEN int subiter__trace_format(const void *area, size_t len,
                                          char **out);

#endif /* SUBITER_TRACE_H */
