/* checkpoint.c: encodes and decodes the Checkpoint message of
 * proto/subiter.proto. The bytes come from the application (a file it
 * kept, maybe from another version or another run), so the decoder
 * trusts nothing: protobuf-c's unpack, then a check of every field that
 * the message itself can contradict. What must match the resuming pool
 * is checked by the pool (pool_shards.c). */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "subiter.pb-c.h"

static void *pb_alloc(void *data, size_t n)
{
    void *p = subiter__malloc(n);

    if (p == NULL) {
        *(bool *)data = true;
    }
    return p;
}

static void pb_free(void *data, void *p)
{
    (void)data;
    subiter__free(p);
}

static void fill(Checkpoint *m, const struct subiter__ckpt *c)
{
    checkpoint__init(m);
    m->version = c->version;
    m->order = c->order;
    m->workers = c->workers;
    m->rank = c->rank;
    m->world_size = c->world_size;
    m->turn = c->turn;
    m->iteration = c->iteration;
    m->n_delivered = c->workers;
    m->delivered = (uint64_t *)(uintptr_t)c->delivered;
}

size_t subiter__ckpt_size(const struct subiter__ckpt *c)
{
    Checkpoint m;

    fill(&m, c);
    return checkpoint__get_packed_size(&m);
}

size_t subiter__ckpt_pack(const struct subiter__ckpt *c, void *out)
{
    Checkpoint m;

    fill(&m, c);
    return checkpoint__pack(&m, out);
}

static int bad(struct subiter__ckpt *c, char *why, size_t why_len,
               const char *fmt, ...) SUBITER_PRINTF(4, 5);

/* Refuse: `why` says what, and nothing decoded is kept. */
static int bad(struct subiter__ckpt *c, char *why, size_t why_len,
               const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
    subiter__ckpt_free(c);
    return -EINVAL;
}

int subiter__ckpt_decode(const void *buf, size_t len, struct subiter__ckpt *c,
                         char *why, size_t why_len)
{
    bool nomem = false;
    ProtobufCAllocator a = {pb_alloc, pb_free, &nomem};
    Checkpoint *m;

    memset(c, 0, sizeof *c);
    if (buf == NULL || len == 0) {
        return bad(c, why, why_len, "checkpoint: empty");
    }
    m = checkpoint__unpack(&a, len, buf);
    if (m == NULL) {
        if (nomem) {
            snprintf(why, why_len, "out of memory");
            return -ENOMEM;
        }
        return bad(c, why, why_len,
                   "checkpoint: %zu bytes that are not a Checkpoint message",
                   len);
    }
    c->owned = m;
    if (m->version != SUBITER__CKPT_VERSION) {
        return bad(c, why, why_len,
                   "checkpoint: version %u, this library reads version %u",
                   m->version, SUBITER__CKPT_VERSION);
    }
    if (m->workers == 0 || m->n_delivered != m->workers) {
        return bad(c, why, why_len,
                   "checkpoint: %zu delivered counts for %u workers",
                   m->n_delivered, m->workers);
    }
    if (m->turn >= m->workers) {
        return bad(c, why, why_len, "checkpoint: turn %u of %u workers",
                   m->turn, m->workers);
    }
    if (m->world_size == 0 || m->rank >= m->world_size) {
        return bad(c, why, why_len, "checkpoint: rank %u of world size %u",
                   m->rank, m->world_size);
    }
    c->version = m->version;
    c->order = m->order;
    c->workers = m->workers;
    c->rank = m->rank;
    c->world_size = m->world_size;
    c->turn = m->turn;
    c->iteration = m->iteration;
    c->delivered = m->delivered;
    return 0;
}

void subiter__ckpt_free(struct subiter__ckpt *c)
{
    bool unused = false;
    ProtobufCAllocator a = {pb_alloc, pb_free, &unused};

    if (c->owned != NULL) {
        checkpoint__free_unpacked(c->owned, &a);
    }
    memset(c, 0, sizeof *c);
}
