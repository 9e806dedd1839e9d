/* check_trace.c: crash and hang reports (lib/trace.c): the worker's stack
 * in errmsg and errinfo for each crash signal, a crash in the initializer,
 * a busy and a blocked hang, a handler of the user's that wins, crashes
 * in a pool task and in a shard, a corrupt trace area, a binary without
 * debug info; and the option errors that name their field. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "libdw.h"
#include "testutil.h"

#define NOINLINE __attribute__((noinline))

/* ---- the crashes ---- */

static const int signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

/* Calls that stay calls: a tail call would drop the caller's frame. */
#define NO_TAIL(call)                                                          \
    do {                                                                       \
        int r_ = (call);                                                       \
        __asm__ volatile("" ::: "memory");                                     \
        return r_;                                                             \
    } while (0)

/* Die of `sig` the way real code does: a fault, not raise(), but for
 * SIGABRT (abort()). */
/* UBSan must not catch the faults first (it would end the worker with
 * exit status 1). */
static NOINLINE __attribute__((no_sanitize("undefined"))) int
crash_here(int sig)
{
    volatile int zero = 0, one = 1;
    volatile int *volatile null = NULL;
    volatile char *p;
    int fd;

    switch (sig) {
    case SIGSEGV:
        /* A page without access rights (memcheck, unlike for address 0,
         * has nothing to say about it: the kernel alone faults). */
        p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED) {
            p[8] = 1;
        }
        *null = 1;
        break;
    case SIGBUS:
        /* A page of a zero-length file. */
        fd = memfd_create("bus", MFD_CLOEXEC);
        p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
        if (p != MAP_FAILED) {
            return p[0];
        }
        break;
    case SIGFPE:
        return one / zero;
    case SIGILL:
        __builtin_trap();
    case SIGABRT:
        abort();
    }
    return -1;
}

static int gen_crash(subiter_gen *g, void *arg)
{
    int r;

    if ((r = tu_yield_count(g, 2)) != 0) {
        return r;
    }
    NO_TAIL(crash_here((int)(intptr_t)arg));
}

/* memcheck's signal frames stop the unwinder after the faulting frame
 * for SIGFPE; it also replaces /proc/self/exe with its own binary. */
static bool under_valgrind(void)
{
    const char *p = getenv("LD_PRELOAD");

    return p != NULL && strstr(p, "vgpreload") != NULL;
}

/* This binary's path (argv[0]: under valgrind /proc/self/exe is
 * valgrind's). */
static char self_path[4096];

static void assert_has(const char *s, const char *what)
{
    ck_assert_msg(strstr(s, what) != NULL, "\"%s\" not in:\n%s", what, s);
}

/* A frame of function `fn` is in the report; built without libdw, the
 * report says that it has only module offsets. */
static void assert_frame(const char *s, const char *fn)
{
#ifdef HAVE_LIBDW
    assert_has(s, fn);
#else
    (void)fn;
    assert_has(s, "built without libdw");
#endif
}

/* errmsg is the reason line, then the frames errinfo has. */
static void assert_report(const subiter *it, const char *fn)
{
    subiter_errinfo ei = SUBITER_ERRINFO_INIT;
    const char *nl = strchr(subiter_errmsg(it), '\n');

    ck_assert_int_eq(subiter_get_errinfo(it, &ei), 0);
    ck_assert_ptr_nonnull(ei.backtrace);
    ck_assert_ptr_nonnull(nl);
    ck_assert_str_eq(nl + 1, ei.backtrace);
    ck_assert_msg(strncmp(ei.backtrace, "  #0 ", 5) == 0, "%s", ei.backtrace);
    assert_frame(ei.backtrace, fn);
    ck_assert_int_eq(ei.worker, -1);
    ck_assert_uint_eq(ei.task, 0);
}

START_TEST(test_trace_each_signal)
{
    int sig = signals[_i];
    struct tu_snapshot s;
    subiter_opts o = tu_opts(0);
    subiter_errinfo ei = SUBITER_ERRINFO_INIT;
    subiter_item item;
    subiter *it;
    int r;

    tu_snapshot(&s);
    ck_assert_int_eq(subiter_open(&it, gen_crash, (void *)(intptr_t)sig, &o),
                     0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    while ((r = subiter_next(it, &item)) == 1) {
    }
    ck_assert_int_eq(r, SUBITER_ECHILD);
    /* The exit status is still the signal. */
    ck_assert_int_eq(subiter_get_errinfo(it, &ei), 0);
    ck_assert_int_eq(ei.term_signal, sig);
    assert_has(subiter_errmsg(it), "during iteration 1 after 2 items\n");
    assert_report(it, "crash_here");
    if (sig != SIGFPE || !under_valgrind()) {
        assert_frame(ei.backtrace, "gen_crash");
    }
    ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);
    tu_assert_clean(&s);
}
END_TEST

