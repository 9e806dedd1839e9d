/* check_wait.c: the wait/wake protocol (wait.c) under CPU contention and
 * the default bound. A side spins only while the other is awake on
 * another CPU (its "running" word), never with sched_yield(); when the
 * other sleeps or shares its CPU, it arms at once and sleeps; the running
 * words follow the sleeps. No wake-up is lost, with membarrier or
 * fences. With SUBITER_OPTS_INIT the ring's bytes, not a count of 32,
 * bound what a worker runs ahead. */
#include "config.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "internal.h"
#include "testutil.h"

#define PAGE 4096
#define WAIT_MS 20000

/* A header alone: the waits look at nothing else until they sleep. */
static struct subiter__shm *fake_shm(void)
{
    struct subiter__shm *shm = aligned_alloc(64, sizeof *shm);

    ck_assert_ptr_nonnull(shm);
    memset(shm, 0, sizeof *shm);
    shm->child_running = SUBITER__RUNNING_ANY;
    shm->parent_running = SUBITER__RUNNING_ANY;
    return shm;
}

/* The worker's wait arms on its first turn, without a spin. */
static void expect_worker_arms_at_once(struct subiter__shm *shm)
{
    struct subiter__wait w = SUBITER__WAIT_INIT;

    subiter__worker_wait(shm, &w);
    ck_assert(w.armed);
    ck_assert_uint_eq(atomic_load(&shm->child_sleeping), 1);
    ck_assert_uint_eq(atomic_load(&shm->child_running), 0);
    subiter__worker_wait_end(shm, &w);
    ck_assert_uint_eq(atomic_load(&shm->child_sleeping), 0);
    ck_assert_uint_ne(atomic_load(&shm->child_running), 0);
}

START_TEST(test_wait_no_spin_while_other_sleeps)
{
    struct subiter__shm *shm = fake_shm();

    atomic_store(&shm->parent_running, 0);
    expect_worker_arms_at_once(shm);
    free(shm);
}
END_TEST

START_TEST(test_wait_no_spin_on_own_cpu)
{
    struct subiter__shm *shm = fake_shm();
    cpu_set_t one;

    CPU_ZERO(&one);
    CPU_SET(0, &one);
    if (sched_setaffinity(0, sizeof one, &one) < 0 || sched_getcpu() != 0) {
        free(shm);
        return; /* CPU 0 not ours here: nothing to check */
    }
    /* The parent last ran on CPU 0, where this side is: it cannot move
     * while we spin. */
    atomic_store(&shm->parent_running, 1);
    expect_worker_arms_at_once(shm);
    free(shm);
}
END_TEST

START_TEST(test_wait_spins_while_other_runs_then_arms)
{
    struct subiter__shm *shm = fake_shm();
    struct subiter__wait w = SUBITER__WAIT_INIT;
    int64_t t0 = tu_now_ms();
    unsigned turns = 0;

    /* Awake somewhere else: spin first, then arm within the bound. */
    while (!w.armed && tu_now_ms() - t0 < WAIT_MS) {
        subiter__worker_wait(shm, &w);
        turns++;
    }
    ck_assert(w.armed);
    ck_assert_uint_gt(turns, 1);
    /* The worker said where it runs while it spun, then 0 as it armed. */
    ck_assert_uint_eq(atomic_load(&shm->child_running), 0);
    subiter__worker_wait_end(shm, &w);
    free(shm);
}
END_TEST

/* The side that wakes a sleeper marks it about to run, so that its own
 * next wait (for the answer) spins instead of sleeping at once; a side
 * that was not armed is left as it was. */
START_TEST(test_wait_woken_side_counts_as_running)
{
    struct subiter__shm *shm = fake_shm();
    struct subiter__wait w = SUBITER__WAIT_INIT;

    atomic_store(&shm->parent_running, 0);
    ck_assert(!subiter__wake_if_armed(&shm->parent_sleeping, false));
    ck_assert_uint_eq(atomic_load(&shm->parent_running), 0);
    atomic_store(&shm->parent_sleeping, 1);
    ck_assert(subiter__wake_if_armed(&shm->parent_sleeping, false));
    ck_assert_uint_eq(atomic_load(&shm->parent_sleeping), 0);
    ck_assert_uint_eq(atomic_load(&shm->parent_running), SUBITER__RUNNING_ANY);
    /* So the worker's next wait spins first. */
    subiter__worker_wait(shm, &w);
    ck_assert(!w.armed);
    ck_assert_uint_eq(w.spins, 1);
    free(shm);
}
END_TEST

