/* check_hostile.c: the parent treats the worker's shared memory as hostile.
 * A generator scribbles over its own ring (through a test hook); the parent
 * must answer SUBITER_EPROTO, kill and reap the worker, and never crash,
 * hang or read out of bounds (ASan runs this suite in CI). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "testring.h"
#include "testutil.h"

enum scribble {
    LAP_LONG,      /* a record as long as the ring, from its start */
    PAD_AT_START,  /* padding to the end, then padding at the start */
    LEN_PAST_END,  /* a record running past the end of the ring */
    BAD_KIND,      /* a record of an unknown kind */
    PAD_LEN,       /* padding with a length */
    GARBAGE_PB,    /* a frame that is not protobuf */
    BAD_CODE,      /* valid protobuf, a status code that does not exist */
    ITEM_IN_INIT,  /* valid protobuf, an item outside an iteration */
    OTHER_SEQ,     /* a well-formed FINISHED of another iteration */
    STARTED_TWICE, /* ITERATION_STARTED again in the same iteration */
    UNEXPECTED,    /* "I received an unexpected command" */
    N_SCRIBBLES
};

static const char *const names[] = {
    "record of a lap", "padding at start",      "length past end",
    "bad kind",        "padding with a length", "garbage protobuf",
    "bad code",        "item during init",      "other iteration",
    "started twice",   "unexpected command",
};

/* What errmsg must name, where the scribble is a well-formed status the
 * parent must refuse for what it says. */
static const char *const reasons[N_SCRIBBLES] = {
    [OTHER_SEQ] = "status of another iteration",
    [STARTED_TWICE] = "unexpected ITERATION_STARTED",
    [UNEXPECTED] = "it received an unexpected command",
};

struct raw {
    unsigned char *data;
    uint32_t size, off; /* off: where the worker's next record goes */
};

static struct raw raw_ring(struct subiter__shm *shm)
{
    struct raw w;

    w.data = (unsigned char *)shm + shm->hdr_bytes + shm->cmd_bytes;
    w.size = shm->item_bytes;
    /* The worker shows its index once per batch: walk the records it has
     * published since, up to the header that says "not yet". */
    w.off = atomic_load(&shm->item_tail) & (w.size - 1);
    for (;;) {
        uint64_t word =
            atomic_load((_Atomic uint64_t *)(void *)(w.data + w.off));
        uint32_t h[2];

        memcpy(h, &word, sizeof h);
        if (h[1] == SUBITER__REC_NONE) {
            return w;
        }
        w.off = h[1] == SUBITER__REC_PAD
                    ? 0
                    : (w.off + (uint32_t)subiter__ring_rec_bytes(h[0])) &
                          (w.size - 1);
    }
}

/* Publish a raw record at `off`: its frame, then its header (ring.h). */
static void put_record_at(struct raw *w, uint32_t off, uint32_t len,
                          uint32_t kind, const void *frame)
{
    if (frame != NULL) {
        memcpy(w->data + off + SUBITER__REC_HDR, frame, len);
    }
    atomic_store((_Atomic uint64_t *)(void *)(w->data + off),
                 subiter__ring_hdr_word(len, kind));
}

/* The same where the worker's next record goes. */
static void put_record(struct subiter__shm *shm, uint32_t len, uint32_t kind,
                       const void *frame)
{
    struct raw w = raw_ring(shm);

    put_record_at(&w, w.off, len, kind, frame);
}

/* Publish a well-formed status frame (the first iteration is seq 1). */
static void put_status(struct subiter__shm *shm, int code, uint64_t seq)
{
    unsigned char frame[64];
    uint32_t len;

    len = (uint32_t)subiter__wire_status_pack(code, seq, NULL, 0, frame);
    put_record(shm, len, SUBITER__REC_FRAME, frame);
}

