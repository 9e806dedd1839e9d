/* subiter-bench.c: throughput, latency and idle cost of subiter, measured
 * in one run next to the baselines it must beat: the generator called in
 * process, a pipe, a pipe carrying protobuf-c messages, and memcpy.
 *
 * Uses subiter's public API only. Prints one key=value line per
 * measurement on stdout, then one `bench=ratio` line per target of the
 * performance issue; a progress line goes to stderr when it is a terminal.
 *
 *     subiter-bench [--quick] [--reps=N] [--filter=TEXT[,TEXT...]] [--pin]
 *
 * Each throughput measurement starts one worker (a subiter handle, or a
 * pipe child), warms it up, calibrates the item count so that a run takes
 * about 0.3 s (0.03 s with --quick), then times cfg.reps runs on it: the
 * figures are the steady state, from the start of a run to its last item.
 * cpu_parent_s is getrusage(RUSAGE_SELF) over a run, cpu_child_s the
 * worker's own getrusage(RUSAGE_SELF) over it (workers outlive runs, so
 * RUSAGE_CHILDREN cannot split them), both means per run. MB is 10^6
 * bytes. BENCH_TRACE=1 in the environment traces every run on stderr.
 *
 * bench=death times a worker's death (SIGKILL from a thread of the
 * parent, or its own SIGSEGV, while the parent sleeps in subiter_next();
 * SIGKILL while it is blocked on a full ring) to subiter_next()'s
 * SUBITER_ECHILD; bench=parent_death times the SIGKILL of a worker's
 * parent to the worker's exit, in Stand By, in a generator and on a full
 * ring. Both give min/median/max in microseconds.
 *
 * bench=pool_cpu runs a CPU-bound generator (a few milliseconds per item)
 * on one worker and on a pool of two, same total work; bench=pool_merge
 * streams 64-byte items from a pool of two, ordered against unordered.
 * Their runs alternate between the variants; see "pools" below.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.pb-c.h"
#include "subiter.h"

#define KIB ((size_t)1 << 10)
#define MIB ((size_t)1 << 20)
#define MAX_ITEM (4 * MIB)
#define MAX_REPS 99
#define MAX_RESULTS 256
#define PB_SLACK 64 /* protobuf-c framing around a payload, generously */
#define PING_BYTES 64
#define WATCHDOG_S 120

enum impl {
    IMPL_INPROC,
    IMPL_PIPE,
    IMPL_PIPE_PB,
    IMPL_MEMCPY,
    IMPL_YIELD,
    IMPL_RESERVE,
    IMPL_PING_PIPE,
    IMPL_PING_START
};

static const char *const impl_names[] = {
    "inproc",          "pipe", "pipe_pb",      "memcpy", "subiter_yield",
    "subiter_reserve", "pipe", "subiter_start"};

enum consume { CONSUME_NONE, CONSUME_TOUCH, CONSUME_READ };

static const char *const consume_names[] = {"none", "touch", "read"};

/* What one throughput (or ping-pong) measurement runs. */
struct spec {
    const char *bench; /* "throughput", "pingpong", "pinned" */
    enum impl impl;
    enum consume consume;
    size_t item_bytes;
    unsigned buffer_items; /* subiter only */
    size_t buffer_bytes;   /* subiter's ring, memcpy's destination */
};

/* One run of a spec over n items. */
struct sample {
    double wall_s;      /* the streaming part only */
    double cpu_self_s;  /* getrusage(RUSAGE_SELF) delta, whole run */
    double cpu_child_s; /* getrusage(RUSAGE_CHILDREN) delta, whole run */
};

/* A measurement's summary, kept for the ratios. */
struct result {
    struct spec spec;
    bool pinned;
    uint64_t items;
    double rate_min, rate_med, rate_max; /* items per second */
    double wall_med, cpu_self, cpu_child;
};

/* The generator's parameters; the worker reads its copy through `arg`. */
struct gen {
    enum impl impl;
    size_t item_bytes;
};

/* What the idle producer measures about itself while it is blocked. */
struct idle_report {
    double cpu_s;
    double wall_s;
};

static struct {
    bool quick;
    bool tty;
    int reps;
    int lat_reps;
    double target_s; /* wall time one throughput run aims at */
    double idle_s;   /* how long the idle benches block */
    int death_reps;  /* deaths per bench=death variant */
    int pd_reps;     /* parent deaths per bench=parent_death state */
    const char *filter;
} cfg;

static unsigned char *hot;  /* the producer's hot buffer, MAX_ITEM bytes */
static unsigned char *rbuf; /* pipe receive / memcpy destination buffer */
static unsigned char *wbuf; /* pipe_pb's send buffer */
static size_t rbuf_size;
static uint64_t sink; /* the consumer's accumulator, printed at the end */
/* A MAP_SHARED word where a worker (subiter's or a pipe child) leaves its
 * cumulative CPU time (getrusage(RUSAGE_SELF), ns) at the end of each
 * iteration: workers live across repetitions, so RUSAGE_CHILDREN, which
 * counts only reaped children, cannot split their time per repetition. */
static _Atomic uint64_t *child_cpu_ns;
static struct gen gen_cfg;
static struct result results[MAX_RESULTS];
static int n_results;
static int n_done;
static double t_begin;
static char errbuf[512];
static char watch_label[256];

