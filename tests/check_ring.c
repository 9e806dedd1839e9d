/* check_ring.c: the record ring of lib/ring.c, driven directly in one
 * process: order and bytes across wraps, indices past UINT32_MAX, the byte
 * bound, and two threads at full speed. */
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
        if (produced < n && (tring_rnd(&s) & 1u)) {
            r = tring_produce(t, produced, tring_len_for(produced, maxlen));
            if (r == 0) {
                produced++;
                continue;
            }
            REQUIRE_EQ(r, -EAGAIN);
            /* Full means records are waiting, or at least the PAD. */
            REQUIRE(produced > consumed || tring_tail(t) != tring_head(t));
            full++;
        } else {
            r = tring_consume(t, consumed, tring_len_for(consumed, maxlen));
            if (r == 1) {
                consumed++;
                continue;
            }
            REQUIRE_EQ(r, 0);
            REQUIRE_EQ(produced, consumed);
            REQUIRE(!subiter__ring_pending(&t->cons));
            REQUIRE_EQ(tring_head(t), tring_tail(t));
            empty++;
        }
    }
    REQUIRE_EQ(tring_consume(t, n, 0), 0);
    REQUIRE_GT(empty, 0);
    return full;
}

START_TEST(test_ring_roundtrip_in_order_across_wraps)
{
    static const size_t maxlens[] = {0, 1, 40, 120, 240};
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
    ck_assert_int_eq(tring_consume(&t, 0, 0), 0);
    ck_assert(!subiter__ring_pending(&t.cons));
    /* 0-byte frames take one header each: seven fill a 64-byte ring,
     * which keeps the eighth free for the next header (ring.h). */
    for (i = 0; i < 7; i++) {
        ck_assert_int_eq(tring_produce(&t, i, 0), 0);
    }
    ck_assert_int_eq(tring_produce(&t, 7, 0), -EAGAIN);
    ck_assert(subiter__ring_pending(&t.cons));
    for (i = 0; i < 7; i++) {
        ck_assert_int_eq(tring_consume(&t, i, 0), 1);
    }
    ck_assert_int_eq(tring_consume(&t, 7, 0), 0);
    ck_assert_uint_eq(tring_head(&t), 56);
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
    for (i = 0; i < 31; i++) {
        ck_assert_int_eq(tring_produce(&t, i, 0), 0);
    }
    ck_assert_uint_eq(tring_tail(&t), 120u);
    ck_assert_uint_eq(tring_head(&t), UINT32_MAX - 127u);
    ck_assert_int_eq(tring_produce(&t, 31, 0), -EAGAIN);
    ck_assert_int_eq(tring_consume(&t, 0, 0), 1);
    ck_assert_int_eq(tring_produce(&t, 31, 0), 0);
    ck_assert_int_eq(tring_produce(&t, 32, 0), -EAGAIN);
    for (i = 1; i <= 31; i++) {
        ck_assert_int_eq(tring_consume(&t, i, 0), 1);
    }
    ck_assert_int_eq(tring_consume(&t, 32, 0), 0);
    ck_assert_uint_eq(tring_head(&t), 128u);
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

    /* 24-byte frames take 32 bytes: seven, and a 16-byte frame, fill the
     * ring but for the header it keeps free; from index 8, the next
     * record goes at the start. */
    tring_open(&t, 256, 8, AT_END);
    for (i = 0; i < 8; i++) {
        ck_assert_int_eq(tring_produce(&t, i, i < 7 ? 24 : 16), 0);
    }
    tail = tring_tail(&t);
    ck_assert_uint_eq(tail, 256);
    ck_assert_int_eq(tring_produce(&t, 8, 24), -EAGAIN);
    ck_assert_int_eq(tring_produce(&t, 8, 0), -EAGAIN);
    ck_assert_int_eq(tring_produce(&t, 8, 24), -EAGAIN);
    /* Nothing published by the refusals. */
    ck_assert_uint_eq(tring_tail(&t), tail);
    ck_assert_uint_eq(t.pads, 0);

    /* Peeking alone frees nothing; the release does. */
    {
        const unsigned char *f;
        uint32_t len;

        ck_assert_int_eq(subiter__ring_peek(&t.cons, &f, &len), 1);
        ck_assert_int_eq(tring_produce(&t, 8, 24), -EAGAIN);
        ck_assert_int_eq(subiter__ring_peek(&t.cons, &f, &len), 1);
        ck_assert_uint_eq(len, 24);
        ck_assert(tring_intact(f, 0, len));
        subiter__ring_release(&t.cons, len);
        subiter__ring_publish(&t.cons);
    }
    ck_assert_int_eq(tring_produce(&t, 8, 24), 0);
    ck_assert_int_eq(tring_produce(&t, 9, 0), -EAGAIN);
    for (i = 1; i <= 8; i++) {
        ck_assert_int_eq(tring_consume(&t, i, i == 7 ? 16 : 24), 1);
    }
    ck_assert_int_eq(tring_consume(&t, 9, 0), 0);
    tring_close(&t);

    /* Freeing 32 bytes lets a 24-byte frame in, not a 25-byte one. */
    tring_open(&t, 256, 8, AT_END);
    for (i = 0; i < 8; i++) {
        ck_assert_int_eq(tring_produce(&t, i, i < 7 ? 24 : 16), 0);
    }
    ck_assert_int_eq(tring_consume(&t, 0, 24), 1);
    ck_assert_int_eq(tring_produce(&t, 8, 25), -EAGAIN);
    ck_assert_int_eq(tring_produce(&t, 8, 24), 0);
    for (i = 1; i <= 8; i++) {
        ck_assert_int_eq(tring_consume(&t, i, i == 7 ? 16 : 24), 1);
    }
    ck_assert_uint_eq(t.pads, 0);
    tring_close(&t);

    /* A bigger ring fills up to its free header as well. */
    big = 1u << 16;
    tring_open(&t, (uint32_t)big, 0, AT_START);
    for (i = 0; tring_produce(&t, i, 120) == 0; i++) {
        continue;
    }
    ck_assert_uint_eq(i, big / 128 - 1);
    ck_assert_uint_eq(tring_tail(&t), big - 128);
    for (i = 0; i < big / 128 - 1; i++) {
        ck_assert_int_eq(tring_consume(&t, i, 120), 1);
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
        /* Its header, and the next one's room. */
        ck_assert_uint_eq(max, sizes[k] - 2 * SUBITER__REC_HDR);
        ck_assert_uint_eq(subiter__ring_max_frame(&t.cons), max);
        ck_assert_int_eq(tring_produce(&t, 1, max), 0);
        ck_assert_uint_eq(tring_tail(&t), sizes[k] - SUBITER__REC_HDR);
        ck_assert_int_eq(tring_produce(&t, 2, 0), -EAGAIN);
        ck_assert_int_eq(tring_consume(&t, 1, max), 1);
        /* Again: the last 8 bytes are padded, the frame waits for the
         * PAD to be read and goes at the start. */
        ck_assert_int_eq(tring_produce(&t, 2, max), -EAGAIN);
        ck_assert_uint_eq(t.pads, 1);
        ck_assert_int_eq(tring_consume(&t, 2, max), 0);
        ck_assert_int_eq(tring_produce(&t, 2, max), 0);
        ck_assert_int_eq(tring_consume(&t, 2, max), 1);
        ck_assert_uint_eq(t.pads, 1);
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
        ck_assert_int_eq(tring_produce(&t, 1, 5), 0);
        if (drained) {
            ck_assert_int_eq(tring_consume(&t, 1, 5), 1);
        } else {
            /* [0, 16) is held: the PAD [16, 256) and the header after it
             * do not fit yet, and nothing is published. */
            ck_assert_int_eq(tring_produce(&t, 2, max), -EAGAIN);
            ck_assert_uint_eq(t.pads, 0);
            ck_assert_uint_eq(tring_tail(&t), 16);
            ck_assert_int_eq(tring_consume(&t, 1, 5), 1);
            ck_assert_uint_eq(tring_head(&t), 16);
        }
        /* The PAD goes out at once; the record must wait for room. */
        ck_assert_int_eq(tring_produce(&t, 2, max), -EAGAIN);
        ck_assert_uint_eq(t.pads, 1);
        ck_assert_uint_eq(tring_tail(&t), 256);
        /* Asking again does not pad again. */
        ck_assert_int_eq(tring_produce(&t, 2, max), -EAGAIN);
        ck_assert_int_eq(tring_produce(&t, 2, max), -EAGAIN);
        ck_assert_uint_eq(t.pads, 1);
        ck_assert_uint_eq(tring_tail(&t), 256);
        /* The consumer skips the PAD and finds the ring empty. */
        ck_assert_int_eq(tring_consume(&t, 2, max), 0);
        ck_assert_uint_eq(tring_head(&t), 256);
        ck_assert_int_eq(tring_produce(&t, 2, max), 0);
        ck_assert_uint_eq(tring_tail(&t), 256 + 248);
        ck_assert_int_eq(tring_consume(&t, 2, max), 1);
        ck_assert_uint_eq(t.pads, 1);
        tring_close(&t);
    }

    /* No room for the PAD yet: nothing is published until there is. */
    tring_open(&t, 256, 0, AT_END);
    max = subiter__ring_max_frame(&t.prod);
    ck_assert_int_eq(tring_produce(&t, 1, 192), 0);
    ck_assert_int_eq(tring_produce(&t, 2, 40), 0);
    ck_assert_uint_eq(tring_tail(&t), 248);
    ck_assert_int_eq(tring_consume(&t, 1, 192), 1);
    ck_assert_int_eq(tring_produce(&t, 3, 0), 0);
    ck_assert_int_eq(tring_produce(&t, 4, 40), 0);
    /* [200, 304) is held: the PAD [304, 512) and the header after it
     * need 216 bytes, and only 152 are free. */
    ck_assert_int_eq(tring_produce(&t, 5, max), -EAGAIN);
    ck_assert_uint_eq(t.pads, 0);
    ck_assert_uint_eq(tring_tail(&t), 304);
    ck_assert_int_eq(tring_consume(&t, 2, 40), 1);
    ck_assert_int_eq(tring_consume(&t, 3, 0), 1);
    ck_assert_int_eq(tring_produce(&t, 5, max), -EAGAIN);
    ck_assert_uint_eq(t.pads, 0);
    ck_assert_int_eq(tring_consume(&t, 4, 40), 1);
    /* Now the PAD fits and goes out; the record still waits. */
    ck_assert_int_eq(tring_produce(&t, 5, max), -EAGAIN);
    ck_assert_uint_eq(t.pads, 1);
    ck_assert_uint_eq(tring_tail(&t), 512);
    ck_assert_int_eq(tring_produce(&t, 5, max), -EAGAIN);
    ck_assert_int_eq(tring_consume(&t, 5, max), 0);
    ck_assert_uint_eq(tring_head(&t), 512);
    ck_assert_int_eq(tring_produce(&t, 5, max), 0);
    ck_assert_int_eq(tring_consume(&t, 5, max), 1);
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
        ck_assert_int_eq(tring_produce(&t, 1, 0), 0);
        tail = tring_tail(&t);
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
        ck_assert_uint_eq(tring_tail(&t), tail);
        ck_assert_uint_eq(t.prod.pos, tail);
        ck_assert_int_eq(tring_consume(&t, 1, 0), 1);
        ck_assert_int_eq(tring_consume(&t, 2, 0), 0);
        tring_close(&t);
    }
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
        len = tring_len_for(seq, THREAD_MAXLEN);
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
        tring_fill(frame, seq, len);
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
        } else if (len != tring_len_for(seq, THREAD_MAXLEN)) {
            d->bad_kind = 1;
        } else if (f < t->data + SUBITER__REC_HDR ||
                   len > (size_t)(t->data + t->size - f)) {
            d->bad_kind = 3;
        } else if (!tring_intact(f, seq, len)) {
            d->bad_kind = 2;
        }
        if (d->bad_kind != 0) {
            d->bad_seq = seq;
            atomic_store(&d->quit, true);
            break;
        }
        h = fnv(h, f, len);
        subiter__ring_release(&t->cons, len);
        subiter__ring_publish(&t->cons);
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
    ck_assert_uint_eq(tring_head(&d.t), tring_tail(&d.t));
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
