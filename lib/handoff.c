/* handoff.c: what a worker started by SUBITER_FORKSERVER or SUBITER_SPAWN
 * is told, and the dispatch to those start methods. The parent writes one
 * record (a header, the functions' names or addresses, the arg bytes) into
 * a sealed memfd; the worker maps it privately, so `arg` points into its
 * own copy without a single malloc. */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "start.h"

#define HANDOFF_MAGIC 0x66666f68u /* "hoff" */
#define HANDOFF_VERSION 1u
/* Longest symbol name carried; longer ones are refused at open. */
#define NAME_MAX_LEN 1023u

struct handoff {
    uint32_t magic;
    uint32_t version;
    uint64_t shm_len;
    int32_t parent;
    struct subiter__ident id; /* shard, rank, seed (same binary: same layout) */
    uint32_t has_arg;         /* arg was not NULL */
    uint64_t fn_addr;         /* by address: same image (a zygote's fork) */
    uint64_t init_addr;
    uint32_t fn_name_len; /* by name: bytes after the header, no NUL */
    uint32_t init_name_len;
    uint64_t arg_off; /* arg_len bytes at arg_off, 16-aligned */
    uint64_t arg_len;
    uint64_t raw_arg; /* test hook: arg as its pointer value */
};

static _Thread_local bool raw_arg;

void subiter__handoff_raw_arg(bool on)
{
    raw_arg = on;
}

bool subiter__handoff_arg_ok(int method, const void *arg, size_t arg_len)
{
    return method == SUBITER_FORK || arg == NULL || arg_len > 0 || raw_arg;
}

/* The exported name of fn, checked to resolve back to fn in this process
 * as the worker will look it up; NULL with `why` otherwise. */
static const char *export_name(const void *fn, const char *what, char *why,
                               size_t n)
{
    Dl_info info;

    memset(&info, 0, sizeof info);
    if (dladdr(fn, &info) == 0 || info.dli_sname == NULL ||
        info.dli_saddr != fn || dlsym(RTLD_DEFAULT, info.dli_sname) != fn) {
        snprintf(why, n,
                 "SUBITER_SPAWN finds the %s by name, and the function at "
                 "%p is not exported: make it non-static and link the "
                 "program with -rdynamic (or put it in a shared library)",
                 what, fn);
        return NULL;
    }
    if (strlen(info.dli_sname) > NAME_MAX_LEN) {
        snprintf(why, n, "the %s's name is longer than %u bytes", what,
                 NAME_MAX_LEN);
        return NULL;
    }
    return info.dli_sname;
}

static int write_all(int fd, const void *p, size_t len, off_t off)
{
    const unsigned char *b = p;

    while (len > 0) {
        ssize_t w = pwrite(fd, b, len, off);

        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return w < 0 ? -errno : -EIO;
        }
        b += w;
        len -= (size_t)w;
        off += w;
    }
    return 0;
}

int subiter__handoff_create(const struct subiter__child_args *a, size_t arg_len,
                            bool by_name, char *why, size_t n)
{
    struct handoff h;
    const char *fn_name = NULL, *init_name = NULL;
    size_t off;
    int fd, r;

    memset(&h, 0, sizeof h);
    h.magic = HANDOFF_MAGIC;
    h.version = HANDOFF_VERSION;
    h.shm_len = a->shm_len;
    h.parent = a->parent;
    /* Field by field: the struct's padding stays the memset's zeros (the
     * whole header is written to the memfd). */
    h.id.worker_id = a->id.worker_id;
    h.id.num_workers = a->id.num_workers;
    h.id.rank = a->id.rank;
    h.id.world_size = a->id.world_size;
    h.id.local_id = a->id.local_id;
    h.id.seed = a->id.seed;
    h.has_arg = a->arg != NULL;
    if (by_name) {
        fn_name = export_name((const void *)a->fn, "generator", why, n);
        if (fn_name == NULL) {
            return -EINVAL;
        }
        if (a->init != NULL) {
            init_name =
                export_name((const void *)a->init, "initializer", why, n);
            if (init_name == NULL) {
                return -EINVAL;
            }
        }
        h.fn_name_len = (uint32_t)strlen(fn_name);
        h.init_name_len = init_name != NULL ? (uint32_t)strlen(init_name) : 0;
    } else {
        h.fn_addr = (uint64_t)(uintptr_t)a->fn;
        h.init_addr = (uint64_t)(uintptr_t)a->init;
    }
    off = sizeof h + h.fn_name_len + h.init_name_len;
    h.arg_off = (off + 15) & ~(uint64_t)15;
    h.arg_len = a->arg != NULL ? arg_len : 0;
    if (a->arg != NULL && arg_len == 0) {
        h.raw_arg = (uint64_t)(uintptr_t)a->arg;
    }

    fd = memfd_create("subiter-handoff", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        r = -errno;
        snprintf(why, n, "memfd_create: %s", subiter_strerror(r));
        return r;
    }
    r = write_all(fd, &h, sizeof h, 0);
    if (r == 0 && fn_name != NULL) {
        r = write_all(fd, fn_name, h.fn_name_len, sizeof h);
    }
    if (r == 0 && init_name != NULL) {
        r = write_all(fd, init_name, h.init_name_len,
                      (off_t)(sizeof h + h.fn_name_len));
    }
    if (r == 0 && h.arg_len > 0) {
        r = write_all(fd, a->arg, h.arg_len, (off_t)h.arg_off);
    }
    /* Sealed against resizing, so the worker's mapping cannot SIGBUS.
     * (F_SEAL_WRITE would forbid the worker's private writable map.) */
    if (r == 0 &&
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
        r = -errno;
    }
    if (r < 0) {
        (void)close(fd);
        snprintf(why, n, "writing the worker's hand-off: %s",
                 subiter_strerror(r));
        return r;
    }
    return fd;
}

