/* wait.c: the one wait/wake protocol (wait.h) that the worker, the handle
 * and the pool use: spinning (only while the other side runs), the
 * sleeping flags and their fences, the running words, the worker's futex
 * doorbell, the parent's eventfd and pidfd poll(), and the clock the
 * deadlines are on. No other file sleeps or wakes. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

int64_t subiter__now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int subiter__ms_left(int64_t deadline_ns)
{
    int64_t left;

    if (deadline_ns == 0) {
        return -1;
    }
    left = deadline_ns - subiter__now_ns();
    if (left <= 0) {
        return 0;
    }
    left = (left + SUBITER__NS_PER_MS - 1) / SUBITER__NS_PER_MS;
    /* poll() takes an int; a deadline that far away is looked at again. */
    return left > 1000000 ? 1000000 : (int)left;
}

void subiter__spin(unsigned n)
{
    (void)n;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Pause instructions per turn of subiter__spin_turn(); 0: not measured
 * yet. Threads that measure at once store about the same number. */
static _Atomic unsigned turn_pauses;

/* A preemption while measuring makes the pauses look slow and the turns
 * short: the safe side. */
static unsigned measure_turn(void)
{
    int64_t t0 = subiter__now_ns(), per;
    unsigned k;

    for (k = 0; k < 64; k++) {
        subiter__spin(k);
    }
    per = (subiter__now_ns() - t0) / 64;
    if (per < 1) {
        per = 1;
    }
    k = (unsigned)(SUBITER__SPIN_TURN_NS / per);
    return k < 1 ? 1 : k > 128 ? 128 : k;
}

void subiter__spin_turn(void)
{
    unsigned n = atomic_load_explicit(&turn_pauses, memory_order_relaxed), k;

    if (n == 0) {
        n = measure_turn();
        atomic_store_explicit(&turn_pauses, n, memory_order_relaxed);
    }
    for (k = 0; k < n; k++) {
        subiter__spin(k);
    }
}

/* One turn of a wait's spin: a pause when an answer is due soon, else
 * about a microsecond (wait.h). */
static void spin_once(struct subiter__wait *w)
{
    if (w->quick) {
        subiter__spin(w->spins);
    } else {
        subiter__spin_turn();
    }
    w->spins++;
}

/* 1 + the CPU the caller runs on. sched_getcpu() reads it from the rseq
 * area or the vDSO: no syscall. */
static uint32_t this_cpu(void)
{
    int c = sched_getcpu();

    return c >= 0 ? (uint32_t)c + 1 : SUBITER__RUNNING_ANY;
}

void subiter__say_running(_Atomic uint32_t *word)
{
    atomic_store_explicit(word, this_cpu(), memory_order_relaxed);
}

bool subiter__runs_elsewhere(uint32_t other, uint32_t me)
{
    return other != 0 && other != me;
}

bool subiter__spin_window_open(struct subiter__wait *w)
{
    if (w->spins == SUBITER__SPUN) {
        return false;
    }
    if (w->spins == 0) {
        w->me = this_cpu();
        w->began = subiter__now_ns();
        w->spin_until = w->began + subiter__spin_window_max(
                                       w->last != NULL ? *w->last : 0, w->max);
    } else if ((!w->quick || (w->spins & 15) == 0) &&
               subiter__now_ns() >= w->spin_until) {
        w->spins = SUBITER__SPUN;
        return false;
    }
    return true;
}

/*
 * May this wait spin one more turn? Only while the other side is awake on
 * another CPU (or about to be: we just woke it, subiter__wake_if_armed()),
 * and for at most its window (subiter__spin_window()). A side that sleeps
 * moves only when we wake it, and one on our own CPU cannot run while we
 * spin: then spinning only burns what the other side (or, on a loaded
 * machine, anyone) needs, so we sleep at once and the kernel runs whoever
 * can make progress. `mine` is our running word, `other` the other
 * side's.
 */
static bool may_spin(struct subiter__wait *w, _Atomic uint32_t *mine,
                     _Atomic uint32_t *other)
{
    bool first = w->spins == 0;

    if (!subiter__spin_window_open(w)) {
        return false;
    }
    /* Say where we run. Stored only when it changed: the other side
     * reads this line while it waits, and every store pulls it back. */
    if (first && atomic_load_explicit(mine, memory_order_relaxed) != w->me) {
        atomic_store_explicit(mine, w->me, memory_order_relaxed);
    }
    /* relaxed: only a hint; the flag protocol decides who wakes whom. */
    if (!subiter__runs_elsewhere(
            atomic_load_explicit(other, memory_order_relaxed), w->me)) {
        w->spins = SUBITER__SPUN;
        return false;
    }
    return true;
}

/* ---- the flag protocol ---- */

/* This process's membarrier registration: 0 not asked yet, 1 registered,
 * -1 not available (or turned off by a test). */
static _Atomic int barrier_state;

bool subiter__barrier_init(bool again)
{
    int s = atomic_load_explicit(&barrier_state, memory_order_relaxed);

    if (s == 0 || (again && s > 0)) {
        /* Registering twice is a no-op for the kernel; a worker asks
         * again because an exec'd process starts unregistered. */
        s = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED, 0,
                    0) == 0
                ? 1
                : -1;
        atomic_store_explicit(&barrier_state, s, memory_order_relaxed);
    }
    return s > 0;
}

