/* subiter.h: the one public header of subiter.
 *
 * subiter runs a generator in a child process and streams the items it
 * yields to the parent through a bounded shared-memory ring.
 *
 *     subiter *it;
 *     subiter_item item;
 *     int r = subiter_open(&it, gen, NULL, NULL);
 *     if (r == 0 && (r = subiter_start(it, NULL, 0)) == 0) {
 *         while ((r = subiter_next(it, &item)) > 0)
 *             use(item.data, item.len);
 *     }
 *     if (r < 0)
 *         fprintf(stderr, "%s\n", subiter_errmsg(it));
 *     subiter_close(it);
 *
 * Fork preconditions (SUBITER_FORK, the default start method): the worker is
 * a fork() of the calling process. It runs user code (the initializer and
 * the generator) in that copy. If other threads of the caller held a lock
 * (malloc's, stdio's, the caller's own) at the moment of the fork, that lock
 * stays held in the worker, so open workers before starting threads, or keep
 * the initializer and generator free of such locks.
 *
 * The worker gets the parent-death signal (SIGKILL) from the *thread* that
 * called subiter_open(): if that thread exits while the handle is open, the
 * worker is killed. Open and use handles from threads that outlive them.
 *
 * The library installs no signal handler and reaps only its own children.
 * If the application sets SIGCHLD to SIG_IGN (or SA_NOCLDWAIT), the kernel
 * reaps workers itself and their exit status is lost: error messages then
 * say that the status is unavailable.
 */
#ifndef SUBITER_H
#define SUBITER_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SUBITER_VERSION_MAJOR 0
#define SUBITER_VERSION_MINOR 1
#define SUBITER_VERSION_PATCH 0
#define SUBITER_VERSION_STRING "0.1.0"
/** SUBITER_VERSION_NUMBER: 0xMMmmpp, for compile-time comparisons. */
#define SUBITER_VERSION_NUMBER                                                 \
    ((SUBITER_VERSION_MAJOR << 16) | (SUBITER_VERSION_MINOR << 8) |            \
     SUBITER_VERSION_PATCH)

#if defined(__GNUC__) || defined(__clang__)
#define SUBITER_API __attribute__((visibility("default")))
#define SUBITER_NODISCARD __attribute__((warn_unused_result))
#define SUBITER_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SUBITER_API
#define SUBITER_NODISCARD
#define SUBITER_PRINTF(f, a)
#endif

/*
 * Error codes. Library codes count down from -1000; system and argument
 * errors are -errno (-EINVAL, -ENOMEM, -EMSGSIZE, ...). SUBITER_STOPPED is
 * positive: it is not an error but subiter_yield()'s "return now".
 *
 * X(name, value, description): one table generates the enum,
 * subiter_strerror() and subiter_errname().
 */
#define SUBITER_ERRNO_MAP(X)                                                   \
    X(EINIT, -1000, "the worker's initializer failed")                         \
    X(EITER, -1001, "the generator failed")                                    \
    X(ECHILD, -1002, "the worker process died")                                \
    X(ETIMEDOUT, -1003, "the worker sent nothing within the timeout")          \
    X(EPROTO, -1004, "the worker broke the protocol")                          \
    X(ECLOSED, -1005, "the handle is dead after an earlier error")             \
    X(ECANCELED, -1006, "the task was cancelled before it ended")

enum {
#define SUBITER_X_(name, value, desc) SUBITER_##name = (value),
    SUBITER_ERRNO_MAP(SUBITER_X_)
#undef SUBITER_X_
    /** Returned by subiter_yield() & co when the parent asked to stop. */
    SUBITER_STOPPED = 1
};

/** Start methods (subiter_opts.start_method). */
enum {
    SUBITER_FORK = 0,       /**< fork() the caller (default) */
    SUBITER_FORKSERVER = 1, /**< not built yet: -ENOTSUP */
    SUBITER_SPAWN = 2       /**< not built yet: -ENOTSUP */
};

/** Largest input subiter_start() accepts; larger gives -EMSGSIZE. */
#define SUBITER_INPUT_MAX (64u * 1024u)

/** Parent's handle on one worker process. */
typedef struct subiter subiter;
/** Child's context, passed to the initializer and the generator. */
typedef struct subiter_gen subiter_gen;

