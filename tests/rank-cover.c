/* rank-cover.c: one rank of tests/check-mpirun.sh. Under a launcher
 * (mpirun, srun, torchrun) each rank opens a pool with world_size 0, so
 * rank and world size come from the launcher's environment, reads its
 * part of the dataset 0 .. n - 1 with a checkpoint and a resume in a
 * fresh pool on the way, and writes the values it got, one a line, to
 * DIR/rank-R. Public API only.
 *
 * Usage: rank-cover N DIR. Exit 0, or 1 with the reason on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subiter.h"

/* v in [0, n) with v % shards == shard; seeks past what was delivered. */
static int gen(subiter_gen *g, void *arg)
{
    long n = *(const long *)arg, shards = (long)subiter_num_workers(g);
    long v = (long)subiter_worker_id(g) + (long)subiter_skip(g) * shards;
    int r;

    for (; v < n; v += shards) {
        if ((r = subiter_yield(g, &v, sizeof v)) != 0) {
            return r;
        }
    }
    return 0;
}

static int die(const char *what, int r, subiter_pool *p)
{
    fprintf(stderr, "rank-cover: %s: %s (%s)\n", what, subiter_strerror(r),
            subiter_pool_errmsg(p));
    subiter_pool_close(p);
    return 1;
}

/* Read up to max items (max < 0: all) into f; the count, or -1. */
static long drain(subiter_pool *p, FILE *f, long max)
{
    subiter_pool_item item;
    long k = 0, v;
    int r = 0;

    while ((max < 0 || k < max) && (r = subiter_pool_next(p, &item)) == 1) {
        memcpy(&v, item.data, sizeof v);
        fprintf(f, "%ld\n", v);
        k++;
    }
    return r < 0 ? -1 : k;
}

int main(int argc, char **argv)
{
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;
    unsigned rank, world;
    unsigned char ck[256];
    char path[4096];
    subiter_pool *p;
    size_t len;
    long n;
    FILE *f;
    int r;

    if (argc != 3 || (n = atol(argv[1])) <= 0) {
        fprintf(stderr, "usage: rank-cover N DIR\n");
        return 2;
    }
    if (subiter_env_rank(&rank, &world) != 1) {
        fprintf(stderr, "rank-cover: no launcher in the environment\n");
        return 1;
    }
    snprintf(path, sizeof path, "%s/rank-%u", argv[2], rank);
    f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    po.workers = 2;
    po.world_size = 0; /* from the launcher */
    if ((r = subiter_pool_open(&p, gen, &n, &po)) < 0) {
        return die("open", r, p);
    }
    if ((r = subiter_pool_start(p, NULL, 0)) < 0) {
        return die("start", r, p);
    }
    /* A fifth, then a checkpoint, and the rest in a fresh pool. */
    if (drain(p, f, n / 5 / world + 1) < 0) {
        return die("next", -1, p);
    }
    if ((r = subiter_pool_checkpoint(p, ck, sizeof ck, &len)) < 0) {
        return die("checkpoint", r, p);
    }
    subiter_pool_close(p);
    if ((r = subiter_pool_open(&p, gen, &n, &po)) < 0) {
        return die("open again", r, p);
    }
    if ((r = subiter_pool_start_from(p, NULL, 0, ck, len)) < 0) {
        return die("start_from", r, p);
    }
    if (drain(p, f, -1) < 0) {
        return die("next after resume", -1, p);
    }
    subiter_pool_close(p);
    if (fclose(f) != 0) {
        perror(path);
        return 1;
    }
    printf("rank-cover: rank %u of %u done\n", rank, world);
    return 0;
}
