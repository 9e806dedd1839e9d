/* error.c: error codes to text, generated from SUBITER_ERRNO_MAP, and
 * the words for how a worker ended (signal names, the library's own exit
 * statuses) that the parent's messages use. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

#include "internal.h"

const char *subiter_strerror(int code)
{
    switch (code) {
#define X(name, value, desc)                                                   \
    case SUBITER_##name:                                                       \
        return desc;
        SUBITER_ERRNO_MAP(X)
#undef X
    case SUBITER_STOPPED:
        return "the parent asked the generator to stop";
    case 0:
        return "success";
    default:
        break;
    }
    if (code < 0 && code > -4096) {
        /*
         * strerror() may return a buffer that a later call overwrites; the
         * glibc table behind strerrordesc_np() is static and thread-safe.
         */
        const char *s = strerrordesc_np(-code);
        if (s != NULL) {
            return s;
        }
    }
    return "unknown error";
}

const char *subiter_errname(int code)
{
    switch (code) {
#define X(name, value, desc)                                                   \
    case SUBITER_##name:                                                       \
        return "SUBITER_" #name;
        SUBITER_ERRNO_MAP(X)
#undef X
    case SUBITER_STOPPED:
        return "SUBITER_STOPPED";
    case 0:
        return "OK";
    default:
        break;
    }
    if (code < 0 && code > -4096) {
        const char *s = strerrorname_np(-code);
        if (s != NULL) {
            return s;
        }
    }
    return "unknown";
}

const char *subiter__signame(int sig)
{
    static const char *const names[] = {
        [SIGHUP] = "SIGHUP",       [SIGINT] = "SIGINT",
        [SIGQUIT] = "SIGQUIT",     [SIGILL] = "SIGILL",
        [SIGTRAP] = "SIGTRAP",     [SIGABRT] = "SIGABRT",
        [SIGBUS] = "SIGBUS",       [SIGFPE] = "SIGFPE",
        [SIGKILL] = "SIGKILL",     [SIGUSR1] = "SIGUSR1",
        [SIGSEGV] = "SIGSEGV",     [SIGUSR2] = "SIGUSR2",
        [SIGPIPE] = "SIGPIPE",     [SIGALRM] = "SIGALRM",
        [SIGTERM] = "SIGTERM",     [SIGCHLD] = "SIGCHLD",
        [SIGCONT] = "SIGCONT",     [SIGSTOP] = "SIGSTOP",
        [SIGTSTP] = "SIGTSTP",     [SIGTTIN] = "SIGTTIN",
        [SIGTTOU] = "SIGTTOU",     [SIGURG] = "SIGURG",
        [SIGXCPU] = "SIGXCPU",     [SIGXFSZ] = "SIGXFSZ",
        [SIGVTALRM] = "SIGVTALRM", [SIGPROF] = "SIGPROF",
        [SIGWINCH] = "SIGWINCH",   [SIGIO] = "SIGIO",
        [SIGPWR] = "SIGPWR",       [SIGSYS] = "SIGSYS",
    };

    if (sig > 0 && (size_t)sig < sizeof names / sizeof names[0] &&
        names[sig] != NULL) {
        return names[sig];
    }
    return "unknown signal";
}

const char *subiter__worker_exit_reason(int status)
{
    switch (status) {
    case SUBITER__EXIT_BAD_MAGIC:
        return "the shared region's header has a bad magic";
    case SUBITER__EXIT_MMAP:
        return "the worker could not map the shared region";
    case SUBITER__EXIT_ORPHAN:
        return "the parent died before the worker started";
    case SUBITER__EXIT_CMD_RING:
        return "the command ring is corrupt";
    case SUBITER__EXIT_STATUS:
        return "a status did not fit the item ring";
    case SUBITER__EXIT_EVENTFD:
        return "the application closed or replaced the worker's eventfd";
    case SUBITER__EXIT_HANDOFF:
        return "the worker could not read its start hand-off";
    case SUBITER__EXIT_SYMBOL:
        return "the worker could not find the generator or the "
               "initializer by name";
    default:
        return NULL;
    }
}

const char *subiter__worker_exit_why(int status, uint32_t stage)
{
    /* Before the region is mapped, only the library's code has run in the
     * worker (the start hand-off of FORKSERVER and SPAWN included); it can
     * end there with these statuses. */
    bool before_map =
        status == SUBITER__EXIT_BAD_MAGIC || status == SUBITER__EXIT_MMAP ||
        status == SUBITER__EXIT_ORPHAN || status == SUBITER__EXIT_HANDOFF ||
        status == SUBITER__EXIT_SYMBOL;

    if ((stage == 0 && before_map) ||
        (status > 0 && stage == (uint32_t)status)) {
        return subiter__worker_exit_reason(status);
    }
    return NULL;
}