/** An item: a borrowed view of ring memory. */
typedef struct subiter_item {
    const void *data; /**< borrowed: valid until the next call on the handle */
    size_t len;       /**< its length in bytes (may be 0) */
} subiter_item;

/**
 * Initializer: runs once in the worker, before the first iteration.
 * @return 0 to go on; anything else (typically `return subiter_fail(g,
 * ...)`) makes subiter_open() fail with SUBITER_EINIT.
 */
typedef int (*subiter_init_fn)(subiter_gen *g, void *arg);

/**
 * Generator: runs in the worker once per subiter_start(). It yields items
 * with subiter_yield() or subiter_reserve()/subiter_commit() and returns 0
 * at the end, or a negative code on failure (the parent's subiter_next()
 * then returns SUBITER_EITER). When a yield returns SUBITER_STOPPED, return
 * at once: whatever is returned then, the iteration ends cleanly.
 */
typedef int (*subiter_iter_fn)(subiter_gen *g, void *arg);

/**
 * Options. Initialise with SUBITER_OPTS_INIT, then change fields. Zero in
 * any field but `size` means "the default".
 */
typedef struct subiter_opts {
    size_t size;          /**< sizeof(subiter_opts), set by SUBITER_OPTS_INIT */
    subiter_init_fn init; /**< optional initializer, run once in the worker */
    unsigned buffer_items; /**< max items yielded and not yet consumed (32) */
    size_t buffer_bytes;   /**< item ring capacity, rounded up to a power of
                                two, 16 KiB .. 1 GiB (4 MiB) */
    int timeout_ms;        /**< inactivity timeout; <= 0: none (0) */
    int grace_ms;          /**< close: wait after ABORT, then after SIGTERM
                                (1000; must be >= 0) */
    int start_method;      /**< SUBITER_FORK (default) */
} subiter_opts;

#define SUBITER_OPTS_DEFAULT_BUFFER_ITEMS 32u
#define SUBITER_OPTS_DEFAULT_BUFFER_BYTES ((size_t)4 << 20)
#define SUBITER_OPTS_DEFAULT_GRACE_MS 1000

/** Designated initializer with the defaults. */
#define SUBITER_OPTS_INIT                                                      \
    {                                                                          \
        .size = sizeof(subiter_opts), .init = NULL,                            \
        .buffer_items = SUBITER_OPTS_DEFAULT_BUFFER_ITEMS,                     \
        .buffer_bytes = SUBITER_OPTS_DEFAULT_BUFFER_BYTES, .timeout_ms = 0,    \
        .grace_ms = SUBITER_OPTS_DEFAULT_GRACE_MS,                             \
        .start_method = SUBITER_FORK                                           \
    }

/**
 * Start a worker: fork, run the initializer, wait for its verdict.
 *
 * @param out   set to a new handle whenever memory allowed, even on failure
 *              (as sqlite3_open does): new: free with subiter_close().
 * @param fn    the generator, run in the worker once per subiter_start().
 * @param arg   passed to the initializer and the generator (in the worker's
 *              copy of the address space).
 * @param opts  options, or NULL for all defaults. Read only during the call.
 * @return 0 on success.
 * @retval SUBITER_EINIT     the initializer failed; errmsg is its message.
 * @retval SUBITER_ECHILD    the worker died before it was ready.
 * @retval SUBITER_ETIMEDOUT the initializer ran past timeout_ms; the worker
 *                           has been killed and reaped.
 * @retval -EINVAL  NULL out or fn, opts->size too small, non-zero bytes past
 *                  the fields this version knows, an unknown start_method,
 *                  negative grace_ms, buffer_bytes over 1 GiB.
 * @retval -ENOTSUP a start method that is not built yet.
 * @retval -ENOMEM  out of memory (then *out may be NULL).
 * @retval -errno   memfd_create(), mmap(), fork() and friends failed.
 */
SUBITER_API SUBITER_NODISCARD int subiter_open(subiter **out,
                                               subiter_iter_fn fn, void *arg,
                                               const subiter_opts *opts);

