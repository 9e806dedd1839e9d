/* internal.h: what every file of lib/ shares: the words the code uses, the
 * constants that tie files together, and the per-concept headers; never
 * installed.
 *
 * Words (one meaning each, in code and comments):
 *
 *   worker     the child process that runs the user's init and generator.
 *   handle     the parent's `subiter`: one worker, its shared region, its
 *              eventfd and its state (ready, iterating, ended, dead).
 *   slot       a pool's place for one worker (lib/pool.h); its worker may
 *              be replaced many times.
 *   region     the shared memory of one worker (shm.h): a header, the
 *              command ring and the item ring.
 *   record     one entry of a ring: an 8-byte header and a frame.
 *   frame      one encoded protobuf message (a Command or a Status).
 *   publish    the producer makes a record visible (a release store of
 *              its header, ring.h); the consumer gives room back (a
 *              release store of its index).
 *   release    only this: the consumer hands a record's bytes back to the
 *              producer (subiter__ring_release()). The C11 ordering of the
 *              same name is written "release store" or "memory_order_release".
 *   give back  the parent ends its hold on an item view (the record is
 *              released then, and the worker woken if it waits for room).
 *   wake       tell the other side, which may sleep, to look again (wait.c).
 *   arm        set one's own "I am about to sleep" flag before a last look.
 *   exited     the worker process ended (seen by its pidfd or waitid), not
 *              reaped yet.
 *   reaped     its status was collected (by the library, or by someone
 *              else: an application reaper, SIGCHLD ignored); from then
 *              on its pid number may belong to another process and is
 *              never waited on nor signalled.
 *   live       a worker of a handle that has not been reaped nor given up
 *              on (subiter__live()).
 *   dead       a handle state: the worker died, timed out or broke the
 *              protocol; every call but errmsg, pid and close returns
 *              SUBITER_ECLOSED.
 *   kill       end the worker on purpose (SIGKILL) and reap it.
 */
#ifndef SUBITER_INTERNAL_H
#define SUBITER_INTERNAL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "subiter.h"

#define SUBITER__HIDDEN __attribute__((visibility("hidden")))
/* A rare path kept out of its caller, so that the caller's common path
 * saves no registers for it. */
#define SUBITER__NOINLINE __attribute__((noinline))
#define SUBITER__CACHELINE 64
#define SUBITER__NS_PER_MS INT64_C(1000000)

/* Without a pidfd (valgrind 3.19 answers ENOSYS for pidfd_open), a parent
 * looks for its workers' deaths between sleeps of this length: it is then
 * the detection delay. */
#define SUBITER__FALLBACK_SLICE_MS 5

/*
 * Message sizes, each built on the one before: a worker's own text
 * (subiter_fail()), a handle's errmsg (that text inside the library's
 * words: "worker pid N … during iteration …"), a pool's errmsg (a handle's
 * behind "worker N (shard S of T): ").
 */
#define SUBITER__MSG_MAX 4096
#define SUBITER__ERRMSG_MAX (SUBITER__MSG_MAX + 512)
#define SUBITER__POOL_ERRMSG_MAX (SUBITER__ERRMSG_MAX + 192)

#include "alloc.h"
#include "error.h"
#include "opts.h"
#include "ring.h"
#include "shm.h"
#include "trace.h"
#include "symbols.h"
#include "wire.h"
#include "life.h"
#include "proc.h"
#include "wait.h"
#include "evloop.h"
#include "oom.h"
#include "rank.h"
#include "checkpoint.h"
#include "worker.h"
#include "handle.h"

#endif /* SUBITER_INTERNAL_H */
