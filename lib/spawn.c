/* spawn.c: SUBITER_SPAWN. The worker is a fresh exec of the same program
 * (/proc/self/exe) by posix_spawn(), which is safe in a threaded parent;
 * a constructor in the library sees the hand-off in the environment and
 * runs the worker before the program's main(). The hand-off, the region's
 * memfd and the eventfd are inherited under their own numbers. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "start.h"

extern char **environ;

/* The worker's environment: ours, without an older hand-off, plus var.
 * New: free with subiter__free() (the strings stay borrowed). */
static char **worker_env(char *var)
{
    size_t n = 0, i, k = 0;
    char **env;

    while (environ != NULL && environ[n] != NULL) {
        n++;
    }
    env = subiter__malloc((n + 2) * sizeof *env);
    if (env == NULL) {
        return NULL;
    }
    for (i = 0; i < n; i++) {
        if (strncmp(environ[i], SUBITER__SPAWN_ENV "=",
                    sizeof SUBITER__SPAWN_ENV) != 0) {
            env[k++] = environ[i];
        }
    }
    env[k++] = var;
    env[k] = NULL;
    return env;
}

/* The program to exec: the path /proc/self/exe links to, which is what
 * valgrind reports for its client (exec'ing the link itself would start
 * valgrind's own tool), or the link when the file is gone. */
static const char *self_exe(char *buf, size_t n)
{
    ssize_t len = readlink("/proc/self/exe", buf, n - 1);

    if (len > 0 && (size_t)len < n - 1) {
        buf[len] = '\0';
        if (strstr(buf, " (deleted)") == NULL) {
            return buf;
        }
    }
    snprintf(buf, n, "/proc/self/exe");
    return buf;
}

int subiter__spawn(int hfd, int memfd, int efd, pid_t *pid, char *why, size_t n)
{
    char var[sizeof SUBITER__SPAWN_ENV + 40], exe[PATH_MAX];
    char *argv[2];
    char **env;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    int r;

    snprintf(var, sizeof var, "%s=%d,%d,%d", SUBITER__SPAWN_ENV, hfd, memfd,
             efd);
    env = worker_env(var);
    if (env == NULL) {
        snprintf(why, n, "out of memory");
        return -ENOMEM;
    }
    argv[0] = program_invocation_name;
    argv[1] = NULL;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    /* dup2() of an fd onto itself clears its FD_CLOEXEC: these three, and
     * only these, survive the exec. */
    r = posix_spawn_file_actions_adddup2(&fa, hfd, hfd);
    if (r == 0) {
        r = posix_spawn_file_actions_adddup2(&fa, memfd, memfd);
    }
    if (r == 0) {
        r = posix_spawn_file_actions_adddup2(&fa, efd, efd);
    }
    /* The worker starts with no handler and nothing blocked, so that none
     * of our signals reaches it before its constructor runs. */
    if (r == 0) {
        r = posix_spawnattr_setsigdefault(&at, &all);
    }
    if (r == 0) {
        r = posix_spawnattr_setsigmask(&at, &none);
    }
    if (r == 0) {
        r = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF |
                                              POSIX_SPAWN_SETSIGMASK);
    }
    if (r == 0) {
        r = posix_spawn(pid, self_exe(exe, sizeof exe), &fa, &at, argv, env);
        if (r != 0) {
            snprintf(why, n, "posix_spawn of %s: %s", exe, strerror(r));
        }
    } else {
        snprintf(why, n, "posix_spawn setup: %s", strerror(r));
    }
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    subiter__free(env);
    return -r;
}

/* In every program that links the library: if this process is a spawned
 * worker, be the worker now, before main(). */
__attribute__((constructor)) static void spawned_worker(void)
{
    const char *v = getenv(SUBITER__SPAWN_ENV);
    unsigned hfd, memfd, efd;

    if (v == NULL) {
        return;
    }
    /* "hfd,memfd,efd". Not sscanf(): the worker would fault in the
     * scanner's pages and its locale before main, for three numbers. */
    if (subiter__parse_uint(&v, ',', INT_MAX, &hfd) < 0 ||
        subiter__parse_uint(&v, ',', INT_MAX, &memfd) < 0 ||
        subiter__parse_uint(&v, '\0', INT_MAX, &efd) < 0) {
        _exit(SUBITER__EXIT_HANDOFF);
    }
    /* Its own workers must not take the hand-off for theirs. */
    (void)unsetenv(SUBITER__SPAWN_ENV);
    subiter__handoff_run((int)hfd, (int)memfd, (int)efd, true);
}