/**
 * Start an iteration: send START_ITERATION with `input`, do not wait.
 *
 * @param input  bytes the generator reads with subiter_input(); copied
 *               before the call returns. NULL when len is 0.
 * @return 0; the handle is then iterating.
 * @retval -EINVAL   NULL handle, NULL input with len > 0, or an iteration is
 *                   running (it is not disturbed).
 * @retval -EMSGSIZE len > SUBITER_INPUT_MAX.
 * @retval SUBITER_ECLOSED the handle is dead.
 * @retval SUBITER_EPROTO  the worker stopped reading commands (killed).
 */
SUBITER_API SUBITER_NODISCARD int subiter_start(subiter *it, const void *input,
                                                size_t len);

/**
 * Get the next item of the running iteration, waiting for it.
 *
 * Items the worker published before it failed, died or finished are all
 * delivered, in order, before the outcome.
 *
 * @param item  on 1: a borrowed view of ring memory, valid until the next
 *              call on this handle or subiter_close(); cleared otherwise.
 *              The worker shares that memory: the framing around an item
 *              is checked, but a misbehaving worker could still change
 *              the item's bytes while you read them, so copy what you
 *              validate before you trust it.
 * @return 1 with an item; 0 at the end of the iteration (and on every later
 *         call until the next start; also after a stop or a failure).
 * @retval SUBITER_EITER     the generator failed; errmsg is its message. The
 *                           worker is ready for the next start.
 * @retval SUBITER_ECHILD    the worker died; errmsg says how.
 * @retval SUBITER_ETIMEDOUT nothing came for timeout_ms; worker killed.
 * @retval SUBITER_EPROTO    the worker broke the protocol; worker killed.
 * @retval SUBITER_ECLOSED   the handle is dead.
 * @retval -EINVAL  NULL argument, or no iteration was ever started.
 * @retval -ENOMEM  out of memory decoding a status (the handle stays usable).
 */
SUBITER_API SUBITER_NODISCARD int subiter_next(subiter *it, subiter_item *item);

/**
 * Stop the running iteration: send STOP_ITERATION and discard items until
 * the generator returns. The worker stays alive for the next start. The
 * generator sees the stop only when it yields; the wait is bounded by
 * timeout_ms.
 *
 * @return 0 (also when nothing was running).
 * @retval SUBITER_ECHILD, SUBITER_ETIMEDOUT, SUBITER_EPROTO as subiter_next().
 * @retval SUBITER_ECLOSED the handle is dead.
 * @retval -EINVAL NULL handle.
 */
SUBITER_API int subiter_stop(subiter *it);

/**
 * End the worker and free the handle (NULL-safe; always frees).
 *
 * Sends ABORT, waits grace_ms, sends SIGTERM, waits grace_ms, sends SIGKILL,
 * then reaps. Takes at most about 2 x grace_ms.
 *
 * @return 0 when the worker exited with status 0 on ABORT (or by itself
 *         after its initializer failed), and when there never was one.
 * @retval SUBITER_ECHILD    it had died before (a call returned
 *                           SUBITER_ECHILD, ETIMEDOUT or EPROTO), or it
 *                           exited otherwise.
 * @retval SUBITER_ETIMEDOUT it had to be signalled.
 */
SUBITER_API int subiter_close(subiter *it);

/**
 * The message of the last failed call on this handle; "" when none (a
 * successful subiter_start() clears it). For SUBITER_EINIT / SUBITER_EITER
 * it is the worker's subiter_fail() text.
 * @return borrowed: valid until the next call on the handle. "out of
 *         memory" for a NULL handle.
 */
SUBITER_API const char *subiter_errmsg(const subiter *it);

/** A static description of any library code, SUBITER_STOPPED or -errno. */
SUBITER_API const char *subiter_strerror(int code);

/** A static name: "SUBITER_ECHILD", "EINVAL", ...; "unknown" otherwise. */
SUBITER_API const char *subiter_errname(int code);

/** The worker's pid (also after it died); 0 if there never was one. */
SUBITER_API pid_t subiter_pid(const subiter *it);

/**
 * What went wrong, for programs (subiter_errmsg() is for people). Set
 * `size` (SUBITER_ERRINFO_INIT does) before the call; fields this version
 * does not know are left alone.
 */
