/* console.c: what the loader says on stderr, where a progress line may be
 * showing, and the clocks its figures are measured with.
 */
#include "loader.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>

void progress_clear(struct console *con)
{
    if (con->progress_shown) {
        fputs("\r\033[K", stderr);
        con->progress_shown = 0;
    }
}

/* Print a message on stderr, on a line of its own after a progress line. */
void say(struct console *con, const char *fmt, ...)
{
    va_list ap;

    progress_clear(con);
    fputs("loader: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double cpu_s(int who)
{
    struct rusage ru;

    if (getrusage(who, &ru) != 0) {
        return 0;
    }
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}