void subiter__barrier_off(void)
{
    atomic_store_explicit(&barrier_state, -1, memory_order_relaxed);
}

/* Is this process registered? Only subiter__barrier_init() makes it so,
 * before it tells the other side. */
static bool registered(void)
{
    return atomic_load_explicit(&barrier_state, memory_order_relaxed) > 0;
}

void subiter__sleep_flag(_Atomic uint32_t *flag)
{
    atomic_store_explicit(flag, 1, memory_order_relaxed);
    /* Asleep from here on, as far as the other side's spin is concerned. */
    atomic_store_explicit(subiter__running_of(flag), 0, memory_order_relaxed);
}

/* The sleeps this process armed with membarrier (tests). */
static _Atomic unsigned long membarriers;

unsigned long subiter__membarriers(void)
{
    return atomic_load_explicit(&membarriers, memory_order_relaxed);
}

void subiter__sleep_barrier(void)
{
    /* Orders the flag stores before the caller's last look at the ring;
     * pairs with the fence in subiter__wake_if_armed() on the other side.
     * A registered parent told the worker so (shm.h), which then wakes it
     * with a compiler barrier only; the fence below is for a process that
     * is not registered, or whose membarrier() failed. */
    if (registered() &&
        syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL_EXPEDITED, 0, 0) == 0) {
        atomic_fetch_add_explicit(&membarriers, 1, memory_order_relaxed);
        return;
    }
    atomic_thread_fence(memory_order_seq_cst);
}

void subiter__sleep_arm(_Atomic uint32_t *flag)
{
    subiter__sleep_flag(flag);
    subiter__sleep_barrier();
}

void subiter__sleep_disarm(_Atomic uint32_t *flag)
{
    atomic_store_explicit(flag, 0, memory_order_relaxed);
    atomic_store_explicit(subiter__running_of(flag), this_cpu(),
                          memory_order_relaxed);
}

bool subiter__wake_unfenced(uint32_t their_barrier)
{
    return their_barrier != 0 && registered();
}

void subiter__wake_worker(struct subiter__shm *shm)
{
    /* Fenced: the worker arms with a fence (subiter__worker_wait()). */
    if (subiter__wake_if_armed(&shm->child_sleeping, false)) {
        atomic_fetch_add_explicit(&shm->child_bell, 1, memory_order_relaxed);
        /* Not FUTEX_PRIVATE_FLAG: the sleeper is another process. */
        (void)syscall(SYS_futex, &shm->child_bell, FUTEX_WAKE, 1, NULL, NULL,
                      0);
    }
}

void subiter__ring_parent(int efd)
{
    uint64_t one = 1;

    while (write(efd, &one, sizeof one) < 0 && errno == EINTR) {
    }
}

/* ---- the worker waits ---- */

void subiter__worker_wait(struct subiter__shm *shm, struct subiter__wait *w)
{
    if (!w->armed && may_spin(w, &shm->child_running, &shm->parent_running)) {
        spin_once(w);
        return;
    }
    if (!w->armed) {
        /* The bell as it is now: a ring after this makes FUTEX_WAIT return
         * at once instead of sleeping. */
        w->bell = atomic_load_explicit(&shm->child_bell, memory_order_relaxed);
        /* A fence, not membarrier: the parent looks for us with a fence
         * once per half a ring, per command or before it waits itself,
         * not per item (wait.h). */
        subiter__sleep_flag(&shm->child_sleeping);
        atomic_thread_fence(memory_order_seq_cst);
        w->armed = true;
        return; /* the caller looks again before we sleep */
    }
    /* Not FUTEX_PRIVATE_FLAG: the waker is another process. */
    (void)syscall(SYS_futex, &shm->child_bell, FUTEX_WAIT, w->bell, NULL, NULL,
                  0);
    subiter__sleep_disarm(&shm->child_sleeping);
    w->armed = false;
}