typedef void (*emit_fn)(const void *data, size_t len);
static emit_fn volatile inproc_emit;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double cpu_s(int who)
{
    struct rusage ru;

    getrusage(who, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* In a worker: publish its CPU time so far. The parent reads it after a
 * message that the worker sent later (an item, the end of iteration). */
static void mark_child_cpu(void)
{
    atomic_store_explicit(child_cpu_ns, (uint64_t)(cpu_s(RUSAGE_SELF) * 1e9),
                          memory_order_relaxed);
}

static double child_cpu(void)
{
    return (double)atomic_load_explicit(child_cpu_ns, memory_order_relaxed) *
           1e-9;
}

static void set_error(const char *fmt, ...) SUBITER_PRINTF(1, 2);

static void set_error(const char *fmt, ...)
{
    va_list ap;
    char *p;

    va_start(ap, fmt);
    vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
    /* The message becomes a quoted value: keep it on one line, unquoted. */
    for (p = errbuf; *p; p++) {
        if (*p == '"' || *p == '\n') {
            *p = '\'';
        }
    }
}

static void set_subiter_error(const char *what, subiter *it, int r)
{
    set_error("%s: %s: %s", what, subiter_errname(r),
              it ? subiter_errmsg(it) : subiter_strerror(r));
}

/* ---------------------------------------------------------------- output */

static void clear_progress(void)
{
    if (cfg.tty) {
        fputs("\r\033[K", stderr);
    }
}

static void progress(const char *label)
{
    if (cfg.tty) {
        fprintf(stderr, "\r\033[K[%d, %.0f s] %s", n_done + 1,
                now_s() - t_begin, label);
    }
}

static void out(const char *fmt, ...) SUBITER_PRINTF(1, 2);

/* One result line on stdout, flushed at once so a pipe sees it. */
static void out(const char *fmt, ...)
{
    va_list ap;

    clear_progress();
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* Run a measurement whose label contains one of the filter's
 * comma-separated words (all of them without a filter). */
static bool selected(const char *label)
{
    const char *f = cfg.filter;

    if (!f || !*f) {
        return true;
    }
    while (*f) {
        size_t n = strcspn(f, ",");
        char word[128];

        if (n > 0 && n < sizeof word) {
            memcpy(word, f, n);
            word[n] = '\0';
            if (strstr(label, word)) {
                return true;
            }
        }
        f += n;
        if (*f == ',') {
            f++;
        }
    }
    return false;
}

static void on_alarm(int sig)
{
    static const char msg[] = "subiter-bench: watchdog: no result within "
                              "the time limit; stuck in: ";
    ssize_t n;

    (void)sig;
    n = write(STDERR_FILENO, msg, sizeof msg - 1);
    n = write(STDERR_FILENO, watch_label, strlen(watch_label));
    n = write(STDERR_FILENO, "\n", 1);
    (void)n;
    _exit(3);
}

/* Arm the watchdog for one measurement: a hang ends the run with a
 * message instead of blocking `make bench` forever. */
static void watch(const char *label)
{
    snprintf(watch_label, sizeof watch_label, "%s", label);
    alarm(WATCHDOG_S);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Round down to two significant digits: item counts people can read. */
static uint64_t round2(double x)
{
    double scale = 1;

    if (x < 1) {
        return 1;
    }
    while (x >= 100 * scale) {
        scale *= 10;
    }
    return (uint64_t)(x / scale) * (uint64_t)scale;
}

/* --------------------------------------------------- producer, consumer */

/* The generator's per-item work on its hot buffer: stamp the index. */
static void stamp(unsigned char *p, size_t len, uint64_t i)
{
    if (len >= sizeof i) {
        memcpy(p, &i, sizeof i);
    } else if (len > 0) {
        p[0] = (unsigned char)i;
    }
}

/* touch: the first and last byte (a view costs nothing); read: every
 * byte, summed as 64-bit words. */
static inline void consume(const void *data, size_t len, enum consume how)
{
    const unsigned char *p = data;

    if (len == 0) {
        return;
    }
    if (how == CONSUME_TOUCH) {
        sink += (uint64_t)p[0] + p[len - 1];
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
        sink += s;
    }
}

static void emit_touch(const void *data, size_t len)
{
    consume(data, len, CONSUME_TOUCH);
}

static void emit_read(const void *data, size_t len)
{
    consume(data, len, CONSUME_READ);
}

/* The in-process generator: the same per-item work, handing each item to
 * the consumer through a callback the compiler cannot see through. */
__attribute__((noinline)) static void gen_inproc(size_t len, uint64_t n)
{
    uint64_t i;

    for (i = 0; i < n; i++) {
        stamp(hot, len, i);
        inproc_emit(hot, len);
    }
}

/* The worker's generator: n items (the input) from the hot buffer with
 * subiter_yield(), or written in place with subiter_reserve/commit. */
static int gen_stream(subiter_gen *g, void *arg)
{
    const struct gen *c = arg;
    const void *in;
    size_t in_len, len = c->item_bytes;
    uint64_t n, i;
    int r;

    in = subiter_input(g, &in_len);
    if (!in || in_len != sizeof n) {
        return subiter_fail(g, "bad input (%zu bytes)", in_len);
    }
    memcpy(&n, in, sizeof n);
    for (i = 0; i < n; i++) {
        if (c->impl == IMPL_RESERVE) {
            void *buf;

            if ((r = subiter_reserve(g, len, &buf))) {
                return r;
            }
            if (len > 0) {
                stamp(buf, len, i);
                ((unsigned char *)buf)[len - 1] = (unsigned char)i;
            }
            if ((r = subiter_commit(g, len))) {
                return r;
            }
        } else {
            stamp(hot, len, i);
            if ((r = subiter_yield(g, hot, len))) {
                return r;
            }
        }
    }
    mark_child_cpu();
    return 0;
}

/* Latency: one small item, then the end. */
static int gen_one(subiter_gen *g, void *arg)
{
    (void)arg;
    return subiter_yield(g, hot, PING_BYTES);
}

/* Ping-pong: send the input back as the one item. An input that starts
 * with PROBE asks for the CPU mark first. */
#define PROBE UINT64_MAX

static bool is_probe(const void *msg, size_t len)
{
    uint64_t v;

    if (len < sizeof v) {
        return false;
    }
    memcpy(&v, msg, sizeof v);
    return v == PROBE;
}

static int gen_echo(subiter_gen *g, void *arg)
{
    size_t len;
    const void *in = subiter_input(g, &len);

    (void)arg;
    if (is_probe(in, len)) {
        mark_child_cpu();
    }
    return subiter_yield(g, in, len);
}

/* ---------------------------------------------------------- pipe helpers */

/* Read exactly len bytes: returns len, 0 at a clean EOF before any byte,
 * -1 on an error or a short record. */
static ssize_t read_full(int fd, void *buf, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = read(fd, (unsigned char *)buf + got, len - got);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -1;
        }
        if (n == 0) {
            return got == 0 ? 0 : -1;
        }
        got += (size_t)n;
    }
    return (ssize_t)len;
}

/* Write an iovec array fully; one writev() call in the usual case. */
static int writev_full(int fd, struct iovec *iov, int cnt)
{
    while (cnt > 0) {
        ssize_t n = writev(fd, iov, cnt);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return -1;
        }
        while (cnt > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (unsigned char *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
    struct iovec iov;

    iov.iov_base = (void *)(uintptr_t)buf;
    iov.iov_len = len;
    return writev_full(fd, &iov, 1);
}

static int reap(pid_t pid, const char *what)
{
    int st;

    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            set_error("%s: waitpid: %s", what, strerror(errno));
            return -1;
        }
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        set_error("%s: child ended with status 0x%x", what, (unsigned)st);
        return -1;
    }
    return 0;
}

/* The pipe baselines' child, alive for a whole measurement: for each
 * count n read from `cmd`, n items, each a 4-byte length and the payload
 * (raw, or a packed BenchItem) in one write, then an END_MARK length. */
#define END_MARK UINT32_MAX

static void pipe_child(int cmd, int fd, const struct spec *t)
{
    size_t len = t->item_bytes;
    uint64_t n, i;

    while (read_full(cmd, &n, sizeof n) == sizeof n) {
        uint32_t hdr;

        for (i = 0; i < n; i++) {
            struct iovec iov[2];

            stamp(hot, len, i);
            if (t->impl == IMPL_PIPE_PB) {
                BenchItem m = BENCH_ITEM__INIT;
                size_t sz;

                m.seq = i;
                m.payload.data = hot;
                m.payload.len = len;
                sz = bench_item__get_packed_size(&m);
                bench_item__pack(&m, wbuf + sizeof hdr);
                hdr = (uint32_t)sz;
                memcpy(wbuf, &hdr, sizeof hdr);
                if (write_full(fd, wbuf, sizeof hdr + sz) < 0) {
                    _exit(1);
                }
            } else {
                hdr = (uint32_t)len;
                iov[0].iov_base = &hdr;
                iov[0].iov_len = sizeof hdr;
                iov[1].iov_base = hot;
                iov[1].iov_len = len;
                if (writev_full(fd, iov, len > 0 ? 2 : 1) < 0) {
                    _exit(1);
                }
            }
        }
        mark_child_cpu();
        hdr = END_MARK;
        if (write_full(fd, &hdr, sizeof hdr) < 0) {
            _exit(1);
        }
    }
    _exit(0);
}

/* The pipe ping-pong child: echoes PING_BYTES messages until EOF. */
static void echo_child(int cmd, int fd)
{
    unsigned char msg[PING_BYTES];

    while (read_full(cmd, msg, sizeof msg) == sizeof msg) {
        if (is_probe(msg, sizeof msg)) {
            mark_child_cpu();
        }
        if (write_full(fd, msg, sizeof msg) < 0) {
            _exit(1);
        }
    }
    _exit(0);
}

/* ------------------------------------------------------------- runners */

/*
 * A runner holds what lives across one measurement's runs: the subiter
 * handle or the pipe child. Workers are started once, so that every run
 * after the first finds them warm: first touches of memory cost a page
 * fault each (tens of microseconds in these VMs), which latency measures;
 * throughput is the steady state.
 */
struct runner {
    const struct spec *t;
    subiter *it;
    pid_t pid;
    int to_child, from_child;
    double child_mark; /* the worker's CPU time at the previous mark */
};

static int setup_pipes(struct runner *r, bool echo)
{
    int a[2], b[2];

    if (pipe2(a, O_CLOEXEC) < 0) {
        set_error("pipe2: %s", strerror(errno));
        return -1;
    }
    if (pipe2(b, O_CLOEXEC) < 0) {
        set_error("pipe2: %s", strerror(errno));
        close(a[0]);
        close(a[1]);
        return -1;
    }
    fflush(NULL);
    r->pid = fork();
    if (r->pid == 0) {
        close(a[1]);
        close(b[0]);
        if (echo) {
            echo_child(a[0], b[1]);
        }
        pipe_child(a[0], b[1], r->t);
    }
    close(a[0]);
    close(b[1]);
    if (r->pid < 0) {
        set_error("fork: %s", strerror(errno));
        close(a[1]);
        close(b[0]);
        return -1;
    }
    r->to_child = a[1];
    r->from_child = b[0];
    return 0;
}

static int setup(struct runner *r, const struct spec *t)
{
    subiter_opts o = SUBITER_OPTS_INIT;
    int rc;

    memset(r, 0, sizeof *r);
    r->t = t;
    r->to_child = r->from_child = -1;
    atomic_store_explicit(child_cpu_ns, 0, memory_order_relaxed);
    switch (t->impl) {
    case IMPL_PIPE:
    case IMPL_PIPE_PB:
        return setup_pipes(r, false);
    case IMPL_PING_PIPE:
        return setup_pipes(r, true);
    case IMPL_YIELD:
    case IMPL_RESERVE:
    case IMPL_PING_START:
        o.buffer_items = t->buffer_items;
        o.buffer_bytes = t->buffer_bytes;
        gen_cfg.impl = t->impl;
        gen_cfg.item_bytes = t->item_bytes;
        fflush(NULL);
        rc = subiter_open(&r->it,
                          t->impl == IMPL_PING_START ? gen_echo : gen_stream,
                          &gen_cfg, &o);
        if (rc != 0) {
            set_subiter_error("subiter_open", r->it, rc);
            subiter_close(r->it);
            r->it = NULL;
            return -1;
        }
        return 0;
    default:
        return 0;
    }
}

/* Close *it if open; -1 (error set) when subiter_close() complained. */
static int close_handle(subiter **it)
{
    int rc = 0;

    if (*it != NULL) {
        rc = subiter_close(*it);
        *it = NULL;
        if (rc != 0) {
            set_error("subiter_close: %s", subiter_errname(rc));
            return -1;
        }
    }
    return 0;
}

static int teardown(struct runner *r)
{
    int rc = 0;

    if (close_handle(&r->it) < 0) {
        return -1;
    }
    if (r->pid > 0) {
        close(r->to_child);
        close(r->from_child);
        rc = reap(r->pid, impl_names[r->t->impl]);
        r->pid = 0;
    }
    return rc;
}

static void run_inproc(const struct spec *t, uint64_t n)
{
    inproc_emit = t->consume == CONSUME_READ ? emit_read : emit_touch;
    gen_inproc(t->item_bytes, n);
}

/* The bandwidth limit: one memcpy per item from the hot buffer into a
 * destination as big as subiter's ring, advancing through it as the ring
 * does. */
static void run_memcpy(const struct spec *t, uint64_t n)
{
    size_t len = t->item_bytes, step = (len + 63) & ~(size_t)63, off = 0;
    size_t cap = t->buffer_bytes < rbuf_size ? t->buffer_bytes : rbuf_size;
    uint64_t i;

    for (i = 0; i < n; i++) {
        if (off + len > cap) {
            off = 0;
        }
        memcpy(rbuf + off, hot, len);
        off += step;
    }
    sink += rbuf[0];
}

static int run_pipe(struct runner *r, uint64_t n)
{
    const struct spec *t = r->t;
    uint64_t got = 0;

    if (write_full(r->to_child, &n, sizeof n) < 0) {
        set_error("pipe: write: %s", strerror(errno));
        return -1;
    }
    for (;;) {
        uint32_t len;

        if (read_full(r->from_child, &len, sizeof len) != sizeof len) {
            set_error("pipe: short read after %" PRIu64 " items", got);
            return -1;
        }
        if (len == END_MARK) {
            break;
        }
        if (len > rbuf_size ||
            read_full(r->from_child, rbuf, len) != (ssize_t)len) {
            set_error("pipe: bad record after %" PRIu64 " items", got);
            return -1;
        }
        if (t->impl == IMPL_PIPE_PB) {
            BenchItem *m = bench_item__unpack(NULL, len, rbuf);

            if (!m) {
                set_error("pipe_pb: unpack failed");
                return -1;
            }
            consume(m->payload.data, m->payload.len, t->consume);
            bench_item__free_unpacked(m, NULL);
        } else {
            consume(rbuf, len, t->consume);
        }
        got++;
    }
    if (got != n) {
        set_error("pipe: got %" PRIu64 " of %" PRIu64 " items", got, n);
        return -1;
    }
    return 0;
}

static int run_subiter(struct runner *r, uint64_t n)
{
    subiter_item item;
    uint64_t got = 0;
    int rc;

    rc = subiter_start(r->it, &n, sizeof n);
    if (rc != 0) {
        set_subiter_error("subiter_start", r->it, rc);
        return -1;
    }
    /* Two loops, so that the consume mode is not a branch per item. */
    if (r->t->consume == CONSUME_READ) {
        while ((rc = subiter_next(r->it, &item)) > 0) {
            consume(item.data, item.len, CONSUME_READ);
            got++;
        }
    } else {
        while ((rc = subiter_next(r->it, &item)) > 0) {
            consume(item.data, item.len, CONSUME_TOUCH);
            got++;
        }
    }
    if (rc < 0) {
        set_subiter_error("subiter_next", r->it, rc);
        return -1;
    }
    if (got != n) {
        set_error("subiter: got %" PRIu64 " of %" PRIu64 " items", got, n);
        return -1;
    }
    return 0;
}

/* One ping-pong round trip of PING_BYTES through the pipes. */
static int ping_pipe(struct runner *r, unsigned char *msg)
{
    if (write_full(r->to_child, msg, PING_BYTES) < 0 ||
        read_full(r->from_child, msg, PING_BYTES) != PING_BYTES) {
        set_error("pipe ping-pong: short read or write");
        return -1;
    }
    return 0;
}

/* One round trip through subiter: start(msg) -> the item echoing it ->
 * the end of the iteration. */
static int ping_start(struct runner *r, unsigned char *msg)
{
    subiter_item item;
    int rc;

    if ((rc = subiter_start(r->it, msg, PING_BYTES)) != 0) {
        set_subiter_error("subiter_start", r->it, rc);
        return -1;
    }
    if ((rc = subiter_next(r->it, &item)) != 1 || item.len != PING_BYTES) {
        set_subiter_error("subiter_next (item)", r->it, rc);
        return -1;
    }
    memcpy(msg, item.data, PING_BYTES);
    if ((rc = subiter_next(r->it, &item)) != 0) {
        set_subiter_error("subiter_next (end)", r->it, rc);
        return -1;
    }
    return 0;
}

static int run_pingpong(struct runner *r, uint64_t n)
{
    int (*ping)(struct runner *, unsigned char *) =
        r->t->impl == IMPL_PING_PIPE ? ping_pipe : ping_start;
    unsigned char msg[PING_BYTES];
    uint64_t i;

    memcpy(msg, hot, sizeof msg);
    for (i = 0; i < n; i++) {
        stamp(msg, sizeof msg, i);
        if (ping(r, msg) < 0) {
            return -1;
        }
        consume(msg, sizeof msg, CONSUME_TOUCH);
    }
    return 0;
}

/* Ask the ping-pong child for its CPU mark (outside the timed part). */
static int probe(struct runner *r)
{
    unsigned char msg[PING_BYTES];
    uint64_t v = PROBE;

    memset(msg, 0, sizeof msg);
    memcpy(msg, &v, sizeof v);
    return r->t->impl == IMPL_PING_PIPE ? ping_pipe(r, msg)
                                        : ping_start(r, msg);
}

/* One run of n items: wall time of the streaming, the parent's CPU over
 * it, and the worker's CPU since its previous mark. */
static int run(struct runner *r, uint64_t n, struct sample *s)
{
    double c0 = cpu_s(RUSAGE_SELF), t0 = now_s(), mark;
    int rc = 0;

    switch (r->t->impl) {
    case IMPL_INPROC:
        run_inproc(r->t, n);
        break;
    case IMPL_MEMCPY:
        run_memcpy(r->t, n);
        break;
    case IMPL_PIPE:
    case IMPL_PIPE_PB:
        rc = run_pipe(r, n);
        break;
    case IMPL_YIELD:
    case IMPL_RESERVE:
        rc = run_subiter(r, n);
        break;
    case IMPL_PING_PIPE:
    case IMPL_PING_START:
        rc = run_pingpong(r, n);
        break;
    default:
        set_error("unknown impl");
        rc = -1;
    }
    s->wall_s = now_s() - t0;
    s->cpu_self_s = cpu_s(RUSAGE_SELF) - c0;
    if (rc == 0 &&
        (r->t->impl == IMPL_PING_PIPE || r->t->impl == IMPL_PING_START)) {
        rc = probe(r);
    }
    mark = child_cpu();
    s->cpu_child_s = mark - r->child_mark;
    r->child_mark = mark;
    if (getenv("BENCH_TRACE")) {
        fprintf(stderr, "trace: %s n=%" PRIu64 " wall=%.6f\n",
                impl_names[r->t->impl], n, s->wall_s);
    }
    return rc;
}

/* ------------------------------------------------------------ measuring */

static bool is_subiter(enum impl impl)
{
    return impl == IMPL_YIELD || impl == IMPL_RESERVE ||
           impl == IMPL_PING_START;
}

static void label_of(const struct spec *t, bool pinned, char *buf, size_t len)
{
    int k = snprintf(buf, len, "bench=%s impl=%s consume=%s item_bytes=%zu",
                     t->bench, impl_names[t->impl], consume_names[t->consume],
                     t->item_bytes);

    if (k > 0 && (size_t)k < len && is_subiter(t->impl)) {
        k += snprintf(buf + k, len - (size_t)k, " buffer_items=%u",
                      t->buffer_items);
    }
    if (k > 0 && (size_t)k < len &&
        (is_subiter(t->impl) || t->impl == IMPL_MEMCPY)) {
        snprintf(buf + k, len - (size_t)k, " buffer_bytes=%zu",
                 t->buffer_bytes);
    }
    if (pinned && k > 0 && (size_t)k < len) {
        snprintf(buf + strlen(buf), len - strlen(buf), " pinned=1");
    }
}

/* Is a run that took `wall` close enough to the target? */
static bool in_window(double wall)
{
    return wall >= cfg.target_s / 2 && wall <= cfg.target_s * 2;
}

/* Scale n so that a run that took `wall` takes the target. */
static uint64_t scale_items(uint64_t n, double wall)
{
    n = round2((double)n * cfg.target_s / (wall > 0 ? wall : 1e-9));
    return n < 4 ? 4 : n;
}

/* A guess at the ring's per-record overhead (header, Status framing). */
#define REC_GUESS 24

/*
 * Calibrate, then run the spec cfg.reps times on one worker. The item
 * count grows from `pilot` until a run lasts a tenth of the target and
 * the runs so far have passed over the ring (or the pipe's buffers) twice,
 * faulting them in (or have taken 5 targets). Then it is set from the best
 * rate seen so far, and runs at that count repeat (up to 5) until one
 * lands near the target without beating the best rate by much: noise on
 * this machine (preemption, a slow wake-up at the start of a run, a page
 * fault) only ever slows a run down, so the best rate is the estimate to
 * trust. Returns the stored result, or NULL on an error (already printed).
 */
static struct result *measure(const struct spec *t, bool pinned, uint64_t pilot)
{
    char label[256];
    double rates[MAX_REPS], walls[MAX_REPS], cpu_self = 0, cpu_child = 0;
    struct runner r;
    struct sample s;
    struct result *res;
    uint64_t n = pilot ? pilot : 1;
    double passed = 0, ring = 2 * (double)t->buffer_bytes, best;
    double spent = 0,
           warm_cap = cfg.target_s * 5 > 0.3 ? cfg.target_s * 5 : 0.3;
    int i;

    if (ring <= 0) {
        ring = 2 * (double)SUBITER_OPTS_DEFAULT_BUFFER_BYTES;
    }
    label_of(t, pinned, label, sizeof label);
    progress(label);
    watch(label);
    if (setup(&r, t) < 0) {
        goto fail;
    }
    for (;;) {
        double grow;

        if (run(&r, n, &s) < 0) {
            goto fail;
        }
        passed += (double)n * (double)(t->item_bytes + REC_GUESS);
        spent += s.wall_s;
        if (n >= ((uint64_t)1 << 40)) {
            break;
        }
        if (s.wall_s >= cfg.target_s / 10) {
            double rest, fit;

            if (passed >= ring || spent >= warm_cap) {
                break;
            }
            /* Long enough, but the ring is not warm yet: go on, within
             * the time allowed (slow modes hardly notice the faults). */
            rest = (ring - passed) / (double)(t->item_bytes + REC_GUESS);
            fit = (double)n * (warm_cap - spent) / s.wall_s;
            n = (uint64_t)(rest < fit ? rest : fit) + 1;
            continue;
        }
        grow = s.wall_s > 0 ? cfg.target_s / 5 / s.wall_s : 100;
        grow = grow < 2 ? 2 : grow > 100 ? 100 : grow;
        n = (uint64_t)((double)n * grow);
    }
    best = (double)n / (s.wall_s > 0 ? s.wall_s : 1e-9);
    for (i = 0; i < 5; i++) {
        double rate;

        n = scale_items(1, 1 / best);
        alarm(WATCHDOG_S);
        if (run(&r, n, &s) < 0) {
            goto fail;
        }
        rate = (double)n / (s.wall_s > 0 ? s.wall_s : 1e-9);
        if (in_window(s.wall_s) && rate * 1.3 >= best) {
            break;
        }
        best = rate > best ? rate : best;
    }
    n = scale_items(1, 1 / best);
    for (i = 0; i < cfg.reps; i++) {
        alarm(WATCHDOG_S);
        if (run(&r, n, &s) < 0) {
            goto fail;
        }
        rates[i] = (double)n / (s.wall_s > 0 ? s.wall_s : 1e-9);
        walls[i] = s.wall_s;
        cpu_self += s.cpu_self_s;
        cpu_child += s.cpu_child_s;
    }
    if (teardown(&r) < 0) {
        goto fail;
    }
    alarm(0);
    n_done++;
    if (n_results == MAX_RESULTS) {
        return NULL;
    }
    res = &results[n_results++];
    res->spec = *t;
    res->pinned = pinned;
    res->items = n;
    res->rate_med = median(rates, cfg.reps); /* sorts rates */
    res->rate_min = rates[0];
    res->rate_max = rates[cfg.reps - 1];
    res->wall_med = median(walls, cfg.reps);
    res->cpu_self = cpu_self / cfg.reps;
    res->cpu_child = cpu_child / cfg.reps;
    return res;

fail:
    out("%s items=%" PRIu64 " error=\"%s\"", label, n, errbuf);
    (void)teardown(&r);
    alarm(0);
    return NULL;
}

static void print_throughput(const struct result *r)
{
    char label[256];
    double mb = (double)r->spec.item_bytes / 1e6;

    label_of(&r->spec, r->pinned, label, sizeof label);
    out("%s items=%" PRIu64 " reps=%d items_per_s_min=%.6g "
        "items_per_s_med=%.6g items_per_s_max=%.6g mb_per_s_min=%.6g "
        "mb_per_s_med=%.6g mb_per_s_max=%.6g ns_per_item_med=%.4g "
        "wall_s_med=%.3f cpu_parent_s=%.3f cpu_child_s=%.3f",
        label, r->items, cfg.reps, r->rate_min, r->rate_med, r->rate_max,
        r->rate_min * mb, r->rate_med * mb, r->rate_max * mb, 1e9 / r->rate_med,
        r->wall_med, r->cpu_self, r->cpu_child);
}

/* A first guess at the item count of a run: the calibration grows it. */
static uint64_t pilot_items(size_t item_bytes)
{
    if (item_bytes >= MIB) {
        return 4;
    }
    if (item_bytes >= 64 * KIB) {
        return 32;
    }
    return 1000;
}

static void throughput(const struct spec *t)
{
    char label[256];
    struct result *r;

    label_of(t, false, label, sizeof label);
    if (!selected(label)) {
        return;
    }
    r = measure(t, false, pilot_items(t->item_bytes));
    if (r) {
        print_throughput(r);
    }
}

static const size_t sizes[] = {0, 64, 4 * KIB, 64 * KIB, MIB, 4 * MIB};

static size_t ring_for(size_t item_bytes)
{
    /* The default 4 MiB ring cannot hold a 4 MiB item (records carry a
     * header): give those twice the room. */
    return item_bytes >= 4 * MIB ? 8 * MIB : SUBITER_OPTS_DEFAULT_BUFFER_BYTES;
}

static void bench_throughput(void)
{
    static const enum impl subiter_impls[] = {IMPL_YIELD, IMPL_RESERVE};
    static const unsigned small_bounds[] = {1, 8};
    size_t k, j, b;

    for (k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        struct spec t = {"throughput", IMPL_INPROC, CONSUME_TOUCH,
                         sizes[k],     64,          ring_for(sizes[k])};

        /* Baselines first, then subiter, all with the same item size. */
        t.impl = IMPL_INPROC;
        t.consume = CONSUME_TOUCH;
        throughput(&t);
        if (sizes[k] > 0) {
            t.consume = CONSUME_READ;
            throughput(&t);
        }
        t.consume = CONSUME_TOUCH;
        t.impl = IMPL_PIPE;
        throughput(&t);
        t.impl = IMPL_PIPE_PB;
        throughput(&t);
        t.impl = IMPL_MEMCPY;
        t.consume = CONSUME_NONE;
        throughput(&t);
        for (j = 0; j < 2; j++) {
            t.impl = subiter_impls[j];
            t.consume = CONSUME_TOUCH;
            throughput(&t);
            if (sizes[k] > 0) {
                t.consume = CONSUME_READ;
                throughput(&t);
            }
        }
        if (sizes[k] == 64) {
            /* A tighter item bound costs more hand-offs per item. */
            for (b = 0; b < 2; b++) {
                for (j = 0; j < 2; j++) {
                    t.impl = subiter_impls[j];
                    t.consume = CONSUME_TOUCH;
                    t.buffer_items = small_bounds[b];
                    throughput(&t);
                }
            }
        }
    }
}

/* -------------------------------------------------------------- latency */

static double latency_fork(void)
{
    double t0 = now_s();
    pid_t pid;

    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        _exit(0);
    }
    if (pid < 0 || reap(pid, "fork_exit_wait") < 0) {
        return -1;
    }
    return now_s() - t0;
}

/* open -> start -> first item -> close, with the default options. */
static double latency_subiter(bool iterate)
{
    subiter *it = NULL;
    subiter_item item;
    double t0, t1;
    int r;

    fflush(NULL);
    t0 = now_s();
    r = subiter_open(&it, gen_one, NULL, NULL);
    if (r == 0 && iterate) {
        r = subiter_start(it, NULL, 0);
        if (r == 0) {
            r = subiter_next(it, &item) == 1 ? 0 : -1;
        }
    }
    if (subiter_close(it) != 0 || r != 0) {
        set_error("open/first/close: %s", subiter_errmsg(it));
        return -1;
    }
    t1 = now_s();
    return t1 - t0;
}

static void bench_latency(double *fork_med, double *ofc_med)
{
    static const char *const names[] = {
        "fork_exit_wait", "subiter_open_first_close", "subiter_open_close"};
    double *v[3];
    char label[128];
    int i, m;
    bool any = false, on[3];

    *fork_med = *ofc_med = -1;
    for (m = 0; m < 3; m++) {
        snprintf(label, sizeof label, "bench=latency impl=%s", names[m]);
        on[m] = selected(label);
        any = any || on[m];
        v[m] = calloc((size_t)cfg.lat_reps, sizeof(double));
        if (!v[m]) {
            out("bench=latency error=\"out of memory\"");
            exit(1);
        }
    }
    if (!any) {
        goto done;
    }
    progress("bench=latency");
    watch("bench=latency");
    /* Interleaved, so that noise hits all three alike. */
    for (i = 0; i < cfg.lat_reps; i++) {
        for (m = 0; m < 3; m++) {
            double x;

            if (!on[m]) {
                continue;
            }
            x = m == 0 ? latency_fork() : latency_subiter(m == 1);
            if (x < 0) {
                out("bench=latency impl=%s error=\"%s\"", names[m], errbuf);
                on[m] = false;
                continue;
            }
            v[m][i] = x * 1e6;
        }
    }
    alarm(0);
    for (m = 0; m < 3; m++) {
        double med;

        if (!on[m]) {
            continue;
        }
        med = median(v[m], cfg.lat_reps);
        out("bench=latency impl=%s reps=%d us_min=%.1f us_med=%.1f "
            "us_max=%.1f",
            names[m], cfg.lat_reps, v[m][0], med, v[m][cfg.lat_reps - 1]);
        if (m == 0) {
            *fork_med = med;
        } else if (m == 1) {
            *ofc_med = med;
        }
    }
    n_done++;
done:
    for (m = 0; m < 3; m++) {
        free(v[m]);
    }
}

static void print_pingpong(const struct result *r)
{
    char label[256];

    label_of(&r->spec, false, label, sizeof label);
    out("%s items=%" PRIu64 " reps=%d us_per_item_min=%.3f "
        "us_per_item_med=%.3f us_per_item_max=%.3f cpu_parent_s=%.3f "
        "cpu_child_s=%.3f",
        label, r->items, cfg.reps, 1e6 / r->rate_max, 1e6 / r->rate_med,
        1e6 / r->rate_min, r->cpu_self, r->cpu_child);
}

/* Per-item round trips: a stream bounded to one item in flight, a
 * request/response through subiter_start(), and a pipe echo. */
static void bench_pingpong(void)
{
    static const struct spec specs[] = {
        {"pingpong", IMPL_YIELD, CONSUME_TOUCH, PING_BYTES, 1,
         SUBITER_OPTS_DEFAULT_BUFFER_BYTES},
        {"pingpong", IMPL_PING_START, CONSUME_TOUCH, PING_BYTES, 1,
         SUBITER_OPTS_DEFAULT_BUFFER_BYTES},
        {"pingpong", IMPL_PING_PIPE, CONSUME_TOUCH, PING_BYTES, 0, 0},
    };
    char label[256];
    size_t k;

    for (k = 0; k < sizeof specs / sizeof specs[0]; k++) {
        struct result *r;

        label_of(&specs[k], false, label, sizeof label);
        if (!selected(label)) {
            continue;
        }
        r = measure(&specs[k], false, 200);
        if (r) {
            print_pingpong(r);
        }
    }
}

/* ----------------------------------------------------------------- idle */

/* Idle generator: sleeps (input: microseconds) without yielding, then
 * yields one item. */
static int gen_sleepy(subiter_gen *g, void *arg)
{
    const void *in;
    size_t len;
    uint64_t us;
    double end;

    (void)arg;
    in = subiter_input(g, &len);
    if (!in || len != sizeof us) {
        return subiter_fail(g, "bad input");
    }
    memcpy(&us, in, sizeof us);
    end = now_s() + (double)us * 1e-6;
    while (now_s() < end) {
        usleep(1000);
    }
    return subiter_yield(g, hot, 8);
}

/* Idle producer: yields `n` (input) small items into a ring bounded to
 * fewer, so that it blocks until the parent wakes up, and reports the CPU
 * it used meanwhile as one more item. */
static int gen_blocked(subiter_gen *g, void *arg)
{
    struct idle_report rep;
    const void *in;
    size_t len;
    uint64_t n, i;
    double c0, t0;
    int r;

    (void)arg;
    in = subiter_input(g, &len);
    if (!in || len != sizeof n) {
        return subiter_fail(g, "bad input");
    }
    memcpy(&n, in, sizeof n);
    c0 = cpu_s(RUSAGE_SELF);
    t0 = now_s();
    for (i = 0; i < n; i++) {
        if ((r = subiter_yield(g, hot, 8))) {
            return r;
        }
    }
    rep.cpu_s = cpu_s(RUSAGE_SELF) - c0;
    rep.wall_s = now_s() - t0;
    return subiter_yield(g, &rep, sizeof rep);
}

static void print_idle(const char *side, double wall, double cpu, double *frac)
{
    *frac = wall > 0 ? cpu / wall : -1;
    out("bench=idle side=%s wall_s=%.3f cpu_s=%.5f cpu_percent=%.3f", side,
        wall, cpu, *frac * 100);
}

static void bench_idle(double *consumer_frac, double *producer_frac)
{
    subiter_opts o = SUBITER_OPTS_INIT;
    subiter *it = NULL;
    subiter_item item;
    uint64_t arg;
    double c0, t0, cpu, wall;
    int r;

    *consumer_frac = *producer_frac = -1;
    if (selected("bench=idle side=consumer")) {
        /* The parent waits in subiter_next() with no timeout (0). */
        progress("bench=idle side=consumer");
        watch("bench=idle side=consumer");
        o.timeout_ms = 0;
        arg = (uint64_t)(cfg.idle_s * 1e6);
        r = subiter_open(&it, gen_sleepy, NULL, &o);
        if (r == 0) {
            r = subiter_start(it, &arg, sizeof arg);
        }
        if (r == 0) {
            c0 = cpu_s(RUSAGE_SELF);
            t0 = now_s();
            r = subiter_next(it, &item);
            wall = now_s() - t0;
            cpu = cpu_s(RUSAGE_SELF) - c0;
            if (r == 1) {
                print_idle("consumer", wall, cpu, consumer_frac);
                r = subiter_next(it, &item);
            } else if (r == 0) {
                r = -EPROTO;
            }
        }
        if (r < 0) {
            out("bench=idle side=consumer error=\"%s: %s\"", subiter_errname(r),
                subiter_errmsg(it));
        }
        subiter_close(it);
        it = NULL;
        alarm(0);
        n_done++;
    }
    if (selected("bench=idle side=producer")) {
        struct idle_report rep;
        struct timespec ts;
        bool have = false;

        progress("bench=idle side=producer");
        watch("bench=idle side=producer");
        o.buffer_items = 4;
        /* Two past the bound, so it blocks whether or not the bound
         * counts the item being published. */
        arg = o.buffer_items + 2;
        r = subiter_open(&it, gen_blocked, NULL, &o);
        if (r == 0) {
            r = subiter_start(it, &arg, sizeof arg);
        }
        if (r == 0) {
            ts.tv_sec = (time_t)cfg.idle_s;
            ts.tv_nsec = (long)((cfg.idle_s - (double)ts.tv_sec) * 1e9);
            while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
            }
            while ((r = subiter_next(it, &item)) > 0) {
                if (item.len == sizeof rep) {
                    memcpy(&rep, item.data, sizeof rep);
                    have = true;
                }
            }
        }
        if (r < 0 || !have) {
            out("bench=idle side=producer error=\"%s: %s\"", subiter_errname(r),
                r < 0 ? subiter_errmsg(it) : "no report");
        } else {
            print_idle("producer", rep.wall_s, rep.cpu_s, producer_frac);
        }
        subiter_close(it);
        alarm(0);
        n_done++;
    }
}

