/* check_wire.c: the wire contract of lib/wire.c. Every frame we write is one
 * message protobuf-c's own unpack reads back the same; the fast in-place
 * item reader agrees with protobuf-c on fuzzed input; the slow path says
 * -ENOMEM, not -EPROTO, when an allocation fails, and leaks nothing. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "subiter.pb-c.h"
#include "testutil.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}

static void rnd_bytes(uint64_t *s, unsigned char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        p[i] = (unsigned char)(rnd(s) >> 56);
    }
}

/* An exact-size copy, so that ASan sees any read past the frame. */
static unsigned char *dup_exact(const void *p, size_t n)
{
    unsigned char *q = malloc(n ? n : 1);

    ck_assert_ptr_nonnull(q);
    if (n > 0) {
        memcpy(q, p, n);
    }
    return q;
}

static const char *str_or_empty(const char *s)
{
    return s != NULL ? s : "";
}

/*
 * Leak accounting for the allocation-failure tests. In a plain glibc build
 * the test interposes malloc and free (glibc has no hooks any more) and
 * counts, between live_begin() and live_end(), the blocks allocated and not
 * freed. Under a sanitizer the sanitizer owns malloc: AddressSanitizer's
 * leak checker is asked instead, at the end of each test.
 */
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||     \
    __has_feature(memory_sanitizer) || __has_feature(hwaddress_sanitizer)
#define WIRE_SANITIZED 1
#endif
#if __has_feature(address_sanitizer)
#define WIRE_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define WIRE_SANITIZED 1
#define WIRE_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_HWADDRESS__)
#define WIRE_SANITIZED 1
#endif

#if defined(__GLIBC__) && !defined(WIRE_SANITIZED)

void *__libc_malloc(size_t n);
void __libc_free(void *p);

static bool counting;
static long live;

/* Everything stays glibc's memory: only the count is ours. */
void *malloc(size_t n)
{
    void *p = __libc_malloc(n);

    if (counting && p != NULL) {
        live++;
    }
    return p;
}

void free(void *p)
{
    if (counting && p != NULL) {
        live--;
    }
    __libc_free(p);
}

static void live_begin(void)
{
    live = 0;
    counting = true;
}

/* Blocks allocated since live_begin() and not freed. */
static long live_end(void)
{
    counting = false;
    return live;
}

/* Does the count see malloc? Not under valgrind, which replaces it. */
static bool live_works(void)
{
    void *volatile p;
    long n;

    live_begin();
    p = malloc(1);
    n = live_end();
    free(p);
    return n == 1;
}
#else

static void live_begin(void)
{
}

static long live_end(void)
{
    return 0;
}

static bool live_works(void)
{
    return false;
}
#endif

#ifdef WIRE_ASAN
#include <sanitizer/lsan_interface.h>

static void assert_no_leak(void)
{
    ck_assert_int_eq(__lsan_do_recoverable_leak_check(), 0);
}
#else
static void assert_no_leak(void)
{
}
#endif

/* ---- statuses and commands: our pack, protobuf-c's unpack ---- */

