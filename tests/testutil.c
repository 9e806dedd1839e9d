/* testutil.c: helpers shared by the Check suites. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#include "testutil.h"

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') {
            n++;
        }
    }
    closedir(d);
    return n - 1; /* the DIR's own fd */
}

static int count_mappings(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int n = 0;

    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof line, f) != NULL) {
        if (strstr(line, "/memfd:subiter") != NULL) {
            n++;
        }
    }
    fclose(f);
    return n;
}

void tu_snapshot(struct tu_snapshot *s)
{
    s->fds = count_fds();
    s->mappings = count_mappings();
}

void tu_assert_clean(const struct tu_snapshot *s)
{
    pid_t r = waitpid(-1, NULL, WNOHANG);
    int e = errno;

    ck_assert_msg(r == -1 && e == ECHILD, "a child is left (waitpid: %d)",
                  (int)r);
    ck_assert_int_eq(count_fds(), s->fds);
    ck_assert_int_eq(count_mappings(), s->mappings);
}

subiter_opts tu_opts(int timeout_ms)
{
    subiter_opts o = SUBITER_OPTS_INIT;

    o.grace_ms = 200;
    o.timeout_ms = timeout_ms;
    return o;
}

int64_t tu_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void *tu_shared_new(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

    ck_assert_ptr_ne(p, MAP_FAILED);
    return p;
}

void tu_shared_free(void *p, size_t len)
{
    munmap(p, len);
}

int tu_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
