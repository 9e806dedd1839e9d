/* fuzz_status.c: libFuzzer target over what the parent reads from a
 * worker it does not trust: the item ring's records (indices, lengths,
 * padding) and the status frames in them.
 *
 * Input layout: 4 bytes head, 4 bytes tail, then the ring's bytes (the
 * ring is the largest power of two that fits, at least 64 bytes). The
 * reader goes by the records' headers (ring.h), not by the tail, which is
 * there as a worker would leave it. Every record peek returns must lie
 * inside the ring, and every frame must decode or be refused without a
 * crash or an out-of-bounds read. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    _Atomic uint32_t head, tail;
    struct subiter__ring r;
    struct subiter__status st;
    const unsigned char *frame;
    unsigned char *ring;
    uint32_t h, t, len, n = 64;
    int i, rc;

    if (size < 8 + 64) {
        /* Too short for a ring: decode it as one frame instead. */
        if (subiter__wire_status_decode(data, size, &st) == 0) {
            subiter__status_free(&st);
        }
        return 0;
    }
    memcpy(&h, data, 4);
    memcpy(&t, data + 4, 4);
    h &= ~7u; /* the parent's own index is always 8-aligned */
    while (n * 2 <= size - 8 && n < (1u << 20)) {
        n *= 2;
    }
    /* An exact-size heap copy, so ASan catches any read past the end. */
    ring = malloc(n);
    if (ring == NULL) {
        return 0;
    }
    memcpy(ring, data + 8, n);
    atomic_init(&head, h);
    atomic_init(&tail, t);
    subiter__ring_init(&r, &head, &tail, ring, n, false);
    for (i = 0; i < 64; i++) {
        rc = subiter__ring_peek(&r, &frame, &len);
        if (rc != 1) {
            break;
        }
        if (frame < ring || frame + len > ring + n) {
            abort(); /* peek let a record out of the ring */
        }
        if (subiter__wire_status_decode(frame, len, &st) == 0) {
            if (st.code == SUBITER__ITEM && st.owned == NULL &&
                ((const unsigned char *)st.item < ring ||
                 (const unsigned char *)st.item + st.item_len > ring + n)) {
                abort(); /* an item view outside the ring */
            }
            subiter__status_free(&st);
        }
        subiter__ring_release(&r, len);
    }
    free(ring);
    return 0;
}
