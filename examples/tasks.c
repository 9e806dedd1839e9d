/* tasks.c: a task queue on a pool of worker processes, with results and
 * failures delivered to callbacks.
 *
 * Each task is a job, "find the n-th prime": its worker sieves for it (a
 * few milliseconds to a few tens) and yields one result record. The parent
 * submits the jobs to a subiter_pool with a small bounded queue, without
 * blocking (SUBITER_POOL_NOWAIT): when the queue is full, submit returns
 * -EAGAIN and the parent runs the pool for a moment (subiter_pool_wait),
 * which hands queued tasks to idle workers and calls on_result/on_error,
 * then submits again. At the end it waits for the rest, and prints the
 * pool's counters.
 *
 * To show what happens when a worker dies, the worker that takes the
 * middle task kills itself (SIGKILL) in the middle of it, the first time:
 * the pool replaces the worker and runs the task again, and the task's
 * line says "rerun". A shared page (MAP_SHARED, so every worker,
 * replacements included, sees the same one) counts each task's attempts.
 * With --hang, the last task never ends: after --timeout-ms its worker is
 * killed and replaced, and the task fails with SUBITER_ETIMEDOUT.
 *
 *     ./tasks                          20 tasks, one worker killed: exit 0
 *     ./tasks --workers 4 --tasks 100 --no-kill
 *     ./tasks --hang --timeout-ms 500  the last task times out: exit 1
 *
 * Exit status: 0 when every task succeeded, 1 when any failed, 2 on bad
 * arguments.
 *
 * Build it against an installed subiter with
 *     cc -O2 tasks.c $(pkg-config --cflags --libs subiter)
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#else
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <subiter.h>

#define MAX_TASKS 1000ul
#define MAX_WORKERS 256ul
#define MAX_TIMEOUT_MS 3600000ul
#define DEFAULT_TASKS 20ul
#define QUEUE_MAX 4u /* tasks waiting for a worker: NOWAIT gets -EAGAIN */
#define DEFAULT_TIMEOUT_MS 10000ul
#define PRIME_STEP 25000u /* task i finds prime #(i % 20 + 1) * PRIME_STEP */
#define WAIT_SLICE_MS 10  /* queue full: run the pool this long, try again */

/* A task's input. */
struct job {
    uint32_t index; /* 0-based: the task's line is "task index + 1" */
    uint32_t n;     /* find the n-th prime */
    uint32_t kill;  /* 1: SIGKILL itself on the first attempt */
    uint32_t hang;  /* 1: never end (to show the per-task timeout) */
};

/* A task's one result record. */
struct result {
    uint32_t index, n;
    uint64_t prime;   /* the n-th prime */
    int32_t pid;      /* the worker that found it */
    uint32_t attempt; /* 1, or 2 after the first worker died */
    double ms;        /* time spent sieving */
};

/* Shared by the parent and every worker: attempts per task. */
struct shared {
    atomic_uint attempts[MAX_TASKS];
};

/* The parent's record of the tasks, for the callbacks. */
struct ledger {
    unsigned long tasks;
    unsigned long long ids[MAX_TASKS]; /* the pool's id of each task */
    struct result res[MAX_TASKS];      /* res[i].n != 0: task i's result */
    unsigned char failed[MAX_TASKS];
    unsigned long bad; /* results that made no sense */
};

/*
 * The n-th prime (n >= 1), by a sieve over the odd numbers below a bound
 * from p_n < n (ln n + ln ln n), n >= 6; 0 when out of memory.
 */
static uint64_t nth_prime(uint32_t n)
{
    uint64_t limit, i, j, p, count = 1; /* 2 */
    unsigned char *composite;
    unsigned bits = 0;

    if (n == 1) {
        return 2;
    }
    while (bits < 32 && (n >> bits) != 0) {
        bits++;
    }
    /* ln n < 0.6932 bits, and ln ln n < 3.2 for any 32-bit n. */
    limit = (uint64_t)((double)n * (0.6932 * bits + 3.2)) + 16;
    composite = calloc(limit / 2 + 1, 1); /* entry i: is 2i + 1 composite */
    if (composite == NULL) {
        return 0;
    }
    for (i = 1; (2 * i + 1) * (2 * i + 1) <= limit; i++) {
        if (!composite[i]) {
            p = 2 * i + 1;
            for (j = p * p / 2; j <= limit / 2; j += p) {
                composite[j] = 1;
            }
        }
    }
    for (i = 1, p = 0; i <= limit / 2 && p == 0; i++) {
        if (!composite[i] && ++count == n) {
            p = 2 * i + 1;
        }
    }
    free(composite);
    return p;
}

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The generator, run in a worker once per task: one job, one result. */
static int prime_task(subiter_gen *g, void *arg)
{
    struct shared *sh = arg;
    const void *in;
    struct job job;
    struct result res;
    double t0;
    size_t len;

    in = subiter_input(g, &len);
    if (in == NULL || len != sizeof job) {
        return subiter_fail(g, "expected a %zu-byte job, got %zu bytes",
                            sizeof job, len);
    }
    memcpy(&job, in, sizeof job);
    if (job.index >= MAX_TASKS || job.n == 0) {
        return subiter_fail(g, "bad job: task %lu, prime #%lu",
                            (unsigned long)job.index + 1, (unsigned long)job.n);
    }
    memset(&res, 0, sizeof res);
    res.index = job.index;
    res.n = job.n;
    res.pid = (int32_t)getpid();
    res.attempt = atomic_fetch_add(&sh->attempts[job.index], 1) + 1;
    while (job.hang) {
        sleep(1); /* stuck (a lock, a network wait): the timeout ends it */
    }
    t0 = now_ms();
    res.prime = nth_prime(job.n);
    res.ms = now_ms() - t0;
    if (res.prime == 0) {
        return subiter_fail(g, "no memory to sieve for prime #%lu",
                            (unsigned long)job.n);
    }
    if (job.kill && res.attempt == 1) {
        /* Halfway: the answer is found but not sent. The pool reruns it. */
        fprintf(stderr,
                "tasks: worker %ld kills itself (SIGKILL) in the "
                "middle of task %lu\n",
                (long)res.pid, (unsigned long)job.index + 1);
        raise(SIGKILL);
    }
    /* 0, or SUBITER_STOPPED if the pool stopped us: return it either way. */
    return subiter_yield(g, &res, sizeof res);
}

