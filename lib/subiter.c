/* subiter.c: the public calls on one worker (open, start, next, stop, close,
 * errmsg, errinfo), as DESIGN.md's state table has them, and the reading of
 * an iteration's statuses (items, its end, its failure). Built on handle.c,
 * which owns the worker itself. */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <string.h>
#include <sys/wait.h>

#include "internal.h"
#include "handle_impl.h"
#include "start.h"

/* ---- open ---- */

/* How long the last waiting open's wait for its worker's first status
 * lasted, by start method (0: none yet). A handle's waits spin for about
 * as long as its last one lasted (subiter__spin_window()); a new handle
 * has no last wait of its own, but its worker's start takes about as long
 * as the last one by the same method did (the methods differ tenfold), so
 * its first wait takes that one's: a start of 50-80 us then ends in the
 * spin rather than in a sleep and a wake-up, which cost another 20-50 us
 * here. Process-wide, and only a hint: racing opens store each other's. */
static _Atomic int64_t first_wait_ns[SUBITER_SPAWN + 1];

int64_t subiter__first_wait_ns(int method)
{
    return atomic_load_explicit(&first_wait_ns[method], memory_order_relaxed);
}

/*
 * The forkserver's spare is a process made ahead and asleep: our hand-off
 * wakes it, and what it does then until its first status (map the region,
 * install its handlers) took 0.1 to 0.2 ms on a virtual machine whose idle
 * CPUs halt, past a stream's longest window, so that the open slept and
 * was woken. Its window may be as long as SUBITER__SPIN_START_MAX_NS
 * (1.25x the last first-status wait by this method, the initializer's
 * time included; spinning, as every spin, only while the worker runs on
 * another CPU or has not yet said where): open -> first item -> close
 * went from 461 to 362 us there, for 60 us more CPU in the parent. So an
 * open whose initializer takes up to 0.8 ms spins through it, as a
 * stream's wait does through a slow item, and one that takes longer
 * spins 2 us (subiter__spin_window_max()). A spare woken on our CPU
 * usually preempts us, as woken sleepers do; a forked or exec'd worker is
 * a new process, which does not, and whose start is its own page faults
 * or exec: with that window, SUBITER_FORK was no faster, and a child
 * queued on the parent's CPU waited out the spin (720 instead of 470 us
 * in subiter-bench-start). It keeps a stream's window.
 */
void subiter__start_wait(struct subiter__wait *w, int method)
{
    if (method == SUBITER_FORKSERVER) {
        w->max = SUBITER__SPIN_START_MAX_NS;
    }
}

static int await_init(subiter *it, bool wait)
{
    struct subiter__status st;
    uint32_t len;
    int r;

    if (wait) {
        it->last_wait_ns = subiter__first_wait_ns(it->start_method);
    }
    for (;;) {
        r = subiter__read_status(it, &st, &len, wait);
        if (wait && r >= 0) {
            atomic_store_explicit(&first_wait_ns[it->start_method],
                                  it->last_wait_ns, memory_order_relaxed);
        }
        if (r == -EAGAIN) {
            return r;
        }
        /* This worker has started (or failed to): the forkserver may
         * make the next spare without slowing this start. */
        subiter__forkserver_settled();
        if (r < 0) {
            if (r == -ENOMEM) {
                return subiter__fail(it, r, "out of memory");
            }
            return r;
        }
        if (st.code == SUBITER__INIT_OK) {
            subiter__status_free(&st);
            subiter__give_room(it, len);
            it->init_ok = true;
            subiter__set_state(it, ST_READY);
            it->errmsg[0] = '\0';
            return 0;
        }
        if (st.code == SUBITER__INIT_FAILED) {
            subiter__set_errmsg(it, "%s", st.message);
            it->last_code = SUBITER_EINIT;
            it->errnum = st.errnum;
            subiter__status_free(&st);
            subiter__give_room(it, len);
            /* It exits by itself; subiter_close() reaps it, within
             * grace_ms even if it does not. */
            return SUBITER_EINIT;
        }
        subiter__status_free(&st);
        return subiter__broke(it, "unexpected status during initialization");
    }
}

int subiter_open(subiter **out, subiter_iter_fn fn, void *arg,
                 const subiter_opts *opts)
{
    int r;

    if (out == NULL) {
        return -EINVAL;
    }
    r = subiter__open_async(out, fn, arg, opts, NULL);
    if (r < 0) {
        return r;
    }
    return await_init(*out, true);
}

/* ---- iterate ---- */