/* The spin window: the base, or a quarter more than the last wait when
 * that ended within the longest window. */
START_TEST(test_wait_spin_window)
{
    ck_assert_int_eq(subiter__spin_window(0), SUBITER__SPIN_NS);
    ck_assert_int_eq(subiter__spin_window(-5), SUBITER__SPIN_NS);
    ck_assert_int_eq(subiter__spin_window(1000), SUBITER__SPIN_NS);
    ck_assert_int_eq(subiter__spin_window(SUBITER__SPIN_NS), 37500);
    ck_assert_int_eq(subiter__spin_window(40000), 50000);
    ck_assert_int_eq(subiter__spin_window(90000), SUBITER__SPIN_MAX_NS);
    ck_assert_int_eq(subiter__spin_window(SUBITER__SPIN_MAX_NS),
                     SUBITER__SPIN_MAX_NS);
    /* Longer than any window: spinning would not have caught it, and
     * the next wait spins only briefly. */
    ck_assert_int_eq(subiter__spin_window(SUBITER__SPIN_MAX_NS + 1),
                     SUBITER__SPIN_LONG_NS);
    ck_assert_int_eq(subiter__spin_window(5000000), SUBITER__SPIN_LONG_NS);
    ck_assert_int_lt(SUBITER__SPIN_LONG_NS, SUBITER__SPIN_NS);
}
END_TEST

/* The longer window of a start's wait: the same rule under its own
 * bound; a stream's is unchanged by it. */
START_TEST(test_wait_spin_window_max)
{
    const int64_t max = SUBITER__SPIN_START_MAX_NS;

    ck_assert_int_gt(max, SUBITER__SPIN_MAX_NS);
    ck_assert_int_eq(subiter__spin_window_max(0, max), SUBITER__SPIN_NS);
    ck_assert_int_eq(subiter__spin_window_max(200000, max), 250000);
    ck_assert_int_eq(subiter__spin_window_max(900000, max), max);
    ck_assert_int_eq(subiter__spin_window_max(max, max), max);
    ck_assert_int_eq(subiter__spin_window_max(max + 1, max),
                     SUBITER__SPIN_LONG_NS);
    ck_assert_int_eq(subiter__spin_window(200000), SUBITER__SPIN_LONG_NS);
    ck_assert_int_eq(subiter__spin_window_max(60000, SUBITER__SPIN_MAX_NS),
                     subiter__spin_window(60000));
}
END_TEST

/* An open's wait for its worker's first status (subiter__start_wait()):
 * the forkserver's spare may take the start's longer window, a forked or
 * exec'd worker the stream's. */
static int64_t start_window(int method, int64_t last)
{
    struct subiter__shm *shm = fake_shm();
    struct subiter__wait w = SUBITER__WAIT_INIT;
    struct subiter__proc proc;
    int64_t window;

    subiter__proc_init(&proc);
    w.quick = true; /* as the open's is: its answer is due */
    w.last = &last;
    subiter__start_wait(&w, method);
    ck_assert_int_eq(subiter__parent_wait(shm, &w, -1, &proc, 0), 0);
    ck_assert(!w.armed);
    window = w.spin_until - w.began;
    /* The worker sleeps: the wait arms at its next turn. */
    atomic_store(&shm->child_running, 0);
    ck_assert_int_eq(subiter__parent_wait(shm, &w, -1, &proc, 0), 0);
    ck_assert(w.armed);
    subiter__parent_wait_end(shm, &w);
    free(shm);
    return window;
}

START_TEST(test_wait_start_window)
{
    ck_assert_int_eq(start_window(SUBITER_FORKSERVER, 500000), 625000);
    ck_assert_int_eq(start_window(SUBITER_FORKSERVER, 40000), 50000);
    ck_assert_int_eq(start_window(SUBITER_FORKSERVER, 5000000),
                     SUBITER__SPIN_LONG_NS);
    ck_assert_int_eq(start_window(SUBITER_FORK, 500000), SUBITER__SPIN_LONG_NS);
    ck_assert_int_eq(start_window(SUBITER_SPAWN, 500000),
                     SUBITER__SPIN_LONG_NS);
    ck_assert_int_eq(start_window(SUBITER_FORK, 40000), 50000);
}
END_TEST

/* The clock's part of a spin, as a pool's loop uses it: the first turn
 * starts the window from the last wait; once it has passed, the wait is
 * spun and stays so. */