/* Which task has pool id `task`; MAX_TASKS if none. */
static unsigned long task_index(const struct ledger *l, unsigned long long id)
{
    unsigned long i;

    for (i = 0; i < l->tasks; i++) {
        if (l->ids[i] == id) {
            return i;
        }
    }
    return MAX_TASKS;
}

/* on_result: called from subiter_pool_wait() with each result record. */
static void on_result(subiter_pool *p, unsigned long long task,
                      const void *data, size_t len, void *user)
{
    struct ledger *l = user;
    struct result res;
    unsigned long i = task_index(l, task);

    (void)p;
    if (len != sizeof res || i == MAX_TASKS) {
        printf("task id %llu: an unexpected %zu-byte result\n", task, len);
        l->bad++;
        return;
    }
    memcpy(&res, data, sizeof res); /* data is borrowed: copy it */
    if (res.index != i || res.prime == 0) {
        printf("task %lu: a wrong result (task %lu, %llu)\n", i + 1,
               (unsigned long)res.index + 1, (unsigned long long)res.prime);
        l->bad++;
        return;
    }
    l->res[i] = res; /* a retried task could send twice: the last wins */
    printf("task %3lu: prime #%-7lu is %-9llu (worker %ld, %5.1f ms)%s\n",
           i + 1, (unsigned long)res.n, (unsigned long long)res.prime,
           (long)res.pid, res.ms,
           res.attempt > 1 ? " <- rerun: its first worker died" : "");
}

/* on_error: called from subiter_pool_wait() when a task fails. */
static void on_error(subiter_pool *p, unsigned long long task, int code,
                     const char *errmsg, void *user)
{
    struct ledger *l = user;
    unsigned long i = task_index(l, task);

    (void)p;
    if (i == MAX_TASKS) {
        l->bad++;
    } else {
        l->failed[i] = 1;
    }
    printf("task %3lu: failed: %s: %s\n", i + 1, subiter_errname(code), errmsg);
}

#define USAGE                                                                  \
    "usage: tasks [--workers N] [--tasks N] [--timeout-ms MS] [--no-kill]\n"   \
    "             [--hang]\n"

static int bad_usage(const char *why, const char *arg)
{
    fprintf(stderr, "tasks: %s '%s'\n", why, arg);
    fputs(USAGE "Try 'tasks --help' for more.\n", stderr);
    return 2;
}

static void usage(void)
{
    printf(USAGE "\n"
                 "Finds primes in a pool of worker processes, one task per "
                 "prime.\n\n"
                 "  --workers N      1..%lu (default: the number of CPUs)\n"
                 "  --tasks N        1..%lu (default %lu)\n"
                 "  --timeout-ms MS  per task, 1..%lu (default %lu)\n"
                 "  --no-kill        no worker kills itself\n"
                 "  --hang           the last task never ends: it times out\n",
           MAX_WORKERS, MAX_TASKS, DEFAULT_TASKS, MAX_TIMEOUT_MS,
           DEFAULT_TIMEOUT_MS);
}

static int parse_ulong(const char *opt, const char *s, unsigned long max,
                       unsigned long *out)
{
    char *end;

    errno = 0;
    *out = strtoul(s, &end, 10);
    if (*s < '0' || *s > '9' || *end != '\0' || errno != 0 || *out < 1 ||
        *out > max) {
        fprintf(stderr, "tasks: %s: '%s' is not a number from 1 to %lu\n", opt,
                s, max);
        return -1;
    }
    return 0;
}

