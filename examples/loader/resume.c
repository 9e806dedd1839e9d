/* resume.c: --resume FILE. The loader saves where it is every
 * --checkpoint-every results and when Ctrl-C arrives, and a later run
 * with the same FILE goes on from there: the pool's own checkpoint
 * (subiter_pool_checkpoint(), given back to subiter_pool_start_from()),
 * the list of shards the round was started on, and the parent's checks
 * so far. The file is written to FILE.tmp, then renamed over FILE, so a
 * crash while saving leaves the last good one. It is removed once the run
 * has read every shard.
 *
 * The checks are saved as the collector holds them in memory: a file is
 * for the same build of the loader on the same machine, as a training
 * run's checkpoints are.
 */
#include "loader.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RESUME_MAGIC 0x53455244u /* "DRES" */
#define RESUME_VERSION 1u

/* The file's header; the list, the shard states and the pool's
 * checkpoint follow. */
struct resume_header {
    uint32_t magic, version;
    uint64_t shards, records, item_bytes;
    uint64_t list_len;   /* shards in the round's input */
    uint64_t collected;  /* records checked so far */
    uint64_t ckpt_len;   /* bytes of the pool's checkpoint */
    uint64_t state_size; /* sizeof(struct shard_state) */
};

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

void resume_catch_sigint(void)
{
    struct sigaction sa;

    /* The workers ignore SIGINT: the loop sees the flag, saves, stops. */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    (void)sigaction(SIGINT, &sa, NULL);
}

int resume_interrupted(void)
{
    return interrupted != 0;
}

int resume_save(struct console *con, const char *path,
                const struct collector *c, const uint32_t *list,
                unsigned long n, const subiter_pool *p)
{
    struct resume_header h;
    unsigned char ck[16384];
    char tmp[PATH_BYTES + 8];
    size_t len;
    FILE *f;
    int r, ok;

    r = subiter_pool_checkpoint(p, ck, sizeof ck, &len);
    if (r != 0) {
        say(con, "subiter_pool_checkpoint: %s", subiter_strerror(r));
        return -1;
    }
    memset(&h, 0, sizeof h);
    h.magic = RESUME_MAGIC;
    h.version = RESUME_VERSION;
    h.shards = c->ds->shards;
    h.records = c->ds->records;
    h.item_bytes = c->ds->item_bytes;
    h.list_len = n;
    h.collected = c->records;
    h.ckpt_len = len;
    h.state_size = sizeof *c->st;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "wb");
    if (f == NULL) {
        say(con, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    ok = fwrite(&h, sizeof h, 1, f) == 1 &&
         fwrite(list, sizeof *list, n, f) == n &&
         fwrite(c->st, sizeof *c->st, c->ds->shards, f) == c->ds->shards &&
         fwrite(ck, 1, len, f) == len;
    if (fclose(f) != 0 || !ok || rename(tmp, path) != 0) {
        say(con, "%s: cannot save: %s", path, strerror(errno));
        (void)unlink(tmp);
        return -1;
    }
    return 0;
}

int resume_load(struct console *con, const char *path, struct collector *c,
                uint32_t *list, unsigned long *n, unsigned char *ck, size_t cap,
                size_t *ck_len)
{
    struct resume_header h;
    FILE *f = fopen(path, "rb");
    int ok;

    if (f == NULL) {
        return errno == ENOENT
                   ? 0
                   : (say(con, "%s: %s", path, strerror(errno)), -1);
    }
    ok = fread(&h, sizeof h, 1, f) == 1 && h.magic == RESUME_MAGIC &&
         h.version == RESUME_VERSION && h.state_size == sizeof *c->st;
    if (ok && (h.shards != c->ds->shards || h.records != c->ds->records ||
               h.item_bytes != c->ds->item_bytes)) {
        say(con,
            "%s: saved for %llu records of %llu bytes in %llu shards, not "
            "this dataset",
            path, (unsigned long long)h.records,
            (unsigned long long)h.item_bytes, (unsigned long long)h.shards);
        fclose(f);
        return -1;
    }
    ok = ok && h.list_len <= MAX_SHARDS && h.ckpt_len <= cap &&
         fread(list, sizeof *list, h.list_len, f) == h.list_len &&
         fread(c->st, sizeof *c->st, c->ds->shards, f) == c->ds->shards &&
         fread(ck, 1, h.ckpt_len, f) == h.ckpt_len;
    fclose(f);
    if (!ok) {
        say(con, "%s: not a loader resume file, or damaged", path);
        return -1;
    }
    *n = (unsigned long)h.list_len;
    *ck_len = (size_t)h.ckpt_len;
    c->records = (unsigned long)h.collected;
    return 1;
}
