/* testring.h: what the ring suites (check_ring.c, check_ring_hostile.c)
 * share: a record ring of lib/ring.c over a guarded mapping, driven
 * directly in one process, and records whose bytes say which they are. */
#ifndef SUBITER_TESTRING_H
#define SUBITER_TESTRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "testutil.h"

/* Where the ring's data sits between its two PROT_NONE guard pages. */
enum layout { AT_END, AT_START };

/* The two shared words, each on its own line as in struct subiter__shm. */
struct words {
    _Alignas(SUBITER__CACHELINE) _Atomic uint32_t head;
    _Alignas(SUBITER__CACHELINE) _Atomic uint32_t tail;
};

/*
 * A ring over an mmap'd buffer with an inaccessible page on each side, so
 * that any access past either end faults in any build (and ASan sees the
 * rest). AT_END puts the last data byte right before the upper guard.
 */
struct tring {
    struct words w;
    unsigned char *map;
    size_t map_len;
    unsigned char *data;
    uint32_t size;
    bool aligned; /* the start index was a multiple of 8 */
    unsigned long pads;
    struct subiter__ring prod;
    struct subiter__ring cons;
};

/* Map a ring of `size` bytes (a power of two) at index `start`, between
 * two guard pages; tring_close() unmaps it. */
void tring_open(struct tring *t, uint32_t size, uint32_t start,
                enum layout where);
void tring_close(struct tring *t);

/* The shared words as they are now. */
uint32_t tring_head(struct tring *t);
uint32_t tring_tail(struct tring *t);

/* The ring bytes a frame of frame_len takes (header and padding). */
uint64_t tring_rec_len(uint64_t frame_len);

/* xorshift64*: the next of the pseudo-random sequence in *s. */
uint64_t tring_rnd(uint64_t *s);

/* Record `seq`'s length: a quarter are empty, the rest up to maxlen. */
size_t tring_len_for(uint32_t seq, size_t maxlen);

/* Record `seq`'s bytes: its sequence number first, then a pattern. */
void tring_fill(unsigned char *p, uint32_t seq, size_t len);

/* Are these record `seq`'s bytes? */
bool tring_intact(const unsigned char *p, uint32_t seq, size_t len);

/* Is [p, p + len) inside the ring's data, right after a record header? */
void tring_assert_in_ring(struct tring *t, const unsigned char *p, size_t len);

/* Produce record `seq` of `len` bytes; counts the PADs the ring wrote.
 * Returns what subiter__ring_reserve() returned. */
int tring_produce(struct tring *t, uint32_t seq, size_t len);

/* Consume one record and check it is `seq` of `len` bytes. Returns what
 * subiter__ring_peek() returned. */
int tring_consume(struct tring *t, uint32_t seq, size_t len);

/* Write a record header of an unknown kind where the next record of a
 * region's command ring (`cmd`) or item ring goes, as a hostile producer
 * would: its reader must refuse it. */
void tring_forge_bad_record(struct subiter__shm *shm, bool cmd);

#endif
