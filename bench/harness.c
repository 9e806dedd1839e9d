/* harness.c: the common part of subiter-bench: the command line, the
 * run's buffers, the --filter, key=value output and errors, the watchdog,
 * timing and medians, and the helpers for child processes (full reads and
 * writes, reaping, pidfds, waiting until a thread sleeps). Measures
 * nothing itself.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/harness.h"

/* ------------------------------------------------------- command line */

static void usage(FILE *f)
{
    fputs("usage: subiter-bench [--quick] [--reps=N] [--filter=TEXT[,...]] "
          "[--pin] [--contention]\n"
          "  --quick        runs a tenth as long, with fewer repetitions\n"
          "  --reps=N       repetitions per measurement (default 5; quick 3)\n"
          "  --filter=TEXT  only measurements whose label contains one of\n"
          "                 the comma-separated TEXTs, e.g. "
          "--filter=impl=pipe,latency\n"
          "  --pin          only the pinned/unpinned comparison\n"
          "  --contention   only bench=contention: 64 B items and deaths\n"
          "                 beside `stress-ng --cpu 4` (skipped without it)\n"
          "  (e.g. --filter=bench=death,bench=parent_death: the death "
          "delays;\n"
          "  --filter=bench=pool_cpu,bench=pool_merge: the pools;\n"
          "  --filter=bench=resume: a resumed run against a fresh one)\n"
          "Output: one key=value line per measurement on stdout.\n",
          f);
}

int bench_parse_args(struct bench_cfg *cfg, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"quick", no_argument, NULL, 'q'},
        {"reps", required_argument, NULL, 'r'},
        {"filter", required_argument, NULL, 'f'},
        {"pin", no_argument, NULL, 'p'},
        {"contention", no_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c, reps = 0;

    memset(cfg, 0, sizeof *cfg);
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'q':
            cfg->quick = true;
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
            cfg->filter = optarg;
            break;
        case 'p':
            cfg->filter = "bench=pinned";
            break;
        case 'c':
            cfg->contention = true;
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
    cfg->reps = reps ? reps : cfg->quick ? 3 : 5;
    cfg->lat_reps = cfg->quick ? 30 : 200;
    cfg->target_s = cfg->quick ? 0.03 : 0.3;
    cfg->idle_s = cfg->quick ? 0.25 : 1.0;
    cfg->death_reps = cfg->quick ? 30 : 100;
    cfg->pd_reps = cfg->quick ? 10 : 20;
    cfg->tty = isatty(STDERR_FILENO);
    return -1;
}

/* ----------------------------------------------------------- the run */

/* The watchdog's timer carries the label's address, so that its handler
 * needs no global to name the measurement that hung. */
static void on_watchdog(int sig, siginfo_t *si, void *uc)
{
    static const char msg[] = "subiter-bench: watchdog: no result within "
                              "the time limit; stuck in: ";
    const char *label =
        si && si->si_code == SI_TIMER ? si->si_value.sival_ptr : "";
    ssize_t n;

    (void)sig;
    (void)uc;
    n = write(STDERR_FILENO, msg, sizeof msg - 1);
    n = write(STDERR_FILENO, label, strlen(label));
    n = write(STDERR_FILENO, "\n", 1);
    (void)n;
    _exit(3);
}

int bench_init(struct bench *b, const struct bench_cfg *cfg)
{
    struct sigaction sa;
    struct sigevent sev;
    size_t i;

    memset(b, 0, sizeof *b);
    b->cfg = cfg;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_watchdog;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGALRM, &sa, NULL);
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGALRM;
    sev.sigev_value.sival_ptr = b->watch_label;
    if (timer_create(CLOCK_MONOTONIC, &sev, &b->watchdog) < 0) {
        fprintf(stderr, "subiter-bench: timer_create: %s\n", strerror(errno));
        return -1;
    }
    /* A dead pipe child must show as a short read, not kill the bench. */
    signal(SIGPIPE, SIG_IGN);

    b->rbuf_size = 8 * MIB + PB_SLACK;
    b->hot = malloc(MAX_ITEM);
    b->rbuf = malloc(b->rbuf_size);
    b->wbuf = malloc(MAX_ITEM + PB_SLACK);
    b->child_cpu_ns = map_shared(sizeof *b->child_cpu_ns);
    if (!b->child_cpu_ns) {
        fprintf(stderr, "subiter-bench: mmap: %s\n", strerror(errno));
        return -1;
    }
    if (!b->hot || !b->rbuf || !b->wbuf) {
        fprintf(stderr, "subiter-bench: out of memory\n");
        return -1;
    }
    /* Fault everything in now so no run pays for it. */
    for (i = 0; i < MAX_ITEM; i++) {
        b->hot[i] = (unsigned char)(i * 131 + 7);
    }
    memset(b->rbuf, 1, b->rbuf_size);
    memset(b->wbuf, 2, MAX_ITEM + PB_SLACK);
    b->t_begin = now_s();
    return 0;
}