typedef struct subiter_errinfo {
    size_t size;        /**< sizeof(subiter_errinfo) */
    int code;           /**< the last error returned on the handle, or 0 */
    pid_t pid;          /**< the worker's pid, 0 if none */
    int exited;         /**< 1: the worker exited by itself ... */
    int exit_status;    /**< ... with this status */
    int term_signal;    /**< the signal that killed it, or 0 */
    int core_dumped;    /**< 1 if it dumped core */
    int status_unknown; /**< 1: reaped by the kernel (SIGCHLD ignored) */
    int oom_suspected;  /**< 1: SIGKILL while the OOM-kill counter rose */
    int errnum;         /**< the worker's errno for SUBITER_EITER/EINIT */
    unsigned long long iteration; /**< iteration number, 1-based; 0: none */
    unsigned long long items;     /**< items that iteration delivered */
} subiter_errinfo;

#define SUBITER_ERRINFO_INIT                                                   \
    {                                                                          \
        .size = sizeof(subiter_errinfo)                                        \
    }

/**
 * Fill `out` with what is known of the handle's last error and its worker.
 * @param out  written up to out->size bytes.
 * @return 0.
 * @retval -EINVAL NULL argument, or out->size too small.
 */
SUBITER_API int subiter_get_errinfo(const subiter *it, subiter_errinfo *out);

/** The library's version, e.g. "0.1.0" (static). */
SUBITER_API const char *subiter_version(void);

/* ---- pools: many workers on one generator ---- */

/** A pool of workers running the same generator. */
typedef struct subiter_pool subiter_pool;

/** subiter_pool_opts.order, for sharded iteration. */
enum {
    SUBITER_POOL_ORDERED = 0,  /**< round robin over the workers: the same
                                    sequence every run (default) */
    SUBITER_POOL_UNORDERED = 1 /**< whichever worker has an item first */
};

/** subiter_pool_submit() flags. */
enum {
    SUBITER_POOL_NOWAIT = 1 /**< -EAGAIN instead of waiting for room */
};

/** subiter_pool_item.kind. */
enum {
    SUBITER_POOL_ITEM = 0,    /**< an item (data, len) */
    SUBITER_POOL_TASK_END = 1 /**< task `task` ended with `code` */
};

/**
 * Result callback: one item of task `task`. `data` is borrowed ring memory,
 * valid until the callback returns. Called from inside the pool's calls
 * (the library starts no thread); it must not call subiter_pool_* other
 * than subiter_pool_errmsg() and subiter_pool_get_stats() (-EBUSY).
 */
typedef void (*subiter_result_fn)(subiter_pool *p, unsigned long long task,
                                  const void *data, size_t len, void *user);
/**
 * Error callback: task `task` ended with `code` (SUBITER_EITER,
 * SUBITER_ECHILD, SUBITER_ETIMEDOUT, SUBITER_EPROTO, SUBITER_EINIT or
 * SUBITER_ECANCELED) and `errmsg` says why. Same rules as above.
 */
typedef void (*subiter_error_fn)(subiter_pool *p, unsigned long long task,
                                 int code, const char *errmsg, void *user);

/**
 * Pool options. Initialise with SUBITER_POOL_OPTS_INIT, then change fields;
 * every field is taken as given (no "0 means default" here, but for
 * workers and min_workers).
 */
typedef struct subiter_pool_opts {
    size_t size;          /**< sizeof(subiter_pool_opts) */
    unsigned workers;     /**< (maximum) number of workers; 0: the number
                               of online CPUs */
    unsigned min_workers; /**< tasks: workers kept alive while idle; at most
                               `workers` (0: all of them, the default) */
    int idle_ms;          /**< tasks: a worker above min_workers retires
                               after this long idle (1000) */
    int order;            /**< SUBITER_POOL_ORDERED or _UNORDERED */
    unsigned rank;        /**< this pool's index among world_size (0) */
    unsigned world_size;  /**< pools sharing one dataset (1, >= 1) */
    int restart_shards;   /**< 1: a dead worker's shard is rerun by its
                               replacement, skipping the items already
                               delivered (a deterministic generator then
                               loses and repeats nothing); 0: it fails the
                               iteration (default) */
    unsigned queue_max;   /**< tasks: submitted and not yet taken (64) */
    int task_timeout_ms;  /**< tasks: wall time allowed per task, paused
                               time excluded; <= 0: none (0) */
    unsigned max_retries; /**< tasks: reruns of a task whose worker died;
                               with restart_shards, reruns of a shard (1) */
    subiter_result_fn on_result; /**< tasks: items go here instead of to
                                      subiter_pool_next() */
    subiter_error_fn on_error;   /**< tasks: failures go here */
    void *user;                  /**< passed to the callbacks */
    const subiter_opts *worker;  /**< each worker's options (init, buffers,
                                      inactivity timeout, grace); NULL:
                                      the defaults, but buffer_items
                                      SUBITER_POOL_DEFAULT_BUFFER_ITEMS.
                                      Given, they are taken as they are:
                                      SUBITER_OPTS_INIT's buffer_items (32)
                                      makes an ordered merge of small
                                      items about 3 x slower */
} subiter_pool_opts;

