/* forkserver.c: SUBITER_FORKSERVER. A zygote, forked once while the
 * process is still clean, makes every worker with clone3(CLONE_PARENT |
 * CLONE_PIDFD): the worker is the application's own child (reaping,
 * pidfds, the parent-death signal and OOM attribution work as with fork)
 * and its pidfd comes back over the socket with SCM_RIGHTS.
 *
 * The zygote keeps one worker made ahead, the spare (Android's zygote
 * keeps a pool of them for the same reason), and sends the application
 * its pidfd and one end of a socket whose other end the spare waits on.
 * An open hands the spare its fds over that socket, with no round trip
 * through the zygote, and asks the zygote for the next spare once that
 * worker has started (made at once, its clone competed with the start on
 * a small machine); only when there is no spare does an open ask the
 * zygote for a worker and wait for the clone. The spare is the
 * application's child from its start: the application reaps one that
 * died unused, and lets the last one go (the end of its socket) when the
 * zygote ends.
 *
 * The zygote's pid, socket and spare are the library's one piece of
 * global state, under a mutex. */
#include "config.h"

#include <errno.h>
#include <linux/sched.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "start.h"

/* What the application sends: a byte, REQ_WORKER with three fds
 * (hand-off, region, eventfd: a worker now, please) or REQ_SPARE alone
 * (we hold no spare: it was taken, died, or never came; make one). A
 * spare gets the same three fds from the application. */
#define REQ_FDS 3
enum { REQ_WORKER = 'W', REQ_SPARE = 'S' };

/* What the zygote sends: the answer to a REQ_WORKER (with the worker's
 * pidfd), or a spare it made (with its pidfd and the application's end of
 * its socket; pid 0: none, clone3() failed). */
enum { MSG_WORKER = 1, MSG_SPARE = 2 };

struct reply {
    int32_t kind;
    int32_t err; /* MSG_WORKER: 0, or -errno from clone3() */
    int32_t pid;
};

/* The application's side. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t zygote;  /* 0: none */
static pid_t starter; /* the process whose zygote it is */
static int sock = -1; /* our end of the zygote's socket */
static unsigned owed; /* SPARE messages the zygote will send, unread */
/* An open took the spare, and the next is not asked for yet: that waits
 * until the worker has started (subiter__forkserver_settled()). */
static _Atomic bool spare_due;
/* The spare the zygote sent, ours to hand a request: its pid (0: none),
 * pidfd and our end of its socket. */
static struct {
    pid_t pid;
    int pidfd;
    int sock;
} spare = {0, -1, -1};

