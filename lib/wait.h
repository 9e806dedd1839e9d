/* wait.h: the one wait/wake protocol (wait.c) that the worker, the handle
 * and the pool use: a bounded spin, then an "about to sleep" flag with a
 * last look, then sleep (the worker on a futex in the region, the parent in
 * poll() on its eventfd and the worker's pidfd); the side that publishes
 * wakes the other only when that flag is set.
 *
 *   sleeper                           waker
 *   -------                           -----
 *   flag = 1          (arm)           publish (header or index store)
 *   barrier (below)                   fence (below)
 *   look again; if nothing:           if flag: flag = 0, ring the bell
 *   sleep until the bell rings
 *
 * Each side orders its store before its load, so at least one of them
 * sees the other's store: either the sleeper's last look finds the
 * record, or the waker finds the flag. Acquire/release alone cannot give
 * that (store-load ordering).
 *
 * The worker looks for a sleeping parent for every item it publishes, and
 * the parent arms once per sleep, so the cost goes to the parent (the
 * asymmetric Dekker of userspace RCU): its barrier is membarrier(
 * MEMBARRIER_CMD_GLOBAL_EXPEDITED), which runs a full fence on every CPU
 * that runs a registered process, and the worker's fence is then a
 * compiler barrier only. That needs both processes registered: the parent
 * records in the region whether it is (shm.h: parent_barrier), and the
 * worker skips its fence only when it is registered itself and the parent
 * said so. Otherwise (no membarrier: old kernels, valgrind, a seccomp
 * filter) both are seq_cst fences. A fence per item cost a third of the
 * time of a 64-byte item. The other way, the parent looks for a sleeping
 * worker with a fence once per half a ring of room it gives back, per
 * command, and before it waits itself (per item at most, in a ping-pong);
 * between those it only peeks, unfenced, and a peek that misses leaves
 * the wake to the next fenced look. So the worker arms with a fence too.
 * (It armed with membarrier as well: the interrupts of two workers'
 * membarriers, which the kernel serializes, each time they ran out of
 * room cost an ordered merge of two workers with 32 items each 880 ns
 * per item instead of 593.)
 */
#ifndef SUBITER_WAIT_H
#define SUBITER_WAIT_H

#include <limits.h>
#include <poll.h>

/* How long one wait may spin before it sleeps: waking a sleeper costs
 * some µs of syscalls on both sides, and the other side, on another CPU,
 * usually moves within that. A side whose waits last longer but no longer
 * than SUBITER__SPIN_MAX_NS (a 1 MiB item takes some tens of µs to write
 * or read) spins a quarter longer than its last wait lasted, so that the
 * next one ends in the spin rather than in a sleep and a wake-up: with
 * 30 µs, 1 MiB items ran at 0.92x the limit ring, with 100 µs at 0.98x.
 * After a wait longer than that, a side spins only SUBITER__SPIN_LONG_NS:
 * spinning cannot catch such waits, and burns a CPU that the application,
 * or another worker of a pool, may need (a pool of 2 workers of 3 ms
 * items on 2 CPUs ran at 1.93x one worker with 30 µs, 1.96x with 2 µs);
 * a short wait after it ends in a wake-up once, and the next spins the
 * base again. */
#define SUBITER__SPIN_NS 30000
#define SUBITER__SPIN_MAX_NS 100000
#define SUBITER__SPIN_LONG_NS 2000
/* The longest window of an open's wait for its worker's first status by
 * the forkserver (subiter.c: subiter__start_wait()), which takes 0.1 to
 * 0.2 ms on a virtual machine, of which a sleep and a wake-up cost 30 to
 * 80 us. */
#define SUBITER__SPIN_START_MAX_NS 1000000

/* The spin window of a wait after one that lasted `last_ns` (0: none),
 * at most `max_ns` long. */
static inline int64_t subiter__spin_window_max(int64_t last_ns, int64_t max_ns)
{
    int64_t w = last_ns + last_ns / 4;

    if (last_ns > max_ns) {
        return SUBITER__SPIN_LONG_NS;
    }
    if (last_ns <= 0 || w < SUBITER__SPIN_NS) {
        return SUBITER__SPIN_NS;
    }
    return w < max_ns ? w : max_ns;
}

/* The window of the waits of a stream and of commands. */
static inline int64_t subiter__spin_window(int64_t last_ns)
{
    return subiter__spin_window_max(last_ns, SUBITER__SPIN_MAX_NS);
}
/* A "running" word (shm.h) of a side that is awake on a CPU not known
 * yet; otherwise 1 + its CPU, or 0 while it sleeps. */
#define SUBITER__RUNNING_ANY UINT32_MAX

/* CLOCK_MONOTONIC in ns; deadlines are on this clock, 0 meaning none. */
SUBITER__HIDDEN int64_t subiter__now_ns(void);
/* ms until deadline_ns, rounded up; -1 for none (0), 0 when past. */
SUBITER__HIDDEN int subiter__ms_left(int64_t deadline_ns);

