/* symbols.c: a crash or hang report's raw frames as text, in the parent.
 * The worker's module map is untrusted: each line is validated (a regular
 * file, strictly parsed) before anything reads the file it names. Frames
 * are named with elfutils libdw (function, file:line, inlined calls),
 * whose modules are kept between reports; without libdw, or where it
 * knows nothing, a frame is its module and offset. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "libdw.h"

/* The text of one report: about 64 frames of up to 120 characters. */
#define TEXT_MAX 8192

/* One validated line of the module map. */
struct mapping {
    uint64_t start, end, offset, inode;
    unsigned dev_major, dev_minor;
    char perms[5];
    const char *path; /* inside the caller's copy, NUL-terminated */
    /* The file at `path` when the line was read. */
    dev_t fdev;
    ino_t fino;
    off_t fsize;
    struct timespec fmtime;
};

static bool hex_field(const char **s, const char *end, char stop, uint64_t *v)
{
    const char *p = *s;
    int digits = 0;

    *v = 0;
    while (p < end && isxdigit((unsigned char)*p) && digits < 16) {
        *v = *v * 16 + (uint64_t)(isdigit((unsigned char)*p)
                                      ? *p - '0'
                                      : tolower((unsigned char)*p) - 'a' + 10);
        p++;
        digits++;
    }
    if (digits == 0 || p >= end || *p != stop) {
        return false;
    }
    *s = p + 1;
    return true;
}

/*
 * Parse one line "start-end perms offset major:minor inode path" strictly;
 * the path must be absolute, printable, and name a regular file now (a
 * worker could name a FIFO, and an open() of it would block the parent).
 */
static bool parse_line(char *line, char *end, struct mapping *m)
{
    const char *p = line;
    uint64_t major, minor;
    struct stat st;
    char *path;
    size_t i;

    if (!hex_field(&p, end, '-', &m->start) ||
        !hex_field(&p, end, ' ', &m->end) || m->end <= m->start ||
        end - p < 5 || p[4] != ' ') {
        return false;
    }
    for (i = 0; i < 4; i++) {
        m->perms[i] = p[i];
    }
    m->perms[4] = '\0';
    p += 5;
    if (!hex_field(&p, end, ' ', &m->offset) ||
        !hex_field(&p, end, ':', &major) || !hex_field(&p, end, ' ', &minor) ||
        major > 0xfff || minor > 0xfffff) {
        return false;
    }
    m->dev_major = (unsigned)major;
    m->dev_minor = (unsigned)minor;
    m->inode = 0;
    while (p < end && isdigit((unsigned char)*p) &&
           m->inode < UINT64_MAX / 16) {
        m->inode = m->inode * 10 + (uint64_t)(*p++ - '0');
    }
    while (p < end && *p == ' ') {
        p++;
    }
    if (p >= end || *p != '/') {
        return false;
    }
    path = line + (p - line);
    for (i = 0; path + i < end; i++) {
        if (!isprint((unsigned char)path[i])) {
            return false;
        }
    }
    *end = '\0';
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        return false;
    }
    m->path = path;
    m->fdev = st.st_dev;
    m->fino = st.st_ino;
    m->fsize = st.st_size;
    m->fmtime = st.st_mtim;
    return true;
}

/* Split the (NUL-terminated) map text into validated mappings; returns
 * how many, at most cap. */
static size_t parse_maps(char *text, struct mapping *v, size_t cap)
{
    size_t n = 0;
    char *line = text;

    while (*line != '\0' && n < cap) {
        char *nl = strchr(line, '\n');
        char *next = nl != NULL ? nl + 1 : line + strlen(line);
        char *end = nl != NULL ? nl : next;

        if (parse_line(line, end, &v[n])) {
            n++;
        }
        line = next;
    }
    return n;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');

    return s != NULL ? s + 1 : path;
}

/* An output buffer that stops at its last whole line. */
struct text {
    char *buf;
    size_t len;
    bool full;
};