START_TEST(test_wire_status_roundtrip_every_code)
{
    static const uint64_t seqs[] = {
        0, 1, 127, 128, 1ull << 32, UINT64_MAX, 1234567, 1ull << 63};
    static const int errnums[] = {0, 1, EMSGSIZE, -1, INT32_MAX, INT32_MIN};
    char long_msg[3000];
    const char *msgs[6];
    struct subiter__status st;
    size_t size, n, m, e, k;
    unsigned char *buf;
    const char *msg;
    Status *s;
    int code;

    memset(long_msg, 'm', sizeof long_msg - 1);
    long_msg[sizeof long_msg - 1] = '\0';
    msgs[0] = NULL;
    msgs[1] = "";
    msgs[2] = "x";
    msgs[3] = "generator failed: caf\xc3\xa9 \xe2\x82\xac 100%s %d";
    msgs[4] = "line one\nline two\ttab";
    msgs[5] = long_msg;

    for (code = SUBITER__INIT_OK - 1; code <= SUBITER__UNEXPECTED; code++) {
        for (k = 0; k < NELEM(seqs); k++) {
            for (m = 0; m < NELEM(msgs); m++) {
                for (e = 0; e < NELEM(errnums); e++) {
                    msg = msgs[m];
                    size = subiter__wire_status_size(code, seqs[k], msg,
                                                     errnums[e]);
                    buf = malloc(size ? size : 1);
                    REQUIRE(buf != NULL);
                    n = subiter__wire_status_pack(code, seqs[k], msg,
                                                  errnums[e], buf);
                    REQUIRE_EQ(n, size);

                    s = status__unpack(NULL, n, buf);
                    REQUIRE(s != NULL);
                    REQUIRE_EQ(s->code, code);
                    REQUIRE_EQ(s->seq, seqs[k]);
                    REQUIRE_EQ(s->item.len, 0);
                    if (msg == NULL && errnums[e] == 0) {
                        REQUIRE(s->error == NULL);
                    } else {
                        REQUIRE(s->error != NULL);
                        REQUIRE(strcmp(str_or_empty(s->error->message),
                                       str_or_empty(msg)) == 0);
                        REQUIRE_EQ(s->error->errnum, errnums[e]);
                    }
                    status__free_unpacked(s, NULL);

                    REQUIRE_EQ(subiter__wire_status_decode(buf, n, &st), 0);
                    REQUIRE_EQ(st.code, code);
                    REQUIRE_EQ(st.seq, seqs[k]);
                    REQUIRE_EQ(st.item_len, 0);
                    REQUIRE(st.message != NULL);
                    REQUIRE(strcmp(st.message, str_or_empty(msg)) == 0);
                    REQUIRE_EQ(st.errnum, errnums[e]);
                    subiter__status_free(&st);
                    REQUIRE(st.owned == NULL);
                    free(buf);
                }
            }
        }
    }
}
END_TEST

START_TEST(test_wire_command_roundtrip)
{
    static const size_t input_lens[] = {0, 1, 2, 127, 128, 65536, 1u << 20};
    static const uint64_t seqs[] = {0, 1, 300, UINT64_MAX};
    static const int cmds[] = {SUBITER__CMD_START, SUBITER__CMD_STOP,
                               SUBITER__CMD_ABORT};
    struct subiter__command c;
    unsigned char *input, *buf;
    uint64_t rs = 0xc0ffee;
    size_t size, n, i, k, len;
    Command *m;
    int j;

    input = malloc(1u << 20);
    ck_assert_ptr_nonnull(input);
    rnd_bytes(&rs, input, 1u << 20);
    for (j = 0; j < (int)NELEM(cmds); j++) {
        for (i = 0; i < NELEM(input_lens); i++) {
            /* Only START carries an input; STOP and ABORT go without. */
            len = cmds[j] == SUBITER__CMD_START ? input_lens[i] : 0;
            for (k = 0; k < NELEM(seqs); k++) {
                size = subiter__wire_command_size(cmds[j], seqs[k], len);
                buf = malloc(size ? size : 1);
                REQUIRE(buf != NULL);
                n = subiter__wire_command_pack(cmds[j], seqs[k],
                                               len ? input : NULL, len, buf);
                REQUIRE_EQ(n, size);

                m = command__unpack(NULL, n, buf);
                REQUIRE(m != NULL);
                REQUIRE_EQ(m->cmd, cmds[j]);
                REQUIRE_EQ(m->seq, seqs[k]);
                REQUIRE_EQ(m->input.len, len);
                REQUIRE(len == 0 || memcmp(m->input.data, input, len) == 0);
                command__free_unpacked(m, NULL);

                REQUIRE_EQ(subiter__wire_command_decode(buf, n, &c), 0);
                REQUIRE_EQ(c.cmd, cmds[j]);
                REQUIRE_EQ(c.seq, seqs[k]);
                REQUIRE_EQ(c.input_len, len);
                REQUIRE(len == 0 || memcmp(c.input, input, len) == 0);
                subiter__command_free(&c);
                REQUIRE(c.owned == NULL);
                free(buf);
            }
        }
    }
    free(input);
}
END_TEST

