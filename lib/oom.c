/* oom.c: tells whether the kernel's OOM killer is the likely cause of a
 * worker's SIGKILL, from the OOM-kill counter of the memory cgroup the
 * worker runs in (cgroup v1 memory.oom_control, v2 memory.events), or else
 * the system-wide one in /proc/vmstat. When none can be read it says
 * nothing rather than guess. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

/* Test hook: a file to read instead of the real counters. */
static _Thread_local const char *override_path;

void subiter__oom_override(const char *path)
{
    override_path = path;
}

/* Read a small file into buf (NUL-terminated). Returns its length or -1. */
static ssize_t slurp(const char *path, char *buf, size_t n)
{
    ssize_t len = 0, r;
    int fd;

    do {
        fd = open(path, O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        return -1;
    }
    while ((size_t)len < n - 1) {
        r = read(fd, buf + len, n - 1 - (size_t)len);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        len += r;
    }
    (void)close(fd);
    buf[len] = '\0';
    return len;
}

/* The value of the "oom_kill N" line of `path`, or -1. */
static long long read_counter(const char *path)
{
    char buf[4096];
    const char *p;

    if (slurp(path, buf, sizeof buf) < 0) {
        return -1;
    }
    for (p = buf; p != NULL && *p != '\0'; p = strchr(p, '\n')) {
        if (*p == '\n') {
            p++;
        }
        if (strncmp(p, "oom_kill ", 9) == 0) {
            return strtoll(p + 9, NULL, 10);
        }
    }
    return -1;
}

/* The counter file for this process's memory cgroup, into path. */
static void cgroup_counter(char *path, size_t n)
{
    char buf[4096], *line, *save = NULL;
    const char *v2 = NULL;

    path[0] = '\0';
    if (slurp("/proc/self/cgroup", buf, sizeof buf) < 0) {
        return;
    }
    for (line = strtok_r(buf, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        char *ctl = strchr(line, ':');
        char *cg = ctl != NULL ? strchr(ctl + 1, ':') : NULL;

        if (cg == NULL) {
            continue;
        }
        *cg++ = '\0';
        ctl++;
        if (strcmp(ctl, "memory") == 0) {
            /* cgroup v1 (or hybrid): the memory controller's own tree. */
            snprintf(path, n, "/sys/fs/cgroup/memory%s/memory.oom_control",
                     strcmp(cg, "/") == 0 ? "" : cg);
            return;
        }
        if (ctl[0] == '\0') {
            v2 = cg;
        }
    }
    if (v2 != NULL) {
        snprintf(path, n, "/sys/fs/cgroup%s/memory.events",
                 strcmp(v2, "/") == 0 ? "" : v2);
    }
}

/* The counter file, found once per thread of a process (a worker is in
 * its parent's cgroup): reading /proc/self/cgroup was a tenth of what an
 * open costs in the parent besides the fork. Per thread, so that no lock
 * can be held across a fork. A process that moves itself to another
 * cgroup afterwards keeps the first one's counter. */
static _Thread_local pid_t found_pid; /* the process it was found in */
static _Thread_local char found[sizeof((struct subiter__oom *)0)->path];

static void counter_path(char *path, size_t n)
{
    pid_t me = getpid();

    if (found_pid != me) {
        cgroup_counter(found, sizeof found);
        found_pid = me;
    }
    snprintf(path, n, "%s", found);
}

void subiter__oom_begin(struct subiter__oom *o)
{
    memset(o, 0, sizeof *o);
    o->before = -1;
    if (override_path != NULL) {
        snprintf(o->path, sizeof o->path, "%s", override_path);
        o->before = read_counter(o->path);
        return;
    }
    counter_path(o->path, sizeof o->path);
    if (o->path[0] != '\0') {
        o->before = read_counter(o->path);
    }
    if (o->before < 0) {
        snprintf(o->path, sizeof o->path, "/proc/vmstat");
        o->before = read_counter(o->path);
    }
}

bool subiter__oom_check(struct subiter__oom *o)
{
    if (o->before < 0) {
        return false;
    }
    o->after = read_counter(o->path);
    return o->after > o->before;
}
