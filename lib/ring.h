/* ring.h: the single-producer single-consumer record ring (ring.c) that
 * both the command ring and the item ring are made of.
 *
 * Records are 8-byte aligned: an 8-byte header (frame length, kind) and
 * then the frame. A PAD record fills the space up to the end of the ring
 * so that no record wraps. The indices are free-running uint32_t counters
 * in shared memory: fill = tail - head, offset = index & mask.
 *
 * The header is the record's ready word: the producer stores it last, as
 * one 8-byte word with release, and the consumer finds the next record by
 * reading the header at its own index; it never reads the producer's
 * index, whose cache line would otherwise cross to it with every record
 * (when the consumer keeps up: most of the time). A header of kind
 * SUBITER__REC_NONE is "not written yet". Before it publishes a record the
 * producer stores NONE where the next header will go, so the word after
 * the last record is NONE and never stale bytes of an earlier lap: the
 * ring keeps SUBITER__REC_HDR bytes free for it, and its memory starts
 * zeroed (a new memfd, a new mapping).
 */
#ifndef SUBITER_RING_H
#define SUBITER_RING_H

#include <string.h>

#define SUBITER__REC_HDR 8u  /* u32 frame length, u32 kind */
#define SUBITER__REC_NONE 0  /* kind: nothing here yet */
#define SUBITER__REC_FRAME 1 /* kind: one protobuf frame */
#define SUBITER__REC_PAD 2   /* kind: skip to the end of the ring */

/* One side's view of one ring. Lives in private memory. */
struct subiter__ring {
    _Atomic uint32_t *head; /* consumer's index, in shared memory */
    _Atomic uint32_t *tail; /* producer's index, in shared memory: what it
                             * has shown (subiter__ring_show()), for
                             * estimates; the consumer reads the headers */
    unsigned char *data;
    uint32_t size; /* power of two */
    uint32_t mask;
    uint32_t pos;       /* producer: next write; consumer: next read */
    uint32_t cached;    /* producer: the consumer's index, as last read */
    uint32_t published; /* consumer: our index, as last stored */
};

/* What follows per record is inline: a call per record was a tenth of the
 * parent's instructions for a 64-byte item. */

/* The ring bytes of a record whose frame is `frame_len` bytes (in 64
 * bits: a hostile length near UINT32_MAX must not wrap to a small one). */
static inline uint64_t subiter__ring_rec_bytes(uint64_t frame_len)
{
    return (SUBITER__REC_HDR + frame_len + 7u) & ~(uint64_t)7u;
}

/* The header word at `index`: records are 8-aligned in a page-aligned
 * ring, so the word is too. */
static inline _Atomic uint64_t *
subiter__ring_hdr_at(const struct subiter__ring *r, uint32_t index)
{
    return (_Atomic uint64_t *)(void *)(r->data + (index & r->mask));
}

/* A header as one 8-byte word: the frame length in its first four bytes,
 * the kind in the next four, on any byte order. */
static inline uint64_t subiter__ring_hdr_word(uint32_t len, uint32_t kind)
{
    uint32_t h[2] = {len, kind};
    uint64_t w;

    memcpy(&w, h, sizeof w);
    return w;
}

/* The header at the consumer's index, read once into locals: the producer
 * may change it under us. */
static inline void subiter__ring_load_hdr(const struct subiter__ring *r,
                                          uint32_t *len, uint32_t *kind)
{
    /* acquire: pairs with the producer's release of the header. */
    uint64_t w = atomic_load_explicit(subiter__ring_hdr_at(r, r->pos),
                                      memory_order_acquire);
    uint32_t h[2];

    memcpy(h, &w, sizeof h);
    *len = h[0];
    *kind = h[1];
}

SUBITER__HIDDEN void subiter__ring_init(struct subiter__ring *r,
                                        _Atomic uint32_t *head,
                                        _Atomic uint32_t *tail, void *data,
                                        uint32_t size, bool producer);

/* Producer: publish the record of `rec` bytes at pos, whose header is
 * the word `hdr` (subiter__ring_hdr_word()): "not yet" where the next
 * header goes, then this header, which makes the record and that word
 * visible together. The tail index is left as it was: see
 * subiter__ring_show(). */
static inline void subiter__ring_put_unshown(struct subiter__ring *r,
                                             uint64_t hdr, uint32_t rec)
{
    /* Into locals first: a caller that just wrote the frame through a
     * char pointer would have them loaded again for each store. */
    unsigned char *data = r->data;
    uint32_t pos = r->pos, mask = r->mask;

    atomic_store_explicit(
        (_Atomic uint64_t *)(void *)(data + ((pos + rec) & mask)),
        subiter__ring_hdr_word(0, SUBITER__REC_NONE), memory_order_relaxed);
    /* release: publishes the frame's bytes and the word above; pairs with
     * the acquire in subiter__ring_load_hdr(). */
    atomic_store_explicit((_Atomic uint64_t *)(void *)(data + (pos & mask)),
                          hdr, memory_order_release);
    r->pos = pos + rec;
}

/* Producer: show the tail index (what it has published): a producer may
 * do it once per batch (gen.c). For estimates, and for a consumer that
 * waits for a batch (wait.h: subiter__parent_chase()); relaxed: nobody
 * reads the records through it. */
static inline void subiter__ring_show(struct subiter__ring *r)
{
    atomic_store_explicit(r->tail, r->pos, memory_order_relaxed);
}

/* Producer: publish a record with the header's length and kind, and show
 * it at once. */
static inline void subiter__ring_put(struct subiter__ring *r, uint32_t len,
                                     uint32_t kind, uint32_t rec)
{
    subiter__ring_put_unshown(r, subiter__ring_hdr_word(len, kind), rec);
    subiter__ring_show(r);
}

