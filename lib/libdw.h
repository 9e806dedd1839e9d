/* libdw.h: elfutils libdw, loaded when the first report is named
 * (libdw.c). Linking it would load libdw and the four ELF and compression
 * libraries into every process that links subiter, and into every
 * SUBITER_SPAWN worker at its exec, for the rare report. */
#ifndef SUBITER_LIBDW_H
#define SUBITER_LIBDW_H

#ifdef HAVE_LIBDW

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>

/* The functions symbols.c calls; elf_* are libelf's, which libdw needs
 * and so loads. */
#define SUBITER__LIBDW_FUNCS(X)                                                \
    X(dwarf_attr)                                                              \
    X(dwarf_attr_integrate)                                                    \
    X(dwarf_filesrc)                                                           \
    X(dwarf_formstring)                                                        \
    X(dwarf_formudata)                                                         \
    X(dwarf_getscopes)                                                         \
    X(dwarf_getsrcfiles)                                                       \
    X(dwarf_tag)                                                               \
    X(dwfl_addrmodule)                                                         \
    X(dwfl_begin)                                                              \
    X(dwfl_end)                                                                \
    X(dwfl_lineinfo)                                                           \
    X(dwfl_linux_proc_maps_report)                                             \
    X(dwfl_module_addrdie)                                                     \
    X(dwfl_module_addrinfo)                                                    \
    X(dwfl_module_getsrc)                                                      \
    X(dwfl_report_begin)                                                       \
    X(dwfl_report_end)                                                         \
    X(dwfl_standard_find_debuginfo)                                            \
    X(elf_begin)                                                               \
    X(elf_cntl)                                                                \
    X(elf_end)                                                                 \
    X(elf_kind)

struct subiter__libdw {
#define SUBITER__LIBDW_MEMBER(f) __typeof__(f) *f;
    SUBITER__LIBDW_FUNCS(SUBITER__LIBDW_MEMBER)
#undef SUBITER__LIBDW_MEMBER
};

/* The loaded functions, or NULL with the reason in *why (static text).
 * Loaded once per process, thread-safe; never unloaded. */
SUBITER__HIDDEN const struct subiter__libdw *subiter__libdw(const char **why);

/* Tests: the library name to load instead of libdw's (before the first
 * report of the process). */
SUBITER__HIDDEN extern const char *subiter__libdw_name;

#endif /* HAVE_LIBDW */

#endif /* SUBITER_LIBDW_H */
