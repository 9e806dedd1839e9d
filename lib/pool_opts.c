/* pool_opts.c: a pool's options, read once at open: the user's struct
 * (any size from 0.1's on), its workers' options checked in full (so that
 * every error names its field, and replacements never see an unknown
 * one), the defaults and what the environment gives (ranks, CPUs), then
 * every limit, each -EINVAL naming the field and its limit in errmsg. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <unistd.h>

#include "pool.h"

/* Every -EINVAL names the field and its limit in errmsg. */
static int check_pool_opts(subiter_pool *p)
{
    const subiter_pool_opts *o = &p->o;

    if (o->workers > 4096) {
        return pool__fail(p, -EINVAL, "opts.workers: %u is over the 4096 limit",
                          o->workers);
    }
    if (o->min_workers > o->workers) {
        return pool__fail(p, -EINVAL,
                          "opts.min_workers: %u is over opts.workers (%u)",
                          o->min_workers, o->workers);
    }
    /* world_size 0 was resolved from the environment before this. */
    if (o->rank >= o->world_size) {
        return pool__fail(p, -EINVAL,
                          "opts.rank: %u is not below opts.world_size (%u)",
                          o->rank, o->world_size);
    }
    if (o->world_size > UINT32_MAX / o->workers) {
        return pool__fail(p, -EINVAL,
                          "opts.world_size: %u times %u workers is over "
                          "%u shards",
                          o->world_size, o->workers, UINT32_MAX);
    }
    if (o->order != SUBITER_POOL_ORDERED &&
        o->order != SUBITER_POOL_UNORDERED) {
        return pool__fail(p, -EINVAL,
                          "opts.order: %d is neither SUBITER_POOL_ORDERED "
                          "(%d) nor SUBITER_POOL_UNORDERED (%d)",
                          o->order, SUBITER_POOL_ORDERED,
                          SUBITER_POOL_UNORDERED);
    }
    if (o->queue_max == 0) {
        return pool__fail(p, -EINVAL, "opts.queue_max: 0 is below 1");
    }
    if (o->idle_ms < 0) {
        return pool__fail(p, -EINVAL, "opts.idle_ms: %d is negative",
                          o->idle_ms);
    }
    if (o->restart_shards != 0 && o->restart_shards != 1) {
        return pool__fail(p, -EINVAL,
                          "opts.restart_shards: %d is neither 0 nor 1",
                          o->restart_shards);
    }
    return 0;
}

int pool__read_opts(subiter_pool *p, const subiter_pool_opts *user)
{
    subiter_pool_opts d = SUBITER_POOL_OPTS_INIT;
    subiter_opts wd = SUBITER_OPTS_INIT, check;
    char msg[256];
    long cpus;
    int r;

    p->o = d;
    p->wopts = wd;
    /* Each worker runs further ahead than a lone one: an ordered merge
     * waits for one worker while the others fill up, and a wake-up per
     * 16 items (the lone default's hysteresis) costs more than the items
     * when workers and parent share the cores. */
    p->wopts.buffer_items = SUBITER_POOL_DEFAULT_BUFFER_ITEMS;
    if (user != NULL) {
        r = subiter__opts_copy(&p->o, sizeof p->o, user, SUBITER__POOL_OPTS_V1);
        if (r == -EINVAL) {
            return pool__fail(p, -EINVAL, "opts.size: %zu is below %zu",
                              user->size, SUBITER__POOL_OPTS_V1);
        }
        if (r < 0) {
            return pool__fail(p, -EINVAL,
                              "opts.size: %zu, and the %zu bytes past the "
                              "%zu this version knows are not all zero",
                              user->size, user->size - sizeof *user,
                              sizeof *user);
        }
        p->o.size = sizeof *user;
    }
    if (p->o.worker != NULL) {
        /* Only the known fields are copied (for the replacements), so
         * the unknown ones are checked here: the workers' opens never see
         * them; and every field, so that the error names it. */
        r = subiter__read_opts(&check, p->o.worker, "opts.worker->", msg,
                               sizeof msg);
        if (r < 0) {
            return pool__fail(p, r, "%s", msg);
        }
        p->wopts = *p->o.worker;
        p->wopts.size = sizeof p->wopts;
        p->o.worker = NULL;
    }
    if (p->o.world_size == 0 &&
        subiter_env_rank(&p->o.rank, &p->o.world_size) < 0) {
        return pool__fail(p, -EINVAL,
                          "opts.world_size 0: the launcher's rank or size "
                          "in the environment is not a number, or rank >= "
                          "size (see subiter_env_rank())");
    }
    if (p->o.seed == 0) {
        p->o.seed = subiter__draw_seed();
    }
    if (p->o.workers == 0) {
        cpus = sysconf(_SC_NPROCESSORS_ONLN);
        p->o.workers = cpus > 0 ? (unsigned)cpus : 1;
    }
    if (p->o.min_workers == 0) {
        p->o.min_workers = p->o.workers;
    }
    r = check_pool_opts(p);
    if (r < 0) {
        return r;
    }
    p->timeout_ms = p->wopts.timeout_ms > 0 ? p->wopts.timeout_ms : 0;
    return 0;
}
