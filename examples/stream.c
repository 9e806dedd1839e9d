/* stream.c: streams checksummed records from a worker process and checks
 * them in the parent, then does the same work in-process for comparison.
 *
 * A record is item_bytes long:
 *
 *     offset 0   uint64  index (0, 1, 2, ...)
 *     offset 8   uint32  item_bytes
 *     offset 12  ...     pseudo-random payload
 *     last 4     uint32  CRC-32 of everything before it
 *
 * Integers are in host byte order. The worker's initializer builds the
 * CRC table and seeds the generator; the generator writes each record
 * straight into ring memory (subiter_reserve/subiter_commit); the parent
 * reads it in place (subiter_next) and verifies its index and checksum.
 *
 * Build it against an installed subiter with
 *     cc -O2 stream.c $(pkg-config --cflags --libs subiter)
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#else
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <subiter.h>

#define HEADER_BYTES 12
#define TRAILER_BYTES 4
#define MIN_ITEM_BYTES (HEADER_BYTES + TRAILER_BYTES)
#define MAX_ITEM_BYTES (1ul << 20)
#define MAX_RECORDS 1000000000ul
#define DEFAULT_RECORDS 200000ul
#define DEFAULT_ITEM_BYTES 256ul
#define SHOW_RECORDS 3
#define SEED 0x5eed5eed12345678ull

/* What the worker owns: filled in by the initializer, in the worker. */
struct producer {
    unsigned long records;
    size_t item_bytes;
    uint64_t seed;  /* input: the PRNG's seed */
    uint64_t state; /* xorshift64* state, set by producer_init() */
    uint32_t crc_table[256];
};

/* What the parent uses to check records. */
struct checker {
    uint64_t next_index;
    size_t item_bytes;
    uint32_t crc_table[256];
};

static void crc_table_build(uint32_t table[256])
{
    uint32_t c;
    int i, k;

    for (i = 0; i < 256; i++) {
        c = (uint32_t)i;
        for (k = 0; k < 8; k++) {
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        }
        table[i] = c;
    }
}

/* CRC-32 (IEEE 802.3), as zlib's crc32(0, p, n). */
static uint32_t crc32_of(const uint32_t table[256], const unsigned char *p,
                         size_t n)
{
    uint32_t c = 0xffffffffu;

    while (n--) {
        c = table[(c ^ *p++) & 0xff] ^ (c >> 8);
    }
    return c ^ 0xffffffffu;
}

static uint64_t next_random(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
}

static void producer_setup(struct producer *p)
{
    crc_table_build(p->crc_table);
    /* xorshift64* must not start at 0. */
    p->state = p->seed ? p->seed : 1;
}

/* Write record `index` into buf (p->item_bytes bytes, any alignment). */
static void make_record(struct producer *p, uint64_t index, unsigned char *buf)
{
    size_t n = p->item_bytes, off;
    uint32_t len32 = (uint32_t)n, crc;
    uint64_t x;

    memcpy(buf, &index, sizeof index);
    memcpy(buf + 8, &len32, sizeof len32);
    for (off = HEADER_BYTES; off + 8 <= n - TRAILER_BYTES; off += 8) {
        x = next_random(&p->state);
        memcpy(buf + off, &x, 8);
    }
    if (off < n - TRAILER_BYTES) {
        x = next_random(&p->state);
        memcpy(buf + off, &x, n - TRAILER_BYTES - off);
    }
    crc = crc32_of(p->crc_table, buf, n - TRAILER_BYTES);
    memcpy(buf + n - TRAILER_BYTES, &crc, sizeof crc);
}

/* The initializer: runs once in the worker, before the first iteration. */
static int producer_init(subiter_gen *g, void *arg)
{
    struct producer *p = arg;

    if (p->item_bytes < MIN_ITEM_BYTES) {
        return subiter_fail(g, "item size %zu is below %d bytes", p->item_bytes,
                            MIN_ITEM_BYTES);
    }
    producer_setup(p);
    return 0;
}

/* The generator: runs in the worker; each record is written in place. */
static int producer_run(subiter_gen *g, void *arg)
{
    struct producer *p = arg;
    unsigned long i;
    void *buf;
    int r;

    for (i = 0; i < p->records; i++) {
        /* SUBITER_STOPPED (the parent stopped us) or an error: return it. */
        if ((r = subiter_reserve(g, p->item_bytes, &buf)) != 0) {
            return r;
        }
        make_record(p, i, buf);
        if ((r = subiter_commit(g, p->item_bytes)) != 0) {
            return r;
        }
    }
    return 0;
}

