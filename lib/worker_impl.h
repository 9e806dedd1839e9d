/* worker_impl.h: the worker's state (struct subiter_gen), shared by its
 * state machine (worker.c) and the calls a generator makes (gen.c). */
#ifndef SUBITER_WORKER_IMPL_H
#define SUBITER_WORKER_IMPL_H

#define GEN_MAGIC 0x67656e21u
/* The largest item the lean path copies in a few moves of fixed size
 * (gen.c: copy_small()); a larger one with memcpy(). */
#define LEAN_MAX 64u

enum phase { PHASE_NONE, PHASE_INIT, PHASE_ITER };

struct subiter_gen {
    uint32_t magic;
    enum phase phase;
    /* gen.c's fast paths may take the next item: in an iteration, no
     * reservation open, nothing to skip, no stop or abort read, the
     * eventfd ours. Set by subiter__gen_fast_update() after each change
     * of those: one test per item instead of six. */
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
    uint32_t shown;      /* items_published, as last stored (below) */
    uint32_t shown_pos;  /* the item ring's tail, as last stored */
    uint32_t show_items; /* show every this many items */
    uint32_t consumed;   /* the parent's items_consumed, as last read */
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
     * header, its bytes; its frame's prefix is word's, made for the same
     * length), and how many bytes and items it may still publish before
     * it must look at the parent's index and count again. Set by gen.c's
     * lean_learn(); room 0 sends the next item to the full path. */
    struct {
        size_t len; /* the item's bytes; SIZE_MAX: none yet */
        uint64_t hdr;
        uint32_t rec;
        uint32_t room;
        uint32_t items;
    } lean;
};

/* Recompute g->fast from what it stands for. */
static inline void subiter__gen_fast_update(subiter_gen *g)
{
    g->fast = g->phase == PHASE_ITER && g->reserved == NULL && g->skip == 0 &&
              !g->efd_lost && !g->stop && !g->abort;
}

/* Show the parent our item count and ring index: it waits for them to
 * move when it has caught up with us (subiter__parent_chase()). Once per
 * batch of items (show_items, or an eighth of the ring: gen.c), before
 * we wait and with each status (worker.c): the same line stored per item
 * was pulled over to a waiting parent and back for every item. */
static inline void subiter__gen_show(subiter_gen *g)
{
    atomic_store_explicit(&g->shm->items_published, g->published,
                          memory_order_relaxed);
    subiter__ring_show(&g->items);
    g->shown = g->published;
    g->shown_pos = g->items.pos;
}

/* worker.c: talking to the parent. */

/* printf-style: record the library's error `code` for a callback and
 * what was wrong; returns code. */
SUBITER__HIDDEN int subiter__gen_misuse(subiter_gen *g, int code,
                                        const char *fmt, ...)
    SUBITER_PRINTF(3, 4);
/* The parent was armed: ring its eventfd if it still is ours. */
SUBITER__HIDDEN SUBITER__NOINLINE void subiter__gen_ring_parent(subiter_gen *g);
/* The eventfd is no longer ours: the error, recorded. */
SUBITER__HIDDEN int subiter__gen_efd_lost_error(subiter_gen *g);
/* Read the commands that arrived during an iteration. */
SUBITER__HIDDEN void subiter__gen_poll_commands(subiter_gen *g);
/* Wait for room for a frame of `frame_len` bytes in the item ring (and,
 * for an item, below buffer_items); 0 with *frame, SUBITER_STOPPED, or
 * the ring's error. */
SUBITER__HIDDEN int subiter__gen_reserve(subiter_gen *g, size_t frame_len,
                                         bool item, unsigned char **frame);

/* Wake the parent if it sleeps. Inline: once per item. */
static inline void subiter__gen_wake_parent(subiter_gen *g)
{
    /* Without the eventfd the parent is not woken: it sees the worker's
     * exit instead, which follows soon (send_status(), iterate()). */
    if (!g->efd_lost &&
        subiter__wake_if_armed(&g->shm->parent_sleeping, g->parent_unfenced)) {
        subiter__gen_ring_parent(g);
    }
}

#endif /* SUBITER_WORKER_IMPL_H */
