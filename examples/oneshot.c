/* oneshot.c: runs one function in a worker process with a time limit and
 * gets back its result or its failure.
 *
 * The function counts the primes below N (a segmented sieve of
 * Eratosthenes). The parent sends N as the iteration's input; the worker
 * yields exactly one item, the count, and returns. With opts.timeout_ms
 * set, a worker that takes longer is killed (SIGKILL) and reaped, and the
 * parent gets SUBITER_ETIMEDOUT; a worker that crashes gives
 * SUBITER_ECHILD with the signal; a function that reports a failure with
 * subiter_fail() gives SUBITER_EITER with its message. Whatever happens,
 * no process is left behind.
 *
 *     ./oneshot 100000000                  the count, and how long it took
 *     ./oneshot 200000000 --limit-ms 50    killed after 50 ms: exit 1
 *     ./oneshot 1000 --crash               the worker dies of SIGSEGV: exit 1
 *
 * Build it against an installed subiter with
 *     cc -O2 oneshot.c $(pkg-config --cflags --libs subiter)
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#else
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <subiter.h>

#define MAX_N 1000000000000ull /* 10^12: about an hour; that is the point */
#define MAX_LIMIT_MS 86400000ul
#define DEFAULT_LIMIT_MS 10000ul
#define SEGMENT_BYTES (256u * 1024u)

/* What the worker is asked to do; passed by value as the input bytes. */
struct job {
    uint64_t n;     /* count the primes below n */
    uint32_t crash; /* 1: crash instead (to show what the parent sees) */
};

