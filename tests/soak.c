/* soak.c: many open / iterate / close cycles, a fifth of them ending in a
 * crash or a timeout, then pool cycles (sharded iterations and tasks, with
 * workers crashing, exiting and timing out); then the same count of fds,
 * library mappings, children and /dev/shm entries as at the start, and no
 * RSS growth beyond noise. Run by `make check-soak` (not part of the quick
 * suite). Prints key=value lines; exits 1 on any leak. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "subiter.h"

enum fate { CLEAN, CRASH, TIMEOUT, EXIT, STOP };

static int produce(subiter_gen *g, enum fate f)
{
    char buf[256];
    int i, r;

    memset(buf, 'x', sizeof buf);
    for (i = 0; i < 20; i++) {
        if ((r = subiter_yield(g, buf, sizeof buf)) != 0) {
            return r;
        }
        if (i == 10 && f == CRASH) {
            raise(SIGSEGV);
        }
        if (i == 10 && f == EXIT) {
            _exit(3);
        }
        if (i == 10 && f == TIMEOUT) {
            pause();
        }
    }
    return 0;
}

static int gen(subiter_gen *g, void *arg)
{
    return produce(g, (enum fate)(intptr_t)arg);
}

/* A pool worker: the fate comes with the input. */
static int gen_in(subiter_gen *g, void *arg)
{
    const int *f = subiter_input(g, NULL);

    (void)arg;
    return produce(g, f != NULL ? (enum fate) * f : CLEAN);
}

/*
 * One pool cycle: open 2 workers; a sharded iteration (every 4th one with
 * a crashing shard); tasks that end well, crash, exit and (every 8th
 * cycle) hang past the task timeout; close. Returns how many outcomes
 * were not the expected ones.
 */
static long pool_cycle(long i)
{
    static const int fates[] = {CLEAN, CRASH, CLEAN, EXIT};
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;
    subiter_opts wo = SUBITER_OPTS_INIT;
    subiter_pool_item item;
    subiter_pool *p;
    long bad = 0;
    int f = i % 4 == 3 ? CRASH : CLEAN, r, k, n, ends = 0, want;

    wo.grace_ms = 100;
    wo.buffer_bytes = 64 * 1024;
    po.workers = 2;
    po.worker = &wo;
    /* A bound on a hang, not a race: once the first crash report of the
     * process has read the modules' symbols, a report costs the parent
     * about a millisecond. */
    po.task_timeout_ms = 100;
    if (subiter_pool_open(&p, gen_in, NULL, &po) != 0) {
        fprintf(stderr, "pool cycle %ld: %s\n", i, subiter_pool_errmsg(p));
        (void)subiter_pool_close(p);
        return 1;
    }
    r = subiter_pool_start(p, &f, sizeof f);
    while (r == 0 && (r = subiter_pool_next(p, &item)) == 1) {
        r = 0;
    }
    if (r != (f == CRASH ? SUBITER_ECHILD : 0)) {
        fprintf(stderr, "pool cycle %ld: iteration ended with %d: %s\n", i, r,
                subiter_pool_errmsg(p));
        bad++;
    }
    n = i % 8 == 7 ? 5 : 4;
    for (k = 0; k < n; k++) {
        f = k == 4 ? TIMEOUT : fates[k];
        bad += subiter_pool_submit(p, &f, sizeof f, 0, NULL) != 0;
    }
    while ((r = subiter_pool_next(p, &item)) == 1) {
        if (item.kind != SUBITER_POOL_TASK_END) {
            continue;
        }
        /* Tasks 1 and 3 end well, 2 and 4 die twice, 5 times out. */
        ends++;
        want = item.task % 2 == 1 && item.task < 5 ? 0
               : item.task == 5                    ? SUBITER_ETIMEDOUT
                                                   : SUBITER_ECHILD;
        if (item.code != want) {
            fprintf(stderr,
                    "pool cycle %ld: task %llu ended with %d, not %d: %s\n", i,
                    item.task, item.code, want, item.errmsg);
            bad++;
        }
    }
    bad += r != 0 || ends != n;
    (void)subiter_pool_close(p);
    if (bad) {
        fprintf(stderr, "pool cycle %ld: %ld wrong outcomes\n", i, bad);
    }
    return bad;
}

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;

    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        n += e->d_name[0] != '.';
    }
    closedir(d);
    return n;
}

/* Open fds but the separate debug files ("*.debug") that crash reports
 * keep for the next one (one per module a frame fell in, at most): those
 * in *debug. */
