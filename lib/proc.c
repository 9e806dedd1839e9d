/* proc.c: watches and reaps worker processes. Owns every pid the library
 * forks: it waits only for those (never waitpid(-1)), installs no signal
 * handler, and never waits on nor signals a pid number it cannot prove is
 * still its worker's. With a pidfd that proof is the pidfd itself
 * (waitid(P_PIDFD), pidfd_send_signal()). Without one (valgrind, sandboxes)
 * the worker's life lock (life.c) says whether it lives, and /proc/<pid>,
 * opened right after fork(), whether anyone reaped it: an application
 * reaper or SIGCHLD ignored frees the pid, and the kernel may give it to
 * another child of the application at once. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#ifndef P_PIDFD
#define P_PIDFD 3 /* linux/wait.h; glibc 2.36 has no name for it */
#endif

void subiter__proc_init(struct subiter__proc *p)
{
    memset(p, 0, sizeof *p);
    p->pidfd = -1;
    p->procfd = -1;
}

/* Test hook (subiter__proc_no_pidfd()): watch workers as if pidfd_open()
 * were missing. Per thread, like the other test hooks. */
static _Thread_local bool no_pidfd;

void subiter__proc_no_pidfd(bool on)
{
    no_pidfd = on;
}

void subiter__proc_watch(struct subiter__proc *p, pid_t pid,
                         _Atomic uint32_t *life)
{
    char path[32];
    long fd = -1;

    p->pid = pid;
    p->life = life;
#ifdef SYS_pidfd_open
    if (!no_pidfd) {
        fd = syscall(SYS_pidfd_open, pid, 0);
    }
#endif
    /* pidfd_open() returns a CLOEXEC fd. */
    p->pidfd = fd >= 0 ? (int)fd : -1;
    if (p->pidfd < 0) {
        /* Right after fork() nobody else can have reaped the worker yet
         * (it would have to die, be reaped and its pid be reused within
         * these few instructions), so this directory is the worker's. */
        snprintf(path, sizeof path, "/proc/%d", (int)pid);
        p->procfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
}

/* ---- without a pidfd: /proc and the life lock ---- */

/* The worker's state letter in /proc ('R', 'S', 'Z', ...); 0 when it has
 * been reaped, by anyone; -1 when /proc cannot say. */
static int proc_state(const struct subiter__proc *p)
{
    char buf[512], *s;
    ssize_t n;
    int fd;

    if (p->procfd < 0) {
        return -1;
    }
    fd = openat(p->procfd, "stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ESRCH || errno == ENOENT ? 0 : -1;
    }
    do {
        n = read(fd, buf, sizeof buf - 1);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && errno == ESRCH) {
        (void)close(fd);
        return 0;
    }
    (void)close(fd);
    if (n <= 0) {
        return -1;
    }
    buf[n] = '\0';
    /* "pid (comm) S ...": comm may hold anything, the last ')' ends it. */
    s = strrchr(buf, ')');
    return s != NULL && s[1] == ' ' && s[2] != '\0' ? (unsigned char)s[2] : -1;
}

static bool ended_state(int state)
{
    return state == 0 || state == 'Z' || state == 'X';
}

/* Exited, without a pidfd. Only when neither the life lock nor /proc can
 * say (a worker that died before it took the lock, on a system without
 * /proc) does this fall back to the pid number. */
static bool exited_no_pidfd(struct subiter__proc *p)
{
    enum subiter__life life = p->life != NULL
                                  ? subiter__life_read(p->life, p->pid)
                                  : SUBITER__LIFE_UNKNOWN;
    siginfo_t si;
    int state;

    if (life != SUBITER__LIFE_UNKNOWN) {
        return life == SUBITER__LIFE_DEAD;
    }
    state = proc_state(p);
    if (state >= 0) {
        return ended_state(state);
    }
    memset(&si, 0, sizeof si);
    /* WNOWAIT: look, but leave the zombie for subiter__proc_reap(). */
    while (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0) {
        if (errno != EINTR) {
            return true; /* ECHILD: someone else reaped it */
        }
    }
    return si.si_pid != 0;
}

/* Does the worker provably hold its pid, alive (not a zombie), so that a
 * signal to the number reaches it? */
static bool alive_no_pidfd(struct subiter__proc *p)
{
    int state = proc_state(p);

    if (state >= 0) {
        return !ended_state(state);
    }
    return p->life != NULL &&
           subiter__life_read(p->life, p->pid) == SUBITER__LIFE_ALIVE;
}

/* ---- exited, reaped ---- */

/* The wait status waitpid() would have given, from waitid()'s siginfo. */
static int wait_status_of(const siginfo_t *si)
{
    switch (si->si_code) {
    case CLD_EXITED:
        return (si->si_status & 0xff) << 8;
    case CLD_DUMPED:
        return (si->si_status & 0x7f) | 0x80;
    default: /* CLD_KILLED */
        return si->si_status & 0x7f;
    }
}

/* waitid() on the pidfd: 1 exited (*si filled), 0 running, -1 someone
 * else reaped it (ECHILD). */
static int pidfd_wait(struct subiter__proc *p, siginfo_t *si, int flags)
{
    idtype_t type = (idtype_t)P_PIDFD;
    id_t id = (id_t)p->pidfd;

    memset(si, 0, sizeof *si);
    while (waitid(type, id, si, WEXITED | WNOHANG | flags) < 0) {
        if (errno == EINVAL && type != P_PID) {
            /* Linux 5.3 has pidfds but no P_PIDFD: the pid, then, which
             * the pidfd still keeps from being signalled by number. */
            type = P_PID;
            id = (id_t)p->pid;
        } else if (errno != EINTR) {
            return -1;
        }
    }
    return si->si_pid != 0;
}

bool subiter__proc_exited(struct subiter__proc *p)
{
    siginfo_t si;

    if (p->reaped) {
        return true;
    }
    if (p->pidfd >= 0) {
        /* WNOWAIT: look, but leave the zombie for subiter__proc_reap(). */
        return pidfd_wait(p, &si, WNOWAIT) != 0;
    }
    return exited_no_pidfd(p);
}

/* The worker is reaped; its status is known when status is not NULL. */
static void set_reaped(struct subiter__proc *p, const int *status)
{
    p->reaped = true;
    if (status != NULL) {
        p->wait_status = *status;
        p->status_known = true;
    }
}

/* Reap without a pidfd: only a zombie /proc shows to be the worker's (or,
 * without /proc, one the life lock or waitid() says has exited). */
static bool try_reap_no_pidfd(struct subiter__proc *p)
{
    int status = 0, state;
    pid_t r;

    if (!exited_no_pidfd(p)) {
        return false;
    }
    state = proc_state(p);
    if (state == 0) {
        set_reaped(p, NULL); /* someone else took its status */
        return true;
    }
    if (state > 0 && !ended_state(state)) {
        return false; /* ending, not a zombie yet */
    }
    /* A zombie of ours holds its pid until reaped: the number is the
     * worker's (but for a few µs if someone else reaps it right now). */
    do {
        r = waitpid(p->pid, &status, WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == 0) {
        return false;
    }
    set_reaped(p, r == p->pid ? &status : NULL);
    return true;
}

/* Collect the status if the child has exited. true when it is reaped. */
static bool try_reap(struct subiter__proc *p)
{
    siginfo_t si;
    int status;

    if (p->reaped) {
        return true;
    }
    if (p->pidfd < 0) {
        return try_reap_no_pidfd(p);
    }
    switch (pidfd_wait(p, &si, 0)) {
    case 0:
        return false;
    case 1:
        status = wait_status_of(&si);
        set_reaped(p, &status);
        return true;
    default:
        /* ECHILD: an application reaper, or the kernel with SIGCHLD
         * ignored, took the status. */
        set_reaped(p, NULL);
        return true;
    }
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
    /* Through the pidfd, a pid someone else reaped and the kernel then
     * gave to another process is never signalled. */
    if (p->pidfd >= 0) {
        (void)syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0);
        return;
    }
#endif
    /* Without a pidfd, only while the worker provably holds its pid: a
     * live (unreaped) process it can no longer lose but by dying. */
    if (alive_no_pidfd(p)) {
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
    if (p->procfd >= 0) {
        (void)close(p->procfd);
        p->procfd = -1;
    }
    p->life = NULL;
}

void subiter__proc_describe(const struct subiter__proc *p, char *buf, size_t n)
{
    int st = p->wait_status;

    if (!p->reaped) {
        snprintf(buf, n, "is still running");
    } else if (!p->status_known) {
        snprintf(buf, n,
                 "exited, status unavailable: someone else reaped it (an "
                 "application reaper, or SIGCHLD ignored)");
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
