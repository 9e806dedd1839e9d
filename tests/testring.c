/* testring.c: the test ring the ring suites share (see testring.h). */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testring.h"

void tring_open(struct tring *t, uint32_t size, uint32_t start,
                enum layout where)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t body = ((size_t)size + page - 1) / page * page;
    void *m;

    memset(t, 0, sizeof *t);
    t->map_len = body + 2 * page;
    m = mmap(NULL, t->map_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(m, MAP_FAILED);
    t->map = m;
    ck_assert_int_eq(mprotect(t->map + page, body, PROT_READ | PROT_WRITE), 0);
    t->data = where == AT_END ? t->map + page + body - size : t->map + page;
    t->size = size;
    t->aligned = (start & 7u) == 0;
    atomic_store_explicit(&t->w.head, start, memory_order_relaxed);
    atomic_store_explicit(&t->w.tail, start, memory_order_relaxed);
    subiter__ring_init(&t->prod, &t->w.head, &t->w.tail, t->data, size, true);
    subiter__ring_init(&t->cons, &t->w.head, &t->w.tail, t->data, size, false);
}

void tring_close(struct tring *t)
{
    ck_assert_int_eq(munmap(t->map, t->map_len), 0);
}

uint32_t tring_head(struct tring *t)
{
    return atomic_load_explicit(&t->w.head, memory_order_relaxed);
}

uint32_t tring_tail(struct tring *t)
{
    return atomic_load_explicit(&t->w.tail, memory_order_relaxed);
}

uint64_t tring_rec_len(uint64_t frame_len)
{
    return (SUBITER__REC_HDR + frame_len + 7u) & ~(uint64_t)7u;
}

static uint32_t hash32(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

uint64_t tring_rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}

/* Record `seq`'s length: a quarter are empty, the rest up to maxlen. */
size_t tring_len_for(uint32_t seq, size_t maxlen)
{
    uint32_t h = hash32(seq ^ 0x9e3779b9u);

    if ((h & 3u) == 0) {
        return 0;
    }
    return (h >> 2) % (maxlen + 1);
}

static unsigned char pat(uint32_t seq, size_t i)
{
    return (unsigned char)(hash32(seq) + i * 151u + (i >> 8));
}

/* Record `seq`'s bytes: its sequence number first, then a pattern. */
void tring_fill(unsigned char *p, uint32_t seq, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        p[i] = pat(seq, i);
    }
    if (len >= sizeof seq) {
        memcpy(p, &seq, sizeof seq);
    }
}

bool tring_intact(const unsigned char *p, uint32_t seq, size_t len)
{
    uint32_t got;
    size_t i;

    if (len >= sizeof seq) {
        memcpy(&got, p, sizeof got);
        if (got != seq) {
            return false;
        }
        i = sizeof seq;
    } else {
        i = 0;
    }
    for (; i < len; i++) {
        if (p[i] != pat(seq, i)) {
            return false;
        }
    }
    return true;
}

/* Is [p, p + len) inside the ring's data, right after a record header? */
void tring_assert_in_ring(struct tring *t, const unsigned char *p, size_t len)
{
    REQUIRE(p != NULL);
    REQUIRE(p >= t->data + SUBITER__REC_HDR);
    REQUIRE(p <= t->data + t->size);
    REQUIRE_LE(len, (size_t)(t->data + t->size - p));
    if (t->aligned) {
        REQUIRE_EQ((size_t)(p - t->data) % 8u, 0);
    }
}

/* Produce record `seq` of `len` bytes; counts the PADs the ring wrote. */
int tring_produce(struct tring *t, uint32_t seq, size_t len)
{
    uint32_t before = t->prod.pos, tail, kind;
    void *frame = NULL;
    int r;

    r = subiter__ring_reserve(&t->prod, len, &frame);
    if (t->prod.pos != before) {
        t->pads++;
        /* A PAD is published at once, and fills up to the ring's end. */
        REQUIRE_EQ(t->prod.pos & (t->size - 1), 0);
        REQUIRE_EQ(tring_tail(t), t->prod.pos);
    }
    if (r != 0) {
        return r;
    }
    tring_assert_in_ring(t, frame, len);
    tring_fill(frame, seq, len);
    tail = tring_tail(t);
    subiter__ring_commit(&t->prod, (uint32_t)len);
    REQUIRE_EQ(tring_tail(t), tail + (uint32_t)tring_rec_len(len));
    /* A header's room stays free, and says "not yet" (ring.h). */
    REQUIRE_LE(tring_tail(t) - tring_head(t), t->size - SUBITER__REC_HDR);
    memcpy(&kind, t->data + (t->prod.pos & (t->size - 1)) + 4, sizeof kind);
    REQUIRE_EQ(kind, SUBITER__REC_NONE);
    return 0;
}

/* Consume one record and check it is `seq` of `len` bytes. */
int tring_consume(struct tring *t, uint32_t seq, size_t len)
{
    const unsigned char *frame = NULL;
    uint32_t flen = 0;
    int r;

    r = subiter__ring_peek(&t->cons, &frame, &flen);
    if (r != 1) {
        return r;
    }
    REQUIRE_EQ(flen, len);
    tring_assert_in_ring(t, frame, flen);
    if (!tring_intact(frame, seq, flen)) {
        ck_abort_msg("record %u damaged", seq);
    }
    subiter__ring_release(&t->cons, flen);
    subiter__ring_publish(&t->cons);
    return 1;
}

void tring_forge_bad_record(struct subiter__shm *shm, bool cmd)
{
    unsigned char *data = (unsigned char *)shm + shm->hdr_bytes;
    uint32_t size = cmd ? shm->cmd_bytes : shm->item_bytes;
    uint32_t at = atomic_load(cmd ? &shm->cmd_tail : &shm->item_tail);

    if (!cmd) {
        data += shm->cmd_bytes;
    }
    /* Length 0, kind 7: no such kind. */
    atomic_store((_Atomic uint64_t *)(void *)(data + (at & (size - 1))),
                 subiter__ring_hdr_word(0, 7));
}