/* ---------------------------------------------------------------- death */

/*
 * bench=death: from a worker's death to subiter_next() returning
 * SUBITER_ECHILD, with no timeout set. bench=parent_death: from the
 * parent's SIGKILL to its worker's exit. Both first wait until the sides
 * are asleep (the scheduler state in /proc is 'S'), so that the figure is
 * the wake-up path, not a race with a process still on its way to sleep;
 * seen_blocked counts the repetitions where that was seen.
 */

enum death_mode {
    DEATH_SLEEP,   /* sleep in the generator without yielding */
    DEATH_SEGV,    /* stamp the time, then raise(SIGSEGV) */
    DEATH_FLOOD,   /* yield until the ring is full, forever */
    DEATH_BASELINE /* no subiter: a forked child, a pidfd */
};

/* The generator's parameters; the worker reads its copy through `arg`. */
struct death_gen {
    enum death_mode mode;
};

/* A MAP_SHARED page between the bench, its middle processes and their
 * workers, mapped before any of them is forked. */
struct death_share {
    _Atomic int64_t stamp_ns; /* DEATH_SEGV: the time right before raise() */
    _Atomic int blocked;      /* DEATH_SEGV: the parent was seen asleep */
    _Atomic int ready;        /* parent_death: 1 ready, -1 failed */
    _Atomic int worker;       /* parent_death: the worker's pid */
    char err[256];            /* parent_death: the middle's failure */
};

