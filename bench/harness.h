/* harness.h: what every measurement of subiter-bench shares: the
 * configuration read from the command line (struct bench_cfg, fixed once
 * parsed), the state of one run (struct bench: buffers, the consumer's
 * sink, the last error, the watchdog), output, timing, statistics and the
 * helpers for child processes. There is no mutable global: each function
 * gets the run's state as its first argument, and each generator finds
 * what it needs through its `arg`.
 */
#ifndef SUBITER_BENCH_HARNESS_H
#define SUBITER_BENCH_HARNESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#include "subiter.h"

#define KIB ((size_t)1 << 10)
#define MIB ((size_t)1 << 20)
#define MAX_ITEM (4 * MIB)
#define MAX_REPS 99
#define PB_SLACK 64 /* protobuf-c framing around a payload, generously */
#define WATCHDOG_S 120

/* The command line's choices and what follows from them. */
struct bench_cfg {
    bool quick;
    bool tty; /* progress lines on stderr */
    int reps;
    int lat_reps;
    double target_s; /* wall time one throughput run aims at */
    double idle_s;   /* how long the idle benches block */
    int death_reps;  /* deaths per bench=death variant */
    int pd_reps;     /* parent deaths per bench=parent_death state */
    const char *filter;
    bool contention; /* only bench=contention, under CPU hogs */
};

/* One run of the bench: what changes as the measurements go. */
struct bench {
    const struct bench_cfg *cfg;
    unsigned char *hot;  /* the producer's hot buffer, MAX_ITEM bytes */
    unsigned char *rbuf; /* pipe receive / memcpy destination buffer */
    unsigned char *wbuf; /* pipe_pb's send buffer */
    size_t rbuf_size;
    uint64_t sink; /* the consumer's accumulator, printed at the end */
    /* A MAP_SHARED word where a worker (subiter's or a pipe child) leaves
     * its cumulative CPU time (getrusage(RUSAGE_SELF), ns) at the end of
     * each iteration: workers live across repetitions, so
     * RUSAGE_CHILDREN, which counts only reaped children, cannot split
     * their time per repetition. */
    _Atomic uint64_t *child_cpu_ns;
    int n_done; /* measurements printed */
    double t_begin;
    char errbuf[512];
    timer_t watchdog;
    char watch_label[256]; /* read by the watchdog's signal handler */
};

/* Parse the command line into *cfg. Returns -1 to go on, else the status
 * to exit with (after --help, or a usage error). */
int bench_parse_args(struct bench_cfg *cfg, int argc, char **argv);

/* Allocate and fault in the buffers, map the shared CPU word, arm the
 * watchdog's signal; 0, or -1 after a message on stderr. */
int bench_init(struct bench *b, const struct bench_cfg *cfg);
void bench_fini(struct bench *b);

/* ------------------------------------------------------------ output */

void out(struct bench *b, const char *fmt, ...) SUBITER_PRINTF(2, 3);
void progress(struct bench *b, const char *label);
bool selected(const struct bench *b, const char *label);

void set_error(struct bench *b, const char *fmt, ...) SUBITER_PRINTF(2, 3);
void set_subiter_error(struct bench *b, const char *what, subiter *it, int r);
void set_pool_error(struct bench *b, const char *what, subiter_pool *p, int r);
int close_handle(struct bench *b, subiter **it);

/* The watchdog: a hang ends the run with a message naming the
 * measurement instead of blocking `make bench` forever. watch() names the
 * measurement and arms it, rewatch() arms it again for the next step,
 * unwatch() disarms it. */
void watch(struct bench *b, const char *label);
void rewatch(struct bench *b);
void unwatch(struct bench *b);

/* ------------------------------------------------ timing, statistics */

double now_s(void);
int64_t now_ns(void);
double cpu_s(int who);
void sleep_s(double s);
double median(double *v, int n); /* sorts v */
uint64_t round2(double x);

/* In a worker: publish its CPU time so far in *word. The parent reads it
 * after a message that the worker sent later (an item, the end). */
void mark_cpu(_Atomic uint64_t *word);
double read_cpu(_Atomic uint64_t *word);

/* A MAP_SHARED anonymous mapping of len zeroed bytes, or NULL. */
void *map_shared(size_t len);

/* ------------------------------------------------- producer, consumer */

enum consume { CONSUME_NONE, CONSUME_TOUCH, CONSUME_READ };

/* The generator's per-item work on its hot buffer: stamp the index. */
static inline void stamp(unsigned char *p, size_t len, uint64_t i)
{
    if (len >= sizeof i) {
        memcpy(p, &i, sizeof i);
    } else if (len > 0) {
        p[0] = (unsigned char)i;
    }
}

/* touch: the first and last byte (a view costs nothing); read: every
 * byte, summed as 64-bit words. */
static inline void consume(uint64_t *sink, const void *data, size_t len,
                           enum consume how)
{
    const unsigned char *p = data;

    if (len == 0) {
        return;
    }
    if (how == CONSUME_TOUCH) {
        *sink += (uint64_t)p[0] + p[len - 1];
    } else if (how == CONSUME_READ) {
        uint64_t s = 0, w;
        size_t i;

        for (i = 0; i + sizeof w <= len; i += sizeof w) {
            memcpy(&w, p + i, sizeof w);
            s += w;
        }
        for (; i < len; i++) {
            s += p[i];
        }
        *sink += s;
    }
}

/* ---------------------------------------------------- child processes */

ssize_t read_full(int fd, void *buf, size_t len);
int writev_full(int fd, struct iovec *iov, int cnt);
int write_full(int fd, const void *buf, size_t len);
int reap(struct bench *b, pid_t pid, const char *what);
int wait_status(struct bench *b, pid_t pid, const char *what);
int open_pidfd(pid_t pid);
bool wait_asleep(pid_t pid, pid_t tid, double limit_s);

#endif
