/* handle_evloop.c: a handle in an application's event loop:
 * subiter_fd() (the epoll set of evloop.c over the handle's eventfd,
 * pidfd and timer) and subiter_next_timeout(). A timed next that finds
 * nothing parks the handle (arms it, so that the worker rings the eventfd
 * at its next status) and sets the timer to what no fd reports; the next
 * call unparks it. The blocking calls of subiter.c never park. */
#include "config.h"

#include <errno.h>
#include <unistd.h>

#include "internal.h"
#include "handle_impl.h"

/* Make the fd readable now (a spurious wake costs one -EAGAIN). */
static void ring_self(subiter *it)
{
    uint64_t one = 1;

    while (write(it->efd, &one, sizeof one) < 0 && errno == EINTR) {
    }
}

void subiter__evfd_started(subiter *it)
{
    if (it->ev.ep >= 0) {
        ring_self(it);
    }
}

int subiter_fd(subiter *it)
{
    int r;

    if (it == NULL) {
        return -EINVAL;
    }
    if (it->ev.ep >= 0) {
        return it->ev.ep;
    }
    if (it->state == ST_DEAD) {
        return SUBITER_ECLOSED;
    }
    r = subiter__evfd_open(&it->ev);
    if (r < 0) {
        return subiter__fail(it, r, "cannot create the pollable fd: %s",
                             subiter_strerror(r));
    }
    subiter__evfd_watch(&it->ev, &it->ev_efd, it->efd);
    subiter__evfd_watch(&it->ev, &it->ev_pidfd,
                        it->proc.reaped ? -1 : it->proc.pidfd);
    /* Items may be there already: let the first poll say so. */
    ring_self(it);
    return it->ev.ep;
}

/* Undo the last park: disarm, and empty what rang meanwhile. */
static void unpark(subiter *it)
{
    if (!it->parked) {
        return;
    }
    it->parked = false;
    subiter__arm(it, false);
    subiter__eventfd_drain(it->efd);
    subiter__evfd_drain(&it->ev);
}

/* Nothing there: arm, so that the worker rings the eventfd, and look once
 * more (wait.h's protocol). Returns what that last look found. */
static int park(subiter *it, subiter_item *item)
{
    int64_t idle = 0;
    int r;

    if (it->ev.ep < 0) {
        return -EAGAIN;
    }
    subiter__eventfd_drain(it->efd);
    subiter__evfd_drain(&it->ev);
    subiter__arm(it, true);
    subiter__sleep_barrier();
    r = subiter__next_nowait(it, item, true);
    if (r != -EAGAIN) {
        subiter__arm(it, false);
        return r;
    }
    it->parked = true;
    if (it->timeout_ms > 0) {
        idle = it->wait_since + (int64_t)it->timeout_ms * SUBITER__NS_PER_MS;
    }
    /* Without a pidfd no fd tells of an exit: look in slices. */
    subiter__evfd_timer(&it->ev, idle, it->proc.pidfd < 0);
    return -EAGAIN;
}

int subiter_next_timeout(subiter *it, subiter_item *item, int timeout_ms)
{
    int64_t now;
    int r;

    if (timeout_ms < 0 || it == NULL || item == NULL) {
        return subiter_next(it, item);
    }
    unpark(it);
    now = subiter__now_ns();
    if (it->state == ST_ITERATING && it->wait_since == 0) {
        it->wait_since = now;
    }
    if (timeout_ms == 0) {
        if (it->state == ST_ITERATING && subiter__live(it)) {
            (void)subiter__check_exit(it);
        }
        r = subiter__next_nowait(it, item, true);
    } else {
        it->until = now + (int64_t)timeout_ms * SUBITER__NS_PER_MS;
        r = subiter_next(it, item);
        it->until = 0;
    }
    if (r == -EAGAIN) {
        r = park(it, item);
    }
    if (r != -EAGAIN) {
        it->wait_since = 0;
    }
    return r;
}