/* ---- the fast item frame ---- */

/* Check one item frame of `len` random bytes both ways. */
static void check_item_frame(uint64_t *rs, size_t len)
{
    struct subiter__status st;
    unsigned char *frame;
    Status *s;

    frame = malloc(SUBITER__ITEM_PREFIX + len);
    REQUIRE(frame != NULL);
    subiter__wire_item_prefix(NULL, frame, len);
    rnd_bytes(rs, frame + SUBITER__ITEM_PREFIX, len);

    s = status__unpack(NULL, SUBITER__ITEM_PREFIX + len, frame);
    REQUIRE(s != NULL);
    REQUIRE_EQ(s->code, STATUS__CODE__ITERATOR_SUCCESS);
    REQUIRE_EQ(s->seq, 0);
    REQUIRE(s->error == NULL);
    REQUIRE_EQ(s->item.len, len);
    REQUIRE(len == 0 ||
            memcmp(s->item.data, frame + SUBITER__ITEM_PREFIX, len) == 0);
    status__free_unpacked(s, NULL);

    /* Viewed in place, without a single allocation. */
    subiter__alloc_fail_at(1);
    REQUIRE_EQ(
        subiter__wire_status_decode(frame, SUBITER__ITEM_PREFIX + len, &st), 0);
    REQUIRE_EQ(subiter__alloc_fail_at(0), 0);
    REQUIRE_EQ(st.code, SUBITER__ITEM);
    REQUIRE_EQ(st.seq, 0);
    REQUIRE(st.item == frame + SUBITER__ITEM_PREFIX);
    REQUIRE_EQ(st.item_len, len);
    REQUIRE(st.owned == NULL);
    REQUIRE(st.message != NULL && st.message[0] == '\0');
    REQUIRE_EQ(st.errnum, 0);
    subiter__status_free(&st);
    free(frame);
}

START_TEST(test_wire_item_frame_is_protobuf)
{
    static const size_t lens[] = {
        0,     1,     2,     127,     128,     129,      16383,   16384,
        16385, 65535, 65536, 2097151, 2097152, 1u << 20, 3000001, 8};
    uint64_t rs = 0x17e5;
    size_t i;

    for (i = 0; i < NELEM(lens); i++) {
        check_item_frame(&rs, lens[i]);
    }
    for (i = 0; i < 500; i++) {
        check_item_frame(&rs, (size_t)(rnd(&rs) % (i % 10 ? 300 : 200000)));
    }
}
END_TEST

/* The prefix's length is a 5-byte varint for any 32-bit length. */
START_TEST(test_wire_item_prefix_encodes_length)
{
    static const uint32_t lens[] = {
        0,          1,           127,
        128,        16383,       16384,
        2097151,    2097152,     (1u << 28) - 1,
        1u << 28,   0x7fffffffu, 0x80000000u,
        UINT32_MAX,
    };
    unsigned char p[SUBITER__ITEM_PREFIX];
    uint64_t v;
    size_t i;
    int b;

    for (i = 0; i < NELEM(lens); i++) {
        memset(p, 0xee, sizeof p);
        subiter__wire_item_prefix(NULL, p, lens[i]);
        ck_assert_uint_eq(p[0], 0x08); /* field 1, varint */
        ck_assert_uint_eq(p[1], STATUS__CODE__ITERATOR_SUCCESS);
        ck_assert_uint_eq(p[2], 0x1a); /* field 3, length-delimited */
        v = 0;
        for (b = 0; b < 5; b++) {
            v |= (uint64_t)(p[3 + b] & 0x7fu) << (7 * b);
            /* Continuation on the first four bytes only. */
            ck_assert_uint_eq(p[3 + b] >> 7, b < 4);
        }
        ck_assert_uint_eq(v, lens[i]);
    }
}
END_TEST

