/* forkserver.c: SUBITER_FORKSERVER. A zygote, forked once while the
 * process is still clean, makes every worker with clone3(CLONE_PARENT |
 * CLONE_PIDFD): the worker is the application's own child (reaping,
 * pidfds, the parent-death signal and OOM attribution work as with fork)
 * and its pidfd comes back over the socket with SCM_RIGHTS. The zygote's
 * pid and socket are the library's one piece of global state, under a
 * mutex. */
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

/* One request: three fds (hand-off, region, eventfd) and this byte. */
#define REQ_FDS 3

struct reply {
    int32_t err; /* 0, or -errno from clone3() */
    int32_t pid;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t zygote;  /* 0: none */
static pid_t starter; /* the process whose zygote it is */
static int sock = -1; /* our end of the zygote's socket */

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

/* The zygote: serve fork requests until the application closes its end
 * or dies. Single-threaded, and it allocates nothing. */
static _Noreturn void zygote_main(int s, pid_t app)
{
    subiter__reset_signals();
    /* Once here, so that no worker loads or warms the unwinder. */
    subiter__trace_prime();
    /* Never outlive the application (the thread that started the zygote,
     * to be exact); it may be gone already, hence the getppid(). */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != app) {
        _exit(SUBITER__EXIT_ORPHAN);
    }
    for (;;) {
        struct clone_args ca;
        struct reply rep;
        int fds[REQ_FDS], nfds, pidfd = -1;
        char byte;
        ssize_t got = recv_fds(s, &byte, 1, fds, REQ_FDS, &nfds);
        long pid;

        if (got <= 0) {
            _exit(0);
        }
        memset(&rep, 0, sizeof rep);
        if (nfds != REQ_FDS) {
            close_fds(fds, nfds);
            rep.err = -EPROTO;
            (void)send_fds(s, &rep, sizeof rep, NULL, 0);
            continue;
        }
        memset(&ca, 0, sizeof ca);
        /* The worker's parent is the application; its exit signal is
         * then the zygote's own (SIGCHLD), so exit_signal must be 0. */
        ca.flags = CLONE_PARENT | CLONE_PIDFD;
        ca.pidfd = (uint64_t)(uintptr_t)&pidfd;
        pid = syscall(SYS_clone3, &ca, sizeof ca);
        if (pid == 0) {
            (void)close(s);
            subiter__handoff_run(fds[0], fds[1], fds[2], false);
        }
        close_fds(fds, nfds);
        if (pid < 0) {
            rep.err = -errno;
            (void)send_fds(s, &rep, sizeof rep, NULL, 0);
            continue;
        }
        rep.pid = (int32_t)pid;
        (void)send_fds(s, &rep, sizeof rep, &pidfd, 1);
        (void)close(pidfd);
    }
}

/* Forget the zygote (it died, or it belongs to the process we were forked
 * from), reaping it if it is ours. */
static void drop_locked(void)
{
    if (sock >= 0) {
        (void)close(sock);
        sock = -1;
    }
    if (zygote > 0 && starter == getpid()) {
        /* Our end is closed, so it exits if it has not yet; it is our
         * unreaped child, so its pid is still ours to wait for. */
        while (waitpid(zygote, NULL, 0) < 0 && errno == EINTR) {
        }
    }
    zygote = 0;
    starter = 0;
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
    got = recv_fds(sock, &rep, sizeof rep, &got_fd, 1, &nfds);
    if (got == 0 || got == -ECONNRESET) {
        return -EPIPE;
    }
    if (got < 0) {
        return (int)got;
    }
    if (got != (ssize_t)sizeof rep || (rep.err == 0 && rep.pid <= 0)) {
        close_fds(&got_fd, nfds);
        return -EPROTO;
    }
    if (rep.err < 0) {
        close_fds(&got_fd, nfds);
        return rep.err;
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
