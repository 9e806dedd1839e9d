/* worker.h: the worker's side (worker.c, gen.c): what the parent hands it at
 * fork, its exit statuses, and test hooks into a running worker. */
#ifndef SUBITER_WORKER_H
#define SUBITER_WORKER_H

/* Everything the worker needs; filled by the parent before fork(). */
struct subiter__child_args {
    int memfd;
    size_t shm_len;
    int efd; /* parent's eventfd, to wake it */
    pid_t parent;
    subiter_init_fn init;
    subiter_iter_fn fn;
    void *arg;
    struct subiter__ident id; /* shard, rank, seed; num_workers >= 1 */
    bool signals_clean;       /* every handler SIG_DFL and no signal blocked */
};

/* Exit statuses of a worker that could not set itself up or go on. */
enum subiter__worker_exit {
    SUBITER__EXIT_BAD_MAGIC = 120, /* the shared region is not ours */
    SUBITER__EXIT_MMAP = 121,      /* mapping the shared region failed */
    SUBITER__EXIT_ORPHAN = 122,    /* the parent died before we started */
    SUBITER__EXIT_CMD_RING = 123,  /* the command ring is corrupt */
    SUBITER__EXIT_STATUS = 124,    /* a status could not be sent */
    SUBITER__EXIT_EVENTFD = 125,   /* the application closed our eventfd */
    SUBITER__EXIT_HANDOFF = 126,   /* the start hand-off is unreadable */
    SUBITER__EXIT_SYMBOL = 127     /* a function named in it is not found */
};

/* shm->worker_stage once the worker has mapped its region (any value
 * below the exit statuses above). */
#define SUBITER__STAGE_MAPPED 1u

/* The worker's main: never returns. */
SUBITER__HIDDEN _Noreturn void
subiter__worker_main(const struct subiter__child_args *a);

/* Every signal handler back to SIG_DFL, every signal unblocked (a
 * forkserver's zygote does it too). */
SUBITER__HIDDEN void subiter__reset_signals(void);
/* SIGINT and SIGQUIT ignored: the terminal sends them to the whole
 * foreground group, and they are the application's to handle. */
SUBITER__HIDDEN void subiter__ignore_terminal_signals(void);

/* Test hooks: the worker's view of its own shared region (NULL outside),
 * and a wake-up of the parent after a test scribbled on it. */
SUBITER__HIDDEN struct subiter__shm *subiter__gen_shm(subiter_gen *g);
SUBITER__HIDDEN void subiter__gen_kick(subiter_gen *g);

#endif /* SUBITER_WORKER_H */
