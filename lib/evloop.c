/* evloop.c: the pollable fd of a handle or a pool (evloop.h): the epoll
 * set, what is in it, and its timer. It never waits: the application
 * polls the fd, and the timed next calls do the reading. */
#include "config.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "internal.h"

int subiter__evfd_open(struct subiter__evfd *e)
{
    struct epoll_event ev = {.events = EPOLLIN};
    int r;

    if (e->ep >= 0) {
        return 0;
    }
    e->ep = epoll_create1(EPOLL_CLOEXEC);
    if (e->ep < 0) {
        return -errno;
    }
    e->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (e->tfd < 0) {
        r = -errno;
        subiter__evfd_close(e);
        return r;
    }
    ev.data.fd = e->tfd;
    if (epoll_ctl(e->ep, EPOLL_CTL_ADD, e->tfd, &ev) < 0) {
        r = -errno;
        subiter__evfd_close(e);
        return r;
    }
    return 0;
}

void subiter__evfd_close(struct subiter__evfd *e)
{
    if (e->tfd >= 0) {
        (void)close(e->tfd);
    }
    if (e->ep >= 0) {
        (void)close(e->ep);
    }
    e->tfd = -1;
    e->ep = -1;
}

void subiter__evfd_watch(struct subiter__evfd *e, int *was, int now)
{
    struct epoll_event ev = {.events = EPOLLIN};

    if (e->ep < 0 || *was == now) {
        return;
    }
    /* Taken out before its fd is closed: a file that outlives the number
     * (a worker holds it) would otherwise stay in the set, maybe readable
     * for good. */
    if (*was >= 0) {
        (void)epoll_ctl(e->ep, EPOLL_CTL_DEL, *was, NULL);
    }
    *was = -1;
    if (now >= 0) {
        ev.data.fd = now;
        if (epoll_ctl(e->ep, EPOLL_CTL_ADD, now, &ev) == 0) {
            *was = now;
        }
    }
}

void subiter__evfd_timer(struct subiter__evfd *e, int64_t deadline_ns,
                         bool slices)
{
    struct itimerspec its = {{0, 0}, {0, 0}};
    int64_t slice = SUBITER__FALLBACK_SLICE_MS * SUBITER__NS_PER_MS;
    int64_t at = deadline_ns;

    if (e->tfd < 0) {
        return;
    }
    if (slices) {
        int64_t soon = subiter__now_ns() + slice;

        at = at == 0 || soon < at ? soon : at;
        its.it_interval.tv_nsec = slice;
    }
    if (at != 0) {
        /* An absolute 0 disarms: a deadline in the past is 1 ns. */
        at = at > 0 ? at : 1;
        its.it_value.tv_sec = at / 1000000000;
        its.it_value.tv_nsec = at % 1000000000;
    }
    (void)timerfd_settime(e->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

void subiter__evfd_drain(struct subiter__evfd *e)
{
    uint64_t n;

    if (e->tfd >= 0) {
        while (read(e->tfd, &n, sizeof n) < 0 && errno == EINTR) {
        }
    }
}
