/* soak.c: many open / iterate / close cycles, a fifth of them ending in a
 * crash or a timeout, then the same count of fds, library mappings,
 * children and /dev/shm entries as at the start, and no RSS growth beyond
 * noise. Run by `make check-soak` (not part of the quick suite). Prints
 * key=value lines; exits 1 on any leak. */
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

static int gen(subiter_gen *g, void *arg)
{
    enum fate f = (enum fate)(intptr_t)arg;
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
    int fds0, maps0, shm0, fds1, maps1, shm1, kids;
    long rss0 = 0, rss1, i, bad = 0, outcomes[5] = {0};
    struct timespec t0, t1;

    if (cycles <= 0) {
        fprintf(stderr, "usage: soak [cycles]\n");
        return 2;
    }
    fds0 = count_dir("/proc/self/fd");
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
    fds1 = count_dir("/proc/self/fd");
    maps1 = count_maps();
    shm1 = count_dir("/dev/shm");
    rss1 = rss_kib();
    kids = children();
    printf("bench=soak cycles=%ld clean=%ld stopped=%ld crashed=%ld "
           "exited=%ld timed_out=%ld wrong_outcome=%ld seconds=%.1f\n",
           cycles, outcomes[CLEAN], outcomes[STOP], outcomes[CRASH],
           outcomes[EXIT], outcomes[TIMEOUT], bad,
           (double)(t1.tv_sec - t0.tv_sec) +
               (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    printf("bench=soak fds_before=%d fds_after=%d maps_before=%d "
           "maps_after=%d dev_shm_before=%d dev_shm_after=%d "
           "children_after=%d rss_kib_warm=%ld rss_kib_end=%ld\n",
           fds0, fds1, maps0, maps1, shm0, shm1, kids, rss0, rss1);
    /* RSS noise: allow 1 MiB over the warmed-up figure. */
    if (bad || fds1 != fds0 || maps1 != maps0 || shm1 != shm0 || kids ||
        rss1 > rss0 + 1024) {
        fprintf(stderr, "soak: FAILED\n");
        return 1;
    }
    return 0;
}
