/* check_error.c: error codes: their text and names (subiter_strerror(),
 * subiter_errname(), generated from SUBITER_ERRNO_MAP), and one test per
 * library code that produces it through the API. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "internal.h"
#include "testring.h"
#include "testutil.h"

#define PAGE 4096

/* The table itself, enumerated with the X-macro. */
struct code {
    const char *name; /* "SUBITER_EINIT" */
    int value;
    const char *desc;
};

static const struct code codes[] = {
#define X(name, value, desc) {"SUBITER_" #name, SUBITER_##name, desc},
    SUBITER_ERRNO_MAP(X)
#undef X
};

#define NCODES (sizeof codes / sizeof codes[0])

/* ---- text and names ---- */

START_TEST(test_error_table_is_consistent)
{
    size_t i, j;

    /* Seven codes, counting down from -1000 without a gap. */
    ck_assert_uint_eq(NCODES, 7);
    for (i = 0; i < NCODES; i++) {
        ck_assert_int_eq(codes[i].value, -1000 - (int)i);
        ck_assert_ptr_nonnull(codes[i].desc);
        ck_assert_uint_gt(strlen(codes[i].desc), 0);
        ck_assert_str_eq(subiter_strerror(codes[i].value), codes[i].desc);
        ck_assert_str_eq(subiter_errname(codes[i].value), codes[i].name);
        for (j = 0; j < i; j++) {
            ck_assert_int_ne(codes[i].value, codes[j].value);
            ck_assert_str_ne(codes[i].desc, codes[j].desc);
            ck_assert_str_ne(codes[i].name, codes[j].name);
        }
        /* Nor does a library description pass for an errno's. */
        ck_assert_str_ne(codes[i].desc, subiter_strerror(-EINVAL));
    }
}
END_TEST

START_TEST(test_error_every_library_code_by_name)
{
    static const struct {
        int code;
        const char *name;
    } want[] = {
        {SUBITER_EINIT, "SUBITER_EINIT"},
        {SUBITER_EITER, "SUBITER_EITER"},
        {SUBITER_ECHILD, "SUBITER_ECHILD"},
        {SUBITER_ETIMEDOUT, "SUBITER_ETIMEDOUT"},
        {SUBITER_EPROTO, "SUBITER_EPROTO"},
        {SUBITER_ECLOSED, "SUBITER_ECLOSED"},
        {SUBITER_ECANCELED, "SUBITER_ECANCELED"},
        {SUBITER_STOPPED, "SUBITER_STOPPED"},
    };
    size_t i;

    ck_assert_int_eq(SUBITER_EINIT, -1000);
    ck_assert_int_eq(SUBITER_ECLOSED, -1005);
    ck_assert_int_eq(SUBITER_ECANCELED, -1006);
    ck_assert_int_gt(SUBITER_STOPPED, 0);
    for (i = 0; i < sizeof want / sizeof want[0]; i++) {
        ck_assert_str_eq(subiter_errname(want[i].code), want[i].name);
        ck_assert_ptr_nonnull(subiter_strerror(want[i].code));
        ck_assert_uint_gt(strlen(subiter_strerror(want[i].code)), 0);
        ck_assert_str_ne(subiter_strerror(want[i].code),
                         subiter_strerror(12345));
    }
    ck_assert_str_ne(subiter_strerror(SUBITER_STOPPED),
                     subiter_strerror(SUBITER_EITER));
}
END_TEST