/* What the killer thread needs and leaves. */
struct killer {
    pid_t worker;     /* whom to kill */
    pid_t tid;        /* the parent's thread, in subiter_next() */
    int64_t stamp_ns; /* taken right before kill() */
    bool blocked;     /* both were seen asleep first */
    int err;          /* kill()'s errno, or 0 */
};

static struct death_gen death_gen;
static struct death_share *death_sh;

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_s(double s)
{
    struct timespec ts;

    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* The scheduler state of thread `tid` of process `pid` ('R', 'S', ...),
 * or 0 when it cannot be read. */
static char thread_state(pid_t pid, pid_t tid)
{
    char path[64], buf[512], *p;
    ssize_t n;
    int fd;

    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)tid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) {
        return 0;
    }
    buf[n] = '\0';
    /* pid (comm) state ...: comm may hold spaces and parentheses. */
    p = strrchr(buf, ')');
    return p && p[1] == ' ' ? p[2] : 0;
}

/* Wait up to limit_s until the thread sleeps; true once it was seen
 * asleep. */
static bool wait_asleep(pid_t pid, pid_t tid, double limit_s)
{
    double end = now_s() + limit_s;

    while (thread_state(pid, tid) != 'S') {
        if (now_s() > end) {
            return false;
        }
        sleep_s(200e-6);
    }
    return true;
}