static int send_fds(int s, const void *buf, size_t len, const int *fds,
                    int nfds)
{
    union {
        char buf[CMSG_SPACE(REQ_FDS * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = {(void *)(uintptr_t)buf, len};
    struct msghdr m;
    ssize_t w;

    memset(&m, 0, sizeof m);
    memset(&u, 0, sizeof u);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    if (nfds > 0) {
        struct cmsghdr *c;

        m.msg_control = u.buf;
        m.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
        c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
    }
    do {
        w = sendmsg(s, &m, MSG_NOSIGNAL);
    } while (w < 0 && errno == EINTR);
    return w < 0 ? -errno : 0;
}

/* Receive one message and up to max fds (CLOEXEC); returns its length
 * (0: the other end closed) or -errno; *nfds fds were received. */
static ssize_t recv_fds(int s, void *buf, size_t len, int *fds, int max,
                        int *nfds)
{
    union {
        char buf[CMSG_SPACE(REQ_FDS * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = {buf, len};
    struct msghdr m;
    struct cmsghdr *c;
    ssize_t got;

    *nfds = 0;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = u.buf;
    m.msg_controllen = sizeof u.buf;
    do {
        got = recvmsg(s, &m, MSG_CMSG_CLOEXEC);
    } while (got < 0 && errno == EINTR);
    if (got < 0) {
        return -errno;
    }
    for (c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            int i;

            for (i = 0; i < k; i++) {
                int fd;

                memcpy(&fd, CMSG_DATA(c) + (size_t)i * sizeof(int), sizeof fd);
                if (*nfds < max) {
                    fds[(*nfds)++] = fd;
                } else {
                    (void)close(fd);
                }
            }
        }
    }
    return got;
}

static void close_fds(const int *fds, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        (void)close(fds[i]);
    }
}

/* Make a worker: the application's child (CLONE_PARENT), its pidfd in
 * *pidfd. In the child, returns 0 as fork() does. */
static long clone_worker(int *pidfd)
{
    struct clone_args ca;

    memset(&ca, 0, sizeof ca);
    /* The worker's parent is the application; its exit signal is then
     * the zygote's own (SIGCHLD), so exit_signal must be 0. */
    ca.flags = CLONE_PARENT | CLONE_PIDFD;
    ca.pidfd = (uint64_t)(uintptr_t)pidfd;
    return syscall(SYS_clone3, &ca, sizeof ca);
}

/* The spare's life: wait for a request's fds from the application, then
 * be its worker. */
static _Noreturn void spare_main(int s, pid_t app)
{
    int fds[REQ_FDS], nfds;
    char byte;

    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != app) {
        _exit(SUBITER__EXIT_ORPHAN);
    }
    if (recv_fds(s, &byte, 1, fds, REQ_FDS, &nfds) <= 0 || nfds != REQ_FDS) {
        /* The application let it go (or broke the protocol). */
        _exit(0);
    }
    (void)close(s);
    subiter__handoff_run(fds[0], fds[1], fds[2], false);
}

/* Make a spare and send it to the application: a SPARE message with its
 * pidfd and its socket's other end, or with pid 0 when that failed. */
static void spare_next(int s, pid_t app)
{
    struct reply m;
    int sv[2], fds[2] = {-1, -1};
    long pid = -1;

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0) {
        pid = clone_worker(&fds[0]);
        if (pid == 0) {
            (void)close(s);
            (void)close(sv[0]);
            spare_main(sv[1], app);
        }
        (void)close(sv[1]);
        fds[1] = sv[0];
    }
    memset(&m, 0, sizeof m);
    m.kind = MSG_SPARE;
    if (pid > 0) {
        m.pid = (int32_t)pid;
        (void)send_fds(s, &m, sizeof m, fds, 2);
    } else {
        (void)send_fds(s, &m, sizeof m, NULL, 0);
    }
    if (fds[0] >= 0) {
        (void)close(fds[0]);
    }
    if (fds[1] >= 0) {
        (void)close(fds[1]);
    }
}

/* The zygote: serve requests until the application closes its end or
 * dies. A REQ_SPARE asks for a spare (the application holds none). A
 * REQ_WORKER, with the request's fds, asks for a worker now (no spare at
 * hand). Single-threaded, and it allocates nothing. */
static _Noreturn void zygote_main(int s, pid_t app)
{
    subiter__reset_signals();
    /* Like its workers: a Ctrl-C the application handles must not end
     * the zygote and its spare. */
    subiter__ignore_terminal_signals();
    /* Once here, so that no worker loads or warms the unwinder, nor binds
     * the generator's calls. */
    subiter__trace_prime();
    subiter__bind_generator_calls();
    /* Never outlive the application (the thread that started the zygote,
     * to be exact); it may be gone already, hence the getppid(). */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != app) {
        _exit(SUBITER__EXIT_ORPHAN);
    }
    spare_next(s, app);
    for (;;) {
        struct reply rep;
        int fds[REQ_FDS], nfds, pidfd = -1;
        char byte;
        ssize_t got = recv_fds(s, &byte, 1, fds, REQ_FDS, &nfds);
        long pid;

        if (got <= 0) {
            _exit(0);
        }
        if (byte == REQ_SPARE && nfds == 0) {
            spare_next(s, app);
            continue;
        }
        memset(&rep, 0, sizeof rep);
        rep.kind = MSG_WORKER;
        if (byte != REQ_WORKER || nfds != REQ_FDS) {
            rep.err = -EPROTO;
        } else {
            pid = clone_worker(&pidfd);
            if (pid == 0) {
                (void)close(s);
                subiter__handoff_run(fds[0], fds[1], fds[2], false);
            }
            rep.err = pid < 0 ? -errno : 0;
            rep.pid = pid < 0 ? 0 : (int32_t)pid;
        }
        close_fds(fds, nfds);
        (void)send_fds(s, &rep, sizeof rep, &pidfd, pidfd >= 0 ? 1 : 0);
        if (pidfd >= 0) {
            (void)close(pidfd);
        }
    }
}

/* Wait for a child of ours that is gone or going. */
static void reap(pid_t pid)
{
    /* ECHILD: an application's reaper was first. */
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
}

/* Let the spare go: it exits when it reads the end of its socket (shut
 * down, not only closed: a worker we forked holds a copy of our end).
 * `ours`: it is our child, to be reaped; a process forked from ours only
 * closes its copies. */
static void spare_drop(bool ours)
{
    if (spare.pid > 0 && ours) {
        (void)shutdown(spare.sock, SHUT_RDWR);
        reap(spare.pid);
    }
    if (spare.pid > 0) {
        (void)close(spare.sock);
        (void)close(spare.pidfd);
    }
    spare.pid = 0;
    spare.pidfd = -1;
    spare.sock = -1;
}

/* A SPARE message with its fds: the zygote made `pid` (0: none). */
static void note_spare(const struct reply *m, const int *fds, int nfds)
{
    if (owed > 0) {
        owed--;
    }
    /* One at a time (the zygote makes one per REQ_SPARE); anything else
     * is let go. */
    spare_drop(true);
    if (m->pid > 0 && nfds == 2) {
        spare.pid = m->pid;
        spare.pidfd = fds[0];
        spare.sock = fds[1];
        return;
    }
    close_fds(fds, nfds);
    if (m->pid > 0) {
        /* Its fds did not reach us (out of descriptors): with no one at
         * the other end of its socket, it exits at once. */
        reap(m->pid);
    }
}

/* Read the zygote's next message: its length, 0 at its end, or -errno.
 * A SPARE message is noted (and returned too); the fd of any other is in
 * *fd (-1: none). */
static ssize_t read_msg(struct reply *m, int *fd)
{
    int fds[2], nfds;
    ssize_t got = recv_fds(sock, m, sizeof *m, fds, 2, &nfds);

    *fd = -1;
    if (got == (ssize_t)sizeof *m && m->kind == MSG_SPARE) {
        note_spare(m, fds, nfds);
    } else if (nfds > 0) {
        *fd = fds[0];
        close_fds(fds + 1, nfds - 1);
    }
    return got;
}

/* Read every SPARE message the zygote owes us: 0, or -EPIPE when it is
 * gone. */
static int read_owed(void)
{
    struct reply m;
    ssize_t got;
    int fd;

    while (owed > 0) {
        got = read_msg(&m, &fd);
        if (fd >= 0) {
            (void)close(fd);
        }
        if (got <= 0) {
            return got == 0 || got == -ECONNRESET ? -EPIPE : (int)got;
        }
    }
    return 0;
}

/* Forget the zygote (it died, or it belongs to the process we were forked
 * from), reaping it and the spare if they are ours. */
static void drop_locked(void)
{
    bool ours = zygote > 0 && starter == getpid();

    if (sock >= 0 && ours) {
        /* It exits at the end of our requests; then read what it said to
         * the end, for a spare it made last. */
        struct reply m;
        int fd;

        (void)shutdown(sock, SHUT_WR);
        reap(zygote);
        while (read_msg(&m, &fd) > 0) {
            if (fd >= 0) {
                (void)close(fd);
            }
        }
    }
    spare_drop(ours);
    if (sock >= 0) {
        (void)close(sock);
        sock = -1;
    }
    zygote = 0;
    starter = 0;
    owed = 0;
    atomic_store_explicit(&spare_due, false, memory_order_relaxed);
}

static int start_locked(void)
{
    pid_t me = getpid();
    int sv[2];
    pid_t pid;

    if (zygote > 0 && starter == me) {
        return 0;
    }
    drop_locked();
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        return -errno;
    }
    pid = fork();
    if (pid == 0) {
        (void)close(sv[0]);
        zygote_main(sv[1], me);
    }
    (void)close(sv[1]);
    if (pid < 0) {
        int r = -errno;

        (void)close(sv[0]);
        return r;
    }
    sock = sv[0];
    zygote = pid;
    starter = me;
    owed = 1; /* the first spare */
    return 0;
}

