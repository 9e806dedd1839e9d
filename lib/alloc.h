/* alloc.h: the library's one allocator (alloc.c), with a fault hook for
 * tests. */
#ifndef SUBITER_ALLOC_H
#define SUBITER_ALLOC_H

/* Every allocation of the library goes through these two. */
SUBITER__HIDDEN void *subiter__malloc(size_t n);
SUBITER__HIDDEN void subiter__free(void *p);

/*
 * Test hook: make the n-th allocation from now on fail (1 = the next one),
 * 0 disables. Counts per thread; returns how many allocations were made
 * since the last call (for counting allocations per item).
 */
SUBITER__HIDDEN unsigned long subiter__alloc_fail_at(unsigned long n);

#endif /* SUBITER_ALLOC_H */