/* Report a failed pool call, with the pool's message. */
static void fail(subiter_pool *p, const char *call, int r)
{
    const char *msg = subiter_pool_errmsg(p);

    fprintf(stderr, "tasks: %s: %s: %s\n", call, subiter_errname(r),
            *msg ? msg : subiter_strerror(r));
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"workers", required_argument, NULL, 'w'},
        {"tasks", required_argument, NULL, 't'},
        {"timeout-ms", required_argument, NULL, 'T'},
        {"no-kill", no_argument, NULL, 'k'},
        {"hang", no_argument, NULL, 'H'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    static struct ledger l;
    subiter_pool_opts opts = SUBITER_POOL_OPTS_INIT;
    subiter_pool_stats st = SUBITER_POOL_STATS_INIT;
    subiter_opts wopts = SUBITER_OPTS_INIT;
    unsigned long workers = 0, full = 0, ok = 0, i;
    unsigned long timeout_ms = DEFAULT_TIMEOUT_MS;
    int opt, r, kill_one = 1, hang = 0, status = 1;
    subiter_pool *p = NULL;
    struct shared *sh;
    struct job job;

    l.tasks = DEFAULT_TASKS;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (opt) {
        case 'w':
            if (parse_ulong("--workers", optarg, MAX_WORKERS, &workers)) {
                return 2;
            }
            break;
        case 't':
            if (parse_ulong("--tasks", optarg, MAX_TASKS, &l.tasks)) {
                return 2;
            }
            break;
        case 'T':
            if (parse_ulong("--timeout-ms", optarg, MAX_TIMEOUT_MS,
                            &timeout_ms)) {
                return 2;
            }
            break;
        case 'k':
            kill_one = 0;
            break;
        case 'H':
            hang = 1;
            break;
        case 'h':
            usage();
            return 0;
        case ':':
            return bad_usage("no value given for", argv[optind - 1]);
        default:
            return bad_usage("unknown option", argv[optind - 1]);
        }
    }
    if (optind < argc) {
        return bad_usage("unexpected argument", argv[optind]);
    }
    /* Workers are forked inside pool calls: keep no output in stdio. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        perror("tasks: mmap");
        return 1;
    }

    wopts.grace_ms = 200; /* close: ABORT, then SIGTERM, then SIGKILL */
    opts.workers = (unsigned)workers; /* 0: one per CPU */
    opts.queue_max = QUEUE_MAX;
    opts.task_timeout_ms = (int)timeout_ms;
    opts.max_retries = 1; /* rerun a task once if its worker dies */
    opts.on_result = on_result;
    opts.on_error = on_error;
    opts.user = &l;
    opts.worker = &wopts;
    r = subiter_pool_open(&p, prime_task, sh, &opts);
    if (r != 0) {
        fail(p, "subiter_pool_open", r);
        goto out;
    }
    (void)subiter_pool_get_stats(p, &st);
    printf("subiter %s tasks: %lu tasks, %u workers, queue %u, timeout %lu "
           "ms per task\n",
           subiter_version(), l.tasks, st.workers, QUEUE_MAX, timeout_ms);

    for (i = 0; i < l.tasks; i++) {
        job.index = (uint32_t)i;
        job.n = (uint32_t)(i % 20 + 1) * PRIME_STEP;
        job.kill = kill_one && i == l.tasks / 2;
        job.hang = hang && i == l.tasks - 1;
        /* A full queue: let the pool work a little, then try again. */
        while ((r = subiter_pool_submit(p, &job, sizeof job,
                                        SUBITER_POOL_NOWAIT, &l.ids[i])) ==
               -EAGAIN) {
            full++;
            r = subiter_pool_wait(p, WAIT_SLICE_MS);
            if (r != 0 && r != -ETIMEDOUT) {
                fail(p, "subiter_pool_wait", r);
                goto out;
            }
        }
        if (r != 0) {
            fail(p, "subiter_pool_submit", r);
            goto out;
        }
    }
    /* No limit here: the per-task timeout bounds every task. */
    if ((r = subiter_pool_wait(p, 0)) != 0) {
        fail(p, "subiter_pool_wait", r);
        goto out;
    }
    /* Nothing is left, so nothing is cancelled: it returns 0 at once. */
    if ((r = subiter_pool_finalize(p, 1000)) < 0) {
        fail(p, "subiter_pool_finalize", r);
        goto out;
    }
    if ((r = subiter_pool_get_stats(p, &st)) != 0) {
        fail(p, "subiter_pool_get_stats", r);
        goto out;
    }
    for (i = 0; i < l.tasks; i++) {
        ok += l.res[i].n != 0 && !l.failed[i];
    }
    printf("queue:  full %lu times; each time the pool ran %d ms, then the "
           "submit was tried again\n",
           full, WAIT_SLICE_MS);
    printf("stats:  submitted %llu, done %llu, failed %llu, retried %llu, "
           "timed_out %llu, replaced %llu, cancelled %llu\n",
           st.submitted, st.done, st.failed, st.retried, st.timed_out,
           st.replaced, st.cancelled);
    printf("result: %lu of %lu tasks succeeded\n", ok, l.tasks);
    status = ok == l.tasks && l.bad == 0 && st.done == l.tasks ? 0 : 1;
out:
    r = subiter_pool_close(p);
    if (r != 0) {
        fprintf(stderr, "tasks: subiter_pool_close: %s\n", subiter_strerror(r));
    }
    munmap(sh, sizeof *sh);
    return status;
}
