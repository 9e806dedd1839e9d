/* trace.c: crash and hang stacks. In the worker, the handlers of SIGSEGV,
 * SIGBUS, SIGFPE, SIGILL, SIGABRT and of the parent's stack request, which
 * record raw frames and the module map into the trace area (trace.h) with
 * async-signal-safe calls only. In the parent, the request itself and the
 * reading of the area: its header validated like any untrusted memory,
 * then its frames and map handed to symbols.c. */
#include "config.h"

#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "internal.h"

#define ALTSTACK_BYTES (64u * 1024u)

static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

#ifdef SUBITER_COVERAGE
void __gcov_dump(void);
/* A coverage build writes the worker's counts here: it dies of the signal
 * or is killed right after, and would lose them (not async-signal-safe,
 * so only there). */
#define COVERAGE_DUMP() __gcov_dump()
#else
#define COVERAGE_DUMP() ((void)0)
#endif

/* ---- the worker ---- */

/*
 * Where this worker's handlers write, and the thread that runs its
 * generator. Set once, in the worker, before its handlers are installed;
 * read only by them. A handler can reach nothing else: this is the
 * worker process's state, never written in the parent.
 */
static struct subiter__trace *worker_area;
static pid_t worker_tid;

/* The interrupted instruction, from the handler's context; 0 if unknown. */
static uint64_t interrupted_pc(const void *ctx)
{
    const ucontext_t *uc = ctx;

#if defined(__x86_64__)
    return (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (uint64_t)uc->uc_mcontext.pc;
#else
    (void)uc;
    return 0;
#endif
}

/* Keep a line of /proc/self/maps if it maps a file (the only mappings a
 * frame can be symbolized against), the region's memfd and devices
 * excepted. */
static void keep_line(struct subiter__trace *t, const char *line, size_t n)
{
    const char *path = memchr(line, '/', n);

    if (path == NULL || (size_t)(line + n - path) < 2 ||
        strncmp(path, "/memfd:", 7) == 0 || strncmp(path, "/dev/", 5) == 0 ||
        t->maps_len + n + 1 > SUBITER__TRACE_MAPS_MAX) {
        return;
    }
    memcpy(t->maps + t->maps_len, line, n);
    t->maps[t->maps_len + n] = '\n';
    t->maps_len += (uint32_t)n + 1;
}

/* Copy the file-backed lines of /proc/self/maps with open/read only. */
static void record_maps(struct subiter__trace *t)
{
    char buf[2048], line[SUBITER__TRACE_LINE_MAX];
    size_t len = 0;
    bool too_long = false;
    ssize_t n, i;
    int fd;

    fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return;
    }
    for (;;) {
        n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        for (i = 0; i < n; i++) {
            if (buf[i] == '\n') {
                if (!too_long) {
                    keep_line(t, line, len);
                }
                len = 0;
                too_long = false;
            } else if (len < sizeof line) {
                line[len++] = buf[i];
            } else {
                too_long = true;
            }
        }
    }
    (void)close(fd);
}

/* Write the report, once: a second signal (a crash while reporting a
 * hang, say) leaves the first report as it is. */
static void record(int sig, const void *ctx, uint32_t kind)
{
    struct subiter__trace *t = worker_area;
    void *f[SUBITER__TRACE_FRAMES + 8];
    uint32_t expected = SUBITER__TRACE_EMPTY;
    uint64_t pc = interrupted_pc(ctx);
    int n, i, from = -1;
    uint32_t k = 0;

    if (t == NULL || !atomic_compare_exchange_strong_explicit(
                         &t->state, &expected, SUBITER__TRACE_WRITING,
                         memory_order_relaxed, memory_order_relaxed)) {
        return;
    }
    n = backtrace(f, (int)(sizeof f / sizeof f[0]));
    /* Drop the handler's own frames and the signal trampoline: the
     * report starts at the interrupted instruction. */
    for (i = 0; i < n && from < 0; i++) {
        if ((uint64_t)(uintptr_t)f[i] == pc) {
            from = i;
        }
    }
    if (from < 0) {
        /* The unwinder did not get through the signal frame: the
         * interrupted instruction alone still names the function. */
        if (pc != 0) {
            t->frames[k++] = pc;
        }
        from = n;
    }
    for (i = from; i < n && k < SUBITER__TRACE_FRAMES; i++) {
        t->frames[k++] = (uint64_t)(uintptr_t)f[i];
    }
    t->nframes = k;
    t->maps_len = 0;
    record_maps(t);
    t->kind = kind;
    t->signo = sig;
    t->magic = SUBITER__TRACE_MAGIC;
    /* release: publishes the report; pairs with the acquire in
     * subiter__trace_collect() and trace_request(). */
    atomic_store_explicit(&t->state, SUBITER__TRACE_WRITTEN,
                          memory_order_release);
}

static void on_crash(int sig, siginfo_t *info, void *ctx)
{
    int e = errno;

    (void)info;
    record(sig, ctx, SUBITER__TRACE_CRASH);
    COVERAGE_DUMP();
    /* SA_RESETHAND restored the default action; the signal is blocked
     * until the handler returns, so the worker dies of it right then and
     * its exit status stays the signal (a fault would also come again by
     * itself, a raise() or kill() would not). */
    (void)raise(sig);
    errno = e;
}

