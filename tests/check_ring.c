/* check_ring.c: the record ring of lib/ring.c, driven directly in one
 * process: order and bytes across wraps, indices past UINT32_MAX, the byte
 * bound, a hostile producer, and two threads at full speed. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

/* Where the ring's data sits between its two PROT_NONE guard pages. */
enum layout { AT_END, AT_START };

/* The two shared words, each on its own line as in struct subiter__shm. */
struct words {
    _Alignas(SUBITER__CACHELINE) _Atomic uint32_t head;
    _Alignas(SUBITER__CACHELINE) _Atomic uint32_t tail;
};

/*
 * A ring over an mmap'd buffer with an inaccessible page on each side, so
 * that any access past either end faults in any build (and ASan sees the
 * rest). AT_END puts the last data byte right before the upper guard.
 */
struct tring {
    struct words w;
    unsigned char *map;
    size_t map_len;
    unsigned char *data;
    uint32_t size;
    bool aligned; /* the start index was a multiple of 8 */
    unsigned long pads;
    struct subiter__ring prod;
    struct subiter__ring cons;
};

static void tring_open(struct tring *t, uint32_t size, uint32_t start,
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

static void tring_close(struct tring *t)
{
    ck_assert_int_eq(munmap(t->map, t->map_len), 0);
}

static uint32_t head_of(struct tring *t)
{
    return atomic_load_explicit(&t->w.head, memory_order_relaxed);
}

static uint32_t tail_of(struct tring *t)
{
    return atomic_load_explicit(&t->w.tail, memory_order_relaxed);
}

static void set_tail(struct tring *t, uint32_t v)
{
    atomic_store_explicit(&t->w.tail, v, memory_order_release);
}

/* Write a record header the way a producer would (or would not). */
static void put_hdr(struct tring *t, uint32_t off, uint32_t len, uint32_t kind)
{
    uint32_t h[2] = {len, kind};

    REQUIRE_LE(off + sizeof h, t->size);
    memcpy(t->data + off, h, sizeof h);
}

static uint64_t rec_len(uint64_t frame_len)
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

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}

/* Record `seq`'s length: a quarter are empty, the rest up to maxlen. */
static size_t len_for(uint32_t seq, size_t maxlen)
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
static void fill(unsigned char *p, uint32_t seq, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        p[i] = pat(seq, i);
    }
    if (len >= sizeof seq) {
        memcpy(p, &seq, sizeof seq);
    }
}

static bool intact(const unsigned char *p, uint32_t seq, size_t len)
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
static void assert_in_ring(struct tring *t, const unsigned char *p, size_t len)
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
static int produce(struct tring *t, uint32_t seq, size_t len)
{
    uint32_t before = t->prod.pos, tail;
    void *frame = NULL;
    int r;

    r = subiter__ring_reserve(&t->prod, len, &frame);
    if (t->prod.pos != before) {
        t->pads++;
        /* A PAD is published at once, and fills up to the ring's end. */
        REQUIRE_EQ(t->prod.pos & (t->size - 1), 0);
        REQUIRE_EQ(tail_of(t), t->prod.pos);
    }
    if (r != 0) {
        return r;
    }
    assert_in_ring(t, frame, len);
    fill(frame, seq, len);
    tail = tail_of(t);
    subiter__ring_commit(&t->prod, (uint32_t)len);
    REQUIRE_EQ(tail_of(t), tail + (uint32_t)rec_len(len));
    REQUIRE_LE(tail_of(t) - head_of(t), t->size);
    return 0;
}

/* Consume one record and check it is `seq` of `len` bytes. */
static int consume(struct tring *t, uint32_t seq, size_t len)
{
    const unsigned char *frame = NULL;
    uint32_t flen = 0;
    int r;

    r = subiter__ring_peek(&t->cons, &frame, &flen);
    if (r != 1) {
        return r;
    }
    REQUIRE_EQ(flen, len);
    assert_in_ring(t, frame, flen);
    if (!intact(frame, seq, flen)) {
        ck_abort_msg("record %u damaged", seq);
    }
    subiter__ring_release(&t->cons, flen);
    return 1;
}

/*
 * One thread plays both sides in a random interleaving: n records with
 * lengths up to maxlen. Returns how many times the producer met a full
 * ring.
 */