int subiter_start(subiter *it, const void *input, size_t len)
{
    return subiter__start_ex(it, input, len, NULL);
}

int subiter__start_ex(subiter *it, const void *input, size_t len,
                      const struct subiter__start_args *x)
{
    int r;

    if (it == NULL) {
        return -EINVAL;
    }
    if (it->state == ST_DEAD) {
        return SUBITER_ECLOSED;
    }
    if (it->state == ST_ITERATING) {
        return subiter__fail(it, -EINVAL, "an iteration is running");
    }
    if (input == NULL && len > 0) {
        return subiter__fail(it, -EINVAL, "NULL input of %zu bytes", len);
    }
    if (len > SUBITER_INPUT_MAX) {
        return subiter__fail(it, -EMSGSIZE,
                             "input of %zu bytes is over the %u-byte "
                             "limit",
                             len, SUBITER_INPUT_MAX);
    }
    subiter__give_back(it, false);
    it->start_x.skip = x != NULL ? x->skip : 0;
    it->start_x.iteration = x != NULL ? x->iteration : it->seq;
    it->seq++;
    r = subiter__push_command(it, SUBITER__CMD_START, input, len);
    if (r < 0) {
        it->seq--;
        return subiter__broke(it, "command ring full");
    }
    subiter__set_state(it, ST_ITERATING);
    subiter__evfd_started(it);
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
    it->consumed++; /* published with the room (subiter__give_room()) */
    it->items_iter++;
    it->need_wake = true;
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
        return subiter__broke(it, "status of another iteration");
    }
    switch (st->code) {
    case SUBITER__STARTED:
        /* Once per iteration: a worker that repeats it is not making
         * progress and must not keep the parent reading forever. */
        if (it->got_started) {
            return subiter__broke(it, "unexpected ITERATION_STARTED");
        }
        it->got_started = true;
        return 1;
    case SUBITER__FINISHED:
        subiter__set_state(it, ST_ENDED);
        return 0;
    case SUBITER__FAILED:
        subiter__set_errmsg(it, "%s", st->message);
        it->last_code = SUBITER_EITER;
        it->errnum = st->errnum;
        subiter__set_state(it, ST_READY);
        return SUBITER_EITER;
    case SUBITER__UNEXPECTED:
        return subiter__broke(it, "it received an unexpected command");
    default:
        return subiter__broke(it, "unexpected status during an iteration");
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
        r = subiter__read_status(it, st, len, wait);
        if (r == -EAGAIN) {
            return r;
        }
        if (r < 0) {
            return r == -ENOMEM ? subiter__fail(it, r, "out of memory") : r;
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
        subiter__give_room(it, *len);
        if (r != 1) {
            return r;
        }
    }
}

/* Take the fast item frame of `len` bytes at our index: count it, hold
 * it until the next call, and view its item. */
static inline void take_item(subiter *it, subiter_item *item,
                             const unsigned char *frame, uint32_t len)
{
    it->wait_since = 0;
    it->answer_due = false;
    consumed_one(it);
    it->held.owned = NULL; /* a view into the ring: nothing to free */
    it->held_len = len;
    it->holding = true;
    subiter__wake_if_low(it);
    item->data = frame + SUBITER__ITEM_PREFIX;
    item->len = len - SUBITER__ITEM_PREFIX;
}

void subiter__lean_learn(subiter *it, uint32_t len)
{
    it->lean.hdr = subiter__ring_hdr_word(len, SUBITER__REC_FRAME);
    /* A copy, not the cache itself: a status read later may refill the
     * cache for its own length (subiter__wire_is_item()). After next_fast()
     * this finds the word it made for this length. */
    it->lean.prefix =
        subiter__wire_item_word_of(&it->word, len - SUBITER__ITEM_PREFIX);
    it->lean.len = len;
    /* subiter__ring_frame_ok() took such a record: it fits somewhere. */
    it->lean.last_off = it->items.size - (uint32_t)subiter__ring_rec_bytes(len);
}

/* The common case of next(), inline: a fast item frame at our index, as
 * subiter__read_status() and next_item() take it, its size learned for
 * next_lean(). false: they decide. */
static bool next_fast(subiter *it, subiter_item *item)
{
    uint32_t len;
    const unsigned char *frame = subiter__ring_peek_fast(&it->items, &len);

    if (frame == NULL || !subiter__wire_is_item(&it->word, frame, len)) {
        return false;
    }
    subiter__lean_learn(it, len);
    take_item(it, item, frame, len);
    return true;
}

