/* zmq.c: ZeroMQ PUSH/PULL over ipc:// (impl=zmq), what a C pipeline might
 * pick instead of subiter: a forked child pushes each item (zmq_send(),
 * which copies it into a message), the bench pulls it (zmq_msg_recv(),
 * the payload consumed in place). Built when configure finds libzmq
 * (Debian libzmq3-dev); the library itself never links it.
 */
#include "config.h"

#ifdef HAVE_ZMQ

#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "bench/bench.h"

/* The child: for each count n read from `cmd`, n items pushed; it
 * connects at the first count, when the bench has bound. */
static _Noreturn void push_child(const struct runner *r, int cmd)
{
    const char *endpoint = r->zmq_endpoint;
    unsigned char *hot = r->gen.hot;
    size_t len = r->t->item_bytes;
    void *ctx = NULL, *s = NULL;
    uint64_t n, i;

    while (read_full(cmd, &n, sizeof n) == sizeof n) {
        if (s == NULL) {
            int zero = 0;

            ctx = zmq_ctx_new();
            s = ctx != NULL ? zmq_socket(ctx, ZMQ_PUSH) : NULL;
            if (s == NULL ||
                zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
                zmq_connect(s, endpoint) != 0) {
                _exit(1);
            }
        }
        for (i = 0; i < n; i++) {
            stamp(hot, len, i);
            if (zmq_send(s, hot, len, 0) < 0) {
                _exit(1);
            }
        }
        mark_cpu(r->gen.cpu_ns);
    }
    if (s != NULL) {
        zmq_close(s);
        zmq_ctx_term(ctx);
    }
    _exit(0);
}

int zmq_setup(struct runner *r)
{
    int zero = 0;

    snprintf(r->zmq_endpoint, sizeof r->zmq_endpoint,
             "ipc:///tmp/subiter-bench-zmq-%d", (int)getpid());
    /* Forked before the bench has a context: ZeroMQ's threads and state
     * do not survive a fork, so the child makes its own. */
    if (fork_commanded(r, push_child) < 0) {
        return -1;
    }
    r->zmq_ctx = zmq_ctx_new();
    r->zmq_sock = r->zmq_ctx != NULL ? zmq_socket(r->zmq_ctx, ZMQ_PULL) : NULL;
    if (r->zmq_sock == NULL ||
        zmq_setsockopt(r->zmq_sock, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_bind(r->zmq_sock, r->zmq_endpoint) != 0) {
        set_error(r->b, "zmq PULL on %s: %s", r->zmq_endpoint,
                  zmq_strerror(zmq_errno()));
        return -1;
    }
    return 0;
}

int zmq_run(struct runner *r, uint64_t n)
{
    enum consume how = r->t->consume;
    uint64_t i;

    if (write_full(r->to_child, &n, sizeof n) < 0) {
        set_error(r->b, "zmq: the pushing child is gone");
        return -1;
    }
    for (i = 0; i < n; i++) {
        zmq_msg_t m;

        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, r->zmq_sock, 0) < 0) {
            set_error(r->b, "zmq_msg_recv: %s", zmq_strerror(zmq_errno()));
            zmq_msg_close(&m);
            return -1;
        }
        consume(&r->b->sink, zmq_msg_data(&m), zmq_msg_size(&m), how);
        zmq_msg_close(&m);
    }
    return 0;
}

void zmq_teardown(struct runner *r)
{
    if (r->zmq_sock != NULL) {
        zmq_close(r->zmq_sock);
        r->zmq_sock = NULL;
    }
    if (r->zmq_ctx != NULL) {
        zmq_ctx_term(r->zmq_ctx);
        r->zmq_ctx = NULL;
    }
    /* ipc:// leaves its socket file when the binder exits abnormally. */
    if (r->zmq_endpoint[0] != '\0') {
        (void)unlink(r->zmq_endpoint + strlen("ipc://"));
        r->zmq_endpoint[0] = '\0';
    }
}

#endif /* HAVE_ZMQ */
