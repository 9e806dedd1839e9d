/* check_noalloc.c: no allocation per item in steady state, in the parent
 * (subiter_next) and in the worker (subiter_yield, reserve/commit):
 * counted through the library's own allocator, and through malloc itself
 * by interposing it in a plain build (glibc 2.36 has no malloc hooks). */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "testutil.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define NOALLOC_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define NOALLOC_SANITIZED 1
#endif

#define WARMUP 200
#define STEADY 20000

/* Calls to malloc and friends in this process since it started (the
 * worker, a fork, inherits the count and counts on in its own copy). */
static long mallocs;

#if defined(__GLIBC__) && !defined(NOALLOC_SANITIZED)
void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t m);
void *__libc_realloc(void *p, size_t n);

void *malloc(size_t n)
{
    mallocs++;
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
    mallocs++;
    return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
    mallocs++;
    return __libc_realloc(p, n);
}
#endif

/* Does the count see malloc? Not under a sanitizer or valgrind, where
 * main() turns the suite's pass into a skip. */
static bool malloc_counted(void)
{
    void *volatile p;
    long before = mallocs;

    p = malloc(16);
    free(p);
    return mallocs == before + 1;
}

struct counts {
    long lib;  /* the worker's library allocations during the steady part */
    long libc; /* its mallocs, or -1 when they cannot be counted */
    int done;
};

TU_EXPORT(int gen_steady(subiter_gen *g, void *arg))
{
    struct counts *c = arg;
    unsigned char buf[64];
    long i, m0 = 0;
    size_t in_len;
    const void *in = subiter_input(g, &in_len);
    bool zero_copy = in != NULL && in_len == 1;
    void *p;
    int r;

    memset(buf, 7, sizeof buf);
    for (i = 0; i < WARMUP + STEADY; i++) {
        if (i == WARMUP) {
            (void)subiter__alloc_fail_at(0);
            m0 = mallocs;
        }
        if (zero_copy) {
            if ((r = subiter_reserve(g, sizeof buf, &p)) != 0) {
                return r;
            }
            memcpy(p, buf, sizeof buf);
            r = subiter_commit(g, sizeof buf);
        } else {
            r = subiter_yield(g, buf, sizeof buf);
        }
        if (r != 0) {
            return r;
        }
    }
    c->lib = (long)subiter__alloc_fail_at(0);
    m0 = mallocs - m0; /* before malloc_counted() allocates */
    c->libc = malloc_counted() ? m0 : -1;
    c->done = 1;
    return 0;
}

static void steady(bool zero_copy)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts(0);
    struct counts *c = tu_shared_new(sizeof *c);
    subiter_item item;
    subiter *it;
    long i, m0 = 0, lib, bad = 0;
    bool counted = malloc_counted();
    char in = 1;

    tu_snapshot(&snap);
    o.buffer_items = 16;
    ck_assert_int_eq(subiter_open(&it, gen_steady, c, &o), 0);
    ck_assert_int_eq(subiter_start(it, zero_copy ? &in : NULL, zero_copy), 0);
    /* No ck_assert in the loop: each one talks to Check's runner, which
     * allocates. */
    for (i = 0; i < WARMUP + STEADY; i++) {
        if (i == WARMUP) {
            (void)subiter__alloc_fail_at(0);
            m0 = mallocs;
        }
        if (subiter_next(it, &item) != 1 || item.len != 64) {
            bad++;
        }
    }
    lib = (long)subiter__alloc_fail_at(0);
    m0 = mallocs - m0;
    ck_assert_int_eq(bad, 0);
    ck_assert_int_eq(lib, 0);
    if (counted) {
        ck_assert_int_eq(m0, 0);
    }
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_int_eq(c->done, 1);
    ck_assert_int_eq(c->lib, 0);
    if (c->libc >= 0) {
        ck_assert_int_eq(c->libc, 0);
    }
    ck_assert_int_eq(subiter_close(it), 0);
    tu_shared_free(c, sizeof *c);
    tu_assert_clean(&snap);
}

START_TEST(test_noalloc_yield_and_next)
{
    steady(false);
}
END_TEST

START_TEST(test_noalloc_reserve_commit)
{
    steady(true);
}
END_TEST

/* The count itself works where it is used, so the tests above can fail. */
START_TEST(test_noalloc_counter_sees_malloc)
{
    void *volatile p;
    long before;

    if (!malloc_counted()) {
        return; /* sanitizer or valgrind: only the library's count runs */
    }
    before = mallocs;
    p = calloc(1, 8);
    p = realloc(p, 4096);
    free(p);
    ck_assert_int_eq(mallocs, before + 2);
}
END_TEST

static Suite *noalloc_suite(void)
{
    Suite *s = suite_create("noalloc");
    TCase *tc = tcase_create("steady");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_noalloc_yield_and_next);
    tcase_add_test(tc, test_noalloc_reserve_commit);
    tcase_add_test(tc, test_noalloc_counter_sees_malloc);
    suite_add_tcase(s, tc);
    return s;
}

/* Where malloc cannot be counted, only the library's own count ran: the
 * suite then says why and exits 77, so the harness shows a skip rather
 * than a pass. */
int main(void)
{
    int r = tu_run(noalloc_suite());

    if (r == EXIT_SUCCESS && !malloc_counted()) {
#ifdef NOALLOC_SANITIZED
        const char *why = "built with a sanitizer, whose malloc this test "
                          "cannot interpose";
#else
        const char *why = "malloc is not the C library's here (valgrind, "
                          "or not glibc)";
#endif
        printf("SKIP: %s: only the library's own allocation count was "
               "checked, not malloc's\n",
               why);
        return 77;
    }
    return r;
}