int subiter_forkserver_start(void)
{
    int r;

    pthread_mutex_lock(&lock);
    r = start_locked();
    pthread_mutex_unlock(&lock);
    return r;
}

pid_t subiter__forkserver_pid(void)
{
    pid_t pid;

    pthread_mutex_lock(&lock);
    pid = starter == getpid() ? zygote : 0;
    pthread_mutex_unlock(&lock);
    return pid;
}

pid_t subiter__forkserver_spare(void)
{
    pid_t pid = 0;

    pthread_mutex_lock(&lock);
    if (zygote > 0 && starter == getpid()) {
        /* Every spare it owes us: it makes each at once. */
        (void)read_owed();
        pid = spare.pid;
    }
    pthread_mutex_unlock(&lock);
    return pid;
}

/* Send the zygote the request `byte` with `nfds` fds: 0, or -EPIPE when
 * it is gone. */
static int to_zygote(char byte, const int *fds, int nfds)
{
    int r = send_fds(sock, &byte, 1, fds, nfds);

    return r == -ECONNRESET ? -EPIPE : r;
}

/* Ask the zygote for a spare, since we hold none (taken, found dead, or
 * none came): 0, or -EPIPE when the zygote is gone. */
static int ask_spare(void)
{
    int r = to_zygote(REQ_SPARE, NULL, 0);

    if (r == 0) {
        owed++;
    }
    return r;
}