/* Integer square root: the largest r with r * r <= x. */
static uint64_t isqrt(uint64_t x)
{
    uint64_t r = 0, bit = (uint64_t)1 << 62;

    while (bit > x) {
        bit >>= 2;
    }
    while (bit != 0) {
        if (x >= r + bit) {
            x -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
        bit >>= 2;
    }
    return r;
}

/*
 * The primes p with 3 <= p <= max, in a new array (free it); their number
 * in *count. NULL when out of memory.
 */
static uint32_t *odd_primes_upto(uint32_t max, size_t *count)
{
    unsigned char *composite = calloc((size_t)max + 1, 1);
    uint32_t *primes;
    uint64_t i, j;
    size_t n = 0;

    if (composite == NULL) {
        return NULL;
    }
    for (i = 3; i * i <= max; i += 2) {
        if (!composite[i]) {
            for (j = i * i; j <= max; j += 2 * i) {
                composite[j] = 1;
            }
        }
    }
    for (i = 3; i <= max; i += 2) {
        n += !composite[i];
    }
    primes = malloc((n ? n : 1) * sizeof *primes);
    if (primes != NULL) {
        n = 0;
        for (i = 3; i <= max; i += 2) {
            if (!composite[i]) {
                primes[n++] = (uint32_t)i;
            }
        }
        *count = n;
    }
    free(composite);
    return primes;
}

/*
 * The number of primes below n, by a segmented sieve over [0, n): each
 * segment's odd multiples of the odd primes up to sqrt(n) are crossed out,
 * and the odd numbers left, from 3 on, are primes. -1 when out of memory.
 */
static int64_t count_primes_below(uint64_t n)
{
    unsigned char *seg;
    uint32_t *primes;
    size_t np, k;
    uint64_t lo, hi, m, p, count;

    if (n <= 2) {
        return 0;
    }
    primes = odd_primes_upto((uint32_t)isqrt(n - 1), &np);
    seg = malloc(SEGMENT_BYTES);
    if (primes == NULL || seg == NULL) {
        free(primes);
        free(seg);
        return -1;
    }
    count = 1; /* 2 */
    for (lo = 0; lo < n; lo += SEGMENT_BYTES) {
        hi = n - lo < SEGMENT_BYTES ? n : lo + SEGMENT_BYTES;
        memset(seg, 0, SEGMENT_BYTES);
        for (k = 0; k < np; k++) {
            p = primes[k];
            if (p * p >= hi) {
                break;
            }
            /* The first odd multiple of p in [lo, hi), from p * p on. */
            m = (lo + p - 1) / p * p;
            if (m < p * p) {
                m = p * p;
            }
            if (m % 2 == 0) {
                m += p;
            }
            for (; m < hi; m += 2 * p) {
                seg[m - lo] = 1;
            }
        }
        for (m = lo < 3 ? 3 : lo | 1; m < hi; m += 2) {
            count += !seg[m - lo];
        }
    }
    free(seg);
    free(primes);
    return (int64_t)count;
}

/*
 * The function run in the worker: reads its job from the input, yields one
 * item (the count) and returns.
 */
static int count_primes(subiter_gen *g, void *arg)
{
    const struct job *in;
    struct job job;
    size_t len;
    int64_t count;
    uint64_t result;

    (void)arg;
    in = subiter_input(g, &len);
    if (in == NULL || len != sizeof job) {
        return subiter_fail(g, "expected a %zu-byte job, got %zu bytes",
                            sizeof job, len);
    }
    memcpy(&job, in, sizeof job);
    if (job.crash) {
        /* A bug in the function: the worker dies, the parent survives. */
        raise(SIGSEGV);
    }
    count = count_primes_below(job.n);
    if (count < 0) {
        /* The message for people; -ENOMEM becomes errinfo.errnum. */
        (void)subiter_fail(g, "no memory for the sieve of %llu",
                           (unsigned long long)job.n);
        return -ENOMEM;
    }
    result = (uint64_t)count;
    /* 0, or SUBITER_STOPPED if the parent stopped us: return it either way. */
    return subiter_yield(g, &result, sizeof result);
}

/*
 * Run fn once in a new worker with `input`, allowing it limit_ms of silence,
 * and copy its one item (exactly out_len bytes) to `out`. Returns 0, or the
 * code of the call that failed, with the reason in msg.
 */
static int run_once(subiter_iter_fn fn, const void *input, size_t in_len,
                    int limit_ms, void *out, size_t out_len, char *msg,
                    size_t msg_len)
{
    subiter_opts opts = SUBITER_OPTS_INIT;
    subiter_item item;
    subiter *it = NULL;
    int r;

    opts.timeout_ms = limit_ms; /* bounds each wait for the worker */
    opts.grace_ms = 200;        /* close: ABORT, then SIGTERM, then SIGKILL */
    msg[0] = '\0';
    r = subiter_open(&it, fn, NULL, &opts);
    if (r == 0) {
        r = subiter_start(it, input, in_len);
    }
    if (r == 0) {
        r = subiter_next(it, &item);
        if (r == 1 && item.len != out_len) {
            snprintf(msg, msg_len, "the result has %zu bytes, expected %zu",
                     item.len, out_len);
            r = -EPROTO;
        } else if (r == 1) {
            /* item.data is borrowed: copy it before the next call. */
            memcpy(out, item.data, out_len);
            /* One item, then the end of the iteration. */
            r = subiter_next(it, &item);
            if (r == 1) {
                snprintf(msg, msg_len, "the worker sent more than one item");
                r = -EPROTO;
            }
        } else if (r == 0) {
            snprintf(msg, msg_len, "the worker sent no result");
            r = -ENODATA;
        }
    }
    if (r < 0 && msg[0] == '\0') {
        snprintf(msg, msg_len, "%s",
                 *subiter_errmsg(it) ? subiter_errmsg(it)
                                     : subiter_strerror(r));
    }
    /* Always close: it ends the worker (if any is left) and frees it. */
    (void)subiter_close(it);
    return r;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define USAGE "usage: oneshot [--limit-ms MS] [--crash] N\n"

/* Bad arguments: say why, then how to ask for help; exit status 2. */
static int bad_usage(const char *why, const char *arg)
{
    if (arg != NULL) {
        fprintf(stderr, "oneshot: %s '%s'\n", why, arg);
    } else {
        fprintf(stderr, "oneshot: %s\n", why);
    }
    fputs(USAGE "Try 'oneshot --help' for more.\n", stderr);
    return 2;
}

static void usage(FILE *f)
{
    fprintf(f,
            USAGE
            "\n"
            "Counts the primes below N in a worker process, killing it if\n"
            "it runs longer than the limit, and prints the count or the\n"
            "reason it failed.\n"
            "\n"
            "  N              2..%llu\n"
            "  --limit-ms MS  time limit, 1..%lu ms (default %lu)\n"
            "  --crash        make the worker crash (SIGSEGV) to show the\n"
            "                 report\n"
            "  --help         show this help\n"
            "\n"
            "Exit status: 0 with a count, 1 if the worker failed, 2 on bad\n"
            "arguments.\n",
            (unsigned long long)MAX_N, MAX_LIMIT_MS, DEFAULT_LIMIT_MS);
}

/* Parse a decimal number in [min, max]; 0 on success. */
static int parse_num(const char *what, const char *s, unsigned long long min,
                     unsigned long long max, unsigned long long *out)
{
    unsigned long long v;
    char *end;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (*s < '0' || *s > '9' || *end != '\0' || errno == ERANGE || v < min ||
        v > max) {
        fprintf(stderr, "oneshot: %s: '%s' is not a number from %llu to %llu\n",
                what, s, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"limit-ms", required_argument, NULL, 'l'},
        {"crash", no_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    unsigned long long n, limit_ms = DEFAULT_LIMIT_MS;
    struct job job;
    uint64_t count = 0;
    char msg[4096], short_opt[3] = "-?";
    double t0;
    int opt, r;

    memset(&job, 0, sizeof job);
    opterr = 0; /* the messages below name the program, not its path */
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'l':
            if (parse_num("--limit-ms", optarg, 1, MAX_LIMIT_MS, &limit_ms)) {
                return 2;
            }
            break;
        case 'c':
            job.crash = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case ':':
            return bad_usage("no value given for", argv[optind - 1]);
        default:
            if (optopt != 0) {
                short_opt[1] = (char)optopt;
                return bad_usage("unknown option", short_opt);
            }
            return bad_usage("unknown option", argv[optind - 1]);
        }
    }
    if (optind == argc) {
        return bad_usage("N is missing", NULL);
    }
    if (optind < argc - 1) {
        return bad_usage("unexpected argument", argv[optind + 1]);
    }
    if (parse_num("N", argv[optind], 2, MAX_N, &n)) {
        return 2;
    }
    job.n = n;

    t0 = now_s();
    r = run_once(count_primes, &job, sizeof job, (int)limit_ms, &count,
                 sizeof count, msg, sizeof msg);
    if (r != 0) {
        fprintf(stderr, "oneshot: %s: %s (%.3f s)\n", subiter_errname(r), msg,
                now_s() - t0);
        return 1;
    }
    printf("primes below %llu: %llu (%.3f s in a worker, limit %llu ms)\n", n,
           (unsigned long long)count, now_s() - t0, limit_ms);
    return 0;
}