static void scribble(subiter_gen *g, enum scribble how)
{
    struct subiter__shm *shm = subiter__gen_shm(g);
    static const unsigned char garbage[16] = {
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    };
    static const unsigned char bad_code[2] = {0x08, 99};
    struct raw w = raw_ring(shm);

    switch (how) {
    case LAP_LONG:
        /* Padding to the end, then at the start a record that would end
         * where it begins, a lap later. */
        put_record_at(&w, 0, w.size - SUBITER__REC_HDR, SUBITER__REC_FRAME,
                      NULL);
        put_record(shm, 0, SUBITER__REC_PAD, NULL);
        break;
    case PAD_AT_START:
        /* The records before put the worker mid-ring. */
        put_record_at(&w, 0, 0, SUBITER__REC_PAD, NULL);
        put_record(shm, 0, SUBITER__REC_PAD, NULL);
        break;
    case LEN_PAST_END:
        put_record(shm, w.size * 2, SUBITER__REC_FRAME, NULL);
        break;
    case BAD_KIND:
        put_record(shm, 8, 7, NULL);
        break;
    case PAD_LEN:
        put_record(shm, 8, SUBITER__REC_PAD, NULL);
        break;
    case GARBAGE_PB:
        put_record(shm, sizeof garbage, SUBITER__REC_FRAME, garbage);
        break;
    case BAD_CODE:
    case ITEM_IN_INIT:
        put_record(shm, sizeof bad_code, SUBITER__REC_FRAME, bad_code);
        break;
    case OTHER_SEQ:
        put_status(shm, SUBITER__FINISHED, 7);
        break;
    case STARTED_TWICE:
        put_status(shm, SUBITER__STARTED, 1);
        break;
    case UNEXPECTED:
        put_status(shm, SUBITER__UNEXPECTED, 1);
        break;
    case N_SCRIBBLES:
        break;
    }
    subiter__gen_kick(g);
}

/* Yield two good items, scribble, then either stay alive (the parent must
 * kill it) or exit (the parent must still report EPROTO, not ECHILD, since
 * the bad record was published before the death). */
TU_EXPORT(int gen_hostile(subiter_gen *g, void *arg))
{
    long how = (long)(intptr_t)arg;

    if (tu_yield_count(g, 2) != 0) {
        return 0;
    }
    /* Wait until the parent has taken both, so that what is scribbled at
     * the start of the ring (LAP_LONG, PAD_AT_START) is not a record it
     * has still to read. */
    while (atomic_load(&subiter__gen_shm(g)->items_consumed) < 2) {
        usleep(1000);
    }
    scribble(g, (enum scribble)(how % N_SCRIBBLES));
    if (how >= N_SCRIBBLES) {
        _exit(0);
    }
    for (;;) {
        pause();
    }
    return 0;
}

/* A worker whose first status is an item: the init handshake is broken. */
TU_EXPORT(int init_hostile(subiter_gen *g, void *arg))
{
    struct subiter__shm *shm = subiter__gen_shm(g);
    static const unsigned char item[8] = {0x08, 0x05, 0x1a, 0x80,
                                          0x80, 0x80, 0x80, 0x00};

    (void)arg;
    put_record(shm, sizeof item, SUBITER__REC_FRAME, item);
    subiter__gen_kick(g);
    for (;;) {
        pause();
    }
    return 0;
}

TU_EXPORT(int gen_none(subiter_gen *g, void *arg))
{
    (void)g;
    (void)arg;
    return 0;
}