/* Hand the request to the spare, straight: 0 with its pid and pidfd (the
 * next spare is asked for once this worker has started,
 * subiter__forkserver_settled()), 1 when there is none (clone3() failed
 * in the zygote, its fds did not reach us, or the spare died twice in a
 * row), -EPIPE when the zygote is gone. */
static int spare_take(const int *fds, pid_t *pid, int *pidfd)
{
    char byte = REQ_WORKER;
    int attempt, r;

    for (attempt = 0; attempt < 2; attempt++) {
        r = read_owed();
        if (r < 0) {
            return r;
        }
        if (spare.pid == 0) {
            return 1;
        }
        if (send_fds(spare.sock, &byte, 1, fds, REQ_FDS) == 0) {
            *pid = spare.pid;
            *pidfd = spare.pidfd;
            (void)close(spare.sock);
            spare.pid = 0;
            spare.pidfd = -1;
            spare.sock = -1;
            atomic_store_explicit(&spare_due, true, memory_order_relaxed);
            return 0;
        }
        /* It died unused (its end of the socket is closed). One killed
         * after this is a worker that died at its start. */
        spare_drop(true);
        r = ask_spare();
        if (r < 0) {
            return r;
        }
    }
    return 1;
}

void subiter__forkserver_settled(void)
{
    if (!atomic_load_explicit(&spare_due, memory_order_relaxed)) {
        return;
    }
    pthread_mutex_lock(&lock);
    if (atomic_exchange_explicit(&spare_due, false, memory_order_relaxed) &&
        zygote > 0 && starter == getpid()) {
        /* A zygote gone is found by the next open. */
        (void)ask_spare();
    }
    pthread_mutex_unlock(&lock);
}

/* One REQ_WORKER to the zygote and its reply; -EPIPE when the zygote is
 * gone. */
static int request(const int *fds, pid_t *pid, int *pidfd)
{
    struct reply rep;
    int got_fd;
    ssize_t got;
    int r;

    r = to_zygote(REQ_WORKER, fds, REQ_FDS);
    if (r < 0) {
        return r;
    }
    do {
        got = read_msg(&rep, &got_fd);
    } while (got == (ssize_t)sizeof rep && rep.kind == MSG_SPARE);
    if (got == 0 || got == -ECONNRESET) {
        return -EPIPE;
    }
    if (got < 0) {
        return (int)got;
    }
    if (got != (ssize_t)sizeof rep || rep.kind != MSG_WORKER ||
        (rep.err == 0 && rep.pid <= 0)) {
        r = -EPROTO;
    } else {
        r = rep.err;
    }
    if (r < 0) {
        if (got_fd >= 0) {
            (void)close(got_fd);
        }
        return r;
    }
    *pid = rep.pid;
    *pidfd = got_fd;
    return 0;
}

int subiter__forkserver_fork(int hfd, int memfd, int efd, pid_t *pid,
                             int *pidfd, char *why, size_t n)
{
    int fds[REQ_FDS] = {hfd, memfd, efd};
    int attempt, r = 0;

    pthread_mutex_lock(&lock);
    for (attempt = 0; attempt < 2; attempt++) {
        r = start_locked();
        if (r < 0) {
            snprintf(why, n, "cannot start the forkserver: %s",
                     subiter_strerror(r));
            break;
        }
        r = spare_take(fds, pid, pidfd);
        if (r == 1) {
            r = request(fds, pid, pidfd);
            /* And a spare for the next open, after this one's worker (which
             * had to wait for a clone anyway). */
            if (r != -EPIPE) {
                atomic_store_explicit(&spare_due, false, memory_order_relaxed);
                (void)ask_spare();
            }
        }
        if (r != -EPIPE) {
            break;
        }
        /* The zygote died (the thread that started it exited, or someone
         * killed it): start another one, once. */
        drop_locked();
    }
    pthread_mutex_unlock(&lock);
    if (r == -ENOSYS) {
        snprintf(why, n,
                 "the forkserver cannot make workers: clone3() is not "
                 "available (Linux 5.3 or later; valgrind does not emulate "
                 "it); use SUBITER_FORK or SUBITER_SPAWN");
    } else if (r < 0 && attempt < 2 && why[0] == '\0') {
        snprintf(why, n, "the forkserver failed to start a worker: %s",
                 subiter_strerror(r));
    } else if (r < 0 && why[0] == '\0') {
        snprintf(why, n, "the forkserver died twice in a row");
    }
    return r;
}
