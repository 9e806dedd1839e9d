/* pool_evloop.c: a pool in an application's event loop:
 * subiter_pool_fd() (evloop.c's epoll set over the eventfds of the
 * workers that may write, their pidfds, and a timer for the loop's next
 * deadline) and subiter_pool_next_timeout(). The loop stays the only
 * place that waits: a timed next is the loop's condition plus a deadline,
 * and when that passes the loop parks the pool (leaves the workers armed,
 * so that they ring their eventfds); the next run of the loop unparks it
 * first. */
#include "config.h"

#include <errno.h>

#include "pool.h"

void pool__poke(subiter_pool *p)
{
    /* A deadline in the past: the timer fires at once. */
    subiter__evfd_timer(&p->evfd, 1, false);
}

void pool__ev_forget(subiter_pool *p, unsigned i)
{
    subiter__evfd_watch(&p->evfd, &p->w[i].ev_efd, -1);
    subiter__evfd_watch(&p->evfd, &p->w[i].ev_pidfd, -1);
}

void pool__unpark(subiter_pool *p)
{
    p->parked = false;
    subiter__evfd_drain(&p->evfd);
    /* A poll() that does not wait: empties the eventfds that rang and
     * turns exits into events, as a sleep of the loop would. */
    pool__sleep(p, 1);
    pool__disarm(p);
}

/* Parked: the epoll set watches what the loop would sleep on (the
 * eventfds of the workers that may write, and the pidfds of the live
 * ones), and the timer the loop's next deadline. */
static void watch(subiter_pool *p)
{
    bool slices = false;
    unsigned i;

    for (i = 0; i < p->n; i++) {
        struct pool_slot *w = &p->w[i];
        int efd = -1, pidfd = -1;

        if (w->st != SLOT_EMPTY) {
            subiter__fds(w->h, &efd, &pidfd);
            if (w->st != SLOT_STARTING && w->st != SLOT_BUSY &&
                w->st != SLOT_STOPPING) {
                efd = -1; /* not armed: it never rings */
            }
            if (w->exited) {
                pidfd = -1;
            } else if (pidfd < 0) {
                slices = true;
            }
        }
        subiter__evfd_watch(&p->evfd, &w->ev_efd, efd);
        subiter__evfd_watch(&p->evfd, &w->ev_pidfd, pidfd);
    }
    subiter__evfd_timer(&p->evfd, p->next_timer, slices);
}

int subiter_pool_fd(subiter_pool *p)
{
    int r;

    if (p == NULL || p->w == NULL) {
        return -EINVAL;
    }
    if (p->evfd.ep >= 0) {
        return p->evfd.ep;
    }
    r = subiter__evfd_open(&p->evfd);
    if (r < 0) {
        return pool__fail(p, r, "cannot create the pollable fd: %s",
                          subiter_strerror(r));
    }
    /* Readable once: the application's first call parks the pool. */
    pool__poke(p);
    return p->evfd.ep;
}

int subiter_pool_next_timeout(subiter_pool *p, subiter_pool_item *item,
                              int timeout_ms)
{
    int64_t deadline;
    int r;

    if (timeout_ms < 0 || p == NULL || item == NULL || p->w == NULL ||
        p->in_cb) {
        return subiter_pool_next(p, item);
    }
    /* 0 ms: the deadline has passed by the loop's first look, which then
     * does one round of the pool's work without sleeping. */
    deadline = subiter__now_ns() + (int64_t)timeout_ms * SUBITER__NS_PER_MS;
    p->park = p->evfd.ep >= 0;
    r = pool__next(p, item, deadline);
    p->park = false;
    p->polling = r == -EAGAIN;
    if (p->parked) {
        watch(p);
    }
    return r;
}