/* 0 if the record is the next one and intact; otherwise prints why. */
static int check_record(struct checker *c, const void *data, size_t len)
{
    const unsigned char *b = data;
    uint64_t index;
    uint32_t len32, crc, want;

    if (len != c->item_bytes) {
        fprintf(stderr, "stream: record %llu: %zu bytes, expected %zu\n",
                (unsigned long long)c->next_index, len, c->item_bytes);
        return -1;
    }
    memcpy(&index, b, sizeof index);
    memcpy(&len32, b + 8, sizeof len32);
    memcpy(&crc, b + len - TRAILER_BYTES, sizeof crc);
    if (index != c->next_index) {
        fprintf(stderr,
                "stream: out of order: got record %llu, expected %llu\n",
                (unsigned long long)index, (unsigned long long)c->next_index);
        return -1;
    }
    if (len32 != len) {
        fprintf(stderr, "stream: record %llu: header says %lu bytes, got %zu\n",
                (unsigned long long)index, (unsigned long)len32, len);
        return -1;
    }
    want = crc32_of(c->crc_table, b, len - TRAILER_BYTES);
    if (crc != want) {
        fprintf(stderr, "stream: record %llu: checksum %08lx, computed %08lx\n",
                (unsigned long long)index, (unsigned long)crc,
                (unsigned long)want);
        return -1;
    }
    c->next_index++;
    return 0;
}

static void show_record(const void *data, size_t len)
{
    const unsigned char *b = data;
    uint64_t index;
    uint32_t crc;
    size_t i, shown = len - MIN_ITEM_BYTES < 8 ? len - MIN_ITEM_BYTES : 8;

    memcpy(&index, b, sizeof index);
    memcpy(&crc, b + len - TRAILER_BYTES, sizeof crc);
    printf("record %llu: %zu bytes, payload", (unsigned long long)index, len);
    for (i = 0; i < shown; i++) {
        printf(" %02x", b[HEADER_BYTES + i]);
    }
    printf("%s, crc32 %08lx\n", len - MIN_ITEM_BYTES > shown ? " ..." : "",
           (unsigned long)crc);
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void progress(unsigned long done, unsigned long total)
{
    fprintf(stderr, "\r%lu/%lu records (%lu%%)", done, total,
            (unsigned long)((double)done * 100.0 / (double)total));
}

/* consume() found a bad record (and said why). */
#define BAD_RECORD 1

/*
 * Pull and check every record of the running iteration; count them in *n.
 * Returns subiter_next()'s last result (0 at the end, < 0 on an error) or
 * BAD_RECORD.
 */
static int consume(subiter *it, struct checker *c, unsigned long records,
                   unsigned long *n)
{
    int tty = isatty(STDERR_FILENO), r;
    unsigned long step = records / 100 ? records / 100 : 1;
    double last = 0;
    subiter_item item;

    while ((r = subiter_next(it, &item)) > 0) {
        /* item.data points into the ring: read it in place, no copy. */
        if (check_record(c, item.data, item.len) != 0) {
            r = BAD_RECORD;
            break;
        }
        if (*n < SHOW_RECORDS) {
            show_record(item.data, item.len);
        }
        ++*n;
        if (tty && *n % step == 0 && now_s() - last > 0.1) {
            last = now_s();
            progress(*n, records);
        }
    }
    if (last > 0) {
        progress(*n, records);
        fputc('\n', stderr);
    }
    return r;
}

/* Print why a call failed, close the handle, and give the exit status. */
static int fail(subiter *it, const char *call, int r)
{
    const char *msg = subiter_errmsg(it);

    fprintf(stderr, "stream: %s: %s: %s\n", call, subiter_errname(r),
            *msg ? msg : subiter_strerror(r));
    subiter_close(it);
    return 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: stream [--records N] [--item-bytes N]\n"
            "\n"
            "Streams N checksummed records from a subiter worker process,\n"
            "verifies them, then does the same work in-process to compare.\n"
            "\n"
            "  --records N     records to stream, 1..%lu (default %lu)\n"
            "  --item-bytes N  bytes per record, %d..%lu (default %lu)\n"
            "  --help          show this help\n",
            MAX_RECORDS, DEFAULT_RECORDS, MIN_ITEM_BYTES, MAX_ITEM_BYTES,
            DEFAULT_ITEM_BYTES);
}

