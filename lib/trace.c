/* trace.c: crash and hang stacks. In the worker, the handlers of SIGSEGV,
 * SIGBUS, SIGFPE, SIGILL, SIGABRT and of the parent's stack request, which
 * record raw frames and the module map into the trace area (trace.h) with
 * async-signal-safe calls only. In the parent, the request itself and the
 * reading of the area: validated like any untrusted memory, then
 * symbolized with elfutils libdw (or, without it, module offsets). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#ifdef HAVE_LIBDW
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#endif

#include "internal.h"

/* The text of one report: about 64 frames of up to 120 characters. */
#define TEXT_MAX 8192
#define ALTSTACK_BYTES (64u * 1024u)
#define LINE_MAX_BYTES 512

static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

#ifdef SUBITER_COVERAGE
void __gcov_dump(void);
/* A coverage build writes the worker's counts here: it dies of the signal
 * or is killed right after, and would lose them (not async-signal-safe,
 * so only there). */
#define COVERAGE_DUMP() __gcov_dump()
#else
#define COVERAGE_DUMP() ((void)0)
#endif

/* ---- the worker ---- */

/*
 * Where this worker's handlers write, and the thread that runs its
 * generator. Set once, in the worker, before its handlers are installed;
 * read only by them. A handler can reach nothing else: this is the
 * worker process's state, never written in the parent.
 */
static struct subiter__trace *worker_area;
static pid_t worker_tid;

/* The interrupted instruction, from the handler's context; 0 if unknown. */
static uint64_t interrupted_pc(const void *ctx)
{
    const ucontext_t *uc = ctx;

#if defined(__x86_64__)
    return (uint64_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (uint64_t)uc->uc_mcontext.pc;
#else
    (void)uc;
    return 0;
#endif
}

/* Keep a line of /proc/self/maps if it maps a file (the only mappings a
 * frame can be symbolized against), the region's memfd and devices
 * excepted. */
static void keep_line(struct subiter__trace *t, const char *line, size_t n)
{
    const char *path = memchr(line, '/', n);

    if (path == NULL || (size_t)(line + n - path) < 2 ||
        strncmp(path, "/memfd:", 7) == 0 || strncmp(path, "/dev/", 5) == 0 ||
        t->maps_len + n + 1 > SUBITER__TRACE_MAPS_MAX) {
        return;
    }
    memcpy(t->maps + t->maps_len, line, n);
    t->maps[t->maps_len + n] = '\n';
    t->maps_len += (uint32_t)n + 1;
}

/* Copy the file-backed lines of /proc/self/maps with open/read only. */
static void record_maps(struct subiter__trace *t)
{
    char buf[2048], line[LINE_MAX_BYTES];
    size_t len = 0;
    bool too_long = false;
    ssize_t n, i;
    int fd;

    fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return;
    }
    for (;;) {
        n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        for (i = 0; i < n; i++) {
            if (buf[i] == '\n') {
                if (!too_long) {
                    keep_line(t, line, len);
                }
                len = 0;
                too_long = false;
            } else if (len < sizeof line) {
                line[len++] = buf[i];
            } else {
                too_long = true;
            }
        }
    }
    (void)close(fd);
}

/* Write the report, once: a second signal (a crash while reporting a
 * hang, say) leaves the first report as it is. */
static void record(int sig, const void *ctx, uint32_t kind)
{
    struct subiter__trace *t = worker_area;
    void *f[SUBITER__TRACE_FRAMES + 8];
    uint32_t expected = SUBITER__TRACE_EMPTY;
    uint64_t pc = interrupted_pc(ctx);
    int n, i, from = -1;
    uint32_t k = 0;

    if (t == NULL || !atomic_compare_exchange_strong_explicit(
                         &t->state, &expected, SUBITER__TRACE_WRITING,
                         memory_order_relaxed, memory_order_relaxed)) {
        return;
    }
    n = backtrace(f, (int)(sizeof f / sizeof f[0]));
    /* Drop the handler's own frames and the signal trampoline: the
     * report starts at the interrupted instruction. */
    for (i = 0; i < n && from < 0; i++) {
        if ((uint64_t)(uintptr_t)f[i] == pc) {
            from = i;
        }
    }
    if (from < 0) {
        /* The unwinder did not get through the signal frame: the
         * interrupted instruction alone still names the function. */
        if (pc != 0) {
            t->frames[k++] = pc;
        }
        from = n;
    }
    for (i = from; i < n && k < SUBITER__TRACE_FRAMES; i++) {
        t->frames[k++] = (uint64_t)(uintptr_t)f[i];
    }
    t->nframes = k;
    t->maps_len = 0;
    record_maps(t);
    t->kind = kind;
    t->signo = sig;
    t->magic = SUBITER__TRACE_MAGIC;
    /* release: publishes the report; pairs with the acquire in
     * subiter__trace_collect() and trace_request(). */
    atomic_store_explicit(&t->state, SUBITER__TRACE_WRITTEN,
                          memory_order_release);
}

