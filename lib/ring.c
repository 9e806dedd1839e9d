/* ring.c: the single-producer single-consumer record ring that both the
 * command ring and the item ring are made of. No waiting here: callers
 * decide how to wait. The consumer never trusts the producer's bytes. */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

#include "internal.h"

static uint64_t rec_bytes(uint64_t frame_len)
{
    return (SUBITER__REC_HDR + frame_len + 7u) & ~(uint64_t)7u;
}

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
        r->cached = atomic_load_explicit(tail, memory_order_relaxed);
    }
    r->published = r->pos;
}

size_t subiter__ring_max_frame(const struct subiter__ring *r)
{
    return r->size - SUBITER__REC_HDR;
}

static void put_hdr(unsigned char *p, uint32_t len, uint32_t kind)
{
    uint32_t h[2] = {len, kind};

    memcpy(p, h, sizeof h);
}

/* Is there room for `n` more bytes past pos? Re-reads the consumer's index
 * only when the cached one says no. */
static bool has_room(struct subiter__ring *r, uint32_t n)
{
    if (r->pos - r->cached + n <= r->size) {
        return true;
    }
    /* acquire: pairs with the release in subiter__ring_release(); the
     * consumer is done reading the bytes we are about to overwrite. */
    r->cached = atomic_load_explicit(r->head, memory_order_acquire);
    return r->pos - r->cached + n <= r->size;
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
    rec = (uint32_t)rec_bytes(frame_len);
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
        put_hdr(r->data + off, 0, SUBITER__REC_PAD);
        r->pos += to_end;
        /* release: publishes the PAD header; pairs with the acquire in
         * subiter__ring_peek(). */
        atomic_store_explicit(r->tail, r->pos, memory_order_release);
        off = 0;
    }
    if (!has_room(r, rec)) {
        return -EAGAIN;
    }
    *frame = r->data + off + SUBITER__REC_HDR;
    return 0;
}

void subiter__ring_commit(struct subiter__ring *r, uint32_t frame_len)
{
    uint32_t off = r->pos & r->mask;

    assert(rec_bytes(frame_len) <= r->size - off);
    put_hdr(r->data + off, frame_len, SUBITER__REC_FRAME);
    r->pos += (uint32_t)rec_bytes(frame_len);
    /* release: publishes the record's bytes; pairs with the acquire in
     * subiter__ring_peek(). */
    atomic_store_explicit(r->tail, r->pos, memory_order_release);
}

bool subiter__ring_pending(struct subiter__ring *r)
{
    if (r->pos != r->cached) {
        return true;
    }
    /* acquire: pairs with the release in subiter__ring_commit(). */
    r->cached = atomic_load_explicit(r->tail, memory_order_acquire);
    return r->pos != r->cached;
}

int subiter__ring_peek(struct subiter__ring *r, const unsigned char **frame,
                       uint32_t *len)
{
    for (;;) {
        uint32_t avail, off, flen, kind;
        uint64_t rec;
        const unsigned char *p;

        if (!subiter__ring_pending(r)) {
            return 0;
        }
        /* Each shared word is read once into a local, checked, and only
         * the local is used: the producer may change them under us. */
        avail = r->cached - r->pos;
        if (avail > r->size || avail < SUBITER__REC_HDR) {
            return -EPROTO;
        }
        off = r->pos & r->mask;
        if (off > r->size - SUBITER__REC_HDR) {
            return -EPROTO; /* only a misaligned start index gets here */
        }
        p = r->data + off;
        flen = __atomic_load_n((const uint32_t *)(const void *)p,
                               __ATOMIC_RELAXED);
        kind = __atomic_load_n((const uint32_t *)(const void *)(p + 4),
                               __ATOMIC_RELAXED);
        if (kind == SUBITER__REC_PAD) {
            uint32_t pad = r->size - off;

            if (pad > avail) {
                return -EPROTO;
            }
            r->pos += pad;
            /* Once a lap: at once, since a producer that waits to write
             * at the start may need just this room. */
            subiter__ring_publish(r);
            continue;
        }
        rec = rec_bytes(flen);
        if (kind != SUBITER__REC_FRAME || rec > avail || rec > r->size - off) {
            return -EPROTO;
        }
        *frame = p + SUBITER__REC_HDR;
        *len = flen;
        return 1;
    }
}

void subiter__ring_release(struct subiter__ring *r, uint32_t len)
{
    /* Only what the last peek validated: a record inside what the producer
     * published, and not past the end of the ring. */
    assert(rec_bytes(len) <= r->cached - r->pos);
    assert(rec_bytes(len) <= r->size - (r->pos & r->mask));
    r->pos += (uint32_t)rec_bytes(len);
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

uint32_t subiter__ring_unpublished(const struct subiter__ring *r)
{
    return r->pos - r->published;
}