static void on_request(int sig, siginfo_t *info, void *ctx)
{
    int e = errno;

    (void)info;
    if (gettid() != worker_tid) {
        /* Another thread of the worker took the process-directed signal:
         * the stack wanted is the generator's. */
        (void)tgkill(getpid(), worker_tid, sig);
    } else {
        record(sig, ctx, SUBITER__TRACE_HANG);
        COVERAGE_DUMP();
    }
    errno = e;
}

/* backtrace() has run once in this process (or in the one it was forked
 * from): glibc loads the unwinder on first use. */
static pthread_once_t primed = PTHREAD_ONCE_INIT;

static void prime(void)
{
    void *f[1];

    (void)backtrace(f, 1);
}

void subiter__trace_install(void *region, size_t len)
{
    struct sigaction sa;
    stack_t ss;
    size_t i;

    worker_area = (struct subiter__trace *)((unsigned char *)region + len -
                                            SUBITER__TRACE_BYTES);
    worker_tid = gettid();
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_SIGINFO;
    /* An overflowed stack leaves no room for the handler: give it its
     * own. Without one (no memory), a stack overflow reports nothing. */
    ss.ss_sp = mmap(NULL, ALTSTACK_BYTES, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    ss.ss_size = ALTSTACK_BYTES;
    ss.ss_flags = 0;
    if (ss.ss_sp != MAP_FAILED && sigaltstack(&ss, NULL) == 0) {
        sa.sa_flags |= SA_ONSTACK;
    }
    sa.sa_sigaction = on_request;
    (void)sigaction(SUBITER__TRACE_SIGNAL, &sa, NULL);
    sa.sa_flags |= SA_RESETHAND;
    sa.sa_sigaction = on_crash;
    for (i = 0; i < sizeof crash_signals / sizeof crash_signals[0]; i++) {
        (void)sigaction(crash_signals[i], &sa, NULL);
    }
}

/* ---- the parent ---- */

void subiter__trace_prime(void)
{
    /* Once per process: a fork child inherits the loaded unwinder with
     * the flag, and does not walk its own stack again. */
    (void)pthread_once(&primed, prime);
}

static struct subiter__trace *area_of(const struct subiter__region *r)
{
    if (r->shm == NULL || r->len < SUBITER__TRACE_BYTES) {
        return NULL;
    }
    return (struct subiter__trace *)((unsigned char *)r->shm + r->len -
                                     SUBITER__TRACE_BYTES);
}

void subiter__trace_request(struct subiter__region *r, struct subiter__proc *p)
{
    struct subiter__trace *t = area_of(r);
    struct timespec ms = {0, SUBITER__NS_PER_MS};
    int64_t deadline;

    if (t == NULL || p->reaped ||
        atomic_load_explicit(&t->state, memory_order_relaxed) !=
            SUBITER__TRACE_EMPTY) {
        return;
    }
    subiter__proc_signal(p, SUBITER__TRACE_SIGNAL);
    deadline = subiter__now_ns() + SUBITER__TRACE_WAIT_MS * SUBITER__NS_PER_MS;
    /* acquire: pairs with the release in record(). */
    while (atomic_load_explicit(&t->state, memory_order_acquire) !=
               SUBITER__TRACE_WRITTEN &&
           subiter__now_ns() < deadline && !subiter__proc_exited(p)) {
        (void)nanosleep(&ms, NULL);
    }
}

int subiter__trace_collect(const struct subiter__region *r, char **out)
{
    struct subiter__trace *t = area_of(r);
    void *copy;
    int ret;

    *out = NULL;
    /* acquire: pairs with the release in record(). */
    if (t == NULL || atomic_load_explicit(&t->state, memory_order_acquire) !=
                         SUBITER__TRACE_WRITTEN) {
        return 0;
    }
    /* One copy, then only the copy: the area is the worker's memory. */
    copy = subiter__malloc(SUBITER__TRACE_BYTES);
    if (copy == NULL) {
        return -ENOMEM;
    }
    memcpy(copy, t, SUBITER__TRACE_BYTES);
    ret = subiter__trace_format(copy, SUBITER__TRACE_BYTES, out);
    subiter__free(copy);
    return ret;
}

int subiter__trace_format(const void *area, size_t len, char **out)
{
    const struct subiter__trace *h = area;
    uint32_t nframes, maps_len;

    *out = NULL;
    if (len < sizeof *h || h->magic != SUBITER__TRACE_MAGIC ||
        (h->kind != SUBITER__TRACE_CRASH && h->kind != SUBITER__TRACE_HANG)) {
        return 0;
    }
    nframes = h->nframes;
    maps_len = h->maps_len;
    if (nframes == 0 || nframes > SUBITER__TRACE_FRAMES ||
        maps_len > len - sizeof *h) {
        return 0;
    }
    return subiter__symbols_format(h->frames, nframes, h->maps, maps_len, out);
}
