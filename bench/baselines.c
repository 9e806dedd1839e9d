/* baselines.c: what subiter is measured against, run by the streaming
 * runner in stream.c: the generator called in process (impl=inproc), a
 * pipe from a forked child carrying a length and the payload per item
 * (impl=pipe), the same pipe carrying protobuf-c messages (impl=pipe_pb),
 * memcpy into a ring-sized buffer (impl=memcpy, the bandwidth limit), and
 * a pipe echo for the ping-pong figure.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/bench.pb-c.h"

/* The pipe baselines' child, alive for a whole measurement: for each
 * count n read from `cmd`, n items, each a 4-byte length and the payload
 * (raw, or a packed BenchItem) in one write, then an END_MARK length. */
#define END_MARK UINT32_MAX

static _Noreturn void pipe_child(const struct runner *r, int cmd, int fd)
{
    unsigned char *hot = r->gen.hot, *wbuf = r->b->wbuf;
    size_t len = r->t->item_bytes;
    uint64_t n, i;

    while (read_full(cmd, &n, sizeof n) == sizeof n) {
        uint32_t hdr;

        for (i = 0; i < n; i++) {
            struct iovec iov[2];

            stamp(hot, len, i);
            if (r->t->impl == IMPL_PIPE_PB) {
                BenchItem m = BENCH_ITEM__INIT;
                size_t sz;

                m.seq = i;
                m.payload.data = hot;
                m.payload.len = len;
                sz = bench_item__get_packed_size(&m);
                bench_item__pack(&m, wbuf + sizeof hdr);
                hdr = (uint32_t)sz;
                memcpy(wbuf, &hdr, sizeof hdr);
                if (write_full(fd, wbuf, sizeof hdr + sz) < 0) {
                    _exit(1);
                }
            } else {
                hdr = (uint32_t)len;
                iov[0].iov_base = &hdr;
                iov[0].iov_len = sizeof hdr;
                iov[1].iov_base = hot;
                iov[1].iov_len = len;
                if (writev_full(fd, iov, len > 0 ? 2 : 1) < 0) {
                    _exit(1);
                }
            }
        }
        mark_cpu(r->gen.cpu_ns);
        hdr = END_MARK;
        if (write_full(fd, &hdr, sizeof hdr) < 0) {
            _exit(1);
        }
    }
    _exit(0);
}

/* The pipe ping-pong child: echoes PING_BYTES messages until EOF. */
static _Noreturn void echo_child(const struct runner *r, int cmd, int fd)
{
    unsigned char msg[PING_BYTES];

    while (read_full(cmd, msg, sizeof msg) == sizeof msg) {
        if (is_probe(msg, sizeof msg)) {
            mark_cpu(r->gen.cpu_ns);
        }
        if (write_full(fd, msg, sizeof msg) < 0) {
            _exit(1);
        }
    }
    _exit(0);
}

/* Fork the pipe child (the echo child with `echo`), one pipe each way. */
int baseline_setup(struct runner *r, bool echo)
{
    int a[2], b[2];

    if (pipe2(a, O_CLOEXEC) < 0) {
        set_error(r->b, "pipe2: %s", strerror(errno));
        return -1;
    }
    if (pipe2(b, O_CLOEXEC) < 0) {
        set_error(r->b, "pipe2: %s", strerror(errno));
        close(a[0]);
        close(a[1]);
        return -1;
    }
    fflush(NULL);
    r->pid = fork();
    if (r->pid == 0) {
        close(a[1]);
        close(b[0]);
        if (echo) {
            echo_child(r, a[0], b[1]);
        }
        pipe_child(r, a[0], b[1]);
    }
    close(a[0]);
    close(b[1]);
    if (r->pid < 0) {
        set_error(r->b, "fork: %s", strerror(errno));
        close(a[1]);
        close(b[0]);
        return -1;
    }
    r->to_child = a[1];
    r->from_child = b[0];
    return 0;
}

