/* testproc.h: what the process suites (check_proc.c, check_proc_env.c)
 * share: the page a worker reports through, the generators that follow a
 * plan, pause, run forever or trickle, and checks of a handle's end. */
#ifndef SUBITER_TESTPROC_H
#define SUBITER_TESTPROC_H

#include <stdint.h>

#include "testutil.h"

/* Grace for cases where the worker must exit at once on ABORT: close then
 * returns as soon as it has, and the grace only decides when a slow exit
 * (valgrind, a loaded machine) would count as a hang. Cases that need the
 * grace to run out (a worker that ignores ABORT) use tu_opts() itself. */
#define PROMPT_GRACE_MS 3000
#define SLACK_MS 2000
#define WAIT_MS 5000 /* bound on waits for a worker to reach a point */

/* A page the worker and the test both see. */
struct tproc_shared {
    _Atomic int ready; /* the worker reached the point the test waits for */
    _Atomic int count; /* items the worker yielded */
    _Atomic int pid;   /* a worker's pid, written by a middle process */
};

/* What tproc_gen_plan() does after yielding `items` items. */
enum how { HOW_RETURN, HOW_SEGV, HOW_EXIT3, HOW_EXIT0 };

struct tproc_plan {
    int items;
    int how;
};

/* tproc_gen_paced()'s arg: n items, each after gap_ms of sleep. */
struct tproc_pace {
    long n;
    int gap_ms;
};

/* Monotonic microseconds. */
int64_t tproc_now_us(void);

void tproc_assert_errmsg_has(const subiter *it, const char *what);

/* Every call on the handle says SUBITER_ECLOSED: its worker is dead. */
void tproc_assert_dead_handle(subiter *it);

/* ---- generators (they run in the worker: no ck_*) ---- */

/* Follows the struct tproc_plan given as input. */
int tproc_gen_plan(subiter_gen *g, void *arg);

/* Says it is running (arg: struct tproc_shared *, may be NULL), then sleeps
 * until a signal kills it. */
int tproc_gen_pause(subiter_gen *g, void *arg);

/* Yields 0, 1, 2, ... forever, counting in arg (struct tproc_shared *). */
int tproc_gen_forever(subiter_gen *g, void *arg);

/* Yields 0 .. n-1, sleeping gap_ms before each (arg: struct tproc_pace *). */
int tproc_gen_paced(subiter_gen *g, void *arg);

#endif
