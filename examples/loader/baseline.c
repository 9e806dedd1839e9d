/* baseline.c: the same work as the pool's, done in this process: read,
 * verify, transform and check each result at once. The summary compares
 * the two runs' records/s.
 */
#include "loader.h"

#include <stdlib.h>
#include <string.h>

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

int baseline_run(struct console *con, const struct dataset *ds, int carry,
                 struct collector *c, double *seconds)
{
    struct reader rd;
    struct local l;
    struct sink sk;
    char err[ERR_BYTES];
    unsigned long s;
    double t0;

    if (collector_init(c, ds, carry) != 0) {
        say(con, "out of memory");
        return -1;
    }
    memset(&rd, 0, sizeof rd);
    rd.ds = ds;
    rd.carry = carry;
    l.c = c;
    l.buf = malloc(sizeof(struct result) + ds->item_bytes);
    sk.reserve = local_reserve;
    sk.commit = local_commit;
    sk.ctx = &l;
    if (l.buf == NULL || reader_setup(&rd) != 0) {
        free(l.buf);
        say(con, "out of memory for the in-process run");
        return -1;
    }
    t0 = now_s();
    for (s = 0; s < ds->shards; s++) {
        if (!shard_mine(ds, s)) {
            continue; /* another rank's */
        }
        if (read_shard(&rd, s, &sk, err, sizeof err) != 0) {
            c->st[s].status = SHARD_FAILED; /* the same as the workers' */
        }
    }
    *seconds = now_s() - t0;
    free(rd.buf);
    free(l.buf);
    return 0;
}
