/* coverage-exit.c: in --enable-coverage builds only, the library is
 * compiled with -D_exit=subiter__coverage_exit, so that a worker writes
 * its gcov counts before it ends: _exit() skips the write-out that exit()
 * does, and without it nothing that only a worker runs would count. */
#include "config.h"

#include <unistd.h>

void __gcov_dump(void);
void subiter__coverage_exit(int status);

void subiter__coverage_exit(int status)
{
    __gcov_dump();
    _exit(status);
}
