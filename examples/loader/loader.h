/* loader.h: what the loader's files share: the dataset's shape, the result
 * a worker sends for each record, the parent's checks, and one function
 * list per file. Include it first: it sets the feature macros.
 */
#ifndef LOADER_H
#define LOADER_H

#ifdef HAVE_CONFIG_H
#include "config.h"
#else
#define _GNU_SOURCE 1
#endif

#include <stddef.h>
#include <stdint.h>

#include <subiter.h>

/* The shard file format: dataset.c describes it. */
#define FILE_MAGIC 0x44524853u /* "SHRD" in little-endian byte order */
#define FILE_VERSION 1u
#define FILE_HEADER_BYTES 32u
#define REC_MAGIC 0x31434552u /* "REC1" */
#define REC_HEADER_BYTES 24u

#define READ_BYTES ((size_t)1 << 20)
#define DIR_MAX 3000 /* leaves room for the file name in error messages */
#define PATH_BYTES (DIR_MAX + 64)
#define ERR_BYTES (PATH_BYTES + 512)
#define HIST_BINS 16

#define DEFAULT_RECORDS 200000ul
#define DEFAULT_ITEM_BYTES 1024ul
#define DEFAULT_SHARDS 8ul /* or --workers, if larger */
#define MAX_RECORDS 100000000ul
#define MAX_ITEM_BYTES (1ul << 20)
#define MAX_WORKERS 256ul
#define MAX_SHARDS 1000ul
#define MAX_DATASET_BYTES ((uint64_t)64 << 30)
#define DEFAULT_CKPT_EVERY 10000ul /* results between --resume saves */

/* The dataset, as the manifest describes it. */
struct dataset {
    char dir[DIR_MAX + 1];
    unsigned long records;
    unsigned long item_bytes;
    unsigned long shards;
    long corrupt;         /* the shard --corrupt cut short, or -1 */
    unsigned rank, world; /* under a launcher: this process reads the
                             shards s with s % world == rank */
};

/* ------------------------------------------------------------ console.c */

/* stderr, where a progress line may be showing. */
struct console {
    int tty;            /* stderr is a terminal: progress lines are shown */
    int progress_shown; /* one is there now, with no newline after it */
};

/* A message on stderr ("loader: ..."), on a line of its own. */
void say(struct console *con, const char *fmt, ...) SUBITER_PRINTF(2, 3);
/* Clear the progress line, if one is showing. */
void progress_clear(struct console *con);

/* Seconds on the monotonic clock. */
double now_s(void);
/* CPU time (user + system) of RUSAGE_SELF or RUSAGE_CHILDREN. */
double cpu_s(int who);

/* -------------------------------------------------------------- crc32.c */

void crc_table_build(uint32_t table[256]);
/* CRC-32 (IEEE 802.3), as zlib's crc32(0, p, n). */
uint32_t crc32_of(const uint32_t table[256], const unsigned char *p, size_t n);

/* ------------------------------------------------------------ options.c */

/* What the command line asks for. */
struct options {
    struct dataset want;   /* want.corrupt: 0 for --corrupt, else -1 */
    unsigned long workers; /* 0: one per CPU */
    int order;             /* SUBITER_POOL_ORDERED or _UNORDERED */
    int carry;             /* 1: results carry the payload (no --no-payload) */
    int shards_given;      /* --shards: an existing dataset must match it */
    int regenerate;
    const char *resume;           /* --resume FILE, or NULL */
    unsigned long ckpt_every;     /* --checkpoint-every N results */
    char resume_path[PATH_BYTES]; /* FILE, or FILE.RANK under a launcher */
};

/* options_parse() returns this when the program goes on. */
#define OPTIONS_RUN (-1)

/* Fill *opt from argv: OPTIONS_RUN, or the exit status when the program
 * is done (0 after --help, 2 after a message on bad arguments). */
int options_parse(struct options *opt, int argc, char **argv);

/* ------------------------------------------------------------ dataset.c */

unsigned long shard_first(const struct dataset *ds, unsigned long s);
unsigned long shard_count(const struct dataset *ds, unsigned long s);
uint64_t record_bytes(const struct dataset *ds);
void shard_path(const struct dataset *ds, unsigned long s, char *path,
                size_t size);

/* Make or find in opt->want.dir the dataset opt asks for, and describe it
 * in *ds. 0, or -1 after a message. */
int dataset_prepare(struct console *con, const struct options *opt,
                    struct dataset *ds);

/* ----------------------------------------------------------- generate.c */

/* Write shards [from, to) of ds; 0, or -1 after a message. */
int shards_generate(struct console *con, const struct dataset *ds,
                    unsigned long from, unsigned long to);

/* ------------------------------------------------------------- reader.c */

/* What a worker uses to read shards; reader_setup() sets up buf. */
struct reader {
    const struct dataset *ds;
    int carry;             /* 1: results carry the payload */
    unsigned char *buf;    /* the read buffer: unread bytes in [lo, hi) */
    size_t cap, lo, hi;    /* capacity, start and end of the unread data */
    unsigned long long at; /* file offset of buf[lo] */
    uint32_t crc_table[256];
};

/* RESULT_SHARD_FAILED: the shard is bad, the generator fails next. */
enum { RESULT_RECORD = 1, RESULT_SHARD_END = 2, RESULT_SHARD_FAILED = 3 };

