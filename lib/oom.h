/* oom.h: attributing a worker's SIGKILL to the kernel's OOM killer
 * (oom.c), from the memory cgroup's counter before and after. */
#ifndef SUBITER_OOM_H
#define SUBITER_OOM_H

struct subiter__oom {
    char path[256];   /* the counter file read */
    long long before; /* at the worker's start; -1: none readable */
    long long after;  /* at its death */
};

/* Remember the OOM-kill counter before a worker starts. */
SUBITER__HIDDEN void subiter__oom_begin(struct subiter__oom *o);
/* Did it go up since? (false when it cannot be read) */
SUBITER__HIDDEN bool subiter__oom_check(struct subiter__oom *o);
/* Test hook: read this file (with an "oom_kill N" line) instead; NULL
 * restores the real counters. Per thread. */
SUBITER__HIDDEN void subiter__oom_override(const char *path);

#endif /* SUBITER_OOM_H */