START_TEST(test_wait_spin_window_open)
{
    struct subiter__wait w = SUBITER__WAIT_INIT;
    int64_t last = SUBITER__SPIN_MAX_NS + 1, t0 = tu_now_ms();

    w.quick = true;
    w.last = &last;
    ck_assert(subiter__spin_window_open(&w));
    ck_assert_int_eq(w.spin_until - w.began, SUBITER__SPIN_LONG_NS);
    ck_assert_uint_ne(w.me, 0);
    while (subiter__spin_window_open(&w) && tu_now_ms() - t0 < WAIT_MS) {
        w.spins++;
    }
    ck_assert_uint_eq(w.spins, SUBITER__SPUN);
    ck_assert(!subiter__spin_window_open(&w));
    /* Others: the same, with the window of their own last wait. */
    w = (struct subiter__wait)SUBITER__WAIT_INIT;
    ck_assert(subiter__spin_window_open(&w));
    ck_assert_int_eq(w.spin_until - w.began, SUBITER__SPIN_NS);
}
END_TEST

/* Whose running word says "awake elsewhere": not a sleeper, not us. */
START_TEST(test_wait_runs_elsewhere)
{
    ck_assert(!subiter__runs_elsewhere(0, 1));
    ck_assert(!subiter__runs_elsewhere(3, 3));
    ck_assert(subiter__runs_elsewhere(2, 3));
    ck_assert(subiter__runs_elsewhere(SUBITER__RUNNING_ANY, 3));
}
END_TEST

/* A wait spins for the window its caller's last wait gives, and records
 * how long it lasted for the next. */
START_TEST(test_wait_window_from_last_wait)
{
    struct subiter__shm *shm = fake_shm();
    struct subiter__wait w = SUBITER__WAIT_INIT;
    int64_t last = 60000, t0 = tu_now_ms();

    w.last = &last;
    subiter__worker_wait(shm, &w);
    ck_assert(!w.armed);
    ck_assert_int_eq(w.spin_until - w.began, subiter__spin_window(60000));
    while (!w.armed && tu_now_ms() - t0 < WAIT_MS) {
        subiter__worker_wait(shm, &w);
    }
    ck_assert(w.armed);
    subiter__worker_wait_end(shm, &w);
    /* It spun its whole window before it armed. */
    ck_assert_int_ge(last, subiter__spin_window(60000));
    /* A wait that never waited leaves the record alone. */
    w = (struct subiter__wait)SUBITER__WAIT_INIT;
    w.last = &last;
    last = 123;
    subiter__worker_wait_end(shm, &w);
    ck_assert_int_eq(last, 123);
    free(shm);
}
END_TEST

START_TEST(test_wait_parent_no_spin_while_worker_sleeps)
{
    struct subiter__shm *shm = fake_shm();
    struct subiter__wait w = SUBITER__WAIT_INIT;
    struct subiter__proc proc;

    subiter__proc_init(&proc);
    atomic_store(&shm->child_running, 0);
    ck_assert_int_eq(subiter__parent_wait(shm, &w, -1, &proc, 0), 0);
    ck_assert(w.armed);
    ck_assert_uint_eq(atomic_load(&shm->parent_sleeping), 1);
    ck_assert_uint_eq(atomic_load(&shm->parent_running), 0);
    subiter__parent_wait_end(shm, &w);
    ck_assert_uint_eq(atomic_load(&shm->parent_sleeping), 0);
    ck_assert_uint_ne(atomic_load(&shm->parent_running), 0);
    free(shm);
}
END_TEST

/* ---- the parent's chase (wait.h: subiter__parent_chase()) ---- */

/* It ends at once when the worker sleeps, or shows an item or a record
 * past what the parent has read; with a running worker that shows
 * nothing, it ends after its bound, not before. */
START_TEST(test_wait_chase_ends)
{
    struct subiter__shm *shm = fake_shm();
    int64_t t0;

    atomic_store(&shm->child_running, 0);
    subiter__parent_chase(shm, 5, 800); /* returns: it sleeps */
    atomic_store(&shm->child_running, SUBITER__RUNNING_ANY);
    atomic_store(&shm->items_published, 6);
    subiter__parent_chase(shm, 5, 800);
    atomic_store(&shm->items_published, 5);
    atomic_store(&shm->item_tail, 808); /* a status: no item more */
    subiter__parent_chase(shm, 5, 800);
    /* Shown behind what was read (the parent reads past what is shown,
     * by the headers), and the indices wrapped: nothing new. */
    atomic_store(&shm->items_published, 3);
    atomic_store(&shm->item_tail, UINT32_MAX - 7);
    t0 = subiter__now_ns();
    subiter__parent_chase(shm, 5, 16);
    ck_assert_int_ge(subiter__now_ns() - t0, SUBITER__CHASE_NS);
    free(shm);
}
END_TEST