static void on_crash(int sig, siginfo_t *info, void *ctx)
{
    int e = errno;

    (void)info;
    record(sig, ctx, SUBITER__TRACE_CRASH);
    COVERAGE_DUMP();
    /* SA_RESETHAND restored the default action; the signal is blocked
     * until the handler returns, so the worker dies of it right then and
     * its exit status stays the signal (a fault would also come again by
     * itself, a raise() or kill() would not). */
    (void)raise(sig);
    errno = e;
}

static void on_request(int sig, siginfo_t *info, void *ctx)
{
    int e = errno;

    (void)info;
    if (gettid() != worker_tid) {
        /* Another thread of the worker took the process-directed signal:
         * the stack wanted is the generator's. */
        (void)tgkill(getpid(), worker_tid, sig);
    } else {
        record(sig, ctx, SUBITER__TRACE_HANG);
        COVERAGE_DUMP();
    }
    errno = e;
}

void subiter__trace_install(void *region, size_t len)
{
    struct sigaction sa;
    stack_t ss;
    void *f[1];
    size_t i;

    worker_area = (struct subiter__trace *)((unsigned char *)region + len -
                                            SUBITER__TRACE_BYTES);
    worker_tid = gettid();
    /* Primed in the parent already (subiter__trace_prime()); this is a
     * no-op then, and loads the unwinder in a worker that was not. */
    (void)backtrace(f, 1);
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_SIGINFO;
    /* An overflowed stack leaves no room for the handler: give it its
     * own. Without one (no memory), a stack overflow reports nothing. */
    ss.ss_sp = mmap(NULL, ALTSTACK_BYTES, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    ss.ss_size = ALTSTACK_BYTES;
    ss.ss_flags = 0;
    if (ss.ss_sp != MAP_FAILED && sigaltstack(&ss, NULL) == 0) {
        sa.sa_flags |= SA_ONSTACK;
    }
    sa.sa_sigaction = on_request;
    (void)sigaction(SUBITER__TRACE_SIGNAL, &sa, NULL);
    sa.sa_flags |= SA_RESETHAND;
    sa.sa_sigaction = on_crash;
    for (i = 0; i < sizeof crash_signals / sizeof crash_signals[0]; i++) {
        (void)sigaction(crash_signals[i], &sa, NULL);
    }
}

/* ---- the parent ---- */

void subiter__trace_prime(void)
{
    void *f[1];

    (void)backtrace(f, 1);
}

static struct subiter__trace *area_of(const struct subiter__region *r)
{
    if (r->shm == NULL || r->len < SUBITER__TRACE_BYTES) {
        return NULL;
    }
    return (struct subiter__trace *)((unsigned char *)r->shm + r->len -
                                     SUBITER__TRACE_BYTES);
}

void subiter__trace_request(struct subiter__region *r, struct subiter__proc *p)
{
    struct subiter__trace *t = area_of(r);
    struct timespec ms = {0, SUBITER__NS_PER_MS};
    int64_t deadline;

    if (t == NULL || p->reaped ||
        atomic_load_explicit(&t->state, memory_order_relaxed) !=
            SUBITER__TRACE_EMPTY) {
        return;
    }
    subiter__proc_signal(p, SUBITER__TRACE_SIGNAL);
    deadline = subiter__now_ns() + SUBITER__TRACE_WAIT_MS * SUBITER__NS_PER_MS;
    /* acquire: pairs with the release in record(). */
    while (atomic_load_explicit(&t->state, memory_order_acquire) !=
               SUBITER__TRACE_WRITTEN &&
           subiter__now_ns() < deadline && !subiter__proc_exited(p)) {
        (void)nanosleep(&ms, NULL);
    }
}

int subiter__trace_collect(const struct subiter__region *r, char **out)
{
    struct subiter__trace *t = area_of(r);
    void *copy;
    int ret;

    *out = NULL;
    /* acquire: pairs with the release in record(). */
    if (t == NULL || atomic_load_explicit(&t->state, memory_order_acquire) !=
                         SUBITER__TRACE_WRITTEN) {
        return 0;
    }
    /* One copy, then only the copy: the area is the worker's memory. */
    copy = subiter__malloc(SUBITER__TRACE_BYTES);
    if (copy == NULL) {
        return -ENOMEM;
    }
    memcpy(copy, t, SUBITER__TRACE_BYTES);
    ret = subiter__trace_format(copy, SUBITER__TRACE_BYTES, out);
    subiter__free(copy);
    return ret;
}

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
        elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    }
    if (elf != NULL &&
        (elf_kind(elf) != ELF_K_ELF || elf_cntl(elf, ELF_C_FDREAD) != 0)) {
        (void)elf_end(elf);
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
    int fd = dwfl_standard_find_debuginfo(mod, user, name, base, file, link,
                                          crc, debug_name);

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
    dwfl_report_begin(d);
    r = dwfl_linux_proc_maps_report(d, f);
    (void)fclose(f);
    free(text);
    return r == 0 && dwfl_report_end(d, NULL, NULL) == 0;
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
 * subiter__trace_forget(). The mutex: pools and host threads symbolize
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
        dwfl_end(cache.dwfl);
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
        cache.dwfl = dwfl_begin(&dwfl_callbacks);
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
    Dwfl *d = dwfl_begin(&dwfl_callbacks);

    if (d != NULL && !report_maps(d, v, n)) {
        dwfl_end(d);
        d = NULL;
    }
    return d;
}