static void add_line(struct text *t, const char *fmt, ...) SUBITER_PRINTF(2, 3);

static void add_line(struct text *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (t->full) {
        return;
    }
    va_start(ap, fmt);
    n = vsnprintf(t->buf + t->len, TEXT_MAX - t->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n + 1 >= TEXT_MAX - t->len) {
        t->buf[t->len] = '\0';
        t->full = true;
        return;
    }
    t->len += (size_t)n;
}

/* The frame's address as a module offset: "libfoo.so+0x1234". */
static void module_offset(const struct mapping *v, size_t n, uint64_t a,
                          char *buf, size_t cap)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (a >= v[i].start && a < v[i].end) {
            snprintf(buf, cap, "%s+0x%llx", base_name(v[i].path),
                     (unsigned long long)(a - v[i].start + v[i].offset));
            return;
        }
    }
    snprintf(buf, cap, "0x%llx", (unsigned long long)a);
}

#ifdef HAVE_LIBDW

static char *no_debuginfo_path;

/* libdw's functions: only called once subiter__symbols_format() has seen
 * them loaded. */
static const struct subiter__libdw *dw(void)
{
    const char *why;

    return subiter__libdw(&why);
}

/*
 * libdwfl's own find_elf keeps each ELF file's fd open for as long as its
 * module lives, and the cache below keeps modules. So map the file and
 * close the fd (ELF_C_FDREAD: libelf then needs it no more). O_NONBLOCK:
 * a FIFO put at the path since parse_line() looked would block open().
 */
static int find_elf(Dwfl_Module *mod, void **user, const char *name,
                    Dwarf_Addr base, char **file_name, Elf **elfp)
{
    struct stat st;
    Elf *elf = NULL;
    int fd;

    (void)mod;
    (void)user;
    (void)base;
    fd = open(name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        return -1;
    }
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        elf = dw()->elf_begin(fd, ELF_C_READ_MMAP, NULL);
    }
    if (elf != NULL && (dw()->elf_kind(elf) != ELF_K_ELF ||
                        dw()->elf_cntl(elf, ELF_C_FDREAD) != 0)) {
        (void)dw()->elf_end(elf);
        elf = NULL;
    }
    (void)close(fd);
    if (elf != NULL) {
        /* libdwfl frees it (free()), and looks for the debug link
         * beside it. */
        *file_name = strdup(name);
        *elfp = elf;
    }
    return -1;
}

/* The standard search (build-id and debug-link places); the separate
 * debug file's fd stays open in the cache, so not across an exec. */
static int find_debuginfo(Dwfl_Module *mod, void **user, const char *name,
                          Dwarf_Addr base, const char *file, const char *link,
                          GElf_Word crc, char **debug_name)
{
    int fd = dw()->dwfl_standard_find_debuginfo(mod, user, name, base, file,
                                                link, crc, debug_name);

    if (fd >= 0) {
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    return fd;
}

static const Dwfl_Callbacks dwfl_callbacks = {
    .find_elf = find_elf,
    .find_debuginfo = find_debuginfo,
    .debuginfo_path = &no_debuginfo_path,
};

/* Report the validated mappings to d as its whole module list (rewritten,
 * so libdw reads only what parse_line() accepted). libdwfl keeps a module
 * reported again at the same path and addresses, with what it has read.
 * False on any failure. */
static bool report_maps(Dwfl *d, const struct mapping *v, size_t n)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f;
    size_t i;
    int r;

    f = open_memstream(&text, &len);
    if (f == NULL) {
        return false;
    }
    for (i = 0; i < n; i++) {
        fprintf(f, "%llx-%llx %s %08llx %02x:%02x %llu %s\n",
                (unsigned long long)v[i].start, (unsigned long long)v[i].end,
                v[i].perms, (unsigned long long)v[i].offset, v[i].dev_major,
                v[i].dev_minor, (unsigned long long)v[i].inode, v[i].path);
    }
    if (fclose(f) != 0) {
        free(text);
        return false;
    }
    f = fmemopen(text, len, "r");
    if (f == NULL) {
        free(text);
        return false;
    }
    dw()->dwfl_report_begin(d);
    r = dw()->dwfl_linux_proc_maps_report(d, f);
    (void)fclose(f);
    free(text);
    return r == 0 && dw()->dwfl_report_end(d, NULL, NULL) == 0;
}