/* An item the worker yielded and has not shown yet (it shows a batch at
 * a time) reaches a parent that waits for it while the generator works
 * on, on its CPU: the chase ends, and the wait after it reads the item.
 * Without the chase's bound, each would wait for the other. */
static int gen_one_then_spin(subiter_gen *g, void *arg)
{
    _Atomic int *read = arg;
    int64_t end = subiter__now_ns() + (int64_t)WAIT_MS * 1000000;
    int64_t later = subiter__now_ns() + 5000000;
    long zero = 0;
    int r;

    /* Running, not waiting, while the parent waits for the item. */
    while (subiter__now_ns() < later) {
    }
    if ((r = subiter_yield(g, &zero, sizeof zero)) != 0) {
        return r;
    }
    /* Not stored per item: the line would travel with every item. */
    if (atomic_load(&subiter__gen_shm(g)->items_published) != 0) {
        return subiter_fail(g, "an item shown on its own");
    }
    while (atomic_load(read) == 0) {
        if (subiter__now_ns() > end) {
            return subiter_fail(g, "the parent never read the item");
        }
    }
    return 0;
}

START_TEST(test_wait_unshown_item_arrives)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(WAIT_MS, TU_LONG_GRACE_MS);
    _Atomic int *read;
    subiter *it;

    tu_snapshot(&snap);
    read = tu_shared_new(PAGE);
    ck_assert_int_eq(
        subiter_open(&it, gen_one_then_spin, (void *)(uintptr_t)read, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    tu_expect_items(it, 0, 1);
    atomic_store(read, 1);
    tu_expect_count(it, 0);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_shared_free((void *)(uintptr_t)read, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- the default bound ---- */

static int gen_count_yields(subiter_gen *g, void *arg)
{
    _Atomic int *yielded = arg;
    long i;
    int r;

    for (i = 0; i < 1000; i++) {
        if ((r = subiter_yield(g, &i, sizeof i)) != 0) {
            return r;
        }
        atomic_fetch_add(yielded, 1);
    }
    return 0;
}

START_TEST(test_wait_default_bound_is_bytes)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(WAIT_MS, TU_LONG_GRACE_MS);
    _Atomic int *yielded;
    subiter *it;
    subiter_item item;
    long i;

    tu_snapshot(&snap);
    yielded = tu_shared_new(PAGE);
    ck_assert_uint_eq(o.buffer_items, 0);
    ck_assert_int_eq(
        subiter_open(&it, gen_count_yields, (void *)(uintptr_t)yielded, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    /* 1000 items of 8 bytes fit the default 4 MiB ring: the worker runs
     * through them all before the parent reads one. */
    ck_assert(tu_wait_flag(yielded, 1000, WAIT_MS));
    for (i = 0; i < 1000; i++) {
        ck_assert_int_eq(subiter_next(it, &item), 1);
        ck_assert_int_eq(tu_item_long(&item), i);
    }
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_shared_free((void *)(uintptr_t)yielded, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- a new handle's first wait ---- */

static int init_sleeps_2ms(subiter_gen *g, void *arg)
{
    (void)g;
    (void)arg;
    usleep(2000);
    return 0;
}

static int gen_nothing(subiter_gen *g, void *arg)
{
    (void)g;
    (void)arg;
    return 0;
}

/* A waiting open records how long it waited for its worker's first
 * status, by its start method, whose window the next open's wait by the
 * same method spins for: at least the initializer's sleep, at most the
 * open. */
START_TEST(test_wait_first_wait_recorded)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts(WAIT_MS);
    int64_t t0, took;
    subiter *it;

    tu_snapshot(&snap);
    o.init = init_sleeps_2ms;
    t0 = subiter__now_ns();
    ck_assert_int_eq(subiter_open(&it, gen_nothing, NULL, &o), 0);
    took = subiter__now_ns() - t0;
    ck_assert_int_ge(subiter__first_wait_ns(o.start_method), 2000000);
    ck_assert_int_le(subiter__first_wait_ns(o.start_method), took);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- a full ring: one wake-up per half of it ---- */

#define BIG_ITEM (64 * 1024) /* the default 4 MiB ring holds 63 */
#define BIG_ITEMS 400

static int gen_big(subiter_gen *g, void *arg)
{
    static unsigned char buf[BIG_ITEM];
    int i, r;

    (void)arg;
    for (i = 0; i < BIG_ITEMS; i++) {
        memset(buf, i, sizeof buf);
        if ((r = subiter_yield(g, buf, sizeof buf)) != 0) {
            return r;
        }
    }
    return 0;
}

/* The times process `pid` has slept (its voluntary context switches). */
static long sleeps_of(pid_t pid)
{
    return (long)tu_proc_status(pid, "voluntary_ctxt_switches", 10);
}

/*
 * A parent slower than its worker keeps the ring full, and the bound is
 * its bytes. Each item it gives back must not wake the worker for one
 * more: it is woken once half the ring is free, so it sleeps about once
 * per 31 items here, not once per item. A pool woke it per item (its
 * give-back woke unconditionally), and the half-empty test read the
 * ring's index as last read by the parent, which is stale while it reads
 * what it knew of: a full ring looked "low". _i: 0 a handle, 1 a pool.
 */
START_TEST(test_wait_full_ring_wakes_per_half)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(WAIT_MS, TU_LONG_GRACE_MS);
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;
    subiter_pool *p = NULL;
    subiter *it = NULL;
    long before, slept, n = 0;
    pid_t pid;
    int r;

    tu_snapshot(&snap);
    if (_i == 0) {
        ck_assert_int_eq(subiter_open(&it, gen_big, NULL, &o), 0);
        pid = subiter_pid(it);
        ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    } else {
        po.workers = 1;
        po.worker = &o;
        ck_assert_int_eq(subiter_pool_open(&p, gen_big, NULL, &po), 0);
        ck_assert_int_eq(subiter_pool_start(p, NULL, 0), 0);
        pid = subiter_pool_worker_pid(p, 0);
    }
    ck_assert_int_gt(pid, 0);
    before = sleeps_of(pid);
    for (;;) {
        if (_i == 0) {
            subiter_item item;

            r = subiter_next(it, &item);
        } else {
            subiter_pool_item item;

            r = subiter_pool_next(p, &item);
        }
        if (r != 1) {
            break;
        }
        n++;
        usleep(200);
    }
    ck_assert_int_eq(r, 0);
    ck_assert_int_eq(n, BIG_ITEMS);
    slept = sleeps_of(pid) - before;
    /* About 400 / 31 = 13 and a few more; once per item was 400. */
    ck_assert_msg(slept < BIG_ITEMS / 4,
                  "the worker slept %ld times for %d items", slept, BIG_ITEMS);
    if (_i == 0) {
        ck_assert_int_eq(subiter_close(it), 0);
    } else {
        ck_assert_int_eq(subiter_pool_close(p), 0);
    }
    tu_assert_clean(&snap);
}
END_TEST

/* ---- no wake-up lost, with and without membarrier ---- */

#define PP_ITEMS 20000

/* A short, uneven busy wait: 0 to about 60 us, around the spin's bound
 * (SUBITER__SPIN_NS, or the window a side's last wait gives it: a short
 * wait then a long one still outlasts it), so that either side sometimes
 * finds the other asleep and sometimes spinning. */
static void dawdle(unsigned *seed)
{
    int64_t until;

    *seed = *seed * 1103515245u + 12345u;
    if ((*seed >> 16) % 3 == 0) {
        return;
    }
    until = subiter__now_ns() + (int64_t)((*seed >> 8) % 60000);
    while (subiter__now_ns() < until) {
    }
}

/* Item 0 says how the parent arms (shm.h's barrier word); then items
 * 1.. one at a time (buffer_items 1), so that every item is a wake-up in
 * each direction unless the other side is still spinning; last, how often
 * the worker slept meanwhile, and how many of those sleeps it armed with
 * membarrier (counted from the first item: a forked worker inherits its
 * parent's counts). Exported: a spawned worker finds it by name. */
int wt_gen_pingpong(subiter_gen *g, void *arg);

/* The times this process has slept, as the worker sees it (no Check
 * call: a spawned worker is not a test). */
static long own_sleeps(void)
{
    struct rusage ru;

    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_nvcsw : -1;
}

int wt_gen_pingpong(subiter_gen *g, void *arg)
{
    uint32_t word = subiter__gen_shm(g)->parent_barrier;
    unsigned long membarriers = subiter__membarriers(), n[2];
    long sleeps = own_sleeps();
    unsigned seed = 7;
    long i;
    int r;

    (void)arg;
    if ((r = subiter_yield(g, &word, sizeof word)) != 0) {
        return r;
    }
    for (i = 1; i < PP_ITEMS; i++) {
        dawdle(&seed);
        if ((r = subiter_yield(g, &i, sizeof i)) != 0) {
            return r;
        }
    }
    n[0] = sleeps >= 0 ? (unsigned long)(own_sleeps() - sleeps) : 0;
    n[1] = subiter__membarriers() - membarriers;
    return subiter_yield(g, n, sizeof n);
}

/*
 * 20000 items handed over one at a time, each side pausing unevenly, so
 * that the sleeping flags, the barriers and the wake-ups run thousands of
 * times in both directions. A lost wake-up leaves one side asleep for
 * good, and the inactivity bound then fails the test. _i: 0 as the
 * system allows (membarrier where it can); 1 with the fences
 * (subiter__barrier_off(), inherited by the forked worker); 2 the same
 * parent with a spawned worker, which registers by itself: each side
 * then wakes the other its own way; 3 as 0 with buffer_items 8, where the
 * parent gives room back two items at a time. The worker, which slept,
 * never armed with membarrier: the parent wakes it fenced (wait.h).
 */
START_TEST(test_wait_no_lost_wakeup)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    bool can = subiter__barrier_init(false);
    uint32_t word;
    unsigned long counts[2];
    unsigned seed = 11;
    subiter *it;
    subiter_item item;
    long i;

    tu_snapshot(&snap);
    if (_i == 1 || _i == 2) {
        subiter__barrier_off();
    }
    /* 1: a batch of room is one item; 8: two (handle.c), so the worker
     * also waits for room the parent has read and not yet given back. */
    o.buffer_items = _i == 3 ? 8 : 1;
    if (_i == 2) {
        o.start_method = SUBITER_SPAWN;
    }
    ck_assert_int_eq(subiter_open(&it, wt_gen_pingpong, NULL, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_int_eq(subiter_next(it, &item), 1);
    ck_assert_uint_eq(item.len, sizeof word);
    memcpy(&word, item.data, sizeof word);
    ck_assert_uint_eq(word, (_i == 0 || _i == 3) && can);
    for (i = 1; i < PP_ITEMS; i++) {
        int r = subiter_next(it, &item);

        ck_assert_msg(r == 1, "item %ld: %d (%s)", i, r, subiter_errmsg(it));
        ck_assert_int_eq(tu_item_long(&item), i);
        dawdle(&seed);
    }
    ck_assert_int_eq(subiter_next(it, &item), 1);
    ck_assert_uint_eq(item.len, sizeof counts);
    memcpy(counts, item.data, sizeof counts);
    ck_assert_uint_gt(counts[0], 0); /* it slept */
    ck_assert_uint_eq(counts[1], 0); /* never with membarrier */
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

static Suite *wait_suite(void)
{
    Suite *s = suite_create("wait");
    TCase *tc = tcase_create("spin");

    tcase_add_test(tc, test_wait_no_spin_while_other_sleeps);
    tcase_add_test(tc, test_wait_no_spin_on_own_cpu);
    tcase_add_test(tc, test_wait_spins_while_other_runs_then_arms);
    tcase_add_test(tc, test_wait_woken_side_counts_as_running);
    tcase_add_test(tc, test_wait_first_wait_recorded);
    tcase_add_test(tc, test_wait_spin_window);
    tcase_add_test(tc, test_wait_spin_window_max);
    tcase_add_test(tc, test_wait_start_window);
    tcase_add_test(tc, test_wait_spin_window_open);
    tcase_add_test(tc, test_wait_runs_elsewhere);
    tcase_add_test(tc, test_wait_window_from_last_wait);
    tcase_add_test(tc, test_wait_parent_no_spin_while_worker_sleeps);
    tcase_add_test(tc, test_wait_chase_ends);
    suite_add_tcase(s, tc);
    tc = tcase_create("bound");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_wait_default_bound_is_bytes);
    tcase_add_test(tc, test_wait_unshown_item_arrives);
    tcase_add_loop_test(tc, test_wait_full_ring_wakes_per_half, 0, 2);
    suite_add_tcase(s, tc);
    tc = tcase_create("wake");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_wait_no_lost_wakeup, 0, 4);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(wait_suite());
}
