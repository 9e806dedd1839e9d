/* report.c: what the loader prints on stdout about its runs: the title
 * line, then the summary of the run on the pool against the in-process
 * one. The README and CI read some of these lines: keep their words.
 */
#include "loader.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

void report_title(const struct options *opt)
{
    printf("subiter %s loader: a pool of worker processes, %s\n",
           subiter_version(),
           opt->order == SUBITER_POOL_ORDERED ? "ordered" : "unordered");
}

/* Workers and in-process must agree on every shard they both finished. */
static int compare_runs(struct console *con, const struct collector *a,
                        const struct collector *b)
{
    unsigned long s;

    for (s = 0; s < a->ds->shards; s++) {
        if (a->st[s].status == SHARD_LOST ||
            a->st[s].status == SHARD_ELSEWHERE) {
            continue; /* not the data's fault, or another rank's */
        }
        if (a->st[s].status != b->st[s].status ||
            a->st[s].got != b->st[s].got) {
            say(con,
                "shard-%03lu.rec: the workers and the in-process run "
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
    unsigned long s, failed = 0, crc_checked = 0, mine = 0, records = 0;
    double mb, mean = 0, var = 0, hist[HIST_BINS], dev = 0, d;
    int b;

    memset(hist, 0, sizeof hist);
    for (s = 0; s < ds->shards; s++) {
        if (c->st[s].status == SHARD_ELSEWHERE) {
            continue;
        }
        mine++;
        records += c->st[s].expected;
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
           c->records, records, crc_checked);
    if (ds->world > 1) {
        printf("rank:        %u of %u (%lu of the %lu shards)\n", ds->rank,
               ds->world, mine, ds->shards);
    }
    printf("shards:      %lu of %lu complete", mine - failed, mine);
    if (failed > 0) {
        printf(", %lu failed:", failed);
        for (s = 0; s < ds->shards; s++) {
            if (c->st[s].status != SHARD_OK &&
                c->st[s].status != SHARD_ELSEWHERE) {
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

unsigned long report(struct console *con, const struct collector *c,
                     const struct pool_run *run, const struct collector *inproc,
                     double t_local)
{
    unsigned long failed = summary(c, inproc, run->seconds, t_local);

    printf("workers:     %u (pids %s%s), %lu round%s, %llu replaced\n",
           run->workers, run->pids, run->pids_cut ? " ..." : "", run->rounds,
           run->rounds == 1 ? "" : "s (after a failure, the shards left)",
           run->replaced);
    /* The workers are reaped: RUSAGE_CHILDREN holds their CPU time. */
    printf("cpu:         %.3f s in the workers, %.3f s in this process\n",
           cpu_s(RUSAGE_CHILDREN), run->cpu);
    if (compare_runs(con, c, inproc) != 0) {
        failed++;
    }
    return failed;
}
