/* symbols.h: raw frames as text, in the parent (symbols.c). A crash or
 * hang report's frames and the worker's module map (untrusted: validated
 * line by line) become one line a frame: a function, file:line and its
 * inlined calls with libdw; else a module and offset. The symbols read
 * are kept for the next report. */
#ifndef SUBITER_SYMBOLS_H
#define SUBITER_SYMBOLS_H

#include <stdint.h>

/* frames[0] is the exact pc, the rest return addresses; map_text is
 * maps_len bytes of /proc/<pid>/maps lines (not NUL-terminated). The text,
 * one frame a line and no final newline, goes to *out (new: free with
 * subiter__free()). 0 or -ENOMEM. */
SUBITER__HIDDEN int subiter__symbols_format(const uint64_t *frames,
                                            uint32_t nframes,
                                            const char *map_text,
                                            uint32_t maps_len, char **out);

/* Drop the symbols kept for the next report (mapped ELF files, debug
 * information, an fd per separate debug file). The library's unload does
 * it; tests that count fds too. */
SUBITER__HIDDEN void subiter__symbols_forget(void);

#endif /* SUBITER_SYMBOLS_H */