/* ---- the parent waits ---- */

void subiter__parent_chase(struct subiter__shm *shm, uint32_t consumed,
                           uint32_t pos)
{
    uint32_t me = this_cpu();
    int64_t until = 0;
    unsigned k;

    for (k = 0;; k++) {
        /* relaxed, all three: hints; the records' headers decide. The
         * worker's words are not trusted: a wrong one ends the chase
         * early, or after SUBITER__CHASE_NS. */
        int32_t items = (int32_t)(atomic_load_explicit(&shm->items_published,
                                                       memory_order_relaxed) -
                                  consumed);
        int32_t bytes = (int32_t)(atomic_load_explicit(&shm->item_tail,
                                                       memory_order_relaxed) -
                                  pos);
        uint32_t run =
            atomic_load_explicit(&shm->child_running, memory_order_relaxed);

        if (items > 0 || bytes > 0 || !subiter__runs_elsewhere(run, me)) {
            return;
        }
        /* The clock every few turns: a pause is 3 to 45 ns (wait.h). */
        if (k % 8 == 0) {
            int64_t now = subiter__now_ns();

            if (until == 0) {
                until = now + SUBITER__CHASE_NS;
            } else if (now >= until) {
                return;
            }
        }
        subiter__spin(k);
    }
}

int subiter__poll(struct pollfd *fds, unsigned nfds, int64_t deadline_ns,
                  bool fallback)
{
    int timeout = subiter__ms_left(deadline_ns), n;

    if (fallback && (timeout < 0 || timeout > SUBITER__FALLBACK_SLICE_MS)) {
        timeout = SUBITER__FALLBACK_SLICE_MS;
    }
    n = poll(fds, nfds, timeout);
    if (n < 0) {
        return errno == EINTR ? 0 : -errno;
    }
    return n;
}

void subiter__eventfd_drain(int efd)
{
    uint64_t n;

    /* Non-blocking: one read empties it, EAGAIN when it already was. */
    while (read(efd, &n, sizeof n) < 0 && errno == EINTR) {
    }
}

/* Sleep until the worker rings `efd`, exits, or the deadline passes:
 * 1 (rang), 0 (deadline), -ECHILD (exited), or -errno from poll(). */
static int sleep_on(struct subiter__proc *p, int efd, int64_t deadline_ns)
{
    struct pollfd fds[2];
    int n;

    for (;;) {
        if (subiter__ms_left(deadline_ns) == 0) {
            return 0;
        }
        fds[0].fd = efd;
        fds[0].events = POLLIN;
        fds[0].revents = 0;
        fds[1].fd = p->pidfd;
        fds[1].events = POLLIN;
        fds[1].revents = 0;
        n = subiter__poll(fds, p->pidfd >= 0 ? 2 : 1, deadline_ns,
                          p->pidfd < 0);
        if (n < 0) {
            return n;
        }
        if (fds[0].revents & POLLIN) {
            subiter__eventfd_drain(efd);
            return 1;
        }
        if (fds[1].revents != 0 || (p->pidfd < 0 && subiter__proc_exited(p))) {
            return -ECHILD;
        }
    }
}

int subiter__parent_wait(struct subiter__shm *shm, struct subiter__wait *w,
                         int efd, struct subiter__proc *proc,
                         int64_t deadline_ns)
{
    int r;

    if (!w->armed && may_spin(w, &shm->parent_running, &shm->child_running)) {
        spin_once(w);
        return 0;
    }
    if (!w->armed) {
        subiter__sleep_arm(&shm->parent_sleeping);
        w->armed = true;
        return 0; /* the caller looks again before we sleep */
    }
    r = sleep_on(proc, efd, deadline_ns);
    subiter__sleep_disarm(&shm->parent_sleeping);
    w->armed = false;
    if (r == 0) {
        return -ETIMEDOUT;
    }
    /* A poll() failure other than EINTR cannot be waited out: treat the
     * worker as gone, as the old code did. */
    return r == 1 ? 0 : -ECHILD;
}
