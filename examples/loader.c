/* loader.c: a small data-loading pipeline. A pool of worker processes
 * (subiter_pool) reads record files, verifies and transforms every record,
 * and streams the results to the parent, which checks them; then the same
 * work is done in-process for comparison.
 *
 * The dataset is a directory of shard files, generated on the first run
 * (and again whenever the requested dataset differs from the one there):
 *
 *     manifest.txt      records, item bytes, shards; written last
 *     shard-000.rec     file header, then records first .. first+count-1
 *     shard-001.rec     ...
 *
 * A shard file (integers in host byte order):
 *
 *     file header, 32 bytes:
 *         offset 0   uint32  magic "SHRD"
 *         offset 4   uint32  version (1)
 *         offset 8   uint32  shard number
 *         offset 12  uint32  payload bytes of every record
 *         offset 16  uint64  index of its first record
 *         offset 24  uint64  number of records
 *     then each record, a 24-byte header and its payload:
 *         offset 0   uint32  magic "REC1"
 *         offset 4   uint32  payload length
 *         offset 8   uint64  record index
 *         offset 16  uint32  shard number
 *         offset 20  uint32  CRC-32 of the payload
 *         offset 24  ...     payload (pseudo-random bytes)
 *
 * The pool has one worker per CPU (or --workers). subiter_pool_start()
 * gives every worker the same input, the list of shards to read, and each
 * takes its share: entries k, k + N, k + 2N, ... where k is
 * subiter_worker_id() and N subiter_num_workers(). A worker reads each
 * file 1 MiB at a time, checks every header and CRC, computes features of
 * the payload (mean, variance, a 16-bin histogram), and writes one result
 * per record straight into ring memory (subiter_reserve/subiter_commit):
 * a fixed struct, then the payload itself unless --no-payload. After the
 * last record of a shard it sends an end-of-shard result with the count.
 * A bad file makes the generator send a shard-failed result and fail with
 * a message naming the file (subiter_fail): the pool stops the other
 * workers and subiter_pool_next() returns SUBITER_EITER, with the worker
 * and that message in subiter_pool_errmsg(). The parent prints it and
 * starts the pool again on the shards left, so the other shards still
 * finish. A worker that dies (kill -9 one) is replaced, and its
 * replacement reads its shards again, skipping the results already
 * delivered (restart_shards): the run goes on as if nothing happened.
 *
 * The parent takes the results from subiter_pool_next(): round robin over
 * the workers, the same order every run, or with --unordered from
 * whichever worker has one first. It checks the order and count of each
 * shard, the byte sum of every payload and, for one record in 16, its
 * CRC-32 again.
 *
 *     ./loader                         generate (once), load, compare
 *     ./loader --workers 4 --records 1000000 --item-bytes 256
 *     ./loader --corrupt               cut one shard short: exit status 1
 *
 * Exit status: 0 when every shard was read and checked, 1 when any failed
 * (or the dataset could not be made), 2 on bad arguments.
 *
 * Build it against an installed subiter with
 *     cc -O2 loader.c $(pkg-config --cflags --libs subiter)
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#else
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <subiter.h>

#define FILE_MAGIC 0x44524853u /* "SHRD" in little-endian byte order */
#define FILE_VERSION 1u
#define FILE_HEADER_BYTES 32u
#define REC_MAGIC 0x31434552u /* "REC1" */
#define REC_HEADER_BYTES 24u
#define MANIFEST "manifest.txt"
#define MANIFEST_FORMAT "subiter-loader dataset 1"

#define READ_BYTES ((size_t)1 << 20)
#define DIR_MAX 3000 /* leaves room for the file name in error messages */
#define PATH_BYTES (DIR_MAX + 64)
#define ERR_BYTES (PATH_BYTES + 512)
#define HIST_BINS 16
#define CRC_SAMPLE 16 /* the parent re-checks the CRC of 1 record in 16 */

#define DEFAULT_RECORDS 200000ul
#define DEFAULT_ITEM_BYTES 1024ul
#define DEFAULT_SHARDS 8ul /* or --workers, if larger */
#define MAX_RECORDS 100000000ul
#define MAX_ITEM_BYTES (1ul << 20)
#define MAX_WORKERS 256ul
#define MAX_SHARDS 1000ul
#define MAX_DATASET_BYTES ((uint64_t)64 << 30)
#define SEED 0x5eed5eed12345678ull

/* The dataset, as the manifest describes it. */
struct dataset {
    char dir[DIR_MAX + 1];
    unsigned long records;
    unsigned long item_bytes;
    unsigned long shards;
    long corrupt; /* the shard --corrupt cut short, or -1 */
};

/* What a worker uses to read shards; the initializer sets up buf. */
struct reader {
    const struct dataset *ds;
    int carry;             /* 1: results carry the payload */
    unsigned char *buf;    /* the read buffer: unread bytes in [lo, hi) */
    size_t cap, lo, hi;    /* capacity, start and end of the unread data */
    unsigned long long at; /* file offset of buf[lo] */
    uint32_t crc_table[256];
};

/* RESULT_SHARD_FAILED: the shard is bad, the generator fails next. */
enum { RESULT_RECORD = 1, RESULT_SHARD_END = 2, RESULT_SHARD_FAILED = 3 };

/* One result, followed in the item by payload_len bytes of payload. */
struct result {
    uint32_t kind;         /* RESULT_RECORD, _SHARD_END or _FAILED */
    uint32_t shard;        /* the shard it comes from */
    uint64_t index;        /* record: its index; end: records in the shard */
    uint64_t byte_sum;     /* sum of the payload's bytes (end: the shard's) */
    uint32_t crc;          /* record: CRC-32 of the payload, verified */
    uint32_t payload_len;  /* bytes of payload after the struct (or 0) */
    float mean;            /* mean of the payload bytes / 255 */
    float variance;        /* their variance / 255^2 */
    float hist[HIST_BINS]; /* fraction of the bytes in each 16-value bin */
};

_Static_assert(sizeof(struct result) == 104, "struct result has no padding");

/*
 * Where read_shard() puts its results: the ring (in a worker) or a local
 * buffer checked at once (in-process). reserve() gives room for len bytes
 * (0, SUBITER_STOPPED or < 0); commit() publishes them (0 or < 0 with a
 * message in err).
 */
struct sink {
    int (*reserve)(void *ctx, size_t len, void **buf);
    int (*commit)(void *ctx, size_t len, char *err, size_t errlen);
    void *ctx;
};

/* SHARD_LOST: the pool could not finish it (workers kept failing). */
enum { SHARD_PENDING = 0, SHARD_OK = 1, SHARD_FAILED = 2, SHARD_LOST = 3 };