/*
 * subiter_next()'s common case, with none of next()'s checks for the rare
 * ones: an iteration, the last view (if any) a fast item's, and at our
 * index a fast item of the size next_fast() learned last. Its record is
 * then exactly the words learned (subiter__lean_learn()), at an offset
 * where it fits: the checks of subiter__ring_frame_ok() and
 * subiter__wire_is_item() in two compares of words and one of offsets.
 * Anything else: false, and next() decides. Through next(), a 64-byte
 * item took the parent 120 instructions, here 68.
 */
static inline bool next_lean(subiter *it, subiter_item *item)
{
    struct subiter__ring *r = &it->items;
    uint32_t off;
    uint64_t prefix;

    if (it->holding) {
        if (it->held.owned != NULL) {
            return false;
        }
        subiter__give_room(it, it->held_len);
        it->holding = false;
    }
    off = r->pos & r->mask;
    /* acquire: as subiter__ring_load_hdr(). */
    if ((off & 7u) != 0 || off > it->lean.last_off ||
        atomic_load_explicit(subiter__ring_hdr_at(r, r->pos),
                             memory_order_acquire) != it->lean.hdr) {
        return false;
    }
    memcpy(&prefix, r->data + off + SUBITER__REC_HDR, sizeof prefix);
    if (prefix != it->lean.prefix) {
        return false; /* a status of the same length */
    }
    take_item(it, item, r->data + off + SUBITER__REC_HDR, it->lean.len);
    return true;
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
        return subiter__fail(it, -EINVAL, "NULL item");
    }
    if (it->state != ST_ITERATING) {
        return it->started ? 0
                           : subiter__fail(it, -EINVAL,
                                           "subiter_start() was never "
                                           "called");
    }
    subiter__give_back_held(it);
    if (items_ok && next_fast(it, item)) {
        return 1;
    }
    r = next_item(it, &st, &len, wait, items_ok);
    if (r != 1) {
        return r;
    }
    /* next() gave back the last view before reading: one view at most. */
    assert(!it->holding);
    it->held = st;
    it->held_len = len;
    it->holding = true;
    subiter__wake_if_low(it);
    item->data = st.item;
    item->len = st.item_len;
    return 1;
}

int subiter_next(subiter *it, subiter_item *item)
{
    if (it != NULL && item != NULL && it->state == ST_ITERATING &&
        next_lean(it, item)) {
        return 1;
    }
    /* A blocking call (no timed next's deadline): its wait counts from
     * now, not from a timed next's -EAGAIN. */
    if (it != NULL && it->until == 0) {
        it->wait_since = 0;
    }
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
    subiter__give_back(it, false);
    if (!it->stop_sent &&
        subiter__push_command(it, SUBITER__CMD_STOP, NULL, 0) < 0) {
        return subiter__broke(it, "command ring full");
    }
    it->stop_sent = true;
    /* Its own bound: a generator that ignores the stop and keeps
     * computing is ended after the worker's grace_ms. */
    it->stop_until =
        subiter__now_ns() + (int64_t)it->grace_ms * SUBITER__NS_PER_MS;
    while ((r = next_item(it, &st, &len, true, true)) == 1) {
        subiter__status_free(&st);
        subiter__give_room(it, len);
    }
    it->stop_until = 0;
    if (r < 0 && r != SUBITER_EITER) {
        return r;
    }
    /* A failure that raced with the stop still leaves the worker ready,
     * which is all the caller asked for. */
    if (it->state != ST_READY) {
        subiter__set_state(it, ST_READY);
    }
    it->errmsg[0] = '\0';
    it->last_code = 0;
    it->errnum = 0;
    return 0;
}

/* ---- close ---- */

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
    subiter__give_back(it, false);
    if (subiter__push_command(it, SUBITER__CMD_STOP, NULL, 0) < 0) {
        return subiter__broke(it, "command ring full");
    }
    it->stop_sent = true;
    return 0;
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

    if (it == NULL || out == NULL || out->size < SUBITER__ERRINFO_V1) {
        return -EINVAL;
    }
    memset(&e, 0, sizeof e);
    /* An older caller keeps its own size: its struct ends earlier. */
    e.size = out->size < sizeof e ? out->size : sizeof e;
    e.backtrace = it->backtrace != NULL ? it->backtrace : "";
    e.worker = -1;
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
    /* A newer caller's bigger struct keeps its extra fields; an older
     * one's smaller struct gets the fields it has. */
    memcpy(out, &e, out->size < sizeof e ? out->size : sizeof e);
    return 0;
}

const char *subiter_version(void)
{
    return SUBITER_VERSION_STRING;
}
