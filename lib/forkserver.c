/* forkserver.c: SUBITER_FORKSERVER. A zygote, forked once while the
 * process is still clean, makes every worker with clone3(CLONE_PARENT |
 * CLONE_PIDFD): the worker is the application's own child (reaping,
 * pidfds, the parent-death signal and OOM attribution work as with fork)
 * and its pidfd comes back over the socket with SCM_RIGHTS.
 *
 * The zygote keeps one worker made ahead, the spare (Android's zygote
 * keeps a pool of them for the same reason): a request gets the spare's
 * pid and pidfd back at once, the spare then gets the request's fds, and
 * only then does the zygote make the next spare, so that no open waits
 * for a clone or for the spare's set-up. The spare is
 * the application's child from its start, so the zygote tells the
 * application each spare it made (a SPARE message after every reply, and
 * one at its start), and the application reaps a spare that died unused
 * and the last one when the zygote ends.
 *
 * The zygote's pid, socket and spare are the library's one piece of
 * global state, under a mutex. */
#include "config.h"

#include <errno.h>
#include <linux/sched.h>
#include <poll.h>
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

/* One request: three fds (hand-off, region, eventfd) and this byte. */
#define REQ_FDS 3

/* What the zygote sends: the answer to a request, or the spare it made
 * after it (pid 0: none, clone3() failed). */
enum { MSG_WORKER = 1, MSG_SPARE = 2 };

struct reply {
    int32_t kind;
    int32_t err; /* MSG_WORKER: 0, or -errno from clone3() */
    int32_t pid;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t zygote;  /* 0: none */
static pid_t starter; /* the process whose zygote it is */
static int sock = -1; /* our end of the zygote's socket */
static pid_t spare;   /* the last spare the zygote told of, unused; 0 */
static unsigned owed; /* SPARE messages the zygote will send, unread */

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

/* A worker made ahead of its request: the application's child already,
 * waiting on `sock` for the request's fds. */
struct spare {
    pid_t pid; /* 0: none */
    int pidfd;
    int sock; /* the zygote's end */
};

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

/* The spare's life: wait for a request's fds, then be its worker. */
static _Noreturn void spare_main(int s, pid_t app)
{
    int fds[REQ_FDS], nfds;
    char byte;

    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != app) {
        _exit(SUBITER__EXIT_ORPHAN);
    }
    if (recv_fds(s, &byte, 1, fds, REQ_FDS, &nfds) <= 0 || nfds != REQ_FDS) {
        /* The zygote is gone (or broke the protocol): so are we. */
        _exit(0);
    }
    (void)close(s);
    subiter__handoff_run(fds[0], fds[1], fds[2], false);
}

/* Make the next spare; none when that fails (requests then clone). */
static void spare_make(struct spare *sp, int app_sock, pid_t app)
{
    int sv[2];
    long pid;

    sp->pid = 0;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        return;
    }
    sp->pidfd = -1;
    pid = clone_worker(&sp->pidfd);
    if (pid == 0) {
        (void)close(app_sock);
        (void)close(sv[0]);
        spare_main(sv[1], app);
    }
    (void)close(sv[1]);
    if (pid < 0) {
        (void)close(sv[0]);
        return;
    }
    sp->pid = (pid_t)pid;
    sp->sock = sv[0];
}

/* Take the spare for a request: 0 with its pid and pidfd in *rep and
 * *pidfd, or -1 (none, or it died unused) to clone a worker now. Its
 * socket stays in sp->sock for spare_give(), after the reply. */
static int spare_take(struct spare *sp, struct reply *rep, int *pidfd)
{
    struct pollfd p;

    if (sp->pid == 0) {
        return -1;
    }
    p.fd = sp->pidfd;
    p.events = POLLIN;
    if (poll(&p, 1, 0) != 0) {
        /* Readable: it has exited (or poll failed: trust it no more). */
        (void)close(sp->sock);
        (void)close(sp->pidfd);
        sp->pid = 0;
        return -1;
    }
    rep->pid = (int32_t)sp->pid;
    *pidfd = sp->pidfd;
    sp->pid = 0;
    return 0;
}

/* Give the taken spare its request's fds. After the reply, so that the
 * application goes on while the spare sets up (given first, the spare
 * woke on the zygote's CPU and held the reply back until it slept). If
 * it died since spare_take(), the application sees a worker that died at
 * its start, as if it had died a moment later. */
static void spare_give(int spare_sock, const int *fds)
{
    char byte = 0;

    (void)send_fds(spare_sock, &byte, 1, fds, REQ_FDS);
    (void)close(spare_sock);
}

/* Make the next spare and tell the application. */
static void spare_next(struct spare *sp, int s, pid_t app)
{
    struct reply m;

    spare_make(sp, s, app);
    memset(&m, 0, sizeof m);
    m.kind = MSG_SPARE;
    m.pid = (int32_t)sp->pid;
    (void)send_fds(s, &m, sizeof m, NULL, 0);
}

/* The zygote: serve fork requests until the application closes its end
 * or dies. Single-threaded, and it allocates nothing. */
