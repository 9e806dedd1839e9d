/* rank.c: ranks and seeds. Reads the launcher's rank and world size from
 * the environment (subiter_env_rank()), draws a pool's seed, and derives
 * each worker's seed from (seed, rank, worker, iteration). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* splitmix64's output function (Steele, Lea, Flood 2014): a bijection
 * with full avalanche, so inputs that differ in one bit give unrelated
 * seeds, and distinct inputs never collide. */
static uint64_t splitmix64(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

uint64_t subiter__seed_of(const struct subiter__ident *id, uint64_t iteration)
{
    uint64_t x = splitmix64(id->seed);

    /* Chained: each step is a bijection of the previous state plus one
     * component, so for the same prefix two different components give
     * two different seeds. The global shard already names the rank;
     * the rank is mixed in on its own for worlds of different sizes. */
    x = splitmix64(x + id->rank);
    x = splitmix64(x + id->worker_id);
    return splitmix64(x + iteration);
}

uint64_t subiter__draw_seed(void)
{
    uint64_t s = 0;
    struct timespec ts;

    if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s) {
        /* No entropy yet (early boot) or no getrandom: the clock and the
         * pid still make runs differ. */
        clock_gettime(CLOCK_REALTIME, &ts);
        s = splitmix64((uint64_t)ts.tv_sec * UINT64_C(1000000000) +
                       (uint64_t)ts.tv_nsec + ((uint64_t)getpid() << 40));
    }
    return s != 0 ? s : 1;
}

int subiter__parse_uint(const char **s, char end, unsigned max, unsigned *out)
{
    const char *p = *s;
    unsigned long long v = 0;

    if (*p < '0' || *p > '9') {
        return -EINVAL;
    }
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (unsigned)(*p - '0');
        if (v > max) {
            return -EINVAL;
        }
    }
    if (*p != end) {
        return -EINVAL;
    }
    *s = p + 1;
    *out = (unsigned)v;
    return 0;
}

/* A whole decimal number below 2^32: 0, or -EINVAL. */
static int parse_unsigned(const char *s, unsigned *out)
{
    return subiter__parse_uint(&s, '\0', UINT32_MAX, out);
}

int subiter_env_rank(unsigned *rank, unsigned *world_size)
{
    /* DESIGN.md's order: Open MPI, MPICH and Intel MPI, srun, torchrun. */
    static const char *const vars[][2] = {
        {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"},
        {"PMI_RANK", "PMI_SIZE"},
        {"SLURM_PROCID", "SLURM_NTASKS"},
        {"RANK", "WORLD_SIZE"},
    };
    unsigned i, r, n;

    if (rank == NULL || world_size == NULL) {
        return -EINVAL;
    }
    *rank = 0;
    *world_size = 1;
    for (i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *rs = getenv(vars[i][0]);
        const char *ns = getenv(vars[i][1]);

        if (rs == NULL || ns == NULL) {
            continue; /* only a complete pair counts */
        }
        if (parse_unsigned(rs, &r) < 0 || parse_unsigned(ns, &n) < 0 ||
            n == 0 || r >= n) {
            return -EINVAL;
        }
        *rank = r;
        *world_size = n;
        return 1;
    }
    return 0;
}
