/* subiter-bench: throughput and latency of subiter against baselines. */
#include "config.h"

#include <stdio.h>

#include "subiter.h"

int main(void)
{
    printf("bench=none version=%s\n", subiter_version());
    return 0;
}