void bench_fini(struct bench *b)
{
    timer_delete(b->watchdog);
    if (b->child_cpu_ns) {
        munmap(b->child_cpu_ns, sizeof *b->child_cpu_ns);
    }
    free(b->hot);
    free(b->rbuf);
    free(b->wbuf);
}

void *map_shared(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}

/* ------------------------------------------------------------ output */

static void clear_progress(const struct bench *b)
{
    if (b->cfg->tty) {
        fputs("\r\033[K", stderr);
    }
}

void progress(struct bench *b, const char *label)
{
    if (b->cfg->tty) {
        fprintf(stderr, "\r\033[K[%d, %.0f s] %s", b->n_done + 1,
                now_s() - b->t_begin, label);
    }
}

/* One result line on stdout, flushed at once so a pipe sees it. */
void out(struct bench *b, const char *fmt, ...)
{
    va_list ap;

    clear_progress(b);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* Run a measurement whose label contains one of the filter's
 * comma-separated words (all of them without a filter). */
bool selected(const struct bench *b, const char *label)
{
    const char *f = b->cfg->filter;

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

void set_error(struct bench *b, const char *fmt, ...)
{
    va_list ap;
    char *p;

    va_start(ap, fmt);
    vsnprintf(b->errbuf, sizeof b->errbuf, fmt, ap);
    va_end(ap);
    /* The message becomes a quoted value: keep it on one line, unquoted. */
    for (p = b->errbuf; *p; p++) {
        if (*p == '"' || *p == '\n') {
            *p = '\'';
        }
    }
}

void set_subiter_error(struct bench *b, const char *what, subiter *it, int r)
{
    set_error(b, "%s: %s: %s", what, subiter_errname(r),
              it ? subiter_errmsg(it) : subiter_strerror(r));
}

void set_pool_error(struct bench *b, const char *what, subiter_pool *p, int r)
{
    set_error(b, "%s: %s: %s", what, subiter_errname(r),
              p ? subiter_pool_errmsg(p) : subiter_strerror(r));
}

/* Close *it if open; -1 (error set) when subiter_close() complained. */
int close_handle(struct bench *b, subiter **it)
{
    int rc = 0;

    if (*it != NULL) {
        rc = subiter_close(*it);
        *it = NULL;
        if (rc != 0) {
            set_error(b, "subiter_close: %s", subiter_errname(rc));
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------- watchdog */

static void arm(struct bench *b, int seconds)
{
    struct itimerspec its;

    memset(&its, 0, sizeof its);
    its.it_value.tv_sec = seconds;
    (void)timer_settime(b->watchdog, 0, &its, NULL);
}

void watch(struct bench *b, const char *label)
{
    snprintf(b->watch_label, sizeof b->watch_label, "%s", label);
    arm(b, WATCHDOG_S);
}

void rewatch(struct bench *b)
{
    arm(b, WATCHDOG_S);
}

void unwatch(struct bench *b)
{
    arm(b, 0);
}

/* ------------------------------------------------ timing, statistics */

double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

double cpu_s(int who)
{
    struct rusage ru;

    getrusage(who, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

void sleep_s(double s)
{
    struct timespec ts;

    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

void mark_cpu(_Atomic uint64_t *word)
{
    atomic_store_explicit(word, (uint64_t)(cpu_s(RUSAGE_SELF) * 1e9),
                          memory_order_relaxed);
}

double read_cpu(_Atomic uint64_t *word)
{
    return (double)atomic_load_explicit(word, memory_order_relaxed) * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Round down to two significant digits: item counts people can read. */
uint64_t round2(double x)
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

/* --------------------------------------------------- child processes */

/* Read exactly len bytes: returns len, 0 at a clean EOF before any byte,
 * -1 on an error or a short record. */
ssize_t read_full(int fd, void *buf, size_t len)
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
int writev_full(int fd, struct iovec *iov, int cnt)
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

int write_full(int fd, const void *buf, size_t len)
{
    struct iovec iov;

    iov.iov_base = (void *)(uintptr_t)buf;
    iov.iov_len = len;
    return writev_full(fd, &iov, 1);
}

/* Wait for a child; its status, or -1 with the error set. */
int wait_status(struct bench *b, pid_t pid, const char *what)
{
    int st;

    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            set_error(b, "%s: waitpid(%d): %s", what, (int)pid,
                      strerror(errno));
            return -1;
        }
    }
    return st;
}

/* Wait for a child that must exit with 0; 0, or -1 with the error set. */
int reap(struct bench *b, pid_t pid, const char *what)
{
    int st;

    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            set_error(b, "%s: waitpid: %s", what, strerror(errno));
            return -1;
        }
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        set_error(b, "%s: child ended with status 0x%x", what, (unsigned)st);
        return -1;
    }
    return 0;
}

int open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
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
bool wait_asleep(pid_t pid, pid_t tid, double limit_s)
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