static void expect_eproto(long how)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts(10000);
    subiter_item item;
    subiter *it;
    int64_t t0;
    int r, n = 0;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, gen_hostile, (void *)(intptr_t)how, &o),
                     0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    t0 = tu_now_ms();
    while ((r = subiter_next(it, &item)) == 1) {
        n++;
        ck_assert_int_le(n, 2);
    }
    ck_assert_msg(r == SUBITER_EPROTO, "%s: got %s (%s)",
                  names[how % N_SCRIBBLES], subiter_errname(r),
                  subiter_errmsg(it));
    /* Well before the 10 s timeout: the parent noticed, it did not wait. */
    ck_assert_int_lt(tu_now_ms() - t0, 5000);
    ck_assert_ptr_nonnull(strstr(subiter_errmsg(it), "protocol"));
    if (reasons[how % N_SCRIBBLES] != NULL) {
        ck_assert_ptr_nonnull(
            strstr(subiter_errmsg(it), reasons[how % N_SCRIBBLES]));
    }
    /* The worker was killed and reaped before next returned. */
    ck_assert_int_eq(kill(subiter_pid(it), 0), -1);
    ck_assert_int_eq(subiter_next(it, &item), SUBITER_ECLOSED);
    ck_assert_int_eq(subiter_start(it, NULL, 0), SUBITER_ECLOSED);
    (void)subiter_close(it);
    tu_assert_clean(&snap);
}

START_TEST(test_hostile_scribble_alive)
{
    expect_eproto(_i);
}
END_TEST

START_TEST(test_hostile_scribble_then_exit)
{
    expect_eproto(N_SCRIBBLES + _i);
}
END_TEST

START_TEST(test_hostile_item_during_init)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts(10000);
    subiter *it;

    tu_snapshot(&snap);
    o.init = init_hostile;
    ck_assert_int_eq(subiter_open(&it, gen_none, NULL, &o), SUBITER_EPROTO);
    ck_assert_ptr_nonnull(strstr(subiter_errmsg(it), "initializ"));
    (void)subiter_close(it);
    tu_assert_clean(&snap);
}
END_TEST

/* Scribbling over the header's sizes changes nothing: the parent keeps
 * its own copies, taken before the fork. */
TU_EXPORT(int gen_header(subiter_gen *g, void *arg))
{
    struct subiter__shm *shm = subiter__gen_shm(g);

    (void)arg;
    shm->magic = 0;
    shm->version = 99;
    shm->hdr_bytes = 0xffffffffu;
    shm->cmd_bytes = 0xffffffffu;
    shm->item_bytes = 3;
    shm->buffer_items = 0;
    atomic_store(&shm->items_published, 0xdeadbeefu);
    /* The item ring's index too: the parent reads the records' headers
     * (ring.h), and the next item stores it again. */
    atomic_store(&shm->item_tail, 0xdeadbee8u);
    /* A wake-up with nothing new is harmless too. */
    subiter__gen_kick(g);
    return tu_yield_count(g, 100);
}

START_TEST(test_hostile_header_scribble_is_ignored)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts(10000);
    subiter_item item;
    subiter *it;
    long i, v;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, gen_header, NULL, &o), 0);
    ck_assert_int_eq(subiter_start(it, NULL, 0), 0);
    for (i = 0; i < 100; i++) {
        ck_assert_int_eq(subiter_next(it, &item), 1);
        memcpy(&v, item.data, sizeof v);
        ck_assert_int_eq(v, i);
    }
    ck_assert_int_eq(subiter_next(it, &item), 0);
    ck_assert_int_eq(subiter_close(it), 0);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- isolation: what a worker can reach ---- */

struct probe {
    int own_maps;     /* library mappings the worker sees */
    int truncate_err; /* errno of ftruncate() on its own ring, 0: it worked */
    int seals;        /* F_GET_SEALS of it */
    int done;
};

/* Opens its own ring through /proc/self/map_files (the memfd itself is
 * closed) and tries to shrink it, which would make the parent die of
 * SIGBUS if it worked. */
