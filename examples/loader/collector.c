/* collector.c: the parent's checks on the results of one run over the
 * dataset: the order and count of each shard's records, the byte sum of
 * every payload and, for one record in 16, its CRC-32 again; and the
 * totals the summary prints.
 */
#include "loader.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CRC_SAMPLE 16 /* the parent re-checks the CRC of 1 record in 16 */

static uint64_t byte_sum_of(const unsigned char *p, size_t n)
{
    uint64_t sum = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        sum += p[i];
    }
    return sum;
}

int collector_init(struct collector *c, const struct dataset *ds, int carry)
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
        if (!shard_mine(ds, s)) {
            c->st[s].status = SHARD_ELSEWHERE;
        }
    }
    crc_table_build(c->crc_table);
    return 0;
}

void collector_free(struct collector *c)
{
    free(c->st);
    c->st = NULL;
}

/* Forget what shard s delivered: it is going to be read again. */
void shard_reset(struct collector *c, unsigned long s)
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
int check_item(struct collector *c, const void *data, size_t len,
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
