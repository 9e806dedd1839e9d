/* error.h: words for how a worker ended (signal names, the library's own
 * exit statuses), beside the error table of error.c. */
#ifndef SUBITER_ERROR_H
#define SUBITER_ERROR_H

/* "SIGSEGV", …; "signal N" style text is the caller's for unknown ones. */
SUBITER__HIDDEN const char *subiter__signame(int sig);

/* What a worker's exit status means when it is one of the library's own
 * (enum subiter__worker_exit, worker.h); NULL otherwise. */
SUBITER__HIDDEN const char *subiter__worker_exit_reason(int status);
/* The library's reason for the exit status of a worker whose region says
 * `stage` (shm->worker_stage), or NULL when the status is the
 * application's: only a status the worker recorded there, or one from
 * before it mapped the region (stage 0), is the library's. */
SUBITER__HIDDEN const char *subiter__worker_exit_why(int status,
                                                     uint32_t stage);

#endif /* SUBITER_ERROR_H */
