/* proc.h: the worker processes as the parent sees them (proc.c): pidfd,
 * life lock, reaping, signals, and how one ended, in words. */
#ifndef SUBITER_PROC_H
#define SUBITER_PROC_H

/* What the parent knows about one worker process. */
struct subiter__proc {
    pid_t pid;
    int pidfd; /* -1 when pidfd_open() is unavailable (valgrind) */
    /* Without a pidfd: /proc/<pid>, opened right after fork(). It stays
     * bound to the worker: once anyone reaped it, lookups in it fail,
     * whoever has the pid number then. -1: none (no /proc). */
    int procfd;
    _Atomic uint32_t *life; /* the worker's life lock (life.h), or NULL */
    bool reaped;            /* waited for: pid may be reused, never signal it */
    bool signalled;         /* close had to send SIGTERM or SIGKILL */
    int wait_status;        /* valid when reaped and status_known */
    bool status_known;
};

SUBITER__HIDDEN void subiter__proc_init(struct subiter__proc *p);
/* Test hook: with `on`, workers forked by this thread from now on are
 * watched without a pidfd, as under valgrind (death seen between
 * SUBITER__FALLBACK_SLICE_MS sleeps, through the life lock and /proc). */
SUBITER__HIDDEN void subiter__proc_no_pidfd(bool on);
/* Watch a freshly forked worker: its pidfd, or /proc/<pid>; `life` is the
 * life word in its region (valid until subiter__proc_close()). */
SUBITER__HIDDEN void subiter__proc_watch(struct subiter__proc *p, pid_t pid,
                                         _Atomic uint32_t *life);
/* Has the worker exited (without reaping it)? */
SUBITER__HIDDEN bool subiter__proc_exited(struct subiter__proc *p);
/* Reap, blocking at most until deadline_ns (0: forever). 0 or -ETIMEDOUT.
 * A worker someone else reaped counts as reaped, its status unknown. */
SUBITER__HIDDEN int subiter__proc_reap(struct subiter__proc *p,
                                       int64_t deadline_ns);
/* Send `sig` while the worker provably has its pid (never to a recycled
 * pid): through the pidfd, or without one only while /proc or the life
 * lock shows it alive. */
SUBITER__HIDDEN void subiter__proc_signal(struct subiter__proc *p, int sig);
/* Kill with SIGKILL (if not reaped) and reap. */
SUBITER__HIDDEN void subiter__proc_kill(struct subiter__proc *p);
/* Close the pidfd or /proc fd (the process is reaped or given up on) and
 * forget the life word (its region is about to go). */
SUBITER__HIDDEN void subiter__proc_close(struct subiter__proc *p);
/* "killed by signal 11 (SIGSEGV)", "exited with status 3", ... */
SUBITER__HIDDEN void subiter__proc_describe(const struct subiter__proc *p,
                                            char *buf, size_t n);

#endif /* SUBITER_PROC_H */
