/* evloop.h: the one fd that subiter_fd() and subiter_pool_fd() hand to an
 * application's event loop (evloop.c): an epoll set over the wake-up
 * eventfds and pidfds of the workers, plus a timerfd for the deadlines
 * that no fd reports (the inactivity timeout, task deadlines, the stop
 * bound, and without a pidfd the slices between looks for an exit).
 *
 * It is readable when one of them is: the workers ring their eventfd only
 * while the parent is armed, so a handle arms (parks) when a timed next
 * returns -EAGAIN, and the next call disarms and empties what rang.
 */
#ifndef SUBITER_EVLOOP_H
#define SUBITER_EVLOOP_H

struct subiter__evfd {
    int ep;  /* the epoll fd handed out; -1 until asked for */
    int tfd; /* timerfd in it */
};
#define SUBITER__EVFD_INIT                                                     \
    {                                                                          \
        -1, -1                                                                 \
    }

/* Create the epoll fd and its timerfd. 0 or -errno. */
SUBITER__HIDDEN int subiter__evfd_open(struct subiter__evfd *e);
SUBITER__HIDDEN void subiter__evfd_close(struct subiter__evfd *e);
/* Watch fd `now` instead of `*was` (either may be -1); *was = now. */
SUBITER__HIDDEN void subiter__evfd_watch(struct subiter__evfd *e, int *was,
                                         int now);
/* Make the timer fire at deadline_ns (0: never); with `slices`, also every
 * SUBITER__FALLBACK_SLICE_MS before it. */
SUBITER__HIDDEN void subiter__evfd_timer(struct subiter__evfd *e,
                                         int64_t deadline_ns, bool slices);
/* Empty the timerfd after it fired, for the next park. */
SUBITER__HIDDEN void subiter__evfd_drain(struct subiter__evfd *e);

#endif /* SUBITER_EVLOOP_H */
