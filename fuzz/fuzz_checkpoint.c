/* fuzz_checkpoint.c: libFuzzer target over the checkpoint decoder, which
 * reads bytes the application kept (a file from another run, another
 * version, or a damaged disk). Every input must decode or be refused with
 * a reason, without a crash or an out-of-bounds read; what decodes must
 * encode and decode again to the same checkpoint. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct subiter__ckpt c, again;
    char why[256];
    unsigned char *buf;
    size_t n;

    why[0] = '\0';
    if (subiter__ckpt_decode(data, size, &c, why, sizeof why) != 0) {
        if (why[0] == '\0') {
            abort(); /* a refusal always says why */
        }
        return 0;
    }
    n = subiter__ckpt_size(&c);
    buf = malloc(n > 0 ? n : 1);
    if (buf == NULL) {
        subiter__ckpt_free(&c);
        return 0;
    }
    if (subiter__ckpt_pack(&c, buf) != n ||
        subiter__ckpt_decode(buf, n, &again, why, sizeof why) != 0 ||
        again.workers != c.workers || again.turn != c.turn ||
        again.rank != c.rank || again.world_size != c.world_size ||
        again.order != c.order || again.iteration != c.iteration ||
        memcmp(again.delivered, c.delivered, c.workers * sizeof *c.delivered) !=
            0) {
        abort();
    }
    subiter__ckpt_free(&again);
    subiter__ckpt_free(&c);
    free(buf);
    return 0;
}
