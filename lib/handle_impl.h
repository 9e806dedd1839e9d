/* handle_impl.h: the handle's structure and the calls between its
 * files, handle.c (the worker: start, talk, lose, end), subiter.c (the
 * public calls) and handle_evloop.c (its pollable fd and timed next).
 * Nothing else includes it: the pool sees only handle.h. */
#ifndef SUBITER_HANDLE_IMPL_H
#define SUBITER_HANDLE_IMPL_H

/* The handle's states, as DESIGN.md's state table names them. */
enum state { ST_READY, ST_ITERATING, ST_ENDED, ST_DEAD };

struct subiter {
    enum state state;
    bool started;     /* a start was ever made */
    bool got_started; /* ITERATION_STARTED seen for the current one */
    bool init_ok;     /* the initializer succeeded */
    struct subiter__proc proc;
    int efd;
    struct subiter__region reg;
    struct subiter__ring cmd;   /* producer */
    struct subiter__ring items; /* consumer */
    int timeout_ms;
    int grace_ms;
    uint64_t seq;          /* current iteration, 1-based */
    uint64_t items_iter;   /* items delivered in the current iteration */
    uint32_t consumed;     /* items read (shm->items_consumed, batched) */
    uint32_t consumed_pub; /* consumed, as last stored in the region */
    uint32_t batch;        /* items given back per publication, at most */
    uint32_t buffer_items;
    bool need_wake;  /* released room the worker may wait for */
    bool answer_due; /* a command (or the start) and no status since: a
                      * wait for its answer looks often (wait.h) */
    bool holding;    /* an item view is out */
    struct subiter__item_word word; /* the last item's prefix */
    /* The record of the last fast item's size, as the words it is made
     * of (subiter.c: next_lean()): its header, its frame's prefix, the
     * frame's length, and the last offset at which it fits in the ring. */
    struct {
        uint64_t hdr;
        uint64_t prefix;
        uint32_t len;
        uint32_t last_off;
    } lean;
    int64_t last_wait_ns; /* wait.h: subiter__spin_window() */
    int start_method;     /* SUBITER_FORK, ...: its worker's */
    uint32_t held_len;
    struct subiter__status held;
    struct subiter__oom oom;
    int last_code; /* what subiter_get_errinfo() reports */
    int errnum;
    bool oom_suspected;
    bool ended_early; /* the worker died or was killed before close */
    bool exited;      /* a pool saw the pidfd: report the death once drained */
    bool stop_sent;   /* STOP_ITERATION is on its way for this iteration */
    /* event loops (handle_evloop.c) */
    struct subiter__evfd ev;
    int ev_efd, ev_pidfd; /* what ev's epoll set watches */
    bool parked;          /* armed after -EAGAIN: the worker rings efd */
    int64_t wait_since;   /* timed nexts wait since then (0: none) */
    int64_t until;        /* this call's deadline (0: none) */
    int64_t stop_until;   /* subiter_stop()'s bound, grace_ms (0: none) */
    struct subiter__start_args start_x; /* what the next START carries */
    char errmsg[SUBITER__ERRMSG_MAX];
    char *backtrace; /* the worker's last stack (trace.c), or NULL */
};

/* Learn the words of a fast item frame of `len` bytes for the parent's
 * fast path (subiter.c: next_lean()). */
SUBITER__HIDDEN void subiter__lean_learn(subiter *it, uint32_t len);
/* Every change of state; asserts that it is one of the legal ones. */
SUBITER__HIDDEN void subiter__set_state(subiter *it, enum state to);
/* errmsg, printf-style; subiter__fail() also records `code` for errinfo
 * and returns it. */
SUBITER__HIDDEN void subiter__set_errmsg(subiter *it, const char *fmt, ...)
    SUBITER_PRINTF(2, 3);
SUBITER__HIDDEN int subiter__fail(subiter *it, int code, const char *fmt, ...)
    SUBITER_PRINTF(3, 4);
/* Give the worker the room and the items it may not know of yet: our
 * ring index and items_consumed, which are stored in batches. */
SUBITER__HIDDEN void subiter__publish(subiter *it);
/*
 * Release a record of `len` bytes that was read. The room read is given
 * back in batches: an index stored per item pulled the line over to the
 * worker and back for every item (with a full ring, the worker re-read it
 * for every record). A batch is at most a quarter of buffer_items (up to
 * 32 items) or an eighth of the ring's bytes; the rest goes back whenever
 * the worker sleeps (subiter__wake_if_low(), per item) and before the
 * parent sleeps (subiter__wake()). Inline, as what follows: per item.
 */
static inline void subiter__give_room(subiter *it, uint32_t len)
{
    subiter__ring_release(&it->items, len);
    it->need_wake = true;
    if (it->consumed - it->consumed_pub >= it->batch ||
        subiter__ring_unpublished(&it->items) >= it->items.size / 8) {
        subiter__publish(it);
    }
}
/* Give back the item view that is out, if one is. */
static inline void subiter__give_back_held(subiter *it)
{
    if (it->holding) {
        if (it->held.owned != NULL) {
            subiter__status_free(&it->held);
        }
        subiter__give_room(it, it->held_len);
        it->holding = false;
    }
}
/* Publish, and wake the worker (if it sleeps) now. */
SUBITER__HIDDEN void subiter__wake(subiter *it);
/* Wake it if it sleeps and has half its buffer to fill again: the look
 * here, the rest in subiter__wake_low() (handle.c). */
SUBITER__HIDDEN void subiter__wake_low(subiter *it);
static inline void subiter__wake_if_low(subiter *it)
{
    if (it->need_wake && atomic_load_explicit(&it->reg.shm->child_sleeping,
                                              memory_order_relaxed)) {
        subiter__wake_low(it);
    }
}
/* The worker broke the protocol (`what`): kill it, dead with EPROTO. */
SUBITER__HIDDEN int subiter__broke(subiter *it, const char *what);
/*
 * Wait for the next status record and decode it. Returns 0 with *st and
 * *len (the record to release), or an error: the fatal ones have killed
 * the worker and made the handle dead; -ENOMEM leaves the record in place.
 * Without `wait`, -EAGAIN when nothing is there yet.
 */
SUBITER__HIDDEN int subiter__read_status(subiter *it,
                                         struct subiter__status *st,
                                         uint32_t *len, bool wait);
/* Send one command (and wake the worker). 0, or the ring's error. */
SUBITER__HIDDEN int subiter__push_command(subiter *it, int cmd,
                                          const void *input, size_t len);
/* A start: with a pollable fd out, make it readable once, so that the
 * application calls the timed next (which parks the handle). */
SUBITER__HIDDEN void subiter__evfd_started(subiter *it);
#endif /* SUBITER_HANDLE_IMPL_H */
