/* print-version.c: prints every place the version can be read from in a
 * build, one "name value" line each, for tests/check-version.sh to
 * compare: configure's PACKAGE_VERSION, the header's macros and what the
 * library returns. */
#include "config.h"

#include <stdio.h>

#include <subiter.h>

int main(void)
{
    printf("configure %s\n", PACKAGE_VERSION);
    printf("SUBITER_VERSION_STRING %s\n", SUBITER_VERSION_STRING);
    printf("SUBITER_VERSION_MAJOR.MINOR.PATCH %d.%d.%d\n",
           SUBITER_VERSION_MAJOR, SUBITER_VERSION_MINOR, SUBITER_VERSION_PATCH);
    /* The number, decoded back, must give the same three parts. */
    printf("SUBITER_VERSION_NUMBER %d.%d.%d\n",
           (SUBITER_VERSION_NUMBER >> 16) & 0xff,
           (SUBITER_VERSION_NUMBER >> 8) & 0xff, SUBITER_VERSION_NUMBER & 0xff);
    printf("subiter_version() %s\n", subiter_version());
    return 0;
}