static int open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

/* Wait for a child; its status, or -1 with errbuf set. */
static int wait_status(pid_t pid, const char *what)
{
    int st;

    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            set_error("%s: waitpid(%d): %s", what, (int)pid, strerror(errno));
            return -1;
        }
    }
    return st;
}

/* The death bench's generator, in the worker. */
static int gen_death(subiter_gen *g, void *arg)
{
    const struct death_gen *c = arg;
    double end;
    int r;

    switch (c->mode) {
    case DEATH_SLEEP:
        /* Long sleeps: the worker stays asleep until it is killed. */
        end = now_s() + 30;
        while (now_s() < end) {
            sleep_s(1);
        }
        return subiter_fail(g, "not killed within 30 s");
    case DEATH_SEGV:
        /* No core: dumping one would be timed too (and left behind). */
        (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        sleep_s(2e-3);
        atomic_store(&death_sh->blocked,
                     wait_asleep(getppid(), getppid(), 2.0) ? 1 : 0);
        atomic_store(&death_sh->stamp_ns, now_ns());
        raise(SIGSEGV);
        return subiter_fail(g, "survived SIGSEGV");
    case DEATH_FLOOD:
        for (;;) {
            if ((r = subiter_yield(g, hot, 8))) {
                return r;
            }
        }
    case DEATH_BASELINE:
        break;
    }
    return subiter_fail(g, "bad mode");
}

/* The killer thread: once the parent's thread is asleep in subiter_next()
 * and the worker asleep in its generator, SIGKILL the worker. */
static void *killer_main(void *arg)
{
    struct killer *k = arg;

    sleep_s(2e-3);
    k->blocked = wait_asleep(k->worker, k->worker, 2.0);
    k->blocked = wait_asleep(getpid(), k->tid, 2.0) && k->blocked;
    k->stamp_ns = now_ns();
    if (kill(k->worker, SIGKILL) < 0) {
        k->err = errno;
    }
    return NULL;
}

/* One death: open a worker, let it die as `mode` says, time the return
 * of SUBITER_ECHILD. Returns 0 and sets *delay_us and *blocked, or -1
 * with errbuf set. */
static int death_once(enum death_mode mode, double *delay_us, bool *blocked)
{
    subiter_opts o = SUBITER_OPTS_INIT;
    subiter_errinfo ei = SUBITER_ERRINFO_INIT;
    subiter *it = NULL;
    subiter_item item;
    struct killer k;
    pthread_t th;
    int64_t t0 = 0, t1 = 0;
    int rc, want = mode == DEATH_SEGV ? SIGSEGV : SIGKILL, items = 0;

    o.grace_ms = 100;
    if (mode == DEATH_FLOOD) {
        o.buffer_items = 1;
    }
    death_gen.mode = mode;
    atomic_store(&death_sh->stamp_ns, 0);
    atomic_store(&death_sh->blocked, 0);
    fflush(NULL);
    rc = subiter_open(&it, gen_death, &death_gen, &o);
    if (rc == 0) {
        rc = subiter_start(it, NULL, 0);
    }
    if (rc != 0) {
        set_subiter_error("open/start", it, rc);
        subiter_close(it);
        return -1;
    }
    switch (mode) {
    case DEATH_SLEEP:
        memset(&k, 0, sizeof k);
        k.worker = subiter_pid(it);
        k.tid = (pid_t)syscall(SYS_gettid);
        if ((rc = pthread_create(&th, NULL, killer_main, &k)) != 0) {
            set_error("pthread_create: %s", strerror(rc));
            subiter_close(it);
            return -1;
        }
        rc = subiter_next(it, &item);
        t1 = now_ns();
        pthread_join(th, NULL);
        if (k.err) {
            set_error("kill: %s", strerror(k.err));
            subiter_close(it);
            return -1;
        }
        t0 = k.stamp_ns;
        *blocked = k.blocked;
        break;
    case DEATH_SEGV:
        rc = subiter_next(it, &item);
        t1 = now_ns();
        t0 = atomic_load(&death_sh->stamp_ns);
        *blocked = atomic_load(&death_sh->blocked) == 1;
        break;
    case DEATH_FLOOD:
        /* The parent does not consume: the worker fills the ring and
         * sleeps on it. Then kill it and drain what it left. */
        sleep_s(cfg.quick ? 0.02 : 0.05);
        *blocked = wait_asleep(subiter_pid(it), subiter_pid(it), 2.0);
        t0 = now_ns();
        if (kill(subiter_pid(it), SIGKILL) < 0) {
            set_error("kill: %s", strerror(errno));
            subiter_close(it);
            return -1;
        }
        while ((rc = subiter_next(it, &item)) > 0) {
            items++;
        }
        t1 = now_ns();
        if (rc == SUBITER_ECHILD && items == 0) {
            set_error("no buffered item before SUBITER_ECHILD");
            subiter_close(it);
            return -1;
        }
        break;
    case DEATH_BASELINE:
        rc = -EINVAL; /* not a subiter death: death_baseline_once() */
        break;
    }
    if (rc != SUBITER_ECHILD) {
        set_error("subiter_next returned %s, not SUBITER_ECHILD: %s",
                  subiter_errname(rc), subiter_errmsg(it));
        subiter_close(it);
        return -1;
    }
    if (subiter_get_errinfo(it, &ei) != 0 || ei.term_signal != want ||
        t0 <= 0) {
        set_error("worker ended otherwise (signal %d, stamp %" PRId64 "): %s",
                  ei.term_signal, t0, subiter_errmsg(it));
        subiter_close(it);
        return -1;
    }
    (void)subiter_close(it); /* SUBITER_ECHILD: it died */
    *delay_us = (double)(t1 - t0) * 1e-3;
    return 0;
}

/* The baseline: the same death without subiter. A forked child of this
 * process (as big as a worker) sleeps; SIGKILL it, wait on a pidfd, reap
 * it. What subiter adds is the difference. */
static int death_baseline_once(double *delay_us, bool *blocked)
{
    struct pollfd pfd;
    int64_t t0, t1;
    pid_t pid;
    int s;

    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        set_error("fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        for (;;) {
            pause();
        }
    }
    pfd.fd = open_pidfd(pid);
    pfd.events = POLLIN;
    pfd.revents = 0;
    if (pfd.fd < 0) {
        set_error("pidfd_open: %s", strerror(errno));
        (void)kill(pid, SIGKILL);
        (void)wait_status(pid, "baseline");
        return -1;
    }
    *blocked = wait_asleep(pid, pid, 2.0);
    t0 = now_ns();
    (void)kill(pid, SIGKILL);
    while (poll(&pfd, 1, -1) < 0 && errno == EINTR) {
    }
    s = wait_status(pid, "baseline");
    t1 = now_ns();
    close(pfd.fd);
    if (s < 0) {
        return -1;
    }
    if (!WIFSIGNALED(s) || WTERMSIG(s) != SIGKILL) {
        set_error("child ended with status 0x%x, not SIGKILL", (unsigned)s);
        return -1;
    }
    *delay_us = (double)(t1 - t0) * 1e-3;
    return 0;
}

static void print_delays(const char *label, double *v, int n, int blocked)
{
    double med = median(v, n); /* sorts v */

    out("%s n=%d seen_blocked=%d delay_us_min=%.1f delay_us_med=%.1f "
        "delay_us_max=%.1f",
        label, n, blocked, v[0], med, v[n - 1]);
}

static void bench_death(void)
{
    static const struct {
        enum death_mode mode;
        const char *label;
    } kinds[] = {
        {DEATH_SLEEP, "bench=death signal=SIGKILL state=in_generator"},
        {DEATH_SEGV, "bench=death signal=SIGSEGV state=in_generator"},
        {DEATH_FLOOD, "bench=death signal=SIGKILL state=full_ring"},
        {DEATH_BASELINE, "bench=death signal=SIGKILL baseline=fork_pidfd"},
    };
    double *v;
    size_t k;
    int i, blocked;

    v = calloc((size_t)cfg.death_reps, sizeof *v);
    if (!v) {
        out("bench=death error=\"out of memory\"");
        return;
    }
    for (k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        if (!selected(kinds[k].label)) {
            continue;
        }
        progress(kinds[k].label);
        watch(kinds[k].label);
        blocked = 0;
        for (i = 0; i < cfg.death_reps; i++) {
            bool b = false;

            if ((kinds[k].mode == DEATH_BASELINE
                     ? death_baseline_once(&v[i], &b)
                     : death_once(kinds[k].mode, &v[i], &b)) < 0) {
                out("%s n=%d error=\"%s\"", kinds[k].label, i, errbuf);
                break;
            }
            blocked += b;
        }
        alarm(0);
        if (i == cfg.death_reps) {
            print_delays(kinds[k].label, v, i, blocked);
            n_done++;
        }
    }
    free(v);
}

/* ---------------------------------------------------------- parent death */

enum pd_state { PD_STAND_BY, PD_IN_GENERATOR, PD_FULL_RING };

static const char *const pd_state_names[] = {"stand_by", "in_generator",
                                             "full_ring"};

static _Noreturn void pd_fail(const char *what, subiter *it, int rc)
{
    snprintf(death_sh->err, sizeof death_sh->err, "%s: %s: %s", what,
             subiter_errname(rc), it ? subiter_errmsg(it) : "");
    atomic_store(&death_sh->ready, -1);
    _exit(1);
}

/* The middle process: the worker's parent, until the bench kills it. It
 * puts its worker in `st`, waits until the worker sleeps there, then
 * publishes the worker's pid and waits to be killed. */
static _Noreturn void pd_middle(enum pd_state st)
{
    subiter_opts o = SUBITER_OPTS_INIT;
    subiter *it = NULL;
    pid_t w;
    int rc;

    /* Should the bench itself die, do not stay behind. */
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (st == PD_FULL_RING) {
        o.buffer_items = 1;
    }
    death_gen.mode = st == PD_FULL_RING ? DEATH_FLOOD : DEATH_SLEEP;
    rc = subiter_open(&it, gen_death, &death_gen, &o);
    if (rc != 0) {
        pd_fail("subiter_open", it, rc);
    }
    if (st != PD_STAND_BY && (rc = subiter_start(it, NULL, 0)) != 0) {
        pd_fail("subiter_start", it, rc);
    }
    w = subiter_pid(it);
    sleep_s(st == PD_FULL_RING ? 0.02 : 0.005);
    if (!wait_asleep(w, w, 5.0)) {
        pd_fail("the worker never slept", NULL, 0);
    }
    atomic_store(&death_sh->worker, (int)w);
    atomic_store(&death_sh->ready, 1);
    for (;;) {
        pause();
    }
}

