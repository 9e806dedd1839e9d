/* opts.c: the size versioning every options struct of the API shares. */
#include "config.h"

#include <errno.h>
#include <string.h>

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

int subiter__opts_copy(void *dst, size_t known, const void *user, size_t oldest)
{
    size_t size;

    memcpy(&size, user, sizeof size);
    if (size < oldest) {
        return -EINVAL;
    }
    if (size > known && subiter__opts_size(user, size, known) < 0) {
        return -E2BIG;
    }
    /* An older caller's struct ends early: the fields it does not have
     * are zero, which every field added later means "the default". */
    memset(dst, 0, known);
    memcpy(dst, user, size < known ? size : known);
    return 0;
}