START_TEST(test_error_errno_codes)
{
    static const struct {
        int code;
        const char *name;
    } want[] = {
        {-EINVAL, "EINVAL"},       {-ENOMEM, "ENOMEM"},
        {-EMSGSIZE, "EMSGSIZE"},   {-EIO, "EIO"},
        {-ENOENT, "ENOENT"},       {-EPROTO, "EPROTO"},
        {-ETIMEDOUT, "ETIMEDOUT"}, {-ECHILD, "ECHILD"},
        {-EAGAIN, "EAGAIN"},
    };
    size_t i;

    for (i = 0; i < sizeof want / sizeof want[0]; i++) {
        ck_assert_str_eq(subiter_errname(want[i].code), want[i].name);
        /* The C locale's text, the same as strerror()'s. */
        ck_assert_str_eq(subiter_strerror(want[i].code),
                         strerror(-want[i].code));
    }
    /* The same word as a library code and as an errno stays distinct. */
    ck_assert_str_ne(subiter_errname(-ECHILD), subiter_errname(SUBITER_ECHILD));
    ck_assert_str_ne(subiter_strerror(-ECHILD),
                     subiter_strerror(SUBITER_ECHILD));
    ck_assert_str_ne(subiter_errname(-EPROTO), subiter_errname(SUBITER_EPROTO));
    ck_assert_str_ne(subiter_errname(-ETIMEDOUT),
                     subiter_errname(SUBITER_ETIMEDOUT));
    /* ENOTSUP (open's answer for unbuilt start methods) has a name. */
    ck_assert_uint_gt(strlen(subiter_errname(-ENOTSUP)), 1);
    ck_assert_str_ne(subiter_errname(-ENOTSUP), "unknown");
}
END_TEST

START_TEST(test_error_unknown_codes_never_null)
{
    static const int odd[] = {12345, -999999, INT_MIN, INT_MAX, 2,
                              -999,  -1007,   -4095,   -4096,   -5000};
    size_t i;

    for (i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        ck_assert_ptr_nonnull(subiter_strerror(odd[i]));
        ck_assert_ptr_nonnull(subiter_errname(odd[i]));
        ck_assert_uint_gt(strlen(subiter_strerror(odd[i])), 0);
        ck_assert_uint_gt(strlen(subiter_errname(odd[i])), 0);
    }
    /* Codes nobody defined do not borrow a library code's text. */
    for (i = 0; i < NCODES; i++) {
        ck_assert_str_ne(subiter_strerror(-1007), codes[i].desc);
        ck_assert_str_ne(subiter_errname(-1007), codes[i].name);
        ck_assert_str_ne(subiter_strerror(-999), codes[i].desc);
        ck_assert_str_ne(subiter_strerror(INT_MIN), codes[i].desc);
    }
    ck_assert_ptr_nonnull(subiter_strerror(0));
    ck_assert_ptr_nonnull(subiter_errname(0));
}
END_TEST

/* ---- generators (run in the worker: no ck_assert here) ---- */

TU_EXPORT(int init_fail(subiter_gen *g, void *arg))
{
    (void)arg;
    return subiter_fail(g, "no GPU %d found", 3);
}

TU_EXPORT(int init_hang(subiter_gen *g, void *arg))
{
    (void)g;
    (void)arg;
    sleep(30);
    return 0;
}

TU_EXPORT(int gen_fail(subiter_gen *g, void *arg))
{
    int r;

    (void)arg;
    if ((r = tu_yield_count(g, 4)) != 0) {
        return r;
    }
    return subiter_fail(g, "bad row %ld", 4L);
}

/* Yields 3 items, then segfaults. */
TU_EXPORT(int gen_segv(subiter_gen *g, void *arg))
{
    int r;

    (void)arg;
    if ((r = tu_yield_count(g, 3)) != 0) {
        return r;
    }
    raise(SIGSEGV);
    return 0;
}

/*
 * Writes a record of no known kind where its next record goes, tells the
 * test through the shared page, and waits to be killed. Yielding now
 * would write over it, so it only sleeps.
 */
TU_EXPORT(int gen_corrupt(subiter_gen *g, void *arg))
{
    _Atomic long *sh = arg;
    struct subiter__shm *shm = subiter__gen_shm(g);

    if (shm == NULL) {
        atomic_store(&sh[0], -1);
        return -EINVAL;
    }
    tring_forge_bad_record(shm, false);
    atomic_store(&sh[0], 1);
    sleep(30);
    return 0;
}

/* ---- producing each library code ---- */

