/* ring.c: the single-producer single-consumer record ring that both the
 * command ring and the item ring are made of. No waiting here: callers
 * decide how to wait. The consumer never trusts the producer's bytes. */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "internal.h"

void subiter__ring_init(struct subiter__ring *r, _Atomic uint32_t *head,
                        _Atomic uint32_t *tail, void *data, uint32_t size,
                        bool producer)
{
    assert(size >= 64 && (size & (size - 1)) == 0);
    r->head = head;
    r->tail = tail;
    r->data = data;
    r->size = size;
    r->mask = size - 1;
    /* Each side owns one index and may start at any multiple of 8 (tests
     * start near UINT32_MAX): records are 8-aligned, so the room before
     * the end of the ring is always at least a record header. The relaxed
     * loads see the creator's stores, which fork() or a thread start
     * ordered before. */
    assert(((producer ? *tail : *head) & 7u) == 0);
    if (producer) {
        r->pos = atomic_load_explicit(tail, memory_order_relaxed);
        r->cached = atomic_load_explicit(head, memory_order_relaxed);
    } else {
        r->pos = atomic_load_explicit(head, memory_order_relaxed);
        r->cached = r->pos; /* unused: the consumer reads headers */
    }
    r->published = r->pos;
}

/* Is there room for `n` more bytes past pos, and the next header after
 * them? Re-reads the consumer's index only when the cached one says no. */
static bool has_room(struct subiter__ring *r, uint32_t n)
{
    if (subiter__ring_fits(r, n)) {
        return true;
    }
    /* acquire: pairs with the release in subiter__ring_publish(); the
     * consumer is done reading the bytes we are about to overwrite. */
    r->cached = atomic_load_explicit(r->head, memory_order_acquire);
    return subiter__ring_fits(r, n);
}

int subiter__ring_reserve(struct subiter__ring *r, size_t frame_len,
                          void **frame)
{
    uint32_t off, to_end, rec;

    /* Our own index: records are 8-aligned (ring_init checked the start). */
    assert((r->pos & 7u) == 0);
    if (frame_len > subiter__ring_max_frame(r)) {
        return -EMSGSIZE;
    }
    rec = (uint32_t)subiter__ring_rec_bytes(frame_len);
    off = r->pos & r->mask;
    to_end = r->size - off;
    if (rec > to_end) {
        /*
         * Publish the padding first and only then wait for room at the
         * start: a record as big as the ring needs the consumer to drain
         * everything, the padding included.
         */
        if (!has_room(r, to_end)) {
            return -EAGAIN;
        }
        subiter__ring_put(r, 0, SUBITER__REC_PAD, to_end);
        off = 0;
    }
    if (!has_room(r, rec)) {
        return -EAGAIN;
    }
    *frame = r->data + off + SUBITER__REC_HDR;
    return 0;
}

uint32_t subiter__ring_tail(const struct subiter__ring *r)
{
    /* relaxed, as it is stored: no record is read through it. */
    return atomic_load_explicit(r->tail, memory_order_relaxed);
}

int subiter__ring_peek(struct subiter__ring *r, const unsigned char **frame,
                       uint32_t *len)
{
    for (;;) {
        uint32_t off = r->pos & r->mask, flen, kind;

        if ((off & 7u) != 0) {
            return -EPROTO; /* only a misaligned start index gets here */
        }
        subiter__ring_load_hdr(r, &flen, &kind);
        if (kind == SUBITER__REC_NONE) {
            return 0;
        }
        if (kind == SUBITER__REC_PAD) {
            /* Never at the start: a record always fits there; and so
             * this loop skips one PAD at most. */
            if (off == 0 || flen != 0) {
                return -EPROTO;
            }
            r->pos += r->size - off;
            /* Once a lap: at once, since a producer that waits to write
             * at the start may need just this room. */
            subiter__ring_publish(r);
            continue;
        }
        if (!subiter__ring_frame_ok(r, off, flen, kind)) {
            return -EPROTO;
        }
        *frame = r->data + off + SUBITER__REC_HDR;
        *len = flen;
        return 1;
    }
}

void subiter__ring_publish(struct subiter__ring *r)
{
    if (r->published != r->pos) {
        r->published = r->pos;
        /* release: we are done reading what we released; pairs with the
         * acquire in has_room(). */
        atomic_store_explicit(r->head, r->pos, memory_order_release);
    }
}