/* One turn of a spin-wait: a pause instruction. Never sched_yield(): with
 * CPU hogs beside it, that gives away whole time slices. */
SUBITER__HIDDEN void subiter__spin(unsigned n);
/* One turn of the handle's and the worker's spin: pause instructions for
 * about SUBITER__SPIN_TURN_NS (a pause takes 3 to 45 ns, by CPU: the count
 * is measured once per process), after which the caller looks again.
 * Looking more often slowed the side being waited for: a parent that read
 * the record the worker was writing every 20 ns held 4 KiB items to half
 * the speed of one that read it every microsecond. A wait for the answer
 * to a command (the worker in Stand By, the parent after a command) is
 * `quick`: it looks after every pause, since there the time to notice is
 * the time of the round trip (a microsecond more per side than the 2 us
 * of a 64-byte request and answer). A worker's wait for room is quick
 * too: what it looks at (the parent's index and item count) is stored
 * once per batch, so looking often pulls no record's line over. */
#define SUBITER__SPIN_TURN_NS 1000
SUBITER__HIDDEN void subiter__spin_turn(void);

/* Register this process for the parent's membarrier (above). Returns
 * whether it is (once per process; a worker asks again, since what it
 * inherited says nothing about an exec'd process). */
SUBITER__HIDDEN bool subiter__barrier_init(bool again);
/* Test hook: never use membarrier in this process (and the workers it
 * forks), so that the fenced protocol runs too. */
SUBITER__HIDDEN void subiter__barrier_off(void);

/* The sleeper's side of the flag: arm (store, then the barrier; the
 * caller looks once more before it sleeps) and disarm. Each also keeps the
 * side's "running" word, which sits right after its flag (shm.h): 0 while
 * armed, 1 + the CPU once awake again. A sleeper on several flags (the
 * pool) sets them all with subiter__sleep_flag() and then runs one
 * subiter__sleep_barrier(). */
SUBITER__HIDDEN void subiter__sleep_arm(_Atomic uint32_t *flag);
SUBITER__HIDDEN void subiter__sleep_flag(_Atomic uint32_t *flag);
SUBITER__HIDDEN void subiter__sleep_barrier(void);
/* How many sleeps this process armed with membarrier (a test's count). */
SUBITER__HIDDEN unsigned long subiter__membarriers(void);
SUBITER__HIDDEN void subiter__sleep_disarm(_Atomic uint32_t *flag);

/* A side's "running" word sits right after its sleeping flag (shm.h pins
 * that), so the flag's address is enough to keep both. */
static inline _Atomic uint32_t *subiter__running_of(_Atomic uint32_t *flag)
{
    return flag + 1;
}

/* The waker's look: is the other side armed? Clears its flag when it is,
 * so that it is woken once per sleep. `unfenced`: the sleeper arms with
 * membarrier and this process is registered (subiter__wake_unfenced()),
 * so that its barrier reaches this CPU and a compiler barrier is enough
 * here; otherwise a full fence. Inline: a worker looks once per item. */
static inline bool subiter__wake_if_armed(_Atomic uint32_t *flag, bool unfenced)
{
    /* Orders the caller's stores (what it published) before the load of
     * the flag; pairs with subiter__sleep_barrier() on the other side. */
    if (unfenced) {
        atomic_signal_fence(memory_order_seq_cst);
    } else {
        atomic_thread_fence(memory_order_seq_cst);
    }
    if (!atomic_load_explicit(flag, memory_order_relaxed) ||
        !atomic_exchange_explicit(flag, 0, memory_order_relaxed)) {
        return false;
    }
    /* The caller wakes it now: it is about to run, as far as our next
     * wait's spin is concerned, so that a wait for its answer spins rather
     * than sleeping and waiting for a wake-up of its own. The side stores
     * its CPU once it runs. */
    atomic_store_explicit(subiter__running_of(flag), SUBITER__RUNNING_ANY,
                          memory_order_relaxed);
    return true;
}
/* `unfenced` above for waking a side that said `their_barrier` (shm.h). */
SUBITER__HIDDEN bool subiter__wake_unfenced(uint32_t their_barrier);

/* The wakers, after publishing: the parent wakes the worker if it is
 * armed; the worker rings the parent's eventfd once it found the parent
 * armed (subiter__wake_if_armed()) and its eventfd still its own. */
SUBITER__HIDDEN void subiter__wake_worker(struct subiter__shm *shm);
SUBITER__HIDDEN void subiter__ring_parent(int efd);

/* Where one wait of one side is: spinning, armed, asleep. */
struct subiter__wait {
    unsigned spins;
    bool armed;
    uint32_t bell;      /* worker: the doorbell as read when it armed */
    uint32_t me;        /* 1 + the CPU this side runs on, at the first turn */
    int64_t spin_until; /* the end of the spin, on subiter__now_ns() */
    bool quick;         /* the caller's: an answer is due soon (below) */
    int64_t began;      /* the first turn, on subiter__now_ns() */
    int64_t *last;      /* the caller's: how long its last wait lasted,
                         * read and updated (subiter__spin_window()) */
    int64_t max;        /* the caller's: the longest window */
};
#define SUBITER__WAIT_INIT                                                     \
    {                                                                          \
        0, false, 0, 0, 0, false, 0, NULL, SUBITER__SPIN_MAX_NS                \
    }
