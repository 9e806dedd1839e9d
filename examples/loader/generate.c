/* generate.c: writing shard files, in the format dataset.c describes,
 * with pseudo-random payloads that any later run can make again.
 */
#include "loader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEED 0x5eed5eed12345678ull

static uint64_t next_random(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545f4914f6cdd1dull;
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
static int shard_generate(struct console *con, const struct dataset *ds,
                          unsigned long s, const uint32_t crc_table[256],
                          unsigned char *buf, size_t cap)
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
        say(con, "%s: %s", path, strerror(errno));
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
    say(con, "%s: write failed: %s", path, strerror(errno));
    if (fd >= 0) {
        close(fd);
    }
    return -1;
}

/* Generate shards [from, to) of ds; 0 or -1 after a message. */
int shards_generate(struct console *con, const struct dataset *ds,
                    unsigned long from, unsigned long to)
{
    uint32_t crc_table[256];
    size_t cap = READ_BYTES + (size_t)record_bytes(ds);
    unsigned char *buf = malloc(cap);
    unsigned long s;

    if (buf == NULL) {
        say(con, "no memory for a %zu-byte write buffer", cap);
        return -1;
    }
    crc_table_build(crc_table);
    for (s = from; s < to; s++) {
        if (con->tty) {
            fprintf(stderr, "\rgenerating: %lu/%lu shards", s - from,
                    to - from);
            con->progress_shown = 1;
        }
        if (shard_generate(con, ds, s, crc_table, buf, cap) != 0) {
            free(buf);
            return -1;
        }
    }
    progress_clear(con);
    free(buf);
    return 0;
}
