/* bind.c: bind the application's calls to the generator's API before the
 * workers are made, so that no worker binds them itself.
 *
 * A program linked without -z now binds each function it imports at its
 * first call (lazy binding): the dynamic linker looks the name up in
 * every loaded object and writes the address into the program's GOT. A
 * worker made by fork() or by the forkserver's zygote is a copy of a
 * process that never called subiter_yield() (only workers do), so every
 * worker looked it up again and took the page faults of the lookup and of
 * its first write to the GOT: about 20 us of each open -> first item on a
 * 2-CPU machine, a tenth of a fork.
 *
 * So the process that makes the workers (the application before its first
 * fork, the zygote once) calls each of those functions once through every
 * loaded object's own PLT slot with arguments they refuse (a NULL
 * generator: -EINVAL, nothing else done). The dynamic linker binds the
 * slot as at any first call, with its own rules (interposition, versions,
 * LD_BIND_NOT, auditors); we only read the GOT to find the slots. Objects
 * bound already (-z now) are skipped, as is anything not understood.
 */
#include "config.h"

#include <elf.h>
#include <link.h>
#include <string.h>

#include "internal.h"
#include "start.h"

/* The generator's calls that run per item or per iteration, and a call of
 * each that does nothing but return -EINVAL (or 0): g is NULL. */
static void call_yield(void *f)
{
    int (*fn)(subiter_gen *, const void *, size_t);

    memcpy(&fn, &f, sizeof fn);
    (void)fn(NULL, NULL, 0);
}

static void call_reserve(void *f)
{
    int (*fn)(subiter_gen *, size_t, void **);

    memcpy(&fn, &f, sizeof fn);
    (void)fn(NULL, 0, NULL);
}

static void call_commit(void *f)
{
    int (*fn)(subiter_gen *, size_t);

    memcpy(&fn, &f, sizeof fn);
    (void)fn(NULL, 0);
}

static const struct {
    const char *name;
    void (*call)(void *slot_value);
} hot[] = {
    {"subiter_yield", call_yield},
    {"subiter_reserve", call_reserve},
    {"subiter_commit", call_commit},
};

/* x86-64 only: there an unbound slot holds its PLT entry's own way into
 * the dynamic linker (push the index, jump), so calling what the slot
 * holds is the call through the PLT. On aarch64, every unbound slot holds
 * the common PLT header, which finds the slot from x16 as set by the PLT
 * entry: a call of it from here would bind the wrong one. */
#if defined(__x86_64__) && defined(__LP64__)
/* A dynamic entry's address: glibc relocates them in place, the vDSO's
 * and other libcs' are left as link-time addresses. */
static uintptr_t dyn_addr(const struct dl_phdr_info *o, ElfW(Addr) v)
{
    return v < o->dlpi_addr ? o->dlpi_addr + v : v;
}

static int bind_object(struct dl_phdr_info *o, size_t size, void *data)
{
    const ElfW(Dyn) *d = NULL;
    const ElfW(Rela) *rel = NULL;
    const ElfW(Sym) *sym = NULL;
    const char *str = NULL;
    size_t relsz = 0, i, k;
    bool rela = false;
    int p;

    (void)size;
    (void)data;
    for (p = 0; p < o->dlpi_phnum; p++) {
        if (o->dlpi_phdr[p].p_type == PT_DYNAMIC) {
            d = (const ElfW(Dyn) *)(o->dlpi_addr + o->dlpi_phdr[p].p_vaddr);
        }
    }
    for (; d != NULL && d->d_tag != DT_NULL; d++) {
        switch (d->d_tag) {
        case DT_JMPREL:
            rel = (const ElfW(Rela) *)dyn_addr(o, d->d_un.d_ptr);
            break;
        case DT_PLTRELSZ:
            relsz = d->d_un.d_val;
            break;
        case DT_PLTREL:
            rela = d->d_un.d_val == DT_RELA;
            break;
        case DT_SYMTAB:
            sym = (const ElfW(Sym) *)dyn_addr(o, d->d_un.d_ptr);
            break;
        case DT_STRTAB:
            str = (const char *)dyn_addr(o, d->d_un.d_ptr);
            break;
        case DT_FLAGS:
            if (d->d_un.d_val & DF_BIND_NOW) {
                return 0;
            }
            break;
        case DT_FLAGS_1:
            if (d->d_un.d_val & DF_1_NOW) {
                return 0;
            }
            break;
        default:
            break;
        }
    }
    if (rel == NULL || !rela || sym == NULL || str == NULL) {
        return 0;
    }
    for (i = 0; i < relsz / sizeof *rel; i++) {
        const ElfW(Sym) *s = &sym[ELF64_R_SYM(rel[i].r_info)];

        if (ELF64_R_TYPE(rel[i].r_info) != R_X86_64_JUMP_SLOT ||
            s->st_shndx != SHN_UNDEF) {
            continue;
        }
        for (k = 0; k < sizeof hot / sizeof hot[0]; k++) {
            if (strcmp(str + s->st_name, hot[k].name) == 0) {
                void *const *slot =
                    (void *const *)(o->dlpi_addr + rel[i].r_offset);

                /* Unbound, the slot holds the PLT's way into the dynamic
                 * linker; bound, the function: either call is fine. */
                hot[k].call(*slot);
            }
        }
    }
    return 0;
}

static void bind_all(void)
{
    (void)dl_iterate_phdr(bind_object, NULL);
}
#else
static void bind_all(void)
{
}
#endif

void subiter__bind_generator_calls(void)
{
    /* Once per process, and never waited for: a thread that comes while
     * another binds goes on (its workers bind what is left lazily), and
     * a fork taken meanwhile cannot leave a lock held. */
    static _Atomic bool done;

    if (!atomic_exchange_explicit(&done, true, memory_order_relaxed)) {
        bind_all();
    }
}