static unsigned long shuffle(struct tring *t, uint32_t n, size_t maxlen,
                             uint64_t seed)
{
    uint32_t produced = 0, consumed = 0;
    unsigned long full = 0, empty = 0;
    uint64_t s = seed;
    int r;

    while (consumed < n) {
        if (produced < n && (rnd(&s) & 1u)) {
            r = produce(t, produced, len_for(produced, maxlen));
            if (r == 0) {
                produced++;
                continue;
            }
            REQUIRE_EQ(r, -EAGAIN);
            /* Full means records are waiting, or at least the PAD. */
            REQUIRE(produced > consumed || tail_of(t) != head_of(t));
            full++;
        } else {
            r = consume(t, consumed, len_for(consumed, maxlen));
            if (r == 1) {
                consumed++;
                continue;
            }
            REQUIRE_EQ(r, 0);
            REQUIRE_EQ(produced, consumed);
            REQUIRE(!subiter__ring_pending(&t->cons));
            REQUIRE_EQ(head_of(t), tail_of(t));
            empty++;
        }
    }
    REQUIRE_EQ(consume(t, n, 0), 0);
    REQUIRE_GT(empty, 0);
    return full;
}

START_TEST(test_ring_roundtrip_in_order_across_wraps)
{
    static const size_t maxlens[] = {0, 1, 40, 120, 248};
    struct tring t;
    unsigned long full;
    size_t i;

    for (i = 0; i < sizeof maxlens / sizeof maxlens[0]; i++) {
        tring_open(&t, 256, 0, AT_END);
        full = shuffle(&t, 20000, maxlens[i], 42 + i);
        /* Many laps, and (but for fixed 8-byte records) many PADs. */
        ck_assert_uint_gt(t.prod.pos / t.size, 500);
        if (maxlens[i] > 0) {
            ck_assert_uint_gt(t.pads, 100);
        }
        ck_assert_uint_gt(full, 0);
        tring_close(&t);
    }
}
END_TEST

START_TEST(test_ring_empty_frames)
{
    struct tring t;
    uint32_t i;

    tring_open(&t, 64, 0, AT_START);
    ck_assert_int_eq(consume(&t, 0, 0), 0);
    ck_assert(!subiter__ring_pending(&t.cons));
    /* 0-byte frames take one header each: eight fill a 64-byte ring. */
    for (i = 0; i < 8; i++) {
        ck_assert_int_eq(produce(&t, i, 0), 0);
    }
    ck_assert_int_eq(produce(&t, 8, 0), -EAGAIN);
    ck_assert(subiter__ring_pending(&t.cons));
    for (i = 0; i < 8; i++) {
        ck_assert_int_eq(consume(&t, i, 0), 1);
    }
    ck_assert_int_eq(consume(&t, 8, 0), 0);
    ck_assert_uint_eq(head_of(&t), 64);
    ck_assert_uint_eq(t.pads, 0);
    tring_close(&t);
}
END_TEST

START_TEST(test_ring_wraps_past_uint32_max)
{
    /* Indices are 8-byte multiples: records stay aligned. */
    static const uint32_t starts[] = {
        UINT32_MAX - 7u,   UINT32_MAX - 103u, UINT32_MAX - 255u,
        UINT32_MAX - 127u, 0x80000000u - 64u,
    };
    struct tring t;
    uint32_t i, k;

    for (k = 0; k < sizeof starts / sizeof starts[0]; k++) {
        tring_open(&t, 256, starts[k], k % 2 ? AT_START : AT_END);
        shuffle(&t, 5000, 100, 7 + k);
        /* The indices went past UINT32_MAX (or 2^31). */
        ck_assert_uint_gt(t.prod.pos - starts[k], 5000u * 8u);
        ck_assert_uint_lt(t.prod.pos - starts[k], 5000u * 360u);
        if (starts[k] > 0x80000000u) {
            ck_assert_uint_lt(t.prod.pos, starts[k]);
        } else {
            ck_assert_uint_ge(t.prod.pos, 0x80000000u);
        }
        ck_assert_uint_eq(t.prod.pos, t.cons.pos);
        tring_close(&t);
    }

    /* A full ring whose bound straddles 2^32: head below, tail above. */
    tring_open(&t, 256, UINT32_MAX - 127u, AT_END);
    for (i = 0; i < 32; i++) {
        ck_assert_int_eq(produce(&t, i, 0), 0);
    }
    ck_assert_uint_eq(tail_of(&t), 128u);
    ck_assert_uint_eq(head_of(&t), UINT32_MAX - 127u);
    ck_assert_int_eq(produce(&t, 32, 0), -EAGAIN);
    ck_assert_int_eq(consume(&t, 0, 0), 1);
    ck_assert_int_eq(produce(&t, 32, 0), 0);
    ck_assert_int_eq(produce(&t, 33, 0), -EAGAIN);
    for (i = 1; i <= 32; i++) {
        ck_assert_int_eq(consume(&t, i, 0), 1);
    }
    ck_assert_int_eq(consume(&t, 33, 0), 0);
    ck_assert_uint_eq(head_of(&t), 136u);
    tring_close(&t);
}
END_TEST