/*
 * The modules of the last report, kept for the next: the parent side's
 * one piece of mutable global state besides the forkserver. Reading a
 * module's symbols and debug information is what a report costs; with a
 * distribution's separate, compressed debug files (libc6-dbg) libc's line
 * tables alone take about 100 ms, every time. Workers of one program have
 * their parent's module map (fork, forkserver), so one Dwfl serves them
 * all: each report reports its map again (report_maps()), and a path
 * whose file changed (another device or inode in the map, or on disk
 * another inode, size or mtime) starts a new Dwfl first. It holds the
 * mapped ELF files, the debug information read, and a close-on-exec fd
 * per separate debug file, until the library is unloaded or
 * subiter__symbols_forget(). The mutex: pools and host threads symbolize
 * at the same time and libdw's handles are not thread-safe. `owner`:
 * a process forked meanwhile has a copy whose mutex may be held, and
 * must leave it alone.
 */
static struct {
    pthread_mutex_t lock;
    _Atomic pid_t owner; /* the process whose cache it is; 0: none yet */
    Dwfl *dwfl;          /* NULL: none */
    struct mapping *v;   /* the map last reported to it, */
    size_t n;            /* its length, */
    char *text;          /* and the text its paths point into */
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* True: the cache is this process's, and locked. */
static bool cache_enter(void)
{
    pid_t self = getpid(), none = 0;

    if (!atomic_compare_exchange_strong(&cache.owner, &none, self) &&
        none != self) {
        return false;
    }
    pthread_mutex_lock(&cache.lock);
    return true;
}

static void cache_drop_locked(void)
{
    if (cache.dwfl != NULL) {
        dw()->dwfl_end(cache.dwfl);
    }
    subiter__free(cache.v);
    subiter__free(cache.text);
    cache.dwfl = NULL;
    cache.v = NULL;
    cache.n = 0;
    cache.text = NULL;
}

static bool same_file(const struct mapping *a, const struct mapping *b)
{
    return a->inode == b->inode && a->dev_major == b->dev_major &&
           a->dev_minor == b->dev_minor && a->fdev == b->fdev &&
           a->fino == b->fino && a->fsize == b->fsize &&
           a->fmtime.tv_sec == b->fmtime.tv_sec &&
           a->fmtime.tv_nsec == b->fmtime.tv_nsec;
}

/* Does a path of map v name another file than in the cached map? */
static bool cache_stale_locked(const struct mapping *v, size_t n)
{
    size_t i, j;

    for (i = 0; i < n; i++) {
        /* The lines of one file follow each other. */
        if (i > 0 && strcmp(v[i].path, v[i - 1].path) == 0) {
            continue;
        }
        for (j = 0; j < cache.n; j++) {
            if (strcmp(v[i].path, cache.v[j].path) == 0 &&
                !same_file(&v[i], &cache.v[j])) {
                return true;
            }
        }
    }
    return false;
}

/* The cached Dwfl (locked) with map v reported, or NULL. On success the
 * cache owns v and the text its paths point into. */
static Dwfl *cache_dwfl_locked(struct mapping *v, size_t n, char *text)
{
    if (cache.dwfl != NULL && cache_stale_locked(v, n)) {
        cache_drop_locked();
    }
    if (cache.dwfl == NULL) {
        cache.dwfl = dw()->dwfl_begin(&dwfl_callbacks);
    }
    if (cache.dwfl == NULL || !report_maps(cache.dwfl, v, n)) {
        cache_drop_locked();
        return NULL;
    }
    subiter__free(cache.v);
    subiter__free(cache.text);
    cache.v = v;
    cache.n = n;
    cache.text = text;
    return cache.dwfl;
}

/* A Dwfl of its own, for a process whose cache is a forked copy. */
static Dwfl *dwfl_of(const struct mapping *v, size_t n)
{
    Dwfl *d = dw()->dwfl_begin(&dwfl_callbacks);

    if (d != NULL && !report_maps(d, v, n)) {
        dw()->dwfl_end(d);
        d = NULL;
    }
    return d;
}

void subiter__symbols_forget(void)
{
    if (atomic_load(&cache.owner) != getpid()) {
        return;
    }
    pthread_mutex_lock(&cache.lock);
    cache_drop_locked();
    pthread_mutex_unlock(&cache.lock);
}

/* When the library is unloaded (and at exit): nothing is left behind. */
__attribute__((destructor)) static void symbols_unload(void)
{
    subiter__symbols_forget();
}

/* The name of a DWARF function or inlined instance. */
static const char *die_name(Dwarf_Die *die)
{
    Dwarf_Attribute a;
    const char *s;

    s = dw()->dwarf_formstring(dw()->dwarf_attr_integrate(die, DW_AT_name, &a));
    return s != NULL ? s : "??";
}

/* The inlined calls at `look` in module m, innermost first: each gets a
 * line of its own, "name (file:line) [inlined]", and the function they
 * were inlined into then takes the call site's file and line. Returns the
 * outermost function's name (or NULL), its place in *file and *line. */
static const char *inlined_frames(struct text *t, unsigned *num, Dwfl_Module *m,
                                  Dwarf_Addr look, const char **file, int *line)
{
    Dwarf_Addr bias;
    Dwarf_Die *cu = dw()->dwfl_module_addrdie(m, look, &bias);
    Dwarf_Die *scopes = NULL;
    Dwarf_Files *files = NULL;
    const char *outer = NULL;
    int n, i;

    if (cu == NULL) {
        return NULL;
    }
    n = dw()->dwarf_getscopes(cu, look - bias, &scopes);
    if (n <= 0) {
        return NULL;
    }
    (void)dw()->dwarf_getsrcfiles(cu, &files, NULL);
    for (i = 0; i < n; i++) {
        int tag = dw()->dwarf_tag(&scopes[i]);
        Dwarf_Attribute a;
        Dwarf_Word cf = 0, cl = 0;

        if (tag == DW_TAG_subprogram) {
            outer = die_name(&scopes[i]);
            break;
        }
        if (tag != DW_TAG_inlined_subroutine) {
            continue;
        }
        add_line(t, "\n  #%u %s (%s:%d) [inlined]", (*num)++,
                 die_name(&scopes[i]), base_name(*file), *line);
        if (dw()->dwarf_formudata(
                dw()->dwarf_attr(&scopes[i], DW_AT_call_file, &a), &cf) != 0 ||
            dw()->dwarf_formudata(
                dw()->dwarf_attr(&scopes[i], DW_AT_call_line, &a), &cl) != 0 ||
            files == NULL) {
            *file = "??";
            *line = 0;
        } else {
            const char *s = dw()->dwarf_filesrc(files, cf, NULL, NULL);

            *file = s != NULL ? s : "??";
            *line = (int)cl;
        }
    }
    free(scopes);
    return outer;
}

/* A symbol's name without its version ("__libc_start_main@@GLIBC_2.34"). */
static int name_len(const char *name)
{
    return name != NULL ? (int)strcspn(name, "@") : 2;
}

/* One frame (and its inlined calls) with libdw. False: libdw knows
 * nothing of the address. */
static bool dwfl_frame(struct text *t, unsigned *num, Dwfl *d, uint64_t a,
                       bool exact, const char *where)
{
    Dwarf_Addr look = exact ? a : a - 1; /* the call, not the return */
    Dwfl_Module *m = dw()->dwfl_addrmodule(d, look);
    const char *name, *file = NULL, *outer;
    GElf_Off off;
    GElf_Sym sym;
    Dwfl_Line *l;
    int line = 0;

    if (m == NULL) {
        return false;
    }
    name = dw()->dwfl_module_addrinfo(m, look, &off, &sym, NULL, NULL, NULL);
    l = dw()->dwfl_module_getsrc(m, look);
    if (l != NULL) {
        file = dw()->dwfl_lineinfo(l, NULL, &line, NULL, NULL, NULL);
    }
    if (file != NULL) {
        outer = inlined_frames(t, num, m, look, &file, &line);
        if (outer != NULL && name == NULL) {
            name = outer;
        }
        add_line(t, "\n  #%u %.*s (%s:%d)", (*num)++, name_len(name),
                 name != NULL ? name : "??", base_name(file), line);
    } else {
        add_line(t, "\n  #%u %.*s (%s)", (*num)++, name_len(name),
                 name != NULL ? name : "??", where);
    }
    return true;
}

#else

void subiter__symbols_forget(void)
{
}

#endif /* HAVE_LIBDW */

int subiter__symbols_format(const uint64_t *frames, uint32_t nframes,
                            const char *map_text, uint32_t maps_len, char **out)
{
    struct text t = {NULL, 0, false};
    struct mapping *v = NULL;
    char *maps = NULL;
    unsigned num = 0;
    size_t nmaps = 0, cap = 1; /* lines: one more than newlines */
    uint32_t i;
#ifdef HAVE_LIBDW
    const char *why = NULL;
    bool named, cached;
    Dwfl *d = NULL;
#endif
    bool kept = false; /* the cache owns maps and v */

    *out = NULL;
    for (i = 0; i < maps_len; i++) {
        cap += map_text[i] == '\n';
    }
    t.buf = subiter__malloc(TEXT_MAX);
    maps = subiter__malloc((size_t)maps_len + 1);
    v = subiter__malloc(cap * sizeof *v);
    if (t.buf == NULL || maps == NULL || v == NULL) {
        subiter__free(t.buf);
        subiter__free(maps);
        subiter__free(v);
        return -ENOMEM;
    }
    t.buf[0] = '\0';
    memcpy(maps, map_text, maps_len);
    maps[maps_len] = '\0';
    nmaps = parse_maps(maps, v, cap);
#ifdef HAVE_LIBDW
    /* No valid line: nothing to name, and the cache stays as it is. */
    named = nmaps > 0 && subiter__libdw(&why) != NULL;
    cached = named && cache_enter();
    if (named) {
        d = cached ? cache_dwfl_locked(v, nmaps, maps) : dwfl_of(v, nmaps);
    }
    kept = cached && d != NULL;
#endif
    for (i = 0; i < nframes; i++) {
        char where[SUBITER__TRACE_LINE_MAX];

        module_offset(v, nmaps, frames[i], where, sizeof where);
#ifdef HAVE_LIBDW
        if (d != NULL && dwfl_frame(&t, &num, d, frames[i], i == 0, where)) {
            continue;
        }
#endif
        add_line(&t, "\n  #%u ?? (%s)", num++, where);
    }
#ifdef HAVE_LIBDW
    if (cached) {
        pthread_mutex_unlock(&cache.lock);
    } else if (d != NULL) {
        dw()->dwfl_end(d);
    }
    if (nmaps > 0 && !named) {
        add_line(&t, "\n  (no function names: %s)", why);
    }
#else
    add_line(&t, "\n  (no function names: subiter was built without libdw)");
#endif
    if (!kept) {
        subiter__free(maps);
        subiter__free(v);
    }
    /* Without the leading newline: the caller puts the text after its
     * reason line. */
    if (t.len > 0) {
        memmove(t.buf, t.buf + 1, t.len);
    }
    *out = t.buf;
    return 0;
}
