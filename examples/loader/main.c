/* main.c: the loader, a small data-loading pipeline. A pool of worker
 * processes (subiter_pool) reads record files, verifies and transforms
 * every record, and streams the results to the parent, which checks them;
 * then the same work is done in-process for comparison.
 *
 * One file a step, in the order main() takes them:
 *
 *     options.c    the command line
 *     dataset.c    the shard files: their format; made once, then reused
 *     generate.c   writing them
 *     pipeline.c   the run on the pool: the workers' generator, and the
 *                  parent that starts the pool again after a failure
 *     reader.c     reading, verifying and transforming one shard file
 *     collector.c  the parent's checks on every result
 *     baseline.c   the same work in this process
 *     resume.c     --resume: saving and loading where the run is
 *     report.c     the summary
 *     console.c    messages and progress on stderr; the clocks
 *     crc32.c      the records' checksum
 *
 *     ./loader                         generate (once), load, compare
 *     ./loader --workers 4 --records 1000000 --item-bytes 256
 *     ./loader --corrupt               cut one shard short: exit status 1
 *     ./loader --resume ck             Ctrl-C saves to ck; run again to go on
 *     mpirun -np 2 ./loader            each rank reads half of the shards
 *
 * Exit status: 0 when every shard was read and checked, 1 when any failed
 * (or the dataset could not be made), 2 on bad arguments, 130 after Ctrl-C
 * with --resume (saved).
 *
 * Build it against an installed subiter with
 *     cc -O2 -o loader *.c $(pkg-config --cflags --libs subiter)
 */
#include "loader.h"

#include <string.h>
#include <unistd.h>

/* Everything one run of the program knows. */
struct loader {
    struct console con;
    struct options opt;
    struct dataset ds;       /* the dataset as found or made */
    struct collector pool;   /* the checks on the pool's results */
    struct pool_run run;     /* the pool's timing, workers and rounds */
    struct collector inproc; /* the checks on the in-process results */
    double inproc_seconds;
};

int main(int argc, char **argv)
{
    struct loader ld;
    unsigned long failed;
    int status;

    memset(&ld, 0, sizeof ld);
    ld.con.tty = isatty(STDERR_FILENO);
    status = options_parse(&ld.opt, argc, argv);
    if (status != OPTIONS_RUN) {
        return status;
    }
    report_title(&ld.opt);
    if (dataset_prepare(&ld.con, &ld.opt, &ld.ds) != 0) {
        return 1;
    }
    if (pipeline_run(&ld.con, &ld.opt, &ld.ds, &ld.pool, &ld.run) != 0) {
        return 1;
    }
    if (ld.run.interrupted) {
        say(&ld.con,
            "interrupted after %lu records; saved to %s: run again "
            "with --resume to go on",
            ld.pool.records, ld.opt.resume_path);
        collector_free(&ld.pool);
        return 130;
    }
    if (baseline_run(&ld.con, &ld.ds, ld.opt.carry, &ld.inproc,
                     &ld.inproc_seconds) != 0) {
        return 1;
    }
    failed = report(&ld.con, &ld.pool, &ld.run, &ld.inproc, ld.inproc_seconds);
    collector_free(&ld.pool);
    collector_free(&ld.inproc);
    return failed > 0;
}