static _Noreturn void zygote_main(int s, pid_t app)
{
    struct spare sp;

    subiter__reset_signals();
    /* Like its workers: a Ctrl-C the application handles must not end
     * the zygote and its spare. */
    subiter__ignore_terminal_signals();
    /* Once here, so that no worker loads or warms the unwinder. */
    subiter__trace_prime();
    /* Never outlive the application (the thread that started the zygote,
     * to be exact); it may be gone already, hence the getppid(). */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != app) {
        _exit(SUBITER__EXIT_ORPHAN);
    }
    spare_next(&sp, s, app);
    for (;;) {
        struct reply rep;
        int fds[REQ_FDS], nfds, pidfd = -1, given = -1;
        char byte;
        ssize_t got = recv_fds(s, &byte, 1, fds, REQ_FDS, &nfds);
        long pid;

        if (got <= 0) {
            _exit(0);
        }
        memset(&rep, 0, sizeof rep);
        rep.kind = MSG_WORKER;
        if (nfds != REQ_FDS) {
            rep.err = -EPROTO;
        } else if (spare_take(&sp, &rep, &pidfd) == 0) {
            given = sp.sock;
        } else {
            pid = clone_worker(&pidfd);
            if (pid == 0) {
                (void)close(s);
                subiter__handoff_run(fds[0], fds[1], fds[2], false);
            }
            rep.err = pid < 0 ? -errno : 0;
            rep.pid = pid < 0 ? 0 : (int32_t)pid;
        }
        (void)send_fds(s, &rep, sizeof rep, &pidfd, pidfd >= 0 ? 1 : 0);
        if (given >= 0) {
            spare_give(given, fds);
        }
        close_fds(fds, nfds);
        if (pidfd >= 0) {
            (void)close(pidfd);
        }
        /* After every request, as the application counts on. */
        if (sp.pid == 0) {
            spare_next(&sp, s, app);
        } else {
            struct reply m = {MSG_SPARE, 0, (int32_t)sp.pid};

            (void)send_fds(s, &m, sizeof m, NULL, 0);
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

/* A SPARE message: the zygote made `pid` (0: none). A spare told of
 * before and never handed a request died (the zygote made another only
 * after it found it gone): reap it. */
static void note_spare(pid_t pid)
{
    if (owed > 0) {
        owed--;
    }
    if (spare > 0 && spare != pid) {
        reap(spare);
    }
    spare = pid;
}

/* Read the zygote's next message: its length, 0 at its end, or -errno.
 * A SPARE message is noted (and returned too). */
static ssize_t read_msg(struct reply *m, int *fd, int *nfds)
{
    ssize_t got = recv_fds(sock, m, sizeof *m, fd, 1, nfds);

    if (got == (ssize_t)sizeof *m && m->kind == MSG_SPARE) {
        close_fds(fd, *nfds);
        *nfds = 0;
        note_spare(m->pid);
    }
    return got;
}

/* Forget the zygote (it died, or it belongs to the process we were forked
 * from), reaping it and its last spare if they are ours. */
static void drop_locked(void)
{
    bool ours = zygote > 0 && starter == getpid();

    if (sock >= 0 && ours) {
        struct reply m;
        int fd, nfds;

        /* It exits at the end of our requests; then read what it said
         * to the end, for the last spare, which exits with it. */
        (void)shutdown(sock, SHUT_WR);
        reap(zygote);
        while (read_msg(&m, &fd, &nfds) > 0) {
            close_fds(&fd, nfds);
        }
        if (spare > 0) {
            reap(spare);
        }
    }
    if (sock >= 0) {
        (void)close(sock);
        sock = -1;
    }
    zygote = 0;
    starter = 0;
    spare = 0;
    owed = 0;
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
        struct reply m;
        int fd, nfds;

        /* Every spare it owes us: it sends each soon after a reply. */
        while (owed > 0 && read_msg(&m, &fd, &nfds) > 0) {
            close_fds(&fd, nfds);
        }
        pid = spare;
    }
    pthread_mutex_unlock(&lock);
    return pid;
}

/* One request and its reply; -EPIPE when the zygote is gone. */
static int request(const int *fds, pid_t *pid, int *pidfd)
{
    struct reply rep;
    int got_fd = -1, nfds;
    char byte = 0;
    ssize_t got;
    int r;

    r = send_fds(sock, &byte, 1, fds, REQ_FDS);
    if (r < 0) {
        return r == -ECONNRESET ? -EPIPE : r;
    }
    owed++; /* it tells of a spare after every reply */
    do {
        got = read_msg(&rep, &got_fd, &nfds);
    } while (got == (ssize_t)sizeof rep && rep.kind == MSG_SPARE);
    if (got == 0 || got == -ECONNRESET) {
        return -EPIPE;
    }
    if (got < 0) {
        return (int)got;
    }
    if (got != (ssize_t)sizeof rep || rep.kind != MSG_WORKER ||
        (rep.err == 0 && rep.pid <= 0)) {
        close_fds(&got_fd, nfds);
        return -EPROTO;
    }
    if (rep.err < 0) {
        close_fds(&got_fd, nfds);
        return rep.err;
    }
    if (rep.pid == spare) {
        spare = 0; /* it is this worker now */
    }
    *pid = rep.pid;
    *pidfd = nfds == 1 ? got_fd : -1;
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
        r = request(fds, pid, pidfd);
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