/* The worker's copy of a name in the mapping, NUL-terminated in buf. */
static void *lookup(const unsigned char *base, size_t off, uint32_t len,
                    char *buf)
{
    memcpy(buf, base + off, len);
    buf[len] = '\0';
    return dlsym(RTLD_DEFAULT, buf);
}

_Noreturn void subiter__handoff_run(int hfd, int memfd, int efd, bool by_name)
{
    struct subiter__child_args a;
    struct handoff h;
    struct stat st;
    unsigned char *base;
    char name[NAME_MAX_LEN + 1];

    if (fstat(hfd, &st) < 0 || (size_t)st.st_size < sizeof h) {
        _exit(SUBITER__EXIT_HANDOFF);
    }
    /* Private and writable: the callbacks may change their arg copy. */
    base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE,
                hfd, 0);
    (void)close(hfd);
    if (base == MAP_FAILED) {
        _exit(SUBITER__EXIT_HANDOFF);
    }
    memcpy(&h, base, sizeof h);
    if (h.magic != HANDOFF_MAGIC || h.version != HANDOFF_VERSION ||
        h.fn_name_len > NAME_MAX_LEN || h.init_name_len > NAME_MAX_LEN ||
        (h.arg_len > 0 && (h.arg_off > (uint64_t)st.st_size ||
                           h.arg_len > (uint64_t)st.st_size - h.arg_off))) {
        _exit(SUBITER__EXIT_HANDOFF);
    }
    memset(&a, 0, sizeof a);
    a.memfd = memfd;
    a.shm_len = (size_t)h.shm_len;
    a.efd = efd;
    a.parent = h.parent;
    a.id = h.id;
    /* A forkserver's zygote reset them once for all its workers, and
     * posix_spawn() did for an exec'd one (subiter__spawn()). */
    a.signals_clean = true;
    a.arg = h.has_arg ? (void *)(base + h.arg_off) : NULL;
    if (h.has_arg && h.arg_len == 0) {
        a.arg = (void *)(uintptr_t)h.raw_arg;
    }
    if (by_name) {
        void *fn = lookup(base, sizeof h, h.fn_name_len, name);
        void *init = NULL;

        if (h.init_name_len > 0) {
            init =
                lookup(base, sizeof h + h.fn_name_len, h.init_name_len, name);
        }
        if (fn == NULL || (h.init_name_len > 0 && init == NULL)) {
            _exit(SUBITER__EXIT_SYMBOL);
        }
        /* dlsym() returns functions as void *: POSIX requires the round
         * trip to work. */
        memcpy(&a.fn, &fn, sizeof fn);
        memcpy(&a.init, &init, sizeof init);
    } else {
        a.fn = (subiter_iter_fn)(uintptr_t)h.fn_addr;
        a.init = (subiter_init_fn)(uintptr_t)h.init_addr;
    }
    subiter__worker_main(&a);
}

int subiter__start_worker(int method, int hfd, int memfd, int efd, pid_t *pid,
                          int *pidfd, char *why, size_t n)
{
    *pidfd = -1;
    if (method == SUBITER_FORKSERVER) {
        return subiter__forkserver_fork(hfd, memfd, efd, pid, pidfd, why, n);
    }
    return subiter__spawn(hfd, memfd, efd, pid, why, n);
}
