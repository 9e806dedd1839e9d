/* pool_wait.c: the pool's wait on all of its workers at once: the spin
 * while a worker that may write runs on another CPU, then the sleep:
 * arming the workers that may write (so they wake the parent), the one
 * poll() over every eventfd and pidfd, and without pidfds (valgrind) the
 * short slices between which deaths are looked for. Turns what it sees
 * into events for the loop (pool__exited()); it never calls the loop. */
#include "config.h"

#include <errno.h>
#include <unistd.h>

#include "pool.h"

/* A new wait of the loop: one pause per turn, the clock every 16th. */
void pool__wait_begin(subiter_pool *p, struct subiter__wait *w)
{
    *w = (struct subiter__wait)SUBITER__WAIT_INIT;
    w->quick = true;
    w->last = &p->last_wait_ns;
}

/*
 * May the loop spin one more turn? For its window (wait.h:
 * subiter__spin_window()), and only while a worker that may write to it
 * is awake on another CPU, as a handle's wait. Else only a sleep lets
 * anyone move: a worker that sleeps moves when we wake it, one on our CPU
 * when we leave it, and a pool of CPU-bound workers on every CPU lost a
 * tenth of its speed to a parent that spun for each of its items.
 */
bool pool__may_spin(const subiter_pool *p, struct subiter__wait *w)
{
    unsigned i;

    if (!subiter__spin_window_open(w)) {
        return false;
    }
    for (i = 0; i < p->n; i++) {
        if (pool__may_write(&p->w[i]) &&
            subiter__worker_elsewhere(p->w[i].h, w->me)) {
            return true;
        }
    }
    w->spins = SUBITER__SPUN;
    return false;
}

void pool__wait_end(subiter_pool *p, const struct subiter__wait *w,
                    bool timed_out)
{
    /* A wait the caller's deadline cut short says nothing of the
     * workers. */
    if (w->spins != 0 && !timed_out) {
        p->last_wait_ns = subiter__now_ns() - w->began;
    }
}

void (*pool__before_arm)(subiter_pool *p);

bool pool__arm(subiter_pool *p)
{
    bool fresh = false;
    unsigned i;

    if (pool__before_arm != NULL) {
        pool__before_arm(p);
    }
    for (i = 0; i < p->n; i++) {
        struct pool_slot *w = &p->w[i];

        if (pool__may_write(w) && !w->armed) {
            subiter__arm(w->h, true);
            w->armed = true;
            fresh = true;
        }
    }
    if (fresh) {
        subiter__sleep_barrier(); /* one for all the flags just set */
    }
    return fresh;
}

void pool__disarm(subiter_pool *p)
{
    unsigned i;

    for (i = 0; i < p->n; i++) {
        if (p->w[i].armed && p->w[i].h != NULL) {
            subiter__arm(p->w[i].h, false);
        }
        p->w[i].armed = false;
    }
}

static void add_fd(subiter_pool *p, unsigned *nfds, int fd, unsigned i)
{
    p->pfd[*nfds].fd = fd;
    p->pfd[*nfds].events = POLLIN;
    p->pfd[*nfds].revents = 0;
    p->pfd_worker[(*nfds)++] = i;
}

/* Fill p->pfd; true when some worker has no pidfd (look in slices). */
static bool gather(subiter_pool *p, unsigned *nfds)
{
    bool fallback = false;
    unsigned i;

    *nfds = 0;
    for (i = 0; i < p->n; i++) {
        struct pool_slot *w = &p->w[i];
        int efd, pidfd;

        if (w->st == SLOT_EMPTY) {
            continue;
        }
        subiter__fds(w->h, &efd, &pidfd);
        if (pool__may_write(w)) {
            add_fd(p, nfds, efd, i);
        }
        if (w->exited) {
            continue;
        }
        if (pidfd < 0) {
            fallback = true;
        } else {
            add_fd(p, nfds, pidfd, i);
        }
    }
    return fallback;
}

void pool__sleep(subiter_pool *p, int64_t deadline_ns)
{
    unsigned i, nfds;
    bool fallback = gather(p, &nfds);
    int n;

    n = subiter__poll(p->pfd, nfds, deadline_ns, fallback);
    for (i = 0; n > 0 && i < nfds; i++) {
        unsigned k = p->pfd_worker[i];
        int efd, pidfd;

        if (p->pfd[i].revents == 0 || p->w[k].st == SLOT_EMPTY) {
            continue;
        }
        subiter__fds(p->w[k].h, &efd, &pidfd);
        if (p->pfd[i].fd == efd) {
            subiter__eventfd_drain(efd);
        } else if (!p->w[k].exited) {
            pool__exited(p, k);
        }
    }
    for (i = 0; fallback && i < p->n; i++) {
        if (p->w[i].st != SLOT_EMPTY && !p->w[i].exited &&
            subiter__check_exit(p->w[i].h)) {
            pool__exited(p, i);
        }
    }
}
