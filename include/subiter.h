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
    const void *data; /**< borrowed: valid until the next call on the handle
                           or subiter_close() */
    size_t len;       /**< its length in bytes (may be 0) */
} subiter_item;

/**
 * Initializer: runs once in the worker, before the first iteration.
 * @param g    the worker's context, borrowed: valid until the callback
 *             returns.
 * @param arg  the `arg` given to subiter_open() or subiter_pool_open(), in
 *             the worker's copy of the address space.
 * @return 0 to go on; anything else (typically `return subiter_fail(g,
 * ...)`) makes subiter_open() fail with SUBITER_EINIT.
 */
typedef int (*subiter_init_fn)(subiter_gen *g, void *arg);

/**
 * Generator: runs in the worker once per subiter_start() (or pool start or
 * task). It yields items with subiter_yield() or
 * subiter_reserve()/subiter_commit(). When a yield returns
 * SUBITER_STOPPED, return at once: whatever is returned then, the
 * iteration ends cleanly.
 * @param g    the worker's context, borrowed: valid until the callback
 *             returns.
 * @param arg  as for the initializer.
 * @return 0 (or any value >= 0) at the end; a negative code on failure
 *         (the parent's subiter_next() then returns SUBITER_EITER, with
 *         the subiter_fail() message if there was one).
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
 * Thread safety: see the fork preconditions at the top of this header.
 *
 * @param out   set to a new handle whenever memory allowed, even on failure
 *              (as sqlite3_open does): new: free with subiter_close().
 * @param fn    the generator, run in the worker once per subiter_start().
 * @param arg   passed to the initializer and the generator. Borrowed: valid
 *              until the call returns; the worker reads its own copy,
 *              made by the fork inside this call.
 * @param opts  options, or NULL for all defaults. Borrowed: read only
 *              during the call.
 * @return 0 on success.
 * @retval SUBITER_EINIT     the initializer failed; errmsg is its message.
 * @retval SUBITER_ECHILD    the worker died before it was ready.
 * @retval SUBITER_ETIMEDOUT the initializer ran past timeout_ms; the worker
 *                           has been killed and reaped.
 * @retval SUBITER_EPROTO    the worker broke the protocol before it was
 *                           ready; it has been killed and reaped.
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
 * @param it     the handle.
 * @param input  bytes the generator reads with subiter_input(). Borrowed:
 *               read only during the call (copied). NULL when len is 0.
 * @param len    its length, at most SUBITER_INPUT_MAX.
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
 * @param it    the handle.
 * @param item  on 1: a view of ring memory, borrowed: valid until the next
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
 * timeout_ms. The view of the last item from subiter_next() ends.
 *
 * @param it  the handle.
 * @return 0 (also when nothing was running).
 * @retval SUBITER_ECHILD    the worker died; errmsg says how.
 * @retval SUBITER_ETIMEDOUT nothing came for timeout_ms; worker killed.
 * @retval SUBITER_EPROTO    the worker broke the protocol; worker killed.
 * @retval SUBITER_ECLOSED   the handle is dead.
 * @retval -EINVAL NULL handle.
 * @retval -ENOMEM out of memory decoding a status (the handle stays usable;
 *                 call again).
 */
SUBITER_API int subiter_stop(subiter *it);

/**
 * End the worker and free the handle (NULL-safe; always frees).
 *
 * Sends ABORT, waits grace_ms, sends SIGTERM, waits grace_ms, sends SIGKILL,
 * then reaps. Takes at most about 2 x grace_ms.
 *
 * @param it  the handle, or NULL. Takes ownership, even on failure: the
 *            item view and errmsg end with it.
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
 * @param it  the handle, or NULL.
 * @return borrowed: valid until the next call on the handle or
 *         subiter_close(). "out of memory" for a NULL handle (the one way
 *         subiter_open() leaves *out NULL). Never NULL.
 */
SUBITER_API const char *subiter_errmsg(const subiter *it);

/**
 * A description of any library code, SUBITER_STOPPED or -errno.
 * Thread safety: any thread, at any time.
 * @param code  the code.
 * @return borrowed: valid until the program ends (static). Never NULL.
 */
SUBITER_API const char *subiter_strerror(int code);

