/* threaded.c: subiter in a program with threads. The forkserver's zygote
 * is started first thing in main(), before any thread, so no lock a
 * thread holds (malloc's, stdio's, the program's own) can be held in a
 * worker. Then four threads keep allocating and one keeps a lock the
 * initializer also takes, while the main thread opens workers that read
 * their settings from arg, given as bytes (opts.arg_len).
 *
 *     threaded [OPENS]     (default 20; prints the sum of every item)
 *
 * Exit: 0 when every worker gave the expected items, 1 otherwise.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <subiter.h>

struct settings {
    long first;
    long count;
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int stop;

/* Takes the lock one of the host's threads holds most of the time. */
static int init(subiter_gen *g, void *arg)
{
    char *scratch;

    (void)arg;
    pthread_mutex_lock(&table_lock);
    scratch = malloc(4096);
    pthread_mutex_unlock(&table_lock);
    if (scratch == NULL) {
        return subiter_fail(g, "out of memory");
    }
    free(scratch);
    return 0;
}

/* arg is the worker's copy of the caller's struct settings. */
static int gen(subiter_gen *g, void *arg)
{
    const struct settings *s = arg;
    long i;
    int r;

    for (i = s->first; i < s->first + s->count; i++) {
        if ((r = subiter_yield(g, &i, sizeof i)) != 0) {
            return r;
        }
    }
    return 0;
}

static void *churn(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        free(malloc(64 + (size_t)(rand() % 8192)));
    }
    return NULL;
}

static void *hold(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        pthread_mutex_lock(&table_lock);
        for (volatile int k = 0; k < 100000; k++) {
        }
        pthread_mutex_unlock(&table_lock);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int opens = argc > 1 ? atoi(argv[1]) : 20;
    subiter_opts o = SUBITER_OPTS_INIT;
    pthread_t t[5];
    long sum = 0, want = 0;
    int i, ok = 1;

    /* Before any thread: the zygote is a copy of this clean process. */
    if (subiter_forkserver_start() < 0) {
        fprintf(stderr, "cannot start the forkserver\n");
        return 1;
    }
    for (i = 0; i < 5; i++) {
        pthread_create(&t[i], NULL, i < 4 ? churn : hold, NULL);
    }
    o.start_method = SUBITER_FORKSERVER;
    o.init = init;
    o.arg_len = sizeof(struct settings);
    for (i = 0; i < opens && ok; i++) {
        struct settings s = {i * 100L, 10};
        subiter_item item;
        subiter *it;
        long v;
        int r = subiter_open(&it, gen, &s, &o);

        if (r == 0) {
            r = subiter_start(it, NULL, 0);
        }
        while (r == 0 && (r = subiter_next(it, &item)) > 0) {
            memcpy(&v, item.data, sizeof v);
            sum += v;
            r = 0;
        }
        if (r < 0) {
            fprintf(stderr, "open %d: %s\n", i, subiter_errmsg(it));
            ok = 0;
        }
        if (subiter_close(it) != 0) {
            ok = 0;
        }
        want += 10 * s.first + 45;
    }
    atomic_store(&stop, 1);
    for (i = 0; i < 5; i++) {
        pthread_join(t[i], NULL);
    }
    printf("opens=%d sum=%ld\n", opens, sum);
    return ok && sum == want ? 0 : 1;
}