/*
 * Indices may start anywhere 8-aligned (subiter__ring_init asserts it:
 * records are 8-aligned, so the room before the end of the ring is always
 * a whole record header). Start a few records short of UINT32_MAX.
 */
START_TEST(test_ring_aligned_start_index)
{
    struct tring t;

    tring_open(&t, 256, (UINT32_MAX - 100u) & ~7u, AT_END);
    shuffle(&t, 5000, 100, 99);
    ck_assert_uint_eq(t.prod.pos, t.cons.pos);
    tring_close(&t);

    /* Only empty frames: the producer walks 8 bytes at a time up to the
     * end, and then wraps. */
    tring_open(&t, 256, (UINT32_MAX - 100u) & ~7u, AT_END);
    shuffle(&t, 1000, 0, 5);
    tring_close(&t);
}
END_TEST

START_TEST(test_ring_full_until_release)
{
    struct tring t;
    uint32_t i, tail;
    size_t big;

    tring_open(&t, 256, 0, AT_END);
    /* 24-byte frames take 32 bytes: exactly eight fit. */
    for (i = 0; i < 8; i++) {
        ck_assert_int_eq(produce(&t, i, 24), 0);
    }
    tail = tail_of(&t);
    ck_assert_uint_eq(tail, 256);
    ck_assert_int_eq(produce(&t, 8, 24), -EAGAIN);
    ck_assert_int_eq(produce(&t, 8, 0), -EAGAIN);
    ck_assert_int_eq(produce(&t, 8, 24), -EAGAIN);
    /* Nothing published by the refusals. */
    ck_assert_uint_eq(tail_of(&t), tail);
    ck_assert_uint_eq(t.pads, 0);

    /* Peeking alone frees nothing; the release does. */
    {
        const unsigned char *f;
        uint32_t len;

        ck_assert_int_eq(subiter__ring_peek(&t.cons, &f, &len), 1);
        ck_assert_int_eq(produce(&t, 8, 24), -EAGAIN);
        ck_assert_int_eq(subiter__ring_peek(&t.cons, &f, &len), 1);
        ck_assert_uint_eq(len, 24);
        ck_assert(intact(f, 0, len));
        subiter__ring_release(&t.cons, len);
    }
    ck_assert_int_eq(produce(&t, 8, 24), 0);
    ck_assert_int_eq(produce(&t, 9, 0), -EAGAIN);
    for (i = 1; i <= 8; i++) {
        ck_assert_int_eq(consume(&t, i, 24), 1);
    }
    ck_assert_int_eq(consume(&t, 9, 0), 0);
    tring_close(&t);

    /* Freeing 32 bytes lets a 24-byte frame in, not a 25-byte one. */
    tring_open(&t, 256, 0, AT_END);
    for (i = 0; i < 8; i++) {
        ck_assert_int_eq(produce(&t, i, 24), 0);
    }
    ck_assert_int_eq(consume(&t, 0, 24), 1);
    ck_assert_int_eq(produce(&t, 8, 25), -EAGAIN);
    ck_assert_int_eq(produce(&t, 8, 24), 0);
    for (i = 1; i <= 8; i++) {
        ck_assert_int_eq(consume(&t, i, 24), 1);
    }
    ck_assert_uint_eq(t.pads, 0);
    tring_close(&t);

    /* A bigger ring fills to the byte as well. */
    big = 1u << 16;
    tring_open(&t, (uint32_t)big, 0, AT_START);
    for (i = 0; produce(&t, i, 120) == 0; i++) {
        continue;
    }
    ck_assert_uint_eq(i, big / 128);
    ck_assert_uint_eq(tail_of(&t), big);
    for (i = 0; i < big / 128; i++) {
        ck_assert_int_eq(consume(&t, i, 120), 1);
    }
    tring_close(&t);
}
END_TEST

