/* bench_contention.c: bench=contention, subiter beside CPU hogs. Starts
 * `stress-ng --cpu 4` itself (four busy loops on a machine of two cores,
 * say), then, round after round, streams 64 B items through subiter (the
 * library's default options) and through a naive pipe (a length and the
 * payload per item, one read per part), alternating which goes first, and
 * times worker deaths (SIGKILL while the parent sleeps in subiter_next()).
 * Every round prints its own ratio: under contention the worst round is
 * the figure, not the median. Without stress-ng it prints one
 * `skipped=1` line and measures nothing.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench.h"

#define HOGS 4
#define MIN_ROUNDS 5

/* Is `name` an executable file in one of $PATH's folders? */
static bool in_path(const char *name)
{
    const char *path = getenv("PATH"), *p, *end;
    char buf[4096];

    for (p = path ? path : "/usr/bin:/bin"; *p; p = *end ? end + 1 : end) {
        size_t n;

        end = strchr(p, ':');
        end = end ? end : p + strlen(p);
        n = (size_t)(end - p);
        if (n > 0 && n + strlen(name) + 2 <= sizeof buf) {
            memcpy(buf, p, n);
            buf[n] = '/';
            strcpy(buf + n + 1, name);
            if (access(buf, X_OK) == 0) {
                return true;
            }
        }
    }
    return false;
}

/* Start the hogs in a process group of their own (stress-ng forks one
 * process per hog), so that one killpg() ends them all. */
static pid_t start_hogs(struct bench *b)
{
    char hogs[16];
    pid_t pid;

    snprintf(hogs, sizeof hogs, "%d", HOGS);
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        set_error(b, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        char *argv[] = {"stress-ng", "--cpu",   hogs, "--timeout",
                        "900s",      "--quiet", NULL};

        (void)setpgid(0, 0);
        /* The bench's end (even by its watchdog) ends the hogs. */
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        execvp(argv[0], argv);
        _exit(127);
    }
    (void)setpgid(pid, pid); /* either side may win the race */
    return pid;
}

static void stop_hogs(struct bench *b, pid_t pid)
{
    (void)killpg(pid, SIGKILL);
    (void)reap(b, pid, "stress-ng");
}

/* The item count that makes one run of `t` last about target_s, found by
 * doubling under the same load. 0 on an error (set). */
static uint64_t calibrate(struct bench *b, const struct spec *t,
                          double target_s)
{
    uint64_t n = 1024;
    double wall;

    for (;;) {
        rewatch(b);
        wall = stream_once(b, t, n);
        if (wall < 0) {
            return 0;
        }
        if (wall >= target_s / 4 || n >= ((uint64_t)1 << 32)) {
            break;
        }
        n *= 2;
    }
    return round2((double)n * target_s / (wall > 0 ? wall : 1e-9));
}

/* One timed run of `t`: items per second, or < 0 on an error (printed). */
static double rate_of(struct bench *b, const struct spec *t, uint64_t n,
                      int round)
{
    double wall;

    rewatch(b);
    wall = stream_once(b, t, n);
    if (wall < 0) {
        out(b, "bench=contention round=%d impl=%s error=\"%s\"", round,
            impl_names[t->impl], b->errbuf);
        return -1;
    }
    out(b,
        "bench=contention hogs=%d round=%d impl=%s item_bytes=%zu "
        "items=%" PRIu64 " items_per_s=%.0f",
        HOGS, round, impl_names[t->impl], t->item_bytes, n,
        (double)n / (wall > 0 ? wall : 1e-9));
    return (double)n / (wall > 0 ? wall : 1e-9);
}

/* `reps` deaths; their delays (us) go to v[0..reps), and those of the
 * baseline (a forked child killed and waited for through a pidfd: what
 * the scheduler alone costs under this load) to base[0..reps). -1 on an
 * error. */
static int deaths(struct bench *b, struct death_share *sh, double *v,
                  double *base, int reps, int round)
{
    int i;

    for (i = 0; i < reps; i++) {
        bool blocked = false;

        rewatch(b);
        if (death_once(b, sh, DEATH_SLEEP, &v[i], &blocked) < 0 ||
            death_baseline_once(b, &base[i], &blocked) < 0) {
            out(b, "bench=contention round=%d death=%d error=\"%s\"", round, i,
                b->errbuf);
            return -1;
        }
    }
    return 0;
}

