/* check-bind.c: the process that makes workers binds the program's lazily
 * bound calls of the generator's API first, so that a worker does not look
 * subiter_yield() up (and copy a page of the GOT) before its first item.
 * This program is linked with -z lazy against the shared library; its
 * generator reports whether its own GOT slot for subiter_yield() was bound
 * when it started: by the forkserver's zygote under SUBITER_FORKSERVER, by
 * the application under SUBITER_FORK.
 *
 * Exit: 0 when both hold, 77 where it does not apply (not x86-64, no
 * clone3()), 1 otherwise (and what failed on stderr). */
#define _GNU_SOURCE /* dl_iterate_phdr(), RTLD_DEFAULT */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <subiter.h>

static void **slot; /* this program's GOT slot for subiter_yield() */
static void *real;  /* subiter_yield() itself */

#if defined(__x86_64__) && defined(__LP64__)
static int find_slot(struct dl_phdr_info *o, size_t size, void *data)
{
    const ElfW(Dyn) *d = NULL;
    const ElfW(Rela) *rel = NULL;
    const ElfW(Sym) *sym = NULL;
    const char *str = NULL;
    size_t relsz = 0, i;
    int p;

    (void)size;
    (void)data;
    for (p = 0; p < o->dlpi_phnum; p++) {
        if (o->dlpi_phdr[p].p_type == PT_DYNAMIC) {
            d = (const ElfW(Dyn) *)(o->dlpi_addr + o->dlpi_phdr[p].p_vaddr);
        }
    }
    for (; d != NULL && d->d_tag != DT_NULL; d++) {
        if (d->d_tag == DT_JMPREL) {
            rel = (const ElfW(Rela) *)d->d_un.d_ptr;
        } else if (d->d_tag == DT_PLTRELSZ) {
            relsz = d->d_un.d_val;
        } else if (d->d_tag == DT_SYMTAB) {
            sym = (const ElfW(Sym) *)d->d_un.d_ptr;
        } else if (d->d_tag == DT_STRTAB) {
            str = (const char *)d->d_un.d_ptr;
        }
    }
    for (i = 0; rel != NULL && sym != NULL && i < relsz / sizeof *rel; i++) {
        const char *name = str + sym[ELF64_R_SYM(rel[i].r_info)].st_name;

        if (strcmp(name, "subiter_yield") == 0) {
            slot = (void **)(o->dlpi_addr + rel[i].r_offset);
        }
    }
    return 1; /* the program is the first object */
}
#endif

/* Yields 1 when the slot was bound as the generator started, else 0. */
static int gen_bound(subiter_gen *g, void *arg)
{
    unsigned char bound = *slot == real;

    (void)arg;
    return subiter_yield(g, &bound, 1);
}

/* The generator's answer under `method`: 1 bound, 0 not, -1 error, -2
 * when the method cannot run here (-ENOSYS: no clone3()). */
static int bound_in_worker(int method)
{
    subiter_opts o = SUBITER_OPTS_INIT;
    subiter_item item;
    subiter *it;
    pid_t pid = 0;
    int r;

    o.start_method = method;
    r = subiter_open(&it, gen_bound, NULL, &o);
    if (r == -ENOSYS) {
        (void)subiter_close(it);
        return -2;
    }
    if (r == 0) {
        pid = subiter_pid(it);
        r = subiter_start(it, NULL, 0);
    }
    if (r == 0) {
        r = subiter_next(it, &item) == 1 && item.len == 1
                ? *(const unsigned char *)item.data
                : -1;
    }
    if (r < 0) {
        fprintf(stderr, "check-bind: method %d: %s\n", method,
                subiter_errmsg(it));
    }
    if (subiter_close(it) != 0 ||
        (pid > 0 && (kill(pid, 0) == 0 || errno != ESRCH))) {
        fprintf(stderr, "check-bind: method %d: the worker is left\n", method);
        r = -1;
    }
    return r;
}

int main(void)
{
    int fs, fk;

    real = dlsym(RTLD_DEFAULT, "subiter_yield");
#if defined(__x86_64__) && defined(__LP64__)
    (void)dl_iterate_phdr(find_slot, NULL);
#endif
    if (slot == NULL || real == NULL) {
        printf("SKIP: no lazily bound call of subiter_yield() to look at "
               "(not x86-64)\n");
        return 77;
    }
    if (*slot == real) {
        fprintf(stderr, "check-bind: bound before any open (not -z lazy?)\n");
        return 1;
    }
    /* The forkserver first: the application itself binds only for fork. */
    fs = bound_in_worker(SUBITER_FORKSERVER);
    if (fs == -2) {
        printf("SUBITER_FORKSERVER cannot run here (no clone3()): fork "
               "only\n");
        fs = 1;
    }
    /* Else the fork case below would find it bound already. */
    if (*slot == real) {
        fprintf(stderr, "check-bind: a FORKSERVER open bound the "
                        "application's slot, not only the zygote's\n");
        return 1;
    }
    fk = bound_in_worker(SUBITER_FORK);
    printf("forkserver worker started bound: %d, fork worker: %d, "
           "application: %d\n",
           fs, fk, *slot == real);
    return fs == 1 && fk == 1 && *slot == real ? 0 : 1;
}