/* spins once a wait's spin is over: it arms and sleeps from then on. */
#define SUBITER__SPUN UINT_MAX

/* Is the side whose running word reads `other` awake on a CPU other than
 * `me` (ours, struct subiter__wait's)? Else spinning for it only burns the
 * CPU it or anyone else needs. */
SUBITER__HIDDEN bool subiter__runs_elsewhere(uint32_t other, uint32_t me);
/* Store in a side's running word where it runs now: a worker does so as
 * soon as it has mapped the region, so that the parent's wait for its
 * first status stops spinning when the worker runs on the parent's CPU
 * (the parent left the word "awake, CPU not known"). */
SUBITER__HIDDEN void subiter__say_running(_Atomic uint32_t *word);
/* The clock's part of a spin: its first turn starts the window (w->me,
 * w->began, w->spin_until: subiter__spin_window_max() of *w->last and
 * w->max), and false once the window has passed (spins SUBITER__SPUN from
 * then on). A quick wait reads the clock every 16th turn, others every
 * turn. */
SUBITER__HIDDEN bool subiter__spin_window_open(struct subiter__wait *w);

/* A wait on `flag` is over: disarm if it armed, and record how long it
 * lasted for the caller's next. Inline: most waits end before they began
 * (room or a record at once). */
static inline void subiter__wait_end(_Atomic uint32_t *flag,
                                     struct subiter__wait *w)
{
    if (w->armed) {
        subiter__sleep_disarm(flag);
        w->armed = false;
    }
    if (w->last != NULL && w->spins != 0) {
        *w->last = subiter__now_ns() - w->began;
    }
}

/*
 * Worker: one step of waiting for the parent: spin (only while the parent
 * is running on another CPU, and for its window), or arm (the
 * caller then looks again), or sleep on the doorbell.
 * subiter__worker_wait_end() when the condition holds.
 */
SUBITER__HIDDEN void subiter__worker_wait(struct subiter__shm *shm,
                                          struct subiter__wait *w);
static inline void subiter__worker_wait_end(struct subiter__shm *shm,
                                            struct subiter__wait *w)
{
    subiter__wait_end(&shm->child_sleeping, w);
}

/*
 * Parent, caught up with a worker that is running: before it looks at the
 * records again, wait until the worker shows (shm.h: items_published,
 * item_tail) an item past `consumed` or a record past `pos`, stops
 * running (or runs on our CPU), or SUBITER__CHASE_NS pass. The words it
 * shows are on a line of their own, stored once per batch (gen.c) and
 * before the worker waits, so this looks at them after every pause
 * without pulling a record's line over, where the wait below looks at
 * the record being written once a microsecond (wait.h: the spin turn).
 * The one-item ping-pong took 0.63 us instead of 1.58, a stream bounded
 * to 8 items 97 ns per item instead of 207, 4 KiB items 0.935x the limit
 * ring instead of 0.900x. The bound is for a worker that yields a few
 * items and then works a while without showing them: their headers say
 * they are there, and the wait after this looks at them.
 */
#define SUBITER__CHASE_NS 4000
SUBITER__HIDDEN void subiter__parent_chase(struct subiter__shm *shm,
                                           uint32_t consumed, uint32_t pos);

/*
 * Parent: one step of waiting for one worker: spin (only while the worker
 * is running on another CPU, and for its window), or arm (the
 * caller then looks again), or sleep in poll() on `efd` and the worker's
 * pidfd until the worker rings, exits, or deadline_ns (0: none) passes:
 * its death ends the same sleep that items end. Returns
 * 0 (look again), -ETIMEDOUT, or -ECHILD (the worker exited: deliver what
 * it published first). subiter__parent_wait_end() when the condition holds.
 */
SUBITER__HIDDEN int subiter__parent_wait(struct subiter__shm *shm,
                                         struct subiter__wait *w, int efd,
                                         struct subiter__proc *proc,
                                         int64_t deadline_ns);
static inline void subiter__parent_wait_end(struct subiter__shm *shm,
                                            struct subiter__wait *w)
{
    subiter__wait_end(&shm->parent_sleeping, w);
}

/*
 * Parent: sleep in one poll() over `fds` until one fires or deadline_ns
 * (0: none); with `fallback` (a worker without a pidfd), at most
 * SUBITER__FALLBACK_SLICE_MS, after which the caller looks for exits.
 * Returns poll()'s count (0: timeout or a signal), or -errno.
 */
SUBITER__HIDDEN int subiter__poll(struct pollfd *fds, unsigned nfds,
                                  int64_t deadline_ns, bool fallback);
/* Empty a (non-blocking) eventfd that rang, for the next sleep. */
SUBITER__HIDDEN void subiter__eventfd_drain(int efd);

#endif /* SUBITER_WAIT_H */