START_TEST(test_error_produces_einit)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    subiter *it;
    int r;

    tu_snapshot(&snap);
    o.init = init_fail;
    ck_assert_int_eq(subiter_open(&it, tu_gen_count, NULL, &o), SUBITER_EINIT);
    ck_assert_str_eq(subiter_errmsg(it), "no GPU 3 found");
    ck_assert_int_gt(subiter_pid(it), 0);
    r = subiter_close(it);
    ck_assert_msg(r == 0 || r == SUBITER_ECHILD, "close: %d", r);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_error_produces_eiter)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    subiter *it;
    subiter_item item;
    long i, v;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, gen_fail, NULL, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    for (i = 0; i < 4; i++) {
        ck_assert_int_eq(subiter_next(it, &item), 1);
        memcpy(&v, item.data, sizeof v);
        ck_assert_int_eq(v, i);
    }
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_EITER);
    ck_assert_str_eq(subiter_errmsg(it), "bad row 4");
    /* Not fatal: the worker is ready for another go. */
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_int_eq(subiter_next(it, &item), 1);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

/* Opens gen_segv and reads up to its death: 3 items, then SUBITER_ECHILD. */
static subiter *open_and_crash(void)
{
    subiter_opts o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    subiter *it;
    subiter_item item;
    int i;

    ck_assert_int_eq(subiter_open(&it, gen_segv, NULL, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    /* What it published before it died comes first. */
    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(subiter_next(it, &item), 1);
    }
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECHILD);
    return it;
}

START_TEST(test_error_produces_echild_in_next)
{
    struct tu_snapshot snap;
    subiter *it;
    const char *msg;
    char pid[32];

    tu_snapshot(&snap);
    it = open_and_crash();
    msg = subiter_errmsg(it);
    snprintf(pid, sizeof pid, "%d", (int)subiter_pid(it));
    ck_assert_msg(strstr(msg, "SIGSEGV") != NULL, "no signal in \"%s\"", msg);
    ck_assert_msg(strstr(msg, "3 items") != NULL, "no count in \"%s\"", msg);
    ck_assert_msg(strstr(msg, pid) != NULL, "no pid in \"%s\"", msg);
    ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_error_produces_echild_in_open)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    subiter *it;
    subiter_item item;

    tu_snapshot(&snap);
    o.init = tu_init_exit5;
    ck_assert_int_eq(subiter_open(&it, tu_gen_count, NULL, &o), SUBITER_ECHILD);
    ck_assert_msg(strstr(subiter_errmsg(it), "status 5") != NULL,
                  "no exit status in \"%s\"", subiter_errmsg(it));
    ck_assert_int_eq(subiter_start(it, NULL, 0), SUBITER_ECLOSED);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECLOSED);
    ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_error_produces_etimedout_in_next)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(300, TU_LONG_GRACE_MS);
    subiter *it;
    subiter_item item;
    int64_t t0;
    int r;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, tu_gen_hang, NULL, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    ck_assert_int_eq(subiter_next(it, &item), 1);
    t0 = tu_now_ms();
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ETIMEDOUT);
    ck_assert_int_lt(tu_now_ms() - t0, 10000);
    ck_assert_msg(strstr(subiter_errmsg(it), "300 ms") != NULL,
                  "no timeout in \"%s\"", subiter_errmsg(it));
    /* Killed and reaped already: no child is left even before close. */
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECLOSED);
    ck_assert_int_eq(subiter_stop(it), SUBITER_ECLOSED);
    t0 = tu_now_ms();
    r = subiter_close(it);
    ck_assert_msg(r == SUBITER_ECHILD || r == SUBITER_ETIMEDOUT, "close: %d",
                  r);
    ck_assert_int_lt(tu_now_ms() - t0, 10000);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_error_produces_etimedout_in_open)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(300, TU_LONG_GRACE_MS);
    subiter *it;
    int r;

    tu_snapshot(&snap);
    o.init = init_hang;
    ck_assert_int_eq(subiter_open(&it, tu_gen_count, NULL, &o),
                     SUBITER_ETIMEDOUT);
    ck_assert_str_ne(subiter_errmsg(it), "");
    ck_assert_int_eq(subiter_start(it, NULL, 0), SUBITER_ECLOSED);
    r = subiter_close(it);
    ck_assert_msg(r == SUBITER_ECHILD || r == SUBITER_ETIMEDOUT, "close: %d",
                  r);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_error_produces_eproto)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts_grace(10000, TU_LONG_GRACE_MS);
    _Atomic long *sh;
    void *page;
    subiter *it;
    subiter_item item;
    int64_t t0;
    int r;

    tu_snapshot(&snap);
    page = tu_shared_new(PAGE);
    sh = page;
    ck_assert_int_eq(subiter_open(&it, gen_corrupt, page, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    /* Let the generator scribble before we look at the ring. */
    t0 = tu_now_ms();
    while (atomic_load(&sh[0]) == 0 && tu_now_ms() - t0 < 10000) {
        tu_sleep_ms(1);
    }
    ck_assert_int_eq(atomic_load(&sh[0]), 1);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_EPROTO);
    ck_assert_ptr_null(item.data);
    ck_assert_msg(strstr(subiter_errmsg(it), "protocol") != NULL,
                  "errmsg \"%s\"", subiter_errmsg(it));
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECLOSED);
    ck_assert_int_eq(subiter_start(it, NULL, 0), SUBITER_ECLOSED);
    r = subiter_close(it);
    ck_assert_msg(r == SUBITER_ECHILD || r == SUBITER_ETIMEDOUT, "close: %d",
                  r);
    tu_shared_free(page, PAGE);
    tu_assert_clean(&snap);
}
END_TEST

