/* testutil.h: helpers shared by the Check suites. */
#ifndef SUBITER_TESTUTIL_H
#define SUBITER_TESTUTIL_H

#include <check.h>
#include <stdint.h>

#include "subiter.h"

/* What a test must leave as it found: fds, library mappings, children. */
struct tu_snapshot {
    int fds;      /* entries in /proc/self/fd */
    int mappings; /* lines of /proc/self/maps naming the library's memfd */
};

void tu_snapshot(struct tu_snapshot *s);
/* ck_assert that fds and mappings are back to `s`, and no child is left
 * (waitpid(-1, WNOHANG) says ECHILD). Call before the test returns. */
void tu_assert_clean(const struct tu_snapshot *s);

/* Options with small grace and the given timeout, for fast tests. */
subiter_opts tu_opts(int timeout_ms);

/* Monotonic milliseconds. */
int64_t tu_now_ms(void);

/* A MAP_SHARED anonymous page the worker and the test both see (for
 * counters written in generators). Unmapped by tu_shared_free(). */
void *tu_shared_new(size_t len);
void tu_shared_free(void *p, size_t len);

/* Run a suite with CK_FORK on and the default per-case timeout; returns the
 * process exit status for main(). */
int tu_run(Suite *s);

#endif