START_TEST(test_ring_max_frame_fits_empty_ring)
{
    static const uint32_t sizes[] = {64, 256, 4096, 1u << 20};
    struct tring t;
    size_t max;
    uint32_t k;

    for (k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        tring_open(&t, sizes[k], 0, AT_END);
        max = subiter__ring_max_frame(&t.prod);
        ck_assert_uint_eq(max, sizes[k] - SUBITER__REC_HDR);
        ck_assert_uint_eq(subiter__ring_max_frame(&t.cons), max);
        ck_assert_int_eq(produce(&t, 1, max), 0);
        ck_assert_uint_eq(tail_of(&t), sizes[k]);
        ck_assert_int_eq(produce(&t, 2, 0), -EAGAIN);
        ck_assert_int_eq(consume(&t, 1, max), 1);
        /* Again, from the start of the ring. */
        ck_assert_int_eq(produce(&t, 2, max), 0);
        ck_assert_int_eq(consume(&t, 2, max), 1);
        ck_assert_uint_eq(t.pads, 0);
        tring_close(&t);
    }
}
END_TEST

START_TEST(test_ring_max_frame_mid_ring_pads_first)
{
    struct tring t;
    size_t max;
    int drained;

    /* drained: the consumer has read the small record before the big one
     * is asked for, or has not. */
    for (drained = 0; drained <= 1; drained++) {
        tring_open(&t, 256, 0, AT_END);
        max = subiter__ring_max_frame(&t.prod);
        ck_assert_int_eq(produce(&t, 1, 5), 0);
        if (drained) {
            ck_assert_int_eq(consume(&t, 1, 5), 1);
        }
        /* The PAD goes out at once; the record must wait for room. */
        ck_assert_int_eq(produce(&t, 2, max), -EAGAIN);
        ck_assert_uint_eq(t.pads, 1);
        ck_assert_uint_eq(tail_of(&t), 256);
        /* Asking again does not pad again. */
        ck_assert_int_eq(produce(&t, 2, max), -EAGAIN);
        ck_assert_int_eq(produce(&t, 2, max), -EAGAIN);
        ck_assert_uint_eq(t.pads, 1);
        ck_assert_uint_eq(tail_of(&t), 256);
        if (!drained) {
            ck_assert_int_eq(consume(&t, 1, 5), 1);
            ck_assert_uint_eq(head_of(&t), 16);
            ck_assert_int_eq(produce(&t, 2, max), -EAGAIN);
        }
        /* The consumer skips the PAD and finds the ring empty. */
        ck_assert_int_eq(consume(&t, 2, max), 0);
        ck_assert_uint_eq(head_of(&t), 256);
        ck_assert_int_eq(produce(&t, 2, max), 0);
        ck_assert_uint_eq(tail_of(&t), 512);
        ck_assert_int_eq(consume(&t, 2, max), 1);
        ck_assert_uint_eq(t.pads, 1);
        tring_close(&t);
    }

    /* No room for the PAD yet: nothing is published until there is. */
    tring_open(&t, 256, 0, AT_END);
    max = subiter__ring_max_frame(&t.prod);
    ck_assert_int_eq(produce(&t, 1, 200), 0);
    ck_assert_int_eq(produce(&t, 2, 40), 0);
    ck_assert_uint_eq(tail_of(&t), 256);
    ck_assert_int_eq(consume(&t, 1, 200), 1);
    ck_assert_int_eq(produce(&t, 3, 40), 0);
    /* [208, 256) and [256, 304) are held: the PAD needs [304, 512). */
    ck_assert_int_eq(produce(&t, 4, max), -EAGAIN);
    ck_assert_uint_eq(t.pads, 0);
    ck_assert_uint_eq(tail_of(&t), 304);
    ck_assert_int_eq(consume(&t, 2, 40), 1);
    /* Now the PAD fits and goes out; the record still waits. */
    ck_assert_int_eq(produce(&t, 4, max), -EAGAIN);
    ck_assert_uint_eq(t.pads, 1);
    ck_assert_uint_eq(tail_of(&t), 512);
    ck_assert_int_eq(consume(&t, 3, 40), 1);
    ck_assert_int_eq(produce(&t, 4, max), -EAGAIN);
    ck_assert_int_eq(consume(&t, 4, max), 0);
    ck_assert_uint_eq(head_of(&t), 512);
    ck_assert_int_eq(produce(&t, 4, max), 0);
    ck_assert_int_eq(consume(&t, 4, max), 1);
    ck_assert_uint_eq(t.pads, 1);
    tring_close(&t);
}
END_TEST