/** A pool worker's buffer_items when opts.worker is NULL: an ordered merge
 * waits for one worker while the others must keep producing. */
#define SUBITER_POOL_DEFAULT_BUFFER_ITEMS 1024u

#define SUBITER_POOL_OPTS_INIT                                                 \
    {                                                                          \
        .size = sizeof(subiter_pool_opts), .workers = 0, .min_workers = 0,     \
        .idle_ms = 1000, .order = SUBITER_POOL_ORDERED, .rank = 0,             \
        .world_size = 1, .restart_shards = 0, .queue_max = 64,                 \
        .task_timeout_ms = 0, .max_retries = 1, .on_result = NULL,             \
        .on_error = NULL, .user = NULL, .worker = NULL                         \
    }

/** What subiter_pool_next() returns: an item, or the end of a task. */
typedef struct subiter_pool_item {
    int kind;                /**< SUBITER_POOL_ITEM or SUBITER_POOL_TASK_END */
    const void *data;        /**< item: borrowed, valid until the next call on
                                  the pool (same caveat as subiter_next()) */
    size_t len;              /**< item: its length */
    unsigned worker;         /**< the pool's worker index, 0 .. workers - 1 */
    unsigned long long task; /**< the task id; 0 in sharded iteration */
    int code;                /**< task end: 0 or what it failed with */
    const char *errmsg;      /**< task end: why ("" on success); borrowed like
                                  data */
} subiter_pool_item;

/** Counters since subiter_pool_open(). */
typedef struct subiter_pool_stats {
    size_t size;                  /**< sizeof(subiter_pool_stats) */
    unsigned long long submitted; /**< tasks accepted */
    unsigned long long done;      /**< tasks that succeeded */
    unsigned long long failed;    /**< tasks that ended with an error
                                       (timed out and cancelled included) */
    unsigned long long retried;   /**< reruns after a worker died */
    unsigned long long timed_out; /**< tasks past task_timeout_ms */
    unsigned long long cancelled; /**< tasks ended by finalize or close */
    unsigned long long replaced;  /**< workers that died and were replaced */
    unsigned workers;             /**< workers alive now */
    unsigned busy;                /**< of which running a task or a shard */
    unsigned queued;              /**< tasks waiting for a worker */
} subiter_pool_stats;

#define SUBITER_POOL_STATS_INIT                                                \
    {                                                                          \
        .size = sizeof(subiter_pool_stats)                                     \
    }

/**
 * Start a pool: fork `min_workers` workers (all `workers` by default) and
 * wait for their initializers.
 *
 * @param out  set to a new pool whenever memory allowed, even on failure:
 *             free it with subiter_pool_close().
 * @param opts options, or NULL for all defaults. Read only during the call.
 * @return 0, or what subiter_open() returns (SUBITER_EINIT names the
 *         worker whose initializer failed).
 * @retval -EINVAL  NULL out or fn, opts->size too small, min_workers >
 *                  workers, world_size 0, rank >= world_size, an unknown
 *                  order, queue_max 0, negative idle_ms, bad worker opts.
 */
SUBITER_API SUBITER_NODISCARD int
subiter_pool_open(subiter_pool **out, subiter_iter_fn fn, void *arg,
                  const subiter_pool_opts *opts);

