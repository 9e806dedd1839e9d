/* evloop.c: two loaders and a task pool in one thread, multiplexed with
 * epoll, with Ctrl-C handled through a signalfd.
 *
 * Each loader is a subiter handle whose worker yields `records` numbered
 * records (a worker of a real program would read and decode files). The
 * pool runs `tasks` small jobs ("sum 1..n", slow on purpose). Nothing
 * blocks: the program polls one epoll set holding subiter_fd() of each
 * loader, subiter_pool_fd() of the pool and a signalfd, and on each
 * readable fd calls the timed next with 0 ms until it says -EAGAIN.
 *
 * Ctrl-C (SIGINT) or SIGTERM arrive on the signalfd (the signals are
 * blocked, and the workers ignore SIGINT): the loaders are stopped, the
 * pool finalized without grace (queued and running tasks end with
 * SUBITER_ECANCELED, read from the same loop), and everything is closed.
 * --interrupt-ms sends the program its own SIGINT after that long, to
 * show it without a terminal.
 *
 *     ./evloop                       everything ends: exit 0
 *     ./evloop --interrupt-ms 200    interrupted, finalized: exit 130
 *
 * Exit status: 0 when everything ended well, 130 after an interrupt that
 * finalized cleanly, 1 on a failure, 2 on bad arguments.
 *
 * Build it against an installed subiter with
 *     cc -O2 evloop.c $(pkg-config --cflags --libs subiter)
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#else
#define _GNU_SOURCE 1
#endif

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <subiter.h>

#define N_LOADERS 2
#define TAG_POOL N_LOADERS
#define TAG_SIGNAL (N_LOADERS + 1)
#define TAG_ALARM (N_LOADERS + 2)

struct record {
    long loader;
    long index;
};

/* A loader's dataset: its number and size. */
struct spec {
    long loader;
    long records;
};

/* The loaders' generator: `records` records, a short pause now and then
 * (the disk). */
static int gen_records(subiter_gen *g, void *arg)
{
    const struct spec *sp = arg;
    struct record rec;
    struct timespec pause = {0, 2000000};
    int r;

    rec.loader = sp->loader;
    for (rec.index = 0; rec.index < sp->records; rec.index++) {
        if (rec.index % 500 == 0) {
            nanosleep(&pause, NULL);
        }
        if ((r = subiter_yield(g, &rec, sizeof rec)) != 0) {
            return r;
        }
    }
    return 0;
}

/* The pool's generator: one task sums 1..n, a millisecond a step of
 * 1000. */
static int gen_sum(subiter_gen *g, void *arg)
{
    struct timespec ms = {0, 1000000};
    const long *n;
    size_t len;
    long i, sum = 0;

    (void)arg;
    n = subiter_input(g, &len);
    if (n == NULL || len != sizeof *n) {
        return subiter_fail(g, "a task's input is one long");
    }
    for (i = 1; i <= *n; i++) {
        sum += i;
        if (i % 1000 == 0) {
            nanosleep(&ms, NULL);
        }
    }
    return subiter_yield(g, &sum, sizeof sum);
}