int fork_commanded(struct runner *r,
                   void (*child)(const struct runner *r, int cmd))
{
    int a[2];

    if (pipe2(a, O_CLOEXEC) < 0) {
        set_error(r->b, "pipe2: %s", strerror(errno));
        return -1;
    }
    fflush(NULL);
    r->pid = fork();
    if (r->pid == 0) {
        close(a[1]);
        child(r, a[0]);
        _exit(1); /* children do not return */
    }
    close(a[0]);
    if (r->pid < 0) {
        set_error(r->b, "fork: %s", strerror(errno));
        close(a[1]);
        return -1;
    }
    r->to_child = a[1];
    r->from_child = -1;
    return 0;
}

typedef void (*emit_fn)(uint64_t *sink, const void *data, size_t len);

static void emit_touch(uint64_t *sink, const void *data, size_t len)
{
    consume(sink, data, len, CONSUME_TOUCH);
}

static void emit_read(uint64_t *sink, const void *data, size_t len)
{
    consume(sink, data, len, CONSUME_READ);
}

/* The in-process generator: the same per-item work, handing each item to
 * the consumer through a callback the compiler cannot see through (it is
 * read from a volatile on every item). */
__attribute__((noinline)) static void gen_inproc(unsigned char *hot, size_t len,
                                                 uint64_t n,
                                                 emit_fn volatile const *emit,
                                                 uint64_t *sink)
{
    uint64_t i;

    for (i = 0; i < n; i++) {
        stamp(hot, len, i);
        (*emit)(sink, hot, len);
    }
}

void run_inproc(struct runner *r, uint64_t n)
{
    emit_fn volatile const emit =
        r->t->consume == CONSUME_READ ? emit_read : emit_touch;

    gen_inproc(r->b->hot, r->t->item_bytes, n, &emit, &r->b->sink);
}

/* The bandwidth limit: one memcpy per item from the hot buffer into a
 * destination as big as subiter's ring, advancing through it as the ring
 * does. */
void run_memcpy(struct runner *r, uint64_t n)
{
    const struct spec *t = r->t;
    unsigned char *rbuf = r->b->rbuf, *hot = r->b->hot;
    size_t len = t->item_bytes, step = (len + 63) & ~(size_t)63, off = 0;
    size_t cap =
        t->buffer_bytes < r->b->rbuf_size ? t->buffer_bytes : r->b->rbuf_size;
    uint64_t i;

    for (i = 0; i < n; i++) {
        if (off + len > cap) {
            off = 0;
        }
        memcpy(rbuf + off, hot, len);
        off += step;
    }
    r->b->sink += rbuf[0];
}

int run_pipe(struct runner *r, uint64_t n)
{
    const struct spec *t = r->t;
    struct bench *b = r->b;
    uint64_t got = 0;

    if (write_full(r->to_child, &n, sizeof n) < 0) {
        set_error(b, "pipe: write: %s", strerror(errno));
        return -1;
    }
    for (;;) {
        uint32_t len;

        if (read_full(r->from_child, &len, sizeof len) != sizeof len) {
            set_error(b, "pipe: short read after %" PRIu64 " items", got);
            return -1;
        }
        if (len == END_MARK) {
            break;
        }
        if (len > b->rbuf_size ||
            read_full(r->from_child, b->rbuf, len) != (ssize_t)len) {
            set_error(b, "pipe: bad record after %" PRIu64 " items", got);
            return -1;
        }
        if (t->impl == IMPL_PIPE_PB) {
            BenchItem *m = bench_item__unpack(NULL, len, b->rbuf);

            if (!m) {
                set_error(b, "pipe_pb: unpack failed");
                return -1;
            }
            consume(&b->sink, m->payload.data, m->payload.len, t->consume);
            bench_item__free_unpacked(m, NULL);
        } else {
            consume(&b->sink, b->rbuf, len, t->consume);
        }
        got++;
    }
    if (got != n) {
        set_error(b, "pipe: got %" PRIu64 " of %" PRIu64 " items", got, n);
        return -1;
    }
    return 0;
}

/* One ping-pong round trip of PING_BYTES through the pipes. */
int ping_pipe(struct runner *r, unsigned char *msg)
{
    if (write_full(r->to_child, msg, PING_BYTES) < 0 ||
        read_full(r->from_child, msg, PING_BYTES) != PING_BYTES) {
        set_error(r->b, "pipe ping-pong: short read or write");
        return -1;
    }
    return 0;
}