/* One parent death in state `st`: returns 0 and sets *delay_us, or -1
 * with errbuf set. */
static int parent_death_once(enum pd_state st, double *delay_us)
{
    struct pollfd pfd;
    pid_t mid, w;
    double end;
    int64_t t0, t1;
    int pidfd, s, ready = 0;

    atomic_store(&death_sh->ready, 0);
    atomic_store(&death_sh->worker, 0);
    death_sh->err[0] = '\0';
    fflush(NULL);
    mid = fork();
    if (mid < 0) {
        set_error("fork: %s", strerror(errno));
        return -1;
    }
    if (mid == 0) {
        pd_middle(st);
    }
    end = now_s() + 10;
    while (now_s() < end && (ready = atomic_load(&death_sh->ready)) == 0) {
        sleep_s(500e-6);
    }
    if (ready != 1) {
        set_error("middle: %s",
                  ready < 0 ? death_sh->err : "not ready in 10 s");
        (void)kill(mid, SIGKILL);
        (void)wait_status(mid, "middle");
        return -1;
    }
    w = (pid_t)atomic_load(&death_sh->worker);
    /* Opened while the worker is the middle's child and alive: the fd
     * names this process, whatever happens to the pid. */
    pidfd = open_pidfd(w);

    t0 = now_ns();
    (void)kill(mid, SIGKILL);
    if ((s = wait_status(mid, "middle")) < 0) {
        goto fail;
    }
    /* The middle is reaped, so its worker is ours now (we are a
     * subreaper). The pidfd bounds the wait should it never die. */
    if (pidfd >= 0) {
        pfd.fd = pidfd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        while (poll(&pfd, 1, 5000) < 0 && errno == EINTR) {
        }
        if (pfd.revents == 0) {
            set_error("worker %d alive 5 s after its parent's death", (int)w);
            (void)kill(w, SIGKILL);
            (void)wait_status(w, "worker");
            goto fail;
        }
    }
    if ((s = wait_status(w, "worker")) < 0) {
        goto fail;
    }
    t1 = now_ns();
    if (pidfd >= 0) {
        close(pidfd);
    }
    if (!WIFSIGNALED(s) || WTERMSIG(s) != SIGKILL) {
        set_error("worker %d ended with status 0x%x, not SIGKILL", (int)w,
                  (unsigned)s);
        return -1;
    }
    *delay_us = (double)(t1 - t0) * 1e-3;
    return 0;

fail:
    if (pidfd >= 0) {
        close(pidfd);
    }
    return -1;
}

static void bench_parent_death(void)
{
    char label[128];
    double *v;
    int prev = 0, st, i;
    bool any = false;

    for (st = PD_STAND_BY; st <= PD_FULL_RING; st++) {
        snprintf(label, sizeof label, "bench=parent_death state=%s",
                 pd_state_names[st]);
        any = any || selected(label);
    }
    if (!any) {
        return;
    }
    v = calloc((size_t)cfg.pd_reps, sizeof *v);
    if (!v) {
        out("bench=parent_death error=\"out of memory\"");
        return;
    }
    /* Orphans come to us instead of init, so that we can wait for them. */
    if (prctl(PR_GET_CHILD_SUBREAPER, &prev, 0, 0, 0) < 0 ||
        prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
        out("bench=parent_death error=\"prctl: %s\"", strerror(errno));
        free(v);
        return;
    }
    for (st = PD_STAND_BY; st <= PD_FULL_RING; st++) {
        snprintf(label, sizeof label, "bench=parent_death state=%s",
                 pd_state_names[st]);
        if (!selected(label)) {
            continue;
        }
        progress(label);
        watch(label);
        for (i = 0; i < cfg.pd_reps; i++) {
            if (parent_death_once((enum pd_state)st, &v[i]) < 0) {
                out("%s n=%d error=\"%s\"", label, i, errbuf);
                break;
            }
        }
        alarm(0);
        if (i == cfg.pd_reps) {
            double med = median(v, i);

            out("%s n=%d delay_us_min=%.1f delay_us_med=%.1f "
                "delay_us_max=%.1f",
                label, i, v[0], med, v[i - 1]);
            n_done++;
        }
    }
    (void)prctl(PR_SET_CHILD_SUBREAPER, prev, 0, 0, 0);
    free(v);
}

/* --------------------------------------------------------------- pinned */

/* Throughput with both sides on one CPU (the worker inherits the mask),
 * next to the same spec unpinned, measured back to back. */
static void bench_pinned(double *ratio)
{
    static const size_t pin_sizes[] = {64, 64 * KIB};
    cpu_set_t orig, one;
    int cpu, k;
    size_t s;

    *ratio = -1;
    if (sched_getaffinity(0, sizeof orig, &orig) < 0) {
        out("bench=pinned error=\"sched_getaffinity: %s\"", strerror(errno));
        return;
    }
    cpu = sched_getcpu();
    if (cpu < 0 || !CPU_ISSET(cpu, &orig)) {
        for (cpu = 0; cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &orig); cpu++) {
        }
    }
    for (s = 0; s < sizeof pin_sizes / sizeof pin_sizes[0]; s++) {
        for (k = 0; k < 2; k++) {
            struct spec t = {"pinned",
                             k ? IMPL_RESERVE : IMPL_YIELD,
                             CONSUME_TOUCH,
                             pin_sizes[s],
                             64,
                             SUBITER_OPTS_DEFAULT_BUFFER_BYTES};
            struct result *u, *p;
            char label[256];

            label_of(&t, true, label, sizeof label);
            if (!selected(label)) {
                continue;
            }
            u = measure(&t, false, pilot_items(t.item_bytes));
            if (!u) {
                continue;
            }
            print_throughput(u);
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            if (sched_setaffinity(0, sizeof one, &one) < 0) {
                out("bench=pinned error=\"sched_setaffinity: %s\"",
                    strerror(errno));
                return;
            }
            p = measure(&t, true, pilot_items(t.item_bytes));
            (void)sched_setaffinity(0, sizeof orig, &orig);
            if (!p) {
                continue;
            }
            print_throughput(p);
            out("bench=pinned impl=%s item_bytes=%zu cpu=%d cpus_allowed=%d "
                "pinned_items_per_s_med=%.6g unpinned_items_per_s_med=%.6g "
                "ratio=%.3f",
                impl_names[t.impl], t.item_bytes, cpu, CPU_COUNT(&orig),
                p->rate_med, u->rate_med, p->rate_med / u->rate_med);
            if (*ratio < 0 && t.item_bytes == 64 && t.impl == IMPL_YIELD) {
                *ratio = p->rate_med / u->rate_med;
            }
        }
    }
}

/* ---------------------------------------------------------------- pools */

/*
 * bench=pool_cpu: a CPU-bound generator (few items, each a hash chain of
 * CPU_STEPS steps: a few milliseconds) on a plain subiter handle, a pool
 * of one worker and a pool of two, all on the same total of items, split
 * into shards with subiter_worker_id()/subiter_num_workers().
 * bench=pool_merge: 64-byte items yielded as fast as possible by a pool of
 * two workers, ORDERED (round robin) against UNORDERED, with the workers'
 * default options (a pool's own item bound), then again with buffer_items
 * MERGE_BOUND: a round robin can run only as far ahead as the bound of
 * the worker whose turn it is, so the bound decides what the order
 * costs when three processes share two CPUs. Every variant's
 * workers stay open across the runs, which alternate between the variants
 * (the machine is noisy: what hits one hits the others alike); a run is
 * timed from subiter_pool_start() (or subiter_start()) to the end of the
 * iteration. Rates and wall_s_med are medians over cfg.reps runs,
 * cpu_parent_s and cpu_child_s (summed over the workers) means per run.
 */

#define CPU_STEPS ((uint64_t)3 << 19) /* hash steps per pool_cpu item */
#define CPU_ITEM 16                   /* pool_cpu item: index, hash */
#define MERGE_ITEM 64                 /* pool_merge item size */
/* pool_merge's second item bound: SUBITER_OPTS_INIT's, which a pool's
 * workers get when the caller passes worker options */
#define MERGE_BOUND SUBITER_OPTS_DEFAULT_BUFFER_ITEMS
#define POOL_SLOTS 16 /* per-worker CPU marks */

/* The pool generator's input: the same for every worker and every run of
 * a measurement. */
struct pool_input {
    uint64_t total; /* items over all shards */
    uint64_t steps; /* hash steps per item; 0: none */
    uint64_t item_bytes;
};

/* The pool generator's parameters; the worker reads its copy. */
struct pool_gen {
    unsigned slot; /* first of its workers' CPU marks in pool_cpu_ns */
};

/* One variant of a pool bench: a handle or a pool, and its figures. */
struct pool_variant {
    const char *impl;
    unsigned workers;
    int order;             /* pools only; -1: a plain handle */
    unsigned buffer_items; /* the workers' bound; 0: their defaults */
    bool on;
    subiter *it;
    subiter_pool *p;
    struct pool_gen gen;
    char label[256];
    double rates[MAX_REPS], walls[MAX_REPS], cpu_self, cpu_child;
    double child_mark;
    double rate_med, rate_max;
    uint64_t check; /* the XOR of the hashes of the last run */
};

/* What the pool benches leave for the ratios; < 0: not measured. */
struct pool_figures {
    double cpu2_vs_cpu1;
    double cpu2_vs_cpu1_best; /* of the best runs: what a quiet machine
                                 gives (other load only slows runs) */
    double cpu1_vs_handle;
    double ordered_vs_unordered;
    double ordered_vs_unordered_bound; /* with buffer_items MERGE_BOUND */
};

/* Workers' cumulative CPU time (ns), one MAP_SHARED word per worker. */
static _Atomic uint64_t *pool_cpu_ns;
static struct pool_variant pool_vars[4];

/* A chain of multiply-xorshift steps: pure computation, no memory. */
static uint64_t cpu_work(uint64_t seed, uint64_t steps)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15u + 1, i;

    for (i = 0; i < steps; i++) {
        x ^= x >> 31;
        x *= 0x7fb5d329728ea185u;
        x ^= x >> 27;
    }
    return x;
}

/* Items i of its shard (i % num_workers == worker_id), each its index
 * and, with steps, the hash of the index; then its CPU mark. */
static int gen_pool(subiter_gen *g, void *arg)
{
    const struct pool_gen *c = arg;
    unsigned id = subiter_worker_id(g), nw = subiter_num_workers(g);
    struct pool_input in;
    const void *p;
    size_t len;
    uint64_t i;
    int r;

    p = subiter_input(g, &len);
    if (!p || len != sizeof in) {
        return subiter_fail(g, "bad input (%zu bytes)", len);
    }
    memcpy(&in, p, sizeof in);
    if (in.item_bytes < CPU_ITEM || in.item_bytes > MAX_ITEM) {
        return subiter_fail(g, "bad item size %" PRIu64, in.item_bytes);
    }
    for (i = id; i < in.total; i += nw) {
        uint64_t h = in.steps ? cpu_work(i, in.steps) : i;

        memcpy(hot, &i, sizeof i);
        memcpy(hot + sizeof i, &h, sizeof h);
        if ((r = subiter_yield(g, hot, (size_t)in.item_bytes))) {
            return r;
        }
    }
    if (c->slot + id < POOL_SLOTS) {
        atomic_store_explicit(&pool_cpu_ns[c->slot + id],
                              (uint64_t)(cpu_s(RUSAGE_SELF) * 1e9),
                              memory_order_relaxed);
    }
    return 0;
}

