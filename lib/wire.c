/* wire.c: encodes and decodes the protobuf messages of proto/subiter.proto,
 * with a fast in-place frame for items. Every frame is a valid encoding of
 * one message: protobuf-c's own unpack reads the fast frame too. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "internal.h"
#include "subiter.pb-c.h"

/*
 * The fast item frame, 8 bytes before the item's data:
 *   0x08 0x05                 field 1 (code), varint ITERATOR_SUCCESS
 *   0x1a                      field 3 (item), length-delimited
 *   5-byte varint length      non-minimal, so it can be written at commit
 * seq is 0 for items, which proto3 leaves out. With the 8-byte record
 * header, item data starts 16 bytes into its record: 8-byte aligned.
 */
_Static_assert((int)STATUS__CODE__ITERATOR_SUCCESS == (int)SUBITER__ITEM,
               "fast frame code");
_Static_assert((int)STATUS__CODE__UNEXPECTED_CMD_RECEIVED ==
                   (int)SUBITER__UNEXPECTED,
               "status codes match the proto");
_Static_assert((int)COMMAND__CMD__ABORT == (int)SUBITER__CMD_ABORT,
               "command codes match the proto");
_Static_assert(SUBITER__TAG_CODE == 0x08 && SUBITER__ITEM == 5 &&
                   SUBITER__TAG_ITEM == 0x1a,
               "the fast prefix's constant bytes (wire.h)");

/* allocator_data, when set, is a flag raised on allocation failure: it is
 * how a decode tells -ENOMEM from bad bytes. */
static void *pb_alloc(void *data, size_t n)
{
    void *p = subiter__malloc(n);

    if (p == NULL && data != NULL) {
        *(bool *)data = true;
    }
    return p;
}

static void pb_free(void *data, void *p)
{
    (void)data;
    subiter__free(p);
}

static ProtobufCAllocator allocator = {pb_alloc, pb_free, NULL};

static void status_fill(Status *s, Error *e, int code, uint64_t seq,
                        const char *message, int errnum)
{
    status__init(s);
    s->code = (Status__Code)code;
    s->seq = seq;
    if (message != NULL || errnum != 0) {
        error__init(e);
        e->message = (char *)(uintptr_t)(message ? message : "");
        e->errnum = errnum;
        s->error = e;
    }
}

size_t subiter__wire_status_size(int code, uint64_t seq, const char *message,
                                 int errnum)
{
    Status s;
    Error e;

    status_fill(&s, &e, code, seq, message, errnum);
    return status__get_packed_size(&s);
}

size_t subiter__wire_status_pack(int code, uint64_t seq, const char *message,
                                 int errnum, void *out)
{
    Status s;
    Error e;

    status_fill(&s, &e, code, seq, message, errnum);
    return status__pack(&s, out);
}

static void command_fill(Command *c, int cmd, uint64_t seq, const void *input,
                         size_t input_len, const struct subiter__start_args *x)
{
    command__init(c);
    c->cmd = (Command__Cmd)cmd;
    c->seq = seq;
    c->input.data = (uint8_t *)(uintptr_t)input;
    c->input.len = input_len;
    if (x != NULL) {
        c->skip = x->skip;
        c->iteration = x->iteration;
    }
}

size_t subiter__wire_command_size(int cmd, uint64_t seq, size_t input_len)
{
    Command c;

    command_fill(&c, cmd, seq, NULL, input_len, NULL);
    return command__get_packed_size(&c);
}

size_t subiter__wire_command_pack(int cmd, uint64_t seq, const void *input,
                                  size_t input_len, void *out)
{
    Command c;

    command_fill(&c, cmd, seq, input, input_len, NULL);
    return command__pack(&c, out);
}

size_t subiter__wire_start_size(uint64_t seq, size_t input_len,
                                const struct subiter__start_args *x)
{
    Command c;

    command_fill(&c, SUBITER__CMD_START, seq, NULL, input_len, x);
    return command__get_packed_size(&c);
}

size_t subiter__wire_start_pack(uint64_t seq, const void *input,
                                size_t input_len,
                                const struct subiter__start_args *x, void *out)
{
    Command c;

    command_fill(&c, SUBITER__CMD_START, seq, input, input_len, x);
    return command__pack(&c, out);
}

/* Any status, through protobuf-c. */
static int decode_slow(const unsigned char *frame, size_t len,
                       struct subiter__status *st)
{
    ProtobufCAllocator counting = allocator;
    bool nomem = false;
    unsigned char *copy;
    Status *s;

    memset(st, 0, sizeof *st);
    st->message = "";
    /* Copied out of shared memory first, so that the worker cannot change
     * the frame while protobuf-c parses it. */
    copy = subiter__malloc(len);
    if (copy == NULL) {
        return -ENOMEM;
    }
    memcpy(copy, frame, len);
    counting.allocator_data = &nomem;
    s = status__unpack(&counting, len, copy);
    subiter__free(copy);
    if (s == NULL) {
        return nomem ? -ENOMEM : -EPROTO;
    }
    st->code = (int)s->code;
    st->seq = s->seq;
    st->item = s->item.data;
    st->item_len = s->item.len;
    if (s->error != NULL) {
        st->message = s->error->message ? s->error->message : "";
        st->errnum = s->error->errnum;
    }
    st->owned = s;
    return 0;
}

int subiter__wire_status_decode(const unsigned char *frame, size_t len,
                                struct subiter__status *st)
{
    struct subiter__item_word none = {0, 0};

    if (subiter__wire_is_item(&none, frame, len)) {
        subiter__wire_item_status(st, frame, len);
        return 0;
    }
    return decode_slow(frame, len, st);
}

void subiter__status_free(struct subiter__status *st)
{
    if (st->owned != NULL) {
        status__free_unpacked(st->owned, &allocator);
        st->owned = NULL;
    }
}

int subiter__wire_command_decode(const unsigned char *frame, size_t len,
                                 struct subiter__command *c)
{
    ProtobufCAllocator counting = allocator;
    bool nomem = false;
    Command *m;

    counting.allocator_data = &nomem;
    m = command__unpack(&counting, len, frame);
    memset(c, 0, sizeof *c);
    if (m == NULL) {
        return nomem ? -ENOMEM : -EPROTO;
    }
    c->cmd = (int)m->cmd;
    c->seq = m->seq;
    c->input = m->input.data;
    c->input_len = m->input.len;
    c->start.skip = m->skip;
    c->start.iteration = m->iteration;
    c->owned = m;
    return 0;
}

void subiter__command_free(struct subiter__command *c)
{
    if (c->owned != NULL) {
        command__free_unpacked(c->owned, &allocator);
        c->owned = NULL;
    }
}