/* One result, followed in the item by payload_len bytes of payload. */
struct result {
    uint32_t kind;         /* RESULT_RECORD, _SHARD_END or _FAILED */
    uint32_t shard;        /* the shard it comes from */
    uint64_t index;        /* record: its index; end: records in the shard */
    uint64_t byte_sum;     /* sum of the payload's bytes (end: the shard's) */
    uint32_t crc;          /* record: CRC-32 of the payload, verified */
    uint32_t payload_len;  /* bytes of payload after the struct (or 0) */
    float mean;            /* mean of the payload bytes / 255 */
    float variance;        /* their variance / 255^2 */
    float hist[HIST_BINS]; /* fraction of the bytes in each 16-value bin */
};

_Static_assert(sizeof(struct result) == 104, "struct result has no padding");

/*
 * Where read_shard() puts its results: the ring (in a worker) or a local
 * buffer checked at once (in-process). reserve() gives room for len bytes
 * (0, SUBITER_STOPPED or < 0); commit() publishes them (0 or < 0 with a
 * message in err).
 */
struct sink {
    int (*reserve)(void *ctx, size_t len, void **buf);
    int (*commit)(void *ctx, size_t len, char *err, size_t errlen);
    void *ctx;
};

/* Set rd up to read rd->ds: 0, or -1 out of memory. Free rd->buf after. */
int reader_setup(struct reader *rd);
/* Read shard s, a result per record and one at the end: 0;
 * SUBITER_STOPPED; or < 0 with a message naming the file in err. */
int read_shard(struct reader *rd, unsigned long s, const struct sink *sk,
               char *err, size_t errlen);

/* ---------------------------------------------------------- collector.c */

/* SHARD_LOST: the pool could not finish it (workers kept failing).
 * SHARD_ELSEWHERE: another rank's, under a launcher. */
enum {
    SHARD_PENDING = 0,
    SHARD_OK = 1,
    SHARD_FAILED = 2,
    SHARD_LOST = 3,
    SHARD_ELSEWHERE = 4
};

/* Is shard s this process's to read (always, without a launcher)? */
int shard_mine(const struct dataset *ds, unsigned long s);

/* What the parent knows of one shard while it checks its results. */
struct shard_state {
    unsigned long first, expected;  /* from the manifest */
    unsigned long got, crc_checked; /* records checked so far, CRCs again */
    uint64_t byte_sum;              /* their byte sum */
    double mean_sum, var_sum, hist_sum[HIST_BINS]; /* their features */
    int status;                                    /* SHARD_PENDING, ... */
};

/* The parent's checks for one run over the dataset. */
struct collector {
    const struct dataset *ds;
    int carry;
    struct shard_state *st;
    unsigned long records; /* checked so far, in every shard */
    uint32_t crc_table[256];
};

/* 0, or -1 out of memory; collector_free() after either. */
int collector_init(struct collector *c, const struct dataset *ds, int carry);
void collector_free(struct collector *c);
/* Forget what shard s delivered: it is going to be read again. */
void shard_reset(struct collector *c, unsigned long s);
/* Check one result: RESULT_*, or -1 with a message in err. */
int check_item(struct collector *c, const void *data, size_t len,
               unsigned long *shard, char *err, size_t errlen);

/* ----------------------------------------------------------- pipeline.c */

/* How the run on the pool went, besides what its collector checked. */
struct pool_run {
    double seconds;       /* from opening the pool to closing it */
    double cpu;           /* this process's CPU time over those seconds */
    unsigned long rounds; /* pool starts: more after a failure */
    unsigned workers;
    unsigned long long replaced; /* workers that died and were replaced */
    char pids[128];              /* the workers' pids, space-separated */
    int pids_cut;                /* 1: more pids than fit in pids */
    int interrupted;             /* Ctrl-C: saved to --resume, stopped */
    int resumed;                 /* started from the --resume file */
};

/* Read and check every shard on a pool of workers. 0, or -1 after a
 * message if the pool could not be opened or c set up. */
int pipeline_run(struct console *con, const struct options *opt,
                 const struct dataset *ds, struct collector *c,
                 struct pool_run *run);

/* ------------------------------------------------------------- resume.c */

/* Ctrl-C sets a flag that resume_interrupted() reads, instead of ending
 * the process. */
void resume_catch_sigint(void);
int resume_interrupted(void);
/* Save the pool's checkpoint, the round's list and c's checks to path:
 * 0, or -1 after a message. */
int resume_save(struct console *con, const char *path,
                const struct collector *c, const uint32_t *list,
                unsigned long n, const subiter_pool *p);
/* Load them: 1 loaded (c's checks restored), 0 no file, -1 after a
 * message (another dataset, or a damaged file). */
int resume_load(struct console *con, const char *path, struct collector *c,
                uint32_t *list, unsigned long *n, unsigned char *ck, size_t cap,
                size_t *ck_len);

/* ----------------------------------------------------------- baseline.c */

/* The same work in this process, checked by c, taking *seconds. 0, or -1
 * after a message if memory ran out. */
int baseline_run(struct console *con, const struct dataset *ds, int carry,
                 struct collector *c, double *seconds);

/* ------------------------------------------------------------- report.c */

/* Print the program's title line, before anything else. */
void report_title(const struct options *opt);
/* Print the summary of both runs and compare them: the number of shards
 * not read in full, plus one if the runs disagree. */
unsigned long report(struct console *con, const struct collector *c,
                     const struct pool_run *run, const struct collector *inproc,
                     double t_local);

#endif