static void set_pool_error(const char *what, subiter_pool *p, int r)
{
    set_error("%s: %s: %s", what, subiter_errname(r),
              p ? subiter_pool_errmsg(p) : subiter_strerror(r));
}

/* Open the variant's handle or pool; its workers' marks start at slot. */
static int pool_setup(struct pool_variant *v, unsigned slot)
{
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;
    subiter_opts o = SUBITER_OPTS_INIT;
    const subiter_opts *wo = NULL;
    unsigned k;
    int rc;

    v->gen.slot = slot;
    for (k = 0; k < v->workers && slot + k < POOL_SLOTS; k++) {
        atomic_store_explicit(&pool_cpu_ns[slot + k], 0, memory_order_relaxed);
    }
    v->child_mark = 0;
    v->cpu_self = v->cpu_child = 0;
    if (v->buffer_items > 0) {
        o.buffer_items = v->buffer_items;
        wo = &o;
    }
    fflush(NULL);
    if (v->order < 0) {
        rc = subiter_open(&v->it, gen_pool, &v->gen, wo);
        if (rc != 0) {
            set_subiter_error("subiter_open", v->it, rc);
            subiter_close(v->it);
            v->it = NULL;
            return -1;
        }
        return 0;
    }
    po.workers = v->workers;
    po.order = v->order;
    po.worker = wo;
    rc = subiter_pool_open(&v->p, gen_pool, &v->gen, &po);
    if (rc != 0) {
        set_pool_error("subiter_pool_open", v->p, rc);
        subiter_pool_close(v->p);
        v->p = NULL;
        return -1;
    }
    return 0;
}

static int pool_teardown(struct pool_variant *v)
{
    int bad = close_handle(&v->it) < 0, rc;

    if (v->p) {
        rc = subiter_pool_close(v->p);
        v->p = NULL;
        if (rc != 0) {
            set_error("subiter_pool_close: %s", subiter_errname(rc));
            bad = 1;
        }
    }
    return bad ? -1 : 0;
}

/* One run of the variant over `in`: checks that every index came once
 * (in sequence when ordered, from the worker owning its shard) and
 * records the wall time, the parent's CPU and the workers'. */
static int pool_run(struct pool_variant *v, const struct pool_input *in,
                    struct sample *s)
{
    uint64_t got = 0, sum = 0, bad = 0, check = 0, idx, h, want_sum;
    bool seq = v->order == SUBITER_POOL_ORDERED || v->it != NULL;
    double c0, t0, mark = 0;
    unsigned k;
    int rc;

    c0 = cpu_s(RUSAGE_SELF);
    t0 = now_s();
    if (v->it) {
        subiter_item item;

        rc = subiter_start(v->it, in, sizeof *in);
        if (rc != 0) {
            set_subiter_error("subiter_start", v->it, rc);
            return -1;
        }
        while ((rc = subiter_next(v->it, &item)) > 0) {
            got++;
            if (item.len != in->item_bytes) {
                bad++;
                continue;
            }
            memcpy(&idx, item.data, sizeof idx);
            memcpy(&h, (const unsigned char *)item.data + sizeof idx, sizeof h);
            bad += idx != got - 1;
            sum += idx;
            check ^= h;
        }
        if (rc < 0) {
            set_subiter_error("subiter_next", v->it, rc);
            return -1;
        }
    } else {
        subiter_pool_item item;

        rc = subiter_pool_start(v->p, in, sizeof *in);
        if (rc != 0) {
            set_pool_error("subiter_pool_start", v->p, rc);
            return -1;
        }
        while ((rc = subiter_pool_next(v->p, &item)) > 0) {
            got++;
            if (item.kind != SUBITER_POOL_ITEM || item.len != in->item_bytes) {
                bad++;
                continue;
            }
            memcpy(&idx, item.data, sizeof idx);
            memcpy(&h, (const unsigned char *)item.data + sizeof idx, sizeof h);
            bad += (seq && idx != got - 1) || idx % v->workers != item.worker;
            sum += idx;
            check ^= h;
        }
        if (rc < 0) {
            set_pool_error("subiter_pool_next", v->p, rc);
            return -1;
        }
    }
    s->wall_s = now_s() - t0;
    s->cpu_self_s = cpu_s(RUSAGE_SELF) - c0;
    want_sum = in->total > 0 ? in->total * (in->total - 1) / 2 : 0;
    if (got != in->total || sum != want_sum || bad != 0) {
        set_error("got %" PRIu64 " of %" PRIu64 " items, index sum %" PRIu64
                  " (want %" PRIu64 "), %" PRIu64 " %s",
                  got, in->total, sum, want_sum, bad,
                  seq ? "out of sequence, misattributed or malformed"
                      : "misattributed or malformed");
        return -1;
    }
    for (k = 0; k < v->workers && v->gen.slot + k < POOL_SLOTS; k++) {
        mark += (double)atomic_load_explicit(&pool_cpu_ns[v->gen.slot + k],
                                             memory_order_relaxed) *
                1e-9;
    }
    s->cpu_child_s = mark - v->child_mark;
    v->child_mark = mark;
    v->check = check;
    if (getenv("BENCH_TRACE")) {
        fprintf(stderr, "trace: %s n=%" PRIu64 " wall=%.6f\n", v->label,
                in->total, s->wall_s);
    }
    return 0;
}

/* Open the selected variants, warm each up with `warm`, then run them
 * cfg.reps times over `in`, in an order that rotates with every round.
 * Prints a line per variant (an error line for a failed one, which is
 * then left out). Returns how many variants have figures. */
static int pool_measure(struct pool_variant *vars, int nv,
                        const struct pool_input *in,
                        const struct pool_input *warm, const char *extra)
{
    struct sample s;
    int i, j, ok = 0;
    unsigned slot = 0;

    for (j = 0; j < nv; j++) {
        struct pool_variant *v = &vars[j];

        v->rate_med = -1;
        if (!v->on) {
            continue;
        }
        progress(v->label);
        watch(v->label);
        if (pool_setup(v, slot) < 0 || pool_run(v, warm, &s) < 0) {
            out("%s items=%" PRIu64 " error=\"%s\"", v->label, warm->total,
                errbuf);
            (void)pool_teardown(v);
            v->on = false;
        }
        slot += v->workers;
    }
    for (i = 0; i < cfg.reps; i++) {
        for (j = 0; j < nv; j++) {
            struct pool_variant *v = &vars[(i + j) % nv];

            if (!v->on) {
                continue;
            }
            progress(v->label);
            watch(v->label);
            if (pool_run(v, in, &s) < 0) {
                out("%s items=%" PRIu64 " error=\"%s\"", v->label, in->total,
                    errbuf);
                (void)pool_teardown(v);
                v->on = false;
                continue;
            }
            v->rates[i] = (double)in->total / (s.wall_s > 0 ? s.wall_s : 1e-9);
            v->walls[i] = s.wall_s;
            v->cpu_self += s.cpu_self_s;
            v->cpu_child += s.cpu_child_s;
        }
    }
    alarm(0);
    for (j = 0; j < nv; j++) {
        struct pool_variant *v = &vars[j];
        double wall;

        if (!v->on) {
            continue;
        }
        watch(v->label);
        if (pool_teardown(v) < 0) {
            out("%s items=%" PRIu64 " error=\"%s\"", v->label, in->total,
                errbuf);
            continue;
        }
        alarm(0);
        v->rate_med = median(v->rates, cfg.reps); /* sorts rates */
        v->rate_max = v->rates[cfg.reps - 1];
        wall = median(v->walls, cfg.reps);
        out("%s%s items=%" PRIu64 " reps=%d items_per_s_min=%.6g "
            "items_per_s_med=%.6g items_per_s_max=%.6g ns_per_item_med=%.4g "
            "wall_s_med=%.3f cpu_parent_s=%.3f cpu_child_s=%.3f",
            v->label, extra, in->total, cfg.reps, v->rates[0], v->rate_med,
            v->rates[cfg.reps - 1], 1e9 / v->rate_med, wall,
            v->cpu_self / cfg.reps, v->cpu_child / cfg.reps);
        n_done++;
        ok++;
    }
    return ok;
}

/* Fill *v and say whether the filter selects it. */
static bool pool_variant_init(struct pool_variant *v, const char *bench,
                              const char *impl, unsigned workers, int order,
                              size_t item_bytes, unsigned buffer_items)
{
    int k;

    memset(v, 0, sizeof *v);
    v->impl = impl;
    v->workers = workers;
    v->order = order;
    v->buffer_items = buffer_items;
    k = snprintf(v->label, sizeof v->label, "bench=%s impl=%s workers=%u",
                 bench, impl, workers);
    if (order >= 0 && k > 0 && (size_t)k < sizeof v->label) {
        k += snprintf(v->label + k, sizeof v->label - (size_t)k, " order=%s",
                      order == SUBITER_POOL_ORDERED ? "ordered" : "unordered");
    }
    if (k > 0 && (size_t)k < sizeof v->label) {
        k += snprintf(v->label + k, sizeof v->label - (size_t)k,
                      " item_bytes=%zu", item_bytes);
    }
    if (buffer_items > 0 && k > 0 && (size_t)k < sizeof v->label) {
        snprintf(v->label + k, sizeof v->label - (size_t)k, " buffer_items=%u",
                 buffer_items);
    }
    v->on = selected(v->label);
    return v->on;
}

/* The CPU-bound generator on one worker (a handle, a pool) and on two. */
static void bench_pool_cpu(struct pool_figures *f)
{
    struct pool_variant *h = &pool_vars[0], *p1 = &pool_vars[1],
                        *p2 = &pool_vars[2];
    struct pool_input in, warm;
    double item_s = 1e9, t0, target = cfg.quick ? 0.1 : 1.0;
    char extra[64];
    uint64_t n;
    int i;
    bool any = false;

    f->cpu2_vs_cpu1 = f->cpu2_vs_cpu1_best = f->cpu1_vs_handle = -1;
    any |=
        pool_variant_init(h, "pool_cpu", "subiter_yield", 1, -1, CPU_ITEM, 0);
    any |= pool_variant_init(p1, "pool_cpu", "pool", 1, SUBITER_POOL_ORDERED,
                             CPU_ITEM, 0);
    any |= pool_variant_init(p2, "pool_cpu", "pool", 2, SUBITER_POOL_ORDERED,
                             CPU_ITEM, 0);
    if (!any) {
        return;
    }
    /* One item's cost here, best of three: the item count follows. */
    progress("bench=pool_cpu calibration");
    for (i = 0; i < 3; i++) {
        t0 = now_s();
        sink += cpu_work((uint64_t)i, CPU_STEPS);
        t0 = now_s() - t0;
        item_s = t0 < item_s ? t0 : item_s;
    }
    n = round2(target / (item_s > 0 ? item_s : 1e-9));
    n = n < 16 ? 16 : n;
    in.total = n;
    in.steps = CPU_STEPS;
    in.item_bytes = CPU_ITEM;
    warm = in;
    warm.total = 4;
    snprintf(extra, sizeof extra, " work_ms=%.3f", item_s * 1e3);
    if (pool_measure(pool_vars, 3, &in, &warm, extra) == 0) {
        return;
    }
    if (p1->rate_med > 0 && p2->rate_med > 0) {
        f->cpu2_vs_cpu1 = p2->rate_med / p1->rate_med;
        f->cpu2_vs_cpu1_best = p2->rate_max / p1->rate_max;
    }
    if (p1->rate_med > 0 && h->rate_med > 0) {
        f->cpu1_vs_handle = p1->rate_med / h->rate_med;
    }
    if ((h->rate_med > 0 && p1->rate_med > 0 && h->check != p1->check) ||
        (p1->rate_med > 0 && p2->rate_med > 0 && p1->check != p2->check) ||
        (h->rate_med > 0 && p2->rate_med > 0 && h->check != p2->check)) {
        out("bench=pool_cpu error=\"the variants' hashes differ\"");
    }
}

