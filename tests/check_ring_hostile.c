/* check_ring_hostile.c: a hostile producer writes the ring's shared
 * words and record headers: the consumer of lib/ring.c must say -EPROTO,
 * never read or write outside the ring, never loop. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "testring.h"

static void set_tail(struct tring *t, uint32_t v)
{
    atomic_store_explicit(&t->w.tail, v, memory_order_release);
}

/* Write a record header the way a producer would (or would not). */
static void put_hdr(struct tring *t, uint32_t off, uint32_t len, uint32_t kind)
{
    REQUIRE_LE(off + SUBITER__REC_HDR, t->size);
    atomic_store_explicit(subiter__ring_hdr_at(&t->prod, off),
                          subiter__ring_hdr_word(len, kind),
                          memory_order_release);
}

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
        tring_assert_in_ring(t, f, len);
    }
    return r;
}

/* peek says -EPROTO, twice, and has given nothing back to the producer. */
static void assert_eproto(struct tring *t, uint32_t head)
{
    ck_assert_int_eq(peek(t), -EPROTO);
    ck_assert_int_eq(peek(t), -EPROTO);
    ck_assert_uint_eq(tring_head(t), head);
}

/* The producer's index is not what the consumer reads (ring.h): a forged
 * one, behind, ahead or absurd, neither shows records nor hides them. */
/* One forged header where the consumer starts, at `at` of a 256-byte
 * ring: it counts as pending, and peek refuses it. */
static void refused(enum layout where, uint32_t at, uint32_t len, uint32_t kind)
{
    struct tring t;

    hostile_open(&t, at, where);
    put_hdr(&t, at, len, kind);
    ck_assert(subiter__ring_pending(&t.cons));
    assert_eproto(&t, at);
    tring_close(&t);
}

START_TEST(test_ring_hostile_tail_not_read)
{
    static const uint32_t forged[] = {1,   8,   16,          248,
                                      256, 257, 0x80000000u, 0xfffffff8u};
    struct tring t;
    uint32_t i, start;
    int where;

    for (where = AT_END; where <= AT_START; where++) {
        for (i = 0; i < sizeof forged / sizeof forged[0]; i++) {
            /* After one honest record, so head is not the start. */
            start = i % 2 ? 0 : UINT32_MAX - 15u;
            tring_open(&t, 256, start, (enum layout)where);
            ck_assert_int_eq(tring_produce(&t, 1, 3), 0);
            ck_assert_int_eq(tring_consume(&t, 1, 3), 1);
            set_tail(&t, tring_head(&t) + forged[i]);
            ck_assert(!subiter__ring_pending(&t.cons));
            ck_assert_int_eq(peek(&t), 0);
            set_tail(&t, tring_head(&t) - forged[i]);
            ck_assert_int_eq(peek(&t), 0);
            ck_assert_uint_eq(tring_head(&t), start + 16);
            /* The next honest record is found all the same. */
            set_tail(&t, t.prod.pos);
            ck_assert_int_eq(tring_produce(&t, 2, 40), 0);
            set_tail(&t, tring_head(&t) - forged[i]);
            ck_assert(subiter__ring_pending(&t.cons));
            ck_assert_int_eq(tring_consume(&t, 2, 40), 1);
            ck_assert_int_eq(peek(&t), 0);
            tring_close(&t);
        }
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
            /* 64 bytes before the end. */
            refused((enum layout)where, 256 - 64, lens[i], SUBITER__REC_FRAME);
        }
        /* Control: a frame that ends exactly at the end. */
        hostile_open(&t, 256 - 64, (enum layout)where);
        put_hdr(&t, 256 - 64, 56, SUBITER__REC_FRAME);
        ck_assert_int_eq(subiter__ring_peek(&t.cons, &f, &len), 1);
        ck_assert_uint_eq(len, 56);
        ck_assert_ptr_eq(f + len, t.data + 256);
        tring_close(&t);
    }
}
END_TEST

/* A record of a whole lap would be followed by its own header again: the
 * producer keeps a header free, so that is never a record. */
START_TEST(test_ring_hostile_record_of_a_lap)
{
    static const uint32_t lens[] = {241, 244, 248};
    struct tring t;
    uint32_t i;
    int where;

    for (where = AT_END; where <= AT_START; where++) {
        for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
            refused((enum layout)where, 0, lens[i], SUBITER__REC_FRAME);
        }
        /* Control: the largest frame the producer writes. */
        hostile_open(&t, 0, (enum layout)where);
        put_hdr(&t, 0, (uint32_t)subiter__ring_max_frame(&t.prod),
                SUBITER__REC_FRAME);
        ck_assert_int_eq(peek(&t), 1);
        tring_close(&t);
    }
}
END_TEST