START_TEST(test_ring_oversized_frame_is_emsgsize)
{
    static const uint32_t sizes[] = {64, 256, 1u << 20};
    struct tring t;
    uint32_t k, tail;
    size_t max;
    void *frame;

    for (k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        tring_open(&t, sizes[k], 0, AT_END);
        max = subiter__ring_max_frame(&t.prod);
        ck_assert_int_eq(produce(&t, 1, 0), 0);
        tail = tail_of(&t);
        frame = NULL;
        ck_assert_int_eq(subiter__ring_reserve(&t.prod, max + 1, &frame),
                         -EMSGSIZE);
        ck_assert_int_eq(subiter__ring_reserve(&t.prod, max + 8, &frame),
                         -EMSGSIZE);
        ck_assert_int_eq(
            subiter__ring_reserve(&t.prod, (size_t)UINT32_MAX, &frame),
            -EMSGSIZE);
        /* Not truncated to 32 bits on the way. */
        ck_assert_int_eq(
            subiter__ring_reserve(&t.prod, (size_t)UINT32_MAX + 9, &frame),
            -EMSGSIZE);
        ck_assert_int_eq(subiter__ring_reserve(&t.prod, SIZE_MAX, &frame),
                         -EMSGSIZE);
        ck_assert_ptr_null(frame);
        /* Never fits, so no PAD was written for it either. */
        ck_assert_uint_eq(tail_of(&t), tail);
        ck_assert_uint_eq(t.prod.pos, tail);
        ck_assert_int_eq(consume(&t, 1, 0), 1);
        ck_assert_int_eq(consume(&t, 2, 0), 0);
        tring_close(&t);
    }
}
END_TEST

/* ---- a hostile producer: the consumer must say -EPROTO, never fault ---- */

/* A consumer at index `start` over an empty ring of 256 bytes. */
static void hostile_open(struct tring *t, uint32_t start, enum layout where)
{
    tring_open(t, 256, start, where);
    /* Garbage everywhere, so nothing passes by luck of zeroed memory. */
    memset(t->data, 0xa5, t->size);
}

static int peek(struct tring *t)
{
    const unsigned char *f = NULL;
    uint32_t len = 0;
    int r = subiter__ring_peek(&t->cons, &f, &len);

    if (r == 1) {
        assert_in_ring(t, f, len);
    }
    return r;
}

/* peek says -EPROTO, twice, and has given nothing back to the producer. */
static void assert_eproto(struct tring *t, uint32_t head)
{
    ck_assert_int_eq(peek(t), -EPROTO);
    ck_assert_int_eq(peek(t), -EPROTO);
    ck_assert_uint_eq(head_of(t), head);
}

START_TEST(test_ring_hostile_tail_backwards)
{
    static const uint32_t back[] = {1, 4, 8, 16, 248, 256, 0x80000000u};
    struct tring t;
    uint32_t i, start;
    int where;

    for (where = AT_END; where <= AT_START; where++) {
        for (i = 0; i < sizeof back / sizeof back[0]; i++) {
            /* After one honest record, so head is not the start. */
            start = i % 2 ? 0 : UINT32_MAX - 15u;
            tring_open(&t, 256, start, (enum layout)where);
            ck_assert_int_eq(produce(&t, 1, 3), 0);
            ck_assert_int_eq(consume(&t, 1, 3), 1);
            ck_assert_int_eq(peek(&t), 0);
            set_tail(&t, head_of(&t) - back[i]);
            assert_eproto(&t, start + 16);
            tring_close(&t);
        }
    }
}
END_TEST

START_TEST(test_ring_hostile_tail_too_far)
{
    static const uint32_t ahead[] = {257, 264, 512, 0x7fffffffu, 0xfffffff8u};
    struct tring t;
    uint32_t i;
    int where;

    for (where = AT_END; where <= AT_START; where++) {
        for (i = 0; i < sizeof ahead / sizeof ahead[0]; i++) {
            hostile_open(&t, 128, (enum layout)where);
            put_hdr(&t, 128, 0, SUBITER__REC_FRAME);
            set_tail(&t, 128 + ahead[i]);
            assert_eproto(&t, 128);
            tring_close(&t);
        }
        /* Less than a header published. */
        for (i = 1; i < SUBITER__REC_HDR; i++) {
            hostile_open(&t, 128, (enum layout)where);
            put_hdr(&t, 128, 0, SUBITER__REC_FRAME);
            set_tail(&t, 128 + i);
            assert_eproto(&t, 128);
            tring_close(&t);
        }
        /* Control: exactly the whole ring is allowed. */
        hostile_open(&t, 128, (enum layout)where);
        put_hdr(&t, 128, 0, SUBITER__REC_FRAME);
        set_tail(&t, 128 + 256);
        ck_assert_int_eq(peek(&t), 1);
        tring_close(&t);
    }
}
END_TEST