TU_EXPORT(int gen_probe(subiter_gen *g, void *arg))
{
    struct probe *pr = arg;
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512], path[128];
    unsigned long lo, hi;
    int fd;

    (void)g;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        /* The ring's memfd, not "subiter-handoff" (FORKSERVER, SPAWN). */
        if (strstr(line, "/memfd:subiter ") == NULL) {
            continue;
        }
        pr->own_maps++;
        if (sscanf(line, "%lx-%lx", &lo, &hi) != 2) {
            continue;
        }
        snprintf(path, sizeof path, "/proc/self/map_files/%lx-%lx", lo, hi);
        fd = open(path, O_RDWR);
        if (fd < 0) {
            pr->truncate_err = -errno;
            continue;
        }
        pr->seals = fcntl(fd, F_GET_SEALS);
        pr->truncate_err = ftruncate(fd, 4096) == 0 ? 0 : errno;
        close(fd);
    }
    if (f != NULL) {
        fclose(f);
    }
    pr->done = 1;
    return 0;
}

/*
 * Sealed against resizing: a worker that gets hold of its ring cannot
 * shrink it. And a worker opened after another does not map the other's
 * ring (MADV_DONTFORK; each worker maps its own).
 */
START_TEST(test_hostile_ring_sealed_and_private)
{
    struct tu_snapshot snap;
    subiter_opts o = tu_opts(10000);
    struct probe *pr = tu_shared_new(sizeof *pr);
    subiter_item item;
    subiter *first, *second;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&first, gen_header, NULL, &o), 0);
    ck_assert_int_eq(subiter_open(&second, gen_probe, pr, &o), 0);
    ck_assert_int_eq(subiter_start(second, NULL, 0), 0);
    ck_assert_int_eq(subiter_next(second, &item), 0);
    ck_assert_int_eq(pr->done, 1);
    ck_assert_int_eq(pr->own_maps, 1);
    if (pr->truncate_err >= 0) {
        /* map_files was readable (root, or our own process). */
        ck_assert_int_eq(pr->truncate_err, EPERM);
        ck_assert_int_eq(pr->seals & (F_SEAL_SHRINK | F_SEAL_GROW),
                         F_SEAL_SHRINK | F_SEAL_GROW);
        ck_assert(pr->seals & F_SEAL_SEAL);
    }
    ck_assert_int_eq(subiter_close(second), 0);
    ck_assert_int_eq(subiter_close(first), 0);
    tu_shared_free(pr, sizeof *pr);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- a worker facing a header it does not know ---- */

struct region {
    struct subiter__shm *shm;
    size_t len;
    int memfd, efd;
};

/* A shared region laid out as the parent lays it out, with the given
 * magic and version. */
static void region_new(struct region *rg, uint32_t magic, uint32_t version)
{
    rg->len = 4096 + (256u << 10) + (16u << 10);
    rg->memfd = memfd_create("subiter", MFD_CLOEXEC);
    ck_assert_int_ge(rg->memfd, 0);
    ck_assert_int_eq(ftruncate(rg->memfd, (off_t)rg->len), 0);
    rg->shm =
        mmap(NULL, rg->len, PROT_READ | PROT_WRITE, MAP_SHARED, rg->memfd, 0);
    ck_assert_ptr_ne(rg->shm, MAP_FAILED);
    rg->shm->magic = magic;
    rg->shm->version = version;
    rg->shm->hdr_bytes = 4096;
    rg->shm->cmd_bytes = 256u << 10;
    rg->shm->item_bytes = 16u << 10;
    rg->shm->buffer_items = 4;
    rg->efd = eventfd(0, EFD_CLOEXEC);
    ck_assert_int_ge(rg->efd, 0);
}

/* Fork subiter__worker_main() on the region, running fn, told that its
 * parent is `parent` (0: the test). */
static pid_t region_fork_worker(struct region *rg, subiter_iter_fn fn,
                                pid_t parent)
{
    struct subiter__child_args a;
    pid_t pid;

    memset(&a, 0, sizeof a);
    a.memfd = rg->memfd;
    a.shm_len = rg->len;
    a.efd = rg->efd;
    a.parent = parent != 0 ? parent : getpid();
    a.fn = fn;
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        subiter__worker_main(&a);
    }
    return pid;
}

