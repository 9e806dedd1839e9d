/* proc.c: watches and reaps worker processes. Owns every pid the library
 * forks: it waits only for those (never waitpid(-1)), signals a pid only
 * while it is unreaped, and installs no signal handler. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

void subiter__proc_init(struct subiter__proc *p)
{
    memset(p, 0, sizeof *p);
    p->pidfd = -1;
}

/* Test hook (subiter__proc_no_pidfd()): watch workers as if pidfd_open()
 * were missing. Per thread, like the other test hooks. */
static _Thread_local bool no_pidfd;

void subiter__proc_no_pidfd(bool on)
{
    no_pidfd = on;
}

void subiter__proc_watch(struct subiter__proc *p, pid_t pid)
{
    long fd = -1;

    p->pid = pid;
#ifdef SYS_pidfd_open
    if (!no_pidfd) {
        fd = syscall(SYS_pidfd_open, pid, 0);
    }
#endif
    /* pidfd_open() returns a CLOEXEC fd. */
    p->pidfd = fd >= 0 ? (int)fd : -1;
}

bool subiter__proc_exited(struct subiter__proc *p)
{
    siginfo_t si;

    if (p->reaped) {
        return true;
    }
    memset(&si, 0, sizeof si);
    /* WNOWAIT: look, but leave the zombie for subiter__proc_reap(). */
    while (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
        if (errno != EINTR) {
            return true; /* ECHILD: reaped by the kernel (SIGCHLD ignored) */
        }
    }
    return si.si_pid != 0;
}

/* Collect the status if the child has exited. true when it is reaped. */
static bool try_reap(struct subiter__proc *p)
{
    int status = 0;
    pid_t r;

    if (p->reaped) {
        return true;
    }
    do {
        r = waitpid(p->pid, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0) {
        return false;
    }
    p->reaped = true;
    if (r == p->pid) {
        p->wait_status = status;
        p->status_known = true;
    }
    /* r < 0 (ECHILD): the application ignores SIGCHLD, the kernel reaped
     * the child and its status is lost. */
    return true;
}

int subiter__proc_reap(struct subiter__proc *p, int64_t deadline_ns)
{
    struct pollfd pfd;
    int timeout;

    while (!try_reap(p)) {
        timeout = subiter__ms_left(deadline_ns);
        if (timeout == 0) {
            return -ETIMEDOUT;
        }
        if (p->pidfd >= 0) {
            pfd.fd = p->pidfd;
            pfd.events = POLLIN;
            pfd.revents = 0;
            (void)poll(&pfd, 1, timeout);
        } else {
            struct timespec ts = {0, SUBITER__NS_PER_MS};

            (void)nanosleep(&ts, NULL);
        }
    }
    return 0;
}

void subiter__proc_signal(struct subiter__proc *p, int sig)
{
    if (p->pid <= 0 || p->reaped) {
        return;
    }
#ifdef SYS_pidfd_send_signal
    /* Through the pidfd, a pid the kernel reaped behind our back (SIGCHLD
     * ignored) and then gave to another process is never signalled. */
    if (p->pidfd >= 0) {
        (void)syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0);
        return;
    }
#endif
    /* Without a pidfd, only a zombie or a live child of ours is safe:
     * proc_exited() says true for a pid that is no longer ours. */
    if (!subiter__proc_exited(p)) {
        (void)kill(p->pid, sig);
    }
}

void subiter__proc_kill(struct subiter__proc *p)
{
    subiter__proc_signal(p, SIGKILL);
    (void)subiter__proc_reap(p, 0);
}

void subiter__proc_close(struct subiter__proc *p)
{
    if (p->pidfd >= 0) {
        (void)close(p->pidfd);
        p->pidfd = -1;
    }
}

void subiter__proc_describe(const struct subiter__proc *p, char *buf, size_t n)
{
    int st = p->wait_status;

    if (!p->reaped) {
        snprintf(buf, n, "is still running");
    } else if (!p->status_known) {
        snprintf(buf, n, "exited, status unavailable (SIGCHLD is ignored)");
    } else if (WIFSIGNALED(st)) {
        snprintf(buf, n, "was killed by signal %d (%s)%s", WTERMSIG(st),
                 subiter__signame(WTERMSIG(st)),
                 WCOREDUMP(st) ? ", core dumped" : "");
    } else if (WIFEXITED(st)) {
        snprintf(buf, n, "exited with status %d", WEXITSTATUS(st));
    } else {
        snprintf(buf, n, "ended with wait status 0x%x", (unsigned)st);
    }
}
