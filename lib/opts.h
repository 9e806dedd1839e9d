/* opts.h: what every options struct of the API shares (opts.c): its first
 * member is its own size, set by the INIT macro, so that a caller built
 * against a newer header can pass a bigger struct, and one built against
 * an older header a smaller one. */
#ifndef SUBITER_OPTS_H
#define SUBITER_OPTS_H

/*
 * May the library read `known` bytes of the options at `opts` whose size
 * field says `size`? 0 when size covers what we know and every byte past
 * it (a newer caller's fields) is zero; -EINVAL otherwise (STYLE rule 7).
 */
SUBITER__HIDDEN int subiter__opts_size(const void *opts, size_t size,
                                       size_t known);

/*
 * Copy the caller's struct at `user` (its first member, a size_t, is its
 * size) into `dst` of `known` bytes. A size below `oldest` (the struct of
 * the first release that had it) is -EINVAL; bytes past `known` that are
 * not zero (a newer caller's fields) are -E2BIG; fields past an older
 * caller's size are zero in dst. The size field in dst is the caller's.
 */
SUBITER__HIDDEN int subiter__opts_copy(void *dst, size_t known,
                                       const void *user, size_t oldest);

/* The sizes of the 0.1 structs, which ended where 0.2 appended fields:
 * callers built against them are still served. */
#define SUBITER__OPTS_V1 offsetof(subiter_opts, arg_len)
#define SUBITER__POOL_OPTS_V1 offsetof(subiter_pool_opts, max_tasks_per_worker)
#define SUBITER__POOL_STATS_V1 offsetof(subiter_pool_stats, seed)
#define SUBITER__ERRINFO_V1 offsetof(subiter_errinfo, backtrace)

#endif /* SUBITER_OPTS_H */