static int wait_worker(pid_t pid)
{
    int status;

    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return status;
}

/* Run subiter__worker_main() on the region; returns its wait status. */
static int region_run_worker(struct region *rg)
{
    return wait_worker(region_fork_worker(rg, tu_gen_count, 0));
}

static void region_free(struct region *rg)
{
    munmap(rg->shm, rg->len);
    close(rg->memfd);
    close(rg->efd);
}

/* A protocol version it does not know: the worker fails initialization
 * with a message that says so, and exits 0. */
START_TEST(test_hostile_unknown_version_is_refused)
{
    struct tu_snapshot snap;
    struct subiter__ring cmd, items;
    struct subiter__status st;
    const unsigned char *frame;
    struct region rg;
    uint32_t len;
    int status;

    tu_snapshot(&snap);
    region_new(&rg, SUBITER__SHM_MAGIC, SUBITER__SHM_VERSION + 1);
    status = region_run_worker(&rg);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    subiter__shm_rings(rg.shm, &cmd, &items, true);
    ck_assert_int_eq(subiter__ring_peek(&items, &frame, &len), 1);
    ck_assert_int_eq(subiter__wire_status_decode(frame, len, &st), 0);
    ck_assert_int_eq(st.code, SUBITER__INIT_FAILED);
    ck_assert_int_eq(st.errnum, EPROTO);
    ck_assert_ptr_nonnull(strstr(st.message, "protocol version"));
    subiter__status_free(&st);
    region_free(&rg);
    tu_assert_clean(&snap);
}
END_TEST

/* A region that is not ours at all: the worker writes nothing into it and
 * exits with the status the parent's message explains. */
START_TEST(test_hostile_bad_magic_is_refused)
{
    struct tu_snapshot snap;
    struct subiter__ring cmd, items;
    struct region rg;
    int status;

    tu_snapshot(&snap);
    region_new(&rg, 0xdeadbeefu, SUBITER__SHM_VERSION);
    status = region_run_worker(&rg);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), SUBITER__EXIT_BAD_MAGIC);
    ck_assert_ptr_nonnull(subiter__worker_exit_reason(WEXITSTATUS(status)));
    ck_assert_ptr_null(subiter__worker_exit_reason(0));
    subiter__shm_rings(rg.shm, &cmd, &items, true);
    ck_assert(!subiter__ring_pending(&items));
    region_free(&rg);
    tu_assert_clean(&snap);
}
END_TEST

/* A worker whose parent is not the one recorded before the fork (it died
 * in between, and the worker was reparented) leaves at once, with the
 * status that says so, and writes nothing. */
START_TEST(test_hostile_orphan_leaves)
{
    struct tu_snapshot snap;
    struct subiter__ring cmd, items;
    struct region rg;
    int status;

    tu_snapshot(&snap);
    region_new(&rg, SUBITER__SHM_MAGIC, SUBITER__SHM_VERSION);
    status = wait_worker(region_fork_worker(&rg, tu_gen_count, 1));
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), SUBITER__EXIT_ORPHAN);
    subiter__shm_rings(rg.shm, &cmd, &items, true);
    ck_assert(!subiter__ring_pending(&items));
    region_free(&rg);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- a worker facing a parent that breaks the protocol ---- */

/* The parent's side of a region, played by the test. */
struct fake_parent {
    struct region rg;
    struct subiter__ring cmd, items;
    uint32_t consumed;
    char message[128]; /* of the last status read */
};

/* As the parent: send a command (cmd 0: a frame that is not one). */
static void fp_send(struct fake_parent *fp, int cmd, uint64_t seq)
{
    size_t n = cmd != 0 ? subiter__wire_command_size(cmd, seq, 0) : 16;
    void *frame;

    ck_assert_int_eq(subiter__ring_reserve(&fp->cmd, n, &frame), 0);
    if (cmd != 0) {
        subiter__wire_command_pack(cmd, seq, NULL, 0, frame);
    } else {
        memset(frame, 0xff, n);
    }
    subiter__ring_commit(&fp->cmd, (uint32_t)n);
    subiter__wake_worker(fp->rg.shm);
}

