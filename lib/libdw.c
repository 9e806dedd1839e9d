/* libdw.c: elfutils libdw, loaded with dlopen() the first time a report
 * names its frames (see libdw.h for why it is not linked). */
#include "config.h"

#ifdef HAVE_LIBDW

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "libdw.h"

/* libdw's soname: the major version has been 1 since elfutils 0.1xx. */
const char *subiter__libdw_name = "libdw.so.1";

static pthread_once_t once = PTHREAD_ONCE_INIT;
static struct subiter__libdw fns;
static const struct subiter__libdw *loaded; /* &fns, or NULL */
static char why_text[256];

static void load(void)
{
    void *h = dlopen(subiter__libdw_name, RTLD_NOW | RTLD_LOCAL);
    const char *err;

    if (h == NULL) {
        err = dlerror();
        snprintf(why_text, sizeof why_text, "%s could not be loaded: %s",
                 subiter__libdw_name, err != NULL ? err : "dlopen failed");
        return;
    }
    /* dlsym() returns functions as void *: POSIX requires the round trip
     * to work. */
#define SUBITER__LIBDW_LOAD(f)                                                 \
    {                                                                          \
        void *p = dlsym(h, #f);                                                \
                                                                               \
        if (p == NULL) {                                                       \
            snprintf(why_text, sizeof why_text, "%s has no %s",                \
                     subiter__libdw_name, #f);                                 \
            (void)dlclose(h);                                                  \
            return;                                                            \
        }                                                                      \
        memcpy(&fns.f, &p, sizeof p);                                          \
    }
    SUBITER__LIBDW_FUNCS(SUBITER__LIBDW_LOAD)
#undef SUBITER__LIBDW_LOAD
    loaded = &fns;
}

const struct subiter__libdw *subiter__libdw(const char **why)
{
    (void)pthread_once(&once, load);
    *why = why_text;
    return loaded;
}

#endif /* HAVE_LIBDW */
