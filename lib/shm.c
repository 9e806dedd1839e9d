/* shm.c: the shared region of one worker (layout in shm.h): creating the
 * sealed memfd, mapping it on both sides, and each side's view of the two
 * rings in it. */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

/* The item ring's size for `want` bytes: a power of two, at least the
 * minimum. */
static uint32_t ring_bytes(size_t want)
{
    uint32_t n = SUBITER__MIN_RING_BYTES;

    /* The options cap buffer_bytes, so the doubling cannot overflow. */
    assert(want <= SUBITER__MAX_RING_BYTES);
    while (n < want) {
        n <<= 1;
    }
    return n;
}

int subiter__shm_create(struct subiter__region *r, size_t buffer_bytes,
                        uint32_t buffer_items)
{
    uint32_t items = ring_bytes(buffer_bytes);
    struct subiter__shm *shm;
    int fd, e;

    r->shm = NULL;
    r->memfd = -1;
    r->len = SUBITER__SHM_HDR_BYTES + SUBITER__CMD_RING_BYTES + (size_t)items +
             SUBITER__TRACE_BYTES;
    /* A memfd has no name in /dev/shm: nothing can leak there. */
    fd = memfd_create("subiter", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        return -errno;
    }
    /* Sealed, so a worker cannot shrink it under the parent (SIGBUS). */
    if (ftruncate(fd, (off_t)r->len) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
        e = -errno;
        (void)close(fd);
        return e;
    }
    shm = mmap(NULL, r->len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (shm == MAP_FAILED) {
        e = -errno;
        (void)close(fd);
        return e;
    }
    /* Workers forked later must not inherit this region: each worker maps
     * its own from the fd. The pages are faulted in lazily, by use. */
    (void)madvise(shm, r->len, MADV_DONTFORK);
    shm->magic = SUBITER__SHM_MAGIC;
    shm->version = SUBITER__SHM_VERSION;
    shm->hdr_bytes = SUBITER__SHM_HDR_BYTES;
    shm->cmd_bytes = SUBITER__CMD_RING_BYTES;
    shm->item_bytes = items;
    shm->buffer_items = buffer_items;
    /* Both sides start awake, on a CPU not known yet (wait.c). */
    shm->child_running = SUBITER__RUNNING_ANY;
    shm->parent_running = SUBITER__RUNNING_ANY;
    shm->parent_barrier = subiter__barrier_init(false);
    r->shm = shm;
    r->memfd = fd;
    return 0;
}

void subiter__shm_close_fd(struct subiter__region *r)
{
    if (r->memfd >= 0) {
        (void)close(r->memfd);
        r->memfd = -1;
    }
}

void subiter__shm_destroy(struct subiter__region *r)
{
    subiter__shm_close_fd(r);
    if (r->shm != NULL) {
        (void)munmap(r->shm, r->len);
        r->shm = NULL;
    }
}

struct subiter__shm *subiter__shm_attach(int memfd, size_t len, int *exit_code)
{
    struct subiter__shm *shm;

    shm = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    if (shm == MAP_FAILED) {
        *exit_code = SUBITER__EXIT_MMAP;
        return NULL;
    }
    (void)close(memfd);
    if (shm->magic != SUBITER__SHM_MAGIC) {
        *exit_code = SUBITER__EXIT_BAD_MAGIC;
        return NULL;
    }
    return shm;
}

void subiter__shm_rings(struct subiter__shm *shm, struct subiter__ring *cmd,
                        struct subiter__ring *items, bool parent)
{
    unsigned char *base = (unsigned char *)shm;

    subiter__ring_init(cmd, &shm->cmd_head, &shm->cmd_tail,
                       base + shm->hdr_bytes, shm->cmd_bytes, parent);
    subiter__ring_init(items, &shm->item_head, &shm->item_tail,
                       base + shm->hdr_bytes + shm->cmd_bytes, shm->item_bytes,
                       !parent);
}
