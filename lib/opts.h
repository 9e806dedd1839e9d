/* opts.h: what every options struct of the API shares (opts.c): its first
 * member is its own size, set by the INIT macro, so that a caller built
 * against a newer header can pass a bigger struct. */
#ifndef SUBITER_OPTS_H
#define SUBITER_OPTS_H

/*
 * May the library read `known` bytes of the options at `opts` whose size
 * field says `size`? 0 when size covers what we know and every byte past
 * it (a newer caller's fields) is zero; -EINVAL otherwise (STYLE rule 7).
 */
SUBITER__HIDDEN int subiter__opts_size(const void *opts, size_t size,
                                       size_t known);

#endif /* SUBITER_OPTS_H */
