/* options.c: the loader's command line: its options, their limits and
 * defaults, and --help.
 */
#include "loader.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define USAGE                                                                  \
    "usage: loader [--workers N] [--unordered] [--dir DIR] [--records N]\n"    \
    "              [--item-bytes N] [--shards N] [--no-payload] [--corrupt]\n" \
    "              [--regenerate] [--resume FILE [--checkpoint-every N]]\n"

/* Bad arguments: say why, then how to ask for help; exit status 2. */
static int bad_usage(const char *why, const char *arg)
{
    fprintf(stderr, "loader: %s '%s'\n", why, arg);
    fputs(USAGE "Try 'loader --help' for more.\n", stderr);
    return 2;
}

static void usage(void)
{
    printf(USAGE
           "\n"
           "A data-loading pipeline: a pool of worker processes (subiter)\n"
           "reads shard files of checksummed records, verifies and\n"
           "transforms each record and streams the results to this\n"
           "process, which checks them; then the same work is done\n"
           "in-process to compare. The dataset is generated in DIR first\n"
           "unless it is already there.\n"
           "\n"
           "  --workers N     worker processes, 1..%lu (default: one per\n"
           "                  CPU; at most one per shard)\n"
           "  --unordered     take results from whichever worker has one\n"
           "                  (default: round robin, the same order every\n"
           "                  run)\n"
           "  --dir DIR       dataset directory, created if missing\n"
           "                  (default $TMPDIR/subiter-loader-data, or\n"
           "                  /tmp/subiter-loader-data)\n"
           "  --records N     records in the dataset, 1..%lu (default %lu)\n"
           "  --item-bytes N  payload bytes per record, 1..%lu (default "
           "%lu)\n"
           "  --shards N      shard files, 1..%lu (default %lu, or\n"
           "                  --workers if larger; an existing dataset\n"
           "                  keeps its own unless this is given)\n"
           "  --no-payload    send only each record's features, not its\n"
           "                  payload\n"
           "  --corrupt       cut the middle shard file short, to show how a\n"
           "                  bad file is reported (the next run without it\n"
           "                  makes that shard again)\n"
           "  --regenerate    generate the dataset even if it is there\n"
           "  --resume FILE   save where the run is to FILE every\n"
           "                  --checkpoint-every results and on Ctrl-C\n"
           "                  (then exit 130), and go on from FILE if it\n"
           "                  is there; removed once every shard is read\n"
           "  --checkpoint-every N  results between saves, 1..%lu\n"
           "                  (default %lu)\n"
           "  --help          show this help\n"
           "\n"
           "Under a launcher (mpirun, srun, torchrun: subiter_env_rank())\n"
           "each process reads the shards s with s %% size == rank, and\n"
           "--resume FILE becomes FILE.RANK. Make the dataset first with\n"
           "one run: the ranks would all write it at once.\n"
           "\n"
           "An existing dataset is reused when its manifest matches\n"
           "--records, --item-bytes (and --shards, if given); otherwise it\n"
           "is made again. Cutting a shard file by hand (truncate -s -100\n"
           "DIR/shard-003.rec) is reported the same way as --corrupt.\n"
           "\n"
           "Exit status: 0 when every shard was read and checked, 1 when any\n"
           "failed, 2 on bad arguments.\n",
           MAX_WORKERS, MAX_RECORDS, DEFAULT_RECORDS, MAX_ITEM_BYTES,
           DEFAULT_ITEM_BYTES, MAX_SHARDS, DEFAULT_SHARDS, MAX_RECORDS,
           DEFAULT_CKPT_EVERY);
}

/* Parse a decimal number in [1, max]; 0 on success. */
static int parse_ulong(const char *opt, const char *s, unsigned long max,
                       unsigned long *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (*s < '0' || *s > '9' || *end != '\0' || errno == ERANGE || v < 1 ||
        v > max) {
        fprintf(stderr, "loader: %s: '%s' is not a number from 1 to %lu\n", opt,
                s, max);
        return -1;
    }
    *out = v;
    return 0;
}

/* The dataset directory: --dir, or the default; OPTIONS_RUN or 2. */
static int set_dir(struct dataset *ds, const char *dir)
{
    const char *tmp;

    if (dir == NULL) {
        tmp = getenv("TMPDIR");
        snprintf(ds->dir, sizeof ds->dir, "%s/subiter-loader-data",
                 tmp != NULL && *tmp == '/' && strlen(tmp) < DIR_MAX - 32
                     ? tmp
                     : "/tmp");
    } else if (*dir == '\0' || strlen(dir) > DIR_MAX) {
        return bad_usage("--dir: not a usable directory name", dir);
    } else {
        snprintf(ds->dir, sizeof ds->dir, "%s", dir);
    }
    return OPTIONS_RUN;
}