/**
 * The name of a code: "SUBITER_ECHILD", "EINVAL", ...
 * Thread safety: any thread, at any time.
 * @param code  the code.
 * @return borrowed: valid until the program ends (static); "unknown" for a
 *         code without a name. Never NULL.
 */
SUBITER_API const char *subiter_errname(int code);

/**
 * The worker's pid, also after it died (for messages). The library reaps
 * it: never wait for it or signal it yourself.
 * @param it  the handle, or NULL.
 * @return the pid; 0 for NULL or if there never was a worker.
 */
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
 * @param it   the handle.
 * @param out  set out->size first (SUBITER_ERRINFO_INIT does); its first
 *             sizeof(subiter_errinfo) bytes are written, the rest left
 *             alone. Every field is a value: nothing in it is borrowed.
 * @return 0.
 * @retval -EINVAL NULL argument, or out->size too small.
 */
SUBITER_API int subiter_get_errinfo(const subiter *it, subiter_errinfo *out);

/**
 * The library's version, e.g. "0.1.0". Thread safety: any thread.
 * @return borrowed: valid until the program ends (static).
 */
SUBITER_API const char *subiter_version(void);

/* ---- pools: many workers on one generator ---- */

/**
 * A pool of workers running the same generator.
 *
 * Thread safety: a pool is used by one thread at a time, and the library
 * starts no thread: the pool does its work (handing out tasks, reading
 * the workers, timeouts, replacing dead workers) inside its own calls.
 * Different pools may be used from different threads at once. Workers
 * are forked inside later calls too (subiter_pool_start(), any call that
 * hands out tasks or replaces a dead worker), each under the fork
 * preconditions at the top of this header: use a pool from one thread
 * that outlives it.
 *
 * Inside the callbacks only subiter_pool_errmsg(),
 * subiter_pool_get_stats() and subiter_pool_worker_pid() may be called
 * on the pool; every other call on it returns -EBUSY there (and
 * subiter_pool_close() frees nothing). Calls on other pools and handles
 * are allowed.
 *
 * After a failed subiter_pool_open(), read subiter_pool_errmsg() and call
 * subiter_pool_close().
 */
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
 * Result callback: one item of task `task`, in the order its generator
 * yielded it. Called in the parent, from inside subiter_pool_next(),
 * subiter_pool_submit(), subiter_pool_wait() and subiter_pool_finalize()
 * (the library starts no thread); see subiter_pool for what it may call
 * (else -EBUSY).
 *
 * @param p     the pool.
 * @param task  the task's id, as subiter_pool_submit() gave it.
 * @param data  the item, borrowed: ring memory, valid until the callback
 *              returns (same caveat as subiter_next()).
 * @param len   its length in bytes (may be 0).
 * @param user  opts.user.
 */
typedef void (*subiter_result_fn)(subiter_pool *p, unsigned long long task,
                                  const void *data, size_t len, void *user);
/**
 * Error callback: task `task` failed. Called as the result callback is,
 * and only when on_result is set too (without it, every end goes to
 * subiter_pool_next()); a task that succeeds is reported to neither.
 *
 * @param p       the pool.
 * @param task    the task's id.
 * @param code    SUBITER_EITER (its generator failed), SUBITER_ECHILD (its
 *                worker died, retries used up), SUBITER_ETIMEDOUT (past
 *                task_timeout_ms, or its worker silent for the worker's
 *                timeout_ms), SUBITER_EPROTO (its worker broke the
 *                protocol), SUBITER_EINIT (no worker could be started for
 *                it) or SUBITER_ECANCELED (ended by finalize's grace).
 * @param errmsg  why, borrowed: valid until the callback returns.
 * @param user    opts.user.
 */
typedef void (*subiter_error_fn)(subiter_pool *p, unsigned long long task,
                                 int code, const char *errmsg, void *user);

/**
 * Pool options. Initialise with SUBITER_POOL_OPTS_INIT, then change fields;
 * every field is taken as given (no "0 means default" here, but for
 * workers and min_workers). subiter_pool_open() copies them: borrowed,
 * read only during the call, `worker` included.
 */