static NOINLINE int init_crash(subiter_gen *g, void *arg)
{
    (void)g;
    (void)arg;
    NO_TAIL(crash_here(SIGSEGV));
}

START_TEST(test_trace_initializer_crash)
{
    struct tu_snapshot s;
    subiter_opts o = tu_opts(0);
    subiter *it;

    tu_snapshot(&s);
    o.init = init_crash;
    ck_assert_int_eq(subiter_open(&it, tu_gen_count, (void *)1L, &o),
                     SUBITER_ECHILD);
    assert_has(subiter_errmsg(it), "while initializing\n");
    assert_report(it, "crash_here");
    assert_frame(subiter_errmsg(it), "init_crash");
    (void)subiter_close(it);
    tu_assert_clean(&s);
}
END_TEST

/* ---- the hangs ---- */

static NOINLINE void spin_forever(volatile unsigned long *n)
{
    for (;;) {
        (*n)++;
    }
}

static NOINLINE ssize_t block_in_read(void)
{
    int fds[2];
    char c;

    /* Nobody ever writes: a hang inside a system call. */
    if (pipe(fds) != 0) {
        return -1;
    }
    return read(fds[0], &c, 1);
}

enum hang { BUSY, BLOCKED };

static int gen_hang(subiter_gen *g, void *arg)
{
    volatile unsigned long n = 0;
    int r;

    if ((r = tu_yield_count(g, 1)) != 0) {
        return r;
    }
    if ((enum hang)(intptr_t)arg == BUSY) {
        spin_forever(&n);
    }
    NO_TAIL((int)block_in_read());
}

static void hang_case(enum hang how, const char *fn)
{
    struct tu_snapshot s;
    subiter_opts o = tu_opts(300);
    subiter_errinfo ei = SUBITER_ERRINFO_INIT;
    subiter_item item;
    subiter *it;
    pid_t pid;

    tu_snapshot(&s);
    ck_assert_int_eq(subiter_open(&it, gen_hang, (void *)(intptr_t)how, &o), 0);
    pid = subiter_pid(it);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_int_eq(subiter_next(it, &item), 1);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ETIMEDOUT);
    tu_assert_gone(pid);
    assert_has(subiter_errmsg(it), "sent nothing for 300 ms");
    assert_report(it, fn);
    assert_frame(subiter_errmsg(it), "gen_hang");
    /* Killed after the report, as without one. */
    ck_assert_int_eq(subiter_get_errinfo(it, &ei), 0);
    ck_assert_int_eq(ei.term_signal, SIGKILL);
    (void)subiter_close(it);
    tu_assert_clean(&s);
}

START_TEST(test_trace_busy_hang)
{
    hang_case(BUSY, "spin_forever");
}
END_TEST

START_TEST(test_trace_blocked_hang)
{
    hang_case(BLOCKED, "block_in_read");
}
END_TEST

/* ---- the user's handler ---- */

static void exit7(int sig)
{
    (void)sig;
    _exit(7);
}

static int init_handler(subiter_gen *g, void *arg)
{
    (void)g;
    (void)arg;
    return signal(SIGSEGV, exit7) == SIG_ERR ? -errno : 0;
}

