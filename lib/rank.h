/* rank.h: who a worker is and what it draws from (rank.c): its place in
 * the pool and in the launcher's world, and the seeds derived from it. */
#ifndef SUBITER_RANK_H
#define SUBITER_RANK_H

/* A worker's identity, fixed at its fork (a replacement gets its slot's). */
struct subiter__ident {
    unsigned worker_id;   /* global shard: rank x workers + local_id */
    unsigned num_workers; /* shards: world_size x workers */
    unsigned rank;
    unsigned world_size;
    unsigned local_id; /* index in its pool */
    uint64_t seed;     /* the pool's seed, never 0 */
};

/* The seed of (seed, rank, worker, iteration), chained through
 * splitmix64. The initializer uses SUBITER__INIT_ITERATION. */
#define SUBITER__INIT_ITERATION UINT64_MAX
SUBITER__HIDDEN uint64_t subiter__seed_of(const struct subiter__ident *id,
                                          uint64_t iteration);
/* A fresh non-zero seed from the kernel (or the clock without it). */
SUBITER__HIDDEN uint64_t subiter__draw_seed(void);

/* The decimal number at *s, which must end at the character `end` and be
 * at most `max`: 0 with *out and *s past `end`, or -EINVAL (no digit,
 * another character, or too big). For the numbers that come through the
 * environment: the launcher's rank and size, the SPAWN hand-off's fds. */
SUBITER__HIDDEN int subiter__parse_uint(const char **s, char end, unsigned max,
                                        unsigned *out);

#endif /* SUBITER_RANK_H */
