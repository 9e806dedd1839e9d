/* testutil.c: helpers shared by the Check suites. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "start.h"
#include "testutil.h"

int tu_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            n++;
        }
    }
    closedir(d);
    return n - 1; /* the DIR's own fd */
}

static int count_mappings(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int n = 0;

    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof line, f) != NULL) {
        if (strstr(line, "/memfd:subiter") != NULL) {
            n++;
        }
    }
    fclose(f);
    return n;
}

int tu_start_method(void)
{
    const char *m = getenv("SUBITER_TEST_START_METHOD");

    if (m == NULL || *m == '\0' || strcmp(m, "fork") == 0) {
        return SUBITER_FORK;
    }
    if (strcmp(m, "forkserver") == 0) {
        return SUBITER_FORKSERVER;
    }
    if (strcmp(m, "spawn") == 0) {
        return SUBITER_SPAWN;
    }
    fprintf(stderr,
            "SUBITER_TEST_START_METHOD=%s: not fork, forkserver or "
            "spawn\n",
            m);
    exit(99);
}

/* A child of this process other than `except` and `spare` (the
 * forkserver's zygote, which lives as long as the test process, and the
 * worker it made ahead), or 0. */
static pid_t other_child(pid_t except, pid_t spare)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    pid_t me = getpid(), found = 0;

    ck_assert_ptr_nonnull(d);
    while (found == 0 && (e = readdir(d)) != NULL) {
        char path[300], buf[512], *p;
        FILE *f;
        int ppid;

        if (e->d_name[0] < '0' || e->d_name[0] > '9') {
            continue;
        }
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        f = fopen(path, "r");
        if (f == NULL) {
            continue;
        }
        p = fgets(buf, sizeof buf, f);
        fclose(f);
        /* "pid (comm) state ppid": comm may hold anything but ends at the
         * last ')'. */
        p = p != NULL ? strrchr(buf, ')') : NULL;
        if (p != NULL && sscanf(p + 1, " %*c %d", &ppid) == 1 && ppid == me &&
            atoi(e->d_name) != except && atoi(e->d_name) != spare) {
            found = atoi(e->d_name);
        }
    }
    closedir(d);
    return found;
}

void tu_snapshot(struct tu_snapshot *s)
{
    /* The zygote and its socket stay for the life of the process: start
     * it before counting. */
    if (tu_start_method() == SUBITER_FORKSERVER) {
        ck_assert_int_eq(subiter_forkserver_start(), 0);
    }
    /* The spare the zygote made, whose pidfd and socket we hold (none
     * without a zygote of this process). */
    (void)subiter__forkserver_spare();
    /* Crash reports keep symbols (and a debug file's fd) for the next
     * one: a process-wide cache, not a leak (check_trace tests it). */
    subiter__symbols_forget();
    s->fds = tu_count_fds();
    s->mappings = count_mappings();
}

unsigned long long tu_proc_status(pid_t pid, const char *field, int base)
{
    char path[64], line[256];
    size_t n = strlen(field);
    unsigned long long v = 0;
    bool found = false;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    while (!found && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            v = strtoull(line + n + 1, NULL, base);
            found = true;
        }
    }
    fclose(f);
    ck_assert_msg(found, "no %s in %s", field, path);
    return v;
}

pid_t tu_other_child(void)
{
    return other_child(subiter__forkserver_pid(), subiter__forkserver_spare());
}

void tu_assert_clean(const struct tu_snapshot *s)
{
    pid_t r = waitpid(-1, NULL, WNOHANG);
    int e = errno;

    if (r == 0 && subiter__forkserver_pid() > 0) {
        pid_t other = tu_other_child();

        ck_assert_msg(other == 0, "a child is left (pid %d)", (int)other);
    } else {
        ck_assert_msg(r == -1 && e == ECHILD, "a child is left (waitpid: %d)",
                      (int)r);
    }
    subiter__symbols_forget();
    ck_assert_int_eq(tu_count_fds(), s->fds);
    ck_assert_int_eq(count_mappings(), s->mappings);
}