static void rounds(struct bench *b, struct death_share *sh, double *dv,
                   double *bv, int nd)
{
    const struct spec sub = {"contention",
                             IMPL_YIELD,
                             CONSUME_TOUCH,
                             64,
                             SUBITER_OPTS_DEFAULT_BUFFER_ITEMS,
                             SUBITER_OPTS_DEFAULT_BUFFER_BYTES};
    const struct spec pipe = {"contention", IMPL_PIPE, CONSUME_TOUCH, 64, 0, 0};
    const int nr = b->cfg->reps < MIN_ROUNDS ? MIN_ROUNDS : b->cfg->reps;
    double target = b->cfg->quick ? 0.1 : 0.3, worst = -1, ratios[MAX_REPS];
    double *all = dv + nd, dmed, dmax = 0;
    uint64_t n_sub, n_pipe;
    int r, i, k = 0;

    n_sub = calibrate(b, &sub, target);
    n_pipe = n_sub ? calibrate(b, &pipe, target) : 0;
    if (!n_sub || !n_pipe) {
        out(b, "bench=contention error=\"%s\"", b->errbuf);
        return;
    }
    for (r = 0; r < nr; r++) {
        double rs, rp;

        /* Interleaved: who runs first alternates, so that a drift in the
         * load does not favour one side. */
        if (r % 2 == 0) {
            rs = rate_of(b, &sub, n_sub, r);
            rp = rs < 0 ? -1 : rate_of(b, &pipe, n_pipe, r);
        } else {
            rp = rate_of(b, &pipe, n_pipe, r);
            rs = rp < 0 ? -1 : rate_of(b, &sub, n_sub, r);
        }
        if (rs < 0 || rp < 0 || deaths(b, sh, dv, bv, nd, r) < 0) {
            return;
        }
        memcpy(all + k, dv, (size_t)nd * sizeof *dv);
        k += nd;
        ratios[r] = rs / rp;
        worst = worst < 0 || ratios[r] < worst ? ratios[r] : worst;
        dmed = median(dv, nd); /* sorts dv */
        out(b,
            "bench=contention hogs=%d round=%d subiter_yield/pipe_64B=%.2f "
            "deaths=%d death_us_med=%.0f death_us_max=%.0f "
            "baseline_fork_pidfd_us_med=%.0f",
            HOGS, r, ratios[r], nd, dmed, dv[nd - 1], median(bv, nd));
    }
    dmed = median(all, k);
    for (i = 0; i < k; i++) {
        dmax = all[i] > dmax ? all[i] : dmax;
    }
    out(b,
        "bench=contention hogs=%d rounds=%d subiter_yield/pipe_64B_min=%.2f "
        "subiter_yield/pipe_64B_med=%.2f deaths=%d death_us_med=%.0f "
        "death_us_max=%.0f",
        HOGS, nr, worst, median(ratios, nr), k, dmed, dmax);
    b->n_done++;
    ratio(b, "contention_yield_64B/pipe_64B_worst_round", worst, 3, -1);
    ratio(b, "contention_death_ms_med", dmed / 1e3, -1, 10);
    ratio(b, "contention_death_ms_max", dmax / 1e3, -1, 100);
}

void bench_contention(struct bench *b)
{
    const int nd = b->cfg->quick ? 5 : 10;
    const int nr = b->cfg->reps < MIN_ROUNDS ? MIN_ROUNDS : b->cfg->reps;
    struct death_share *sh;
    double *dv, *bv;
    pid_t hogs;

    if (!in_path("stress-ng")) {
        out(b, "bench=contention skipped=1 reason=\"stress-ng not found in "
               "PATH (Debian package stress-ng)\"");
        return;
    }
    /* This round's deaths, then every round's. */
    dv = calloc((size_t)(nd + nd * nr), sizeof *dv);
    bv = calloc((size_t)nd, sizeof *bv);
    sh = map_shared(sizeof *sh);
    if (!dv || !bv || !sh) {
        out(b, "bench=contention error=\"out of memory\"");
        free(dv);
        free(bv);
        if (sh) {
            munmap(sh, sizeof *sh);
        }
        return;
    }
    progress(b, "bench=contention");
    watch(b, "bench=contention");
    hogs = start_hogs(b);
    if (hogs > 0) {
        sleep_s(0.5); /* let the hogs reach their loops */
        rounds(b, sh, dv, bv, nd);
        stop_hogs(b, hogs);
    } else {
        out(b, "bench=contention error=\"%s\"", b->errbuf);
    }
    unwatch(b);
    munmap(sh, sizeof *sh);
    free(dv);
    free(bv);
}