START_TEST(test_trace_user_handler_wins)
{
    struct tu_snapshot s;
    subiter_opts o = tu_opts(0);
    subiter_errinfo ei = SUBITER_ERRINFO_INIT;
    subiter_item item;
    subiter *it;
    int r;

    tu_snapshot(&s);
    o.init = init_handler;
    ck_assert_int_eq(
        subiter_open(&it, gen_crash, (void *)(intptr_t)SIGSEGV, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    while ((r = subiter_next(it, &item)) == 1) {
    }
    ck_assert_int_eq(r, SUBITER_ECHILD);
    ck_assert_int_eq(subiter_get_errinfo(it, &ei), 0);
    ck_assert_int_eq(ei.exited, 1);
    /* memcheck reports the deliberate fault, and then exits with its
     * --error-exitcode instead (42 in make check-valgrind). */
    ck_assert_int_eq(ei.exit_status, under_valgrind() ? 42 : 7);
    ck_assert_str_eq(ei.backtrace, "");
    ck_assert_ptr_null(strchr(subiter_errmsg(it), '\n'));
    (void)subiter_close(it);
    tu_assert_clean(&s);
}
END_TEST

/* A caller built against 0.1 (errinfo ending at `items`) still works. */
START_TEST(test_trace_errinfo_old_size)
{
    subiter_opts o = tu_opts(0);
    subiter_errinfo ei;
    subiter *it;

    ck_assert_int_eq(subiter_open(&it, tu_gen_count, (void *)1L, &o), 0);
    memset(&ei, 0xab, sizeof ei);
    ei.size = offsetof(subiter_errinfo, backtrace);
    ck_assert_int_eq(subiter_get_errinfo(it, &ei), 0);
    ck_assert_int_eq(ei.code, 0);
    /* Past its size nothing was written. */
    ck_assert_int_eq(ei.worker, (int)0xabababab);
    ei.size = offsetof(subiter_errinfo, backtrace) - 1;
    ck_assert_int_eq(subiter_get_errinfo(it, &ei), -EINVAL);
    ck_assert_int_eq(subiter_close(it), 0);
}
END_TEST

/* ---- pools ---- */

/* A task's input is the signal to die of (0: yield one item). */
static int gen_task(subiter_gen *g, void *arg)
{
    size_t len;
    const int *sig = subiter_input(g, &len);

    (void)arg;
    if (sig == NULL || len != sizeof *sig || *sig == 0) {
        return tu_yield_count(g, 1);
    }
    NO_TAIL(crash_here(*sig));
}

START_TEST(test_trace_pool_task_crash)
{
    struct tu_snapshot s;
    subiter_opts w = tu_opts(0);
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;
    subiter_errinfo ei = SUBITER_ERRINFO_INIT;
    subiter_pool_item item;
    unsigned long long id;
    subiter_pool *p;
    int sig = SIGSEGV, r, ends = 0;

    tu_snapshot(&s);
    po.workers = 1;
    po.max_retries = 0;
    po.worker = &w;
    ck_assert_int_eq(subiter_pool_open(&p, gen_task, NULL, &po), 0);
    ck_assert_int_eq(subiter_pool_get_errinfo(p, &ei), 0);
    ck_assert_int_eq(ei.worker, -1);
    ck_assert_int_eq(subiter_pool_submit(p, &sig, sizeof sig, 0, &id), 0);
    while ((r = subiter_pool_next(p, &item)) == 1) {
        if (item.kind == SUBITER_POOL_TASK_END) {
            ends++;
            ck_assert_uint_eq(item.task, id);
            ck_assert_int_eq(item.code, SUBITER_ECHILD);
            assert_has(item.errmsg, "(worker 0)");
            assert_has(item.errmsg, "during iteration 1 after 0 items\n");
            assert_has(item.errmsg, "\n  #0 ");
            assert_frame(item.errmsg, "crash_here");
            /* The same, for programs. */
            ck_assert_int_eq(subiter_pool_get_errinfo(p, &ei), 0);
            ck_assert_int_eq(ei.worker, 0);
            ck_assert_uint_eq(ei.task, id);
            ck_assert_int_eq(ei.term_signal, SIGSEGV);
            ck_assert_uint_eq(ei.iteration, 1);
            assert_frame(ei.backtrace, "gen_task");
        }
    }
    ck_assert_int_eq(r, 0);
    ck_assert_int_eq(ends, 1);
    (void)subiter_pool_close(p);
    tu_assert_clean(&s);
}
END_TEST

/* Shards: worker 1 crashes after its first item. */
static int gen_shard(subiter_gen *g, void *arg)
{
    int r;

    (void)arg;
    if ((r = tu_yield_count(g, 1)) != 0) {
        return r;
    }
    if (subiter_worker_id(g) == 1) {
        NO_TAIL(crash_here(SIGSEGV));
    }
    return 0;
}

START_TEST(test_trace_pool_shard_crash)
{
    struct tu_snapshot s;
    subiter_opts w = tu_opts(0);
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;
    subiter_errinfo ei = SUBITER_ERRINFO_INIT;
    subiter_pool_item item;
    subiter_pool *p;
    int r;

    tu_snapshot(&s);
    po.workers = 2;
    po.worker = &w;
    ck_assert_int_eq(subiter_pool_open(&p, gen_shard, NULL, &po), 0);
    ck_assert_int_eq(subiter_pool_start(p, NULL, 0), 0);
    while ((r = subiter_pool_next(p, &item)) == 1) {
    }
    ck_assert_int_eq(r, SUBITER_ECHILD);
    assert_has(subiter_pool_errmsg(p), "worker 1 (shard 1 of 2): ");
    assert_has(subiter_pool_errmsg(p), "\n  #0 ");
    assert_frame(subiter_pool_errmsg(p), "crash_here");
    ck_assert_int_eq(subiter_pool_get_errinfo(p, &ei), 0);
    ck_assert_int_eq(ei.code, SUBITER_ECHILD);
    ck_assert_int_eq(ei.worker, 1);
    ck_assert_uint_eq(ei.task, 0);
    ck_assert_int_eq(ei.term_signal, SIGSEGV);
    assert_frame(ei.backtrace, "gen_shard");
    (void)subiter_pool_close(p);
    tu_assert_clean(&s);
}
END_TEST

/* ---- a hostile worker ---- */

/* The trace area of the worker's own region, through the test hook. */
static struct subiter__trace *own_area(subiter_gen *g)
{
    struct subiter__shm *shm = subiter__gen_shm(g);
    size_t len = (size_t)shm->hdr_bytes + shm->cmd_bytes + shm->item_bytes;

    return (struct subiter__trace *)((unsigned char *)shm + len);
}

enum corrupt { C_FRAMES, C_MAPS_LEN, C_GARBAGE, C_FIFO, N_CORRUPT };

static int gen_corrupt(subiter_gen *g, void *arg)
{
    struct subiter__trace *t = own_area(g);
    unsigned char *raw = (unsigned char *)t;
    size_t i;

    /* Deterministic garbage over the whole area, then a header that
     * claims a written report. */
    for (i = 0; i < SUBITER__TRACE_BYTES; i++) {
        raw[i] = (unsigned char)(i * 131u + 7u);
    }
    t->magic = SUBITER__TRACE_MAGIC;
    t->kind = SUBITER__TRACE_CRASH;
    t->nframes = 3;
    t->maps_len = 64;
    switch ((enum corrupt)(intptr_t)arg) {
    case C_FRAMES:
        t->nframes = 0xffffffffu;
        break;
    case C_MAPS_LEN:
        t->maps_len = 0xfffffff0u;
        break;
    case C_GARBAGE:
        break;
    case C_FIFO:
        /* A FIFO would block an open(): never opened. */
        (void)mkfifo("/tmp/subiter-trace-fifo", 0600);
        t->maps_len = (uint32_t)snprintf(
            t->maps, 256, "1000-200000 r-xp 00000000 08:01 42 %s\n",
            "/tmp/subiter-trace-fifo");
        t->frames[0] = 0x1234;
        break;
    case N_CORRUPT:
        break;
    }
    atomic_store(&t->state, SUBITER__TRACE_WRITTEN);
    raise(SIGKILL);
    return 0;
}

START_TEST(test_trace_corrupt_area)
{
    struct tu_snapshot s;
    subiter_opts o = tu_opts(0);
    subiter_errinfo ei = SUBITER_ERRINFO_INIT;
    subiter_item item;
    subiter *it;

    tu_snapshot(&s);
    ck_assert_int_eq(subiter_open(&it, gen_corrupt, (void *)(intptr_t)_i, &o),
                     0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECHILD);
    assert_has(subiter_errmsg(it), "killed by signal 9 (SIGKILL)");
    ck_assert_int_eq(subiter_get_errinfo(it, &ei), 0);
    if (_i == C_FRAMES || _i == C_MAPS_LEN) {
        /* Out of bounds: no backtrace at all. */
        ck_assert_str_eq(ei.backtrace, "");
    } else {
        /* Garbage frames stay addresses; nothing is opened or read out
         * of bounds (ASan runs this suite). */
        ck_assert_msg(strncmp(ei.backtrace, "  #0 ", 5) == 0, "%s",
                      ei.backtrace);
        ck_assert_ptr_null(strstr(ei.backtrace, "subiter-trace-fifo"));
    }
    (void)subiter_close(it);
    (void)unlink("/tmp/subiter-trace-fifo");
    tu_assert_clean(&s);
}
END_TEST

/* The parser alone, on many random areas with a valid header. */
START_TEST(test_trace_format_fuzz)
{
    static const char *const lines[] = {
        "400000-401000 r-xp 00000000 08:01 12 /bin/sh\n",
        "400000-401000 r-xp 00000000 08:01 12 \n",
        "zz-401000 r-xp 00000000 08:01 12 /bin/sh\n",
        "401000-400000 r-xp 00000000 08:01 12 /bin/sh\n",
        "400000-401000 r-xp 0 0:0 0 /proc/self/exe\n",
        "400000-401000 r-x",
        ("ffffffffffffffff-ffffffffffffffff r-xp ffffffffffffffff fff:fffff "
         "99999999999999999999999 /bin/sh\n"),
        "400000-401000 r-xp 00000000 08:01 12 /bin/\x01sh\n",
        "\n\n\n",
    };
    unsigned char *buf = malloc(SUBITER__TRACE_BYTES);
    struct subiter__trace *t = (struct subiter__trace *)buf;
    unsigned seed = 1;
    int round;

    ck_assert_ptr_nonnull(buf);
    for (round = 0; round < 300; round++) {
        size_t i, used = 0;
        char *out = NULL;

        for (i = 0; i < SUBITER__TRACE_BYTES; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = (unsigned char)(seed >> 16);
        }
        t->magic = SUBITER__TRACE_MAGIC;
        t->kind = 1 + (unsigned)round % 2;
        t->nframes = 1 + (unsigned)round % SUBITER__TRACE_FRAMES;
        for (i = 0; i < 20 && round % 3 != 0; i++) {
            const char *l = lines[(round + i) % (sizeof lines / sizeof *lines)];
            size_t n = strlen(l);

            memcpy(t->maps + used, l, n);
            used += n;
        }
        t->maps_len =
            round % 7 == 0 ? (uint32_t)SUBITER__TRACE_MAPS_MAX : (uint32_t)used;
        ck_assert_int_eq(subiter__trace_format(buf, SUBITER__TRACE_BYTES, &out),
                         0);
        ck_assert_ptr_nonnull(out);
        ck_assert_msg(strncmp(out, "  #0 ", 5) == 0, "%s", out);
        subiter__free(out);
    }
    /* Too short to hold a header. */
    {
        char *out = (char *)1;

        ck_assert_int_eq(subiter__trace_format(buf, 8, &out), 0);
        ck_assert_ptr_null(out);
    }
    free(buf);
}
END_TEST

/* ---- reports in a row: the symbols kept between them ---- */

static NOINLINE __attribute__((no_sanitize("undefined"))) int crash_other(void)
{
    volatile char *p =
        mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p != MAP_FAILED) {
        p[16] = 2;
    }
    return -1;
}

static int gen_crash_other(subiter_gen *g, void *arg)
{
    int r;

    (void)arg;
    if ((r = tu_yield_count(g, 1)) != 0) {
        return r;
    }
    NO_TAIL(crash_other());
}

/* One worker that crashes in `fn` (and not in `not`). */
static void crash_once(subiter_iter_fn gen, const char *fn, const char * not )
{
    subiter_opts o = tu_opts(0);
    subiter_errinfo ei = SUBITER_ERRINFO_INIT;
    subiter_item item;
    subiter *it;
    int r;

    ck_assert_int_eq(subiter_open(&it, gen, (void *)(intptr_t)SIGSEGV, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    while ((r = subiter_next(it, &item)) == 1) {
    }
    ck_assert_int_eq(r, SUBITER_ECHILD);
    assert_report(it, fn);
    ck_assert_int_eq(subiter_get_errinfo(it, &ei), 0);
    ck_assert_msg(strstr(ei.backtrace, not ) == NULL, "%s", ei.backtrace);
#ifdef HAVE_LIBDW
    assert_has(ei.backtrace, "check_trace.c:");
#endif
    ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);
}

/* The second and third report of a process name their own functions (the
 * kept symbols are right for them, not the first report's), and keeping
 * symbols does not grow: no more fds after three reports than after one;
 * tu_assert_clean() drops them and finds the fds of before. */
START_TEST(test_trace_reports_in_a_row)
{
    struct tu_snapshot s;
    int fds;

    tu_snapshot(&s);
    crash_once(gen_crash, "crash_here", "crash_other");
    fds = tu_count_fds();
    crash_once(gen_crash_other, "crash_other", "crash_here");
    crash_once(gen_crash, "crash_here", "crash_other");
    ck_assert_int_eq(tu_count_fds(), fds);
    tu_assert_clean(&s);
}
END_TEST

/* The mappings of this binary in /proc/self/maps, with `path` in place of
 * its own: a worker's map naming a copy of it. */
static size_t maps_naming(char *buf, size_t cap, const char *path)
{
    char line[4096], own[4096] = "";
    uintptr_t fn = (uintptr_t)crash_here;
    size_t used = 0;
    FILE *f;

    f = fopen("/proc/self/maps", "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long lo, hi;
        char *p = strchr(line, '/');

        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && fn >= lo && fn < hi &&
            p != NULL) {
            snprintf(own, sizeof own, "%s", p);
        }
    }
    ck_assert_str_ne(own, "");
    rewind(f);
    while (fgets(line, sizeof line, f) != NULL) {
        char *p = strchr(line, '/');

        if (p != NULL && strcmp(p, own) == 0) {
            used += (size_t)snprintf(buf + used, cap - used, "%.*s%s\n",
                                     (int)(p - line), line, path);
            ck_assert_uint_lt(used, cap);
        }
    }
    fclose(f);
    return used;
}

/* A file that changed at the same path is read again: a copy of this
 * binary with debug info, then (renamed over it) one without. */
START_TEST(test_trace_changed_file)
{
    char copy[] = "/tmp/subiter-changedXXXXXX", next[64], cmd[8400];
    unsigned char *buf = calloc(1, SUBITER__TRACE_BYTES);
    struct subiter__trace *t = (struct subiter__trace *)buf;
    char *out = NULL;
    int fd;

    ck_assert_ptr_nonnull(buf);
    fd = mkstemp(copy);
    ck_assert_int_ge(fd, 0);
    close(fd);
    snprintf(next, sizeof next, "%s.next", copy);
    snprintf(cmd, sizeof cmd,
             "objcopy %s %s 2>/dev/null && objcopy --strip-debug %s %s "
             "2>/dev/null",
             self_path, copy, self_path, next);
    if (system(cmd) != 0) {
        unlink(copy);
        unlink(next);
        ck_abort_msg("objcopy failed (binutils missing?)");
    }
    t->magic = SUBITER__TRACE_MAGIC;
    t->kind = SUBITER__TRACE_CRASH;
    t->nframes = 1;
    t->frames[0] = (uint64_t)(uintptr_t)crash_here;
    t->maps_len = (uint32_t)maps_naming(t->maps, SUBITER__TRACE_MAPS_MAX, copy);

    ck_assert_int_eq(subiter__trace_format(buf, SUBITER__TRACE_BYTES, &out), 0);
    ck_assert_ptr_nonnull(out);
    assert_frame(out, "  #0 crash_here (");
#ifdef HAVE_LIBDW
    assert_has(out, "check_trace.c:");
#endif
    subiter__free(out);

    ck_assert_int_eq(rename(next, copy), 0);
    ck_assert_int_eq(subiter__trace_format(buf, SUBITER__TRACE_BYTES, &out), 0);
    ck_assert_ptr_nonnull(out);
    assert_frame(out, "  #0 crash_here (");
    ck_assert_msg(strstr(out, "check_trace.c:") == NULL, "%s", out);
    subiter__free(out);
    unlink(copy);
    free(buf);
    subiter__symbols_forget();
}
END_TEST

/* ---- a binary without debug info ---- */

/* Run `prog mode` (this suite's binary or a copy, in one of main()'s
 * report modes); its output, stderr included, into out. It must exit 0. */
static void run_mode(const char *prog, const char *mode, char *out, size_t cap)
{
    char cmd[4200];
    size_t n;
    FILE *f;

    snprintf(cmd, sizeof cmd, "%s %s 2>&1", prog, mode);
    f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    ck_assert_int_eq(pclose(f), 0);
}

/* The suite's own binary, stripped of its debug info, run in its report
 * mode (main below): function names come from the symbol table. */
START_TEST(test_trace_no_debug_info)
{
    char copy[] = "/tmp/subiter-nodebugXXXXXX", cmd[8400], out[8192];
    int fd;

    fd = mkstemp(copy);
    ck_assert_int_ge(fd, 0);
    close(fd);
    snprintf(cmd, sizeof cmd,
             "objcopy --strip-debug %s %s 2>/dev/null && chmod +x %s",
             self_path, copy, copy);
    if (system(cmd) != 0) {
        unlink(copy);
        ck_abort_msg("objcopy --strip-debug failed (binutils missing?)");
    }
    run_mode(copy, "--report", out, sizeof out);
    unlink(copy);
    assert_has(out, "killed by signal 11 (SIGSEGV)");
    assert_frame(out, "  #0 crash_here (");
    assert_frame(out, "gen_crash (");
    /* No line numbers without debug info. */
#ifndef HAVE_LIBDW
    assert_has(out, "  #0 ?? (");
#endif
    ck_assert_ptr_null(strstr(out, "check_trace.c:"));
}
END_TEST

#ifdef HAVE_LIBDW
/* libdw is loaded at the first report, not linked: a program that never
 * has one does not load it; one where it cannot be loaded gets module
 * offsets and the reason (main's --report-no-libdw mode). */
START_TEST(test_trace_libdw_missing)
{
    char out[8192];

    run_mode(self_path, "--report-no-libdw", out, sizeof out);
    assert_has(out, "killed by signal 11 (SIGSEGV)");
    assert_has(out, "  #0 ?? (");
    assert_has(out, "(no function names: libsubiter-no-such-libdw.so.1 "
                    "could not be loaded: ");
    ck_assert_ptr_null(strstr(out, "libdw mapped"));
}
END_TEST
#endif

/* ---- option errors name the field ---- */

struct opt_case {
    const char *msg;
    int code;
    void (*set)(subiter_opts *o);
};

static void grace_neg(subiter_opts *o)
{
    o->grace_ms = -5;
}
static void bytes_big(subiter_opts *o)
{
    o->buffer_bytes = (size_t)SUBITER__MAX_RING_BYTES + 1;
}
static void method_bad(subiter_opts *o)
{
    o->start_method = 42;
}
static void size_small(subiter_opts *o)
{
    o->size = offsetof(subiter_opts, arg_len) - 1;
}

static const struct opt_case opt_cases[] = {
    {"opts.grace_ms: -5 is negative", -EINVAL, grace_neg},
    {"opts.buffer_bytes: 1073741825 is over the 1073741824 limit", -EINVAL,
     bytes_big},
    {"opts.start_method: 42 is none of SUBITER_FORK", -EINVAL, method_bad},
    {"opts.size: ", -EINVAL, size_small},
};

START_TEST(test_trace_open_option_errors)
{
    const struct opt_case *c = &opt_cases[_i];
    subiter_opts o = tu_opts(0);
    subiter *it;

    c->set(&o);
    ck_assert_int_eq(subiter_open(&it, tu_gen_count, NULL, &o), c->code);
    assert_has(subiter_errmsg(it), c->msg);
    ck_assert_int_eq(subiter_close(it), 0);
}
END_TEST

/* A bigger struct whose unknown tail is not zero. */
START_TEST(test_trace_open_unknown_bytes)
{
    struct {
        subiter_opts o;
        unsigned char extra[8];
    } big;
    subiter *it;

    memset(&big, 0, sizeof big);
    big.o = tu_opts(0);
    big.o.size = sizeof big;
    big.extra[3] = 1;
    ck_assert_int_eq(subiter_open(&it, tu_gen_count, NULL, &big.o), -EINVAL);
    assert_has(subiter_errmsg(it), "opts.size: ");
    assert_has(subiter_errmsg(it), "are not all zero");
    (void)subiter_close(it);
}
END_TEST

/* What each pool case sets, and the message it must give. */
static const char *const pool_msgs[] = {
    "opts.workers: 4097 is over the 4096 limit",
    "opts.min_workers: 3 is over opts.workers (2)",
    "opts.world_size 0: the launcher's rank or size",
    "opts.rank: 2 is not below opts.world_size (2)",
    "opts.world_size: 2147483647 times 4 workers is over",
    "opts.order: 7 is neither",
    "opts.queue_max: 0 is below 1",
    "opts.idle_ms: -1 is negative",
    "opts.restart_shards: 2 is neither 0 nor 1",
    "opts.size: 8 is below",
    "opts.worker->grace_ms: -5 is negative",
    "opts.worker->size: 4 is below",
};

static void set_pool_case(int i, subiter_pool_opts *o, subiter_opts *w)
{
    switch (i) {
    case 0:
        o->workers = 4097;
        break;
    case 1:
        o->workers = 2;
        o->min_workers = 3;
        break;
    case 2:
        /* 0 takes the launcher's rank and size: here garbage. */
        o->world_size = 0;
        (void)setenv("RANK", "x", 1);
        (void)setenv("WORLD_SIZE", "2", 1);
        break;
    case 3:
        o->rank = 2;
        o->world_size = 2;
        break;
    case 4:
        o->workers = 4;
        o->world_size = UINT32_MAX / 2;
        break;
    case 5:
        o->order = 7;
        break;
    case 6:
        o->queue_max = 0;
        break;
    case 7:
        o->idle_ms = -1;
        break;
    case 8:
        o->restart_shards = 2;
        break;
    case 9:
        o->size = 8;
        break;
    case 10:
        w->grace_ms = -5;
        o->worker = w;
        break;
    default:
        w->size = 4;
        o->worker = w;
        break;
    }
}

START_TEST(test_trace_pool_option_errors)
{
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;
    subiter_errinfo ei = SUBITER_ERRINFO_INIT;
    subiter_opts w = tu_opts(0);
    subiter_pool *p;

    po.workers = 1;
    set_pool_case(_i, &po, &w);
    ck_assert_int_eq(subiter_pool_open(&p, tu_gen_count, NULL, &po), -EINVAL);
    assert_has(subiter_pool_errmsg(p), pool_msgs[_i]);
    ck_assert_int_eq(subiter_pool_get_errinfo(p, &ei), 0);
    ck_assert_int_eq(ei.code, -EINVAL);
    ck_assert_int_eq(ei.worker, -1);
    ck_assert_str_eq(ei.backtrace, "");
    ck_assert_int_eq(subiter_pool_close(p), 0);
}
END_TEST

static Suite *trace_suite(void)
{
    Suite *s = suite_create("trace");
    TCase *tc = tcase_create("crash");
    TCase *tp = tcase_create("pool");
    TCase *to = tcase_create("options");

    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_trace_each_signal, 0,
                        (int)(sizeof signals / sizeof signals[0]));
    tcase_add_test(tc, test_trace_initializer_crash);
    tcase_add_test(tc, test_trace_busy_hang);
    tcase_add_test(tc, test_trace_blocked_hang);
    tcase_add_test(tc, test_trace_user_handler_wins);
    tcase_add_test(tc, test_trace_errinfo_old_size);
    tcase_add_loop_test(tc, test_trace_corrupt_area, 0, N_CORRUPT);
    tcase_add_test(tc, test_trace_format_fuzz);
    tcase_add_test(tc, test_trace_no_debug_info);
    tcase_add_test(tc, test_trace_reports_in_a_row);
    tcase_add_test(tc, test_trace_changed_file);
#ifdef HAVE_LIBDW
    tcase_add_test(tc, test_trace_libdw_missing);
#endif
    suite_add_tcase(s, tc);
    tcase_set_timeout(tp, 30);
    tcase_add_test(tp, test_trace_pool_task_crash);
    tcase_add_test(tp, test_trace_pool_shard_crash);
    suite_add_tcase(s, tp);
    tcase_add_loop_test(to, test_trace_open_option_errors, 0,
                        (int)(sizeof opt_cases / sizeof opt_cases[0]));
    tcase_add_test(to, test_trace_open_unknown_bytes);
    tcase_add_loop_test(to, test_trace_pool_option_errors, 0,
                        (int)(sizeof pool_msgs / sizeof pool_msgs[0]));
    suite_add_tcase(s, to);
    return s;
}

