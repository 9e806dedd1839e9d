/* life.c: the worker's life lock (life.h). The worker holds a robust futex
 * word in its shared region; when the worker ends (exit, signal, OOM kill)
 * the kernel walks the worker's robust list and sets FUTEX_OWNER_DIED in
 * the word. The parent reads the word, never the pid number: a pid can be
 * reaped by someone else and handed to another process, a word in the
 * worker's own region cannot. */
#include "config.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

/* The head used when the C library's own list cannot take our entry. */
static struct robust_list_head own_head;

/*
 * Where the entry goes: the kernel finds each entry's word at the entry's
 * address plus the head's futex_offset, so the entry sits -offset bytes
 * after the word. NULL when that is outside the room or misaligned.
 */
static struct robust_list *entry_at(unsigned char *word, long offset,
                                    size_t room)
{
    size_t after;

    if (offset >= 0) {
        return NULL;
    }
    after = (size_t)-offset;
    if (after < sizeof(uint32_t) ||
        after + sizeof(struct robust_list) > sizeof(uint32_t) + room ||
        after % _Alignof(struct robust_list) != 0) {
        return NULL;
    }
    return (struct robust_list *)(void *)(word + after);
}

int subiter__life_hold(_Atomic uint32_t *word, size_t room)
{
    /* The kernel sees plain bytes: where the word is, not its type. */
    unsigned char *w = (unsigned char *)(uintptr_t)word;
    struct robust_list_head *head = NULL;
    struct robust_list *entry = NULL;
    size_t len = 0;
    long tid = syscall(SYS_gettid);

    /* Join the C library's list (fork() registered it again in the
     * child), so that robust mutexes the worker's main thread holds keep
     * their recovery: the kernel processes one list per thread. */
    if (syscall(SYS_get_robust_list, 0, &head, &len) == 0 && head != NULL &&
        len == sizeof *head) {
        entry = entry_at(w, head->futex_offset, room);
    }
    if (entry != NULL) {
        /* Only this thread ever changes its list: the C library's own
         * inserts and removals walk past our entry. */
        entry->next = head->list.next;
        head->list.next = entry;
    } else {
        entry = entry_at(w, -(long)_Alignof(struct robust_list), room);
        if (entry == NULL) {
            return -EINVAL;
        }
        own_head.list.next = entry;
        own_head.futex_offset = (long)(w - (unsigned char *)entry);
        own_head.list_op_pending = NULL;
        entry->next = &own_head.list;
        if (syscall(SYS_set_robust_list, &own_head, sizeof own_head) < 0) {
            return -errno;
        }
    }
    /* Registered first, held second: a worker that dies in between leaves
     * 0 (unknown, /proc decides), never a tid nobody will clear.
     * release: pairs with the acquire in subiter__life_read(). */
    atomic_store_explicit(word, (uint32_t)tid, memory_order_release);
    return 0;
}

enum subiter__life subiter__life_read(_Atomic uint32_t *word, pid_t pid)
{
    /* acquire: pairs with the release in subiter__life_hold(); the
     * kernel's mark is a full barrier. */
    uint32_t v = atomic_load_explicit(word, memory_order_acquire);

    if ((v & FUTEX_OWNER_DIED) != 0) {
        return SUBITER__LIFE_DEAD;
    }
    /* The worker's main thread: its tid is its pid. Anything else (0, or
     * a word a generator scribbled on) proves nothing. */
    if (pid > 0 && (v & FUTEX_TID_MASK) == (uint32_t)pid) {
        return SUBITER__LIFE_ALIVE;
    }
    return SUBITER__LIFE_UNKNOWN;
}