/* Producer: room for `n` bytes past pos and for the next header after
 * them, as far as the consumer's index last read says. */
static inline bool subiter__ring_fits(const struct subiter__ring *r, uint32_t n)
{
    return r->pos - r->cached + n + SUBITER__REC_HDR <= r->size;
}

/* Producer: the common reservation, inline: room for a frame of
 * `frame_len` bytes before the end of the ring, as far as the consumer's
 * index last read says. NULL when subiter__ring_reserve() must decide
 * (padding to publish, the consumer's index to read again, too big). */
static inline void *subiter__ring_reserve_fast(struct subiter__ring *r,
                                               size_t frame_len)
{
    uint32_t off = r->pos & r->mask, rec;

    if (frame_len > r->size) {
        return NULL;
    }
    rec = (uint32_t)subiter__ring_rec_bytes(frame_len);
    if (rec > r->size - off || !subiter__ring_fits(r, rec)) {
        return NULL;
    }
    return r->data + off + SUBITER__REC_HDR;
}

/*
 * Producer: room for a record whose frame is `frame_len` bytes. Returns 0
 * and *frame (where to write it), -EAGAIN when the ring is too full (wait
 * for the consumer and retry; a PAD record may have been published), or
 * -EMSGSIZE when it can never fit.
 */
SUBITER__HIDDEN int subiter__ring_reserve(struct subiter__ring *r,
                                          size_t frame_len, void **frame);
/* Producer: publish the reserved record with its final frame length, at
 * most the one reserved (which fit before the end of the ring; no assert
 * here: a tenth of a 64-byte item's instructions), without showing it
 * (subiter__ring_show()). */
static inline void subiter__ring_commit_unshown(struct subiter__ring *r,
                                                uint32_t frame_len)
{
    uint32_t rec = (uint32_t)subiter__ring_rec_bytes(frame_len);

    subiter__ring_put_unshown(
        r, subiter__ring_hdr_word(frame_len, SUBITER__REC_FRAME), rec);
}
/* Producer: the same, shown at once. */
static inline void subiter__ring_commit(struct subiter__ring *r,
                                        uint32_t frame_len)
{
    subiter__ring_commit_unshown(r, frame_len);
    subiter__ring_show(r);
}
/* The largest frame a record may carry in this ring. */
static inline size_t subiter__ring_max_frame(const struct subiter__ring *r)
{
    /* The record's header, and room for the next one (above). */
    return r->size - 2 * SUBITER__REC_HDR;
}

/*
 * Consumer: the next record, bounds-checked (the producer is not trusted).
 * Returns 1 with *frame and *len (a view into the ring), 0 when the ring is
 * empty, -EPROTO when the record is corrupt (or our own index is
 * misaligned). PAD records are skipped (and released).
 */
SUBITER__HIDDEN int subiter__ring_peek(struct subiter__ring *r,
                                       const unsigned char **frame,
                                       uint32_t *len);
/* Consumer: is a header read at offset `off` a frame the consumer may
 * take? Inside the ring, and short of a lap (the producer keeps a header
 * free): the bytes past a record are never the record again. */
static inline bool subiter__ring_frame_ok(const struct subiter__ring *r,
                                          uint32_t off, uint32_t flen,
                                          uint32_t kind)
{
    uint64_t rec = subiter__ring_rec_bytes(flen);

    return kind == SUBITER__REC_FRAME && rec <= r->size - off &&
           rec <= r->size - SUBITER__REC_HDR;
}
/* Consumer: the common peek, inline: the record at our index when it is a
 * frame subiter__ring_frame_ok() takes (*len its length); NULL for
 * anything else (nothing yet, padding, a bad header), which
 * subiter__ring_peek() then reads again and judges. */
static inline const unsigned char *
subiter__ring_peek_fast(const struct subiter__ring *r, uint32_t *len)
{
    uint32_t off = r->pos & r->mask, flen, kind;

    if ((off & 7u) != 0) {
        return NULL;
    }
    subiter__ring_load_hdr(r, &flen, &kind);
    if (!subiter__ring_frame_ok(r, off, flen, kind)) {
        return NULL;
    }
    *len = flen;
    return r->data + off + SUBITER__REC_HDR;
}
/* Consumer: release the record returned by the last peek. The room goes
 * back to the producer only at the next subiter__ring_publish(), so that
 * a consumer may give it back in batches. */
static inline void subiter__ring_release(struct subiter__ring *r, uint32_t len)
{
    uint64_t rec = subiter__ring_rec_bytes(len);

    /* Only what the last peek validated (subiter__ring_frame_ok()): not
     * past the end of the ring. */
    r->pos += (uint32_t)rec;
}
/* Consumer: store our index: the producer may write over what we read. */
SUBITER__HIDDEN void subiter__ring_publish(struct subiter__ring *r);
/* Consumer: bytes released and not yet published. */
static inline uint32_t subiter__ring_unpublished(const struct subiter__ring *r)
{
    return r->pos - r->published;
}
/* Consumer: is anything published past what we have read (a record, or
 * one that is not well-formed, which peek then refuses)? */
static inline bool subiter__ring_pending(const struct subiter__ring *r)
{
    uint32_t len, kind;

    if ((r->pos & 7u) != 0) {
        return true; /* peek says -EPROTO */
    }
    subiter__ring_load_hdr(r, &len, &kind);
    return kind != SUBITER__REC_NONE;
}
/* Consumer: the producer's index as it says (not trusted: for estimates
 * and marks only). */
SUBITER__HIDDEN uint32_t subiter__ring_tail(const struct subiter__ring *r);

#endif /* SUBITER_RING_H */