/* Parse a decimal number in [min, max]; 0 on success. */
static int parse_ulong(const char *opt, const char *s, unsigned long min,
                       unsigned long max, unsigned long *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (*s < '0' || *s > '9' || *end != '\0' || errno == ERANGE || v < min ||
        v > max) {
        fprintf(stderr, "stream: %s: '%s' is not a number from %lu to %lu\n",
                opt, s, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

/* The same work without a worker: make each record, then check it. */
static double run_in_process(struct producer *p, struct checker *c)
{
    unsigned char *buf = malloc(p->item_bytes);
    unsigned long i;
    double t0, t;

    if (!buf) {
        return -1;
    }
    producer_setup(p);
    c->next_index = 0;
    t0 = now_s();
    for (i = 0; i < p->records; i++) {
        make_record(p, i, buf);
        if (check_record(c, buf, p->item_bytes) != 0) {
            free(buf);
            return -1;
        }
    }
    t = now_s() - t0;
    free(buf);
    return t;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"records", required_argument, NULL, 'r'},
        {"item-bytes", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    static struct producer prod; /* static: its CRC table is 1 KiB */
    static struct checker check;
    subiter_opts opts = SUBITER_OPTS_INIT;
    unsigned long records = DEFAULT_RECORDS, item_bytes = DEFAULT_ITEM_BYTES;
    unsigned long n = 0;
    int opt, r;
    double t0, t, t_local, mb;
    subiter *it = NULL;
    pid_t pid;

    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'r':
            if (parse_ulong("--records", optarg, 1, MAX_RECORDS, &records)) {
                return 2;
            }
            break;
        case 'b':
            if (parse_ulong("--item-bytes", optarg, MIN_ITEM_BYTES,
                            MAX_ITEM_BYTES, &item_bytes)) {
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "stream: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }

    prod.records = records;
    prod.item_bytes = item_bytes;
    prod.seed = SEED;
    check.item_bytes = item_bytes;
    crc_table_build(check.crc_table);

    /* The ring must hold at least a few records (one always fits). */
    opts.init = producer_init;
    if (opts.buffer_bytes < 4 * item_bytes) {
        opts.buffer_bytes = 4 * item_bytes;
    }
    /* Fail instead of hanging if the worker stops sending. */
    opts.timeout_ms = 10000;

    printf("subiter %s: %lu records of %lu bytes from a worker process\n",
           subiter_version(), records, item_bytes);
    fflush(stdout);
    t0 = now_s();
    r = subiter_open(&it, producer_run, &prod, &opts);
    if (r != 0) {
        return fail(it, "subiter_open", r);
    }
    if ((r = subiter_start(it, NULL, 0)) != 0) {
        return fail(it, "subiter_start", r);
    }
    r = consume(it, &check, records, &n);
    t = now_s() - t0;
    if (r == BAD_RECORD) {
        subiter_close(it);
        return 1;
    }
    if (r != 0) {
        return fail(it, "subiter_next", r);
    }
    pid = subiter_pid(it);
    r = subiter_close(it);
    if (r != 0) {
        fprintf(stderr, "stream: close: %s\n", subiter_strerror(r));
        return 1;
    }
    if (n != records) {
        fprintf(stderr, "stream: got %lu records, expected %lu\n", n, records);
        return 1;
    }

    t_local = run_in_process(&prod, &check);
    if (t_local < 0) {
        fprintf(stderr, "stream: the in-process run failed\n");
        return 1;
    }

    mb = (double)n * (double)item_bytes / 1e6;
    printf("records:     %lu (order and checksums verified)\n", n);
    printf("bytes:       %.0f (%.1f MiB)\n", mb * 1e6, mb * 1e6 / 1048576.0);
    printf("seconds:     %.3f (open, stream, verify)\n", t);
    printf("records/s:   %.0f\n", (double)n / t);
    printf("MB/s:        %.1f\n", mb / t);
    printf("worker pid:  %ld\n", (long)pid);
    printf("in-process:  %.3f s, %.0f records/s (same work, one process)\n",
           t_local, (double)n / t_local);
    printf("ratio:       %.2fx the in-process records/s\n", t_local / t);
    return 0;
}
