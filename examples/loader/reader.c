/* reader.c: reading a shard file, verifying each record and transforming
 * it into a result: what each worker does, and the in-process run too.
 *
 * A shard is read 1 MiB at a time; every header and CRC-32 is checked,
 * and each record's payload gives its features (mean, variance, a 16-bin
 * histogram). One result per record goes into the sink: a fixed struct,
 * then the payload itself unless --no-payload; after the last record,
 * an end-of-shard result with the count.
 */
#include "loader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int reader_setup(struct reader *rd)
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
int read_shard(struct reader *rd, unsigned long s, const struct sink *sk,
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
