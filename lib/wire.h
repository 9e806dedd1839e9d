/* wire.h: the protobuf frames of proto/subiter.proto (wire.c): commands
 * (parent -> worker) and statuses (worker -> parent), with the fast item
 * frame that is written and read in place. No protobuf-c type leaves
 * wire.c. */
#ifndef SUBITER_WIRE_H
#define SUBITER_WIRE_H

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

/* Fast item frame: write the prefix for an item of `len` bytes. */
SUBITER__HIDDEN void subiter__wire_item_prefix(unsigned char *frame,
                                               size_t len);
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