START_TEST(test_error_produces_eclosed)
{
    struct tu_snapshot snap;
    subiter *it;
    subiter_item item;
    char msg[SUBITER__ERRMSG_MAX];
    int i;

    tu_snapshot(&snap);
    it = open_and_crash();
    snprintf(msg, sizeof msg, "%s", subiter_errmsg(it));
    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECLOSED);
        ck_assert_int_eq(subiter_start(it, NULL, 0), SUBITER_ECLOSED);
        ck_assert_int_eq(subiter_stop(it), SUBITER_ECLOSED);
    }
    /* ECLOSED keeps the message that explains the death. */
    ck_assert_str_eq(subiter_errmsg(it), msg);
    ck_assert_int_eq(subiter_close(it), SUBITER_ECHILD);
    tu_assert_clean(&snap);
}
END_TEST

/* A pool's finalize with no grace cancels the running task (deaf to ABORT:
 * one item, then 30 s asleep) and the queued one. */
START_TEST(test_error_produces_ecanceled)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts(0);
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;
    subiter_pool *p;
    subiter_pool_item item;
    int r, ends = 0;

    tu_snapshot(&snap);
    po.workers = 1;
    po.worker = &o;
    ck_assert_int_eq(subiter_pool_open(&p, tu_gen_hang, NULL, &po), 0);
    ck_assert_int_eq(subiter_pool_submit(p, NULL, 0, 0, NULL), 0);
    ck_assert_int_eq(subiter_pool_submit(p, NULL, 0, 0, NULL), 0);
    ck_assert_int_eq(subiter_pool_finalize(p, 0), 0);
    while ((r = subiter_pool_next(p, &item)) == 1) {
        if (item.kind == SUBITER_POOL_TASK_END) {
            ck_assert_int_eq(item.code, SUBITER_ECANCELED);
            ck_assert_str_ne(item.errmsg, "");
            ends++;
        }
    }
    ck_assert_int_eq(r, 0);
    ck_assert_int_eq(ends, 2);
    ck_assert_int_eq(subiter_pool_submit(p, NULL, 0, 0, NULL), -ESHUTDOWN);
    r = subiter_pool_close(p);
    ck_assert_msg(r == 0 || r == SUBITER_ETIMEDOUT, "close: %d", r);
    tu_assert_clean(&snap);
}
END_TEST

/* RLIMIT_NOFILE lowered and the fds below it filled, so that exactly
 * `spare` fds are free. */
struct squeeze {
    struct rlimit old;
    int fillers[1024];
    int n;
};

