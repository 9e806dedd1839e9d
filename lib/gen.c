/* gen.c: the calls a generator makes in the worker: subiter_yield() and
 * its lean path, reserve/commit, fail, input, and what the worker knows
 * of itself (worker id, rank, seed, skip). The state machine that runs
 * the generator is worker.c. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "worker_impl.h"

/* An item is published: count it, and wake the parent if it sleeps. */
static inline void item_published(subiter_gen *g)
{
    /* Below the bound: lean_ok() or fast_reserve() looked, or
     * subiter__gen_reserve() waited. */
    g->published++;
    if (g->published - g->shown >= g->show_items ||
        g->items.pos - g->shown_pos >= g->items.size / 8) {
        subiter__gen_show(g);
    }
    subiter__gen_wake_parent(g);
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

    /* The prefix is g->word's: commit_item(), which alone fills it, has
     * just made it for this length. */
    if (g->lean.len != len) {
        g->lean.len = len;
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
    subiter__ring_commit_unshown(&g->items,
                                 (uint32_t)(SUBITER__ITEM_PREFIX + len));
    item_published(g);
    lean_learn(g, len);
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
        return subiter__gen_misuse(g, -EINVAL, "%s() called %s", call,
                                   g->phase == PHASE_INIT
                                       ? "in the initializer"
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
        return subiter__gen_misuse(
            g, -EINVAL,
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
        return subiter__gen_efd_lost_error(g);
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
    return subiter__gen_reserve(g, SUBITER__ITEM_PREFIX + len, true, frame);
}

/* One item of those already delivered: dropped before it reaches the
 * ring, but a STOP or ABORT is still obeyed (a long skip must not make
 * the parent wait). */
static int discard(subiter_gen *g)
{
    if (subiter__ring_pending(&g->cmd)) {
        subiter__gen_poll_commands(g);
    }
    if (g->stop || g->abort) {
        return SUBITER_STOPPED;
    }
    g->skip--;
    subiter__gen_fast_update(g);
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
 * overlapping when n is between: no call, so that subiter_yield() needs no
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

/* May the item of `len` bytes at `data` take the lean path: of the last
 * one's size, with room and below the bound as far as lean_learn() and
 * the items since say, in an iteration (g->fast) with no command
 * waiting? */
static inline bool lean_ok(const subiter_gen *g, const void *data, size_t len)
{
    return g != NULL && g->magic == GEN_MAGIC && g->fast &&
           len == g->lean.len && data != NULL && g->lean.items != 0 &&
           g->lean.rec <= g->lean.room && !subiter__ring_pending(&g->cmd);
}

/* The frame of the lean path's next record. */
static inline unsigned char *lean_frame(const subiter_gen *g)
{
    return g->items.data + (g->items.pos & g->items.mask) + SUBITER__REC_HDR;
}

/* Publish the lean record whose item is in place: its prefix, its header
 * (subiter__ring_put_unshown()), the room and items it took. */
static inline void lean_put(subiter_gen *g, unsigned char *frame)
{
    /* For lean.len: lean_learn(). */
    uint64_t prefix = g->word.word;

    memcpy(frame, &prefix, sizeof prefix);
    subiter__ring_put_unshown(&g->items, g->lean.hdr, g->lean.rec);
    g->lean.room -= g->lean.rec;
    g->lean.items--;
    item_published(g);
}

/* lean_ok() for an item over LEAN_MAX bytes: copied with memcpy(), out of
 * line, so that the small items' path makes no call. */
static SUBITER__NOINLINE int lean_yield_large(subiter_gen *g, const void *data,
                                              size_t len)
{
    unsigned char *frame = lean_frame(g);

    memcpy(frame + SUBITER__ITEM_PREFIX, data, len);
    lean_put(g, frame);
    return 0;
}

/* subiter_yield() past the lean path: the first item of a size, a full
 * ring or bound, a command, a reason to refuse. */
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
        return subiter__gen_misuse(g, -EINVAL,
                                   "subiter_yield() of %zu bytes at NULL", len);
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

/*
 * The common case first: an item of the last one's size (lean_ok()). Its
 * record is the words lean_learn() made of that one: the copy, the
 * prefix, the header. Through fast_reserve() and commit_item() a 64-byte
 * item took the worker 116 instructions, here 85 with the batched show
 * (a 4 KiB one 517 and 493, with the copy); a worker that keeps ahead of
 * the parent sets the pace with them (an empty loop of 10 turns added per
 * item in bench/'s generator cost its 64-byte stream 13 ns per item).
 */
int subiter_yield(subiter_gen *g, const void *data, size_t len)
{
    if (lean_ok(g, data, len)) {
        unsigned char *frame;

        if (len > LEAN_MAX) {
            return lean_yield_large(g, data, len);
        }
        frame = lean_frame(g);
        copy_small(frame + SUBITER__ITEM_PREFIX, data, len);
        lean_put(g, frame);
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
            return subiter__gen_misuse(g, -EINVAL,
                                       "subiter_reserve() with a NULL buf");
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
        return subiter__gen_misuse(
            g, -EINVAL, "subiter_commit() without an open subiter_reserve()");
    }
    if (len > g->reserved_len) {
        return subiter__gen_misuse(
            g, -EINVAL,
            "subiter_commit() of %zu bytes, but only %zu were "
            "reserved",
            len, g->reserved_len);
    }
    frame = g->reserved;
    g->reserved = NULL;
    subiter__gen_fast_update(g);
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
    subiter__gen_fast_update(g);
    return n;
}
