/* bench_start.c: subiter-bench-start, the cost of starting a worker by
 * each start method: subiter_open() -> first item -> subiter_close(), next
 * to fork() + waitpid() of a child that exits at once and posix_spawn() of
 * /bin/true + waitpid(). Median microseconds over the repetitions, and the
 * two ratios the start methods are held to. One key=value line each.
 *
 *     subiter-bench-start [REPS]      (default 200)
 */
#include "config.h"

#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <subiter.h>

extern char **environ;

/* The generator, found by name under SUBITER_SPAWN (this program links
 * with -export-dynamic). */
int bench_start_gen(subiter_gen *g, void *arg);

int bench_start_gen(subiter_gen *g, void *arg)
{
    (void)arg;
    return subiter_yield(g, "x", 1);
}

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return v[n / 2];
}

/* 0: open, first item, close; -1 on any error (printed). */
static int open_first_close(int method)
{
    subiter_opts o = SUBITER_OPTS_INIT;
    subiter_item item;
    subiter *it;
    int r;

    o.start_method = method;
    o.buffer_bytes = 16 * 1024;
    r = subiter_open(&it, bench_start_gen, NULL, &o);
    if (r == 0) {
        r = subiter_start(it, NULL, 0);
    }
    if (r == 0) {
        r = subiter_next(it, &item) == 1 ? 0 : -1;
    }
    if (r != 0) {
        fprintf(stderr, "method %d: %s\n", method, subiter_errmsg(it));
    }
    if (subiter_close(it) != 0 && r == 0) {
        r = -1;
    }
    return r;
}

static int fork_wait(void)
{
    pid_t pid = fork();

    if (pid == 0) {
        _exit(0);
    }
    return pid > 0 && waitpid(pid, NULL, 0) == pid ? 0 : -1;
}

static int spawn_true(void)
{
    char *argv[] = {"true", NULL};
    pid_t pid;

    if (posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ) != 0) {
        return -1;
    }
    return waitpid(pid, NULL, 0) == pid ? 0 : -1;
}

/* One run of one kind (0..2 a start method, 3 fork, 4 spawn): its
 * microseconds, or -1 on an error. */
static double run_once(int kind)
{
    double t0 = now_us();
    int r = kind < 3 ? open_first_close(kind)
                     : (kind == 3 ? fork_wait() : spawn_true());

    return r == 0 ? now_us() - t0 : -1;
}
int main(int argc, char **argv)
{
    static const char *names[] = {"fork", "forkserver", "spawn", "fork_waitpid",
                                  "posix_spawn_true"};
    int reps = argc > 1 ? atoi(argv[1]) : 200;
    double med[5], *v;
    int i, k;

    if (reps < 1 || subiter_forkserver_start() != 0) {
        return 1;
    }
    v = malloc(5 * (size_t)reps * sizeof *v);
    if (v == NULL) {
        return 1;
    }
    /* Interleaved, one run of each kind in turn, so that a noisy
     * neighbour or a frequency change hits all kinds alike. */
    for (i = 0; i < reps; i++) {
        for (k = 0; k < 5; k++) {
            v[k * reps + i] = run_once(k);
            if (v[k * reps + i] < 0) {
                free(v);
                return 1;
            }
        }
    }
    for (k = 0; k < 5; k++) {
        med[k] = median(v + k * reps, reps);
        printf("bench=start method=%s reps=%d us_med=%.1f\n", names[k], reps,
               med[k]);
    }
    printf("bench=ratio name=forkserver/fork_waitpid value=%.3g "
           "target_max=1.5 met=%s\n",
           med[1] / med[3], med[1] / med[3] <= 1.5 ? "yes" : "no");
    printf("bench=ratio name=spawn/posix_spawn_true value=%.3g "
           "target_max=2 met=%s\n",
           med[2] / med[4], med[2] / med[4] <= 2 ? "yes" : "no");
    free(v);
    return 0;
}