/* The last prefix kept for items of one size: the same bytes as one made
 * afresh, whatever the sizes before; a frame is an item for the cache
 * exactly when its prefix is its length's. */
START_TEST(test_wire_item_word_cache)
{
    static const uint32_t lens[] = {64,  64,  0,   0, 1,          64,
                                    127, 128, 128, 0, UINT32_MAX, 64};
    struct subiter__item_word made = {0, 0}, seen = {0, 0};
    unsigned char fresh[SUBITER__ITEM_PREFIX + 8], kept[sizeof fresh];
    size_t i;

    for (i = 0; i < NELEM(lens); i++) {
        subiter__wire_item_prefix(NULL, fresh, lens[i]);
        subiter__wire_item_prefix(&made, kept, lens[i]);
        ck_assert_mem_eq(fresh, kept, SUBITER__ITEM_PREFIX);
        ck_assert(subiter__wire_is_item(
            &seen, kept, SUBITER__ITEM_PREFIX + (size_t)lens[i]));
        /* One more or one less byte is not that item. */
        ck_assert(!subiter__wire_is_item(
            &seen, kept, SUBITER__ITEM_PREFIX + (size_t)lens[i] + 1));
        if (lens[i] > 0) {
            ck_assert(!subiter__wire_is_item(
                &seen, kept, SUBITER__ITEM_PREFIX + (size_t)lens[i] - 1));
        }
    }
}
END_TEST

/* ---- the fast path against protobuf-c on random and mutated bytes ---- */

#define FUZZ_CAP 600

/* A valid frame of some kind into out; returns its length. */
static size_t make_valid(uint64_t *rs, unsigned char *out)
{
    static const char *const msgs[] = {NULL, "", "boom", "a longer message"};
    unsigned char item[64];
    size_t n, len;
    uint64_t seq;
    int code;
    Status s;
    Error e;

    /* Each draw in its own statement: argument order is unspecified, and
     * the corpus must not depend on the compiler. */
    switch (rnd(rs) % 6) {
    case 0:
    case 1:
        len = (size_t)(rnd(rs) % 48);
        subiter__wire_item_prefix(NULL, out, len);
        rnd_bytes(rs, out + SUBITER__ITEM_PREFIX, len);
        return SUBITER__ITEM_PREFIX + len;
    case 2:
        code = (int)(rnd(rs) % 9);
        seq = rnd(rs) % 4 ? rnd(rs) % 1000 : rnd(rs);
        n = (size_t)(rnd(rs) % NELEM(msgs));
        return subiter__wire_status_pack(code, seq, msgs[n],
                                         (int)(rnd(rs) % 5) - 1, out);
    case 3:
        /* What a standard encoder writes for an item: minimal varints,
         * seq set, and an error too. */
        status__init(&s);
        s.code = (Status__Code)(rnd(rs) % 8);
        s.seq = rnd(rs) % 3 ? 0 : rnd(rs) % 100000;
        len = (size_t)(rnd(rs) % sizeof item);
        rnd_bytes(rs, item, len);
        s.item.data = item;
        s.item.len = len;
        if (rnd(rs) % 3 == 0) {
            error__init(&e);
            e.message = (char *)(uintptr_t) "err";
            e.errnum = (int32_t)(rnd(rs) % 200);
            s.error = &e;
        }
        return status__pack(&s, out);
    case 4:
        len = (size_t)(rnd(rs) % 40);
        rnd_bytes(rs, item, len);
        code = (int)(rnd(rs) % 4);
        return subiter__wire_command_pack(code, rnd(rs) % 10, item, len, out);
    default:
        /* Two messages back to back merge into one, per protobuf. */
        n = make_valid(rs, out);
        if (n > FUZZ_CAP / 2) {
            return n;
        }
        len = make_valid(rs, out + n);
        return n + len <= FUZZ_CAP / 2 ? n + len : n;
    }
}