START_TEST(test_ring_hostile_unknown_kind)
{
    static const uint32_t kinds[] = {3, 7, 0x100, 0x80000000u, UINT32_MAX};
    struct tring t;
    uint32_t i;
    int where;

    for (where = AT_END; where <= AT_START; where++) {
        for (i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
            refused((enum layout)where, 0, 0, kinds[i]);

            /* Behind a valid PAD too. */
            hostile_open(&t, 192, (enum layout)where);
            put_hdr(&t, 192, 0, SUBITER__REC_PAD);
            put_hdr(&t, 0, 8, kinds[i]);
            ck_assert_int_eq(peek(&t), -EPROTO);
            ck_assert_int_eq(peek(&t), -EPROTO);
            tring_close(&t);
        }
    }
}
END_TEST

/* A PAD fills the rest of a lap: never at its start (a record always fits
 * there, and the consumer would skip the lap and find the PAD again) and
 * never with a length. */
START_TEST(test_ring_hostile_bad_pad)
{
    static const uint32_t lens[] = {1, 8, 64, UINT32_MAX};
    struct tring t;
    uint32_t i;
    int where;

    for (where = AT_END; where <= AT_START; where++) {
        refused((enum layout)where, 0, 0, SUBITER__REC_PAD);

        /* A PAD to the end, then a PAD at the start. */
        hostile_open(&t, 192, (enum layout)where);
        put_hdr(&t, 192, 0, SUBITER__REC_PAD);
        put_hdr(&t, 0, 0, SUBITER__REC_PAD);
        ck_assert_int_eq(peek(&t), -EPROTO);
        ck_assert_int_eq(peek(&t), -EPROTO);
        ck_assert_uint_eq(tring_head(&t), 256);
        tring_close(&t);

        for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
            refused((enum layout)where, 192, lens[i], SUBITER__REC_PAD);
        }
        /* Control: skipped and released, then nothing at the start. */
        hostile_open(&t, 192, (enum layout)where);
        put_hdr(&t, 192, 0, SUBITER__REC_PAD);
        put_hdr(&t, 0, 0, SUBITER__REC_NONE);
        ck_assert_int_eq(peek(&t), 0);
        ck_assert_uint_eq(tring_head(&t), 256);
        tring_close(&t);
    }
}
END_TEST

/*
 * Random rings: random bytes, random headers at the consumer's position.
 * Whatever peek returns 1 for must lie inside the ring, and one peek moves
 * less than a lap; nothing may fault.
 */
START_TEST(test_ring_hostile_random_never_escapes)
{
    struct tring t;
    uint64_t s = 0x5eed;
    uint32_t trial, start, pos, len, i;
    const unsigned char *f;
    unsigned long seen[3] = {0, 0, 0}; /* -EPROTO, empty, records */
    int where, r, steps;

    for (where = AT_END; where <= AT_START; where++) {
        tring_open(&t, 256, 0, (enum layout)where);
        for (trial = 0; trial < 20000; trial++) {
            start = (uint32_t)tring_rnd(&s) & ~7u;
            if (trial % 4 == 0) {
                start = UINT32_MAX - 255u + ((uint32_t)tring_rnd(&s) & 0xf8u);
            }
            for (i = 0; i < t.size; i += 8) {
                uint64_t w = tring_rnd(&s);

                /* Headers that look plausible, now and then. */
                if ((w & 3u) != 0) {
                    put_hdr(&t, i, (uint32_t)(w >> 8) % ((w & 4u) ? 300u : 40u),
                            (w >> 40) % 8u == 0   ? 3u
                            : (w >> 43) % 8u == 0 ? SUBITER__REC_NONE
                            : (w >> 46) % 4u == 0 ? SUBITER__REC_PAD
                                                  : SUBITER__REC_FRAME);
                } else {
                    memcpy(t.data + i, &w, sizeof w);
                }
            }
            atomic_store_explicit(&t.w.head, start, memory_order_relaxed);
            subiter__ring_init(&t.cons, &t.w.head, &t.w.tail, t.data, t.size,
                               false);
            for (steps = 0; steps < 40; steps++) {
                pos = t.cons.pos;
                f = NULL;
                len = 0;
                r = subiter__ring_peek(&t.cons, &f, &len);
                seen[r == -EPROTO ? 0 : r == 0 ? 1 : 2]++;
                REQUIRE_LT(t.cons.pos - pos, t.size);
                if (r != 1) {
                    REQUIRE(r == 0 || r == -EPROTO);
                    REQUIRE_EQ(subiter__ring_pending(&t.cons), r != 0);
                    break;
                }
                tring_assert_in_ring(&t, f, len);
                REQUIRE_LT(tring_rec_len(len), t.size);
                subiter__ring_release(&t.cons, len);
                subiter__ring_publish(&t.cons);
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

static Suite *ring_hostile_suite(void)
{
    Suite *s = suite_create("ring_hostile");
    TCase *tc = tcase_create("hostile");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_ring_hostile_tail_not_read);
    tcase_add_test(tc, test_ring_hostile_length_past_ring_end);
    tcase_add_test(tc, test_ring_hostile_record_of_a_lap);
    tcase_add_test(tc, test_ring_hostile_unknown_kind);
    tcase_add_test(tc, test_ring_hostile_bad_pad);
    tcase_add_test(tc, test_ring_hostile_random_never_escapes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(ring_hostile_suite());
}
