/* wire.h: the protobuf frames of proto/subiter.proto (wire.c): commands
 * (parent -> worker) and statuses (worker -> parent), with the fast item
 * frame that is written and read in place. No protobuf-c type leaves
 * wire.c. */
#ifndef SUBITER_WIRE_H
#define SUBITER_WIRE_H

#include <string.h>

/* Bytes of the fast item frame before the item's data. */
#define SUBITER__ITEM_PREFIX 8u

/* Kinds of status the parent reads (Status.code). */
enum subiter__code {
    SUBITER__INIT_OK = 1,
    SUBITER__INIT_FAILED = 2,
    SUBITER__STARTED = 3,
    SUBITER__FINISHED = 4,
    SUBITER__ITEM = 5,
    SUBITER__FAILED = 6,
    SUBITER__UNEXPECTED = 7
};
enum subiter__cmd {
    SUBITER__CMD_START = 1,
    SUBITER__CMD_STOP = 2,
    SUBITER__CMD_ABORT = 3
};

/* A decoded status; views point into `owned` or the ring. */
struct subiter__status {
    int code;
    uint64_t seq;
    const void *item;
    size_t item_len;
    const char *message; /* never NULL */
    int errnum;
    void *owned; /* unpacked message to free with subiter__status_free */
};

/* What a START carries besides its input: items of the shard already
 * delivered (the worker discards them) and the iteration's number. */
struct subiter__start_args {
    uint64_t skip;
    uint64_t iteration;
};

/* A decoded command; input points into `owned`. */
struct subiter__command {
    int cmd;
    uint64_t seq;
    const void *input;
    size_t input_len;
    struct subiter__start_args start;
    void *owned;
};

/* The fast frame's first bytes: field 1 (code) and field 3 (item). */
#define SUBITER__TAG_CODE 0x08u
#define SUBITER__TAG_ITEM 0x1au

/* The fast frame's prefix for an item of `len` bytes, as the word it is in
 * memory: the item's length is a varint padded to five bytes, so the
 * prefix has one form per length, and a frame is a fast one exactly when
 * its first eight bytes are this word. Inline: both sides compute it per
 * item. */
static inline uint64_t subiter__wire_item_word(uint32_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* The bytes below, as one word: no array on the stack per item. */
    return 0x00808080801a0508ull | (uint64_t)(v & 0x7fu) << 24 |
           (uint64_t)((v >> 7) & 0x7fu) << 32 |
           (uint64_t)((v >> 14) & 0x7fu) << 40 |
           (uint64_t)((v >> 21) & 0x7fu) << 48 | (uint64_t)(v >> 28) << 56;
#else
    const unsigned char p[SUBITER__ITEM_PREFIX] = {
        SUBITER__TAG_CODE,
        SUBITER__ITEM,
        SUBITER__TAG_ITEM,
        (unsigned char)(0x80u | (v & 0x7fu)),
        (unsigned char)(0x80u | ((v >> 7) & 0x7fu)),
        (unsigned char)(0x80u | ((v >> 14) & 0x7fu)),
        (unsigned char)(0x80u | ((v >> 21) & 0x7fu)),
        (unsigned char)((v >> 28) & 0x0fu),
    };
    uint64_t w;

    memcpy(&w, p, sizeof w);
    return w;
#endif
}

/* The last prefix word made, for items of one size (the common stream):
 * made once, not per item. Zeroed: empty (no prefix word is 0). */
struct subiter__item_word {
    uint32_t len;
    uint64_t word;
};

static inline uint64_t subiter__wire_item_word_of(struct subiter__item_word *c,
                                                  uint32_t len)
{
    if (c->word == 0 || c->len != len) {
        c->len = len;
        c->word = subiter__wire_item_word(len);
    }
    return c->word;
}

/* Is the frame of `len` bytes a fast item frame (its first eight bytes
 * are the prefix for its length)? One read of the shared bytes; only the
 * copy is compared. Inline: the parent asks per item. `c` as above. */
static inline bool subiter__wire_is_item(struct subiter__item_word *c,
                                         const unsigned char *frame, size_t len)
{
    uint64_t prefix;

    if (len < SUBITER__ITEM_PREFIX || len - SUBITER__ITEM_PREFIX > UINT32_MAX) {
        return false;
    }
    memcpy(&prefix, frame, sizeof prefix);
    return prefix == subiter__wire_item_word_of(
                         c, (uint32_t)(len - SUBITER__ITEM_PREFIX));
}

/* The status of a fast item frame of `len` bytes (subiter__wire_is_item()
 * said it is one), viewed in place. */
static inline void subiter__wire_item_status(struct subiter__status *st,
                                             const unsigned char *frame,
                                             size_t len)
{
    st->code = SUBITER__ITEM;
    st->seq = 0;
    st->item = frame + SUBITER__ITEM_PREFIX;
    st->item_len = len - SUBITER__ITEM_PREFIX;
    st->message = "";
    st->errnum = 0;
    st->owned = NULL;
}

/* Fast item frame: write the prefix for an item of `len` bytes (`c`: the
 * last one made, or NULL). */
static inline void subiter__wire_item_prefix(struct subiter__item_word *c,
                                             unsigned char *frame, size_t len)
{
    uint64_t w = c != NULL ? subiter__wire_item_word_of(c, (uint32_t)len)
                           : subiter__wire_item_word((uint32_t)len);

    memcpy(frame, &w, sizeof w);
}
/* Encoded size / encoding of a non-item status. */
SUBITER__HIDDEN size_t subiter__wire_status_size(int code, uint64_t seq,
                                                 const char *message,
                                                 int errnum);
SUBITER__HIDDEN size_t subiter__wire_status_pack(int code, uint64_t seq,
                                                 const char *message,
                                                 int errnum, void *out);
SUBITER__HIDDEN size_t subiter__wire_command_size(int cmd, uint64_t seq,
                                                  size_t input_len);
SUBITER__HIDDEN size_t subiter__wire_command_pack(int cmd, uint64_t seq,
                                                  const void *input,
                                                  size_t input_len, void *out);
/* The same for a START with its arguments (NULL: none). */
SUBITER__HIDDEN size_t subiter__wire_start_size(
    uint64_t seq, size_t input_len, const struct subiter__start_args *x);
SUBITER__HIDDEN size_t
subiter__wire_start_pack(uint64_t seq, const void *input, size_t input_len,
                         const struct subiter__start_args *x, void *out);
/*
 * Decode a status frame. The fast item form is viewed in place (the item
 * points into `frame`); anything else is copied out of shared memory and
 * unpacked by protobuf-c. Returns 0, -EPROTO on bad bytes, -ENOMEM.
 */
SUBITER__HIDDEN int subiter__wire_status_decode(const unsigned char *frame,
                                                size_t len,
                                                struct subiter__status *st);
SUBITER__HIDDEN void subiter__status_free(struct subiter__status *st);
SUBITER__HIDDEN int subiter__wire_command_decode(const unsigned char *frame,
                                                 size_t len,
                                                 struct subiter__command *c);
SUBITER__HIDDEN void subiter__command_free(struct subiter__command *c);

#endif /* SUBITER_WIRE_H */