/* The ordered merge against the unordered one, at 64-byte items: with the
 * pool's default worker options, then with a small item bound. */
static void bench_pool_merge(struct pool_figures *f)
{
    struct pool_variant *v = pool_vars;
    struct pool_input in, warm;
    bool any = false;
    int k;

    f->ordered_vs_unordered = f->ordered_vs_unordered_bound = -1;
    for (k = 0; k < 4; k++) {
        any |= pool_variant_init(&v[k], "pool_merge", "pool", 2,
                                 k % 2 ? SUBITER_POOL_UNORDERED
                                       : SUBITER_POOL_ORDERED,
                                 MERGE_ITEM, k < 2 ? 0 : MERGE_BOUND);
    }
    if (!any) {
        return;
    }
    in.total = cfg.quick ? 400000 : 4000000;
    in.steps = 0;
    in.item_bytes = MERGE_ITEM;
    /* Twice around each worker's ring: every page faulted in. */
    warm = in;
    warm.total =
        4 * SUBITER_OPTS_DEFAULT_BUFFER_BYTES / (MERGE_ITEM + REC_GUESS);
    if (pool_measure(pool_vars, 4, &in, &warm, "") == 0) {
        return;
    }
    if (v[0].rate_med > 0 && v[1].rate_med > 0) {
        f->ordered_vs_unordered = v[0].rate_med / v[1].rate_med;
    }
    if (v[2].rate_med > 0 && v[3].rate_med > 0) {
        f->ordered_vs_unordered_bound = v[2].rate_med / v[3].rate_med;
    }
}

/* --------------------------------------------------------------- ratios */

static const struct result *find(const char *bench, enum impl impl,
                                 enum consume consume, size_t item_bytes)
{
    int i;

    for (i = 0; i < n_results; i++) {
        const struct result *r = &results[i];

        if (strcmp(r->spec.bench, bench) == 0 && r->spec.impl == impl &&
            r->spec.consume == consume && r->spec.item_bytes == item_bytes &&
            !r->pinned && (!is_subiter(impl) || r->spec.buffer_items == 64)) {
            return r;
        }
    }
    return NULL;
}

/* One ratio line; lo/hi are the bounds (NAN-free: < 0 = none). */
static void ratio(const char *name, double value, double lo, double hi)
{
    char target[64] = "";

    if (value < 0) {
        return;
    }
    if (lo >= 0) {
        snprintf(target, sizeof target, " target_min=%g met=%s", lo,
                 value >= lo ? "yes" : "no");
    } else if (hi >= 0) {
        snprintf(target, sizeof target, " target_max=%g met=%s", hi,
                 value <= hi ? "yes" : "no");
    }
    out("bench=ratio name=%s value=%.3g%s", name, value, target);
}

/* Items per second of a over b (bandwidth alike: same item size). */
static void rate_ratio(const char *name, enum impl a, enum consume ca,
                       enum impl b, enum consume cb, size_t item_bytes,
                       double lo)
{
    const struct result *x = find("throughput", a, ca, item_bytes);
    const struct result *y = find("throughput", b, cb, item_bytes);

    if (x && y) {
        ratio(name, x->rate_med / y->rate_med, lo, -1);
    }
}

static void print_ratios(double fork_med, double ofc_med, double pin_ratio,
                         double idle_c, double idle_p,
                         const struct pool_figures *pf)
{
    const enum consume T = CONSUME_TOUCH, R = CONSUME_READ;
    char name[64];

    rate_ratio("yield_64B/pipe_64B", IMPL_YIELD, T, IMPL_PIPE, T, 64, 10);
    rate_ratio("reserve_64B/pipe_64B", IMPL_RESERVE, T, IMPL_PIPE, T, 64, 10);
    rate_ratio("yield_64B/pipe_pb_64B", IMPL_YIELD, T, IMPL_PIPE_PB, T, 64, 10);
    rate_ratio("reserve_64B/pipe_pb_64B", IMPL_RESERVE, T, IMPL_PIPE_PB, T, 64,
               10);
    rate_ratio("yield_64B/inproc_64B", IMPL_YIELD, T, IMPL_INPROC, T, 64, -1);
    rate_ratio("yield_1MiB/memcpy_1MiB", IMPL_YIELD, T, IMPL_MEMCPY,
               CONSUME_NONE, MIB, 0.5);
    rate_ratio("yield_1MiB_read/memcpy_1MiB", IMPL_YIELD, R, IMPL_MEMCPY,
               CONSUME_NONE, MIB, 0.5);
    rate_ratio("reserve_1MiB/pipe_1MiB", IMPL_RESERVE, T, IMPL_PIPE, T, MIB,
               10);
    rate_ratio("reserve_1MiB_read/pipe_1MiB", IMPL_RESERVE, R, IMPL_PIPE, T,
               MIB, 10);
    if (fork_med > 0 && ofc_med > 0) {
        ratio("open_first_close/fork_exit_wait", ofc_med / fork_med, -1, 3);
    }
    ratio("pinned/unpinned_yield_64B", pin_ratio, -1, -1);
    ratio("idle_consumer_cpu/wall", idle_c, -1, 0.02);
    ratio("idle_producer_cpu/wall", idle_p, -1, 0.02);
    ratio("pool2_vs_pool1", pf->cpu2_vs_cpu1, 1.8, -1);
    ratio("pool2_vs_pool1_best", pf->cpu2_vs_cpu1_best, -1, -1);
    ratio("pool1_vs_subiter", pf->cpu1_vs_handle, -1, -1);
    ratio("pool_ordered_vs_unordered", pf->ordered_vs_unordered, 0.9, -1);
    snprintf(name, sizeof name, "pool_ordered_vs_unordered_%uitems",
             (unsigned)MERGE_BOUND);
    ratio(name, pf->ordered_vs_unordered_bound, -1, -1);
}

/* ----------------------------------------------------------------- main */

static void usage(FILE *f)
{
    fputs("usage: subiter-bench [--quick] [--reps=N] [--filter=TEXT[,...]] "
          "[--pin]\n"
          "  --quick        runs a tenth as long, with fewer repetitions\n"
          "  --reps=N       repetitions per measurement (default 5; quick 3)\n"
          "  --filter=TEXT  only measurements whose label contains one of\n"
          "                 the comma-separated TEXTs, e.g. "
          "--filter=impl=pipe,latency\n"
          "  --pin          only the pinned/unpinned comparison\n"
          "  (e.g. --filter=bench=death,bench=parent_death: the death "
          "delays;\n"
          "  --filter=bench=pool_cpu,bench=pool_merge: the pools)\n"
          "Output: one key=value line per measurement on stdout.\n",
          f);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"quick", no_argument, NULL, 'q'},
        {"reps", required_argument, NULL, 'r'},
        {"filter", required_argument, NULL, 'f'},
        {"pin", no_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    double fork_med, ofc_med, pin_ratio, idle_c, idle_p;
    struct pool_figures pf;
    int c, reps = 0;
    struct sigaction sa;
    size_t i;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'q':
            cfg.quick = true;
            break;
        case 'r':
            reps = atoi(optarg);
            if (reps < 1 || reps > MAX_REPS) {
                fprintf(stderr, "subiter-bench: --reps must be 1..%d\n",
                        MAX_REPS);
                return 2;
            }
            break;
        case 'f':
            cfg.filter = optarg;
            break;
        case 'p':
            cfg.filter = "bench=pinned";
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    cfg.reps = reps ? reps : cfg.quick ? 3 : 5;
    cfg.lat_reps = cfg.quick ? 30 : 200;
    cfg.target_s = cfg.quick ? 0.03 : 0.3;
    cfg.idle_s = cfg.quick ? 0.25 : 1.0;
    cfg.death_reps = cfg.quick ? 30 : 100;
    cfg.pd_reps = cfg.quick ? 10 : 20;
    cfg.tty = isatty(STDERR_FILENO);

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    /* A dead pipe child must show as a short read, not kill the bench. */
    signal(SIGPIPE, SIG_IGN);

    rbuf_size = 8 * MIB + PB_SLACK;
    hot = malloc(MAX_ITEM);
    rbuf = malloc(rbuf_size);
    wbuf = malloc(MAX_ITEM + PB_SLACK);
    child_cpu_ns = mmap(NULL, sizeof *child_cpu_ns, PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    death_sh = mmap(NULL, sizeof *death_sh, PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pool_cpu_ns =
        mmap(NULL, POOL_SLOTS * sizeof *pool_cpu_ns, PROT_READ | PROT_WRITE,
             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (child_cpu_ns == MAP_FAILED || death_sh == MAP_FAILED ||
        pool_cpu_ns == MAP_FAILED) {
        fprintf(stderr, "subiter-bench: mmap: %s\n", strerror(errno));
        return 1;
    }
    if (!hot || !rbuf || !wbuf) {
        fprintf(stderr, "subiter-bench: out of memory\n");
        return 1;
    }
    /* Fault everything in now so no run pays for it. */
    for (i = 0; i < MAX_ITEM; i++) {
        hot[i] = (unsigned char)(i * 131 + 7);
    }
    memset(rbuf, 1, rbuf_size);
    memset(wbuf, 2, MAX_ITEM + PB_SLACK);

    t_begin = now_s();
    out("bench=info version=%s cpus_online=%ld quick=%d reps=%d "
        "target_s=%.2f",
        subiter_version(), sysconf(_SC_NPROCESSORS_ONLN), cfg.quick ? 1 : 0,
        cfg.reps, cfg.target_s);

    bench_throughput();
    bench_latency(&fork_med, &ofc_med);
    bench_pingpong();
    bench_idle(&idle_c, &idle_p);
    bench_death();
    bench_parent_death();
    bench_pinned(&pin_ratio);
    bench_pool_cpu(&pf);
    bench_pool_merge(&pf);
    print_ratios(fork_med, ofc_med, pin_ratio, idle_c, idle_p, &pf);

    out("bench=done seconds=%.1f measurements=%d sink=%" PRIu64,
        now_s() - t_begin, n_done, sink);
    free(hot);
    free(rbuf);
    free(wbuf);
    return 0;
}