typedef struct subiter_pool_opts {
    size_t size;          /**< sizeof(subiter_pool_opts) */
    unsigned workers;     /**< (maximum) number of workers, at most 4096;
                               0: the number of online CPUs */
    unsigned min_workers; /**< tasks: workers kept alive while idle; at most
                               `workers` (0: all of them, the default) */
    int idle_ms;          /**< tasks: a worker above min_workers retires
                               after this long idle (1000; >= 0) */
    int order;            /**< SUBITER_POOL_ORDERED or _UNORDERED */
    unsigned rank;        /**< this pool's index among world_size (0) */
    unsigned world_size;  /**< pools sharing one dataset (1, >= 1; times
                               workers at most UINT32_MAX) */
    int restart_shards;   /**< 1: a dead worker's shard is rerun by its
                               replacement, skipping the items already
                               delivered (a deterministic generator then
                               loses and repeats nothing); 0: it fails the
                               iteration (default) */
    unsigned queue_max;   /**< tasks: submitted and not yet taken (64; >= 1) */
    int task_timeout_ms;  /**< tasks: wall time allowed per task, paused
                               time excluded; <= 0: none (0) */
    unsigned max_retries; /**< tasks: reruns of a task whose worker died;
                               with restart_shards, reruns of a shard (1) */
    subiter_result_fn on_result; /**< tasks: items go here instead of to
                                      subiter_pool_next() */
    subiter_error_fn on_error;   /**< tasks, with on_result: failures go
                                      here */
    void *user;                  /**< passed to the callbacks; borrowed:
                                      valid until subiter_pool_close() */
    const subiter_opts *worker;  /**< each worker's options (init, buffers,
                                      inactivity timeout, grace); NULL:
                                      the defaults, but buffer_items
                                      SUBITER_POOL_DEFAULT_BUFFER_ITEMS.
                                      Given, they are taken as they are:
                                      SUBITER_OPTS_INIT's buffer_items (32)
                                      makes an ordered merge of small
                                      items about 3 x slower. Borrowed:
                                      read only during subiter_pool_open()
                                      (copied) */
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

/**
 * What subiter_pool_next() returns: an item, or the end of a task. Every
 * field a kind does not use is 0 (NULL, "" for errmsg).
 */
typedef struct subiter_pool_item {
    int kind;                /**< SUBITER_POOL_ITEM or SUBITER_POOL_TASK_END */
    const void *data;        /**< item: borrowed, valid until the next call on
                                  the pool or subiter_pool_close() (same
                                  caveat as subiter_next()) */
    size_t len;              /**< item: its length */
    unsigned worker;         /**< item: index in the pool of the worker
                                  that yielded it, 0 .. workers - 1 */
    unsigned long long task; /**< the task id; 0 in sharded iteration */
    int code;                /**< task end: 0, or what it failed with (the
                                  codes of subiter_error_fn) */
    const char *errmsg;      /**< task end: why ("" on success); borrowed
                                  like data */
} subiter_pool_item;

/** Counters since subiter_pool_open(), and the pool's state now. */
typedef struct subiter_pool_stats {
    size_t size;                  /**< sizeof(subiter_pool_stats) */
    unsigned long long submitted; /**< tasks accepted */
    unsigned long long done;      /**< tasks that succeeded */
    unsigned long long failed;    /**< tasks that ended with an error
                                       (timed out and cancelled included) */
    unsigned long long retried;   /**< task reruns after their worker died
                                       (shard reruns are not counted) */
    unsigned long long timed_out; /**< tasks that ended with
                                       SUBITER_ETIMEDOUT: past
                                       task_timeout_ms, or their worker
                                       silent for its timeout_ms */
    unsigned long long cancelled; /**< tasks ended by finalize's grace
                                       (SUBITER_ECANCELED) */
    unsigned long long replaced;  /**< workers that died or were killed and
                                       were replaced */
    unsigned workers;             /**< workers alive now (starting ones
                                       included) */
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
 * @param out  set to a new pool whenever memory allowed, even on failure
 *             (as subiter_open() does): new: free with subiter_pool_close().
 * @param fn   the generator, run in every worker.
 * @param arg  passed to every worker's initializer and generator.
 *             Borrowed: valid until subiter_pool_close(); workers are also
 *             forked by later calls, and each reads its copy as it was at
 *             its fork.
 * @param opts options, or NULL for all defaults. Borrowed: read only
 *             during the call (copied, opts->worker included).
 * @return 0; the workers that were forked are initialised.
 * @retval SUBITER_EINIT     a worker's initializer failed; errmsg names
 *                           the worker and gives its message.
 * @retval SUBITER_ECHILD    a worker died before it was ready.
 * @retval SUBITER_ETIMEDOUT a worker's initializer ran past the worker's
 *                           timeout_ms; it has been killed and reaped.
 * @retval SUBITER_EPROTO    a worker broke the protocol before it was
 *                           ready; it has been killed and reaped.
 * @retval -EINVAL  NULL out or fn, opts->size too small or non-zero bytes
 *                  past the fields this version knows, workers over 4096,
 *                  min_workers > workers, world_size 0, rank >=
 *                  world_size, world_size x workers over UINT32_MAX, an
 *                  unknown order, restart_shards not 0 or 1, queue_max 0,
 *                  negative idle_ms, worker options subiter_open() rejects.
 * @retval -ENOTSUP a start method that is not built yet (opts->worker).
 * @retval -ENOMEM  out of memory (then *out may be NULL).
 * @retval -errno   memfd_create(), mmap(), fork() and friends failed.
 */
SUBITER_API SUBITER_NODISCARD int
subiter_pool_open(subiter_pool **out, subiter_iter_fn fn, void *arg,
                  const subiter_pool_opts *opts);

/**
 * Sharded iteration: start the generator on every worker with the same
 * input (forking the missing workers first and waiting for their
 * initializers). Inside, subiter_worker_id() and subiter_num_workers() say
 * which shard to produce. The view of the last item ends.
 *
 * @param p      the pool.
 * @param input  bytes every generator reads with subiter_input(). Borrowed:
 *               read only during the call (copied). NULL when len is 0.
 * @param len    its length, at most SUBITER_INPUT_MAX.
 * @return 0; the iteration runs on every worker.
 * @retval -EINVAL   NULL pool, NULL input with len > 0, an iteration is
 *                   running, or tasks are queued or running or their ends
 *                   are still to be read with subiter_pool_next().
 * @retval -EMSGSIZE len > SUBITER_INPUT_MAX.
 * @retval -EBUSY    called from a callback.
 * @retval SUBITER_EINIT     the initializer of a worker forked for this
 *                           call failed; errmsg names the worker.
 * @retval SUBITER_ECHILD    a worker forked for this call died before it
 *                           was ready.
 * @retval SUBITER_ETIMEDOUT such a worker's initializer ran past timeout_ms.
 * @retval SUBITER_EPROTO    such a worker broke the protocol, or a worker
 *                           refused the start; it is killed and replaced.
 * @retval -ENOMEM  out of memory forking a worker.
 * @retval -errno   memfd_create(), mmap(), fork() and friends failed.
 */
SUBITER_API SUBITER_NODISCARD int
subiter_pool_start(subiter_pool *p, const void *input, size_t len);

/**
 * The next item of the sharded iteration, or the next event of the tasks,
 * waiting for it and doing the pool's work meanwhile.
 *
 * Sharded iteration: 1 with an item (kind SUBITER_POOL_ITEM); 0 once every
 * shard ended (and on later calls). A shard that fails ends the
 * iteration: the other workers are stopped, a dead one is replaced (or,
 * with restart_shards, its shard is rerun and the call goes on; else the
 * items it published and you did not read yet are dropped), and the call
 * returns the code below with the worker, its shard and the reason in
 * subiter_pool_errmsg(). The pool stays usable.
 *
 * Tasks: 1 with an item or a task's end (a retried task's items may come
 * twice: the end says how it went); 0 when no task is queued or running.
 * With on_result set, items go to it, successful ends only to the stats,
 * and failed ends to on_error, or here when on_error is NULL. A task's
 * failure is its end's code, not the call's.
 *
 * @param p     the pool.
 * @param item  on 1: the item or task end, its data and errmsg borrowed:
 *              valid until the next call on the pool or
 *              subiter_pool_close(); cleared otherwise.
 * @return 1 with an item or a task end; 0 at the end (see above).
 * @retval SUBITER_EITER     a shard's generator failed.
 * @retval SUBITER_ECHILD    a shard's worker died.
 * @retval SUBITER_ETIMEDOUT a shard's worker sent nothing for timeout_ms;
 *                           killed and replaced.
 * @retval SUBITER_EPROTO    a shard's worker broke the protocol; killed and
 *                           replaced.
 * @retval SUBITER_EINIT     restart_shards: the initializer of the worker
 *                           forked to rerun a shard failed.
 * @retval -ENOMEM  restart_shards: out of memory forking that worker.
 * @retval -errno   restart_shards: forking that worker failed.
 * @retval -EINVAL  NULL argument, or neither an iteration nor a task was
 *                  ever started.
 * @retval -EBUSY   called from a callback.
 */
SUBITER_API SUBITER_NODISCARD int subiter_pool_next(subiter_pool *p,
                                                    subiter_pool_item *item);

/**
 * Stop the sharded iteration: STOP to every worker, their items dropped
 * until their generators return; the workers stay for the next start.
 * Each wait is bounded by the workers' timeout_ms. Tasks are not touched
 * (see subiter_pool_finalize()). The view of the last item ends. A worker
 * lost meanwhile is replaced, and the first one lost gives the code below
 * and errmsg; the iteration is over all the same, and the pool usable.
 *
 * @param p  the pool.
 * @return 0, also when no iteration runs.
 * @retval SUBITER_ECHILD    a worker died while it stopped.
 * @retval SUBITER_ETIMEDOUT a worker sent nothing for timeout_ms while it
 *                           stopped; killed.
 * @retval SUBITER_EPROTO    a worker broke the protocol while it stopped;
 *                           killed.
 * @retval -EINVAL NULL pool.
 * @retval -EBUSY  called from a callback.
 */
SUBITER_API int subiter_pool_stop(subiter_pool *p);

/**
 * Queue a task: the input of one iteration on the next idle worker (a new
 * worker is forked while fewer than `workers` run). Its items come back
 * tagged with *task, through subiter_pool_next() or the callbacks. When
 * queue_max tasks wait, the call waits for room, doing the pool's work
 * (and calling the callbacks) meanwhile.
 *
 * @param p      the pool.
 * @param input  bytes the generator reads with subiter_input(). Borrowed:
 *               read only during the call (copied). NULL when len is 0.
 * @param len    its length, at most SUBITER_INPUT_MAX.
 * @param flags  0, or SUBITER_POOL_NOWAIT.
 * @param task   set to the task's id (1, 2, ...), 0 on failure; may be NULL.
 * @return 0; the task is queued.
 * @retval -EAGAIN    SUBITER_POOL_NOWAIT and queue_max tasks are waiting.
 * @retval -EDEADLK   the queue is full, no on_result callback is set, and
 *                    the whole pool is paused or every busy worker waits
 *                    for subiter_pool_next() to take its items: waiting
 *                    would never end.
 * @retval -ESHUTDOWN subiter_pool_finalize() was called.
 * @retval -EINVAL    NULL pool, an unknown flag, a sharded iteration runs,
 *                    or NULL input with len > 0.
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
 * While the whole pool is paused, queued tasks wait, and so does this call.
 *
 * @param p           the pool.
 * @param timeout_ms  bound on the call; <= 0: no limit.
 * @return 0; no task is queued or running.
 * @retval -ETIMEDOUT the time ran out first (the tasks go on; a later call
 *                    takes them up). -ETIMEDOUT, not SUBITER_ETIMEDOUT.
 * @retval -EINVAL    NULL pool, or no on_result callback is set (use
 *                    subiter_pool_next()).
 * @retval -EBUSY     called from a callback.
 */
SUBITER_API int subiter_pool_wait(subiter_pool *p, int timeout_ms);

/**
 * Take no more tasks; let the queued and running ones finish within
 * grace_ms, then end the rest: queued ones and running ones fail with
 * SUBITER_ECANCELED and a message each (running workers get ABORT, then
 * SIGTERM and SIGKILL as in subiter_close()). A later call keeps the
 * first call's deadline.
 *
 * With on_result set, the call runs it all (through the callbacks) and
 * returns the number of tasks cancelled. Without, it returns 0 at once and
 * subiter_pool_next() delivers the rest, ending with 0.
 *
 * @param p         the pool.
 * @param grace_ms  time left to the tasks; 0: none.
 * @return the number of tasks cancelled with on_result set; 0 without.
 * @retval -EINVAL NULL pool or negative grace_ms.
 * @retval -EBUSY  called from a callback.
 */
SUBITER_API int subiter_pool_finalize(subiter_pool *p, int grace_ms);

/**
 * Pause (SIGSTOP) or resume (SIGCONT) worker `worker`, or all of them and
 * the handing out of tasks with -1. A paused worker takes no task, and the
 * time it spends paused does not count against task_timeout_ms nor the
 * workers' timeout_ms. Pausing a paused worker, or resuming a running
 * one, does nothing. A worker that replaces a paused one is not paused.
 * While a paused worker holds a task or a shard, subiter_pool_next() and
 * subiter_pool_wait() wait for it like for any other, and nothing inside
 * them resumes it: resume it first, or give subiter_pool_wait() a
 * timeout.
 *
 * @param p       the pool.
 * @param worker  the worker's index, 0 .. workers - 1, or -1 for all.
 * @return 0.
 * @retval -EINVAL NULL pool, or no such worker (alive now).
 * @retval -EBUSY  called from a callback.
 */
SUBITER_API int subiter_pool_pause(subiter_pool *p, int worker);
/** The other half of subiter_pool_pause(), with the same parameters and
 * return values. */
SUBITER_API int subiter_pool_resume(subiter_pool *p, int worker);

/**
 * Fill `out` with the pool's counters. May be called from the callbacks.
 * @param p    the pool.
 * @param out  set out->size first (SUBITER_POOL_STATS_INIT does); its
 *             first sizeof(subiter_pool_stats) bytes are written, the rest
 *             left alone. Every field is a value: nothing in it is borrowed.
 * @return 0.
 * @retval -EINVAL NULL argument, or out->size too small.
 */
SUBITER_API int subiter_pool_get_stats(const subiter_pool *p,
                                       subiter_pool_stats *out);

/**
 * The pid of worker `worker` now; a replacement has a new one. The library
 * reaps it: never wait for it or signal it yourself. May be called from
 * the callbacks.
 * @param p       the pool, or NULL.
 * @param worker  the worker's index, 0 .. workers - 1.
 * @return the pid; 0 for a NULL pool, an index out of range, or a slot
 *         with no worker now (not forked yet, or retired).
 */
SUBITER_API pid_t subiter_pool_worker_pid(const subiter_pool *p,
                                          unsigned worker);

/**
 * The message of the last failure the pool saw, for people: a failed
 * call, or a worker it could not start or restart while it ran tasks.
 * "" when none; a successful subiter_pool_open() or subiter_pool_start()
 * clears it. A task's failure comes with its end instead. May be called
 * from the callbacks.
 * @param p  the pool, or NULL.
 * @return borrowed: valid until the next call on the pool or
 *         subiter_pool_close(). "out of memory" for a NULL pool (the one
 *         way subiter_pool_open() leaves *out NULL). Never NULL.
 */
SUBITER_API const char *subiter_pool_errmsg(const subiter_pool *p);

/**
 * End every worker (ABORT, SIGTERM, SIGKILL with the workers' grace_ms, all
 * at once: about 2 x grace_ms at most) and free the pool. Queued and
 * running tasks, and task ends not yet read, are dropped without callbacks
 * (finalize first to hear of them). NULL-safe.
 *
 * @param p  the pool, or NULL. Takes ownership, even on failure, but for
 *           -EBUSY: item views and errmsg end with it.
 * @return 0 when every worker exited with status 0 on ABORT (or there was
 *         none, or p is NULL).
 * @retval SUBITER_ETIMEDOUT a worker had to be signalled.
 * @retval SUBITER_ECHILD    a worker exited otherwise than with status 0.
 * @retval -EBUSY called from a callback (nothing is freed then).
 */
SUBITER_API int subiter_pool_close(subiter_pool *p);

/* ---- worker side: call only inside the initializer or the generator ---- */

/*
 * Thread safety: these calls run in the worker, with the `g` its callback
 * was given; one thread at a time per `g` (a generator that starts
 * threads serialises their calls).
 */

/**
 * Copy one item into the ring, waiting while it is full.
 * @param g     the generator's context.
 * @param data  the item. Borrowed: read only during the call (copied).
 * @param len   its length in bytes (may be 0).
 * @return 0: go on.
 * @retval SUBITER_STOPPED the parent asked to stop (or to abort): return.
 * @retval -EMSGSIZE the item can never fit the ring; the parent's errmsg
 *                   names both sizes if the generator returns this.
 * @retval -EINVAL   called outside the generator, a reservation of
 *                   subiter_reserve() is open, or NULL data with len > 0.
 */
SUBITER_API SUBITER_NODISCARD int subiter_yield(subiter_gen *g,
                                                const void *data, size_t len);

/**
 * Reserve room for an item of up to `len` bytes in the ring (zero copy).
 * Write the item into *buf, then publish it with subiter_commit(). A
 * reservation not committed when the generator returns is dropped.
 * @param g    the generator's context.
 * @param len  the most the item may take.
 * @param buf  set to ring memory for `len` bytes, borrowed: valid until
 *             subiter_commit() or the generator returns; NULL on failure.
 * @return 0: write, then commit.
 * @retval SUBITER_STOPPED the parent asked to stop (or to abort): return.
 * @retval -EMSGSIZE as subiter_yield().
 * @retval -EINVAL   called outside the generator, NULL buf, or a
 *                   reservation is already open.
 */
SUBITER_API SUBITER_NODISCARD int subiter_reserve(subiter_gen *g, size_t len,
                                                  void **buf);

/**
 * Publish the reserved item with its final length (<= the reserved one).
 * @param g    the generator's context.
 * @param len  the item's final length.
 * @return 0: published; *buf of subiter_reserve() is no longer yours.
 * @retval -EINVAL called outside the generator, without a reservation, or
 *                 with a len over the reserved one (the reservation stays
 *                 open).
 */
SUBITER_API SUBITER_NODISCARD int subiter_commit(subiter_gen *g, size_t len);

/**
 * Record a printf-style failure message for the parent (truncated to the
 * library's message size), so write `return subiter_fail(g, "bad record
 * %d", n);`.
 * @param g    the initializer's or generator's context.
 * @param fmt  printf format, then its arguments; borrowed: read only during
 *             the call (the message is copied).
 * @return SUBITER_EINIT in the initializer, SUBITER_EITER in the generator.
 * @retval -EINVAL outside them, or NULL fmt.
 */
SUBITER_API int subiter_fail(subiter_gen *g, const char *fmt, ...)
    SUBITER_PRINTF(2, 3);

/**
 * This worker's shard: rank x workers + its index in the pool; 0 for a
 * worker of subiter_open(). Items i with i % subiter_num_workers(g) ==
 * subiter_worker_id(g) cover a dataset once across all ranks. A worker
 * that replaces a dead one has the same index, and so the same shard.
 * Valid in the initializer and the generator.
 * @param g  the initializer's or generator's context.
 * @return the shard, 0 .. subiter_num_workers(g) - 1; 0 for an invalid g.
 */
SUBITER_API unsigned subiter_worker_id(const subiter_gen *g);

/**
 * The number of shards: world_size x workers; 1 outside a pool.
 * @param g  the initializer's or generator's context.
 * @return the number of shards, >= 1; 1 for an invalid g.
 */
SUBITER_API unsigned subiter_num_workers(const subiter_gen *g);

/**
 * The current iteration's input (from subiter_start(), subiter_pool_start()
 * or subiter_pool_submit()).
 * @param g    the generator's context.
 * @param len  set to its length (0 when NULL is returned); may be NULL.
 * @return borrowed: valid until the generator returns. NULL (and 0) in the
 *         initializer, when there was none, or outside a callback.
 */
SUBITER_API const void *subiter_input(const subiter_gen *g, size_t *len);

#ifdef __cplusplus
}
#endif

#endif /* SUBITER_H */