/**
 * Sharded iteration: start the generator on every worker with the same
 * input (forking the missing workers first). Inside, subiter_worker_id()
 * and subiter_num_workers() say which shard to produce.
 * @retval -EINVAL an iteration is running, or tasks are queued or running.
 * @retval -EMSGSIZE, SUBITER_EINIT and the errors of subiter_pool_open().
 */
SUBITER_API SUBITER_NODISCARD int
subiter_pool_start(subiter_pool *p, const void *input, size_t len);

/**
 * The next item of the sharded iteration, or the next event of the tasks.
 *
 * Sharded iteration: 1 with an item (kind SUBITER_POOL_ITEM); 0 once every
 * shard ended. A shard that fails ends the iteration: the other workers are
 * stopped, a dead one is replaced (or, with restart_shards, its shard is
 * rerun and the call goes on; else the items it published and you did
 * not read yet are dropped), and the call returns SUBITER_EITER,
 * SUBITER_ECHILD, SUBITER_ETIMEDOUT or SUBITER_EPROTO with the worker, its
 * shard and the reason in subiter_pool_errmsg(). The pool stays usable.
 *
 * Tasks: 1 with an item or a task's end (a retried task's items may come
 * twice: the end says how it went); 0 when no task is queued or running.
 * With on_result set, items go to it, successful ends only to the stats,
 * and failed ends to on_error, or here when on_error is NULL.
 *
 * @retval -EINVAL NULL argument, or neither an iteration nor a task.
 * @retval -EBUSY  called from a callback.
 */
SUBITER_API SUBITER_NODISCARD int subiter_pool_next(subiter_pool *p,
                                                    subiter_pool_item *item);

/**
 * Stop the sharded iteration (STOP to every worker, their items dropped).
 * @return 0, also when none runs; SUBITER_ECHILD, SUBITER_ETIMEDOUT or
 *         SUBITER_EPROTO when a worker was lost while it stopped (it is
 *         replaced, and the pool stays usable). -EINVAL, -EBUSY.
 */
SUBITER_API int subiter_pool_stop(subiter_pool *p);

/**
 * Queue a task: the input of one iteration on the next idle worker (a new
 * worker is forked while fewer than `workers` run). Its items come back
 * tagged with *task, through subiter_pool_next() or the callbacks.
 *
 * @param flags  0, or SUBITER_POOL_NOWAIT.
 * @param task   set to the task's id (1, 2, ...); may be NULL.
 * @return 0.
 * @retval -EAGAIN    SUBITER_POOL_NOWAIT and queue_max tasks are waiting.
 * @retval -EDEADLK   the queue is full, no on_result callback is set, and
 *                    every busy worker waits for subiter_pool_next() to take
 *                    its items: waiting would never end.
 * @retval -ESHUTDOWN subiter_pool_finalize() was called.
 * @retval -EINVAL    a sharded iteration runs, NULL input with len > 0.
 * @retval -EMSGSIZE  len > SUBITER_INPUT_MAX.
 * @retval -EBUSY     called from a callback.
 * @retval -ENOMEM    out of memory.
 */
SUBITER_API SUBITER_NODISCARD int subiter_pool_submit(subiter_pool *p,
                                                      const void *input,
                                                      size_t len, int flags,
                                                      unsigned long long *task);

/**
 * Run the pool until no task is queued or running, calling the callbacks.
 * @param timeout_ms  <= 0: no limit.
 * @return 0.
 * @retval -ETIMEDOUT the time ran out first (the tasks go on).
 * @retval -EINVAL    no on_result callback is set (use subiter_pool_next()).
 * @retval -EBUSY     called from a callback.
 */
SUBITER_API int subiter_pool_wait(subiter_pool *p, int timeout_ms);

/**
 * Take no more tasks; let the queued and running ones finish within
 * grace_ms, then end the rest: queued ones and running ones fail with
 * SUBITER_ECANCELED and a message each (running workers get ABORT, then
 * SIGTERM and SIGKILL as in subiter_close()).
 *
 * With on_result set, the call runs it all and returns the number of
 * tasks cancelled. Without, it returns 0 at once and subiter_pool_next()
 * delivers the rest, ending with 0.
 * @retval -EINVAL NULL pool or negative grace_ms. -EBUSY from a callback.
 */
