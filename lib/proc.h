/* proc.h: the worker processes as the parent sees them (proc.c): pidfd,
 * reaping, signals, and how one ended, in words. */
#ifndef SUBITER_PROC_H
#define SUBITER_PROC_H

/* What the parent knows about one worker process. */
struct subiter__proc {
    pid_t pid;
    int pidfd;       /* -1 when pidfd_open() is unavailable (valgrind) */
    bool reaped;     /* waited for: pid may be reused, never signal it */
    bool signalled;  /* close had to send SIGTERM or SIGKILL */
    int wait_status; /* valid when reaped and status_known */
    bool status_known;
};

SUBITER__HIDDEN void subiter__proc_init(struct subiter__proc *p);
/* Test hook: with `on`, workers forked by this thread from now on are
 * watched without a pidfd, as under valgrind (death seen between
 * SUBITER__FALLBACK_SLICE_MS sleeps, signals only to an unreaped pid). */
SUBITER__HIDDEN void subiter__proc_no_pidfd(bool on);
/* Open the pidfd (or fall back) for a freshly forked worker. */
SUBITER__HIDDEN void subiter__proc_watch(struct subiter__proc *p, pid_t pid);
/* Has the worker exited (without reaping it)? */
SUBITER__HIDDEN bool subiter__proc_exited(struct subiter__proc *p);
/* Reap, blocking at most until deadline_ns (0: forever). 0 or -ETIMEDOUT. */
SUBITER__HIDDEN int subiter__proc_reap(struct subiter__proc *p,
                                       int64_t deadline_ns);
/* Send `sig` unless the worker is reaped (never to a recycled pid). */
SUBITER__HIDDEN void subiter__proc_signal(struct subiter__proc *p, int sig);
/* Kill with SIGKILL (if not reaped) and reap. */
SUBITER__HIDDEN void subiter__proc_kill(struct subiter__proc *p);
/* Close the pidfd (the process itself is reaped or given up on). */
SUBITER__HIDDEN void subiter__proc_close(struct subiter__proc *p);
/* "killed by signal 11 (SIGSEGV)", "exited with status 3", ... */
SUBITER__HIDDEN void subiter__proc_describe(const struct subiter__proc *p,
                                            char *buf, size_t n);

#endif /* SUBITER_PROC_H */