static void mutate(uint64_t *rs, unsigned char *buf, size_t *len)
{
    size_t n = *len, at, ops = 1 + rnd(rs) % 3, i;

    for (i = 0; i < ops; i++) {
        at = n ? (size_t)(rnd(rs) % n) : 0;
        switch (rnd(rs) % 9) {
        case 0: /* bit flip */
            if (n) {
                buf[at] ^= (unsigned char)(1u << (rnd(rs) % 8));
            }
            break;
        case 1: /* truncation */
            n = n ? (size_t)(rnd(rs) % n) : 0;
            break;
        case 2: /* extension */
            at = 1 + rnd(rs) % 8;
            rnd_bytes(rs, buf + n, at);
            n += at;
            break;
        case 3: /* random byte */
            if (n) {
                buf[at] = (unsigned char)rnd(rs);
            }
            break;
        case 4: /* item length off by a little, or by a lot */
            if (n >= SUBITER__ITEM_PREFIX) {
                subiter__wire_item_prefix(NULL, buf,
                                          rnd(rs) % 4
                                              ? n - SUBITER__ITEM_PREFIX +
                                                    (size_t)(rnd(rs) % 5) - 2
                                              : (size_t)(uint32_t)rnd(rs));
            }
            break;
        case 5: /* one byte of the length varint rewritten */
            if (n >= SUBITER__ITEM_PREFIX) {
                at = 3 + rnd(rs) % 5;
                buf[at] = (unsigned char)(rnd(rs) % 4 == 0 ? rnd(rs)
                                          : rnd(rs) % 2    ? buf[at] ^ 0x80u
                                                           : 0x80u);
            }
            break;
        case 6: /* byte deleted */
            if (n) {
                memmove(buf + at, buf + at + 1, n - at - 1);
                n--;
            }
            break;
        case 7: /* byte inserted */
            memmove(buf + at + 1, buf + at, n - at);
            buf[at] = (unsigned char)rnd(rs);
            n++;
            break;
        default: /* a plausible tag */
            if (n) {
                static const unsigned char tags[] = {0x08, 0x10, 0x1a, 0x22,
                                                     0x0a, 0x12, 0x00, 0x0f};

                buf[at] = tags[rnd(rs) % NELEM(tags)];
            }
            break;
        }
    }
    *len = n;
}

/* Fuzz outcomes, to check each was reached. */
struct fuzz_counts {
    unsigned long fast;     /* accepted in place */
    unsigned long slow;     /* accepted through protobuf-c */
    unsigned long rejected; /* -EPROTO */
    unsigned long cmd_ok;
};

/* One input through both decoders of each message type. */
static void fuzz_one(const unsigned char *in, size_t len,
                     struct fuzz_counts *fc)
{
    unsigned char *buf = dup_exact(in, len);
    struct subiter__command c;
    struct subiter__status st;
    Command *cm;
    Status *s;
    int r;

