/* testutil.h: helpers shared by the Check suites. */
#ifndef SUBITER_TESTUTIL_H
#define SUBITER_TESTUTIL_H

#include <check.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "subiter.h"

/* What a test must leave as it found: fds, library mappings, children. */
struct tu_snapshot {
    int fds;      /* entries in /proc/self/fd */
    int mappings; /* lines of /proc/self/maps naming the library's memfd */
};

void tu_snapshot(struct tu_snapshot *s);
/* Entries in /proc/self/fd now. */
int tu_count_fds(void);
/* The number in field `field` of /proc/<pid>/status, in `base`. */
unsigned long long tu_proc_status(pid_t pid, const char *field, int base);
/* A child of this process other than the forkserver's zygote and spare,
 * or 0. */
pid_t tu_other_child(void);
/* ck_assert that fds and mappings are back to `s`, and no child is left
 * (waitpid(-1, WNOHANG) says ECHILD). Call before the test returns. */
void tu_assert_clean(const struct tu_snapshot *s);

/* ck_assert that the process is gone: the library killed and reaped it
 * (not even a zombie is left). */
void tu_assert_gone(pid_t pid);

/* The start method the suites run under: SUBITER_TEST_START_METHOD=fork
 * (the default), forkserver or spawn; anything else exits 99. */
int tu_start_method(void);

/* Options with small grace and the given timeout, for fast tests, and the
 * start method of tu_start_method(). */
subiter_opts tu_opts(int timeout_ms);

/* A grace for cases where the worker exits at once on ABORT: close() then
 * returns as soon as it has, and slow runs (valgrind) need more than 200 ms
 * to see a worker exit. */
#define TU_LONG_GRACE_MS 5000

/* tu_opts(timeout_ms) with grace_ms instead of 200. */
subiter_opts tu_opts_grace(int timeout_ms, int grace_ms);

/* Monotonic milliseconds. */
int64_t tu_now_ms(void);
/* Wait (sleeping 1 ms at a time) until *flag >= want, at most ms; false
 * when the time ran out. For flags in a page a worker writes. */
bool tu_wait_flag(_Atomic int *flag, int want, int ms);

/* Sleep ms milliseconds, resuming after EINTR. */
void tu_sleep_ms(long ms);

/* ck_assert that the item is a long, and return it. */
long tu_item_long(const subiter_item *item);

/* ck_assert that the next n items are the longs from, from + 1, ... */
void tu_expect_items(subiter *it, long from, long n);

/* Read n items 0 .. n-1, then the end (twice: it is sticky). */
void tu_expect_count(subiter *it, long n);

/* Open tu_gen_count(n) with o, check one whole iteration, close. */
void tu_run_count(const subiter_opts *o, long n);

/* Fill p with len bytes of the pattern `seed` names (in a generator too). */
void tu_fill(unsigned char *p, size_t len, unsigned seed);

/* ck_assert that item holds len bytes of tu_fill(seed). */
void tu_expect_pattern(const subiter_item *item, size_t len, unsigned seed);

/* A 16 KiB ring (buffer_bytes) and the largest item it takes: less the
 * record header, the item prefix and the next header's room (ring.h). */
#define TU_SMALL_RING ((size_t)16 * 1024)
#define TU_SMALL_MAX (TU_SMALL_RING - 24)

/* In a generator: yield the longs 0 .. n-1; 0, or the first yield's error. */
int tu_yield_count(subiter_gen *g, long n);

/* Generator: the longs 0 .. n-1; n is the input (a long) if any, else arg. */
int tu_gen_count(subiter_gen *g, void *arg);

/* Generator: the long 0, then 30 s asleep without yielding (deaf to stop). */
int tu_gen_hang(subiter_gen *g, void *arg);

/* Initializer: _exit(5) at once. */
int tu_init_exit5(subiter_gen *g, void *arg);

/* Zeroed MAP_SHARED pages the worker and the test both see, under every
 * start method (for counters written in generators), at the same address
 * in a SPAWN worker. Given back by tu_shared_free(). */
void *tu_shared_new(size_t len);
void tu_shared_free(void *p, size_t len);

/* Declares and defines a generator or initializer that SUBITER_SPAWN's
 * worker can find by name (dlsym: not static; the test programs link with
 * -export-dynamic): TU_EXPORT(int gen_x(subiter_gen *g, void *arg)) {...} */
#define TU_EXPORT(decl)                                                        \
    decl;                                                                      \
    decl

/* Run a suite, each case in a child of its own unless the environment says
 * CK_FORK=no; returns the process exit status for main(). With
 * TU_FORK_PROBE set, a case that prints where it ran is added. */
int tu_run(Suite *s);

/*
 * Check's ck_assert reports every passing assertion to the runner (one
 * write per call), far too slow for the loops here: REQUIRE is silent
 * until it fails.
 */
#define REQUIRE(c)                                                             \
    do {                                                                       \
        if (!(c)) {                                                            \
            ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #c);                 \
        }                                                                      \
    } while (0)
#define REQUIRE_OP(a, op, b)                                                   \
    do {                                                                       \
        uintmax_t req_a_ = (uintmax_t)(a), req_b_ = (uintmax_t)(b);            \
        if (!(req_a_ op req_b_)) {                                             \
            ck_abort_msg("%s:%d: %s %s %s (%jd, %jd)", __FILE__, __LINE__, #a, \
                         #op, #b, (intmax_t)req_a_, (intmax_t)req_b_);         \
        }                                                                      \
    } while (0)
#define REQUIRE_EQ(a, b) REQUIRE_OP(a, ==, b)
#define REQUIRE_LE(a, b) REQUIRE_OP(a, <=, b)
#define REQUIRE_LT(a, b) REQUIRE_OP(a, <, b)
#define REQUIRE_GT(a, b) REQUIRE_OP(a, >, b)

#endif
