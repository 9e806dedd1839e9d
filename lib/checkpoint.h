/* checkpoint.h: the Checkpoint message of proto/subiter.proto
 * (checkpoint.c), what subiter_pool_checkpoint() writes and
 * subiter_pool_start_from() reads. No protobuf-c type leaves
 * checkpoint.c. */
#ifndef SUBITER_CHECKPOINT_H
#define SUBITER_CHECKPOINT_H

/* The version this library writes and the only one it reads. */
#define SUBITER__CKPT_VERSION 1u

/* A checkpoint; decoded, `delivered` points into `owned`. */
struct subiter__ckpt {
    unsigned version;
    int order;
    unsigned workers;
    unsigned rank;
    unsigned world_size;
    unsigned turn;
    uint64_t iteration;
    const uint64_t *delivered; /* `workers` counts */
    void *owned;
};

/* The encoded size, and the encoding into `out` (that many bytes). */
SUBITER__HIDDEN size_t subiter__ckpt_size(const struct subiter__ckpt *c);
SUBITER__HIDDEN size_t subiter__ckpt_pack(const struct subiter__ckpt *c,
                                          void *out);
/*
 * Decode and check what a checkpoint says of itself: its version, one
 * count per worker, the turn inside the workers, the rank inside the
 * world. 0, -ENOMEM, or -EINVAL with `why` saying what is wrong. Free
 * with subiter__ckpt_free() on success.
 */
SUBITER__HIDDEN int subiter__ckpt_decode(const void *buf, size_t len,
                                         struct subiter__ckpt *c, char *why,
                                         size_t why_len);
SUBITER__HIDDEN void subiter__ckpt_free(struct subiter__ckpt *c);

#endif /* SUBITER_CHECKPOINT_H */