    r = subiter__wire_status_decode(buf, len, &st);
    s = status__unpack(NULL, len, buf);
    REQUIRE(r == 0 || r == -EPROTO);
    /* Accepted by one exactly when accepted by the other. */
    REQUIRE((r == 0) == (s != NULL));
    if (r == 0 && st.owned == NULL) {
        fc->fast++;
        REQUIRE(st.item == buf + SUBITER__ITEM_PREFIX);
        REQUIRE_EQ(st.code, SUBITER__ITEM);
        REQUIRE_EQ(s->code, STATUS__CODE__ITERATOR_SUCCESS);
        REQUIRE_EQ(st.seq, 0);
        REQUIRE_EQ(s->seq, 0);
        REQUIRE(s->error == NULL);
        REQUIRE_EQ(st.message[0], '\0');
        REQUIRE_EQ(st.errnum, 0);
    } else if (r == 0) {
        fc->slow++;
        /* Codes past INT_MAX come out negative: same 32 bits. */
        REQUIRE_EQ((uint32_t)st.code, (uint32_t)s->code);
        REQUIRE_EQ(st.seq, s->seq);
        REQUIRE(st.message != NULL);
        REQUIRE(strcmp(st.message, s->error != NULL
                                       ? str_or_empty(s->error->message)
                                       : "") == 0);
        REQUIRE_EQ(st.errnum, s->error != NULL ? s->error->errnum : 0);
    } else {
        fc->rejected++;
    }
    if (r == 0) {
        REQUIRE_EQ(st.item_len, s->item.len);
        REQUIRE(st.item_len == 0 ||
                memcmp(st.item, s->item.data, st.item_len) == 0);
        subiter__status_free(&st);
        status__free_unpacked(s, NULL);
    }

    /* The command decoder is protobuf-c itself: the same verdicts. */
    r = subiter__wire_command_decode(buf, len, &c);
    cm = command__unpack(NULL, len, buf);
    REQUIRE(r == 0 || r == -EPROTO);
    REQUIRE((r == 0) == (cm != NULL));
    if (r == 0) {
        fc->cmd_ok++;
        REQUIRE_EQ((uint32_t)c.cmd, (uint32_t)cm->cmd);
        REQUIRE_EQ(c.seq, cm->seq);
        REQUIRE_EQ(c.input_len, cm->input.len);
        REQUIRE(c.input_len == 0 ||
                memcmp(c.input, cm->input.data, c.input_len) == 0);
        subiter__command_free(&c);
        command__free_unpacked(cm, NULL);
    }
    free(buf);
}

START_TEST(test_wire_fuzz_fast_path_matches_protobuf_c)
{
    unsigned char buf[FUZZ_CAP + 64];
    struct fuzz_counts fc = {0, 0, 0, 0};
    uint64_t rs = 0xf0221e;
    size_t len;
    unsigned i;

    for (i = 0; i < 100000; i++) {
        switch (i % 4) {
        case 0:
            /* Random bytes, half of them behind a fast prefix. */
            len = (size_t)(rnd(&rs) % 48);
            rnd_bytes(&rs, buf, len + SUBITER__ITEM_PREFIX);
            if (rnd(&rs) % 2) {
                subiter__wire_item_prefix(NULL, buf, (size_t)(rnd(&rs) % 50));
                len += SUBITER__ITEM_PREFIX;
            }
            break;
        case 1:
            /* Valid as made. */
            len = make_valid(&rs, buf);
            break;
        default:
            len = make_valid(&rs, buf);
            mutate(&rs, buf, &len);
            break;
        }
        REQUIRE(len <= sizeof buf);
        fuzz_one(buf, len, &fc);
    }
    ck_assert_uint_gt(fc.fast, 5000);
    ck_assert_uint_gt(fc.slow, 10000);
    ck_assert_uint_gt(fc.rejected, 10000);
    ck_assert_uint_gt(fc.cmd_ok, 10000);
    assert_no_leak();
}
END_TEST

