/* life.h: the worker's life lock (life.c), a robust futex word in the
 * shared region that tells the parent whether its worker lives without
 * trusting the worker's pid number, which the kernel may give to another
 * process once someone else reaped the worker. */
#ifndef SUBITER_LIFE_H
#define SUBITER_LIFE_H

/* What the life word says about a worker. */
enum subiter__life {
    SUBITER__LIFE_UNKNOWN, /* not held yet (or scribbled on): ask /proc */
    SUBITER__LIFE_ALIVE,   /* its thread holds it: the pid is the worker's */
    SUBITER__LIFE_DEAD     /* the kernel marked it: the worker has ended */
};

/*
 * Worker, once its region is mapped and before any user code: hold the
 * lock (store its tid in `word`) and have the kernel mark the word
 * FUTEX_OWNER_DIED when the worker ends, however it ends. The `room` bytes
 * after the word take the robust-list entry that points the kernel at it.
 * 0 or -errno.
 */
SUBITER__HIDDEN int subiter__life_hold(_Atomic uint32_t *word, size_t room);

/* Parent: what `word` says about worker `pid`. */
SUBITER__HIDDEN enum subiter__life subiter__life_read(_Atomic uint32_t *word,
                                                      pid_t pid);

#endif /* SUBITER_LIFE_H */