/* The launcher's rank and size, and the resume file's name for this
 * rank; OPTIONS_RUN or 2. */
static int set_rank(struct options *opt)
{
    if (subiter_env_rank(&opt->want.rank, &opt->want.world) < 0) {
        fprintf(stderr, "loader: the launcher's rank or size in the "
                        "environment is not a number, or rank >= size\n");
        return 2;
    }
    if (opt->resume != NULL) {
        if (opt->want.world > 1) {
            snprintf(opt->resume_path, sizeof opt->resume_path, "%s.%u",
                     opt->resume, opt->want.rank);
        } else {
            snprintf(opt->resume_path, sizeof opt->resume_path, "%s",
                     opt->resume);
        }
    }
    return OPTIONS_RUN;
}

int options_parse(struct options *opt, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"workers", required_argument, NULL, 'w'},
        {"unordered", no_argument, NULL, 'u'},
        {"dir", required_argument, NULL, 'd'},
        {"records", required_argument, NULL, 'r'},
        {"item-bytes", required_argument, NULL, 'b'},
        {"shards", required_argument, NULL, 's'},
        {"no-payload", no_argument, NULL, 'n'},
        {"corrupt", no_argument, NULL, 'c'},
        {"regenerate", no_argument, NULL, 'g'},
        {"resume", required_argument, NULL, 'R'},
        {"checkpoint-every", required_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct dataset *ds = &opt->want;
    const char *dir = NULL;
    int o, corrupt = 0;

    memset(opt, 0, sizeof *opt);
    ds->records = DEFAULT_RECORDS;
    ds->item_bytes = DEFAULT_ITEM_BYTES;
    ds->shards = DEFAULT_SHARDS;
    opt->order = SUBITER_POOL_ORDERED;
    opt->carry = 1;
    opt->ckpt_every = DEFAULT_CKPT_EVERY;
    opterr = 0; /* the messages below name the program, not its path */
    while ((o = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (o) {
        case 'w':
            if (parse_ulong("--workers", optarg, MAX_WORKERS, &opt->workers)) {
                return 2;
            }
            break;
        case 'u':
            opt->order = SUBITER_POOL_UNORDERED;
            break;
        case 'd':
            dir = optarg;
            break;
        case 'r':
            if (parse_ulong("--records", optarg, MAX_RECORDS, &ds->records)) {
                return 2;
            }
            break;
        case 'b':
            if (parse_ulong("--item-bytes", optarg, MAX_ITEM_BYTES,
                            &ds->item_bytes)) {
                return 2;
            }
            break;
        case 's':
            if (parse_ulong("--shards", optarg, MAX_SHARDS, &ds->shards)) {
                return 2;
            }
            opt->shards_given = 1;
            break;
        case 'n':
            opt->carry = 0;
            break;
        case 'c':
            corrupt = 1;
            break;
        case 'g':
            opt->regenerate = 1;
            break;
        case 'R':
            if (*optarg == '\0' || strlen(optarg) > DIR_MAX) {
                return bad_usage("--resume: not a usable file name", optarg);
            }
            opt->resume = optarg;
            break;
        case 'e':
            if (parse_ulong("--checkpoint-every", optarg, MAX_RECORDS,
                            &opt->ckpt_every)) {
                return 2;
            }
            break;
        case 'h':
            usage();
            return 0;
        default:
            return bad_usage(optopt == 0 || o == ':' ? "bad option"
                                                     : "unknown option",
                             argv[optind - 1]);
        }
    }
    if (optind < argc) {
        return bad_usage("unexpected argument", argv[optind]);
    }
    if (!opt->shards_given && opt->workers > ds->shards) {
        ds->shards = opt->workers;
    }
    if (set_dir(ds, dir) != OPTIONS_RUN) {
        return 2;
    }
    if (record_bytes(ds) * ds->records > MAX_DATASET_BYTES) {
        fprintf(stderr,
                "loader: %lu records of %lu bytes: more than the %llu GiB "
                "this demo writes\n",
                ds->records, ds->item_bytes,
                (unsigned long long)(MAX_DATASET_BYTES >> 30));
        return 2;
    }
    ds->corrupt = corrupt ? 0 : -1;
    return set_rank(opt);
}