void subiter__trace_forget(void)
{
    if (atomic_load(&cache.owner) != getpid()) {
        return;
    }
    pthread_mutex_lock(&cache.lock);
    cache_drop_locked();
    pthread_mutex_unlock(&cache.lock);
}

/* When the library is unloaded (and at exit): nothing is left behind. */
__attribute__((destructor)) static void trace_unload(void)
{
    subiter__trace_forget();
}

/* The name of a DWARF function or inlined instance. */
static const char *die_name(Dwarf_Die *die)
{
    Dwarf_Attribute a;
    const char *s;

    s = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &a));
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
    Dwarf_Die *cu = dwfl_module_addrdie(m, look, &bias);
    Dwarf_Die *scopes = NULL;
    Dwarf_Files *files = NULL;
    const char *outer = NULL;
    int n, i;

    if (cu == NULL) {
        return NULL;
    }
    n = dwarf_getscopes(cu, look - bias, &scopes);
    if (n <= 0) {
        return NULL;
    }
    (void)dwarf_getsrcfiles(cu, &files, NULL);
    for (i = 0; i < n; i++) {
        int tag = dwarf_tag(&scopes[i]);
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
        if (dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_file, &a), &cf) !=
                0 ||
            dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_line, &a), &cl) !=
                0 ||
            files == NULL) {
            *file = "??";
            *line = 0;
        } else {
            const char *s = dwarf_filesrc(files, cf, NULL, NULL);

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
    Dwfl_Module *m = dwfl_addrmodule(d, look);
    const char *name, *file = NULL, *outer;
    GElf_Off off;
    GElf_Sym sym;
    Dwfl_Line *l;
    int line = 0;

    if (m == NULL) {
        return false;
    }
    name = dwfl_module_addrinfo(m, look, &off, &sym, NULL, NULL, NULL);
    l = dwfl_module_getsrc(m, look);
    if (l != NULL) {
        file = dwfl_lineinfo(l, NULL, &line, NULL, NULL, NULL);
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

void subiter__trace_forget(void)
{
}

#endif /* HAVE_LIBDW */

int subiter__trace_format(const void *area, size_t len, char **out)
{
    const struct subiter__trace *h = area;
    uint32_t nframes, maps_len, i;
    struct text t = {NULL, 0, false};
    struct mapping *v = NULL;
    char *maps = NULL;
    unsigned num = 0;
    size_t nmaps = 0, cap = 1; /* lines: one more than newlines */
#ifdef HAVE_LIBDW
    bool cached = false;
    Dwfl *d = NULL;
#endif
    bool kept = false; /* the cache owns maps and v */

    *out = NULL;
    if (len < sizeof *h || h->magic != SUBITER__TRACE_MAGIC ||
        (h->kind != SUBITER__TRACE_CRASH && h->kind != SUBITER__TRACE_HANG)) {
        return 0;
    }
    nframes = h->nframes;
    maps_len = h->maps_len;
    if (nframes == 0 || nframes > SUBITER__TRACE_FRAMES ||
        maps_len > len - sizeof *h) {
        return 0;
    }
    for (i = 0; i < maps_len; i++) {
        cap += h->maps[i] == '\n';
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
    memcpy(maps, h->maps, maps_len);
    maps[maps_len] = '\0';
    nmaps = parse_maps(maps, v, cap);
#ifdef HAVE_LIBDW
    /* No valid line: nothing to name, and the cache stays as it is. */
    cached = nmaps > 0 && cache_enter();
    if (nmaps > 0) {
        d = cached ? cache_dwfl_locked(v, nmaps, maps) : dwfl_of(v, nmaps);
    }
    kept = cached && d != NULL;
#endif
    for (i = 0; i < nframes; i++) {
        char where[LINE_MAX_BYTES];

        module_offset(v, nmaps, h->frames[i], where, sizeof where);
#ifdef HAVE_LIBDW
        if (d != NULL && dwfl_frame(&t, &num, d, h->frames[i], i == 0, where)) {
            continue;
        }
#endif
        add_line(&t, "\n  #%u ?? (%s)", num++, where);
    }
#ifdef HAVE_LIBDW
    if (cached) {
        pthread_mutex_unlock(&cache.lock);
    } else if (d != NULL) {
        dwfl_end(d);
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
