/* testproc.c: the helpers and generators the process suites share (see
 * testproc.h). */
#include "config.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testproc.h"

int64_t tproc_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void tproc_assert_errmsg_has(const subiter *it, const char *what)
{
    const char *m = subiter_errmsg(it);

    ck_assert_msg(strstr(m, what) != NULL, "errmsg \"%s\" lacks \"%s\"", m,
                  what);
}

void tproc_assert_dead_handle(subiter *it)
{
    subiter_item item;

    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECLOSED);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECLOSED);
    ck_assert_int_eq(subiter_start(it, NULL, 0), SUBITER_ECLOSED);
    ck_assert_int_eq(subiter_stop(it), SUBITER_ECLOSED);
}

/* Follows the struct tproc_plan given as input. */
int tproc_gen_plan(subiter_gen *g, void *arg)
{
    struct tproc_plan p = {0, HOW_RETURN};
    size_t len;
    const void *in = subiter_input(g, &len);
    int r;

    (void)arg;
    if (in == NULL || len != sizeof p) {
        return subiter_fail(g, "no plan");
    }
    memcpy(&p, in, sizeof p);
    if ((r = tu_yield_count(g, p.items)) != 0) {
        return r;
    }
    switch (p.how) {
    case HOW_SEGV:
        raise(SIGSEGV);
        break;
    case HOW_EXIT3:
        exit(3);
    case HOW_EXIT0:
        _exit(0);
    default:
        break;
    }
    return 0;
}

/* Says it is running (arg: struct tproc_shared *, may be NULL), then sleeps
 * until a signal kills it. */
int tproc_gen_pause(subiter_gen *g, void *arg)
{
    struct tproc_shared *sh = arg;

    (void)g;
    if (sh != NULL) {
        atomic_store(&sh->ready, 1);
    }
    for (;;) {
        pause();
    }
    return 0;
}

/* Yields 0, 1, 2, ... forever, counting in arg (struct tproc_shared *). */
int tproc_gen_forever(subiter_gen *g, void *arg)
{
    struct tproc_shared *sh = arg;
    long i;
    int r;

    for (i = 0;; i++) {
        if ((r = subiter_yield(g, &i, sizeof i)) != 0) {
            return r;
        }
        if (sh != NULL) {
            atomic_store(&sh->count, (int)(i + 1));
        }
    }
}

/* Yields 0 .. n-1, sleeping gap_ms before each (arg: struct tproc_pace *). */
int tproc_gen_paced(subiter_gen *g, void *arg)
{
    const struct tproc_pace *p = arg;
    long i;
    int r;

    for (i = 0; i < p->n; i++) {
        tu_sleep_ms(p->gap_ms);
        if ((r = subiter_yield(g, &i, sizeof i)) != 0) {
            return r;
        }
    }
    return 0;
}