START_TEST(test_wire_decode_rejects_garbage)
{
    static const struct {
        const char *what;
        unsigned char bytes[24];
        size_t len;
    } cases[] = {
        {"all ones",
         {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
          0xff, 0xff, 0xff, 0xff, 0xff},
         16},
        {"truncated varint", {0x08}, 1},
        {"truncated varint 2", {0x08, 0x80}, 2},
        {"wire type 7", {0x0f, 0x00}, 2},
        {"field 0", {0x00, 0x01}, 2},
        {"length past the end", {0x1a, 0x05, 0x01}, 3},
        {"item shorter than its prefix says",
         {0x08, 0x05, 0x1a, 0x8a, 0x80, 0x80, 0x80, 0x00, 1, 2, 3, 4, 5},
         13},
        {"prefix alone claiming bytes",
         {0x08, 0x05, 0x1a, 0x81, 0x80, 0x80, 0x80, 0x00},
         8},
        {"six-byte length varint",
         {0x08, 0x05, 0x1a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 1},
         10},
        {"length over 4 GiB",
         {0x08, 0x05, 0x1a, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2},
         10},
        {"error submessage truncated", {0x22, 0x03, 0x08}, 3},
        {"string past its submessage", {0x22, 0x02, 0x0a, 0x05, 'a', 'b'}, 6},
        {"eleven-byte varint",
         {0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
          0x01},
         12},
        {"group wire type", {0x0b, 0x0c}, 2},
    };
    struct subiter__status st;
    unsigned char *buf;
    Status *s;
    size_t i;

    for (i = 0; i < NELEM(cases); i++) {
        buf = dup_exact(cases[i].bytes, cases[i].len);
        s = status__unpack(NULL, cases[i].len, buf);
        ck_assert_msg(s == NULL, "protobuf-c accepts %s", cases[i].what);
        memset(&st, 0x5a, sizeof st);
        ck_assert_msg(subiter__wire_status_decode(buf, cases[i].len, &st) ==
                          -EPROTO,
                      "%s not rejected", cases[i].what);
        ck_assert_ptr_null(st.owned);
        subiter__status_free(&st);
        free(buf);
    }
}
END_TEST

/* ---- allocation failures on the slow paths ---- */

/*
 * Fail the 1st, 2nd, 3rd... allocation of one decode: each failure must be
 * -ENOMEM with nothing leaked, until n passes the number of allocations
 * the decode makes; that one must decode correctly. Returns that n.
 */
static unsigned long status_enomem_walk(const unsigned char *frame, size_t len,
                                        const Status *want)
{
    unsigned char *buf = dup_exact(frame, len);
    struct subiter__status st;
    unsigned long n, made;
    long leaked;
    int r;

    for (n = 1; n < 100; n++) {
        live_begin();
        subiter__alloc_fail_at(n);
        r = subiter__wire_status_decode(buf, len, &st);
        made = subiter__alloc_fail_at(0);
        leaked = live_end();
        if (r == 0) {
            break;
        }
        ck_assert_msg(r == -ENOMEM, "allocation %lu failed: %d", n, r);
        ck_assert_uint_ge(made, n);
        ck_assert_ptr_null(st.owned);
        ck_assert_msg(leaked == 0, "allocation %lu failed: %ld blocks leaked",
                      n, leaked);
    }
    ck_assert_uint_lt(n, 100);
    /* It made fewer allocations than the one set to fail. */
    ck_assert_uint_eq(made, n - 1);
    ck_assert_int_eq(st.code, want->code);
    ck_assert_uint_eq(st.seq, want->seq);
    ck_assert_uint_eq(st.item_len, want->item.len);
    if (want->item.len > 0) {
        ck_assert_mem_eq(st.item, want->item.data, want->item.len);
    }
    ck_assert_str_eq(st.message,
                     want->error ? str_or_empty(want->error->message) : "");
    ck_assert_int_eq(st.errnum, want->error ? want->error->errnum : 0);
    ck_assert_ptr_nonnull(st.owned);
    /* What the decode kept, the free gives back: all of it. */
    if (live_works()) {
        ck_assert_int_gt(leaked, 0);
    }
    live_begin();
    subiter__status_free(&st);
    ck_assert_int_eq(live_end(), -leaked);
    ck_assert_ptr_null(st.owned);
    free(buf);
    return n;
}