/* --report: the stripped copy of test_trace_no_debug_info prints one
 * crash report and exits 0. */
static int report(void)
{
    subiter_opts o = tu_opts(0);
    subiter_item item;
    subiter *it;
    int r;

    if (subiter_open(&it, gen_crash, (void *)(intptr_t)SIGSEGV, &o) != 0 ||
        subiter_start(it, NULL, 0) != 0) {
        return 1;
    }
    while ((r = subiter_next(it, &item)) == 1) {
    }
    printf("%s\n", subiter_errmsg(it));
    (void)subiter_close(it);
    return r == SUBITER_ECHILD ? 0 : 1;
}

#ifdef HAVE_LIBDW
/* --report-no-libdw: says whether libdw is mapped before any report, then
 * prints a report with a libdw that cannot be loaded. */
static int report_no_libdw(void)
{
    char line[4096];
    FILE *f = fopen("/proc/self/maps", "r");

    if (f == NULL) {
        return 1;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        if (strstr(line, "/libdw") != NULL) {
            printf("libdw mapped at start: %s", line);
            break;
        }
    }
    fclose(f);
    subiter__libdw_name = "libsubiter-no-such-libdw.so.1";
    return report();
}
#endif

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--report") == 0) {
        return report();
    }
#ifdef HAVE_LIBDW
    if (argc > 1 && strcmp(argv[1], "--report-no-libdw") == 0) {
        return report_no_libdw();
    }
#endif
    if (realpath(argv[0], self_path) == NULL) {
        snprintf(self_path, sizeof self_path, "/proc/%d/exe", (int)getpid());
    }
    return tu_run(trace_suite());
}