/* As the parent: the code of the next status that is not an item (items
 * are consumed), within 10 s; -1 if none came. */
static int fp_next_status(struct fake_parent *fp)
{
    int64_t end = tu_now_ms() + 10000;
    struct subiter__status st;
    const unsigned char *frame;
    uint32_t len;
    int code;

    while (tu_now_ms() < end) {
        int r = subiter__ring_peek(&fp->items, &frame, &len);

        ck_assert_int_ge(r, 0);
        if (r == 0) {
            tu_sleep_ms(1);
            continue;
        }
        ck_assert_int_eq(subiter__wire_status_decode(frame, len, &st), 0);
        code = st.code;
        snprintf(fp->message, sizeof fp->message, "%s", st.message);
        subiter__status_free(&st);
        subiter__ring_release(&fp->items, len);
        if (code != SUBITER__ITEM) {
            return code;
        }
        atomic_store(&fp->rg.shm->items_consumed, ++fp->consumed);
        subiter__wake_worker(fp->rg.shm);
    }
    return -1;
}

/* Fork a worker running fn and read its INIT_OK. */
static pid_t fp_start(struct fake_parent *fp, subiter_iter_fn fn)
{
    pid_t pid;

    memset(fp, 0, sizeof *fp);
    region_new(&fp->rg, SUBITER__SHM_MAGIC, SUBITER__SHM_VERSION);
    subiter__shm_rings(fp->rg.shm, &fp->cmd, &fp->items, true);
    pid = region_fork_worker(&fp->rg, fn, 0);
    ck_assert_int_eq(fp_next_status(fp), SUBITER__INIT_OK);
    return pid;
}

/* ABORT: the worker exits 0. */
static void fp_end(struct fake_parent *fp, pid_t pid)
{
    int status;

    fp_send(fp, SUBITER__CMD_ABORT, 0);
    status = wait_worker(pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    region_free(&fp->rg);
}

/* Yields until told to stop. */
TU_EXPORT(int gen_until_stopped(subiter_gen *g, void *arg))
{
    long i = 0;

    (void)arg;
    while (subiter_yield(g, &i, sizeof i) == 0) {
        i++;
    }
    return 0;
}

/* A command that is none in Stand By: the worker says so and stays. */
START_TEST(test_hostile_bad_command_in_stand_by)
{
    struct tu_snapshot snap;
    struct fake_parent fp;
    pid_t pid;

    tu_snapshot(&snap);
    pid = fp_start(&fp, tu_gen_count);
    fp_send(&fp, 0, 0);
    ck_assert_int_eq(fp_next_status(&fp), SUBITER__UNEXPECTED);
    ck_assert_str_eq(fp.message, "unexpected command in Stand By");
    /* Still in Stand By: a STOP there is ignored, a START runs. */
    fp_send(&fp, SUBITER__CMD_STOP, 0);
    fp_send(&fp, SUBITER__CMD_START, 1);
    ck_assert_int_eq(fp_next_status(&fp), SUBITER__STARTED);
    ck_assert_int_eq(fp_next_status(&fp), SUBITER__FINISHED);
    fp_end(&fp, pid);
    tu_assert_clean(&snap);
}
END_TEST

/* A command that is none during an iteration: reported once the
 * generator has returned, before the iteration's end. */
START_TEST(test_hostile_bad_command_in_iteration)
{
    struct tu_snapshot snap;
    struct fake_parent fp;
    pid_t pid;

    tu_snapshot(&snap);
    pid = fp_start(&fp, gen_until_stopped);
    fp_send(&fp, SUBITER__CMD_START, 1);
    ck_assert_int_eq(fp_next_status(&fp), SUBITER__STARTED);
    fp_send(&fp, 0, 1);
    fp_send(&fp, SUBITER__CMD_STOP, 1);
    ck_assert_int_eq(fp_next_status(&fp), SUBITER__UNEXPECTED);
    ck_assert_str_eq(fp.message, "command during an iteration");
    ck_assert_int_eq(fp_next_status(&fp), SUBITER__FINISHED);
    fp_end(&fp, pid);
    tu_assert_clean(&snap);
}
END_TEST

/* A command ring whose next record is impossible: the worker exits with
 * the status that says so rather than read it. */
START_TEST(test_hostile_corrupt_command_ring)
{
    struct tu_snapshot snap;
    struct fake_parent fp;
    pid_t pid;
    int status;

    tu_snapshot(&snap);
    pid = fp_start(&fp, tu_gen_count);
    tring_forge_bad_record(fp.rg.shm, true);
    subiter__wake_worker(fp.rg.shm);
    status = wait_worker(pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), SUBITER__EXIT_CMD_RING);
    ck_assert_ptr_nonnull(strstr(
        subiter__worker_exit_reason(WEXITSTATUS(status)), "command ring"));
    region_free(&fp.rg);
    tu_assert_clean(&snap);
}
END_TEST