SUBITER_API int subiter_pool_finalize(subiter_pool *p, int grace_ms);

/**
 * Pause (SIGSTOP) or resume (SIGCONT) worker `worker`, or all of them and
 * the handing out of tasks with -1. A paused worker takes no task, and the
 * time it spends paused does not count against task_timeout_ms.
 * @retval -EINVAL NULL pool, or no such worker (alive now).
 */
SUBITER_API int subiter_pool_pause(subiter_pool *p, int worker);
SUBITER_API int subiter_pool_resume(subiter_pool *p, int worker);

/** Fill `out` (set out->size first). 0, or -EINVAL. */
SUBITER_API int subiter_pool_get_stats(const subiter_pool *p,
                                       subiter_pool_stats *out);

/** The pid of worker `worker`, 0 when it has none now. */
SUBITER_API pid_t subiter_pool_worker_pid(const subiter_pool *p,
                                          unsigned worker);

/** The message of the last failed call; "" when none. As subiter_errmsg().*/
SUBITER_API const char *subiter_pool_errmsg(const subiter_pool *p);

/**
 * End every worker (ABORT, SIGTERM, SIGKILL with the workers' grace_ms, all
 * at once: about 2 x grace_ms at most) and free the pool. Queued tasks are
 * dropped without callbacks (finalize first to hear of them). NULL-safe.
 * @return 0; SUBITER_ETIMEDOUT when a worker had to be signalled;
 *         SUBITER_ECHILD when one exited otherwise than with status 0.
 * @retval -EBUSY called from a callback (nothing is freed then).
 */
SUBITER_API int subiter_pool_close(subiter_pool *p);

/* ---- worker side: call only inside the initializer or the generator ---- */

/**
 * Copy one item into the ring, waiting while it is full.
 * @return 0: go on.
 * @retval SUBITER_STOPPED the parent asked to stop (or to abort): return.
 * @retval -EMSGSIZE the item can never fit the ring; the parent's errmsg
 *                   names both sizes if the generator returns this.
 * @retval -EINVAL   called outside the generator, or NULL data with len > 0.
 */
SUBITER_API SUBITER_NODISCARD int subiter_yield(subiter_gen *g,
                                                const void *data, size_t len);

/**
 * Reserve room for an item of up to `len` bytes in the ring (zero copy).
 * Write the item into *buf, then publish it with subiter_commit().
 * @param buf  borrowed: ring memory, valid until subiter_commit().
 * @return 0, SUBITER_STOPPED, -EMSGSIZE, -EINVAL (also: a reservation is
 *         already open) as subiter_yield().
 */
SUBITER_API SUBITER_NODISCARD int subiter_reserve(subiter_gen *g, size_t len,
                                                  void **buf);

/**
 * Publish the reserved item with its final length (<= the reserved one).
 * @return 0; -EINVAL without a reservation or with a larger len.
 */
SUBITER_API SUBITER_NODISCARD int subiter_commit(subiter_gen *g, size_t len);

/**
 * Record a printf-style failure message for the parent.
 * @return SUBITER_EINIT in the initializer, SUBITER_EITER in the generator,
 *         so write `return subiter_fail(g, "bad record %d", n);`;
 *         -EINVAL outside them.
 */
SUBITER_API int subiter_fail(subiter_gen *g, const char *fmt, ...)
    SUBITER_PRINTF(2, 3);

/**
 * This worker's shard: rank x workers + its index in the pool; 0 for a
 * worker of subiter_open(). Items i with i % subiter_num_workers(g) ==
 * subiter_worker_id(g) cover a dataset once across all ranks.
 */
SUBITER_API unsigned subiter_worker_id(const subiter_gen *g);

/** The number of shards: world_size x workers; 1 outside a pool. */
SUBITER_API unsigned subiter_num_workers(const subiter_gen *g);

/**
 * The current iteration's input (from subiter_start()).
 * @param len  set to its length; may be NULL.
 * @return borrowed: valid until the generator returns. NULL (and 0) in the
 *         initializer, when there was none, or outside a callback.
 */
SUBITER_API const void *subiter_input(const subiter_gen *g, size_t *len);

#ifdef __cplusplus
}
#endif

#endif /* SUBITER_H */
