/* start.h: the start methods other than fork (forkserver.c, spawn.c) and
 * the hand-off they share (handoff.c): everything a worker needs, written
 * by the parent into a memfd the worker reads, since neither a zygote's
 * fork nor an exec'd program shares the parent's heap. */
#ifndef SUBITER_START_H
#define SUBITER_START_H

/* The environment variable that tells a spawned program it is a worker:
 * "HANDOFF_FD,REGION_FD,EVENT_FD". */
#define SUBITER__SPAWN_ENV "SUBITER_SPAWN_HANDOFF"

/*
 * Parent: write the hand-off for `a` (and arg_len bytes of a->arg) into a
 * new CLOEXEC memfd. With by_name, fn and init travel as symbol names
 * (SUBITER_SPAWN); otherwise as addresses (SUBITER_FORKSERVER, same
 * image). Returns the fd, or -errno with `why` saying what went wrong
 * (-EINVAL: a function is not exported).
 */
SUBITER__HIDDEN int subiter__handoff_create(const struct subiter__child_args *a,
                                            size_t arg_len, bool by_name,
                                            char *why, size_t n);

/* Worker: read the hand-off from hfd (closed), then run the worker on the
 * region memfd and the parent's eventfd. Never returns. */
SUBITER__HIDDEN _Noreturn void subiter__handoff_run(int hfd, int memfd, int efd,
                                                    bool by_name);

/*
 * Parent: start a worker by `method` (SUBITER_FORKSERVER or SUBITER_SPAWN)
 * from the hand-off fd hfd, the region's memfd and the eventfd (all stay
 * the caller's). On success *pid is the worker, a child of this process,
 * and *pidfd its pidfd or -1 (then watch it by pid). On failure -errno and
 * `why`.
 */
SUBITER__HIDDEN int subiter__start_worker(int method, int hfd, int memfd,
                                          int efd, pid_t *pid, int *pidfd,
                                          char *why, size_t n);

/* SUBITER_FORKSERVER's part of subiter__start_worker(). */
SUBITER__HIDDEN int subiter__forkserver_fork(int hfd, int memfd, int efd,
                                             pid_t *pid, int *pidfd, char *why,
                                             size_t n);
/* SUBITER_SPAWN's part of subiter__start_worker(). */
SUBITER__HIDDEN int subiter__spawn(int hfd, int memfd, int efd, pid_t *pid,
                                   char *why, size_t n);

/* May `arg` go to a worker started by `method` (FORKSERVER and SPAWN need
 * arg_len)? */
SUBITER__HIDDEN bool subiter__handoff_arg_ok(int method, const void *arg,
                                             size_t arg_len);
/* Test hook: with `on`, this thread's FORKSERVER and SPAWN opens pass an
 * arg without arg_len as its pointer value (for suites written for fork
 * that pass numbers, or pages the zygote shares, as arg). */
SUBITER__HIDDEN void subiter__handoff_raw_arg(bool on);

/* A worker of ours has started (its first status came, or it failed, or
 * its handle is closed): if an open took the forkserver's spare, ask the
 * zygote for the next one now. Made while the worker that took the spare
 * started, the next spare competed with it for the CPUs. */
SUBITER__HIDDEN void subiter__forkserver_settled(void);

/* Bind the application's lazily bound calls of the generator's API
 * (subiter_yield() and the like) in this process, once, so that the
 * workers it makes, copies of it, do not bind them each (bind.c). */
SUBITER__HIDDEN void subiter__bind_generator_calls(void);

/* Test hook: the zygote's pid, 0 when none runs for this process. */
SUBITER__HIDDEN pid_t subiter__forkserver_pid(void);
/* Test hook: the zygote's spare (a child of this process that waits to be
 * a worker), 0 when none; waits until the zygote told of every spare it
 * made. */
SUBITER__HIDDEN pid_t subiter__forkserver_spare(void);

#endif /* SUBITER_START_H */