/* ---- a worker that stops releasing its commands ---- */

#define BIG_INPUT 60000u /* four STARTs fit the command ring, five do not */

/* Moves the command ring's head back to 0, as if it had read nothing;
 * then returns, or with an input starting with 1, yields until stopped. */
TU_EXPORT(int gen_stuck_head(subiter_gen *g, void *arg))
{
    const unsigned char *in;
    size_t len;

    atomic_store(&subiter__gen_shm(g)->cmd_head, 0);
    in = subiter_input(g, &len);
    if (len > 0 && in[0] == 1) {
        return gen_until_stopped(g, arg);
    }
    return 0;
}

/* The parent never overwrites commands the worker has not released: once
 * the ring is full, start fails with SUBITER_EPROTO. */
START_TEST(test_hostile_command_ring_full)
{
    static char input[BIG_INPUT];
    struct tu_snapshot snap;
    subiter_opts o = tu_opts(10000);
    subiter_item item;
    subiter *it;
    int i;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, gen_stuck_head, NULL, &o), 0);
    for (i = 0; i < 4; i++) {
        ck_assert_int_eq(subiter_start(it, input, sizeof input), 0);
        ck_assert_int_eq(subiter_next(it, &item), 0);
    }
    ck_assert_int_eq(subiter_start(it, input, sizeof input), SUBITER_EPROTO);
    ck_assert_ptr_nonnull(strstr(subiter_errmsg(it), "command ring full"));
    ck_assert_int_eq(subiter_start(it, NULL, 0), SUBITER_ECLOSED);
    (void)subiter_close(it);
    tu_assert_clean(&snap);
}
END_TEST

/* The length of an input whose START record is exactly a quarter of the
 * command ring, but for the fourth, which is a header shorter: four of
 * them fill it up to the header it keeps free (ring.h). */
static size_t quarter_input(uint64_t seq)
{
    /* The seq-th start is iteration seq - 1, of the handle and the pool. */
    struct subiter__start_args x = {0, seq - 1};
    size_t len = SUBITER_INPUT_MAX, n, want = SUBITER__CMD_RING_BYTES / 4;

    if (seq == 4) {
        want -= SUBITER__REC_HDR;
    }
    for (;;) {
        n = subiter__wire_start_size(seq, len, &x);
        if (((SUBITER__REC_HDR + n + 7) & ~(size_t)7) <= want) {
            ck_assert_uint_eq((SUBITER__REC_HDR + n + 7) & ~(size_t)7, want);
            return len;
        }
        len--;
    }
}

/* The same with STOP: four STARTs fill the ring, so the STOP of the
 * fourth iteration finds no room, and subiter_stop() fails. */
