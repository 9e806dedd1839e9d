/* check_ring_hostile.c: a hostile producer writes the ring's shared
 * words and record headers: the consumer of lib/ring.c must say -EPROTO,
 * never read or write outside the ring. */
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
    uint32_t h[2] = {len, kind};

    REQUIRE_LE(off + sizeof h, t->size);
    memcpy(t->data + off, h, sizeof h);
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
            ck_assert_int_eq(tring_produce(&t, 1, 3), 0);
            ck_assert_int_eq(tring_consume(&t, 1, 3), 1);
            ck_assert_int_eq(peek(&t), 0);
            set_tail(&t, tring_head(&t) - back[i]);
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
        ck_assert_uint_eq(tring_head(&t), 256);
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
            start = (uint32_t)tring_rnd(&s) & ~7u;
            if (trial % 4 == 0) {
                start = UINT32_MAX - 255u + ((uint32_t)tring_rnd(&s) & 0xf8u);
            }
            for (i = 0; i < t.size; i += 8) {
                uint64_t w = tring_rnd(&s);

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
            switch (tring_rnd(&s) % 4) {
            case 0:
                tail = start + (uint32_t)tring_rnd(&s);
                break;
            case 1:
                tail = start + (uint32_t)(tring_rnd(&s) % 300u);
                break;
            default:
                tail = start + ((uint32_t)(tring_rnd(&s) % 260u) & ~7u);
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
                tring_assert_in_ring(&t, f, len);
                /* Inside what was published, past any skipped PAD. */
                REQUIRE_LE(t.cons.pos - start, tail - start);
                REQUIRE_LE(t.cons.pos - pos, tail - pos);
                REQUIRE_LE(tring_rec_len(len), tail - t.cons.pos);
                subiter__ring_release(&t.cons, len);
                subiter__ring_publish(&t.cons);
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

static Suite *ring_hostile_suite(void)
{
    Suite *s = suite_create("ring_hostile");
    TCase *tc = tcase_create("hostile");

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_ring_hostile_tail_backwards);
    tcase_add_test(tc, test_ring_hostile_tail_too_far);
    tcase_add_test(tc, test_ring_hostile_length_past_tail);
    tcase_add_test(tc, test_ring_hostile_length_past_ring_end);
    tcase_add_test(tc, test_ring_hostile_unknown_kind);
    tcase_add_test(tc, test_ring_hostile_pad_past_tail);
    tcase_add_test(tc, test_ring_hostile_random_never_escapes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(ring_hostile_suite());
}
