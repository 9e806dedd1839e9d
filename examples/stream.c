/* stream: streams items from a worker and prints a summary. */
#include "config.h"

#include <stdio.h>

#include "subiter.h"

int main(void)
{
    printf("subiter %s\n", subiter_version());
    return 0;
}
