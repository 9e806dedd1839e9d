/* handle.h: what the pool builds on, from the handle (subiter.c). Each pool
 * slot holds one handle; these calls let the pool drive many handles from
 * one loop without waiting in any of them. */
#ifndef SUBITER_HANDLE_H
#define SUBITER_HANDLE_H

/* Fork a worker without waiting for its initializer (*out is set whenever
 * memory allowed; close it with subiter__close_many()). id: the worker's
 * identity, copied; NULL for a lone worker (shard 0 of 1, a drawn seed). */
SUBITER__HIDDEN int subiter__open_async(subiter **out, subiter_iter_fn fn,
                                        void *arg, const subiter_opts *opts,
                                        const struct subiter__ident *id);
/* subiter_start() with the START's arguments (NULL: skip nothing, the
 * handle's own count of iterations). */
SUBITER__HIDDEN int subiter__start_ex(subiter *it, const void *input,
                                      size_t len,
                                      const struct subiter__start_args *x);
/* Read a handle's options (NULL: the defaults) into *o: 0, or -EINVAL
 * (-ENOTSUP) with msg saying which field, named "<prefix><field>", and
 * why. */
SUBITER__HIDDEN int subiter__read_opts(subiter_opts *o,
                                       const subiter_opts *user,
                                       const char *prefix, char *msg, size_t n);
/* Has the worker published anything the parent has not read yet, or
 * exited? If so, *mark is where what it published so far ends. */
SUBITER__HIDDEN bool subiter__has_unread(subiter *it, uint32_t *mark);
/* Has the parent read everything up to `mark`? */
SUBITER__HIDDEN bool subiter__read_past(const subiter *it, uint32_t mark);
/* Look for the initializer's verdict: 1 ready, 0 not yet, or the error
 * subiter_open() would return. */
SUBITER__HIDDEN int subiter__init_step(subiter *it);
/* The same, waiting: 0 or the error. */
SUBITER__HIDDEN int subiter__init_wait(subiter *it);
/* How long the last waiting open by `method` waited for its worker's
 * first status, in ns (0: none yet): the spin window of the next one's
 * (subiter.c). */
SUBITER__HIDDEN int64_t subiter__first_wait_ns(int method);
/* Set up `w` as a wait for the first status of a worker started by
 * `method`: the forkserver's may spin longer (subiter.c). */
SUBITER__HIDDEN void subiter__start_wait(struct subiter__wait *w, int method);
/* Set up `w` as the handle's wait for its next status: quick when an
 * answer is due, from its last wait, and a start's while its worker has
 * not started. */
SUBITER__HIDDEN void subiter__status_wait(subiter *it, struct subiter__wait *w);
/* subiter_next() without waiting: -EAGAIN when nothing is there yet, and
 * without items_ok, -EBUSY when an item is next (it stays there). */
SUBITER__HIDDEN int subiter__next_nowait(subiter *it, subiter_item *item,
                                         bool items_ok);
/* Send STOP_ITERATION once for the running iteration. */
SUBITER__HIDDEN int subiter__send_stop(subiter *it);
/* Give back the item view, if one is out; with `wake`, also wake the
 * worker now if it sleeps and has half its buffer to fill again. */
SUBITER__HIDDEN void subiter__give_back(subiter *it, bool wake);
/* Tell the worker that the parent sleeps (on) or not. Arming sets the
 * flag only: the caller then runs subiter__sleep_barrier() once (for all
 * the handles it armed) and looks at the rings once more before it
 * sleeps (wait.h). */
SUBITER__HIDDEN void subiter__arm(subiter *it, bool on);
/* Is the worker awake on a CPU other than `me` (wait.h:
 * subiter__runs_elsewhere())? A pool spins only while one is. */
SUBITER__HIDDEN bool subiter__worker_elsewhere(const subiter *it, uint32_t me);
/* The eventfd and pidfd (-1: none) to poll for this handle. */
SUBITER__HIDDEN void subiter__fds(const subiter *it, int *efd, int *pidfd);
/* The pidfd said the worker exited: report it once its ring is read. */
SUBITER__HIDDEN void subiter__mark_exited(subiter *it);
/* Without a pidfd: look whether the worker exited, and mark it so. */
SUBITER__HIDDEN bool subiter__check_exit(subiter *it);
/* Is there a live worker behind the handle? */
SUBITER__HIDDEN bool subiter__live(const subiter *it);
/* Kill the worker and make the handle dead with `code`; errmsg says
 * "worker pid N <why> <where>; killed", or with why NULL, how it died.
 * Returns code. */
SUBITER__HIDDEN int subiter__kill(subiter *it, int code, const char *why);
/* Signal a live worker (SIGSTOP, SIGCONT). */
SUBITER__HIDDEN void subiter__signal(subiter *it, int sig);
/* Close n handles at once: ABORT to all, then one grace period for all,
 * SIGTERM, one more, SIGKILL. rc[i] is what subiter_close() returns. */
SUBITER__HIDDEN void subiter__close_many(subiter **v, int *rc, size_t n);

/* Why a worker was killed in a stop, for the handle's and the pool's
 * errmsg (%d: the bound in ms): it ignored the STOP for its grace_ms, or
 * for its inactivity timeout_ms (then its items, dropped in the worker,
 * may have kept coming: "sent nothing" would be untrue). */
#define SUBITER__STOP_OVERDUE                                                  \
    "did not return from its generator within grace_ms (%d ms) of STOP"
#define SUBITER__STOP_SILENT                                                   \
    "did not return from its generator within %d ms of STOP (timeout_ms)"

#endif /* SUBITER_HANDLE_H */