static int count_fds(int *debug)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    *debug = 0;
    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        char link[300], to[4096];
        ssize_t len;

        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
        len = readlink(link, to, sizeof to - 1);
        to[len > 0 ? len : 0] = '\0';
        if (len >= 6 && strcmp(to + len - 6, ".debug") == 0) {
            ++*debug;
        } else {
            n++;
        }
    }
    closedir(d);
    return n;
}

static int count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int n = 0;

    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        n += strstr(line, "memfd:subiter") != NULL;
    }
    if (f != NULL) {
        fclose(f);
    }
    return n;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;

    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return kib;
}

static int children(void)
{
    return waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD ? 0 : 1;
}

int main(int argc, char **argv)
{
    long cycles = argc > 1 ? strtol(argv[1], NULL, 10) : 10000;
    int fds0, maps0, shm0, fds1, maps1, shm1, kids, debug0, debug1;
    long rss0 = 0, rss1, i, bad = 0, pool_bad = 0, outcomes[5] = {0};
    long pool_cycles;
    struct timespec t0, t1;

    if (cycles <= 0) {
        fprintf(stderr, "usage: soak [cycles]\n");
        return 2;
    }
    fds0 = count_fds(&debug0);
    maps0 = count_maps();
    shm0 = count_dir("/dev/shm");
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (i = 0; i < cycles; i++) {
        /* One cycle in five ends badly: crash, timeout, exit; and some
         * are stopped midway. */
        enum fate f = i % 5 == 4 ? (enum fate)(1 + (i / 5) % 3)
                                 : (i % 5 == 3 ? STOP : CLEAN);
        subiter_opts o = SUBITER_OPTS_INIT;
        subiter_item item;
        subiter *it;
        int r;

        o.grace_ms = 100;
        o.timeout_ms = f == TIMEOUT ? 20 : 0;
        o.buffer_bytes = 64 * 1024;
        r = subiter_open(&it, gen, (void *)(intptr_t)f, &o);
        if (r == 0) {
            r = subiter_start(it, NULL, 0);
        }
        while (r == 0 && (r = subiter_next(it, &item)) == 1) {
            r = f == STOP ? subiter_stop(it) : 0;
            if (f == STOP) {
                break;
            }
        }
        if ((f == CLEAN || f == STOP) && r != 0) {
            fprintf(stderr, "cycle %ld: %s\n", i, subiter_errmsg(it));
            bad++;
        }
        if ((f == CRASH || f == EXIT) && r != SUBITER_ECHILD) {
            bad++;
        }
        if (f == TIMEOUT && r != SUBITER_ETIMEDOUT) {
            bad++;
        }
        outcomes[f]++;
        (void)subiter_close(it);
        if (i == cycles / 10) {
            rss0 = rss_kib(); /* after warm-up: malloc arenas, libs */
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("bench=soak cycles=%ld clean=%ld stopped=%ld crashed=%ld "
           "exited=%ld timed_out=%ld wrong_outcome=%ld seconds=%.1f\n",
           cycles, outcomes[CLEAN], outcomes[STOP], outcomes[CRASH],
           outcomes[EXIT], outcomes[TIMEOUT], bad,
           (double)(t1.tv_sec - t0.tv_sec) +
               (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    /* Pools: a cycle forks 2 workers and at least 4 replacements. */
    pool_cycles = cycles / 20 > 0 ? cycles / 20 : 1;
    t0 = t1;
    for (i = 0; i < pool_cycles; i++) {
        pool_bad += pool_cycle(i);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("bench=soak_pool cycles=%ld wrong_outcome=%ld seconds=%.1f\n",
           pool_cycles, pool_bad,
           (double)(t1.tv_sec - t0.tv_sec) +
               (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    bad += pool_bad;
    fds1 = count_fds(&debug1);
    maps1 = count_maps();
    shm1 = count_dir("/dev/shm");
    rss1 = rss_kib();
    kids = children();
    printf("bench=soak fds_before=%d fds_after=%d debug_fds_before=%d "
           "debug_fds_after=%d maps_before=%d maps_after=%d "
           "dev_shm_before=%d dev_shm_after=%d children_after=%d "
           "rss_kib_warm=%ld rss_kib_end=%ld\n",
           fds0, fds1, debug0, debug1, maps0, maps1, shm0, shm1, kids, rss0,
           rss1);
    /* RSS noise: allow 1 MiB over the warmed-up figure. */
    if (bad || fds1 != fds0 || maps1 != maps0 || shm1 != shm0 || kids ||
        rss1 > rss0 + 1024) {
        fprintf(stderr, "soak: FAILED\n");
        return 1;
    }
    return 0;
}
