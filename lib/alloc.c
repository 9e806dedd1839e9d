/* alloc.c: the library's one allocator, and the fault-injection hook tests
 * use to make each allocation fail in turn. */
#include "config.h"

#include <stdlib.h>

#include "internal.h"

/*
 * Per thread, so that tests of different handles in different threads do
 * not disturb each other, and so the library keeps no shared mutable state.
 */
static _Thread_local unsigned long fail_countdown;
static _Thread_local unsigned long alloc_count;

void *subiter__malloc(size_t n)
{
    alloc_count++;
    if (fail_countdown > 0 && --fail_countdown == 0) {
        return NULL;
    }
    return malloc(n ? n : 1);
}

void subiter__free(void *p)
{
    free(p);
}

unsigned long subiter__alloc_fail_at(unsigned long n)
{
    unsigned long made = alloc_count;

    alloc_count = 0;
    fail_countdown = n;
    return made;
}