START_TEST(test_hostile_command_ring_full_on_stop)
{
    static unsigned char input[SUBITER_INPUT_MAX];
    struct tu_snapshot snap;
    subiter_opts o = tu_opts(10000);
    subiter_item item;
    subiter *it;
    uint64_t seq;

    tu_snapshot(&snap);
    ck_assert_int_eq(subiter_open(&it, gen_stuck_head, NULL, &o), 0);
    for (seq = 1; seq <= 4; seq++) {
        input[0] = seq == 4;
        ck_assert_int_eq(subiter_start(it, input, quarter_input(seq)), 0);
        ck_assert_int_eq(subiter_next(it, &item), seq == 4);
    }
    ck_assert_int_eq(subiter_stop(it), SUBITER_EPROTO);
    ck_assert_ptr_nonnull(strstr(subiter_errmsg(it), "command ring full"));
    (void)subiter_close(it);
    tu_assert_clean(&snap);
}
END_TEST

/* In a pool: the worker whose STOP finds no room is lost while the
 * iteration stops, and replaced; the pool stays usable. */
START_TEST(test_hostile_command_ring_full_in_pool)
{
    static unsigned char input[SUBITER_INPUT_MAX];
    struct tu_snapshot snap;
    subiter_opts wo = tu_opts(10000);
    subiter_pool_opts po = SUBITER_POOL_OPTS_INIT;
    subiter_pool_stats st = SUBITER_POOL_STATS_INIT;
    subiter_pool_item item;
    subiter_pool *p;
    uint64_t seq;

    tu_snapshot(&snap);
    po.workers = 1;
    po.worker = &wo;
    ck_assert_int_eq(subiter_pool_open(&p, gen_stuck_head, NULL, &po), 0);
    for (seq = 1; seq <= 4; seq++) {
        input[0] = seq == 4;
        ck_assert_int_eq(subiter_pool_start(p, input, quarter_input(seq)), 0);
        ck_assert_int_eq(subiter_pool_next(p, &item), seq == 4);
    }
    ck_assert_int_eq(subiter_pool_stop(p), SUBITER_EPROTO);
    ck_assert_ptr_nonnull(strstr(subiter_pool_errmsg(p), "command ring full"));
    ck_assert_int_eq(subiter_pool_get_stats(p, &st), 0);
    ck_assert_uint_eq(st.replaced, 1);
    input[0] = 0;
    ck_assert_int_eq(subiter_pool_start(p, input, 1), 0);
    ck_assert_int_eq(subiter_pool_next(p, &item), 0);
    ck_assert_int_eq(subiter_pool_close(p), 0);
    tu_assert_clean(&snap);
}
END_TEST

static Suite *hostile_suite(void)
{
    Suite *s = suite_create("hostile");
    TCase *tc = tcase_create("scribble");

    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_hostile_scribble_alive, 0, N_SCRIBBLES);
    tcase_add_loop_test(tc, test_hostile_scribble_then_exit, 0, N_SCRIBBLES);
    tcase_add_test(tc, test_hostile_item_during_init);
    tcase_add_test(tc, test_hostile_header_scribble_is_ignored);
    tcase_add_test(tc, test_hostile_ring_sealed_and_private);
    tcase_add_test(tc, test_hostile_unknown_version_is_refused);
    tcase_add_test(tc, test_hostile_bad_magic_is_refused);
    tcase_add_test(tc, test_hostile_orphan_leaves);
    tcase_add_test(tc, test_hostile_bad_command_in_stand_by);
    tcase_add_test(tc, test_hostile_bad_command_in_iteration);
    tcase_add_test(tc, test_hostile_corrupt_command_ring);
    tcase_add_test(tc, test_hostile_command_ring_full);
    tcase_add_test(tc, test_hostile_command_ring_full_on_stop);
    tcase_add_test(tc, test_hostile_command_ring_full_in_pool);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run(hostile_suite());
}