START_TEST(test_wire_decode_enomem)
{
    unsigned char frame[256], item[100];
    Status want;
    Error err;
    size_t len, i;

    /* A failure report: the frame copy, Status, Error, the message. */
    status__init(&want);
    error__init(&err);
    want.code = STATUS__CODE__INITIALIZATION_FAILED;
    want.seq = 7;
    err.message = (char *)(uintptr_t) "the initializer went wrong";
    err.errnum = EIO;
    want.error = &err;
    len = subiter__wire_status_pack(want.code, want.seq, err.message,
                                    err.errnum, frame);
    ck_assert_uint_ge(status_enomem_walk(frame, len, &want), 4);

    /* An item as a standard encoder writes it (not the fast form). */
    for (i = 0; i < sizeof item; i++) {
        item[i] = (unsigned char)(i * 7);
    }
    status__init(&want);
    want.code = STATUS__CODE__ITERATOR_SUCCESS;
    want.seq = 3;
    want.item.data = item;
    want.item.len = sizeof item;
    len = status__pack(&want, frame);
    ck_assert_uint_ge(status_enomem_walk(frame, len, &want), 3);

    /* A status with nothing to allocate but the frame copy and Status. */
    status__init(&want);
    want.code = STATUS__CODE__ITERATION_FINISHED;
    want.seq = 1;
    len = subiter__wire_status_pack(want.code, want.seq, NULL, 0, frame);
    ck_assert_uint_ge(status_enomem_walk(frame, len, &want), 2);
    assert_no_leak();
}
END_TEST

START_TEST(test_wire_command_decode_enomem)
{
    unsigned char frame[256], input[100];
    struct subiter__command c;
    unsigned long n, made;
    long leaked;
    size_t len;
    int r;

    memset(input, 0x3c, sizeof input);
    len = subiter__wire_command_pack(SUBITER__CMD_START, 9, input, sizeof input,
                                     frame);
    for (n = 1; n < 100; n++) {
        live_begin();
        subiter__alloc_fail_at(n);
        r = subiter__wire_command_decode(frame, len, &c);
        made = subiter__alloc_fail_at(0);
        leaked = live_end();
        if (r == 0) {
            break;
        }
        ck_assert_msg(r == -ENOMEM, "allocation %lu failed: %d", n, r);
        ck_assert_uint_ge(made, n);
        ck_assert_ptr_null(c.owned);
        ck_assert_msg(leaked == 0, "allocation %lu failed: %ld blocks leaked",
                      n, leaked);
    }
    ck_assert_uint_ge(n, 3); /* Command and its input at least */
    ck_assert_uint_eq(made, n - 1);
    ck_assert_int_eq(c.cmd, SUBITER__CMD_START);
    ck_assert_uint_eq(c.seq, 9);
    ck_assert_uint_eq(c.input_len, sizeof input);
    ck_assert_mem_eq(c.input, input, sizeof input);
    if (live_works()) {
        ck_assert_int_gt(leaked, 0);
    }
    live_begin();
    subiter__command_free(&c);
    ck_assert_int_eq(live_end(), -leaked);
    ck_assert_ptr_null(c.owned);
    assert_no_leak();
}
END_TEST

static Suite *wire_suite(void)
{
    Suite *s = suite_create("wire");
    TCase *tc = tcase_create("core");

    /* Generous for valgrind: the fuzz case runs 100 000 inputs. */
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_wire_status_roundtrip_every_code);
    tcase_add_test(tc, test_wire_command_roundtrip);
    tcase_add_test(tc, test_wire_item_frame_is_protobuf);
    tcase_add_test(tc, test_wire_item_prefix_encodes_length);
    tcase_add_test(tc, test_wire_item_word_cache);
    tcase_add_test(tc, test_wire_fuzz_fast_path_matches_protobuf_c);
    tcase_add_test(tc, test_wire_decode_rejects_garbage);
    tcase_add_test(tc, test_wire_decode_enomem);
    tcase_add_test(tc, test_wire_command_decode_enomem);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(wire_suite());
}
