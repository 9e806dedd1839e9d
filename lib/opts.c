/* opts.c: the size versioning every options struct of the API shares. */
#include "config.h"

#include <errno.h>

#include "internal.h"

int subiter__opts_size(const void *opts, size_t size, size_t known)
{
    const unsigned char *extra = (const unsigned char *)opts + known;
    size_t i;

    if (size < known) {
        return -EINVAL;
    }
    /* A newer caller's fields we do not know must be zero: they would
     * otherwise be ignored silently. */
    for (i = 0; i < size - known; i++) {
        if (extra[i] != 0) {
            return -EINVAL;
        }
    }
    return 0;
}