static void watch(int ep, int fd, int tag)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)tag};

    if (fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        fprintf(stderr, "evloop: cannot watch fd %d (%s)\n", fd,
                fd < 0 ? subiter_strerror(fd) : strerror(errno));
        exit(1);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: evloop [--records N] [--tasks N] [--workers N] "
                    "[--interrupt-ms MS]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"records", required_argument, NULL, 'r'},
        {"tasks", required_argument, NULL, 't'},
        {"workers", required_argument, NULL, 'w'},
        {"interrupt-ms", required_argument, NULL, 'i'},
        {NULL, 0, NULL, 0}};
    long records = 20000, tasks = 16, workers = 2, interrupt_ms = 0;
    long got[N_LOADERS] = {0}, next_index[N_LOADERS] = {0};
    long ok = 0, failed = 0, cancelled = 0, k, n;
    subiter *loader[N_LOADERS] = {NULL};
    struct spec spec[N_LOADERS];
    bool done[N_LOADERS] = {false}, pool_done = false, stopping = false;
    subiter_opts o = SUBITER_OPTS_INIT;
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;
    subiter_pool *pool = NULL;
    int c, ep, sfd, tfd = -1, r, rc = 0;
    sigset_t mask;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        long *dst = c == 'r'   ? &records
                    : c == 't' ? &tasks
                    : c == 'w' ? &workers
                    : c == 'i' ? &interrupt_ms
                               : NULL;
        char *end;

        if (dst == NULL) {
            usage();
        }
        *dst = strtol(optarg, &end, 10);
        if (*end != '\0' || *dst < 0) {
            usage();
        }
    }
    if (workers < 1 || optind != argc) {
        usage();
    }
    /* Signals come as records of the signalfd, in the loop. */
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    ep = epoll_create1(EPOLL_CLOEXEC);
    sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (ep < 0 || sfd < 0) {
        perror("evloop");
        return 1;
    }
    watch(ep, sfd, TAG_SIGNAL);

    for (k = 0; k < N_LOADERS; k++) {
        spec[k].loader = k;
        spec[k].records = records;
        r = subiter_open(&loader[k], gen_records, &spec[k], &o);
        if (r == 0) {
            r = subiter_start(loader[k], NULL, 0);
        }
        if (r < 0) {
            fprintf(stderr, "evloop: loader %ld: %s\n", k,
                    subiter_errmsg(loader[k]));
            return 1;
        }
        watch(ep, subiter_fd(loader[k]), (int)k);
    }
    po.workers = (unsigned)workers;
    if (subiter_pool_open(&pool, gen_sum, NULL, &po) < 0) {
        fprintf(stderr, "evloop: pool: %s\n", subiter_pool_errmsg(pool));
        return 1;
    }
    watch(ep, subiter_pool_fd(pool), TAG_POOL);
    for (n = 1; n <= tasks; n++) {
        long input = n * 20000;

        if (subiter_pool_submit(pool, &input, sizeof input, 0, NULL) < 0) {
            fprintf(stderr, "evloop: submit: %s\n", subiter_pool_errmsg(pool));
            return 1;
        }
    }
    if (interrupt_ms > 0) {
        struct itimerspec its = {
            {0, 0}, {interrupt_ms / 1000, interrupt_ms % 1000 * 1000000}};

        tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
        timerfd_settime(tfd, 0, &its, NULL);
        watch(ep, tfd, TAG_ALARM);
    }

    while (!pool_done || !done[0] || !done[1]) {
        struct epoll_event ev;

        if (epoll_wait(ep, &ev, 1, -1) < 1) {
            continue; /* EINTR */
        }
        if (ev.data.u32 == TAG_ALARM) {
            epoll_ctl(ep, EPOLL_CTL_DEL, tfd, NULL);
            kill(getpid(), SIGINT);
            continue;
        }
        if (ev.data.u32 == TAG_SIGNAL) {
            struct signalfd_siginfo si;

            while (read(sfd, &si, sizeof si) == sizeof si) {
                fprintf(stderr, "evloop: %s: stopping\n",
                        strsignal((int)si.ssi_signo));
            }
            if (!stopping) {
                stopping = true;
                for (k = 0; k < N_LOADERS; k++) {
                    if (!done[k] && subiter_stop(loader[k]) < 0) {
                        rc = 1;
                    }
                    done[k] = true;
                }
                /* No new task; the rest end with SUBITER_ECANCELED. */
                (void)subiter_pool_finalize(pool, 0);
            }
            continue;
        }
        if (ev.data.u32 < N_LOADERS) {
            subiter_item item;
            struct record rec;

            k = ev.data.u32;
            while (!done[k] &&
                   (r = subiter_next_timeout(loader[k], &item, 0)) == 1) {
                memcpy(&rec, item.data, sizeof rec);
                if (rec.loader != k || rec.index != next_index[k]) {
                    fprintf(stderr,
                            "evloop: loader %ld: record %ld, "
                            "expected %ld\n",
                            k, rec.index, next_index[k]);
                    rc = 1;
                }
                next_index[k] = rec.index + 1;
                got[k]++;
            }
            if (!done[k] && r != -EAGAIN) {
                if (r < 0) {
                    fprintf(stderr, "evloop: loader %ld: %s\n", k,
                            subiter_errmsg(loader[k]));
                    rc = 1;
                }
                done[k] = true;
            }
            continue;
        }
        for (;;) {
            subiter_pool_item it;

            r = subiter_pool_next_timeout(pool, &it, 0);
            if (r == 0) {
                pool_done = true;
            }
            if (r != 1) {
                if (r < 0 && r != -EAGAIN) {
                    fprintf(stderr, "evloop: pool: %s\n",
                            subiter_pool_errmsg(pool));
                    rc = 1;
                    pool_done = true;
                }
                break;
            }
            if (it.kind != SUBITER_POOL_TASK_END) {
                continue;
            }
            if (it.code == 0) {
                ok++;
            } else if (it.code == SUBITER_ECANCELED) {
                cancelled++;
            } else {
                fprintf(stderr, "evloop: %s\n", it.errmsg);
                failed++;
            }
        }
    }

    for (k = 0; k < N_LOADERS; k++) {
        printf("loader %ld: %ld records\n", k, got[k]);
        if (subiter_close(loader[k]) != 0) {
            rc = 1;
        }
    }
    printf("tasks: %ld done, %ld failed, %ld cancelled\n", ok, failed,
           cancelled);
    if (subiter_pool_close(pool) != 0) {
        rc = 1;
    }
    close(ep);
    close(sfd);
    if (tfd >= 0) {
        close(tfd);
    }
    if (failed > 0) {
        rc = 1;
    }
    return rc != 0 ? rc : stopping ? 130 : 0;
}