START_TEST(test_ring_hostile_length_past_tail)
{
    static const uint32_t lens[] = {
        9, 16, 100, 248, 249, 0x7ffffff8u, UINT32_MAX, UINT32_MAX - 7u};
    struct tring t;
    uint32_t i;
    int where;

    for (where = AT_END; where <= AT_START; where++) {
        for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
            /* 16 bytes published: header and 8 bytes of frame. */
            hostile_open(&t, 64, (enum layout)where);
            put_hdr(&t, 64, lens[i], SUBITER__REC_FRAME);
            set_tail(&t, 64 + 16);
            assert_eproto(&t, 64);
            tring_close(&t);
        }
        /* Control: 8 bytes of frame in 16 published bytes is fine. */
        hostile_open(&t, 64, (enum layout)where);
        put_hdr(&t, 64, 8, SUBITER__REC_FRAME);
        set_tail(&t, 64 + 16);
        ck_assert_int_eq(peek(&t), 1);
        tring_close(&t);
    }
}
END_TEST

START_TEST(test_ring_hostile_length_past_ring_end)
{
    static const uint32_t lens[] = {
        57, 64, 120, 248, 249, 256, UINT32_MAX - 7u, UINT32_MAX};
    const unsigned char *f;
    struct tring t;
    uint32_t i, len;
    int where;

    for (where = AT_END; where <= AT_START; where++) {
        for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
            /* 64 bytes before the end, the whole ring published. */
            hostile_open(&t, 256 - 64, (enum layout)where);
            put_hdr(&t, 256 - 64, lens[i], SUBITER__REC_FRAME);
            set_tail(&t, 256 - 64 + 256);
            assert_eproto(&t, 256 - 64);
            tring_close(&t);
        }
        /* Control: a frame that ends exactly at the end. */
        hostile_open(&t, 256 - 64, (enum layout)where);
        put_hdr(&t, 256 - 64, 56, SUBITER__REC_FRAME);
        set_tail(&t, 256 - 64 + 256);
        ck_assert_int_eq(subiter__ring_peek(&t.cons, &f, &len), 1);
        ck_assert_uint_eq(len, 56);
        ck_assert_ptr_eq(f + len, t.data + 256);
        tring_close(&t);
    }
}
END_TEST

START_TEST(test_ring_hostile_unknown_kind)
{
    static const uint32_t kinds[] = {2, 3, 0x100, 0x80000000u, UINT32_MAX};
    struct tring t;
    uint32_t i;
    int where;

    for (where = AT_END; where <= AT_START; where++) {
        for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
            hostile_open(&t, 0, (enum layout)where);
            put_hdr(&t, 0, 0, kinds[i]);
            set_tail(&t, 8);
            assert_eproto(&t, 0);
            tring_close(&t);

            /* Behind a valid PAD too. */
            hostile_open(&t, 192, (enum layout)where);
            put_hdr(&t, 192, 0, SUBITER__REC_PAD);
            put_hdr(&t, 0, 8, kinds[i]);
            set_tail(&t, 256 + 16);
            ck_assert_int_eq(peek(&t), -EPROTO);
            ck_assert_int_eq(peek(&t), -EPROTO);
            tring_close(&t);
        }
    }
}
END_TEST

START_TEST(test_ring_hostile_pad_past_tail)
{
    static const uint32_t published[] = {8, 16, 56};
    struct tring t;
    uint32_t i;
    int where;

    for (where = AT_END; where <= AT_START; where++) {
        for (i = 0; i < sizeof published / sizeof published[0]; i++) {
            /* A PAD at 192 covers 64 bytes, only some are published. */
            hostile_open(&t, 192, (enum layout)where);
            put_hdr(&t, 192, 0, SUBITER__REC_PAD);
            set_tail(&t, 192 + published[i]);
            assert_eproto(&t, 192);
            tring_close(&t);
        }
        /* Control: all of it published; skipped and released. */
        hostile_open(&t, 192, (enum layout)where);
        put_hdr(&t, 192, 0, SUBITER__REC_PAD);
        set_tail(&t, 256);
        ck_assert_int_eq(peek(&t), 0);
        ck_assert_uint_eq(head_of(&t), 256);
        tring_close(&t);

        /* A PAD then less than a header. */
        hostile_open(&t, 192, (enum layout)where);
        put_hdr(&t, 192, 0, SUBITER__REC_PAD);
        set_tail(&t, 256 + 4);
        ck_assert_int_eq(peek(&t), -EPROTO);
        tring_close(&t);
    }
}
END_TEST

/*
 * Random rings: random bytes, random published counts, random headers at
 * the consumer's position. Whatever peek returns 1 for must lie inside the
 * ring and inside what was published; nothing may fault.
 */