void tu_assert_gone(pid_t pid)
{
    int r = kill(pid, 0), e = errno;

    ck_assert_msg(r == -1 && e == ESRCH, "worker %d is still there", (int)pid);
}

subiter_opts tu_opts(int timeout_ms)
{
    subiter_opts o = SUBITER_OPTS_INIT;

    o.grace_ms = 200;
    o.timeout_ms = timeout_ms;
    o.start_method = tu_start_method();
    /* The suites pass numbers (and pages made before the zygote) as arg,
     * which FORKSERVER and SPAWN refuse without arg_len; check_start sets
     * its method itself to test that refusal. */
    subiter__handoff_raw_arg(o.start_method != SUBITER_FORK);
    return o;
}

subiter_opts tu_opts_grace(int timeout_ms, int grace_ms)
{
    subiter_opts o = tu_opts(timeout_ms);

    o.grace_ms = grace_ms;
    return o;
}

int64_t tu_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tu_sleep_ms(long ms)
{
    struct timespec ts;

    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

long tu_item_long(const subiter_item *item)
{
    long v;

    ck_assert_uint_eq(item->len, sizeof v);
    memcpy(&v, item->data, sizeof v);
    return v;
}

void tu_expect_items(subiter *it, long from, long n)
{
    subiter_item item;
    long i;

    for (i = 0; i < n; i++) {
        ck_assert_int_eq(subiter_next(it, &item), 1);
        ck_assert_int_eq(tu_item_long(&item), from + i);
    }
}

void tu_expect_count(subiter *it, long n)
{
    subiter_item item;

    tu_expect_items(it, 0, n);
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_ptr_null(item.data);
    ck_assert_uint_eq(item.len, 0);
    ck_assert_int_eq(subiter_next(it, &item), 0);
}

void tu_run_count(const subiter_opts *o, long n)
{
    subiter *it;

    ck_assert_int_eq(subiter_open(&it, tu_gen_count, (void *)n, o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    tu_expect_count(it, n);
    ck_assert_int_eq(subiter_close(it), 0);
}

static unsigned char pattern(size_t i, unsigned seed)
{
    return (unsigned char)((i * 7u + seed * 13u + (i >> 9)) & 0xffu);
}

void tu_fill(unsigned char *p, size_t len, unsigned seed)
{
    size_t i;

    for (i = 0; i < len; i++) {
        p[i] = pattern(i, seed);
    }
}

void tu_expect_pattern(const subiter_item *item, size_t len, unsigned seed)
{
    const unsigned char *p = item->data;
    size_t i;

    ck_assert_uint_eq(item->len, len);
    for (i = 0; i < len; i++) {
        if (p[i] != pattern(i, seed)) {
            ck_abort_msg("item %u: byte %zu is %u, expected %u", seed, i,
                         (unsigned)p[i], (unsigned)pattern(i, seed));
        }
    }
}

int tu_yield_count(subiter_gen *g, long n)
{
    long i;
    int r;

    for (i = 0; i < n; i++) {
        if ((r = subiter_yield(g, &i, sizeof i)) != 0) {
            return r;
        }
    }
    return 0;
}

int tu_gen_count(subiter_gen *g, void *arg)
{
    long n = (long)(intptr_t)arg;
    size_t len;
    const void *in = subiter_input(g, &len);

    if (in != NULL && len == sizeof n) {
        memcpy(&n, in, sizeof n);
    }
    return tu_yield_count(g, n);
}

int tu_gen_hang(subiter_gen *g, void *arg)
{
    int r;

    (void)arg;
    if ((r = tu_yield_count(g, 1)) != 0) {
        return r;
    }
    sleep(30);
    return 0;
}

int tu_init_exit5(subiter_gen *g, void *arg)
{
    (void)g;
    (void)arg;
    _exit(5);
}

/*
 * Pages a worker writes and the test reads must be shared under every start
 * method: a FORKSERVER worker is forked from the zygote, which may have
 * started before the page was made, and a SPAWN worker is a fresh exec.
 * So they all come from one arena, a memfd mapped MAP_SHARED before main()
 * (and so before any zygote), and left open without CLOEXEC so that a
 * spawned worker inherits it. The worker's own copy of the constructor
 * below, which runs before the library's (priority), maps the same memfd at
 * the same address, named in TU_SHARED_ENV, so that pointers passed as arg
 * mean the same on both sides.
 */
#define TU_SHARED_ENV "SUBITER_TEST_SHARED"
#define TU_ARENA_BYTES ((size_t)4 << 20)

static unsigned char *arena;
static size_t arena_used;

__attribute__((constructor(101))) static void tu_arena_map(void)
{
    const char *v = getenv(TU_SHARED_ENV);
    char var[64];
    uintptr_t at;
    int fd;

    if (v != NULL && sscanf(v, "%d,%" SCNxPTR, &fd, &at) == 2) {
        /* A spawned worker: the same pages at the same address, or no
         * worker at all (a test would read zeros and blame the library). */
        arena = mmap((void *)at, TU_ARENA_BYTES, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
        if (arena != (void *)at) {
            fprintf(stderr, "testutil: cannot map the shared arena at %#jx\n",
                    (uintmax_t)at);
            _exit(98);
        }
        return;
    }
    fd = memfd_create("tu-shared", 0);
    if (fd < 0 || ftruncate(fd, (off_t)TU_ARENA_BYTES) != 0) {
        perror("testutil: shared arena");
        exit(99);
    }
    arena =
        mmap(NULL, TU_ARENA_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (arena == MAP_FAILED) {
        perror("testutil: shared arena");
        exit(99);
    }
    snprintf(var, sizeof var, "%d,%" PRIxPTR, fd, (uintptr_t)arena);
    setenv(TU_SHARED_ENV, var, 1);
}

void *tu_shared_new(size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t n = (len + page - 1) / page * page;
    void *p;

    ck_assert_msg(n <= TU_ARENA_BYTES - arena_used,
                  "shared arena full (%zu bytes used, %zu asked)", arena_used,
                  len);
    p = arena + arena_used;
    arena_used += n;
    /* Each case's process starts from the runner's (empty) arena, so a
     * page may hold what an earlier case left. */
    memset(p, 0, n);
    return p;
}

void tu_shared_free(void *p, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t n = (len + page - 1) / page * page;

    /* Only the newest block is given back: enough for cases that free what
     * they made, in any process that runs many cases (CK_FORK=no). */
    if ((unsigned char *)p + n == arena + arena_used) {
        arena_used -= n;
    }
}

/* The process that runs the suite, for the fork probe below. */
static pid_t runner_pid;

/* Says whether the case runs in the runner's process or in a child: what
 * tests/check-nofork.sh reads to see that CK_FORK=no really is honoured. */
START_TEST(tu_fork_probe)
{
    bool own = getpid() == runner_pid;

    printf("fork probe: this case ran %s (pid %ld, runner %ld)\n",
           own ? "in the runner's process" : "in a child of the runner",
           (long)getpid(), (long)runner_pid);
    fflush(stdout);
}
END_TEST

int tu_run(Suite *s)
{
    SRunner *sr;
    int failed;

    runner_pid = getpid();
    if (getenv("TU_FORK_PROBE") != NULL) {
        TCase *tc = tcase_create("fork_probe");

        tcase_add_test(tc, tu_fork_probe);
        suite_add_tcase(s, tc);
    }
    sr = srunner_create(s);
    /* CK_FORK set in the environment wins: CK_FORK=no runs every case in
     * this process, for a debugger, with the per-case timeouts off (Check
     * arms them only in a child). Unset, each case gets a child. */
    if (getenv("CK_FORK") == NULL) {
        srunner_set_fork_status(sr, CK_FORK);
    }
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

bool tu_wait_flag(_Atomic int *flag, int want, int ms)
{
    int64_t end = tu_now_ms() + ms;

    while (atomic_load(flag) < want) {
        if (tu_now_ms() > end) {
            return false;
        }
        tu_sleep_ms(1);
    }
    return true;
}