static void squeeze_fds(struct squeeze *q, int spare)
{
    struct rlimit low;
    int fd, top = 0;

    for (fd = 0; fd < 1024; fd++) {
        if (fcntl(fd, F_GETFD) >= 0) {
            top = fd;
        }
    }
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &q->old), 0);
    low = q->old;
    low.rlim_cur = (rlim_t)(top + 1 + spare);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    /* Fill every hole, then free the `spare` highest: the last opened. */
    q->n = 0;
    while ((fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0) {
        q->fillers[q->n++] = fd;
        ck_assert_int_lt(q->n, 1024);
    }
    ck_assert_int_ge(q->n, spare);
    while (spare-- > 0) {
        close(q->fillers[--q->n]);
    }
}

static void unsqueeze_fds(struct squeeze *q)
{
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &q->old), 0);
    while (q->n > 0) {
        close(q->fillers[--q->n]);
    }
}

/* Open with `spare` fds free; returns subiter_open()'s result. */
static int open_squeezed(subiter **it, int spare)
{
    struct squeeze q;
    int r;

    squeeze_fds(&q, spare);
    r = subiter_open(it, tu_gen_count, (void *)(intptr_t)3, NULL);
    unsqueeze_fds(&q);
    return r;
}

/* A system call's failure surfaces as its -errno with a message that
 * names it: with no fd free memfd_create() fails, with one eventfd(). */
START_TEST(test_error_produces_errno_from_the_system)
{
    static const char *const what[] = {"shared ring", "eventfd"};
    struct tu_snapshot snap;
    subiter *it = NULL;

    tu_snapshot(&snap);
    ck_assert_int_eq(open_squeezed(&it, _i), -EMFILE);
    ck_assert_ptr_nonnull(it);
    ck_assert_ptr_nonnull(
        strstr(subiter_errmsg(it), subiter_strerror(-EMFILE)));
    ck_assert_ptr_nonnull(strstr(subiter_errmsg(it), what[_i]));
    ck_assert_int_eq(subiter_pid(it), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), SUBITER_ECLOSED);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

/* A file size limit below the ring's makes ftruncate() of the memfd fail
 * (EFBIG, with SIGXFSZ ignored): open says so, and leaves nothing. */
START_TEST(test_error_produces_errno_from_ftruncate)
{
    struct tu_snapshot snap;
    struct rlimit old, low;
    subiter *it = NULL;
    int r;

    tu_snapshot(&snap);
    signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    low = old;
    low.rlim_cur = 4096;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &low), 0);
    r = subiter_open(&it, tu_gen_count, (void *)(intptr_t)3, NULL);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    ck_assert_int_eq(r, -EFBIG);
    ck_assert_ptr_nonnull(strstr(subiter_errmsg(it), "shared ring"));
    ck_assert_ptr_nonnull(strstr(subiter_errmsg(it), subiter_strerror(-EFBIG)));
    ck_assert_int_eq(subiter_pid(it), 0);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

static Suite *error_suite(void)
{
    Suite *s = suite_create("error");
    TCase *tc;

    tc = tcase_create("text");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_error_table_is_consistent);
    tcase_add_test(tc, test_error_every_library_code_by_name);
    tcase_add_test(tc, test_error_errno_codes);
    tcase_add_test(tc, test_error_unknown_codes_never_null);
    suite_add_tcase(s, tc);

    tc = tcase_create("produced");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_error_produces_einit);
    tcase_add_test(tc, test_error_produces_eiter);
    tcase_add_test(tc, test_error_produces_echild_in_next);
    tcase_add_test(tc, test_error_produces_echild_in_open);
    tcase_add_test(tc, test_error_produces_etimedout_in_next);
    tcase_add_test(tc, test_error_produces_etimedout_in_open);
    tcase_add_test(tc, test_error_produces_eproto);
    tcase_add_test(tc, test_error_produces_eclosed);
    tcase_add_test(tc, test_error_produces_ecanceled);
    tcase_add_loop_test(tc, test_error_produces_errno_from_the_system, 0, 2);
    tcase_add_test(tc, test_error_produces_errno_from_ftruncate);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(error_suite());
}