START_TEST(test_ring_hostile_random_never_escapes)
{
    struct tring t;
    uint64_t s = 0x5eed;
    uint32_t trial, start, tail, pos, len, i;
    const unsigned char *f;
    unsigned long seen[3] = {0, 0, 0}; /* -EPROTO, empty, records */
    int where, r, steps;

    for (where = AT_END; where <= AT_START; where++) {
        tring_open(&t, 256, 0, (enum layout)where);
        for (trial = 0; trial < 20000; trial++) {
            start = (uint32_t)rnd(&s) & ~7u;
            if (trial % 4 == 0) {
                start = UINT32_MAX - 255u + ((uint32_t)rnd(&s) & 0xf8u);
            }
            for (i = 0; i < t.size; i += 8) {
                uint64_t w = rnd(&s);

                /* Headers that look plausible, now and then. */
                if ((w & 3u) != 0) {
                    put_hdr(&t, i, (uint32_t)(w >> 8) % ((w & 4u) ? 300u : 40u),
                            (w >> 40) % 8u == 0   ? 2u
                            : (w >> 43) % 4u == 0 ? SUBITER__REC_PAD
                                                  : SUBITER__REC_FRAME);
                } else {
                    memcpy(t.data + i, &w, sizeof w);
                }
            }
            switch (rnd(&s) % 4) {
            case 0:
                tail = start + (uint32_t)rnd(&s);
                break;
            case 1:
                tail = start + (uint32_t)(rnd(&s) % 300u);
                break;
            default:
                tail = start + ((uint32_t)(rnd(&s) % 260u) & ~7u);
                break;
            }
            atomic_store_explicit(&t.w.head, start, memory_order_relaxed);
            atomic_store_explicit(&t.w.tail, tail, memory_order_relaxed);
            subiter__ring_init(&t.cons, &t.w.head, &t.w.tail, t.data, t.size,
                               false);
            for (steps = 0; steps < 40; steps++) {
                pos = t.cons.pos;
                f = NULL;
                len = 0;
                r = subiter__ring_peek(&t.cons, &f, &len);
                seen[r == -EPROTO ? 0 : r == 0 ? 1 : 2]++;
                if (r != 1) {
                    REQUIRE(r == 0 || r == -EPROTO);
                    if (r == 0) {
                        REQUIRE_EQ(t.cons.pos, tail);
                    }
                    break;
                }
                assert_in_ring(&t, f, len);
                /* Inside what was published, past any skipped PAD. */
                REQUIRE_LE(t.cons.pos - start, tail - start);
                REQUIRE_LE(t.cons.pos - pos, tail - pos);
                REQUIRE_LE(rec_len(len), tail - t.cons.pos);
                subiter__ring_release(&t.cons, len);
                REQUIRE_LE(t.cons.pos - start, tail - start);
            }
        }
        tring_close(&t);
    }
    /* Each outcome was met often, not just the first check. */
    ck_assert_uint_gt(seen[0], 10000);
    ck_assert_uint_gt(seen[1], 500);
    ck_assert_uint_gt(seen[2], 5000);
}
END_TEST

/* ---- two threads ---- */

#define THREAD_RECORDS 200000u
#define THREAD_MAXLEN 300u

struct duo {
    struct tring t;
    uint32_t n;
    uint64_t prod_sum; /* FNV-1a over every byte sent, then received */
    uint64_t cons_sum;
    uint32_t received;
    uint32_t bad_seq;  /* first record found damaged, or UINT32_MAX */
    uint32_t bad_kind; /* consumer: 1 length, 2 bytes, 3 bounds, 4 error */
    int prod_err;      /* producer: what reserve returned, if it failed */
    _Atomic bool quit; /* one side gave up: the other must not spin on */
    unsigned long prod_waits;
    unsigned long cons_waits;
};

static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        h = (h ^ p[i]) * 0x100000001b3ull;
    }
    return h;
}

static void *producer_main(void *arg)
{
    struct duo *d = arg;
    uint64_t h = 0xcbf29ce484222325ull;
    uint32_t seq;
    size_t len;
    void *frame;
    int r;

    for (seq = 0; seq < d->n; seq++) {
        len = len_for(seq, THREAD_MAXLEN);
        while ((r = subiter__ring_reserve(&d->t.prod, len, &frame)) ==
                   -EAGAIN &&
               !atomic_load(&d->quit)) {
            d->prod_waits++;
            sched_yield();
        }
        if (r != 0) {
            d->prod_err = r;
            atomic_store(&d->quit, true);
            break;
        }
        fill(frame, seq, len);
        h = fnv(h, frame, len);
        subiter__ring_commit(&d->t.prod, (uint32_t)len);
    }
    d->prod_sum = h;
    return NULL;
}