/* What the parent knows of one shard while it checks its results. */
struct shard_state {
    unsigned long first, expected;  /* from the manifest */
    unsigned long got, crc_checked; /* records checked so far, CRCs again */
    uint64_t byte_sum;              /* their byte sum */
    double mean_sum, var_sum, hist_sum[HIST_BINS]; /* their features */
    int status;                                    /* SHARD_PENDING, ... */
};

/* The parent's checks for one run over the dataset. */
struct collector {
    const struct dataset *ds;
    int carry;
    struct shard_state *st;
    unsigned long records; /* checked so far, in every shard */
    uint32_t crc_table[256];
};

static int progress_shown;

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

static uint64_t byte_sum_of(const unsigned char *p, size_t n)
{
    uint64_t sum = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        sum += p[i];
    }
    return sum;
}

/* CPU time (user + system) of RUSAGE_SELF or RUSAGE_CHILDREN. */
static double cpu_s(int who)
{
    struct rusage ru;

    if (getrusage(who, &ru) != 0) {
        return 0;
    }
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void say(const char *fmt, ...) SUBITER_PRINTF(1, 2);

/* Print a message on stderr, on a line of its own after a progress line. */
static void say(const char *fmt, ...)
{
    va_list ap;

    if (progress_shown) {
        fputs("\r\033[K", stderr);
        progress_shown = 0;
    }
    fputs("loader: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ------------------------------------------------------------ the dataset */

static unsigned long shard_first(const struct dataset *ds, unsigned long s)
{
    return (unsigned long)((uint64_t)s * ds->records / ds->shards);
}

static unsigned long shard_count(const struct dataset *ds, unsigned long s)
{
    return shard_first(ds, s + 1) - shard_first(ds, s);
}

static uint64_t record_bytes(const struct dataset *ds)
{
    return REC_HEADER_BYTES + (uint64_t)ds->item_bytes;
}

/* Its file's path (the length of dir is checked by main()). */
static void shard_path(const struct dataset *ds, unsigned long s, char *path,
                       size_t size)
{
    snprintf(path, size, "%s/shard-%03lu.rec", ds->dir, s);
}

/* Create dir and its parents, as mkdir -p; 0, or -1 after a message. */
static int make_dirs(const char *dir)
{
    char path[DIR_MAX + 1];
    struct stat sb;
    size_t i;

    snprintf(path, sizeof path, "%s", dir);
    for (i = 1; path[i] != '\0'; i++) {
        if (path[i] == '/') {
            path[i] = '\0';
            if (mkdir(path, 0777) != 0 && errno != EEXIST) {
                say("%s: cannot create directory: %s", path, strerror(errno));
                return -1;
            }
            path[i] = '/';
        }
    }
    if (mkdir(path, 0777) != 0 && errno != EEXIST) {
        say("%s: cannot create directory: %s", path, strerror(errno));
        return -1;
    }
    if (stat(path, &sb) != 0) {
        say("%s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(sb.st_mode)) {
        say("%s: not a directory", path);
        return -1;
    }
    return 0;
}

/* Read dir/manifest.txt into *ds (dir set); 1 if it is there and valid. */
static int manifest_read(struct dataset *ds)
{
    char path[PATH_BYTES];
    FILE *f;
    int n;

    snprintf(path, sizeof path, "%s/%s", ds->dir, MANIFEST);
    if ((f = fopen(path, "r")) == NULL) {
        return 0;
    }
    n = fscanf(
        f, MANIFEST_FORMAT " records %lu item_bytes %lu shards %lu corrupt %ld",
        &ds->records, &ds->item_bytes, &ds->shards, &ds->corrupt);
    fclose(f);
    return n == 4 && ds->records >= 1 && ds->records <= MAX_RECORDS &&
           ds->item_bytes >= 1 && ds->item_bytes <= MAX_ITEM_BYTES &&
           ds->shards >= 1 && ds->shards <= MAX_SHARDS && ds->corrupt >= -1 &&
           ds->corrupt < (long)ds->shards;
}

/* Write the manifest (atomically, by rename); 0 or -1 after a message. */
static int manifest_write(const struct dataset *ds)
{
    char path[PATH_BYTES], tmp[PATH_BYTES + 8];
    FILE *f;
    int bad;

    snprintf(path, sizeof path, "%s/%s", ds->dir, MANIFEST);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if ((f = fopen(tmp, "w")) == NULL) {
        say("%s: %s", tmp, strerror(errno));
        return -1;
    }
    fprintf(f,
            MANIFEST_FORMAT "\nrecords %lu\nitem_bytes %lu\nshards %lu\n"
                            "corrupt %ld\n",
            ds->records, ds->item_bytes, ds->shards, ds->corrupt);
    bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        say("%s: write failed: %s", tmp, strerror(errno));
        return -1;
    }
    if (rename(tmp, path) != 0) {
        say("%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Remove the manifest: from now on the dataset is incomplete. */
static int manifest_remove(const struct dataset *ds)
{
    char path[PATH_BYTES];

    snprintf(path, sizeof path, "%s/%s", ds->dir, MANIFEST);
    if (unlink(path) != 0 && errno != ENOENT) {
        say("%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    ssize_t w;

    while (n > 0) {
        w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0) {
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Write shard s: 0, or -1 after a message naming the file. */
static int shard_generate(const struct dataset *ds, unsigned long s,
                          const uint32_t crc_table[256], unsigned char *buf,
                          size_t cap)
{
    char path[PATH_BYTES];
    uint64_t state, index, first = shard_first(ds, s), x;
    uint64_t count = shard_count(ds, s);
    uint32_t u32, crc;
    size_t n = 0, off, rec = (size_t)record_bytes(ds);
    unsigned char *p;
    int fd;

    shard_path(ds, s, path, sizeof path);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        say("%s: %s", path, strerror(errno));
        return -1;
    }
    u32 = FILE_MAGIC;
    memcpy(buf, &u32, 4);
    u32 = FILE_VERSION;
    memcpy(buf + 4, &u32, 4);
    u32 = (uint32_t)s;
    memcpy(buf + 8, &u32, 4);
    u32 = (uint32_t)ds->item_bytes;
    memcpy(buf + 12, &u32, 4);
    memcpy(buf + 16, &first, 8);
    memcpy(buf + 24, &count, 8);
    n = FILE_HEADER_BYTES;
    /* Each shard has its own stream, so any shard can be made again. */
    state = SEED ^ ((uint64_t)(s + 1) * 0x9e3779b97f4a7c15ull);
    state = state ? state : 1;
    for (index = first; index < first + count; index++) {
        if (cap - n < rec) {
            if (write_all(fd, buf, n) != 0) {
                goto fail;
            }
            n = 0;
        }
        p = buf + n;
        for (off = 0; off + 8 <= ds->item_bytes; off += 8) {
            x = next_random(&state);
            memcpy(p + REC_HEADER_BYTES + off, &x, 8);
        }
        if (off < ds->item_bytes) {
            x = next_random(&state);
            memcpy(p + REC_HEADER_BYTES + off, &x, ds->item_bytes - off);
        }
        crc = crc32_of(crc_table, p + REC_HEADER_BYTES, ds->item_bytes);
        u32 = REC_MAGIC;
        memcpy(p, &u32, 4);
        u32 = (uint32_t)ds->item_bytes;
        memcpy(p + 4, &u32, 4);
        memcpy(p + 8, &index, 8);
        u32 = (uint32_t)s;
        memcpy(p + 16, &u32, 4);
        memcpy(p + 20, &crc, 4);
        n += rec;
    }
    if (write_all(fd, buf, n) != 0) {
        goto fail;
    }
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    return 0;
fail:
    say("%s: write failed: %s", path, strerror(errno));
    if (fd >= 0) {
        close(fd);
    }
    return -1;
}

/* Generate shards [from, to) of ds; 0 or -1 after a message. */
static int shards_generate(const struct dataset *ds, unsigned long from,
                           unsigned long to)
{
    static uint32_t crc_table[256];
    size_t cap = READ_BYTES + (size_t)record_bytes(ds);
    unsigned char *buf = malloc(cap);
    int tty = isatty(STDERR_FILENO);
    unsigned long s;

    if (buf == NULL) {
        say("no memory for a %zu-byte write buffer", cap);
        return -1;
    }
    crc_table_build(crc_table);
    for (s = from; s < to; s++) {
        if (tty) {
            fprintf(stderr, "\rgenerating: %lu/%lu shards", s - from,
                    to - from);
            progress_shown = 1;
        }
        if (shard_generate(ds, s, crc_table, buf, cap) != 0) {
            free(buf);
            return -1;
        }
    }
    if (progress_shown) {
        fputs("\r\033[K", stderr);
        progress_shown = 0;
    }
    free(buf);
    return 0;
}

/* Remove shard files [from, to) left by an earlier, larger dataset. */
static void shards_remove(const struct dataset *ds, unsigned long from,
                          unsigned long to)
{
    char path[PATH_BYTES];
    unsigned long s;

    for (s = from; s < to && s < MAX_SHARDS; s++) {
        shard_path(ds, s, path, sizeof path);
        (void)unlink(path);
    }
}

/*
 * Cut shard s short, in the middle of its middle record (or of its file
 * header if it has none): the reader must report a truncated record.
 */
static int shard_corrupt(const struct dataset *ds, unsigned long s)
{
    char path[PATH_BYTES];
    unsigned long count = shard_count(ds, s);
    uint64_t size = FILE_HEADER_BYTES / 2;

    shard_path(ds, s, path, sizeof path);
    if (count > 0) {
        size = FILE_HEADER_BYTES + count / 2 * record_bytes(ds) +
               record_bytes(ds) / 2;
    }
    if (truncate(path, (off_t)size) != 0) {
        say("%s: cannot truncate: %s", path, strerror(errno));
        return -1;
    }
    printf("corrupted:   %s cut to %llu bytes", path, (unsigned long long)size);
    if (count > 0) {
        printf(", in the middle of record %lu\n",
               shard_first(ds, s) + count / 2);
    } else {
        printf(", in its file header\n");
    }
    return 0;
}

/*
 * Make sure dir holds the dataset `want`: reuse what is there when it
 * matches, repair or cut the one shard --corrupt concerns, or generate it
 * all. shards_given: whether want->shards must match too. 0, or -1 after a
 * message.
 */
static int dataset_prepare(struct dataset *want, int shards_given,
                           int regenerate)
{
    struct dataset have = *want;
    int same, cut = want->corrupt >= 0;
    uint64_t bytes;
    double t0;

    if (make_dirs(want->dir) != 0) {
        return -1;
    }
    same = manifest_read(&have) && !regenerate &&
           have.records == want->records &&
           have.item_bytes == want->item_bytes &&
           (!shards_given || have.shards == want->shards);
    if (same) {
        want->shards = have.shards;
        printf("dataset:     %s: %lu shards, %lu records of %lu bytes "
               "(reused; --regenerate makes it again)\n",
               want->dir, want->shards, want->records, want->item_bytes);
        if (have.corrupt >= 0 && !cut) {
            /* An earlier --corrupt run cut this shard: make it again. */
            want->corrupt = -1;
            if (manifest_remove(want) != 0 ||
                shards_generate(want, (unsigned long)have.corrupt,
                                (unsigned long)have.corrupt + 1) != 0) {
                return -1;
            }
            printf("repaired:    shard-%03ld.rec (cut by an earlier run)\n",
                   have.corrupt);
        } else if (have.corrupt >= 0) {
            want->corrupt = have.corrupt; /* already cut */
            printf("corrupted:   shard-%03ld.rec (cut by an earlier run)\n",
                   have.corrupt);
            return 0;
        } else if (!cut) {
            return 0;
        }
    } else {
        bytes = FILE_HEADER_BYTES * (uint64_t)want->shards +
                record_bytes(want) * want->records;
        printf("dataset:     %s: generating %lu shards, %lu records of %lu "
               "bytes (%.1f MB)\n",
               want->dir, want->shards, want->records, want->item_bytes,
               (double)bytes / 1e6);
        fflush(stdout);
        t0 = now_s();
        if (manifest_remove(want) != 0) {
            return -1;
        }
        if (have.shards > want->shards) {
            shards_remove(want, want->shards, have.shards);
        }
        if (shards_generate(want, 0, want->shards) != 0) {
            return -1;
        }
        printf("generated:   %.1f MB in %.2f s\n", (double)bytes / 1e6,
               now_s() - t0);
    }
    if (cut) {
        /* The middle shard: its neighbours on either side still finish. */
        want->corrupt = (long)(want->shards / 2);
        if (manifest_remove(want) != 0 ||
            shard_corrupt(want, (unsigned long)want->corrupt) != 0) {
            return -1;
        }
    }
    fflush(stdout);
    return manifest_write(want);
}

/* ------------------------------------------------ reading and transforming */

static int reader_setup(struct reader *rd)
{
    crc_table_build(rd->crc_table);
    rd->cap = READ_BYTES + (size_t)record_bytes(rd->ds);
    rd->buf = malloc(rd->cap);
    return rd->buf != NULL ? 0 : -1;
}

/*
 * Make at least n (<= cap) unread bytes available in buf[lo, hi), reading
 * as much as fits (1 MiB or more) each time. 1: there they are; 0: the
 * file ended first; -1: read() failed (errno).
 */
static int ensure(struct reader *rd, int fd, size_t n)
{
    ssize_t got;

    if (rd->hi - rd->lo >= n) {
        return 1;
    }
    if (rd->lo > 0) {
        memmove(rd->buf, rd->buf + rd->lo, rd->hi - rd->lo);
        rd->hi -= rd->lo;
        rd->lo = 0;
    }
    while (rd->hi < n) {
        got = read(fd, rd->buf + rd->hi, rd->cap - rd->hi);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            return got == 0 ? 0 : -1;
        }
        rd->hi += (size_t)got;
    }
    return 1;
}

static void consume(struct reader *rd, size_t n)
{
    rd->lo += n;
    rd->at += n;
}

/* Mean, variance and histogram of a payload: the per-record work. */
static void analyse(const unsigned char *p, size_t n, struct result *res)
{
    uint32_t counts[HIST_BINS];
    uint64_t sum = 0, squares = 0;
    double mean, var;
    size_t i;
    int b;

    memset(counts, 0, sizeof counts);
    for (i = 0; i < n; i++) {
        sum += p[i];
        squares += (uint64_t)p[i] * p[i];
        counts[p[i] >> 4]++;
    }
    mean = (double)sum / (double)n;
    var = (double)squares / (double)n - mean * mean;
    res->byte_sum = sum;
    res->mean = (float)(mean / 255.0);
    res->variance = (float)(var / (255.0 * 255.0));
    for (b = 0; b < HIST_BINS; b++) {
        res->hist[b] = (float)((double)counts[b] / (double)n);
    }
}

/* Put one result (and n bytes of payload) into the sink. */
static int emit(const struct sink *sk, const struct result *res,
                const unsigned char *payload, size_t n, const char *path,
                char *err, size_t errlen)
{
    size_t len = sizeof *res + n;
    void *buf;
    int r;

    r = sk->reserve(sk->ctx, len, &buf);
    if (r != 0) {
        if (r < 0) {
            snprintf(err, errlen, "%s: no room for a %zu-byte result: %s", path,
                     len, subiter_strerror(r));
        }
        return r; /* SUBITER_STOPPED (> 0): the parent stopped us */
    }
    memcpy(buf, res, sizeof *res);
    if (n > 0) {
        memcpy((unsigned char *)buf + sizeof *res, payload, n);
    }
    return sk->commit(sk->ctx, len, err, errlen);
}

/* Check the file header of shard s; 0, or -1 with a message in err. */
static int read_file_header(struct reader *rd, int fd, unsigned long s,
                            const char *path, char *err, size_t errlen)
{
    const struct dataset *ds = rd->ds;
    uint32_t magic, version, shard, item_bytes;
    uint64_t first, count;
    int r;

    r = ensure(rd, fd, FILE_HEADER_BYTES);
    if (r <= 0) {
        snprintf(err, errlen, "%s: %s", path,
                 r < 0 ? strerror(errno) : "truncated file header");
        return -1;
    }
    memcpy(&magic, rd->buf + rd->lo, 4);
    memcpy(&version, rd->buf + rd->lo + 4, 4);
    memcpy(&shard, rd->buf + rd->lo + 8, 4);
    memcpy(&item_bytes, rd->buf + rd->lo + 12, 4);
    memcpy(&first, rd->buf + rd->lo + 16, 8);
    memcpy(&count, rd->buf + rd->lo + 24, 8);
    if (magic != FILE_MAGIC || version != FILE_VERSION) {
        snprintf(err, errlen, "%s: not a version %u shard file", path,
                 FILE_VERSION);
        return -1;
    }
    if (shard != s || item_bytes != ds->item_bytes ||
        first != shard_first(ds, s) || count != shard_count(ds, s)) {
        snprintf(err, errlen,
                 "%s: shard %lu, records %llu..%llu of %lu bytes; the "
                 "manifest says shard %lu, records %lu..%lu of %lu bytes",
                 path, (unsigned long)shard, (unsigned long long)first,
                 (unsigned long long)(first + count), (unsigned long)item_bytes,
                 s, shard_first(ds, s), shard_first(ds, s + 1), ds->item_bytes);
        return -1;
    }
    consume(rd, FILE_HEADER_BYTES);
    return 0;
}

/*
 * Read, verify and transform record `index` of shard s, and emit its
 * result. 0; SUBITER_STOPPED; or < 0 with a message in err.
 */
static int read_record(struct reader *rd, int fd, unsigned long s,
                       uint64_t index, const char *path, const struct sink *sk,
                       uint64_t *shard_sum, char *err, size_t errlen)
{
    size_t n = rd->ds->item_bytes, rec = REC_HEADER_BYTES + n;
    const unsigned char *p;
    uint32_t magic, len, shard, crc, want;
    uint64_t got_index;
    struct result res;
    int r;

    r = ensure(rd, fd, rec);
    if (r < 0) {
        snprintf(err, errlen, "%s: record %llu: %s", path,
                 (unsigned long long)index, strerror(errno));
        return -1;
    }
    if (r == 0) {
        if (rd->hi == rd->lo) {
            snprintf(err, errlen, "%s: ends at offset %llu, before record %llu",
                     path, rd->at, (unsigned long long)index);
        } else {
            snprintf(err, errlen,
                     "%s: truncated record %llu at offset %llu (%zu of %zu "
                     "bytes)",
                     path, (unsigned long long)index, rd->at, rd->hi - rd->lo,
                     rec);
        }
        return -1;
    }
    p = rd->buf + rd->lo;
    memcpy(&magic, p, 4);
    memcpy(&len, p + 4, 4);
    memcpy(&got_index, p + 8, 8);
    memcpy(&shard, p + 16, 4);
    memcpy(&crc, p + 20, 4);
    if (magic != REC_MAGIC || len != n || got_index != index || shard != s) {
        snprintf(err, errlen,
                 "%s: bad record header at offset %llu (magic %08lx, length "
                 "%lu, index %llu, shard %lu; expected %08lx, %zu, %llu, %lu)",
                 path, rd->at, (unsigned long)magic, (unsigned long)len,
                 (unsigned long long)got_index, (unsigned long)shard,
                 (unsigned long)REC_MAGIC, n, (unsigned long long)index, s);
        return -1;
    }
    want = crc32_of(rd->crc_table, p + REC_HEADER_BYTES, n);
    if (crc != want) {
        snprintf(err, errlen,
                 "%s: record %llu: payload CRC-32 %08lx, the header says "
                 "%08lx",
                 path, (unsigned long long)index, (unsigned long)want,
                 (unsigned long)crc);
        return -1;
    }
    memset(&res, 0, sizeof res);
    res.kind = RESULT_RECORD;
    res.shard = (uint32_t)s;
    res.index = index;
    res.crc = crc;
    res.payload_len = rd->carry ? (uint32_t)n : 0;
    analyse(p + REC_HEADER_BYTES, n, &res);
    *shard_sum += res.byte_sum;
    r = emit(sk, &res, p + REC_HEADER_BYTES, res.payload_len, path, err,
             errlen);
    consume(rd, rec);
    return r;
}

/*
 * Read shard s from start to end, emitting a result per record and one
 * at the end. 0; SUBITER_STOPPED; or < 0 with a message naming the file in
 * err.
 */
static int read_shard(struct reader *rd, unsigned long s, const struct sink *sk,
                      char *err, size_t errlen)
{
    char path[PATH_BYTES];
    uint64_t index, first = shard_first(rd->ds, s), sum = 0;
    unsigned long count = shard_count(rd->ds, s);
    struct result res;
    int fd, r;

    shard_path(rd->ds, s, path, sizeof path);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    rd->lo = rd->hi = 0;
    rd->at = 0;
    r = read_file_header(rd, fd, s, path, err, errlen);
    for (index = first; r == 0 && index < first + count; index++) {
        r = read_record(rd, fd, s, index, path, sk, &sum, err, errlen);
    }
    if (r == 0 && (r = ensure(rd, fd, 1)) != 0) {
        snprintf(err, errlen, "%s: %s after the last record (offset %llu)",
                 path, r < 0 ? strerror(errno) : "unexpected data", rd->at);
        r = -1;
    }
    close(fd);
    if (r != 0) {
        return r;
    }
    memset(&res, 0, sizeof res);
    res.kind = RESULT_SHARD_END;
    res.shard = (uint32_t)s;
    res.index = count;
    res.byte_sum = sum;
    return emit(sk, &res, NULL, 0, path, err, errlen);
}

/* ---------------------------------------------------------- the worker */

static int ring_reserve(void *ctx, size_t len, void **buf)
{
    return subiter_reserve(ctx, len, buf);
}

static int ring_commit(void *ctx, size_t len, char *err, size_t errlen)
{
    int r = subiter_commit(ctx, len);

    if (r < 0) {
        snprintf(err, errlen, "subiter_commit: %s", subiter_strerror(r));
    }
    return r;
}

/* The initializer: runs once in each worker, before its first shard. */
static int loader_init(subiter_gen *g, void *arg)
{
    struct reader *rd = arg;

    if (reader_setup(rd) != 0) {
        return subiter_fail(g, "no memory for a %zu-byte read buffer", rd->cap);
    }
    return 0;
}

/*
 * The generator: the input lists the shards to read; this worker reads
 * its share of them, in order (entries id, id + n, id + 2n, ...).
 */
static int loader_run(subiter_gen *g, void *arg)
{
    struct reader *rd = arg;
    const struct sink sk = {ring_reserve, ring_commit, g};
    size_t len, k, id = subiter_worker_id(g), n = subiter_num_workers(g);
    const unsigned char *in;
    char err[ERR_BYTES];
    struct result res;
    uint32_t shard;
    int r;

    in = subiter_input(g, &len);
    if (in == NULL || len % sizeof shard != 0) {
        return subiter_fail(g,
                            "expected a list of shard numbers, got %zu "
                            "bytes",
                            len);
    }
    for (k = id; k < len / sizeof shard; k += n) {
        memcpy(&shard, in + k * sizeof shard, sizeof shard);
        if (shard >= rd->ds->shards) {
            return subiter_fail(g, "no shard %lu", (unsigned long)shard);
        }
        err[0] = '\0';
        r = read_shard(rd, shard, &sk, err, sizeof err);
        if (r > 0) {
            return r; /* stopped: return at once */
        }
        if (r < 0) {
            /*
             * Say which shard before failing: the items published before
             * the failure reach the parent first.
             */
            memset(&res, 0, sizeof res);
            res.kind = RESULT_SHARD_FAILED;
            res.shard = shard;
            if ((r = subiter_yield(g, &res, sizeof res)) != 0) {
                return r;
            }
            return subiter_fail(g, "%s", err);
        }
    }
    return 0;
}

/* ---------------------------------------------------------- the parent */

static int collector_init(struct collector *c, const struct dataset *ds,
                          int carry)
{
    unsigned long s;

    memset(c, 0, sizeof *c);
    c->ds = ds;
    c->carry = carry;
    c->st = calloc(ds->shards, sizeof *c->st);
    if (c->st == NULL) {
        return -1;
    }
    for (s = 0; s < ds->shards; s++) {
        c->st[s].first = shard_first(ds, s);
        c->st[s].expected = shard_count(ds, s);
    }
    crc_table_build(c->crc_table);
    return 0;
}

/* Forget what shard s delivered: it is going to be read again. */
static void shard_reset(struct collector *c, unsigned long s)
{
    struct shard_state *st = &c->st[s];

    c->records -= st->got;
    st->got = st->crc_checked = 0;
    st->byte_sum = 0;
    st->mean_sum = st->var_sum = 0;
    memset(st->hist_sum, 0, sizeof st->hist_sum);
}

/*
 * Check one result and add it to its shard's totals: RESULT_RECORD,
 * RESULT_SHARD_END or RESULT_SHARD_FAILED, or -1 with a message in err.
 * *shard is set to the result's shard once it is known to be one being
 * read, else to ULONG_MAX.
 */
static int check_item(struct collector *c, const void *data, size_t len,
                      unsigned long *shard, char *err, size_t errlen)
{
    const unsigned char *payload =
        (const unsigned char *)data + sizeof(struct result);
    size_t n = c->carry ? c->ds->item_bytes : 0;
    struct shard_state *st;
    struct result res;
    unsigned long s;
    uint64_t sum;
    int b;

    *shard = ULONG_MAX;
    if (len < sizeof res) {
        snprintf(err, errlen, "a result of %zu bytes", len);
        return -1;
    }
    memcpy(&res, data, sizeof res);
    s = res.shard;
    if (s >= c->ds->shards || c->st[s].status != SHARD_PENDING) {
        snprintf(err, errlen, "a result from shard %lu, not one being read", s);
        return -1;
    }
    *shard = s;
    st = &c->st[s];
    if (res.kind == RESULT_SHARD_FAILED && len == sizeof res) {
        st->status = SHARD_FAILED;
        return RESULT_SHARD_FAILED;
    }
    if (res.kind == RESULT_SHARD_END) {
        if (len != sizeof res || res.index != st->got ||
            st->got != st->expected) {
            snprintf(err, errlen,
                     "shard %lu: the worker read %llu records, %lu arrived, "
                     "%lu expected",
                     s, (unsigned long long)res.index, st->got, st->expected);
            return -1;
        }
        if (res.byte_sum != st->byte_sum) {
            snprintf(err, errlen,
                     "shard %lu: byte sum %llu, the worker's is %llu", s,
                     (unsigned long long)st->byte_sum,
                     (unsigned long long)res.byte_sum);
            return -1;
        }
        st->status = SHARD_OK;
        return RESULT_SHARD_END;
    }
    if (res.kind != RESULT_RECORD || res.payload_len != n ||
        len != sizeof res + n) {
        snprintf(err, errlen,
                 "shard %lu: a result of kind %lu, %zu bytes, %lu of "
                 "payload; expected %zu",
                 s, (unsigned long)res.kind, len,
                 (unsigned long)res.payload_len, n);
        return -1;
    }
    if (res.index != st->first + st->got) {
        snprintf(err, errlen, "shard %lu: record %llu, expected %lu", s,
                 (unsigned long long)res.index, st->first + st->got);
        return -1;
    }
    if (n > 0) {
        sum = byte_sum_of(payload, n);
        if (sum != res.byte_sum) {
            snprintf(err, errlen,
                     "record %llu: payload byte sum %llu, its result says "
                     "%llu",
                     (unsigned long long)res.index, (unsigned long long)sum,
                     (unsigned long long)res.byte_sum);
            return -1;
        }
        if (res.index % CRC_SAMPLE == 0) {
            if (crc32_of(c->crc_table, payload, n) != res.crc) {
                snprintf(err, errlen, "record %llu: payload CRC-32 mismatch",
                         (unsigned long long)res.index);
                return -1;
            }
            st->crc_checked++;
        }
    }
    st->got++;
    st->byte_sum += res.byte_sum;
    st->mean_sum += res.mean;
    st->var_sum += res.variance;
    for (b = 0; b < HIST_BINS; b++) {
        st->hist_sum[b] += res.hist[b];
    }
    c->records++;
    return RESULT_RECORD;
}

static void progress(unsigned long done, unsigned long total, double t)
{
    fprintf(stderr, "\rloading: %lu/%lu records (%lu%%), %.0f records/s", done,
            total, (unsigned long)((double)done * 100.0 / (double)total),
            t > 0 ? (double)done / t : 0.0);
    progress_shown = 1;
}

/*
 * Read every shard with the pool: start it on the list of the shards
 * left, check each result as it comes, and after a failure (a bad shard, a
 * bad result, a worker that died twice: the pool has replaced it) start
 * again on the shards still left, until two rounds in a row finish none.
 * Returns the number of rounds.
 */
static unsigned long load_all(subiter_pool *p, struct collector *c, double t0)
{
    static uint32_t list[MAX_SHARDS];
    unsigned long s, n, left = ULONG_MAX, rounds = 0, items = 0, shard;
    unsigned long fruitless = 0;
    int tty = isatty(STDERR_FILENO), r;
    char err[ERR_BYTES];
    subiter_pool_item item;
    double last = 0;

    for (;;) {
        /* The shards left; what an interrupted round delivered goes. */
        for (n = s = 0; s < c->ds->shards; s++) {
            if (c->st[s].status == SHARD_PENDING) {
                shard_reset(c, s);
                list[n++] = (uint32_t)s;
            }
        }
        fruitless = n == left ? fruitless + 1 : 0;
        if (n == 0 || fruitless == 2) {
            break; /* done, or the last two rounds finished no shard */
        }
        left = n;
        rounds++;
        r = subiter_pool_start(p, list, n * sizeof list[0]);
        if (r != 0) {
            say("subiter_pool_start: %s: %s", subiter_errname(r),
                subiter_pool_errmsg(p));
            break;
        }
        while ((r = subiter_pool_next(p, &item)) == 1) {
            /* item.data points into the worker's ring: check it there. */
            if (check_item(c, item.data, item.len, &shard, err, sizeof err) <
                0) {
                say("worker %u: bad result: %s", item.worker, err);
                if (shard != ULONG_MAX) {
                    c->st[shard].status = SHARD_FAILED;
                }
                r = subiter_pool_stop(p);
                break;
            }
            if (tty && ++items % 256 == 0 && now_s() - last > 0.1) {
                last = now_s();
                progress(c->records, c->ds->records, last - t0);
            }
        }
        if (r < 0) {
            /* SUBITER_EITER: the generator's message names the file. */
            say("%s: %s", subiter_errname(r), subiter_pool_errmsg(p));
        }
    }
    for (s = 0; s < c->ds->shards; s++) {
        if (c->st[s].status == SHARD_PENDING) {
            c->st[s].status = SHARD_LOST;
            say("shard-%03lu.rec: not read: the workers kept failing", s);
        }
    }
    if (progress_shown) {
        progress(c->records, c->ds->records, now_s() - t0);
        fputc('\n', stderr);
        progress_shown = 0;
    }
    return rounds;
}

/* In-process sink: each result goes to a local buffer, checked at once. */
struct local {
    unsigned char *buf;
    struct collector *c;
};

static int local_reserve(void *ctx, size_t len, void **buf)
{
    struct local *l = ctx;

    (void)len; /* the buffer holds the largest result */
    *buf = l->buf;
    return 0;
}

static int local_commit(void *ctx, size_t len, char *err, size_t errlen)
{
    struct local *l = ctx;
    unsigned long shard;

    return check_item(l->c, l->buf, len, &shard, err, errlen) < 0 ? -1 : 0;
}

/* The same work in one process: read, verify, transform, check. */
static double run_in_process(const struct dataset *ds, struct collector *c)
{
    static struct reader rd; /* static: its CRC table is 1 KiB */
    struct local l;
    struct sink sk;
    char err[ERR_BYTES];
    unsigned long s;
    double t0, t;

    memset(&rd, 0, sizeof rd);
    rd.ds = ds;
    rd.carry = c->carry;
    l.c = c;
    l.buf = malloc(sizeof(struct result) + ds->item_bytes);
    sk.reserve = local_reserve;
    sk.commit = local_commit;
    sk.ctx = &l;
    if (l.buf == NULL || reader_setup(&rd) != 0) {
        free(l.buf);
        return -1;
    }
    t0 = now_s();
    for (s = 0; s < ds->shards; s++) {
        if (read_shard(&rd, s, &sk, err, sizeof err) != 0) {
            c->st[s].status = SHARD_FAILED; /* the same as the workers' */
        }
    }
    t = now_s() - t0;
    free(rd.buf);
    free(l.buf);
    return t;
}

/* Workers and in-process must agree on every shard they both finished. */
static int compare_runs(const struct collector *a, const struct collector *b)
{
    unsigned long s;

    for (s = 0; s < a->ds->shards; s++) {
        if (a->st[s].status == SHARD_LOST) {
            continue; /* not the data's fault */
        }
        if (a->st[s].status != b->st[s].status ||
            a->st[s].got != b->st[s].got) {
            say("shard-%03lu.rec: the workers and the in-process run "
                "disagree (%lu and %lu records)",
                s, a->st[s].got, b->st[s].got);
            return -1;
        }
    }
    return 0;
}

/* Print what the run did; the number of shards not read in full. */
static unsigned long summary(const struct collector *c,
                             const struct collector *inproc, double t,
                             double t_local)
{
    const struct dataset *ds = c->ds;
    unsigned long s, failed = 0, crc_checked = 0;
    double mb, mean = 0, var = 0, hist[HIST_BINS], dev = 0, d;
    int b;

    memset(hist, 0, sizeof hist);
    for (s = 0; s < ds->shards; s++) {
        failed += c->st[s].status != SHARD_OK;
        crc_checked += c->st[s].crc_checked;
        mean += c->st[s].mean_sum;
        var += c->st[s].var_sum;
        for (b = 0; b < HIST_BINS; b++) {
            hist[b] += c->st[s].hist_sum[b];
        }
    }
    mb = (double)c->records * (double)ds->item_bytes / 1e6;
    printf("records:     %lu of %lu (counts, order and byte sums checked, "
           "CRC-32 again on %lu)\n",
           c->records, ds->records, crc_checked);
    printf("shards:      %lu of %lu complete", ds->shards - failed, ds->shards);
    if (failed > 0) {
        printf(", %lu failed:", failed);
        for (s = 0; s < ds->shards; s++) {
            if (c->st[s].status != SHARD_OK) {
                printf(" shard-%03lu.rec", s);
            }
        }
    }
    printf("\n");
    printf("bytes:       %.0f of payload (%.1f MiB)%s\n", mb * 1e6,
           mb * 1e6 / 1048576.0, c->carry ? ", delivered to this process" : "");
    printf("seconds:     %.3f (start, read, verify, transform, pull, check, "
           "close)\n",
           t);
    printf("records/s:   %.0f\n", (double)c->records / t);
    printf("MB/s:        %.1f\n", mb / t);
    if (c->records > 0) {
        for (b = 0; b < HIST_BINS; b++) {
            d = hist[b] / (double)c->records * HIST_BINS - 1.0;
            d = d < 0 ? -d : d;
            dev = d > dev ? d : dev;
        }
        printf("features:    mean byte %.4f, variance %.4f, histogram flat "
               "within %.2f%%\n"
               "             (uniform bytes: 0.5000, 0.0840, flat)\n",
               mean / (double)c->records, var / (double)c->records,
               dev * 100.0);
    }
    printf("in-process:  %.3f s, %.0f records/s (same work, one process)\n",
           t_local, (double)inproc->records / t_local);
    if (c->records > 0 && inproc->records > 0 && t_local > 0) {
        printf("ratio:       %.2fx the in-process records/s\n",
               ((double)c->records / t) / ((double)inproc->records / t_local));
    }
    return failed;
}

/* ------------------------------------------------------------- main */

#define USAGE                                                                  \
    "usage: loader [--workers N] [--unordered] [--dir DIR] [--records N]\n"    \
    "              [--item-bytes N] [--shards N] [--no-payload] [--corrupt]\n" \
    "              [--regenerate]\n"

/* Bad arguments: say why, then how to ask for help; exit status 2. */
static int bad_usage(const char *why, const char *arg)
{
    fprintf(stderr, "loader: %s '%s'\n", why, arg);
    fputs(USAGE "Try 'loader --help' for more.\n", stderr);
    return 2;
}

static void usage(void)
{
    printf(USAGE
           "\n"
           "A data-loading pipeline: a pool of worker processes (subiter)\n"
           "reads shard files of checksummed records, verifies and\n"
           "transforms each record and streams the results to this\n"
           "process, which checks them; then the same work is done\n"
           "in-process to compare. The dataset is generated in DIR first\n"
           "unless it is already there.\n"
           "\n"
           "  --workers N     worker processes, 1..%lu (default: one per\n"
           "                  CPU; at most one per shard)\n"
           "  --unordered     take results from whichever worker has one\n"
           "                  (default: round robin, the same order every\n"
           "                  run)\n"
           "  --dir DIR       dataset directory, created if missing\n"
           "                  (default $TMPDIR/subiter-loader-data, or\n"
           "                  /tmp/subiter-loader-data)\n"
           "  --records N     records in the dataset, 1..%lu (default %lu)\n"
           "  --item-bytes N  payload bytes per record, 1..%lu (default "
           "%lu)\n"
           "  --shards N      shard files, 1..%lu (default %lu, or\n"
           "                  --workers if larger; an existing dataset\n"
           "                  keeps its own unless this is given)\n"
           "  --no-payload    send only each record's features, not its\n"
           "                  payload\n"
           "  --corrupt       cut the middle shard file short, to show how a\n"
           "                  bad file is reported (the next run without it\n"
           "                  makes that shard again)\n"
           "  --regenerate    generate the dataset even if it is there\n"
           "  --help          show this help\n"
           "\n"
           "An existing dataset is reused when its manifest matches\n"
           "--records, --item-bytes (and --shards, if given); otherwise it\n"
           "is made again. Cutting a shard file by hand (truncate -s -100\n"
           "DIR/shard-003.rec) is reported the same way as --corrupt.\n"
           "\n"
           "Exit status: 0 when every shard was read and checked, 1 when any\n"
           "failed, 2 on bad arguments.\n",
           MAX_WORKERS, MAX_RECORDS, DEFAULT_RECORDS, MAX_ITEM_BYTES,
           DEFAULT_ITEM_BYTES, MAX_SHARDS, DEFAULT_SHARDS);
}

/* Parse a decimal number in [1, max]; 0 on success. */
static int parse_ulong(const char *opt, const char *s, unsigned long max,
                       unsigned long *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (*s < '0' || *s > '9' || *end != '\0' || errno == ERANGE || v < 1 ||
        v > max) {
        fprintf(stderr, "loader: %s: '%s' is not a number from 1 to %lu\n", opt,
                s, max);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"workers", required_argument, NULL, 'w'},
        {"unordered", no_argument, NULL, 'u'},
        {"dir", required_argument, NULL, 'd'},
        {"records", required_argument, NULL, 'r'},
        {"item-bytes", required_argument, NULL, 'b'},
        {"shards", required_argument, NULL, 's'},
        {"no-payload", no_argument, NULL, 'n'},
        {"corrupt", no_argument, NULL, 'c'},
        {"regenerate", no_argument, NULL, 'g'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    static struct dataset ds;
    static struct reader rd; /* the workers' copy of it is theirs */
    static struct collector col, inproc;
    subiter_pool_opts opts = SUBITER_POOL_OPTS_INIT;
    subiter_pool_stats st = SUBITER_POOL_STATS_INIT;
    subiter_opts wopts = SUBITER_OPTS_INIT;
    subiter_pool *p = NULL;
    unsigned long workers = 0, failed, rounds, k, item;
    int opt, r, carry = 1, corrupt = 0, regenerate = 0, shards_given = 0;
    char pids[128];
    const char *tmp, *dir = NULL;
    double t0, t, t_local, cpu0, cpu;
    size_t used;

    ds.records = DEFAULT_RECORDS;
    ds.item_bytes = DEFAULT_ITEM_BYTES;
    ds.shards = DEFAULT_SHARDS;
    opterr = 0; /* the messages below name the program, not its path */
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'w':
            if (parse_ulong("--workers", optarg, MAX_WORKERS, &workers)) {
                return 2;
            }
            break;
        case 'u':
            opts.order = SUBITER_POOL_UNORDERED;
            break;
        case 'd':
            dir = optarg;
            break;
        case 'r':
            if (parse_ulong("--records", optarg, MAX_RECORDS, &ds.records)) {
                return 2;
            }
            break;
        case 'b':
            if (parse_ulong("--item-bytes", optarg, MAX_ITEM_BYTES,
                            &ds.item_bytes)) {
                return 2;
            }
            break;
        case 's':
            if (parse_ulong("--shards", optarg, MAX_SHARDS, &ds.shards)) {
                return 2;
            }
            shards_given = 1;
            break;
        case 'n':
            carry = 0;
            break;
        case 'c':
            corrupt = 1;
            break;
        case 'g':
            regenerate = 1;
            break;
        case 'h':
            usage();
            return 0;
        default:
            return bad_usage(optopt == 0 || opt == ':' ? "bad option"
                                                       : "unknown option",
                             argv[optind - 1]);
        }
    }
    if (optind < argc) {
        return bad_usage("unexpected argument", argv[optind]);
    }
    if (!shards_given && workers > ds.shards) {
        ds.shards = workers;
    }
    if (dir == NULL) {
        tmp = getenv("TMPDIR");
        snprintf(ds.dir, sizeof ds.dir, "%s/subiter-loader-data",
                 tmp != NULL && *tmp == '/' && strlen(tmp) < DIR_MAX - 32
                     ? tmp
                     : "/tmp");
    } else if (*dir == '\0' || strlen(dir) > DIR_MAX) {
        return bad_usage("--dir: not a usable directory name", dir);
    } else {
        snprintf(ds.dir, sizeof ds.dir, "%s", dir);
    }
    if (record_bytes(&ds) * ds.records > MAX_DATASET_BYTES) {
        fprintf(stderr,
                "loader: %lu records of %lu bytes: more than the %llu GiB "
                "this demo writes\n",
                ds.records, ds.item_bytes,
                (unsigned long long)(MAX_DATASET_BYTES >> 30));
        return 2;
    }
    ds.corrupt = corrupt ? 0 : -1;

    printf("subiter %s loader: a pool of worker processes, %s\n",
           subiter_version(),
           opts.order == SUBITER_POOL_ORDERED ? "ordered" : "unordered");
    if (dataset_prepare(&ds, shards_given, regenerate) != 0) {
        return 1;
    }
    if (workers > ds.shards) {
        printf("workers:     %lu (not %lu: one shard each at least)\n",
               ds.shards, workers);
        workers = ds.shards;
    }
    if (collector_init(&col, &ds, carry) != 0 ||
        collector_init(&inproc, &ds, carry) != 0) {
        fprintf(stderr, "loader: out of memory\n");
        return 1;
    }

    /* Each worker's initializer allocates its own read buffer. */
    rd.ds = &ds;
    rd.carry = carry;
    item = (unsigned long)(sizeof(struct result) + ds.item_bytes);
    wopts.init = loader_init;
    wopts.buffer_items = 256;
    if (wopts.buffer_bytes < 4 * item) {
        wopts.buffer_bytes = 4 * item;
    }
    /* Fail instead of hanging if a worker stops sending. */
    wopts.timeout_ms = 30000;
    opts.workers = (unsigned)workers; /* 0: one per CPU */
    opts.worker = &wopts;
    /*
     * A worker that dies is replaced and its replacement reads its shards
     * again, skipping the results already delivered: the reader is
     * deterministic, so nothing is lost or repeated.
     */
    opts.restart_shards = 1;

    fflush(stdout); /* before the forks */
    t0 = now_s();
    cpu0 = cpu_s(RUSAGE_SELF);
    r = subiter_pool_open(&p, loader_run, &rd, &opts);
    if (r != 0) {
        say("subiter_pool_open: %s: %s", subiter_errname(r),
            subiter_pool_errmsg(p));
        (void)subiter_pool_close(p);
        return 1;
    }
    rounds = load_all(p, &col, t0);
    used = 0;
    pids[0] = '\0';
    (void)subiter_pool_get_stats(p, &st);
    for (k = 0; k < st.workers && used + 16 < sizeof pids; k++) {
        used += (size_t)snprintf(pids + used, sizeof pids - used, "%s%ld",
                                 k ? " " : "",
                                 (long)subiter_pool_worker_pid(p, (unsigned)k));
    }
    r = subiter_pool_close(p);
    if (r != 0) {
        say("subiter_pool_close: %s", subiter_strerror(r));
    }
    t = now_s() - t0;
    cpu = cpu_s(RUSAGE_SELF) - cpu0;

    t_local = run_in_process(&ds, &inproc);
    if (t_local < 0) {
        fprintf(stderr, "loader: out of memory for the in-process run\n");
        return 1;
    }
    failed = summary(&col, &inproc, t, t_local);
    printf("workers:     %u (pids %s%s), %lu round%s, %llu replaced\n",
           st.workers, pids, k < st.workers ? " ..." : "", rounds,
           rounds == 1 ? "" : "s (after a failure, the shards left)",
           st.replaced);
    /* The workers are reaped: RUSAGE_CHILDREN holds their CPU time. */
    printf("cpu:         %.3f s in the workers, %.3f s in this process\n",
           cpu_s(RUSAGE_CHILDREN), cpu);
    if (compare_runs(&col, &inproc) != 0) {
        failed++;
    }
    free(col.st);
    free(inproc.st);
    return failed > 0;
}