static void *consumer_main(void *arg)
{
    struct duo *d = arg;
    struct tring *t = &d->t;
    uint64_t h = 0xcbf29ce484222325ull;
    const unsigned char *f;
    uint32_t seq, len;
    int r;

    for (seq = 0; seq < d->n; seq++) {
        while ((r = subiter__ring_peek(&t->cons, &f, &len)) == 0 &&
               !atomic_load(&d->quit)) {
            d->cons_waits++;
            sched_yield();
        }
        if (r == 0) {
            break; /* the producer gave up */
        }
        if (r != 1) {
            d->bad_kind = 4;
        } else if (len != len_for(seq, THREAD_MAXLEN)) {
            d->bad_kind = 1;
        } else if (f < t->data + SUBITER__REC_HDR ||
                   len > (size_t)(t->data + t->size - f)) {
            d->bad_kind = 3;
        } else if (!intact(f, seq, len)) {
            d->bad_kind = 2;
        }
        if (d->bad_kind != 0) {
            d->bad_seq = seq;
            atomic_store(&d->quit, true);
            break;
        }
        h = fnv(h, f, len);
        subiter__ring_release(&t->cons, len);
    }
    d->received = seq;
    d->cons_sum = h;
    return NULL;
}

static void run_duo(uint32_t size, uint32_t start, uint32_t n)
{
    static struct duo d; /* one copy per test process */
    pthread_t pt, ct;

    memset(&d, 0, sizeof d);
    tring_open(&d.t, size, start, AT_END);
    d.n = n;
    d.bad_seq = UINT32_MAX;
    atomic_init(&d.quit, false);
    ck_assert_int_eq(pthread_create(&ct, NULL, consumer_main, &d), 0);
    ck_assert_int_eq(pthread_create(&pt, NULL, producer_main, &d), 0);
    ck_assert_int_eq(pthread_join(pt, NULL), 0);
    ck_assert_int_eq(pthread_join(ct, NULL), 0);
    ck_assert_int_eq(d.prod_err, 0);
    ck_assert_msg(d.bad_kind == 0, "record %u: failure kind %u", d.bad_seq,
                  d.bad_kind);
    ck_assert_uint_eq(d.received, n);
    ck_assert(d.prod_sum == d.cons_sum);
    ck_assert_uint_eq(d.t.prod.pos, d.t.cons.pos);
    ck_assert_uint_eq(head_of(&d.t), tail_of(&d.t));
    ck_assert(!subiter__ring_pending(&d.t.cons));
    tring_close(&d.t);
}

START_TEST(test_ring_two_threads)
{
    run_duo(4096, 0, THREAD_RECORDS);
}
END_TEST

START_TEST(test_ring_two_threads_small_ring_past_uint32_max)
{
    /* Smaller than two of the largest records: the sides take turns. */
    run_duo(512, UINT32_MAX - 4095u, THREAD_RECORDS / 4);
}
END_TEST

static Suite *ring_suite(void)
{
    Suite *s = suite_create("ring");
    TCase *tc = tcase_create("core");
    TCase *th = tcase_create("threads");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_ring_roundtrip_in_order_across_wraps);
    tcase_add_test(tc, test_ring_empty_frames);
    tcase_add_test(tc, test_ring_wraps_past_uint32_max);
    tcase_add_test(tc, test_ring_aligned_start_index);
    tcase_add_test(tc, test_ring_full_until_release);
    tcase_add_test(tc, test_ring_max_frame_fits_empty_ring);
    tcase_add_test(tc, test_ring_max_frame_mid_ring_pads_first);
    tcase_add_test(tc, test_ring_oversized_frame_is_emsgsize);
    tcase_add_test(tc, test_ring_hostile_tail_backwards);
    tcase_add_test(tc, test_ring_hostile_tail_too_far);
    tcase_add_test(tc, test_ring_hostile_length_past_tail);
    tcase_add_test(tc, test_ring_hostile_length_past_ring_end);
    tcase_add_test(tc, test_ring_hostile_unknown_kind);
    tcase_add_test(tc, test_ring_hostile_pad_past_tail);
    tcase_add_test(tc, test_ring_hostile_random_never_escapes);
    suite_add_tcase(s, tc);

    /* CI runs these under ThreadSanitizer too, hence the long timeout. */
    tcase_set_timeout(th, 120);
    tcase_add_test(th, test_ring_two_threads);
    tcase_add_test(th, test_ring_two_threads_small_ring_past_uint32_max);
    suite_add_tcase(s, th);
    return s;
}

int main(void)
{
    return tu_run(ring_suite());
}
